/* JSON requests to core parameters, core results back to JSON.
 * Shared by the command line (--json) and the HTTP service, so both speak
 * exactly the same shapes (../shared/docs/api.md). */
#ifndef MS_API_H
#define MS_API_H

#include <jansson.h>

#include "core/error.h"
#include "core/model/inspect.h"
#include "core/lora/resize.h"

/* HTTP status fitting an error code (400, 404, 409, 413, 415, 422, 429, 500...). */
int ms_api_http_status(ms_status code);

/* {"code", "message", "key"?, "details"?}: the object a failed job carries. */
json_t *ms_api_error_object(const ms_error *err);

/* {"error": {...}}: every error response body. */
json_t *ms_api_error_body(const ms_error *err);

typedef struct ms_api_resize_request {
    char *model;          /* as sent: a path relative to a models root */
    char *output_name;    /* NULL when absent */
    ms_resize_params params;
} ms_api_resize_request;

/* Strict: body must be an object; unknown fields, wrong types, out-of-range
 * values are invalid_parameter with details.field naming the field. */
ms_status ms_api_resize_request_from_json(const json_t *body, ms_api_resize_request *request,
                                          ms_error *err);
void ms_api_resize_request_free(ms_api_resize_request *request);

/* The job's "params" object (normalised, defaults filled in). */
json_t *ms_api_resize_request_to_json(const ms_api_resize_request *request);

/* The job's "report": {"modules": [{name, old_rank, new_rank, old_alpha,
 * new_alpha, sum_retained, fro_retained, max_ratio, conv}], "summary":
 * {module_count, copied_tensor_count, fro_retained_mean, fro_retained_std},
 * "model_hash"}.  Non-finite numbers become null. */
json_t *ms_api_resize_report_to_json(const ms_resize_report *report);

/* {"kind", "architecture", "lora": {spelling, modules, conv_modules,
 * rank_min, rank_max}?} */
json_t *ms_api_model_summary_to_json(const ms_model_summary *summary);

#endif
