/* What a job does on a worker thread, and how its outcome lands in the job
 * (back on the loop thread). */
#ifndef MS_JOB_RUNNER_H
#define MS_JOB_RUNNER_H

#include <stdbool.h>

#include "core/error.h"
#include "core/resize.h"
#include "job.h"

struct ms_service;

typedef struct ms_job_outcome {
    ms_status status;
    ms_error error;
    bool has_report;
    ms_resize_report report;
} ms_job_outcome;

/* Loop thread: queued -> running (table + store).  False when the job is
 * gone or no longer queued (cancelled meanwhile). */
bool ms_job_runner_start(struct ms_service *service, const char *job_id, ms_job **job);

/* Worker thread: does the work.  Reads only the job's immutable fields;
 * progress goes into the job under the table lock. */
void ms_job_runner_run(struct ms_service *service, ms_job *job, ms_job_outcome *outcome);

/* Loop thread: running -> succeeded/failed/cancelled (or back to queued
 * when shutdown stopped it); frees the outcome's report. Returns the state
 * the job ended in. */
ms_job_state ms_job_runner_finish(struct ms_service *service, ms_job *job,
                                  ms_job_outcome *outcome);

/* JSON text of an error object for the job's "error" field. */
char *ms_job_runner_error_text(ms_status code, const char *message);

#endif
