/* Merge requests and reports as JSON (../shared/docs/api.md).
 *
 * Two bodies ask for a merge:
 * - POST /v1/merge-models: ours, strict like the resize body (a typo must
 *   not fall back to a default);
 * - POST /bbwm/merge-models: the sd-webui-bayesian-merger extension's body,
 *   lenient (its forks add fields; its bools may arrive as 0/1), so that the
 *   extension works by changing only its URL.
 * Both give the same request; the job's "params" echo it normalised. */
#ifndef MS_API_MERGE_REQUEST_H
#define MS_API_MERGE_REQUEST_H

#include <jansson.h>
#include <stdbool.h>

#include "core/error.h"
#include "core/merge/merge.h"

typedef struct ms_api_merge_request {
    char *model_a;            /* as sent: a path under a models root */
    char *model_b;
    char *model_c;            /* NULL for two-model methods */
    char *output_name;        /* /v1 only; NULL when absent */
    ms_merge_params params;   /* params.method names the method (ms_merge_method.name) */
    bool load_into_webui;     /* /v1 load_into_webui, /bbwm destination "memory": the merge
                                 is handed to the web UI (serve --webui) */
    /* /bbwm only */
    char *destination;        /* NULL when absent or "memory"; a file path (relative: beside
                                 model A) */
    bool unload_before;       /* with load_into_webui: the web UI unloads its model first */
} ms_api_merge_request;

/* The /v1/merge-models body.  invalid_parameter with details.field naming
 * the field for: a body that is not an object, an unknown field, a wrong
 * type, a missing or empty model_a/model_b/merge_method, an unknown method
 * (details.accepted lists the methods), model_c missing for a three-model
 * method or given for a two-model one, precision not 16/32, an unknown
 * nan_policy, block weights that are a list of neither 25 nor 19 numbers
 * (details.length, details.accepted "25 or 19") or an object with an unknown
 * block name (details.block).  unsupported_option (422) for "rotate". */
ms_status ms_api_merge_request_from_json(const json_t *body, ms_api_merge_request *request,
                                         ms_error *err);

/* The /bbwm/merge-models body: the same checks on the fields both bodies
 * share, unknown fields ignored, 0/1 accepted for bools, integral numbers
 * for integers; model_c "" or given to a two-model method is dropped (as
 * sd-meh leaves it unused); device, work_device, threads, re_basin_iterations and
 * unload_before are checked for type and otherwise not used by a merge
 * (the service chooses its threads).  destination "memory" sets
 * load_into_webui (the service refuses it when no web UI is attached).
 * unsupported_option for re_basin true; invalid_parameter for a destination
 * ending in ".ckpt" (safetensors only). */
ms_status ms_api_bbwm_request_from_json(const json_t *body, ms_api_merge_request *request,
                                        ms_error *err);

/* Frees the strings; the struct may then be reused or dropped. */
void ms_api_merge_request_free(ms_api_merge_request *request);

/* The job's "params": model_a, model_b, model_c, merge_method, base_alpha,
 * base_beta, alpha, beta (null, a list, or an object by block name, as
 * given), precision, weights_clip, prune, nan_policy, output_name,
 * load_into_webui, and destination when one was given. */
json_t *ms_api_merge_request_to_json(const ms_api_merge_request *request);

/* The job's "report": {"architecture", "keys": {"merged", "copied_from_a",
 * "taken_from_b"}, "nan_keys": [...], "blocks": [{"block", "alpha",
 * "beta", "keys"}], "seconds"}.  "block" is "base", a list position (a
 * number) or a block name, after report->block_form. */
json_t *ms_api_merge_report_to_json(const ms_merge_report *report);

#endif
