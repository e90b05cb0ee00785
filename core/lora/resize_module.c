/* Resizing one LoRA module: read, fast SVD, rank rule, truncate, write.
 * A worker holds only this module's buffers. */
#include "core/linalg/lowrank.h"
#include "resize_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct module_buffers {
    double *up;
    double *down;
    double *new_up;
    double *new_down;
} module_buffers;

static void free_buffers(module_buffers *buffers)
{
    free(buffers->up);
    free(buffers->down);
    free(buffers->new_up);
    free(buffers->new_down);
    memset(buffers, 0, sizeof *buffers);
}

static ms_dtype save_dtype(const ms_resize_params *params, const ms_lora_module *module)
{
    switch (params->save_precision) {
    case MS_SAVE_PRECISION_FLOAT:
        return MS_DTYPE_F32;
    case MS_SAVE_PRECISION_FP16:
        return MS_DTYPE_F16;
    case MS_SAVE_PRECISION_BF16:
        return MS_DTYPE_BF16;
    default:
        return module->up->dtype;
    }
}

/* Errors from the numerics do not know the tensor: name the module's down. */
static ms_status with_key(ms_status status, const ms_lora_module *module, ms_error *err)
{
    if (status != MS_OK && err != NULL && err->key[0] == '\0')
        snprintf(err->key, sizeof err->key, "%s", module->down->name);
    return status;
}

static double *alloc_doubles(uint64_t count)
{
    if (count == 0 || count > SIZE_MAX / sizeof(double))
        return NULL;
    return malloc((size_t)count * sizeof(double));
}

static ms_status read_factors(const ms_safetensors *input, const ms_lora_module *module,
                              module_buffers *buffers, ms_error *err)
{
    /* before reading: a header may claim a [2^31, 1] tensor that LAPACK would
     * refuse only after 16 GB had been allocated and filled */
    ms_status status = ms_lowrank_check_shape(module->out_features, module->in_features,
                                              module->rank, err);
    if (status != MS_OK)
        return with_key(status, module, err);
    buffers->up = alloc_doubles(module->up->element_count);
    buffers->down = alloc_doubles(module->down->element_count);
    if (buffers->up == NULL || buffers->down == NULL)
        return with_key(ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL,
                                     "out of memory reading %s", module->name), module, err);
    status = ms_safetensors_read_doubles(input, module->up, buffers->up, err);
    if (status == MS_OK)
        status = ms_safetensors_read_doubles(input, module->down, buffers->down, err);
    return status;
}

/* The writer refuses NaN/Inf in the doubles, but a finite value can still
 * overflow a narrow save dtype (|x| >= 65520 becomes Inf in F16): refuse
 * that too, with the tensor's key, rather than write an Inf. */
static ms_status check_fits(ms_dtype dtype, const char *key, const double *values,
                            uint64_t count, ms_error *err)
{
    double largest = 0.0;
    for (uint64_t i = 0; i < count; i++)
        if (fabs(values[i]) > largest)
            largest = fabs(values[i]);
    unsigned char converted[8];
    double back;
    ms_dtype_from_double(dtype, &largest, converted, 1);
    ms_dtype_to_double(dtype, converted, &back, 1);
    if (!isinf(back))
        return MS_OK;
    ms_error_set(err, MS_ERR_NAN_DETECTED, key, "%s: %g overflows %s", key, largest,
                 ms_dtype_name(dtype));
    ms_error_detail_add(err, "value", "%g", largest);
    ms_error_detail_add(err, "dtype", "%s", ms_dtype_name(dtype));
    return MS_ERR_NAN_DETECTED;
}

static ms_status write_outputs(ms_writer *writer, const ms_lora_module *module, ms_dtype dtype,
                               int new_rank, double new_alpha, const module_buffers *buffers,
                               ms_error *err)
{
    int64_t down_shape[4] = {new_rank, module->in_features, 1, 1};
    int64_t up_shape[4] = {module->out_features, new_rank, 1, 1};
    int64_t no_shape[1] = {0};
    int ndim = module->is_conv ? 4 : 2;
    if (module->is_conv) {
        down_shape[1] = module->down->shape[1];
        down_shape[2] = module->kernel_h;
        down_shape[3] = module->kernel_w;
    }
    char *alpha_name = NULL;
    if (asprintf(&alpha_name, "%s.alpha", module->name) < 0)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, module->down->name,
                            "out of memory naming %s.alpha", module->name);
    /* new_down has orthonormal rows: only up and alpha can overflow */
    uint64_t up_count = (uint64_t)module->out_features * (uint64_t)new_rank;
    ms_status status = check_fits(dtype, module->up->name, buffers->new_up, up_count, err);
    if (status == MS_OK)
        status = check_fits(dtype, alpha_name, &new_alpha, 1, err);
    if (status == MS_OK)
        status = ms_writer_add_doubles(writer, module->down->name, dtype, ndim, down_shape,
                                       buffers->new_down, err);
    if (status == MS_OK)
        status = ms_writer_add_doubles(writer, module->up->name, dtype, ndim, up_shape,
                                       buffers->new_up, err);
    if (status == MS_OK)
        status = ms_writer_add_doubles(writer, alpha_name, dtype, 0, no_shape, &new_alpha, err);
    free(alpha_name);
    return status;
}

static bool all_zero(const double *values, int count)
{
    for (int i = 0; i < count; i++)
        if (values[i] != 0.0)
            return false;
    return true;
}

/* The largest rank the rule can choose for this module: min(cap, out, in). */
static int largest_choice(const ms_resize_params *params, const ms_lora_module *module)
{
    int64_t limit = module->out_features < module->in_features ? module->out_features
                                                               : module->in_features;
    int cap = ms_resize_cap(params, module);
    if (cap < 1)
        cap = 1;
    return limit < cap ? (int)limit : cap;
}

static ms_status compute(const ms_lora_module *module, const ms_resize_params *params,
                         module_buffers *buffers, ms_rank_choice *choice, bool *zero_spectrum,
                         ms_error *err)
{
    ms_lowrank_factor factor;
    ms_status status = ms_lowrank_factor_init(&factor, buffers->up, buffers->down,
                                              module->out_features, module->in_features,
                                              module->rank, largest_choice(params, module),
                                              err);
    if (status != MS_OK)
        return with_key(status, module, err);
    int64_t length = module->out_features < module->in_features ? module->out_features
                                                                : module->in_features;
    ms_rank_rule(factor.singular_values, (size_t)factor.core_rank, (size_t)length,
                 params->dynamic_method, params->dynamic_param,
                 ms_resize_cap(params, module), choice);
    *zero_spectrum = all_zero(factor.singular_values, factor.core_rank);
    /* the Householder path copied the inputs: drop them now to keep the peak
     * low; the Cholesky path reads them in truncate */
    if (factor.method == MS_LOWRANK_HOUSEHOLDER) {
        free(buffers->up);
        free(buffers->down);
        buffers->up = buffers->down = NULL;
    }
    buffers->new_up = alloc_doubles((uint64_t)module->out_features * (uint64_t)choice->rank);
    buffers->new_down = alloc_doubles((uint64_t)module->in_features * (uint64_t)choice->rank);
    if (buffers->new_up == NULL || buffers->new_down == NULL)
        status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory for %s",
                              module->name);
    else
        status = ms_lowrank_factor_truncate(&factor, choice->rank, buffers->new_up,
                                            buffers->new_down, err);
    ms_lowrank_factor_free(&factor);
    return with_key(status, module, err);
}

ms_status ms_resize_module(const ms_safetensors *input, const ms_lora_module *module,
                           const ms_resize_params *params, ms_writer *writer,
                           ms_resize_module_report *report, bool *zero_spectrum,
                           ms_error *err)
{
    module_buffers buffers = {0};
    ms_rank_choice choice = {0};
    double alpha = 0.0;
    ms_status status = ms_lora_module_alpha(input, module, &alpha, err);
    if (status == MS_OK)
        status = read_factors(input, module, &buffers, err);
    if (status == MS_OK)
        status = compute(module, params, &buffers, &choice, zero_spectrum, err);
    /* kohya: scale = alpha / r, new alpha = scale * k, so alpha / rank stays */
    double new_alpha = alpha / (double)module->rank * (double)choice.rank;
    if (status == MS_OK)
        status = write_outputs(writer, module, save_dtype(params, module), choice.rank,
                               new_alpha, &buffers, err);
    free_buffers(&buffers);
    if (status != MS_OK)
        return status;

    report->name = strdup(module->name);
    if (report->name == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory for the report");
    report->is_conv = module->is_conv;
    report->old_rank = module->rank;
    report->new_rank = choice.rank;
    report->old_alpha = alpha;
    report->new_alpha = new_alpha;
    report->sum_retained = choice.sum_retained;
    report->fro_retained = choice.fro_retained;
    report->max_ratio = choice.max_ratio;
    return MS_OK;
}
