/* The output metadata of a resize, as kohya's resize_lora.py writes it. */
#include "resize_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ms_resize_cap(const ms_resize_params *params, const ms_lora_module *module)
{
    if (module->is_conv && params->new_conv_rank > 0)
        return params->new_conv_rank;
    return params->new_rank;
}

static ms_status copy_input_metadata(ms_writer *writer, const ms_safetensors *input,
                                     ms_error *err)
{
    for (size_t i = 0; i < input->metadata_count; i++) {
        ms_status status = ms_writer_set_metadata(writer, input->metadata[i].name,
                                                  input->metadata[i].value, err);
        if (status != MS_OK)
            return status;
    }
    return MS_OK;
}

static ms_status set_comment(ms_writer *writer, const char *old_dim, const char *old_comment,
                             const ms_resize_params *params, ms_error *err)
{
    char *comment = NULL;
    int length;
    if (params->dynamic_method != MS_DYNAMIC_NONE) {
        char param[40];
        ms_python_float_str(params->dynamic_param, param, sizeof param);
        length = asprintf(&comment, "Dynamic resize with %s: %s from %s; %s",
                          ms_dynamic_method_name(params->dynamic_method), param, old_dim,
                          old_comment);
    } else {
        char conv[48] = "";
        int conv_rank = params->new_conv_rank > 0 ? params->new_conv_rank : params->new_rank;
        if (conv_rank != params->new_rank)
            snprintf(conv, sizeof conv, " (conv: %d)", conv_rank);
        length = asprintf(&comment, "dimension is resized from %s to %d%s; %s", old_dim,
                          params->new_rank, conv, old_comment);
    }
    if (length < 0)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory for metadata");
    ms_status status = ms_writer_set_metadata(writer, "ss_training_comment", comment, err);
    free(comment);
    return status;
}

/* kohya's ss_network_alpha: float(scale * new_rank) of the last module it
 * processed, with that module's rank (its cap, 1 when all zero).  Its alpha
 * is a float32 tensor, so scale = alpha / old_rank and the product are
 * float32 operations (1 / 3 * 2 is 0.6666666865348816 there); without an
 * alpha, scale is the Python float 1.0. */
static double kohya_new_alpha(const ms_lora_module *module,
                              const ms_resize_module_report *report)
{
    if (module->alpha == NULL)
        return (double)report->new_rank;
    float scale = (float)report->old_alpha / (float)report->old_rank;
    return (double)(float)(scale * (float)report->new_rank);
}

static ms_status set_network_fields(ms_writer *writer, const ms_resize_params *params,
                                    double last_new_alpha, ms_error *err)
{
    if (params->dynamic_method != MS_DYNAMIC_NONE) {
        ms_status status = ms_writer_set_metadata(writer, "ss_network_dim", "Dynamic", err);
        if (status == MS_OK)
            status = ms_writer_set_metadata(writer, "ss_network_alpha", "Dynamic", err);
        return status;
    }
    char dim[24], alpha[40];
    snprintf(dim, sizeof dim, "%d", params->new_rank);
    ms_python_float_str(last_new_alpha, alpha, sizeof alpha);
    ms_status status = ms_writer_set_metadata(writer, "ss_network_dim", dim, err);
    if (status == MS_OK)
        status = ms_writer_set_metadata(writer, "ss_network_alpha", alpha, err);
    return status;
}

/* kohya walks the tensors in key order (safetensors' load_file) and
 * processes a module at its down tensor, so the last one processed has the
 * largest down key, which is not always the largest module name. */
size_t ms_resize_last_processed(const ms_lora_module_list *modules)
{
    size_t last = 0;
    for (size_t i = 1; i < modules->count; i++)
        if (strcmp(modules->modules[i].down->name, modules->modules[last].down->name) > 0)
            last = i;
    return last;
}

static int largest_rank(const ms_lora_module_list *modules)
{
    int largest = 0;
    for (size_t i = 0; i < modules->count; i++)
        if (modules->modules[i].rank > largest)
            largest = modules->modules[i].rank;
    return largest;
}

ms_status ms_resize_set_metadata(ms_writer *writer, const ms_safetensors *input,
                                 const ms_resize_params *params,
                                 const ms_lora_module_list *modules,
                                 const ms_resize_module_report *reports, ms_error *err)
{
    /* kohya's "from" is the largest rank it met, never the input's
     * ss_network_dim (which says "Dynamic" after a dynamic resize) */
    char old_dim[24];
    snprintf(old_dim, sizeof old_dim, "%d", largest_rank(modules));
    const char *old_comment = ms_safetensors_metadata_get(input, "ss_training_comment");

    ms_status status = copy_input_metadata(writer, input, err);
    if (status == MS_OK)
        status = set_comment(writer, old_dim, old_comment != NULL ? old_comment : "", params,
                             err);
    size_t last = ms_resize_last_processed(modules);
    if (status == MS_OK)
        status = set_network_fields(writer, params,
                                    kohya_new_alpha(&modules->modules[last], &reports[last]),
                                    err);
    if (status == MS_OK)
        status = ms_writer_set_data_hash_metadata(writer, "sshs_model_hash", err);
    if (status == MS_OK)
        status = ms_writer_set_legacy_hash_metadata(writer, "sshs_legacy_hash", "ss_", err);
    return status;
}
