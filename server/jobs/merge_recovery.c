#include "merge_recovery.h"

#include <stdlib.h>
#include <string.h>

#include "core/format/output_file.h"
#include "merge_job.h"
#include "server/log.h"
#include "server/service.h"
#include "server/webui/webui_load.h"

/* Where the job was writing outside DATA/results; NULL when it was not (or
 * that can no longer be told). */
static char *outside_path(const ms_service *service, const ms_job *job)
{
    ms_merge_job merge;
    ms_error err;
    ms_error_clear(&err);
    char *path = NULL;
    if (ms_merge_job_parse_stored(job->request_text, &merge, &err) == MS_OK) {
        if (merge.request.load_into_webui) {
            if (service->webui != NULL)
                path = ms_webui_checkpoint_path(service->webui, job->id);
        } else if (merge.request.destination != NULL &&
                   ms_merge_job_resolve(service, &merge, &err) == MS_OK &&
                   merge.destination != NULL) {
            path = strdup(merge.destination);
        }
    }
    ms_merge_job_free(&merge);
    return path;
}

void ms_merge_recovery_remove_temporaries(const ms_service *service, const ms_job *job)
{
    if (job->kind != MS_JOB_KIND_MERGE || job->request_text == NULL)
        return;
    char *path = outside_path(service, job);
    if (path == NULL)
        return;
    ms_output_file file;
    ms_error err;
    ms_error_clear(&err);
    if (ms_output_file_prepare(&file, path, &err) == MS_OK) {
        int removed = ms_output_file_remove_leftovers(&file);
        if (removed > 0)
            ms_log("job %s: removed %d temporary file(s) of %s", job->id, removed, path);
    }
    ms_output_file_discard(&file);
    free(path);
}
