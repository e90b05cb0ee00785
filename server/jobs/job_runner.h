/* What a job does on a worker thread, and how its outcome lands in the job
 * (back on the loop thread). */
#ifndef MS_JOB_RUNNER_H
#define MS_JOB_RUNNER_H

#include <stdbool.h>

#include "core/error.h"
#include "job.h"

struct ms_service;

/* What a worker hands back, whatever the job's kind: the report is JSON
 * text already (built on the worker, not on the loop thread). */
typedef struct ms_job_outcome {
    ms_status status;
    ms_error error;
    bool has_result;             /* a file in DATA/results/<id>/ (a /bbwm merge with a
                                    destination succeeds without one) */
    uint64_t result_bytes;
    char result_sha256[65];
    char *report_text;           /* the job's "report" (malloced), or NULL */
} ms_job_outcome;

/* The core's progress callback for a running job: done and total (modules
 * or bytes), the key just done; the job's fraction, current_key and ETA
 * follow.  The figures also go to the job store, at most once per
 * MS_JOB_PROGRESS_SAVE_INTERVAL_MS (the first report at once): a job a
 * crash interrupts shows how far it got, and a job of 10^5 tensors does
 * not commit (and fsync) 10^5 times.  The core calls it from one thread
 * at a time. */
enum { MS_JOB_PROGRESS_SAVE_INTERVAL_MS = 1000 };

typedef struct ms_job_progress {
    struct ms_service *service;
    ms_job *job;
    bool saved_once;             /* the rest zero: {.service = ..., .job = ...} */
    double saved_at_ms;          /* monotonic */
    bool save_failure_logged;    /* a full disk says so once per job, not every second */
} ms_job_progress;

void ms_job_runner_progress(void *user_data, size_t done, size_t total,
                            const char *current_key);

/* Worker thread: a merge job (merge_runner.c). */
void ms_merge_runner_run(struct ms_service *service, ms_job *job, ms_job_outcome *outcome);

/* Loop thread: queued -> running (table + store).  False when the job is
 * gone or no longer queued (cancelled meanwhile). */
bool ms_job_runner_start(struct ms_service *service, const char *job_id, ms_job **job);

/* Worker thread: does the work.  Reads only the job's immutable fields;
 * progress goes into the job under the table lock. */
void ms_job_runner_run(struct ms_service *service, ms_job *job, ms_job_outcome *outcome);

/* Loop thread: running -> succeeded/failed/cancelled (or back to queued
 * when shutdown stopped it); frees the outcome's report; answers the
 * requests waiting for the job (job_waiters.h).  Returns the state the job
 * ended in. */
ms_job_state ms_job_runner_finish(struct ms_service *service, ms_job *job,
                                  ms_job_outcome *outcome);

/* Worker thread: DATA/results/<id>, made durably; disk_full when the file
 * system has no room for a folder, io_error otherwise. */
ms_status ms_job_runner_make_result_dir(const char *result_dir, ms_error *err);

/* JSON text of an error object for the job's "error" field. */
char *ms_job_runner_error_text(ms_status code, const char *message);

#endif
