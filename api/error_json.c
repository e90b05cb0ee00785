/* Error codes to HTTP statuses and to the one JSON error shape. */
#include "api.h"
#include "json_text.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The safetensors container codes: clients see one code, bad_safetensors,
 * and the specific malformation in details.reason (service contract). */
static bool is_container_code(ms_status code)
{
    switch (code) {
    case MS_ERR_FILE_TOO_SMALL:
    case MS_ERR_HEADER_TOO_LARGE:
    case MS_ERR_HEADER_NOT_JSON:
    case MS_ERR_HEADER_NOT_OBJECT:
    case MS_ERR_DUPLICATE_KEY:
    case MS_ERR_BAD_TENSOR_ENTRY:
    case MS_ERR_SIZE_MISMATCH:
    case MS_ERR_OFFSETS_OUT_OF_RANGE:
    case MS_ERR_OVERLAPPING_TENSORS:
    case MS_ERR_DATA_HOLE:
    case MS_ERR_BAD_METADATA:
    case MS_ERR_INTEGER_OVERFLOW:
        return true;
    default:
        return false;
    }
}

int ms_api_http_status(ms_status code)
{
    if (is_container_code(code))
        return 422;
    switch (code) {
    case MS_OK:
        return 200;
    case MS_ERR_INVALID_JSON:
    case MS_ERR_BAD_REQUEST:
        return 400;
    case MS_ERR_UNAUTHORIZED:
        return 401;
    case MS_ERR_NOT_FOUND:
    case MS_ERR_JOB_NOT_FOUND:
    case MS_ERR_ROUTE_NOT_FOUND:
        return 404;
    case MS_ERR_METHOD_NOT_ALLOWED:
        return 405;
    case MS_ERR_RESULT_NOT_READY:
    case MS_ERR_IDEMPOTENCY_CONFLICT:
    case MS_ERR_CANCELLED:
        return 409;
    case MS_ERR_RESULT_EXPIRED:
        return 410;
    case MS_ERR_BODY_TOO_LARGE:
        return 413;
    case MS_ERR_URI_TOO_LONG:
        return 414;
    case MS_ERR_UNSUPPORTED_MEDIA_TYPE:
        return 415;
    case MS_ERR_RANGE_NOT_SATISFIABLE:
        return 416;
    case MS_ERR_UNSUPPORTED_DTYPE:
    case MS_ERR_SHAPE_MISMATCH:
    case MS_ERR_RANK_MISMATCH:
    case MS_ERR_NAN_DETECTED:
    case MS_ERR_NOT_A_LORA:
    case MS_ERR_INVALID_PARAMETER:
    case MS_ERR_PATH_OUTSIDE_MODELS:
    case MS_ERR_INVALID_OUTPUT_NAME:
    case MS_ERR_DEGENERATE_ROTATION:
    case MS_ERR_UNSUPPORTED_OPTION:
        return 422;
    case MS_ERR_QUEUE_FULL:
        return 429;
    case MS_ERR_HEADERS_TOO_LARGE:
        return 431;
    case MS_ERR_NOT_IMPLEMENTED:
        return 501;
    case MS_ERR_WEBUI_UNREACHABLE:
    case MS_ERR_WEBUI_ERROR:
        return 502;
    case MS_ERR_SHUTTING_DOWN:
        return 503;
    case MS_ERR_HTTP_VERSION_NOT_SUPPORTED:
        return 505;
    case MS_ERR_DISK_FULL:
        return 507;
    default:
        /* io_error, internal_error, out_of_memory, lapack_failure,
         * interrupted, and anything unknown */
        return 500;
    }
}

/* Only plain decimal text counts as a number: "12", "-3", "0.25", "1e-6".
 * strtod alone would also take "inf", "0x1p3" and leading blanks. */
static bool looks_decimal(const char *text)
{
    if (*text == '\0')
        return false;
    bool has_digit = false;
    for (const char *c = text; *c != '\0'; c++) {
        if (isdigit((unsigned char)*c))
            has_digit = true;
        else if (strchr("+-.eE", *c) == NULL)
            return false;
    }
    return has_digit;
}

static json_t *detail_value(const ms_error_detail *detail)
{
    const char *text = detail->value;
    if (detail->is_number && looks_decimal(text)) {
        char *end = NULL;
        errno = 0;
        long long integer = strtoll(text, &end, 10);
        if (errno == 0 && end != text && *end == '\0')
            return json_integer((json_int_t)integer);
        if (isdigit((unsigned char)text[0])) {
            /* past INT64_MAX (an 8-byte length read from a file): still an integer */
            errno = 0;
            unsigned long long unsigned_integer = strtoull(text, &end, 10);
            if (errno == 0 && end != text && *end == '\0')
                return ms_api_json_uint64((uint64_t)unsigned_integer);
        }
        errno = 0;
        double real = strtod(text, &end);
        if (errno == 0 && end != text && *end == '\0' && isfinite(real))
            return json_real(real);
    }
    return ms_api_json_text(text);
}

json_t *ms_api_error_object(const ms_error *err)
{
    ms_status code = err != NULL ? err->code : MS_ERR_INTERNAL;
    if (code == MS_OK)
        code = MS_ERR_INTERNAL;   /* an error object always names a failure */
    bool container = is_container_code(code);
    json_t *object = json_object();
    json_object_set_new(object, "code",
                        json_string(container ? "bad_safetensors" : ms_status_name(code)));
    const char *message = err != NULL && err->message[0] != '\0' ? err->message
                                                                  : ms_status_name(code);
    json_object_set_new(object, "message", ms_api_json_text(message));
    if (err != NULL && err->key[0] != '\0')
        json_object_set_new(object, "key", ms_api_json_text(err->key));

    json_t *details = json_object();
    for (int i = 0; err != NULL && i < err->detail_count && i < MS_ERROR_MAX_DETAILS; i++)
        json_object_set_new(details, err->details[i].name,
                            detail_value(&err->details[i]));
    /* last, so a core detail of the same name cannot hide the reason */
    if (container)
        json_object_set_new(details, "reason", json_string(ms_status_name(code)));
    if (json_object_size(details) > 0)
        json_object_set_new(object, "details", details);
    else
        json_decref(details);
    return object;
}

json_t *ms_api_error_body(const ms_error *err)
{
    json_t *body = json_object();
    json_object_set_new(body, "error", ms_api_error_object(err));
    return body;
}
