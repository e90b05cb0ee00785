#include "job_runner.h"

#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/json_text.h"
#include "clock.h"
#include "failpoint.h"
#include "log.h"
#include "paths.h"
#include "service.h"

typedef struct progress_context {
    ms_service *service;
    ms_job *job;
} progress_context;

char *ms_job_runner_error_text(ms_status code, const char *message)
{
    ms_error err;
    ms_error_set(&err, code, NULL, "%s", message);
    return ms_job_json_text(ms_api_error_object(&err));
}

static void on_progress(void *user_data, size_t done, size_t total, const char *current_key)
{
    progress_context *context = user_data;
    /* escaped outside the lock: keys come from hostile files */
    char *key_text = ms_job_json_text(ms_api_json_text(current_key));
    ms_job_table_lock(&context->service->table);
    ms_job *job = context->job;
    job->progress_done = done;
    job->progress_total = total;
    char *old_key = job->current_key_text;
    job->current_key_text = key_text;
    ms_job_table_unlock(&context->service->table);
    free(old_key);
    ms_failpoint_pause(MS_FAILPOINT_PROGRESS_SLEEP);
}

static ms_status parse_request(const ms_job *job, ms_api_resize_request *request, ms_error *err)
{
    json_error_t json_error;
    json_t *body = json_loads(job->request_text, 0, &json_error);
    if (body == NULL)
        return ms_error_set(err, MS_ERR_INTERNAL, NULL, "stored request is not JSON: %s",
                            json_error.text);
    ms_status status = ms_api_resize_request_from_json(body, request, err);
    json_decref(body);
    return status;
}

bool ms_job_runner_start(ms_service *service, const char *job_id, ms_job **started)
{
    *started = NULL;
    ms_job_table_lock(&service->table);
    /* a DELETE may have cancelled (or removed) it while it waited */
    ms_job *job = ms_job_table_find(&service->table, job_id);
    if (job == NULL || job->state != MS_JOB_QUEUED) {
        ms_job_table_unlock(&service->table);
        return false;
    }
    ms_job_table_set_state(&service->table, job, MS_JOB_RUNNING);
    job->started_ms = ms_clock_now_ms();
    job->progress_done = 0;
    job->progress_total = 0;   /* the core reports (0, total) as it starts */
    free(job->current_key_text);
    job->current_key_text = NULL;
    atomic_store(&job->cancel, 0);
    job->cancel_requested = false;
    job->shutdown_cancel = false;
    ms_job *snapshot = ms_job_copy(job);
    ms_job_kind kind = job->kind;
    ms_job_table_unlock(&service->table);
    ms_service_save_job(service, snapshot);
    ms_log("job %s %s running", job_id, ms_job_kind_name(kind));
    *started = job;
    return true;
}

static void run_resize(ms_service *service, ms_job *job, ms_job_outcome *outcome)
{
    ms_api_resize_request request;
    char *input_path = NULL, *result_dir = NULL, *output_path = NULL;
    size_t root_index = 0;
    outcome->status = parse_request(job, &request, &outcome->error);
    if (outcome->status != MS_OK)
        return;
    /* Resolved again: the tree may have changed since submission. */
    const ms_serve_options *options = service->options;
    outcome->status = ms_paths_resolve_model(options->model_roots, options->model_root_count,
                                             request.model, &input_path, &root_index,
                                             &outcome->error);
    if (outcome->status != MS_OK)
        goto done;
    result_dir = ms_service_result_dir(service, job->id);
    output_path = result_dir != NULL ? ms_paths_join(result_dir, job->output_name) : NULL;
    if (output_path == NULL) {
        outcome->status = ms_error_set(&outcome->error, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
        goto done;
    }
    if (!ms_paths_make_dir(result_dir)) {
        outcome->status = ms_error_set(&outcome->error, MS_ERR_IO, NULL,
                                       "cannot create the result directory");
        goto done;
    }
    request.params.threads = service->job_threads;
    progress_context context = {service, job};
    outcome->status = ms_resize_file(input_path, output_path, &request.params, on_progress,
                                     &context, &job->cancel, &outcome->report, &outcome->error);
    outcome->has_report = outcome->status == MS_OK;
done:
    ms_api_resize_request_free(&request);
    free(input_path);
    free(result_dir);
    free(output_path);
}

void ms_job_runner_run(ms_service *service, ms_job *job, ms_job_outcome *outcome)
{
    memset(outcome, 0, sizeof *outcome);
    switch (job->kind) {
    case MS_JOB_KIND_RESIZE:
        run_resize(service, job, outcome);
        break;
    default:
        outcome->status = ms_error_set(&outcome->error, MS_ERR_NOT_IMPLEMENTED, NULL,
                                       "job kind %s is not implemented",
                                       ms_job_kind_name(job->kind));
        break;
    }
}

/* Shutdown stopped the job: it runs again after the restart. */
static void back_to_queued(ms_service *service, ms_job *job)
{
    ms_job_table_set_state(&service->table, job, MS_JOB_QUEUED);
    job->started_ms = 0;
    job->progress_done = 0;
    job->progress_total = 0;
    free(job->current_key_text);
    job->current_key_text = NULL;
}

static void set_text(char **slot, char *text)
{
    free(*slot);
    *slot = text;
}

ms_job_state ms_job_runner_finish(ms_service *service, ms_job *job, ms_job_outcome *outcome)
{
    /* JSON built before taking the lock: reports can be long */
    char *report_text = outcome->has_report
                            ? ms_job_json_text(ms_api_resize_report_to_json(&outcome->report))
                            : NULL;
    char *error_text = NULL;
    if (outcome->status == MS_ERR_CANCELLED)
        error_text = ms_job_runner_error_text(MS_ERR_CANCELLED, "the job was cancelled");
    else if (outcome->status != MS_OK)
        error_text = ms_job_json_text(ms_api_error_object(&outcome->error));
    int64_t now = ms_clock_now_ms();

    ms_job_table_lock(&service->table);
    int64_t started = job->started_ms;
    if (outcome->status == MS_OK) {
        ms_job_table_set_state(&service->table, job, MS_JOB_SUCCEEDED);
        job->has_result = true;
        job->result_bytes = outcome->report.output_bytes;
        memcpy(job->result_sha256, outcome->report.output_sha256, sizeof job->result_sha256);
        job->result_sha256[64] = '\0';
        job->progress_done = job->progress_total;
        ms_shared_text_release(job->report);
        job->report = ms_shared_text_new(report_text);
    } else if (outcome->status == MS_ERR_CANCELLED && job->shutdown_cancel &&
               !job->cancel_requested) {
        back_to_queued(service, job);
    } else {
        ms_job_table_set_state(&service->table, job, outcome->status == MS_ERR_CANCELLED
                                                         ? MS_JOB_CANCELLED : MS_JOB_FAILED);
        set_text(&job->error_text, error_text);
        error_text = NULL;
    }
    if (job->state != MS_JOB_QUEUED)
        job->finished_ms = now;
    ms_job_state state = job->state;
    /* Once final, a DELETE may free the job: only the snapshot is used below. */
    ms_job *snapshot = ms_job_copy(job);
    ms_job_table_unlock(&service->table);
    if (snapshot == NULL)
        goto done;

    if (state != MS_JOB_SUCCEEDED) {
        char *result_dir = ms_service_result_dir(service, snapshot->id);
        if (result_dir != NULL)
            ms_paths_remove_dir(result_dir);
        free(result_dir);
    }
    if (state != MS_JOB_QUEUED)
        ms_metrics_observe_duration(&service->metrics, snapshot->kind,
                                    (double)(now - started) / 1000.0);
    if (outcome->status == MS_OK || state == MS_JOB_QUEUED)
        ms_log("job %s %s %s", snapshot->id, ms_job_kind_name(snapshot->kind),
               ms_job_state_name(state));
    else
        ms_log("job %s %s %s code=%s %s", snapshot->id, ms_job_kind_name(snapshot->kind),
               ms_job_state_name(state), ms_status_name(outcome->status),
               outcome->error.message);
    ms_service_save_job(service, snapshot);
done:
    free(report_text);
    free(error_text);
    if (outcome->has_report)
        ms_resize_report_free(&outcome->report);
    return state;
}
