/* A merge handed to the web UI: /bbwm destination "memory" and /v1
 * load_into_webui (merge_runner.c), on the job's own thread.
 *
 * The web UI keeps loaded checkpoints in a cache keyed by name, so each
 * merge gets a new one: --webui-checkpoints/mergesvd-<job id>.safetensors
 * (written through a temporary and a rename: the web UI never lists a
 * partial file).  Then:
 *   1. POST /sdapi/v1/refresh-checkpoints: the web UI lists its folders again;
 *   2. GET /sdapi/v1/sd-models: the entry whose file is ours gives the title
 *      the web UI knows it by ("sub/name.safetensors [hash]"; the name is
 *      relative to its models folder, which the service cannot know);
 *   3. POST /sdapi/v1/options {"sd_model_checkpoint": title}: the web UI loads
 *      it and answers when it has.
 * With unload_before, POST /sdapi/v1/unload-checkpoint comes before the
 * merge, so that the web UI's model and the merge do not hold memory at
 * once.  After a load succeeds, only the newest --webui-keep of our files
 * stay in the folder (other files there are never touched).
 *
 * Each call lands in the job's report ("webui": what was called, what the
 * web UI answered); a failing one fails the job with webui_unreachable or
 * webui_error (webui_client.h). */
#ifndef MS_WEBUI_LOAD_H
#define MS_WEBUI_LOAD_H

#include <jansson.h>
#include <stdatomic.h>

#include "core/error.h"
#include "server/file_reaper.h"
#include "webui_client.h"

/* --webui-checkpoints/mergesvd-<job_id>.safetensors; malloced (NULL when
 * out of memory). */
char *ms_webui_checkpoint_path(const ms_webui *webui, const char *job_id);

/* A new report object: {"url", "calls": []}; NULL when out of memory. */
json_t *ms_webui_report_new(const ms_webui *webui);

/* Step 0 (unload_before). */
ms_status ms_webui_unload(const ms_webui *webui, const atomic_int *cancel, json_t *report,
                          ms_error *err);

/* Steps 1 to 3 for the merge written at path, then the older files beyond
 * --webui-keep are deleted ("deleted" in the report), their blocks freed
 * on reaper's thread (file_reaper.h; may be NULL). */
ms_status ms_webui_load(const ms_webui *webui, ms_file_reaper *reaper, const char *path,
                        const atomic_int *cancel, json_t *report, ms_error *err);

#endif
