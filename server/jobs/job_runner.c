#include "job_runner.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/format/output_file.h"
#include "api/json_text.h"
#include "server/clock.h"
#include "server/failpoint.h"
#include "server/log.h"
#include "server/paths.h"
#include "server/service.h"

char *ms_job_runner_error_text(ms_status code, const char *message)
{
    ms_error err;
    ms_error_set(&err, code, NULL, "%s", message);
    return ms_job_json_text(ms_api_error_object(&err));
}

/* At a bounded rate (job_runner.h); the job's id never changes, so it is
 * read without the table lock. */
static void save_progress(ms_job_progress *context, size_t done, size_t total)
{
    double now = ms_clock_monotonic_ms();
    if (context->saved_once && now - context->saved_at_ms < MS_JOB_PROGRESS_SAVE_INTERVAL_MS)
        return;
    context->saved_once = true;
    context->saved_at_ms = now;
    ms_error err;
    if (ms_job_store_save_progress(context->service->store, context->job->id, done, total,
                                   &err) != MS_OK &&
        !context->save_failure_logged) {
        context->save_failure_logged = true;
        ms_log("job %s: saving its progress failed: %s", context->job->id, err.message);
    }
}

void ms_job_runner_progress(void *user_data, size_t done, size_t total, const char *current_key)
{
    ms_job_progress *context = user_data;
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
    save_progress(context, done, total);
    ms_failpoint_pause(MS_FAILPOINT_PROGRESS_SLEEP);
}

ms_status ms_job_runner_make_result_dir(const char *result_dir, ms_error *err)
{
    errno = 0;
    if (ms_paths_make_dir_durable(result_dir))
        return MS_OK;
    /* a full disk refuses a new folder too (ext4 needs a block for it) */
    return ms_output_file_io_error(err, errno != 0 ? errno : EIO, "create",
                                   "the result directory");
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
    outcome->status = ms_job_runner_make_result_dir(result_dir, &outcome->error);
    if (outcome->status != MS_OK)
        goto done;
    request.params.threads = service->job_threads;
    ms_job_progress context = {.service = service, .job = job};
    ms_resize_report report;
    outcome->status = ms_resize_file(input_path, output_path, &request.params,
                                     ms_job_runner_progress, &context, &job->cancel, &report,
                                     &outcome->error);
    if (outcome->status == MS_OK) {
        outcome->has_result = true;
        outcome->result_bytes = report.output_bytes;
        memcpy(outcome->result_sha256, report.output_sha256, 64);
        outcome->result_sha256[64] = '\0';
        /* JSON built here, not on the loop thread: reports can be long */
        outcome->report_text = ms_job_json_text(ms_api_resize_report_to_json(&report));
        ms_resize_report_free(&report);
    }
done:
    ms_api_resize_request_free(&request);
    free(input_path);
    free(result_dir);
    free(output_path);
}

void ms_job_runner_run(ms_service *service, ms_job *job, ms_job_outcome *outcome)
{
    memset(outcome, 0, sizeof *outcome);
    /* the space of files deleted before (the web UI's older merges, expired
     * results) is free before this job checks the disk for its output */
    ms_file_reaper_wait_idle(service->reaper);
    switch (job->kind) {
    case MS_JOB_KIND_RESIZE:
        run_resize(service, job, outcome);
        break;
    case MS_JOB_KIND_MERGE:
        ms_merge_runner_run(service, job, outcome);
        break;
    default:
        outcome->status = ms_error_set(&outcome->error, MS_ERR_NOT_IMPLEMENTED, NULL,
                                       "job kind %s is not implemented",
                                       ms_job_kind_name(job->kind));
        break;
    }
}

/* A finished job's new fields.  They go to a copy first, the copy to the
 * store, and only then to the job in the table: a state a client has seen
 * is one a restart finds (a succeeded job shown before its commit, then
 * killed, came back failed, its downloaded file deleted). */
typedef struct finished_fields {
    ms_job_state state;
    bool back_to_queued;         /* shutdown stopped it: it runs after the restart */
    bool has_result;
    uint64_t result_bytes;
    char result_sha256[65];
    char *error_text;            /* JSON error object, or NULL */
    ms_shared_text *report;      /* JSON report, or NULL */
    int64_t finished_ms;
} finished_fields;

/* table: the job's table, or NULL when job is a copy outside it. */
static void apply_fields(ms_job_table *table, ms_job *job, const finished_fields *fields)
{
    if (table != NULL)
        ms_job_table_set_state(table, job, fields->state);
    else
        job->state = fields->state;
    if (fields->back_to_queued) {
        job->started_ms = 0;
        job->progress_done = 0;
        job->progress_total = 0;
        free(job->current_key_text);
        job->current_key_text = NULL;
        return;
    }
    job->finished_ms = fields->finished_ms;
    job->has_result = fields->has_result;
    if (fields->has_result) {
        job->result_bytes = fields->result_bytes;
        memcpy(job->result_sha256, fields->result_sha256, sizeof job->result_sha256);
        job->progress_done = job->progress_total;
    }
    if (fields->error_text != NULL) {
        free(job->error_text);
        job->error_text = strdup(fields->error_text);
    }
    ms_shared_text_release(job->report);
    job->report = ms_shared_text_retain(fields->report);
}

/* Called with the table locked: what the outcome makes of the job. */
static void decide_fields(const ms_job *job, ms_job_outcome *outcome, char **error_text,
                          int64_t now, finished_fields *fields)
{
    memset(fields, 0, sizeof *fields);
    fields->finished_ms = now;
    if (outcome->status == MS_OK) {
        fields->state = MS_JOB_SUCCEEDED;
        fields->has_result = outcome->has_result;
        fields->result_bytes = outcome->result_bytes;
        memcpy(fields->result_sha256, outcome->result_sha256, sizeof fields->result_sha256);
        fields->report = ms_shared_text_new(outcome->report_text);
    } else if (outcome->status == MS_ERR_CANCELLED && job->shutdown_cancel &&
               !job->cancel_requested) {
        fields->state = MS_JOB_QUEUED;
        fields->back_to_queued = true;
    } else {
        fields->state = outcome->status == MS_ERR_CANCELLED ? MS_JOB_CANCELLED : MS_JOB_FAILED;
        fields->error_text = *error_text;
        *error_text = NULL;
    }
}

/* The store did not take a final state (disk full): the job fails with
 * io_error instead, so that memory, store (running: "interrupted" after a
 * restart) and the result folder do not disagree.  Best effort: the store
 * may refuse this too. */
static void record_failed(ms_service *service, ms_job *snapshot, finished_fields *fields,
                          const ms_error *store_error)
{
    ms_log("job %s: recording its outcome failed (%s): failed instead", snapshot->id,
           store_error->message);
    ms_error err;
    ms_error_set(&err, MS_ERR_IO, NULL, "the job's outcome could not be recorded: %s",
                 store_error->message);
    free(fields->error_text);
    fields->error_text = ms_job_json_text(ms_api_error_object(&err));
    ms_shared_text_release(fields->report);
    fields->report = NULL;
    fields->has_result = false;
    fields->state = MS_JOB_FAILED;
    apply_fields(NULL, snapshot, fields);
    ms_error ignored;
    ms_job_store_update(service->store, snapshot, &ignored);
}

static void log_finished(const ms_job *snapshot, const ms_job_outcome *outcome)
{
    ms_job_state state = snapshot->state;
    if ((outcome->status == MS_OK && state == MS_JOB_SUCCEEDED) || state == MS_JOB_QUEUED)
        ms_log("job %s %s %s", snapshot->id, ms_job_kind_name(snapshot->kind),
               ms_job_state_name(state));
    else if (outcome->status != MS_OK)
        ms_log("job %s %s %s code=%s %s", snapshot->id, ms_job_kind_name(snapshot->kind),
               ms_job_state_name(state), ms_status_name(outcome->status),
               outcome->error.message);
}

ms_job_state ms_job_runner_finish(ms_service *service, ms_job *job, ms_job_outcome *outcome)
{
    char job_id[MS_JOB_ID_LENGTH + 1];
    memcpy(job_id, job->id, sizeof job_id);
    char *error_text = NULL;
    if (outcome->status == MS_ERR_CANCELLED)
        error_text = ms_job_runner_error_text(MS_ERR_CANCELLED, "the job was cancelled");
    else if (outcome->status != MS_OK)
        error_text = ms_job_json_text(ms_api_error_object(&outcome->error));
    int64_t now = ms_clock_now_ms();

    finished_fields fields;
    ms_job_table_lock(&service->table);
    int64_t started = job->started_ms;
    decide_fields(job, outcome, &error_text, now, &fields);
    ms_job *snapshot = ms_job_copy(job);
    ms_job_table_unlock(&service->table);
    ms_job_state state = fields.state;
    if (snapshot == NULL) {
        /* out of memory: shown, not recorded ("interrupted" after a restart) */
        ms_job_table_lock(&service->table);
        apply_fields(&service->table, job, &fields);
        ms_job_table_unlock(&service->table);
        goto done;
    }

    apply_fields(NULL, snapshot, &fields);
    ms_error err;
    bool committed = ms_job_store_update(service->store, snapshot, &err) == MS_OK;
    if (!committed && ms_job_state_is_final(fields.state))
        record_failed(service, snapshot, &fields, &err);
    else if (!committed)
        ms_log("job %s: saving the record failed: %s", snapshot->id, err.message);
    state = fields.state;
    /* A running job is never freed by a DELETE (that only cancels it): job
     * is still the table's. */
    ms_job_table_lock(&service->table);
    apply_fields(&service->table, job, &fields);
    if (committed && job->report != NULL) {
        /* in the store now: memory does not keep every job's report */
        ms_shared_text_release(job->report);
        job->report = NULL;
        job->report_in_store = true;
    }
    ms_job_table_unlock(&service->table);

    if (state != MS_JOB_SUCCEEDED) {
        char *result_dir = ms_service_result_dir(service, snapshot->id);
        /* here, not on the reaper: the reserve below wants the space now */
        if (result_dir != NULL)
            ms_paths_remove_dir(result_dir, NULL);
        free(result_dir);
    }
    /* the space a failed job's output took may be room for the reserve its
     * outcome (or an earlier one) used up; nothing is done when it is whole */
    ms_error reserve_error;
    ms_job_store_restore_reserve(service->store, &reserve_error);
    if (state != MS_JOB_QUEUED)
        ms_metrics_observe_duration(&service->metrics, snapshot->kind,
                                    (double)(now - started) / 1000.0);
    log_finished(snapshot, outcome);
    ms_job_free(snapshot);
done:
    ms_job_waiters_job_ended(service, job_id, state, fields.error_text);
    free(fields.error_text);
    ms_shared_text_release(fields.report);
    free(error_text);
    free(outcome->report_text);
    outcome->report_text = NULL;
    return state;
}
