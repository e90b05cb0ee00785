#include "request_values.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool ms_http_etag_matches(const char *header, const char *etag)
{
    if (header == NULL)
        return false;
    if (strcmp(header, "*") == 0)
        return true;
    size_t etag_length = strlen(etag);
    for (const char *at = header; (at = strstr(at, etag)) != NULL; at += etag_length) {
        char after = at[etag_length];
        if (after == '\0' || after == ',' || after == ' ')
            return true;
    }
    return false;
}

bool ms_http_idempotency_key_valid(const char *key)
{
    size_t length = strlen(key);
    if (length == 0 || length > MS_IDEMPOTENCY_KEY_MAX)
        return false;
    for (size_t i = 0; i < length; i++)
        if (key[i] < 0x20 || key[i] > 0x7e)
            return false;
    return true;
}

/* strtoll alone would take " 1" (leading blanks) and "+1". */
bool ms_http_parse_positive(const char *text, long long max, long long *value)
{
    if (text == NULL || *text < '0' || *text > '9')
        return false;
    char *end = NULL;
    errno = 0;
    long long parsed = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0' || parsed < 1 || parsed > max)
        return false;
    *value = parsed;
    return true;
}
