/* The key rules (algorithms.md section 3), decided for every output tensor
 * before any is computed: the output header is known up front. */
#include "merge_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const pruned_prefixes[] = {
    "model.diffusion_model.", "first_stage_model.", "cond_stage_model.",
};

static bool starts_with(const char *text, const char *prefix)
{
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

static bool kept_by_prune(const char *name)
{
    for (size_t i = 0; i < sizeof pruned_prefixes / sizeof pruned_prefixes[0]; i++)
        if (starts_with(name, pruned_prefixes[i]))
            return true;
    return false;
}

static bool same_shape(const ms_tensor_info *x, const ms_tensor_info *y)
{
    if (x->ndim != y->ndim)
        return false;
    for (int i = 0; i < x->ndim; i++)
        if (x->shape[i] != y->shape[i])
            return false;
    return true;
}

static void set_shape(merge_entry *entry, const ms_tensor_info *tensor)
{
    entry->ndim = tensor->ndim;
    memcpy(entry->shape, tensor->shape, sizeof entry->shape);
}

/* Merged tensors, and B's float tensors, in the precision asked for. */
static ms_dtype output_dtype(const ms_merge_params *params, ms_dtype own)
{
    if (!ms_dtype_is_float(own))
        return own;
    return params->precision == 16 ? MS_DTYPE_F16 : MS_DTYPE_F32;
}

static void copy_from(merge_entry *entry, const ms_tensor_info *tensor, int model,
                      const ms_merge_params *params)
{
    entry->source = tensor;
    entry->source_model = model;
    entry->action = model == 0 ? MS_MERGE_ACTION_COPIED_FROM_A : MS_MERGE_ACTION_TAKEN_FROM_B;
    entry->dtype = model == 0 ? tensor->dtype : output_dtype(params, tensor->dtype);
    set_shape(entry, tensor);
}

static void position_ids(merge_entry *entry)
{
    entry->action = MS_MERGE_ACTION_POSITION_IDS;
    entry->dtype = MS_DTYPE_I64;
    entry->ndim = 2;
    entry->shape[0] = 1;
    entry->shape[1] = 77;
}

static ms_status shape_mismatch(const char *name, const char *other, const ms_tensor_info *a,
                                const ms_tensor_info *x, ms_error *err)
{
    char a_text[160] = "", x_text[160] = "";
    for (int i = 0; i < a->ndim; i++)
        snprintf(a_text + strlen(a_text), sizeof a_text - strlen(a_text), "%s%" PRId64,
                 i ? "," : "", a->shape[i]);
    for (int i = 0; i < x->ndim; i++)
        snprintf(x_text + strlen(x_text), sizeof x_text - strlen(x_text), "%s%" PRId64,
                 i ? "," : "", x->shape[i]);
    ms_error_set(err, MS_ERR_SHAPE_MISMATCH, name,
                 "key \"%s\" has shape [%s] in model_a and [%s] in %s: the models do not have "
                 "the same architecture", name, a_text, x_text, other);
    ms_error_detail_add(err, "model_a_shape", "[%s]", a_text);
    ms_error_detail_add(err, "other_shape", "[%s]", x_text);
    ms_error_detail_add(err, "other_model", "%s", other);
    return MS_ERR_SHAPE_MISMATCH;
}

/* Inpainting and pix2pix UNets differ from plain ones in dim 1 of a few
 * keys: the one with the larger dim 1 is kept, unmerged.  Any other
 * difference means different architectures. */
static ms_status differing_shapes(merge_entry *entry, const ms_tensor_info *a,
                                  const ms_tensor_info *b, const ms_merge_params *params,
                                  ms_error *err)
{
    if (a->ndim < 2 || a->ndim != b->ndim || a->shape[1] == b->shape[1])
        return shape_mismatch(entry->name, "model_b", a, b, err);
    for (int i = 0; i < a->ndim; i++)
        if (i != 1 && a->shape[i] != b->shape[i])
            return shape_mismatch(entry->name, "model_b", a, b, err);
    if (a->shape[1] > b->shape[1])
        copy_from(entry, a, 0, params);
    else
        copy_from(entry, b, 1, params);
    return MS_OK;
}

static void set_weights(merge_entry *entry, const ms_merge_params *params,
                        ms_merge_architecture arch)
{
    entry->alpha = ms_block_weight_for_key(&params->alpha, arch, entry->name, params->base_alpha,
                                           &entry->alpha_block);
    entry->beta = ms_block_weight_for_key(&params->beta, arch, entry->name, params->base_beta,
                                          &entry->beta_block);
}

/* One key of A, by the rules in their order. */
static ms_status plan_key_of_a(const merge_input *inputs, int model_count, const merge_key *key,
                               const ms_merge_params *params, ms_merge_architecture arch,
                               merge_entry *entry, ms_error *err)
{
    const ms_tensor_info *a = key->tensor;
    entry->name = key->name;
    if (strcmp(key->name, MS_MERGE_POSITION_IDS_KEY) == 0) {
        position_ids(entry);
        return MS_OK;
    }
    const merge_key *b_key = ms_merge_input_find(&inputs[1], key->name);
    const merge_key *c_key = model_count == 3 ? ms_merge_input_find(&inputs[2], key->name) : NULL;
    bool unmerged = (params->prune && !kept_by_prune(key->name)) ||
                    strstr(key->name, "model") == NULL || b_key == NULL ||
                    (model_count == 3 && c_key == NULL);
    if (!unmerged && !same_shape(a, b_key->tensor))
        return differing_shapes(entry, a, b_key->tensor, params, err);
    /* integer tensors (and any other non-float) are not weights */
    if (unmerged || !ms_dtype_is_float(a->dtype) || !ms_dtype_is_float(b_key->tensor->dtype) ||
        (c_key != NULL && !ms_dtype_is_float(c_key->tensor->dtype))) {
        copy_from(entry, a, 0, params);
        return MS_OK;
    }
    if (c_key != NULL && !same_shape(a, c_key->tensor))
        return shape_mismatch(key->name, "model_c", a, c_key->tensor, err);
    entry->action = MS_MERGE_ACTION_MERGED;
    entry->source = a;
    entry->b = b_key->tensor;
    entry->c = c_key != NULL ? c_key->tensor : NULL;
    entry->dtype = output_dtype(params, a->dtype);
    set_shape(entry, a);
    set_weights(entry, params, arch);
    return MS_OK;
}

/* Keys only B has: B's when their name contains "model" (or, with prune,
 * when the un-prune step brings them back). */
static bool taken_from_b_only(const char *name, const ms_merge_params *params)
{
    if (params->prune && !kept_by_prune(name))
        return true;
    return strstr(name, "model") != NULL;
}

ms_status ms_merge_plan_build(const merge_input *inputs, int model_count,
                              const ms_merge_params *params, ms_merge_architecture arch,
                              merge_plan *plan, ms_error *err)
{
    memset(plan, 0, sizeof *plan);
    size_t capacity = inputs[0].key_count + inputs[1].key_count + 1;
    plan->entries = calloc(capacity, sizeof *plan->entries);
    if (plan->entries == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    for (size_t i = 0; i < inputs[0].key_count; i++) {
        merge_entry *entry = &plan->entries[plan->count];
        entry->alpha_block = entry->beta_block = -1;
        ms_status status = plan_key_of_a(inputs, model_count, &inputs[0].keys[i], params, arch,
                                         entry, err);
        if (status != MS_OK)
            return status;
        plan->count++;
    }
    for (size_t i = 0; i < inputs[1].key_count; i++) {
        const merge_key *key = &inputs[1].keys[i];
        if (ms_merge_input_find(&inputs[0], key->name) != NULL ||
            !taken_from_b_only(key->name, params))
            continue;
        merge_entry *entry = &plan->entries[plan->count++];
        entry->name = key->name;
        entry->alpha_block = entry->beta_block = -1;
        if (strcmp(key->name, MS_MERGE_POSITION_IDS_KEY) == 0)
            position_ids(entry);
        else
            copy_from(entry, key->tensor, 1, params);
    }
    return MS_OK;
}

void ms_merge_plan_free(merge_plan *plan)
{
    free(plan->entries);
    memset(plan, 0, sizeof *plan);
}
