/* A merge job on a worker thread: the stored request parsed and resolved
 * again (the tree may have changed since it was queued), then the core's
 * streamed merge into DATA/results/<id>/<output_name>, into the /bbwm
 * destination, or into the web UI's folder and loaded there
 * (webui_load.h).  Progress counts the bytes of tensor data written. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/json_text.h"
#include "api/merge_request.h"
#include "core/merge/merge.h"
#include "job_runner.h"
#include "merge_job.h"
#include "server/log.h"
#include "server/paths.h"
#include "server/service.h"
#include "server/webui/webui_load.h"

/* The report, for a /bbwm merge where its file went, for one handed to
 * the web UI what it answered. */
static char *report_text(const ms_merge_report *report, const char *destination,
                         json_t *webui_report)
{
    json_t *object = ms_api_merge_report_to_json(report);
    if (object == NULL)
        return NULL;
    if (destination != NULL)
        json_object_set_new(object, "destination", ms_api_json_text(destination));
    if (webui_report != NULL)
        json_object_set(object, "webui", webui_report);
    char *text = ms_api_json_dumps(object, 0);
    json_decref(object);
    return text;
}

/* DATA/results/<id>/<output_name>, the folder made; or the destination;
 * or a new file in the web UI's folder. */
static ms_status output_path(ms_service *service, const ms_job *job,
                             const ms_merge_job *merge, char **path, ms_error *err)
{
    if (merge->destination != NULL || merge->request.load_into_webui) {
        *path = merge->destination != NULL ? strdup(merge->destination)
                                           : ms_webui_checkpoint_path(service->webui, job->id);
        return *path != NULL ? MS_OK
                             : ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    }
    char *result_dir = ms_service_result_dir(service, job->id);
    *path = result_dir != NULL ? ms_paths_join(result_dir, job->output_name) : NULL;
    ms_status status = MS_OK;
    if (*path == NULL)
        status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    else
        status = ms_job_runner_make_result_dir(result_dir, err);
    free(result_dir);
    return status;
}

/* The web UI's part before the merge: its report, and its model unloaded
 * when asked (so that both do not hold memory at once). */
static ms_status before_merge(ms_service *service, ms_job *job, const ms_merge_job *merge,
                              json_t **webui_report, ms_error *err)
{
    if (!merge->request.load_into_webui)
        return MS_OK;
    *webui_report = ms_webui_report_new(service->webui);
    if (*webui_report == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    if (!merge->request.unload_before)
        return MS_OK;
    return ms_webui_unload(service->webui, &job->cancel, *webui_report, err);
}

/* The merge is written: the web UI loads it.  A file it did not load is
 * not kept (nobody would find it); the error answers without waiting for
 * its blocks to be freed. */
static ms_status hand_to_webui(ms_service *service, ms_job *job, const char *path,
                               json_t *webui_report, ms_error *err)
{
    ms_status status = ms_webui_load(service->webui, service->reaper, path, &job->cancel,
                                     webui_report, err);
    if (status != MS_OK && ms_file_reaper_unlinkat(service->reaper, AT_FDCWD, path) != 0)
        ms_log("job %s: cannot delete %s: %s", job->id, path, strerror(errno));
    return status;
}

void ms_merge_runner_run(ms_service *service, ms_job *job, ms_job_outcome *outcome)
{
    ms_merge_job merge;
    char *path = NULL;
    json_t *webui_report = NULL;
    outcome->status = ms_merge_job_parse_stored(job->request_text, &merge, &outcome->error);
    if (outcome->status == MS_OK)
        outcome->status = ms_merge_job_resolve(service, &merge, &outcome->error);
    if (outcome->status == MS_OK)
        outcome->status = output_path(service, job, &merge, &path, &outcome->error);
    if (outcome->status == MS_OK)
        outcome->status = before_merge(service, job, &merge, &webui_report, &outcome->error);
    if (outcome->status != MS_OK)
        goto done;
    merge.request.params.threads = service->job_threads;
    merge.request.params.rotate_cache = service->rotate_cache;
    ms_merge_inputs inputs = {merge.model_paths[0], merge.model_paths[1], merge.model_paths[2]};
    ms_job_progress context = {.service = service, .job = job};
    ms_merge_report report;
    memset(&report, 0, sizeof report);
    outcome->status = ms_merge_files(&inputs, path, &merge.request.params,
                                     ms_job_runner_progress, &context, &job->cancel, &report,
                                     &outcome->error);
    if (outcome->status == MS_OK && webui_report != NULL)
        outcome->status = hand_to_webui(service, job, path, webui_report, &outcome->error);
    if (outcome->status == MS_OK) {
        outcome->has_result = merge.destination == NULL && webui_report == NULL;
        outcome->result_bytes = report.output_bytes;
        memcpy(outcome->result_sha256, report.output_sha256, sizeof outcome->result_sha256);
        outcome->result_sha256[64] = '\0';
        outcome->report_text = report_text(&report, merge.destination, webui_report);
    }
    ms_merge_report_free(&report);
done:
    json_decref(webui_report);
    free(path);
    ms_merge_job_free(&merge);
}
