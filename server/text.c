#include "text.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(ms_text *text, size_t extra)
{
    if (text->failed)
        return false;
    size_t needed = text->length + extra + 1;
    if (needed <= text->capacity)
        return true;
    size_t capacity = text->capacity > 0 ? text->capacity : 256;
    while (capacity < needed)
        capacity *= 2;
    char *data = realloc(text->data, capacity);
    if (data == NULL) {
        text->failed = true;
        return false;
    }
    text->data = data;
    text->capacity = capacity;
    return true;
}

void ms_text_init(ms_text *text, size_t capacity)
{
    memset(text, 0, sizeof *text);
    if (reserve(text, capacity))
        text->data[0] = '\0';
}

void ms_text_append(ms_text *text, const char *bytes, size_t length)
{
    if (!reserve(text, length))
        return;
    memcpy(text->data + text->length, bytes, length);
    text->length += length;
    text->data[text->length] = '\0';
}

void ms_text_puts(ms_text *text, const char *string)
{
    ms_text_append(text, string, strlen(string));
}

void ms_text_printf(ms_text *text, const char *format, ...)
{
    if (!reserve(text, 64))
        return;
    va_list args;
    va_start(args, format);
    int needed = vsnprintf(text->data + text->length, text->capacity - text->length, format, args);
    va_end(args);
    if (needed < 0) {
        text->failed = true;
        return;
    }
    if ((size_t)needed >= text->capacity - text->length) {
        if (!reserve(text, (size_t)needed))
            return;
        va_start(args, format);
        vsnprintf(text->data + text->length, text->capacity - text->length, format, args);
        va_end(args);
    }
    text->length += (size_t)needed;
}

size_t ms_format_uint(char digits[MS_UINT_DIGITS_MAX], unsigned long long value, int min_digits)
{
    char reversed[MS_UINT_DIGITS_MAX];
    size_t count = 0;
    do {
        reversed[count++] = (char)('0' + value % 10);
        value /= 10;
    } while ((value > 0 || (int)count < min_digits) && count < MS_UINT_DIGITS_MAX);
    for (size_t i = 0; i < count; i++)
        digits[i] = reversed[count - 1 - i];
    return count;
}

void ms_text_put_uint(ms_text *text, unsigned long long value)
{
    char digits[MS_UINT_DIGITS_MAX];
    ms_text_append(text, digits, ms_format_uint(digits, value, 1));
}

void ms_text_put_fixed(ms_text *text, double value, int decimals)
{
    if (decimals < 0)
        decimals = 0;
    if (decimals > 9)
        decimals = 9;
    if (!(value >= 0.0 && value < 1e15)) {   /* also NaN */
        ms_text_printf(text, "%.17g", value);
        return;
    }
    unsigned long long scale = 1;
    for (int i = 0; i < decimals; i++)
        scale *= 10;
    /* below 1e15 * 1e9 < 2^64 after scaling: no overflow */
    unsigned long long scaled = (unsigned long long)floor(value * (double)scale + 0.5);
    unsigned long long whole = scaled / scale, part = scaled % scale;
    char digits[48];
    size_t length = ms_format_uint(digits, whole, 1);
    int kept = decimals;
    while (kept > 0 && part % 10 == 0) {
        part /= 10;
        kept--;
    }
    if (kept > 0) {
        digits[length++] = '.';
        for (int i = kept - 1; i >= 0; i--) {
            digits[length + (size_t)i] = (char)('0' + part % 10);
            part /= 10;
        }
        length += (size_t)kept;
    }
    ms_text_append(text, digits, length);
}

char *ms_text_take(ms_text *text)
{
    char *data = text->failed ? NULL : text->data;
    if (text->failed)
        free(text->data);
    memset(text, 0, sizeof *text);
    return data;
}

ms_shared_text *ms_shared_text_new(const char *text)
{
    if (text == NULL)
        return NULL;
    size_t length = strlen(text);
    ms_shared_text *shared = malloc(sizeof *shared + length + 1);
    if (shared == NULL)
        return NULL;
    atomic_init(&shared->references, 1);
    shared->length = length;
    memcpy(shared->data, text, length + 1);
    return shared;
}

ms_shared_text *ms_shared_text_retain(ms_shared_text *text)
{
    if (text != NULL)
        atomic_fetch_add_explicit(&text->references, 1, memory_order_relaxed);
    return text;
}

void ms_shared_text_release(ms_shared_text *text)
{
    if (text != NULL && atomic_fetch_sub_explicit(&text->references, 1, memory_order_acq_rel) == 1)
        free(text);
}
