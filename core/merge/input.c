/* A merge input: its file, and its keys under the names the key rules
 * match on (old checkpoints spell text-encoder keys without "text_model."). */
#include "merge_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char old_prefix[] = "cond_stage_model.transformer.";
static const char new_prefix[] = "cond_stage_model.transformer.text_model.";
static const char *const renamed_parts[] = {"embeddings.", "encoder.", "final_layer_norm."};

/* The canonical name (malloced): the old spelling renamed, others as they are. */
static char *canonical_name(const char *name)
{
    size_t old_length = sizeof old_prefix - 1;
    if (strncmp(name, old_prefix, old_length) == 0) {
        const char *tail = name + old_length;
        for (size_t i = 0; i < sizeof renamed_parts / sizeof renamed_parts[0]; i++) {
            if (strncmp(tail, renamed_parts[i], strlen(renamed_parts[i])) != 0)
                continue;
            size_t size = sizeof new_prefix + strlen(tail);
            char *renamed = malloc(size);
            if (renamed != NULL)
                snprintf(renamed, size, "%s%s", new_prefix, tail);
            return renamed;
        }
    }
    return strdup(name);
}

static int compare_keys(const void *left, const void *right)
{
    return strcmp(((const merge_key *)left)->name, ((const merge_key *)right)->name);
}

ms_status ms_merge_input_open(merge_input *input, const char *path, ms_error *err)
{
    memset(input, 0, sizeof *input);
    input->path = path;
    ms_status status = ms_safetensors_open(path, &input->file, err);
    if (status != MS_OK)
        return status;
    input->open = true;
    size_t count = input->file.tensor_count;
    input->keys = calloc(count + 1, sizeof *input->keys);
    if (input->keys == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    for (size_t i = 0; i < count; i++) {
        input->keys[i].tensor = &input->file.tensors[i];
        input->keys[i].name = canonical_name(input->file.tensors[i].name);
        input->key_count = i + 1;
        if (input->keys[i].name == NULL)
            return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    }
    qsort(input->keys, count, sizeof *input->keys, compare_keys);
    for (size_t i = 1; i < count; i++) {
        if (strcmp(input->keys[i - 1].name, input->keys[i].name) != 0)
            continue;
        ms_error_set(err, MS_ERR_DUPLICATE_KEY, input->keys[i].name,
                     "%s spells text-encoder key \"%s\" both with and without \"text_model.\"",
                     path, input->keys[i].name);
        ms_error_detail_add(err, "first", "%s", input->keys[i - 1].tensor->name);
        ms_error_detail_add(err, "second", "%s", input->keys[i].tensor->name);
        return MS_ERR_DUPLICATE_KEY;
    }
    return MS_OK;
}

void ms_merge_input_close(merge_input *input)
{
    for (size_t i = 0; i < input->key_count; i++)
        free(input->keys[i].name);
    free(input->keys);
    if (input->open)
        ms_safetensors_close(&input->file);
    memset(input, 0, sizeof *input);
}

const merge_key *ms_merge_input_find(const merge_input *input, const char *canonical_name)
{
    merge_key probe = {.name = (char *)canonical_name};
    return bsearch(&probe, input->keys, input->key_count, sizeof *input->keys, compare_keys);
}
