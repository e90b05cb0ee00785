/* The Range and If-None-Match request headers of a download
 * (server/http/range.c, request_values.c).  Input: the Range value, a
 * newline, the If-None-Match value.  A range is parsed against several
 * file sizes (empty, tiny, huge): a partial answer must lie inside the
 * file.  An entity-tag match must be "*" or hold the tag, and a list that
 * ends with the tag must match. */
#include "fuzz.h"

#include <string.h>

#include "server/http/range.h"
#include "server/http/request_values.h"

static const char etag[] =
    "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"";

static void check_range(const char *header)
{
    static const uint64_t sizes[] = {0, 1, 2, 100, UINT64_C(1) << 40, UINT64_MAX - 1, UINT64_MAX};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint64_t size = sizes[i], start = 0, length = 0;
        ms_range_kind kind = ms_range_parse(header, size, &start, &length);
        MS_FUZZ_CHECK(kind == MS_RANGE_NONE || kind == MS_RANGE_PARTIAL ||
                      kind == MS_RANGE_UNSATISFIABLE);
        if (kind == MS_RANGE_PARTIAL) {
            MS_FUZZ_CHECK(length >= 1 && start < size);
            MS_FUZZ_CHECK(length <= size - start);
        }
    }
}

static void check_etag(const char *header)
{
    bool matches = ms_http_etag_matches(header, etag);
    if (matches)
        MS_FUZZ_CHECK(strcmp(header, "*") == 0 || strstr(header, etag) != NULL);
    size_t size = strlen(header) + sizeof etag + 8;
    char *listed = malloc(size);
    if (listed == NULL)
        return;
    snprintf(listed, size, "%s, W/%s", header, etag);
    MS_FUZZ_CHECK(ms_http_etag_matches(listed, etag));
    free(listed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cursor = 0;
    char *range = ms_fuzz_next_line(data, size, &cursor);
    char *if_none_match = ms_fuzz_next_line(data, size, &cursor);
    if (range != NULL)
        check_range(range);
    if (if_none_match != NULL)
        check_etag(if_none_match);
    free(range);
    free(if_none_match);
    return 0;
}
