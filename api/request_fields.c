#include "request_fields.h"

ms_status ms_api_field_error(ms_error *err, const char *field, const char *format,
                             const char *text)
{
    ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL, format, field, text);
    ms_error_detail_add(err, "field", "%s", field);
    return MS_ERR_INVALID_PARAMETER;
}

ms_status ms_api_wrong_type(ms_error *err, const char *field, const char *expected)
{
    return ms_api_field_error(err, field, "field '%s' must be %s", expected);
}
