/* The query string of GET /v1/jobs (limit, cursor) and the Idempotency-Key
 * header (server/http/request_values.c).  Input: the query string (what
 * follows '?'), a newline, the Idempotency-Key value.  The query string is
 * cut into pairs and unescaped with libmicrohttpd's own MHD_http_unescape,
 * as the service receives it.  An accepted number must be in range and
 * spelled in plain digits; an accepted key must be 1 to 200 printable
 * ASCII characters. */
#include "fuzz.h"

#include <stdint.h>
#include <string.h>

#include <microhttpd.h>

#include "server/http/request_values.h"

static void check_number(const char *text, long long max)
{
    long long value = -1;
    if (!ms_http_parse_positive(text, max, &value))
        return;
    MS_FUZZ_CHECK(value >= 1 && value <= max);
    /* plain digits: leading zeros at most, no sign, no blank */
    const char *digits = text;
    while (*digits == '0')
        digits++;
    char spelled[32];
    snprintf(spelled, sizeof spelled, "%lld", value);
    MS_FUZZ_CHECK(strcmp(digits, spelled) == 0);
}

static void check_query(char *query)
{
    char *saved = NULL;
    for (char *pair = strtok_r(query, "&", &saved); pair != NULL;
         pair = strtok_r(NULL, "&", &saved)) {
        char *equals = strchr(pair, '=');
        char *value = equals != NULL ? equals + 1 : pair + strlen(pair);
        if (equals != NULL)
            *equals = '\0';
        MHD_http_unescape(pair);
        MHD_http_unescape(value);
        if (strcmp(pair, "limit") == 0)
            check_number(value, 500);
        else if (strcmp(pair, "cursor") == 0)
            check_number(value, INT64_MAX);
        else
            check_number(value, 1000);
    }
}

static void check_key(const char *key)
{
    bool valid = ms_http_idempotency_key_valid(key);
    size_t length = strlen(key);
    bool printable = length >= 1 && length <= MS_IDEMPOTENCY_KEY_MAX;
    for (size_t i = 0; i < length && printable; i++)
        printable = key[i] >= 0x20 && key[i] <= 0x7e;
    MS_FUZZ_CHECK(valid == printable);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cursor = 0;
    char *query = ms_fuzz_next_line(data, size, &cursor);
    char *key = ms_fuzz_next_line(data, size, &cursor);
    if (query != NULL)
        check_query(query);
    if (key != NULL)
        check_key(key);
    free(query);
    free(key);
    return 0;
}
