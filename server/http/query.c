#include "query.h"

#include <errno.h>
#include <stdlib.h>

bool ms_http_parse_positive(const char *text, long long max, long long *value)
{
    if (text == NULL || *text < '0' || *text > '9')
        return false;
    char *end = NULL;
    errno = 0;
    long long parsed = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0' || parsed < 1 || parsed > max)
        return false;
    *value = parsed;
    return true;
}

enum MHD_Result ms_http_invalid_query(ms_http_request *request, const char *field,
                                      const char *message)
{
    ms_error err;
    ms_error_set(&err, MS_ERR_INVALID_PARAMETER, NULL, "%s", message);
    ms_error_detail_add(&err, "field", "%s", field);
    return ms_http_send_error(request, &err, NULL);
}
