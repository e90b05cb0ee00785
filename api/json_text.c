#include "json_text.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
