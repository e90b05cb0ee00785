/* The provenance a merged file carries in its metadata: how it was made, as
 * one JSON string.  Numbers are written in their shortest exact form, so a
 * weight of 0.9 reads 0.9. */
#include "merge_internal.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/format/python_float.h"

typedef struct recipe_text {
    char *text;
    size_t length, capacity;
    bool failed;
} recipe_text;

static void append(recipe_text *out, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void append(recipe_text *out, const char *format, ...)
{
    if (out->failed)
        return;
    va_list arguments;
    va_start(arguments, format);
    va_list again;
    va_copy(again, arguments);
    int needed = vsnprintf(NULL, 0, format, arguments);
    va_end(arguments);
    size_t wanted = out->length + (size_t)(needed < 0 ? 0 : needed) + 1;
    if (needed >= 0 && wanted > out->capacity) {
        char *grown = realloc(out->text, 2 * wanted);
        if (grown != NULL) {
            out->text = grown;
            out->capacity = 2 * wanted;
        }
    }
    if (needed < 0 || wanted > out->capacity) {
        out->failed = true;
        va_end(again);
        return;
    }
    vsnprintf(out->text + out->length, out->capacity - out->length, format, again);
    va_end(again);
    out->length += (size_t)needed;
}

static void append_number(recipe_text *out, double value)
{
    char text[40];
    ms_python_float_str(value, text, sizeof text);
    append(out, "%s", text);
}

static void append_string(recipe_text *out, const char *value)
{
    json_t *string = json_string(value);
    char *quoted = string != NULL ? json_dumps(string, JSON_ENCODE_ANY) : NULL;
    if (quoted == NULL)
        append(out, "null");   /* not UTF-8: the recipe stays valid JSON */
    else
        append(out, "%s", quoted);
    free(quoted);
    json_decref(string);
}

static void append_weights(recipe_text *out, const ms_block_weights *weights)
{
    if (weights->form == MS_BLOCKS_NONE) {
        append(out, "null");
        return;
    }
    bool named = weights->form == MS_BLOCKS_NAMED;
    append(out, named ? "{" : "[");
    size_t limit = named ? MS_BLOCK_NAMED_COUNT : weights->count;
    bool first = true;
    for (size_t i = 0; i < limit; i++) {
        if (named && !weights->present[i])
            continue;
        append(out, first ? "" : ",");
        if (named)
            append(out, "\"%s\":", ms_block_name((int)i));
        append_number(out, weights->values[i]);
        first = false;
    }
    append(out, named ? "}" : "]");
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

char *ms_merge_recipe_text(const ms_merge_params *params, const merge_input *inputs,
                           int model_count)
{
    static const char *const roles[] = {"model_a", "model_b", "model_c"};
    recipe_text out = {0};
    append(&out, "{\"method\":\"%s\",\"base_alpha\":", params->method->name);
    append_number(&out, params->base_alpha);
    append(&out, ",\"base_beta\":");
    append_number(&out, params->base_beta);
    append(&out, ",\"alpha\":");
    append_weights(&out, &params->alpha);
    append(&out, ",\"beta\":");
    append_weights(&out, &params->beta);
    append(&out, ",\"precision\":%d,\"weights_clip\":%s,\"prune\":%s,\"nan_policy\":\"%s\"",
           params->precision, params->weights_clip ? "true" : "false",
           params->prune ? "true" : "false", ms_nan_policy_name(params->nan_policy));
    append(&out, ",\"models\":{");
    for (int i = 0; i < model_count; i++) {
        append(&out, "%s\"%s\":{\"file\":", i ? "," : "", roles[i]);
        append_string(&out, base_name(inputs[i].path));
        append(&out, ",\"bytes\":%" PRIu64 "}", inputs[i].file.file_size);
    }
    append(&out, "},\"tool\":\"mergesvd\"}");
    if (out.failed) {
        free(out.text);
        return NULL;
    }
    return out.text;
}
