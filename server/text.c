#include "text.h"

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
