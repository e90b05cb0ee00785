/* GET /v1/models: one page of the safetensors files under the models roots,
 * each classified from its header (model_index.h keeps what it read). */
#include <stdlib.h>

#include "api/api.h"
#include "api/json_text.h"
#include "model_index.h"
#include "query.h"
#include "routes.h"
#include "server/failpoint.h"
#include "server/service.h"

enum { DEFAULT_PAGE = 100, MAX_PAGE = 1000 };

static json_t *page_body(const ms_model_page *page)
{
    json_t *body = json_object();
    json_object_set(body, "models", page->models);
    json_t *cursor = json_null();
    if (page->more) {
        char *text = ms_model_cursor_format(&page->next);
        cursor = text != NULL ? json_string(text) : NULL;
        free(text);
    }
    if (body == NULL || json_object_set_new(body, "next_cursor", cursor) != 0) {
        json_decref(body);
        return NULL;   /* a page without its cursor would hide the rest */
    }
    json_object_set_new(body, "complete", json_boolean(page->not_reached_count == 0));
    json_object_set(body, "not_reached", page->not_reached);
    json_object_set_new(body, "not_reached_count",
                        json_integer((json_int_t)page->not_reached_count));
    return body;
}

/* On the listing worker, never the read worker: a poll of a finished job
 * does not wait behind a walk of a large models folder. */
static enum MHD_Result list_models(ms_http_request *request)
{
    ms_failpoint_hold_listing();
    const ms_serve_options *options = request->service->options;
    long long limit = DEFAULT_PAGE;
    const char *limit_text = ms_http_query(request, "limit");
    const char *cursor_text = ms_http_query(request, "cursor");
    if (limit_text != NULL && !ms_http_parse_positive(limit_text, MAX_PAGE, &limit))
        return ms_http_invalid_query(request, "limit", "limit must be an integer from 1 to 1000");
    ms_model_position after = {0, NULL};
    if (cursor_text != NULL &&
        !ms_model_cursor_parse(cursor_text, options->model_root_count, &after))
        return ms_http_invalid_query(request, "cursor", "cursor must be a next_cursor value");
    ms_model_page page;
    ms_error err;
    ms_status status = ms_model_index_page(request->service->model_index, options->model_roots,
                                           options->model_root_count,
                                           cursor_text != NULL ? &after : NULL, (size_t)limit,
                                           &page, &err);
    free(after.path);
    if (status != MS_OK)
        return ms_http_send_error(request, &err, NULL);
    json_t *body = page_body(&page);
    ms_model_page_clear(&page);
    if (body == NULL)
        return MHD_NO;   /* out of memory: drop the connection */
    char *text = ms_api_json_dumps(body, 0);
    json_decref(body);
    return ms_http_send_json(request, 200, text, NULL);
}

enum MHD_Result ms_models_list(ms_http_request *request)
{
    return ms_http_defer(request, &request->service->listing_worker, list_models);
}
