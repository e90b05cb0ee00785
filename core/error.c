#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const status_names[MS_STATUS_COUNT] = {
    [MS_OK] = "ok",
    [MS_ERR_INVALID_PARAMETER] = "invalid_parameter",
    [MS_ERR_OUT_OF_MEMORY] = "out_of_memory",
    [MS_ERR_IO] = "io_error",
    [MS_ERR_DISK_FULL] = "disk_full",
    [MS_ERR_NOT_FOUND] = "model_not_found",
    [MS_ERR_CANCELLED] = "cancelled",
    [MS_ERR_INTERNAL] = "internal_error",
    [MS_ERR_FILE_TOO_SMALL] = "file_too_small",
    [MS_ERR_HEADER_TOO_LARGE] = "header_too_large",
    [MS_ERR_HEADER_NOT_JSON] = "header_not_json",
    [MS_ERR_HEADER_NOT_OBJECT] = "header_not_object",
    [MS_ERR_DUPLICATE_KEY] = "duplicate_key",
    [MS_ERR_BAD_TENSOR_ENTRY] = "bad_tensor_entry",
    [MS_ERR_UNSUPPORTED_DTYPE] = "unsupported_dtype",
    [MS_ERR_SIZE_MISMATCH] = "size_mismatch",
    [MS_ERR_OFFSETS_OUT_OF_RANGE] = "offsets_out_of_range",
    [MS_ERR_OVERLAPPING_TENSORS] = "overlapping_tensors",
    [MS_ERR_DATA_HOLE] = "data_hole",
    [MS_ERR_BAD_METADATA] = "bad_metadata",
    [MS_ERR_INTEGER_OVERFLOW] = "integer_overflow",
    [MS_ERR_SHAPE_MISMATCH] = "shape_mismatch",
    [MS_ERR_RANK_MISMATCH] = "rank_mismatch",
    [MS_ERR_NAN_DETECTED] = "nan_detected",
    [MS_ERR_LAPACK] = "lapack_failure",
    [MS_ERR_NOT_A_LORA] = "not_a_lora",
    [MS_ERR_DEGENERATE_ROTATION] = "degenerate_rotation",
    [MS_ERR_INVALID_JSON] = "invalid_json",
    [MS_ERR_UNSUPPORTED_MEDIA_TYPE] = "unsupported_media_type",
    [MS_ERR_BODY_TOO_LARGE] = "body_too_large",
    [MS_ERR_PATH_OUTSIDE_MODELS] = "path_outside_models",
    [MS_ERR_INVALID_OUTPUT_NAME] = "invalid_output_name",
    [MS_ERR_JOB_NOT_FOUND] = "job_not_found",
    [MS_ERR_ROUTE_NOT_FOUND] = "not_found",
    [MS_ERR_METHOD_NOT_ALLOWED] = "method_not_allowed",
    [MS_ERR_RESULT_NOT_READY] = "result_not_ready",
    [MS_ERR_IDEMPOTENCY_CONFLICT] = "idempotency_conflict",
    [MS_ERR_RANGE_NOT_SATISFIABLE] = "range_not_satisfiable",
    [MS_ERR_QUEUE_FULL] = "queue_full",
    [MS_ERR_UNAUTHORIZED] = "unauthorized",
    [MS_ERR_INTERRUPTED] = "interrupted",
    [MS_ERR_SHUTTING_DOWN] = "shutting_down",
    [MS_ERR_NOT_IMPLEMENTED] = "not_implemented",
    [MS_ERR_UNSUPPORTED_OPTION] = "unsupported_option",
    [MS_ERR_RESULT_EXPIRED] = "result_expired",
    [MS_ERR_WEBUI_UNREACHABLE] = "webui_unreachable",
    [MS_ERR_WEBUI_ERROR] = "webui_error",
    [MS_ERR_BAD_REQUEST] = "bad_request",
    [MS_ERR_URI_TOO_LONG] = "uri_too_long",
    [MS_ERR_HEADERS_TOO_LARGE] = "headers_too_large",
    [MS_ERR_HTTP_VERSION_NOT_SUPPORTED] = "http_version_not_supported",
};

const char *ms_status_name(ms_status code)
{
    if ((int)code < 0 || code >= MS_STATUS_COUNT || status_names[code] == NULL)
        return "internal_error";
    return status_names[code];
}

void ms_error_clear(ms_error *err)
{
    if (err != NULL)
        memset(err, 0, sizeof *err);
}

ms_status ms_error_set(ms_error *err, ms_status code, const char *key,
                       const char *format, ...)
{
    if (err == NULL)
        return code;
    ms_error_clear(err);
    err->code = code;
    if (key != NULL)
        snprintf(err->key, sizeof err->key, "%s", key);
    va_list args;
    va_start(args, format);
    vsnprintf(err->message, sizeof err->message, format, args);
    va_end(args);
    return code;
}

/* "%", then flags, width, precision and length, then one numeric
 * conversion, and nothing else. */
static int is_numeric_format(const char *format)
{
    if (*format++ != '%')
        return 0;
    format += strspn(format, "-+ #0123456789.hljztL");
    return *format != '\0' && strchr("diouxXeEfgGaA", *format) != NULL && format[1] == '\0';
}

void ms_error_detail_add(ms_error *err, const char *name, const char *format, ...)
{
    if (err == NULL || err->detail_count >= MS_ERROR_MAX_DETAILS)
        return;
    ms_error_detail *detail = &err->details[err->detail_count++];
    snprintf(detail->name, sizeof detail->name, "%s", name);
    detail->is_number = is_numeric_format(format);
    va_list args;
    va_start(args, format);
    vsnprintf(detail->value, sizeof detail->value, format, args);
    va_end(args);
}
