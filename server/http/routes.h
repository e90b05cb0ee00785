/* Routing: path + method to handler, auth in front of everything but
 * /healthz.  Handlers live in routes.c (small ones), submit.c and
 * submit_merge.c (POST),
 * download.c (result files) and models.c (GET /v1/models). */
#ifndef MS_ROUTES_H
#define MS_ROUTES_H

#include "http.h"

/* For an authorized request (below), once its body is in. */
enum MHD_Result ms_routes_handle(ms_http_request *request);

/* With --token-file, a request without the right bearer token (/healthz
 * excepted) is answered 401 here.  The HTTP layer asks at a request's first
 * callback, before reading a body, so that strangers cannot make it buffer
 * a megabyte each; the answer ends the connection, as every answer does
 * (the unread body must not be taken for the next request). */
bool ms_routes_authorized(ms_http_request *request);
enum MHD_Result ms_routes_refuse_unauthorized(ms_http_request *request);

/* Whether a request's URI as sent may be passed to the web UI: under
 * /sdapi/ or /bbwm/, /bbwm/merge-models excepted (passthrough.h). */
bool ms_routes_may_pass_through(const char *uri);

/* The largest body the request may send: a pass-through's (tens of MB of
 * base64 images) when a web UI is attached, else MS_HTTP_MAX_BODY. */
size_t ms_routes_body_limit(const ms_http_request *request);

enum MHD_Result ms_submit_resize(ms_http_request *request);
enum MHD_Result ms_submit_merge(ms_http_request *request);
enum MHD_Result ms_submit_bbwm_merge(ms_http_request *request);
enum MHD_Result ms_download_result(ms_http_request *request, const char *job_id);
enum MHD_Result ms_models_list(ms_http_request *request);

#endif
