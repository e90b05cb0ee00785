#include "request_fields.h"

#include <math.h>
#include <string.h>

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

ms_status ms_api_not_an_integer(ms_error *err, const char *field, const json_t *value)
{
    /* 2^63: what no json_int_t reaches */
    static const double past_int64 = 9223372036854775808.0;
    if (json_is_real(value)) {
        double number = json_real_value(value);
        if (number == floor(number) && fabs(number) >= past_int64)
            return ms_api_field_error(err, field, "field '%s' is out of range (%s)",
                                      "does not fit a 64-bit integer");
    }
    return ms_api_wrong_type(err, field, "an integer");
}

ms_status ms_api_read_string(const json_t *value, const char *field, const char **out,
                             ms_error *err)
{
    if (!json_is_string(value))
        return ms_api_wrong_type(err, field, "a string");
    const char *text = json_string_value(value);
    if (strlen(text) != json_string_length(value))
        return ms_api_field_error(err, field, "field '%s' %s", "contains a NUL character");
    *out = text;
    return MS_OK;
}
