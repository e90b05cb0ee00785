/* Query parameters shared by the paged listings (GET /v1/jobs, GET
 * /v1/models): page sizes and the one answer for a bad parameter. */
#ifndef MS_HTTP_QUERY_H
#define MS_HTTP_QUERY_H

#include <stdbool.h>

#include "http.h"
#include "request_values.h"   /* ms_http_parse_positive */

/* 422 invalid_parameter naming the query parameter in details.field. */
enum MHD_Result ms_http_invalid_query(ms_http_request *request, const char *field,
                                      const char *message);

#endif
