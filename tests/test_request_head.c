/* server/http/request_head: what the request gate lets libmicrohttpd parse,
 * what it answers itself, and when it waits for more bytes. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/http/request_head.h"
#include "server/http/request_limits.h"
#include "check_support.h"

typedef struct head_case {
    const char *head;
    ms_request_head_verdict verdict;
    ms_status code;          /* when refused */
    const char *reason;      /* details.reason when refused 400, else NULL */
} head_case;

#define ACCEPTED MS_REQUEST_HEAD_ACCEPTED, MS_OK, NULL
#define INCOMPLETE MS_REQUEST_HEAD_INCOMPLETE, MS_OK, NULL
#define BAD(reason) MS_REQUEST_HEAD_REFUSED, MS_ERR_BAD_REQUEST, reason
#define VERSION MS_REQUEST_HEAD_REFUSED, MS_ERR_HTTP_VERSION_NOT_SUPPORTED, NULL
#define CODING MS_REQUEST_HEAD_REFUSED, MS_ERR_NOT_IMPLEMENTED, NULL

static const head_case cases[] = {
    /* accepted */
    {"GET / HTTP/1.1\r\n\r\n", ACCEPTED},
    {"GET /healthz HTTP/1.0\r\nHost: t\r\n\r\n", ACCEPTED},
    {"GET /healthz HTTP/1.1\nHost: t\n\n", ACCEPTED},                 /* bare LF */
    {"\r\n\r\nGET / HTTP/1.1\r\n\r\n", ACCEPTED},                     /* empty lines first */
    {"POST /v1/resize-lora HTTP/1.1\r\nContent-Length: 12\r\n\r\n{", ACCEPTED},
    {"POST / HTTP/1.1\r\nContent-Length:  7 \t\r\n\r\n", ACCEPTED},
    {"POST / HTTP/1.1\r\ncontent-length: 18446744073709551614\r\n\r\n", ACCEPTED},
    {"M-SEARCH * HTTP/1.9\r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\n", ACCEPTED},
    {"GET /caf\xc3\xa9?q=\xff HTTP/1.1\r\nX-Utf8: \xc3\xa9\r\n\r\n", ACCEPTED},
    {"GET /v1/jobs?limit=5&cursor=9 HTTP/1.1\r\nContent-Lengthy: x\r\n\r\n", ACCEPTED},
    {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", ACCEPTED},
    {"POST / HTTP/1.1\r\ntransfer-encoding:  CHUNKED \r\n\r\n", ACCEPTED},
    {"POST / HTTP/1.1\r\nTransfer-Encodings: gzip\r\n\r\n", ACCEPTED},
    /* incomplete: nothing wrong yet */
    {"", INCOMPLETE},
    {"\r\n", INCOMPLETE},
    {"GET / HTT", INCOMPLETE},
    {"GARBAGE WITHOUT AN END", INCOMPLETE},
    {"GET / HTTP/1.1\r\nHost: t\r\n", INCOMPLETE},
    {"GET / HTTP/1.1\r\nHost: t\r\n\r", INCOMPLETE},
    {"GET / HTTP/1.1\r\nX-Bad-Later", INCOMPLETE},
    /* the request line */
    {"GARBAGE\r\n\r\n", BAD("request_line")},
    {"GET /\r\n\r\n", BAD("request_line")},                          /* HTTP/0.9's form */
    {"GET / \r\n\r\n", BAD("request_line")},
    {"GET  / HTTP/1.1\r\n\r\n", BAD("request_line")},
    {"GET /  HTTP/1.1\r\n\r\n", BAD("request_line")},
    {"GET / HTTP/1.1 \r\n\r\n", BAD("request_line")},
    {" GET / HTTP/1.1\r\n\r\n", BAD("request_line")},
    {"G(T / HTTP/1.1\r\n\r\n", BAD("request_line")},
    {"GET /a\x01 HTTP/1.1\r\n\r\n", BAD("request_line")},
    {"GET\r\n\r\n", BAD("request_line")},
    {"GET / http/1.1\r\n\r\n", BAD("request_line")},
    {"GET / HTTP/1\r\n\r\n", BAD("request_line")},
    {"GET / HTTP/1.\r\n\r\n", BAD("request_line")},
    {"GET / HTTP/1.10\r\n\r\n", BAD("request_line")},
    {"GET / HTTP/1.x\r\n\r\n", BAD("request_line")},
    {"GET / HTTP/01.1\r\n\r\n", BAD("request_line")},
    {"GET / HTTP/\r\n\r\n", BAD("request_line")},
    {"GET / HTTP/x.1\r\n\r\n", BAD("request_line")},
    {"GET / HTTP/2.x\r\n\r\n", BAD("request_line")},
    {"GET / HTTPS\r\n", BAD("request_line")},
    {"GET / HTTP/1.1\r\r\n\r\n", BAD("line_ending")},
    {"GET\r/ HTTP/1.1\r\n\r\n", BAD("line_ending")},
    /* versions */
    {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", VERSION},
    {"GET / HTTP/0.9\r\n\r\n", VERSION},
    {"GET / HTTP/3.0\r\n", VERSION},                                 /* before the headers */
    {"GET / HTTP/2\r\n", VERSION},
    {"GET / HTTP/10.0\r\n", VERSION},
    {"GET / HTTP/99999.1\r\n", VERSION},
    /* header lines */
    {"GET / HTTP/1.1\r\nNo colon here\r\n\r\n", BAD("header_line")},
    {"GET / HTTP/1.1\r\nHost : t\r\n\r\n", BAD("header_line")},
    {"GET / HTTP/1.1\r\n: empty name\r\n\r\n", BAD("header_line")},
    {"GET / HTTP/1.1\r\nX-Ctl: a\x7f\r\n\r\n", BAD("header_line")},
    {"GET / HTTP/1.1\r\nNoColon\r\n", BAD("header_line")},
    {"GET / HTTP/1.1\r\nX-A: b\r\n folded\r\n\r\n", BAD("line_folding")},
    {"GET / HTTP/1.1\r\n\tfolded\r\n\r\n", BAD("line_folding")},
    {"GET / HTTP/1.1\r\nX-A: b\rc\r\n\r\n", BAD("line_ending")},
    /* Content-Length */
    {"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", BAD("content_length")},
    {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", BAD("content_length")},
    {"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n", BAD("content_length")},
    {"POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", BAD("content_length")},
    {"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", BAD("content_length")},
    {"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", BAD("content_length")},
    {"POST / HTTP/1.1\r\nCONTENT-LENGTH:  \r\n\r\n", BAD("content_length")},
    {"POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n", BAD("content_length")},
    {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", BAD("content_length")},
    {"POST / HTTP/1.1\r\nContent-Length: 12\r\nContent-Length: 1x\r\n\r\n", BAD("content_length")},
    /* Transfer-Encoding: chunked only */
    {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", CODING},
    {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", CODING},
    {"POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n", CODING},
    {"POST / HTTP/1.1\r\nTRANSFER-ENCODING: chunked2\r\n", CODING},   /* before the end */
};

static const char *detail(const ms_error *err, const char *name)
{
    for (int i = 0; i < err->detail_count; i++)
        if (strcmp(err->details[i].name, name) == 0)
            return err->details[i].value;
    return NULL;
}

START_TEST(test_cases)
{
    const head_case *c = &cases[_i];
    ms_error err;
    ms_error_clear(&err);
    ms_request_head_verdict verdict = ms_request_head_check(c->head, strlen(c->head), &err);
    ck_assert_msg(verdict == c->verdict, "case %d: verdict %d, want %d (%s)", _i, verdict,
                  c->verdict, err.message);
    if (verdict != MS_REQUEST_HEAD_REFUSED)
        return;
    ck_assert_msg(err.code == c->code, "case %d: code %s", _i, ms_status_name(err.code));
    if (c->reason != NULL)
        ck_assert_str_eq(detail(&err, "reason"), c->reason);
}
END_TEST

START_TEST(test_version_details)
{
    ms_error err;
    const char *head = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    ck_assert_int_eq(ms_request_head_check(head, strlen(head), &err), MS_REQUEST_HEAD_REFUSED);
    ck_assert_str_eq(detail(&err, "version"), "HTTP/2.0");
    ck_assert_ptr_nonnull(strstr(err.message, "HTTP/2.0 is not supported"));
    /* a NUL byte in a value (libmicrohttpd would cut the value there) */
    static const char nul[] = "GET / HTTP/1.1\r\nX-Nul: a\0b\r\n\r\n";
    ck_assert_int_eq(ms_request_head_check(nul, sizeof nul - 1, &err), MS_REQUEST_HEAD_REFUSED);
    ck_assert_str_eq(detail(&err, "reason"), "header_line");
    head = "POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n";
    ck_assert_int_eq(ms_request_head_check(head, strlen(head), &err), MS_REQUEST_HEAD_REFUSED);
    ck_assert_str_eq(detail(&err, "header"), "Content-Length");
}
END_TEST

/* A head of count fields "X-Hn: v" and a target of arguments query arguments. */
static char *build_head(size_t count, size_t arguments, size_t value_bytes, bool ended)
{
    size_t capacity = 64 + count * (value_bytes + 24) + arguments * 4;
    char *head = malloc(capacity);
    ck_assert_ptr_nonnull(head);
    size_t used = (size_t)snprintf(head, capacity, "GET /v1/jobs?a");
    for (size_t i = 1; i < arguments; i++)
        used += (size_t)snprintf(head + used, capacity - used, "&a");
    used += (size_t)snprintf(head + used, capacity - used, " HTTP/1.1\r\n");
    for (size_t i = 0; i < count; i++) {
        used += (size_t)snprintf(head + used, capacity - used, "X-H%zu: ", i);
        memset(head + used, 'v', value_bytes);
        used += value_bytes;
        used += (size_t)snprintf(head + used, capacity - used, "\r\n");
    }
    if (ended)
        snprintf(head + used, capacity - used, "\r\n");
    else
        head[used] = '\0';
    return head;
}

START_TEST(test_memory)
{
    ms_error err;
    /* 250 short fields and a few arguments: well within */
    char *head = build_head(250, 4, 1, true);
    ck_assert_int_eq(ms_request_head_check(head, strlen(head), &err), MS_REQUEST_HEAD_ACCEPTED);
    free(head);
    /* 300 fields: libmicrohttpd holds them; request_limits.h answers 431 */
    head = build_head(300, 1, 1, true);
    ck_assert_int_eq(ms_request_head_check(head, strlen(head), &err), MS_REQUEST_HEAD_ACCEPTED);
    free(head);
    /* 3000 query arguments: 190 KB of libmicrohttpd's memory */
    head = build_head(1, 3000, 1, true);
    ck_assert_int_eq(ms_request_head_check(head, strlen(head), &err), MS_REQUEST_HEAD_REFUSED);
    ck_assert_int_eq(err.code, MS_ERR_HEADERS_TOO_LARGE);
    ck_assert_str_eq(detail(&err, "query_arguments"), "3000");
    ck_assert_str_eq(detail(&err, "field_limit"), "256");
    free(head);
    /* 400 fields of 20 bytes: 11 KB of text, 25 KB of fields */
    head = build_head(400, 1, 20, true);
    ck_assert_int_eq(ms_request_head_check(head, strlen(head), &err), MS_REQUEST_HEAD_REFUSED);
    ck_assert_int_eq(err.code, MS_ERR_HEADERS_TOO_LARGE);
    free(head);
}
END_TEST

START_TEST(test_unended)
{
    ms_error err;
    /* headers past the connection's memory without the empty line: 431 */
    char *head = build_head(100, 1, 400, false);
    ck_assert_uint_gt(strlen(head), MS_REQUEST_HEAD_MAX_BYTES);
    ck_assert_int_eq(ms_request_head_check(head, strlen(head), &err), MS_REQUEST_HEAD_REFUSED);
    ck_assert_int_eq(err.code, MS_ERR_HEADERS_TOO_LARGE);
    ck_assert_str_eq(detail(&err, "limit"), "12288");
    /* exactly at the limit counts as reached */
    ck_assert_int_eq(ms_request_head_check(head, MS_REQUEST_HEAD_MAX_BYTES, &err),
                     MS_REQUEST_HEAD_REFUSED);
    ck_assert_int_eq(ms_request_head_check(head, MS_REQUEST_HEAD_MAX_BYTES - 1, &err),
                     MS_REQUEST_HEAD_INCOMPLETE);
    free(head);
    /* a request line that never ends: 414 */
    size_t size = MS_REQUEST_HEAD_MAX_BYTES + 10;
    char *line = malloc(size);
    ck_assert_ptr_nonnull(line);
    memcpy(line, "GET /", 5);
    memset(line + 5, 'a', size - 5);
    ck_assert_int_eq(ms_request_head_check(line, size, &err), MS_REQUEST_HEAD_REFUSED);
    ck_assert_int_eq(err.code, MS_ERR_URI_TOO_LONG);
    ck_assert_str_eq(detail(&err, "limit"), "8192");
    /* as are empty lines without end */
    for (size_t i = 0; i + 1 < size; i += 2)
        memcpy(line + i, "\r\n", 2);
    ck_assert_int_eq(ms_request_head_check(line, size, &err), MS_REQUEST_HEAD_REFUSED);
    ck_assert_int_eq(err.code, MS_ERR_URI_TOO_LONG);
    free(line);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("request_head");
    TCase *tcase = tcase_create("request_head");
    tcase_add_loop_test(tcase, test_cases, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tcase, test_version_details);
    tcase_add_test(tcase, test_memory);
    tcase_add_test(tcase, test_unended);
    suite_add_tcase(suite, tcase);
    return ms_test_run_suite(suite);
}
