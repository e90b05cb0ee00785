#include "request_head.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "request_limits.h"

typedef struct head_cursor {
    size_t position;        /* start of the next line */
    size_t head_start;      /* where the request line starts (after empty lines) */
    size_t fields;
    size_t query_arguments;
    bool request_line_seen;
    ms_error *err;
} head_cursor;

/* RFC 9110 5.6.2 tchar */
static bool is_token_byte(unsigned char byte)
{
    if ((byte >= '0' && byte <= '9') || (byte >= 'a' && byte <= 'z') ||
        (byte >= 'A' && byte <= 'Z'))
        return true;
    return byte != '\0' && strchr("!#$%&'*+-.^_`|~", byte) != NULL;
}

/* Visible ASCII or a byte past 0x7f (some clients send UTF-8 unescaped). */
static bool is_visible_byte(unsigned char byte)
{
    return (byte > 0x20 && byte < 0x7f) || byte >= 0x80;
}

static size_t token_length(const char *text, size_t length)
{
    size_t used = 0;
    while (used < length && is_token_byte((unsigned char)text[used]))
        used++;
    return used;
}

static ms_request_head_verdict refuse_bad_request(head_cursor *cursor, const char *reason,
                                                  const char *message)
{
    ms_error_set(cursor->err, MS_ERR_BAD_REQUEST, NULL, "%s", message);
    ms_error_detail_add(cursor->err, "reason", "%s", reason);
    return MS_REQUEST_HEAD_REFUSED;
}

/* "HTTP/" then digits, a dot and digits: the major version, else -1. */
static int version_major(const char *text, size_t length)
{
    if (length < 6 || memcmp(text, "HTTP/", 5) != 0)
        return -1;
    size_t at = 5;
    int major = 0;
    for (; at < length && text[at] >= '0' && text[at] <= '9'; at++)
        if (major < 1000)   /* kept printable; any such number is unsupported */
            major = major * 10 + (text[at] - '0');
    if (at == 5)
        return -1;
    if (at == length)
        return major;   /* "HTTP/2", "HTTP/3" */
    if (text[at] != '.' || at + 1 == length)
        return -1;
    for (at++; at < length; at++)
        if (text[at] < '0' || text[at] > '9')
            return -1;
    return major;
}

static ms_request_head_verdict check_version(head_cursor *cursor, const char *version,
                                             size_t length)
{
    int major = version_major(version, length);
    if (major == 1 && length == 8)
        return MS_REQUEST_HEAD_INCOMPLETE;   /* HTTP/1.0 to HTTP/1.9: fine so far */
    if (major < 0 || major == 1)
        return refuse_bad_request(cursor, "request_line",
                                  "the request line's version is not HTTP/1.x");
    /* "HTTP/", digits and a dot: printable, shown as sent */
    int shown = length > 24 ? 24 : (int)length;
    ms_error_set(cursor->err, MS_ERR_HTTP_VERSION_NOT_SUPPORTED, NULL,
                 "%.*s is not supported: only HTTP/1.0 and HTTP/1.1 are", shown, version);
    ms_error_detail_add(cursor->err, "version", "%.*s", shown, version);
    return MS_REQUEST_HEAD_REFUSED;
}

static void count_query_arguments(head_cursor *cursor, const char *target, size_t length)
{
    const char *query = memchr(target, '?', length);
    if (query == NULL)
        return;
    cursor->query_arguments = 1;
    for (const char *at = query; at < target + length; at++)
        if (*at == '&')
            cursor->query_arguments++;
}

/* "METHOD SP TARGET SP HTTP/d.d", exactly one space each. */
static ms_request_head_verdict check_request_line(head_cursor *cursor, const char *line,
                                                  size_t length)
{
    static const char message[] =
        "the request line is not METHOD TARGET HTTP/1.x with one space between them";
    size_t method = token_length(line, length);
    if (method == 0 || method == length || line[method] != ' ')
        return refuse_bad_request(cursor, "request_line", message);
    const char *target = line + method + 1;
    size_t rest = length - method - 1;
    size_t target_length = 0;
    while (target_length < rest && is_visible_byte((unsigned char)target[target_length]))
        target_length++;
    if (target_length == 0 || target_length == rest || target[target_length] != ' ')
        return refuse_bad_request(cursor, "request_line", message);
    const char *version = target + target_length + 1;
    size_t version_length = rest - target_length - 1;
    ms_request_head_verdict verdict = check_version(cursor, version, version_length);
    if (verdict != MS_REQUEST_HEAD_INCOMPLETE)
        return verdict;
    count_query_arguments(cursor, target, target_length);
    return MS_REQUEST_HEAD_INCOMPLETE;
}

/* The value without its leading and trailing blanks: [*start, *end). */
static void trim_blanks(const char *value, size_t length, size_t *start, size_t *end)
{
    size_t at = 0;
    while (at < length && (value[at] == ' ' || value[at] == '\t'))
        at++;
    while (length > at && (value[length - 1] == ' ' || value[length - 1] == '\t'))
        length--;
    *start = at;
    *end = length;
}

/* Digits between optional blanks, below 2^64 - 1 (libmicrohttpd's
 * "unknown size"). */
static bool content_length_valid(const char *value, size_t length)
{
    size_t at, end;
    trim_blanks(value, length, &at, &end);
    if (at == end)
        return false;
    uint64_t number = 0;
    for (; at < end; at++) {
        if (value[at] < '0' || value[at] > '9')
            return false;
        uint64_t digit = (uint64_t)(value[at] - '0');
        if (number > (UINT64_MAX - 1 - digit) / 10)
            return false;
        number = number * 10 + digit;
    }
    return true;
}

/* "chunked" between optional blanks: the only coding libmicrohttpd 0.9.75
 * reads a body in; with any other it answered nothing and the client
 * waited for --request-timeout. */
static bool transfer_encoding_supported(const char *value, size_t length)
{
    size_t start, end;
    trim_blanks(value, length, &start, &end);
    return end - start == 7 && strncasecmp(value + start, "chunked", 7) == 0;
}

static ms_request_head_verdict check_header_line(head_cursor *cursor, const char *line,
                                                 size_t length)
{
    if (line[0] == ' ' || line[0] == '\t')
        return refuse_bad_request(cursor, "line_folding",
                                  "a header line starts with a blank (obsolete line folding)");
    size_t name = token_length(line, length);
    if (name == 0 || name == length || line[name] != ':')
        return refuse_bad_request(cursor, "header_line",
                                  "a header line is not a field name, a colon and a value");
    const char *value = line + name + 1;
    size_t value_length = length - name - 1;
    for (size_t i = 0; i < value_length; i++) {
        unsigned char byte = (unsigned char)value[i];
        if (!is_visible_byte(byte) && byte != ' ' && byte != '\t')
            return refuse_bad_request(cursor, "header_line",
                                      "a header value holds a control character");
    }
    if (name == 14 && strncasecmp(line, "Content-Length", 14) == 0 &&
        !content_length_valid(value, value_length)) {
        refuse_bad_request(cursor, "content_length",
                           "Content-Length is not a number of bytes below 2^64 - 1");
        ms_error_detail_add(cursor->err, "header", "Content-Length");
        return MS_REQUEST_HEAD_REFUSED;
    }
    if (name == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0 &&
        !transfer_encoding_supported(value, value_length)) {
        ms_error_set(cursor->err, MS_ERR_NOT_IMPLEMENTED, NULL,
                     "Transfer-Encoding other than chunked is not supported: send the body "
                     "with Content-Length, or chunked");
        ms_error_detail_add(cursor->err, "header", "Transfer-Encoding");
        return MS_REQUEST_HEAD_REFUSED;
    }
    cursor->fields++;
    return MS_REQUEST_HEAD_INCOMPLETE;
}

/* The whole head is in: will libmicrohttpd's connection memory hold it? */
static ms_request_head_verdict check_memory(head_cursor *cursor, size_t head_bytes)
{
    size_t needed = head_bytes +
                    MS_REQUEST_HEAD_FIELD_COST * (cursor->fields + cursor->query_arguments);
    if (needed <= MS_HTTP_CONNECTION_MEMORY - MS_REQUEST_HEAD_MEMORY_SPARE)
        return MS_REQUEST_HEAD_ACCEPTED;
    ms_http_head_too_large(cursor->err, head_bytes, cursor->fields);
    ms_error_detail_add(cursor->err, "query_arguments", "%zu", cursor->query_arguments);
    return MS_REQUEST_HEAD_REFUSED;
}

static ms_request_head_verdict check_line(head_cursor *cursor, const char *line,
                                          size_t length, size_t line_end)
{
    if (!cursor->request_line_seen) {
        if (length == 0) {
            cursor->head_start = line_end;   /* tolerated before the request line */
            return MS_REQUEST_HEAD_INCOMPLETE;
        }
        cursor->request_line_seen = true;
        return check_request_line(cursor, line, length);
    }
    if (length == 0)
        return check_memory(cursor, line_end - cursor->head_start);
    return check_header_line(cursor, line, length);
}

/* Past the limit without the empty line: the request line is the target
 * (414), else the headers (431), as libmicrohttpd would say. */
static ms_request_head_verdict refuse_unended(head_cursor *cursor, size_t size)
{
    if (!cursor->request_line_seen) {
        ms_error_set(cursor->err, MS_ERR_URI_TOO_LONG, NULL,
                     "the request line is longer than %d bytes", MS_REQUEST_HEAD_MAX_BYTES);
        ms_error_detail_add(cursor->err, "limit", "%d", MS_HTTP_MAX_URI_BYTES);
        return MS_REQUEST_HEAD_REFUSED;
    }
    ms_http_head_too_large(cursor->err, size - cursor->head_start, cursor->fields);
    return MS_REQUEST_HEAD_REFUSED;
}

ms_request_head_verdict ms_request_head_check(const char *bytes, size_t size, ms_error *err)
{
    head_cursor cursor = {.err = err};
    if (size > MS_REQUEST_HEAD_MAX_BYTES)
        size = MS_REQUEST_HEAD_MAX_BYTES;
    while (cursor.position < size) {
        const char *line = bytes + cursor.position;
        const char *newline = memchr(line, '\n', size - cursor.position);
        if (newline == NULL)
            break;
        size_t length = (size_t)(newline - line);
        size_t line_end = cursor.position + length + 1;
        if (length > 0 && line[length - 1] == '\r')
            length--;
        if (memchr(line, '\r', length) != NULL)
            return refuse_bad_request(&cursor, "line_ending",
                                      "a carriage return inside a line of the head");
        ms_request_head_verdict verdict = check_line(&cursor, line, length, line_end);
        if (verdict != MS_REQUEST_HEAD_INCOMPLETE)
            return verdict;
        cursor.position = line_end;
    }
    if (size >= MS_REQUEST_HEAD_MAX_BYTES)
        return refuse_unended(&cursor, size);
    return MS_REQUEST_HEAD_INCOMPLETE;
}
