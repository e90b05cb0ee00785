/* The running service: everything the HTTP threads, the libuv loop thread
 * and the job workers share.
 *
 * Threads: libmicrohttpd's pool answers requests; the main thread runs the
 * libuv loop (job dispatch, completions, signals); libuv's worker pool runs
 * the jobs.  HTTP threads hand new job ids to the loop through
 * ms_job_queue_push (a mutex-protected list + uv_async_send). */
#ifndef MS_SERVICE_H
#define MS_SERVICE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "server/file_reaper.h"
#include "server/http/connection_guard.h"
#include "server/http/http_worker.h"
#include "server/http/request_gate.h"
#include "server/jobs/job_waiters.h"
#include "server/jobs/job_queue.h"
#include "server/jobs/job_store.h"
#include "server/jobs/job_table.h"
#include "metrics.h"
#include "server/jobs/retention.h"
#include "serve_options.h"

struct MHD_Daemon;
struct ms_webui;
struct ms_passthrough;

/* At shutdown, how long the answers of submits held by the HTTP worker may
 * take to go out before the HTTP server stops. */
enum { MS_SHUTDOWN_ANSWER_WAIT_MS = 2000 };

typedef struct ms_service {
    const ms_serve_options *options;
    char *token;                    /* NULL: no auth */
    char *data_dir;                 /* canonical */
    char *results_dir;              /* DATA/results */
    int lock_fd;                    /* flock on DATA/jobs.lock: one server per data dir */
    ms_job_table table;
    ms_job_store *store;
    ms_metrics metrics;
    ms_job_queue queue;
    ms_retention retention;         /* --keep-results-bytes / --keep-results-seconds */
    struct ms_rotate_cache *rotate_cache;   /* DATA/rotate-cache, --cache-bytes; all jobs */
    struct MHD_Daemon *daemon;
    int quiesced_socket;            /* the listening socket after MHD_quiesce_daemon, or -1:
                                       shut down at once, closed after MHD_stop_daemon */
    pthread_mutex_t submit_mutex;   /* one POST at a time between check and insert */
    ms_http_worker write_worker;    /* submits and DELETEs (SQLite commits), off the HTTP threads */
    ms_http_worker read_worker;     /* reports read back from the store */
    ms_http_worker listing_worker;  /* GET /v1/models walks: never ahead of a status read */
    struct ms_model_index *model_index;   /* what the listings read, kept between them */
    ms_job_waiters waiters;         /* /bbwm requests answered when their job ends */
    ms_connection_guard connection_guard;   /* --request-timeout, room for new clients */
    ms_request_gate request_gate;   /* accepts, answers heads libmicrohttpd cannot parse */
    atomic_bool shutting_down;
    int job_threads;                /* ms_resize_params.threads for each job */
    struct ms_webui *webui;         /* --webui: merges handed to it; NULL: none */
    struct ms_passthrough *passthrough;   /* /sdapi and /bbwm relayed to it; NULL: none */
    ms_file_reaper *reaper;         /* frees deleted results' blocks; NULL: deletions wait */
    char listen_url[128];
} ms_service;

/* Runs until SIGTERM/SIGINT; returns the process exit status. */
int ms_service_run(const ms_serve_options *options);

/* Writes a transition from a copy of the job (taken under the table lock by
 * the caller, freed here) and logs a failure; the store's own errors never
 * stop the service. */
void ms_service_save_job(ms_service *service, ms_job *snapshot);

/* For a copy about to be rendered: reads back a report kept only in the
 * store (a failed read leaves it null and is logged). */
void ms_service_attach_report(ms_service *service, ms_job *copy);

/* Stops the HTTP workers, letting what they hold be answered first
 * (requests waiting for their job are answered 503). */
void ms_service_stop_http_workers(ms_service *service);

/* After MHD_stop_daemon: the listening socket shut down at the first signal. */
void ms_service_close_quiesced_socket(ms_service *service);

/* DATA/results/<id> (malloced). */
char *ms_service_result_dir(const ms_service *service, const char *job_id);

#endif
