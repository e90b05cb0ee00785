/* POST /v1/merge-models (/merge-models) and POST /bbwm/merge-models.
 *
 * Both validate everything the client sent before a job exists: the body,
 * each model (found under the models roots, a safetensors file, block
 * weights that fit model A's architecture), the output name or the
 * destination.  /v1 answers 202 with the job; /bbwm holds the request until
 * the merge is written (job_waiters.h), as the web UI's own endpoint
 * answers only then. */
#include <stdlib.h>
#include <string.h>

#include "server/failpoint.h"
#include "http_worker.h"
#include "server/jobs/job_waiters.h"
#include "server/jobs/merge_job.h"
#include "server/paths.h"
#include "routes.h"
#include "server/service.h"
#include "submit.h"

typedef struct merge_submission {
    ms_submit_headers headers;
    ms_merge_job job;
    char *request_text;
    char *params_text;
    char *output_name;
} merge_submission;

static ms_status check_output_name(const ms_merge_job *job, ms_error *err)
{
    const char *name = job->request.output_name;
    if (name == NULL || ms_paths_output_name_valid(name))
        return MS_OK;
    ms_error_set(err, MS_ERR_INVALID_OUTPUT_NAME, NULL,
                 "output_name must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$ and end in "
                 ".safetensors");
    ms_error_detail_add(err, "field", "output_name");
    return MS_ERR_INVALID_OUTPUT_NAME;
}

static ms_status validate(ms_http_request *request, bool from_bbwm, merge_submission *work,
                          ms_error *err)
{
    json_t *body = NULL;
    ms_status status = ms_submit_parse_body(request, &body, err);
    if (status != MS_OK)
        return status;
    status = ms_merge_job_parse(body, from_bbwm, &work->job, err);
    if (status == MS_OK) {
        /* compact: a body padded with blanks is not kept */
        work->request_text = ms_merge_job_stored_text(body, from_bbwm);
        if (work->request_text == NULL)
            status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    }
    json_decref(body);
    if (status == MS_OK)
        status = check_output_name(&work->job, err);
    if (status == MS_OK)
        status = ms_merge_job_resolve(request->service, &work->job, err);
    if (status != MS_OK)
        return status;
    work->output_name = ms_merge_job_output_name(&work->job);
    /* a destination (or the web UI's folder) is shown as such, not as a
     * result file name */
    bool has_result_file = work->job.destination == NULL && !work->job.request.load_into_webui;
    if (work->output_name != NULL)
        work->params_text = ms_merge_job_params_text(
            &work->job, has_result_file ? work->output_name : NULL);
    if (work->output_name == NULL || work->params_text == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    return MS_OK;
}

/* On the write worker: reads the models' headers and commits to SQLite. */
static enum MHD_Result submit(ms_http_request *request, bool from_bbwm)
{
    ms_failpoint_pause(MS_FAILPOINT_SUBMIT_SLEEP);
    ms_service *service = request->service;
    /* a held request must be able to wait on a worker (see ms_http_defer) */
    if (atomic_load(&service->shutting_down) || (from_bbwm && !request->in_worker))
        return ms_submit_send_code(request, MS_ERR_SHUTTING_DOWN,
                                   "the service is shutting down; retry after the restart");
    merge_submission work;
    memset(&work, 0, sizeof work);
    ms_error err;
    ms_error_clear(&err);
    enum MHD_Result result;
    bool handled = false;
    /* the web UI extension retries nothing: no Idempotency-Key there */
    if (ms_submit_check_headers(request, !from_bbwm, &work.headers, &err) != MS_OK) {
        result = ms_http_send_error(request, &err, NULL);
        goto done;
    }
    /* A replay answers with the job even if a model is gone since. */
    pthread_mutex_lock(&service->submit_mutex);
    result = ms_submit_replay_or_conflict(request, &work.headers, &handled);
    pthread_mutex_unlock(&service->submit_mutex);
    if (handled)
        goto done;
    if (validate(request, from_bbwm, &work, &err) != MS_OK) {
        result = ms_http_send_error(request, &err, NULL);
        goto done;
    }
    result = ms_submit_job(request, MS_JOB_KIND_MERGE, work.request_text, work.params_text,
                           work.output_name, &work.headers, from_bbwm);
    work.request_text = work.params_text = work.output_name = NULL;
done:
    ms_merge_job_free(&work.job);
    free(work.request_text);
    free(work.params_text);
    free(work.output_name);
    return result;
}

static enum MHD_Result submit_v1(ms_http_request *request)
{
    return submit(request, false);
}

static enum MHD_Result submit_bbwm(ms_http_request *request)
{
    return submit(request, true);
}

enum MHD_Result ms_submit_merge(ms_http_request *request)
{
    return ms_http_defer(request, &request->service->write_worker, submit_v1);
}

enum MHD_Result ms_submit_bbwm_merge(ms_http_request *request)
{
    return ms_http_defer(request, &request->service->write_worker, submit_bbwm);
}
