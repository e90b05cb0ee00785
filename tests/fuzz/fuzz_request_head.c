/* The request gate's check of a request head (server/http/request_head.c)
 * on any bytes.  Input: the bytes a client sent.  Checked beside "no
 * crash": the verdict does not depend on bytes past the limit; a head
 * refused stays refused and one accepted stays accepted however many more
 * bytes follow (the gate decides on what has arrived); a refusal names one
 * of the documented codes and serialises as JSON. */
#include "fuzz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/json_text.h"
#include "server/http/request_head.h"

static void check_refusal(const ms_error *err)
{
    MS_FUZZ_CHECK(err->code == MS_ERR_BAD_REQUEST ||
                  err->code == MS_ERR_HTTP_VERSION_NOT_SUPPORTED ||
                  err->code == MS_ERR_URI_TOO_LONG || err->code == MS_ERR_HEADERS_TOO_LARGE ||
                  err->code == MS_ERR_NOT_IMPLEMENTED);   /* Transfer-Encoding */
    json_t *body = ms_api_error_body(err);
    char *text = ms_api_json_dumps(body, 0);
    MS_FUZZ_CHECK(text != NULL);
    free(text);
    json_decref(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *bytes = (const char *)data;
    ms_error err;
    ms_error_clear(&err);
    ms_request_head_verdict whole = ms_request_head_check(bytes, size, &err);
    if (whole == MS_REQUEST_HEAD_REFUSED)
        check_refusal(&err);
    if (size > MS_REQUEST_HEAD_MAX_BYTES) {
        ms_error cut;
        MS_FUZZ_CHECK(ms_request_head_check(bytes, MS_REQUEST_HEAD_MAX_BYTES, &cut) == whole);
        return 0;
    }
    /* every prefix: a decision once made is kept */
    ms_request_head_verdict earlier = MS_REQUEST_HEAD_INCOMPLETE;
    for (size_t cut = 0; cut <= size; cut += 1 + size / 64) {
        ms_error prefix_err;
        ms_request_head_verdict verdict = ms_request_head_check(bytes, cut, &prefix_err);
        if (earlier != MS_REQUEST_HEAD_INCOMPLETE)
            MS_FUZZ_CHECK(verdict == earlier);
        earlier = verdict;
    }
    if (earlier != MS_REQUEST_HEAD_INCOMPLETE)
        MS_FUZZ_CHECK(whole == earlier);
    return 0;
}
