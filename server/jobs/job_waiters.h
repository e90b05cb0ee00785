/* Requests answered when their job ends (POST /bbwm/merge-models).
 *
 * The web UI extension posts a merge and reads the status of the answer,
 * sent when the merge is written.  Such a request is validated on the
 * write worker like any submit; then, instead of 202, its connection stays
 * suspended (no HTTP thread waits: polls go on) and the request is held
 * here under its job's id.  When the job ends (ms_job_runner_finish on the
 * loop thread, or a DELETE of the queued job) the request gets its answer
 * and the connection is resumed.  A client that goes away meanwhile is not
 * noticed (libmicrohttpd does not watch suspended connections): the job
 * runs to its end all the same, and its answer goes nowhere.
 *
 * At shutdown every request still held is answered 503 shutting_down
 * before the HTTP server stops (libmicrohttpd must not stop with suspended
 * connections); its job stays queued and runs after the restart. */
#ifndef MS_JOB_WAITERS_H
#define MS_JOB_WAITERS_H

#include <pthread.h>
#include <stdbool.h>

#include "job.h"

struct ms_http_request;
struct ms_service;

typedef struct ms_job_waiter {
    char job_id[MS_JOB_ID_LENGTH + 1];
    struct ms_http_request *request;
    struct ms_job_waiter *next;
} ms_job_waiter;

typedef struct ms_job_waiters {
    pthread_mutex_t mutex;
    ms_job_waiter *first;
    bool ready;       /* initialised: a zeroed struct (unit tests) holds nothing */
    bool closed;      /* shutdown answered everyone: nobody is held any more */
} ms_job_waiters;

int ms_job_waiters_init(ms_job_waiters *waiters);
void ms_job_waiters_destroy(ms_job_waiters *waiters);

/* The write worker's after_deferred (http.h) for a held submit: the
 * request waits for the job named by request->job_id, then the job is
 * queued.  Held after closing (shutdown began), it is answered 503 at
 * once and its job stays queued for the next start. */
void ms_job_waiters_hold(struct ms_http_request *request);

/* A job reached state: its held requests are answered.  succeeded: 200
 * with body null; failed or cancelled: {"error": error_text} with the
 * status of its code.  Other states answer nothing.  Any thread, no lock
 * held. */
void ms_job_waiters_job_ended(struct ms_service *service, const char *job_id,
                              ms_job_state state, const char *error_text);

/* Shutdown, once the write worker has stopped: answers every held request
 * 503 and closes. */
void ms_job_waiters_release_all(struct ms_service *service);

/* JSON text of the answer for a job that ended in state with error_text
 * (an error object, or NULL), and its HTTP status. */
char *ms_job_waiters_answer(ms_job_state state, const char *error_text, unsigned *status);

#endif
