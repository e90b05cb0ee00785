/* Grouping a file's tensors into LoRA modules (lora.h).
 *
 * One pass over the tensors: every name ending in a down suffix starts a
 * candidate module, whose up and alpha are found by binary search in the
 * sorted tensor table, so a file with thousands of tensors costs
 * O(n log n). Everything not claimed by a complete module is passthrough. */
#include "lora.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef struct spelling_suffixes {
    ms_lora_spelling spelling;
    const char *down;
    const char *up;
} spelling_suffixes;

/* The ".weight" forms first, so "x.lora_down.weight" is never read as a
 * module named "x.lora_down" of some other spelling. */
static const spelling_suffixes suffixes[] = {
    {MS_LORA_SPELLING_KOHYA, ".lora_down.weight", ".lora_up.weight"},
    {MS_LORA_SPELLING_PEFT, ".lora_A.weight", ".lora_B.weight"},
    {MS_LORA_SPELLING_CONTROL, ".down.weight", ".up.weight"},
    {MS_LORA_SPELLING_KOHYA, ".lora_down", ".lora_up"},
    {MS_LORA_SPELLING_PEFT, ".lora_A", ".lora_B"},
    {MS_LORA_SPELLING_CONTROL, ".down", ".up"},
};

#define COUNT_OF(array) (sizeof(array) / sizeof((array)[0]))

const char *ms_lora_spelling_name(ms_lora_spelling spelling)
{
    switch (spelling) {
    case MS_LORA_SPELLING_KOHYA:
        return "kohya";
    case MS_LORA_SPELLING_PEFT:
        return "peft";
    case MS_LORA_SPELLING_CONTROL:
        return "control";
    }
    return "unknown";
}

static bool ends_with(const char *name, size_t length, const char *suffix)
{
    size_t suffix_length = strlen(suffix);
    return length > suffix_length && strcmp(name + length - suffix_length, suffix) == 0;
}

static const spelling_suffixes *down_suffix_of(const char *name)
{
    size_t length = strlen(name);
    for (size_t i = 0; i < COUNT_OF(suffixes); i++)
        if (ends_with(name, length, suffixes[i].down))
            return &suffixes[i];
    return NULL;
}

/* NAME + suffix, or NULL when out of memory. */
static char *joined(const char *name, size_t name_length, const char *suffix)
{
    size_t suffix_length = strlen(suffix);
    char *text = malloc(name_length + suffix_length + 1);
    if (text != NULL) {
        memcpy(text, name, name_length);
        memcpy(text + name_length, suffix, suffix_length + 1);
    }
    return text;
}

static ms_status out_of_memory(ms_error *err)
{
    return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory grouping LoRA modules");
}

static ms_status shape_error(ms_error *err, const ms_tensor_info *tensor, const char *what)
{
    ms_error_set(err, MS_ERR_SHAPE_MISMATCH, tensor->name, "%s: %s", tensor->name, what);
    ms_error_detail_add(err, "ndim", "%d", tensor->ndim);
    return MS_ERR_SHAPE_MISMATCH;
}

static ms_status check_float(ms_error *err, const ms_tensor_info *tensor)
{
    if (ms_dtype_is_float(tensor->dtype))
        return MS_OK;
    ms_error_set(err, MS_ERR_UNSUPPORTED_DTYPE, tensor->name,
                 "%s: LoRA weights must be a float dtype, not %s", tensor->name,
                 ms_dtype_name(tensor->dtype));
    ms_error_detail_add(err, "dtype", "%s", ms_dtype_name(tensor->dtype));
    return MS_ERR_UNSUPPORTED_DTYPE;
}

static ms_status check_alpha(const ms_tensor_info *alpha, ms_error *err)
{
    if (alpha == NULL)
        return MS_OK;
    /* kohya writes a 0-d tensor; a one-element [1] is read the same way. */
    if (alpha->element_count != 1 || !ms_dtype_is_float(alpha->dtype))
        return shape_error(err, alpha, "alpha must be a scalar float");
    return MS_OK;
}

/* down [r, in] or [r, in, kh, kw]; up [out, r] or [out, r, 1, 1]. */
static ms_status check_shapes(ms_lora_module *module, ms_error *err)
{
    const ms_tensor_info *down = module->down, *up = module->up;
    ms_status status = check_float(err, down);
    if (status == MS_OK)
        status = check_float(err, up);
    if (status != MS_OK)
        return status;
    if (down->ndim != 2 && down->ndim != 4)
        return shape_error(err, down, "down must be 2-D or 4-D");
    if (up->ndim != down->ndim)
        return shape_error(err, up, "up and down must both be 2-D or both 4-D");
    if (up->ndim == 4 && (up->shape[2] != 1 || up->shape[3] != 1))
        return shape_error(err, up, "a 4-D up must be [out, r, 1, 1]");
    for (int i = 0; i < down->ndim; i++)
        if (down->shape[i] < 1 || up->shape[i] < 1)
            return shape_error(err, down->shape[i] < 1 ? down : up, "empty dimension");
    if (down->shape[0] != up->shape[1]) {
        ms_error_set(err, MS_ERR_RANK_MISMATCH, up->name,
                     "%s: rank %lld does not match %s rank %lld", up->name,
                     (long long)up->shape[1], down->name, (long long)down->shape[0]);
        ms_error_detail_add(err, "up_rank", "%lld", (long long)up->shape[1]);
        ms_error_detail_add(err, "down_rank", "%lld", (long long)down->shape[0]);
        ms_error_detail_add(err, "down", "%s", down->name);
        return MS_ERR_RANK_MISMATCH;
    }
    if (down->shape[0] > INT_MAX)
        return shape_error(err, down, "rank too large");
    module->rank = (int)down->shape[0];
    module->out_features = up->shape[0];
    module->is_conv = down->ndim == 4;
    module->kernel_h = module->is_conv ? down->shape[2] : 1;
    module->kernel_w = module->is_conv ? down->shape[3] : 1;
    /* element_count was validated by the reader, so this cannot overflow */
    module->in_features = (int64_t)(down->element_count / (uint64_t)down->shape[0]);
    return check_alpha(module->alpha, err);
}

/* The up of a module: same ".weight" convention first, then the other. */
static const ms_tensor_info *find_up(const ms_safetensors *file, const char *name,
                                     size_t name_length, const spelling_suffixes *suffix,
                                     bool *out_of_memory_flag)
{
    const char *candidates[2] = {suffix->up, NULL};
    for (size_t i = 0; i < COUNT_OF(suffixes); i++)
        if (suffixes[i].spelling == suffix->spelling && suffixes[i].up != suffix->up)
            candidates[1] = suffixes[i].up;
    for (int i = 0; i < 2; i++) {
        char *key = joined(name, name_length, candidates[i]);
        if (key == NULL) {
            *out_of_memory_flag = true;
            return NULL;
        }
        const ms_tensor_info *up = ms_safetensors_find(file, key);
        free(key);
        if (up != NULL)
            return up;
    }
    return NULL;
}

static int compare_modules(const void *a, const void *b)
{
    return strcmp(((const ms_lora_module *)a)->name, ((const ms_lora_module *)b)->name);
}

/* Tries to build the module whose down is tensor; *found false when it has
 * no up (then its tensors stay passthrough). */
static ms_status build_module(const ms_safetensors *file, const ms_tensor_info *tensor,
                              ms_lora_module *module, bool *found, ms_error *err)
{
    *found = false;
    const spelling_suffixes *suffix = down_suffix_of(tensor->name);
    if (suffix == NULL)
        return MS_OK;
    size_t name_length = strlen(tensor->name) - strlen(suffix->down);
    bool no_memory = false;
    const ms_tensor_info *up = find_up(file, tensor->name, name_length, suffix, &no_memory);
    if (no_memory)
        return out_of_memory(err);
    if (up == NULL)
        return MS_OK;
    memset(module, 0, sizeof *module);
    module->name = joined(tensor->name, name_length, "");
    char *alpha_key = joined(tensor->name, name_length, ".alpha");
    if (module->name == NULL || alpha_key == NULL) {
        free(module->name);
        free(alpha_key);
        module->name = NULL;
        return out_of_memory(err);
    }
    module->spelling = suffix->spelling;
    module->down = tensor;
    module->up = up;
    module->alpha = ms_safetensors_find(file, alpha_key);
    free(alpha_key);
    *found = true;
    return check_shapes(module, err);
}

/* Two modules with one NAME (two spellings, or with and without ".weight")
 * would both write NAME.alpha: refuse rather than guess. */
static ms_status check_unique_names(const ms_lora_module_list *list, ms_error *err)
{
    for (size_t i = 1; i < list->count; i++) {
        if (strcmp(list->modules[i - 1].name, list->modules[i].name) == 0) {
            const ms_lora_module *second = &list->modules[i];
            ms_error_set(err, MS_ERR_DUPLICATE_KEY, second->down->name,
                         "%s and %s both define LoRA module %s", list->modules[i - 1].down->name,
                         second->down->name, second->name);
            return MS_ERR_DUPLICATE_KEY;
        }
    }
    return MS_OK;
}

static ms_status collect_passthrough(const ms_safetensors *file, ms_lora_module_list *list,
                                     ms_error *err)
{
    bool *claimed = calloc(file->tensor_count ? file->tensor_count : 1, sizeof(bool));
    list->passthrough = malloc((file->tensor_count ? file->tensor_count : 1)
                               * sizeof(*list->passthrough));
    if (claimed == NULL || list->passthrough == NULL) {
        free(claimed);
        return out_of_memory(err);
    }
    for (size_t i = 0; i < list->count; i++) {
        const ms_lora_module *module = &list->modules[i];
        claimed[module->down - file->tensors] = true;
        claimed[module->up - file->tensors] = true;
        if (module->alpha != NULL)
            claimed[module->alpha - file->tensors] = true;
    }
    for (size_t i = 0; i < file->tensor_count; i++)
        if (!claimed[i])
            list->passthrough[list->passthrough_count++] = &file->tensors[i];
    free(claimed);
    return MS_OK;
}

ms_status ms_lora_find_modules(const ms_safetensors *file, ms_lora_module_list *list,
                               ms_error *err)
{
    memset(list, 0, sizeof *list);
    ms_status status = MS_OK;
    list->modules = calloc(file->tensor_count ? file->tensor_count : 1, sizeof *list->modules);
    if (list->modules == NULL)
        return out_of_memory(err);
    for (size_t i = 0; i < file->tensor_count && status == MS_OK; i++) {
        bool found = false;
        status = build_module(file, &file->tensors[i], &list->modules[list->count], &found, err);
        if (found)
            list->count++;
    }
    if (status == MS_OK) {
        qsort(list->modules, list->count, sizeof *list->modules, compare_modules);
        status = check_unique_names(list, err);
    }
    if (status == MS_OK)
        status = collect_passthrough(file, list, err);
    if (status != MS_OK)
        ms_lora_module_list_free(list);
    return status;
}

void ms_lora_module_list_free(ms_lora_module_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->modules[i].name);
    free(list->modules);
    free(list->passthrough);
    memset(list, 0, sizeof *list);
}

ms_status ms_lora_module_alpha(const ms_safetensors *file, const ms_lora_module *module,
                               double *alpha, ms_error *err)
{
    if (module->alpha == NULL) {
        *alpha = (double)module->rank;
        return MS_OK;
    }
    if (module->alpha->element_count != 1 || !ms_dtype_is_float(module->alpha->dtype))
        return shape_error(err, module->alpha, "alpha must be a scalar float");
    return ms_safetensors_read_doubles(file, module->alpha, alpha, err);
}
