#include "json_load.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Longer integer tokens are past any double too: jansson refuses them as
 * reals anyway. */
enum { WIDEST_TOKEN = 400 };

static size_t number_length(const char *text, size_t left)
{
    size_t length = 0;
    while (length < left && text[length] != '\0' &&
           strchr("0123456789+-.eE", text[length]) != NULL)
        length++;
    return length;
}

static size_t string_length(const char *text, size_t left)
{
    size_t length = 1;   /* the opening quote */
    while (length < left && text[length] != '"')
        length += text[length] == '\\' ? 2 : 1;
    return length < left ? length + 1 : left;
}

static bool integer_too_big(const char *token, size_t length)
{
    if (length >= WIDEST_TOKEN || memchr(token, '.', length) != NULL ||
        memchr(token, 'e', length) != NULL || memchr(token, 'E', length) != NULL)
        return false;
    char copy[WIDEST_TOKEN];
    memcpy(copy, token, length);
    copy[length] = '\0';
    errno = 0;
    char *end = NULL;
    (void)strtoll(copy, &end, 10);
    return errno == ERANGE && *end == '\0';
}

/* The text with ".0" after every integer token past 64 bits (outside
 * strings); NULL when there is none or memory is short. */
static char *widen_big_integers(const char *text, size_t length, size_t *widened_length)
{
    char *out = NULL;
    size_t used = 0, capacity = 0, position = 0, copied = 0;
    while (position < length) {
        char c = text[position];
        if (c == '"') {
            position += string_length(text + position, length - position);
            continue;
        }
        if (c != '-' && (c < '0' || c > '9')) {
            position++;
            continue;
        }
        size_t token = number_length(text + position, length - position);
        position += token;
        if (!integer_too_big(text + position - token, token))
            continue;
        size_t need = used + (position - copied) + 2 + (length - position) + 1;
        if (need > capacity) {
            capacity = need * 2;
            char *grown = realloc(out, capacity);
            if (grown == NULL) {
                free(out);
                return NULL;
            }
            out = grown;
        }
        memcpy(out + used, text + copied, position - copied);
        used += position - copied;
        memcpy(out + used, ".0", 2);
        used += 2;
        copied = position;
    }
    if (out == NULL)
        return NULL;
    memcpy(out + used, text + copied, length - copied);
    used += length - copied;
    out[used] = '\0';
    *widened_length = used;
    return out;
}

json_t *ms_api_json_loadb(const char *text, size_t length, size_t flags, json_error_t *error)
{
    json_t *value = json_loadb(text, length, flags, error);
    if (value != NULL || json_error_code(error) != json_error_numeric_overflow)
        return value;
    size_t widened_length = 0;
    char *widened = widen_big_integers(text, length, &widened_length);
    if (widened == NULL)
        return NULL;   /* the first error stands */
    json_error_t widened_error;
    value = json_loadb(widened, widened_length, flags, &widened_error);
    free(widened);
    return value;
}
