/* Routing: path + method to handler, auth in front of everything but
 * /healthz.  Handlers live in routes.c (small ones), submit.c (POST),
 * download.c (result files) and models.c (GET /v1/models). */
#ifndef MS_ROUTES_H
#define MS_ROUTES_H

#include "http.h"

enum MHD_Result ms_routes_handle(ms_http_request *request);

enum MHD_Result ms_submit_resize(ms_http_request *request);
enum MHD_Result ms_submit_merge(ms_http_request *request);
enum MHD_Result ms_download_result(ms_http_request *request, const char *job_id);
enum MHD_Result ms_models_list(ms_http_request *request);

#endif
