/* Query parameters shared by the paged listings (GET /v1/jobs, GET
 * /v1/models): page sizes and the one answer for a bad parameter. */
#ifndef MS_HTTP_QUERY_H
#define MS_HTTP_QUERY_H

#include <stdbool.h>

#include "http.h"

/* Decimal digits only, from 1 to max: strtoll alone would take " 1"
 * (leading blanks) or "+1". */
bool ms_http_parse_positive(const char *text, long long max, long long *value);

/* 422 invalid_parameter naming the query parameter in details.field. */
enum MHD_Result ms_http_invalid_query(ms_http_request *request, const char *field,
                                      const char *message);

#endif
