#include "query.h"

enum MHD_Result ms_http_invalid_query(ms_http_request *request, const char *field,
                                      const char *message)
{
    ms_error err;
    ms_error_set(&err, MS_ERR_INVALID_PARAMETER, NULL, "%s", message);
    ms_error_detail_add(&err, "field", "%s", field);
    return ms_http_send_error(request, &err, NULL);
}
