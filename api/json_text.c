#include "json_text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/format/python_float.h"

/* Length of the valid UTF-8 sequence starting at bytes, 0 when invalid. */
static size_t utf8_sequence_length(const unsigned char *bytes)
{
    unsigned char lead = bytes[0];
    size_t length;
    unsigned int code_point;
    if (lead < 0x80)
        return 1;
    if ((lead & 0xE0) == 0xC0) {
        length = 2;
        code_point = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
        length = 3;
        code_point = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
        length = 4;
        code_point = lead & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < length; i++) {
        if ((bytes[i] & 0xC0) != 0x80)
            return 0;   /* also stops at the terminating NUL */
        code_point = (code_point << 6) | (bytes[i] & 0x3F);
    }
    static const unsigned int minimum[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (code_point < minimum[length] || code_point > 0x10FFFF ||
        (code_point >= 0xD800 && code_point <= 0xDFFF))
        return 0;
    return length;
}

bool ms_api_text_is_utf8(const char *text)
{
    const unsigned char *bytes = (const unsigned char *)text;
    while (*bytes != '\0') {
        size_t length = utf8_sequence_length(bytes);
        if (length == 0)
            return false;
        bytes += length;
    }
    return true;
}

json_t *ms_api_json_text(const char *text)
{
    if (text == NULL)
        return json_null();
    json_t *value = json_string(text);
    if (value != NULL)
        return value;
    size_t size = strlen(text);
    char *clean = malloc(size + 1);
    if (clean == NULL)
        return json_string("?");
    const unsigned char *bytes = (const unsigned char *)text;
    size_t position = 0;
    while (position < size) {
        size_t length = utf8_sequence_length(bytes + position);
        if (length == 0) {
            clean[position++] = '?';
            continue;
        }
        memcpy(clean + position, bytes + position, length);
        position += length;
    }
    clean[size] = '\0';
    value = json_string(clean);
    free(clean);
    return value != NULL ? value : json_string("?");
}

json_t *ms_api_json_number(double value)
{
    return isfinite(value) ? json_real(value) : json_null();
}

/* The marked string ms_api_json_uint64 makes, as json_dumps writes it. */
static const char UINT64_MARK[] = "\"\\u0000#";

json_t *ms_api_json_uint64(uint64_t value)
{
    if (value <= (uint64_t)INT64_MAX)
        return json_integer((json_int_t)value);
    char text[2 + 20 + 1];
    int length = snprintf(text, sizeof text, "%c#%llu", '\0', (unsigned long long)value);
    return json_stringn(text, (size_t)length);
}

/* jansson prints reals with %.17g and has no per-value hook, so its text is
 * rewritten: every number token outside strings that has a '.' or an
 * exponent is a real (jansson adds ".0" to integral ones), and %.17g reads
 * back exactly, so strtod gives the very double that is then printed in its
 * shortest form.  Everything else (strings, escapes, integers, layout) stays
 * byte for byte jansson's. */
enum { SHORTEST_REAL_MAX = 32 };

static size_t number_length(const char *text)
{
    size_t length = 0;
    while (text[length] != '\0' && strchr("0123456789+-.eE", text[length]) != NULL)
        length++;
    return length;
}

/* Where the string starting at text (its opening quote) ends, past the
 * closing quote. */
static const char *skip_string(const char *text)
{
    text++;
    while (*text != '\0' && *text != '"')
        text += text[0] == '\\' && text[1] != '\0' ? 2 : 1;
    return *text == '"' ? text + 1 : text;
}

static size_t count_numbers(const char *text)
{
    size_t count = 0;
    while (*text != '\0') {
        if (*text == '"') {
            text = skip_string(text);
        } else if (*text == '-' || (*text >= '0' && *text <= '9')) {
            count++;
            text += number_length(text);
        } else {
            text++;
        }
    }
    return count;
}

static char *shorten_reals(const char *text)
{
    size_t size = strlen(text) + count_numbers(text) * SHORTEST_REAL_MAX + 1;
    char *out = malloc(size);
    if (out == NULL)
        return NULL;
    size_t used = 0;
    while (*text != '\0') {
        const char *start = text;
        if (strncmp(text, UINT64_MARK, strlen(UINT64_MARK)) == 0) {
            start += strlen(UINT64_MARK);   /* the digits, without the quotes */
            text = skip_string(text);
            size_t digits = (size_t)(text - start) - 1;
            memcpy(out + used, start, digits);
            used += digits;
            continue;
        }
        if (*text == '"') {
            text = skip_string(text);
        } else if (*text == '-' || (*text >= '0' && *text <= '9')) {
            size_t length = number_length(text);
            text += length;
            if (strcspn(start, ".eE") < length) {
                ms_python_float_str(strtod(start, NULL), out + used, SHORTEST_REAL_MAX);
                used += strlen(out + used);
                continue;
            }
        } else {
            text++;
        }
        memcpy(out + used, start, (size_t)(text - start));
        used += (size_t)(text - start);
    }
    out[used] = '\0';
    return out;
}

static char *dump_shortest(const json_t *value, size_t flags)
{
    char *text = json_dumps(value, flags & ~(size_t)JSON_REAL_PRECISION(31));
    if (text == NULL)
        return NULL;
    char *shortest = shorten_reals(text);
    free(text);
    return shortest;
}

char *ms_api_json_dumps(const json_t *value, size_t flags)
{
    return dump_shortest(value, JSON_COMPACT | flags);
}

int ms_api_json_dumpf(const json_t *value, FILE *stream, size_t flags)
{
    char *text = dump_shortest(value, flags);
    if (text == NULL)
        return -1;
    int status = fputs(text, stream) < 0 ? -1 : 0;
    free(text);
    return status;
}
