#include "request_limits.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

typedef struct head_survey {
    size_t field_count;
    size_t content_length_count;
    const char *first_content_length;
    bool content_lengths_differ;
    bool transfer_encoding;
} head_survey;

static enum MHD_Result survey_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    head_survey *survey = cls;
    survey->field_count++;
    if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
        survey->transfer_encoding = true;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0)
        return MHD_YES;
    if (survey->content_length_count++ == 0)
        survey->first_content_length = value;
    else if (strcmp(value, survey->first_content_length) != 0)
        survey->content_lengths_differ = true;   /* the same value twice is harmless */
    return MHD_YES;
}

/* libmicrohttpd hands over the target percent-decoded and split: the path
 * and each query argument.  Their decoded length is what is measured. */
static enum MHD_Result add_argument_length(void *cls, enum MHD_ValueKind kind, const char *key,
                                           const char *value)
{
    (void)kind;
    size_t *length = cls;
    *length += strlen(key) + 2 + (value != NULL ? strlen(value) : 0);   /* "?k=v" or "&k=v" */
    return MHD_YES;
}

static size_t target_length(const ms_http_request *request)
{
    size_t length = strlen(request->path);
    MHD_get_connection_values(request->connection, MHD_GET_ARGUMENT_KIND, add_argument_length,
                              &length);
    return length;
}

static size_t head_length(const ms_http_request *request)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(request->connection, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    return info != NULL ? info->header_size : 0;
}

void ms_http_head_too_large(ms_error *err, size_t head_bytes, size_t fields)
{
    ms_error_set(err, MS_ERR_HEADERS_TOO_LARGE, NULL,
                 "the request line and headers take %zu bytes in %zu fields; at most %d "
                 "bytes and %d fields are read", head_bytes, fields, MS_HTTP_MAX_HEAD_BYTES,
                 MS_HTTP_MAX_HEADER_FIELDS);
    ms_error_detail_add(err, "limit", "%d", MS_HTTP_MAX_HEAD_BYTES);
    ms_error_detail_add(err, "field_limit", "%d", MS_HTTP_MAX_HEADER_FIELDS);
}

static bool refuse(ms_http_request *request, ms_error *err, enum MHD_Result *result)
{
    *result = ms_http_send_error(request, err, NULL);   /* closes, as every answer */
    return true;
}

bool ms_http_refuse_bad_head(ms_http_request *request, enum MHD_Result *result)
{
    ms_error err;
    size_t target = target_length(request);
    if (target > MS_HTTP_MAX_URI_BYTES) {
        ms_error_set(&err, MS_ERR_URI_TOO_LONG, NULL,
                     "the request target is longer than %d bytes (decoded)",
                     MS_HTTP_MAX_URI_BYTES);
        ms_error_detail_add(&err, "limit", "%d", MS_HTTP_MAX_URI_BYTES);
        return refuse(request, &err, result);
    }
    head_survey survey = {0};
    MHD_get_connection_values(request->connection, MHD_HEADER_KIND, survey_field, &survey);
    size_t head = head_length(request);
    if (head > MS_HTTP_MAX_HEAD_BYTES || survey.field_count > MS_HTTP_MAX_HEADER_FIELDS) {
        ms_http_head_too_large(&err, head, survey.field_count);
        return refuse(request, &err, result);
    }
    if (survey.content_lengths_differ ||
        (survey.content_length_count > 0 && survey.transfer_encoding)) {
        ms_error_set(&err, MS_ERR_BAD_REQUEST, NULL, "%s",
                     survey.content_lengths_differ
                         ? "the request has Content-Length fields with different values"
                         : "the request has both Content-Length and Transfer-Encoding");
        ms_error_detail_add(&err, "header", "%s", MHD_HTTP_HEADER_CONTENT_LENGTH);
        return refuse(request, &err, result);
    }
    return false;
}
