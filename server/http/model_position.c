/* The listing order of models and the cursor that names a place in it. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/json_text.h"
#include "model_index.h"

/* Folder by folder equals bytewise with '/' below every other byte (names
 * hold neither '/' nor NUL): "a/b" before "a.b", as the walk meets them. */
static unsigned path_rank(char byte)
{
    if (byte == '\0')
        return 0;
    if (byte == '/')
        return 1;
    return (unsigned)(unsigned char)byte + 1;
}

int ms_model_position_compare(const ms_model_position *a, const ms_model_position *b)
{
    if (a->root != b->root)
        return a->root < b->root ? -1 : 1;
    for (const char *left = a->path, *right = b->path;; left++, right++) {
        unsigned left_rank = path_rank(*left), right_rank = path_rank(*right);
        if (left_rank != right_rank)
            return left_rank < right_rank ? -1 : 1;
        if (*left == '\0')
            return 0;
    }
}

char *ms_model_cursor_format(const ms_model_position *position)
{
    static const char digits[] = "0123456789abcdef";
    size_t length = strlen(position->path);
    enum { ROOT_DIGITS = 24 };
    char *text = malloc(ROOT_DIGITS + 2 * length + 2);
    if (text == NULL)
        return NULL;
    int used = snprintf(text, ROOT_DIGITS + 2, "%zu-", position->root);
    if (used < 0 || used > ROOT_DIGITS) {
        free(text);
        return NULL;
    }
    char *out = text + used;
    for (size_t i = 0; i < length; i++) {
        unsigned char byte = (unsigned char)position->path[i];
        *out++ = digits[byte >> 4];
        *out++ = digits[byte & 15];
    }
    *out = '\0';
    return text;
}

static int hex_value(char digit)
{
    if (digit >= '0' && digit <= '9')
        return digit - '0';
    if (digit >= 'a' && digit <= 'f')
        return digit - 'a' + 10;
    return -1;   /* upper case too: only what format writes is a cursor */
}

/* Decimal digits up to '-', no sign, no leading zero but "0" itself. */
static bool parse_root(const char *text, const char **dash, size_t *root)
{
    size_t value = 0;
    const char *at = text;
    for (; *at >= '0' && *at <= '9'; at++) {
        if (value > (SIZE_MAX - 9) / 10)
            return false;
        value = value * 10 + (size_t)(*at - '0');
    }
    if (at == text || *at != '-' || (text[0] == '0' && at - text > 1))
        return false;
    *dash = at;
    *root = value;
    return true;
}

bool ms_model_cursor_parse(const char *text, size_t root_count, ms_model_position *position)
{
    const char *dash = NULL;
    size_t root = 0;
    if (text == NULL || !parse_root(text, &dash, &root) || root >= root_count)
        return false;
    const char *hex = dash + 1;
    size_t hex_length = strlen(hex);
    if (hex_length == 0 || hex_length % 2 != 0)
        return false;
    char *path = malloc(hex_length / 2 + 1);
    if (path == NULL)
        return false;
    for (size_t i = 0; i < hex_length / 2; i++) {
        int high = hex_value(hex[2 * i]), low = hex_value(hex[2 * i + 1]);
        if (high < 0 || low < 0 || (high == 0 && low == 0)) {
            free(path);
            return false;
        }
        path[i] = (char)(high << 4 | low);
    }
    path[hex_length / 2] = '\0';
    if (!ms_api_text_is_utf8(path)) {
        free(path);
        return false;
    }
    position->root = root;
    position->path = path;
    return true;
}
