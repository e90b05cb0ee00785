/* The merge driver: every key rule, block weights reaching the method, the
 * NaN policy, the streamed output byte-identical to an in-memory reference,
 * the provenance metadata, refusals that leave nothing behind, cancel. */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "core/merge/merge.h"
#include "core/merge/merge_internal.h"
#include "core/merge/planned_writer.h"
#include "core/format/safetensors.h"
#include "core/format/writer.h"
#include "check_support.h"

static char *temp_dir;
static char path_a[4200], path_b[4200], path_c[4200], path_out[4400];

static void setup(void)
{
    temp_dir = ms_test_make_temp_dir("test_merge_driver");
    ck_assert_ptr_nonnull(temp_dir);
    snprintf(path_a, sizeof path_a, "%s/a.safetensors", temp_dir);
    snprintf(path_b, sizeof path_b, "%s/b.safetensors", temp_dir);
    snprintf(path_c, sizeof path_c, "%s/c.safetensors", temp_dir);
    snprintf(path_out, sizeof path_out, "%s/out.safetensors", temp_dir);
}

static void teardown(void)
{
    ms_test_remove_tree(temp_dir);
    free(temp_dir);
}

/* A tensor of a test model: values are base + step * i. */
typedef struct tensor_spec {
    const char *name;
    ms_dtype dtype;
    int ndim;
    int64_t shape[4];
    double base, step;
} tensor_spec;

static uint64_t spec_count(const tensor_spec *spec)
{
    uint64_t count = 1;
    for (int i = 0; i < spec->ndim; i++)
        count *= (uint64_t)spec->shape[i];
    return count;
}

static double spec_value(const tensor_spec *spec, uint64_t i)
{
    return spec->base + spec->step * (double)i;
}

static void write_model(const char *path, const tensor_spec *specs, size_t count)
{
    ms_writer *writer = NULL;
    ms_error err;
    ck_assert_int_eq(ms_writer_open(path, &writer, &err), MS_OK);
    for (size_t t = 0; t < count; t++) {
        const tensor_spec *spec = &specs[t];
        uint64_t n = spec_count(spec);
        if (ms_dtype_is_float(spec->dtype)) {
            double *values = malloc((n + 1) * sizeof *values);
            for (uint64_t i = 0; i < n; i++)
                values[i] = spec_value(spec, i);
            ck_assert_int_eq(ms_writer_add_doubles(writer, spec->name, spec->dtype, spec->ndim,
                                                   spec->shape, values, &err), MS_OK);
            free(values);
        } else {
            size_t size = ms_dtype_size(spec->dtype);
            unsigned char *bytes = calloc(n + 1, size);
            for (uint64_t i = 0; i < n; i++)
                bytes[i * size] = (unsigned char)(spec->base + (double)i);
            ck_assert_int_eq(ms_writer_add_bytes(writer, spec->name, spec->dtype, spec->ndim,
                                                 spec->shape, bytes, n * size, &err), MS_OK);
            free(bytes);
        }
    }
    ck_assert_int_eq(ms_writer_finish(writer, NULL, &err), MS_OK);
}

static void init_params(ms_merge_params *params, const char *method, double alpha, double beta)
{
    ms_merge_params_init(params);
    params->method = ms_merge_method_find(method);
    ck_assert_ptr_nonnull(params->method);
    params->base_alpha = alpha;
    params->base_beta = beta;
}

static ms_status merge(const ms_merge_params *params, bool with_c, ms_merge_report *report,
                       ms_error *err)
{
    ms_merge_inputs inputs = {path_a, path_b, with_c ? path_c : NULL};
    return ms_merge_files(&inputs, path_out, params, NULL, NULL, NULL, report, err);
}

/* The output tensor as doubles (malloced), or NULL when absent. */
static double *read_output(const ms_safetensors *file, const char *name, ms_dtype *dtype,
                           uint64_t *count)
{
    const ms_tensor_info *tensor = ms_safetensors_find(file, name);
    if (tensor == NULL)
        return NULL;
    *dtype = tensor->dtype;
    *count = tensor->element_count;
    double *values = malloc((tensor->element_count + 1) * sizeof *values);
    ms_error err;
    ck_assert_int_eq(ms_safetensors_read_doubles(file, tensor, values, &err), MS_OK);
    return values;
}

static double f16(double value)
{
    return ms_half_to_double(ms_half_from_double(value));
}

static size_t entries_in(const char *directory)
{
    size_t count = 0;
    DIR *dir = opendir(directory);
    for (struct dirent *entry; dir != NULL && (entry = readdir(dir)) != NULL;)
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
            count++;
    if (dir != NULL)
        closedir(dir);
    return count;
}

#define UNET "model.diffusion_model."
#define TE_NEW "cond_stage_model.transformer.text_model."
#define TE_OLD "cond_stage_model.transformer."

START_TEST(test_key_rules)
{
    tensor_spec a[] = {
        {UNET "input_blocks.1.0.weight", MS_DTYPE_F16, 2, {3, 4}, 0.5, 0.25},
        {TE_OLD "embeddings.token_embedding.weight", MS_DTYPE_F32, 2, {2, 3}, 1.0, 1.0},
        {TE_NEW "embeddings.position_ids", MS_DTYPE_I64, 2, {1, 77}, 3, 0},
        {"alphas_cumprod", MS_DTYPE_F32, 1, {5}, 0.9, -0.1},
        {UNET "only_in_a.weight", MS_DTYPE_BF16, 1, {4}, 2.0, 0.5},
        {UNET "input_blocks.0.0.weight", MS_DTYPE_F16, 4, {8, 9, 3, 3}, 0.0, 0.001},
        {UNET "out.0.weight", MS_DTYPE_F16, 4, {2, 4, 1, 1}, 0.0, 0.001},
        {UNET "int_tensor", MS_DTYPE_I32, 1, {3}, 7, 0},
    };
    tensor_spec b[] = {
        {UNET "input_blocks.1.0.weight", MS_DTYPE_BF16, 2, {3, 4}, -0.5, 0.125},
        {TE_NEW "embeddings.token_embedding.weight", MS_DTYPE_F16, 2, {2, 3}, 3.0, -1.0},
        {"alphas_cumprod", MS_DTYPE_F32, 1, {5}, 0.1, 0.1},
        {UNET "only_in_b.weight", MS_DTYPE_F32, 1, {3}, 0.1, 0.2},
        {"not_a_weight_only_in_b", MS_DTYPE_F32, 1, {3}, 0.1, 0.2},
        {UNET "input_blocks.0.0.weight", MS_DTYPE_F16, 4, {8, 4, 3, 3}, 1.0, 0.001},
        {UNET "out.0.weight", MS_DTYPE_F16, 4, {2, 9, 1, 1}, 1.0, 0.001},
        {UNET "int_tensor", MS_DTYPE_I32, 1, {3}, 1, 0},
    };
    write_model(path_a, a, sizeof a / sizeof a[0]);
    write_model(path_b, b, sizeof b / sizeof b[0]);
    ms_merge_params params;
    init_params(&params, "weighted_sum", 0.25, 0.5);
    ms_merge_report report;
    ms_error err;
    ck_assert_int_eq(merge(&params, false, &report, &err), MS_OK);
    ck_assert_uint_eq(report.merged_count, 2);
    ck_assert_uint_eq(report.taken_from_b_count, 2);     /* only_in_b, out.0 (larger dim 1) */
    ck_assert_uint_eq(report.copied_from_a_count, 5);

    ms_safetensors out;
    ck_assert_int_eq(ms_safetensors_open(path_out, &out, &err), MS_OK);
    ck_assert_uint_eq(out.tensor_count, 9);
    ms_dtype dtype;
    uint64_t count;
    /* merged in fp16 from fp16 and bf16 inputs */
    double *merged = read_output(&out, UNET "input_blocks.1.0.weight", &dtype, &count);
    ck_assert_int_eq(dtype, MS_DTYPE_F16);
    for (uint64_t i = 0; i < count; i++)
        ck_assert_double_eq(merged[i], f16(0.75 * (0.5 + 0.25 * (double)i) +
                                           0.25 * (-0.5 + 0.125 * (double)i)));
    free(merged);
    /* the old text-encoder name is matched and written under the new one */
    ck_assert_ptr_null(ms_safetensors_find(&out, TE_OLD "embeddings.token_embedding.weight"));
    merged = read_output(&out, TE_NEW "embeddings.token_embedding.weight", &dtype, &count);
    ck_assert_ptr_nonnull(merged);
    ck_assert_double_eq(merged[0], f16(0.75 * 1.0 + 0.25 * 3.0));
    free(merged);
    /* position ids rewritten as int64 [[0..76]] */
    const ms_tensor_info *ids = ms_safetensors_find(&out, TE_NEW "embeddings.position_ids");
    ck_assert_int_eq(ids->dtype, MS_DTYPE_I64);
    ck_assert_int_eq(ids->ndim, 2);
    ck_assert_int_eq(ids->shape[1], 77);
    const unsigned char *id_bytes = ms_safetensors_tensor_bytes(&out, ids);
    for (int i = 0; i < 77; i++)
        ck_assert_int_eq(id_bytes[8 * i], i);
    /* no "model" in the name: A's, in A's dtype; B's alone: left out */
    double *kept = read_output(&out, "alphas_cumprod", &dtype, &count);
    ck_assert_int_eq(dtype, MS_DTYPE_F32);
    ck_assert_double_eq(kept[4], (double)(float)(0.9 - 0.4));
    free(kept);
    ck_assert_ptr_null(ms_safetensors_find(&out, "not_a_weight_only_in_b"));
    /* missing from B: A's own dtype; only in B: fp16 at precision 16 */
    kept = read_output(&out, UNET "only_in_a.weight", &dtype, &count);
    ck_assert_int_eq(dtype, MS_DTYPE_BF16);
    ck_assert_double_eq(kept[3], 3.5);
    free(kept);
    kept = read_output(&out, UNET "only_in_b.weight", &dtype, &count);
    ck_assert_int_eq(dtype, MS_DTYPE_F16);
    ck_assert_double_eq(kept[2], f16((double)(float)(0.1 + 0.2 * 2)));
    free(kept);
    /* inpainting: the larger dim 1 wins, unmerged, whichever model has it */
    const ms_tensor_info *conv_in = ms_safetensors_find(&out, UNET "input_blocks.0.0.weight");
    ck_assert_int_eq(conv_in->shape[1], 9);
    kept = read_output(&out, UNET "input_blocks.0.0.weight", &dtype, &count);
    ck_assert_double_eq(kept[0], 0.0);
    free(kept);
    const ms_tensor_info *out0 = ms_safetensors_find(&out, UNET "out.0.weight");
    ck_assert_int_eq(out0->shape[1], 9);
    /* integer tensors are A's */
    const ms_tensor_info *ints = ms_safetensors_find(&out, UNET "int_tensor");
    ck_assert_int_eq(ms_safetensors_tensor_bytes(&out, ints)[0], 7);
    ms_safetensors_close(&out);
    ms_merge_report_free(&report);
}
END_TEST

START_TEST(test_precision_32_clip_and_prune)
{
    tensor_spec a[] = {
        {UNET "x.weight", MS_DTYPE_F16, 1, {4}, 1.0, 1.0},
        {"model_ema.decay", MS_DTYPE_F32, 1, {1}, 0.9999, 0},
        {"conditioner.embedders.1.model.ln_final.weight", MS_DTYPE_F32, 1, {2}, 1.0, 0},
    };
    tensor_spec b[] = {
        {UNET "x.weight", MS_DTYPE_F16, 1, {4}, 2.0, -1.0},
        {"model_ema.decay", MS_DTYPE_F32, 1, {1}, 0.5, 0},
        {"conditioner.embedders.1.model.ln_final.weight", MS_DTYPE_F32, 1, {2}, 3.0, 0},
        {"model_ema.num_updates", MS_DTYPE_F32, 1, {1}, 7.0, 0},
    };
    write_model(path_a, a, 3);
    write_model(path_b, b, 4);
    ms_merge_params params;
    /* 1.5 a - 0.5 b: outside [min(a, b), max(a, b)] everywhere */
    init_params(&params, "weighted_sum", -0.5, 0.0);
    params.precision = 32;
    params.weights_clip = true;
    params.prune = true;
    ms_error err;
    ck_assert_int_eq(merge(&params, false, NULL, &err), MS_OK);
    ms_safetensors out;
    ck_assert_int_eq(ms_safetensors_open(path_out, &out, &err), MS_OK);
    ms_dtype dtype;
    uint64_t count;
    double *x = read_output(&out, UNET "x.weight", &dtype, &count);
    ck_assert_int_eq(dtype, MS_DTYPE_F32);
    for (uint64_t i = 0; i < count; i++) {
        double a_value = 1.0 + (double)i, b_value = 2.0 - (double)i;
        double low = fmin(a_value, b_value), high = fmax(a_value, b_value);
        double unclipped = 1.5 * a_value - 0.5 * b_value;
        ck_assert_double_eq(x[i], fmin(fmax(unclipped, low), high));
    }
    free(x);
    /* prune: outside the three prefixes nothing is merged: A's, else B's */
    double *decay = read_output(&out, "model_ema.decay", &dtype, &count);
    ck_assert_double_eq(decay[0], (double)(float)0.9999);
    free(decay);
    double *ln = read_output(&out, "conditioner.embedders.1.model.ln_final.weight", &dtype, &count);
    ck_assert_double_eq(ln[0], 1.0);
    free(ln);
    double *updates = read_output(&out, "model_ema.num_updates", &dtype, &count);
    ck_assert_ptr_nonnull(updates);
    ck_assert_double_eq(updates[0], 7.0);
    free(updates);
    ms_safetensors_close(&out);
}
END_TEST

static void expect_refused(const ms_merge_params *params, bool with_c, ms_status code,
                           const char *key)
{
    ms_error err;
    ms_error_clear(&err);
    ck_assert_int_eq(merge(params, with_c, NULL, &err), code);
    if (key != NULL)
        ck_assert_str_eq(err.key, key);
    ck_assert_int_eq(access(path_out, F_OK), -1);
}

START_TEST(test_refusals_leave_nothing)
{
    tensor_spec a[] = {{UNET "x.weight", MS_DTYPE_F16, 1, {4}, 1.0, 1.0},
                       {UNET "y.weight", MS_DTYPE_F16, 2, {2, 2}, 1.0, 1.0}};
    tensor_spec b[] = {{UNET "x.weight", MS_DTYPE_F16, 1, {5}, 1.0, 1.0},
                       {UNET "y.weight", MS_DTYPE_F16, 2, {2, 2}, 1.0, 1.0}};
    tensor_spec c[] = {{UNET "x.weight", MS_DTYPE_F16, 1, {4}, 1.0, 1.0},
                       {UNET "y.weight", MS_DTYPE_F16, 2, {2, 3}, 1.0, 1.0}};
    write_model(path_a, a, 2);
    write_model(path_b, b, 2);
    write_model(path_c, c, 2);
    ms_merge_params params;
    init_params(&params, "weighted_sum", 0.5, 0.5);
    expect_refused(&params, false, MS_ERR_SHAPE_MISMATCH, UNET "x.weight");
    /* a third model for a two-model method, none for a three-model one */
    expect_refused(&params, true, MS_ERR_INVALID_PARAMETER, NULL);
    init_params(&params, "add_difference", 0.5, 0.5);
    expect_refused(&params, false, MS_ERR_INVALID_PARAMETER, NULL);
    /* C's shape differs from A's where A and B agree */
    write_model(path_b, a, 2);
    expect_refused(&params, true, MS_ERR_SHAPE_MISMATCH, UNET "y.weight");
    /* block weights of a length the architecture has no table for */
    init_params(&params, "weighted_sum", 0.5, 0.5);
    params.alpha.form = MS_BLOCKS_LIST;
    params.alpha.count = 19;
    expect_refused(&params, false, MS_ERR_INVALID_PARAMETER, NULL);
    /* bad parameters, a missing model */
    init_params(&params, "weighted_sum", NAN, 0.5);
    expect_refused(&params, false, MS_ERR_INVALID_PARAMETER, NULL);
    init_params(&params, "weighted_sum", 0.5, 0.5);
    params.precision = 8;
    expect_refused(&params, false, MS_ERR_INVALID_PARAMETER, NULL);
    init_params(&params, "weighted_sum", 0.5, 0.5);
    unlink(path_b);
    ms_error err;
    ck_assert_int_eq(merge(&params, false, NULL, &err), MS_ERR_NOT_FOUND);
    ck_assert_uint_eq(entries_in(temp_dir), 2);   /* a and c: nothing left behind */
}
END_TEST

START_TEST(test_lora_refused)
{
    tensor_spec lora[] = {
        {"lora_unet_mid_block_attentions_0_proj_in.lora_down.weight", MS_DTYPE_F16, 2, {4, 32},
         0.0, 0.01},
        {"lora_unet_mid_block_attentions_0_proj_in.lora_up.weight", MS_DTYPE_F16, 2, {32, 4},
         0.0, 0.01},
        {"lora_unet_mid_block_attentions_0_proj_in.alpha", MS_DTYPE_F16, 0, {0}, 4.0, 0.0},
    };
    tensor_spec checkpoint[] = {{UNET "x.weight", MS_DTYPE_F16, 1, {4}, 1.0, 1.0}};
    write_model(path_a, checkpoint, 1);
    write_model(path_b, lora, 3);
    ms_merge_params params;
    init_params(&params, "weighted_sum", 0.5, 0.5);
    ms_error err;
    ck_assert_int_eq(merge(&params, false, NULL, &err), MS_ERR_INVALID_PARAMETER);
    ck_assert_ptr_nonnull(strstr(err.message, "model_b"));
    ck_assert_ptr_nonnull(strstr(err.message, "LoRA"));
    ck_assert_int_eq(access(path_out, F_OK), -1);
}
END_TEST

START_TEST(test_duplicate_text_encoder_spellings)
{
    tensor_spec a[] = {{TE_OLD "final_layer_norm.weight", MS_DTYPE_F16, 1, {4}, 1.0, 1.0},
                       {TE_NEW "final_layer_norm.weight", MS_DTYPE_F16, 1, {4}, 1.0, 1.0}};
    write_model(path_a, a, 2);
    write_model(path_b, a, 2);
    ms_merge_params params;
    init_params(&params, "weighted_sum", 0.5, 0.5);
    expect_refused(&params, false, MS_ERR_DUPLICATE_KEY, TE_NEW "final_layer_norm.weight");
}
END_TEST

START_TEST(test_nan_policy)
{
    /* weighted_subtraction at alpha = beta = 1 divides by eps: the values
     * overflow fp16 although every input is finite */
    tensor_spec a[] = {{UNET "x.weight", MS_DTYPE_F16, 1, {4}, 1.0, 1.0},
                       {UNET "y.weight", MS_DTYPE_F16, 1, {4}, 1.0, 1.0}};
    tensor_spec b[] = {{UNET "x.weight", MS_DTYPE_F16, 1, {4}, 0.5, 1.0},
                       {UNET "y.weight", MS_DTYPE_F16, 1, {4}, 1.0, 1.0}};
    write_model(path_a, a, 2);
    write_model(path_b, b, 2);
    ms_merge_params params;
    init_params(&params, "weighted_subtraction", 1.0, 1.0);
    ms_error err;
    ck_assert_int_eq(merge(&params, false, NULL, &err), MS_ERR_NAN_DETECTED);
    ck_assert_str_eq(err.key, UNET "x.weight");
    ck_assert_int_eq(access(path_out, F_OK), -1);

    params.nan_policy = MS_NAN_POLICY_KEEP_A;
    ms_merge_report report;
    ck_assert_int_eq(merge(&params, false, &report, &err), MS_OK);
    ck_assert_uint_eq(report.nan_key_count, 1);
    ck_assert_str_eq(report.nan_keys[0], UNET "x.weight");
    ck_assert_uint_eq(report.merged_count, 1);
    ms_safetensors out;
    ck_assert_int_eq(ms_safetensors_open(path_out, &out, &err), MS_OK);
    ms_dtype dtype;
    uint64_t count;
    double *x = read_output(&out, UNET "x.weight", &dtype, &count);
    for (uint64_t i = 0; i < count; i++)
        ck_assert_double_eq(x[i], 1.0 + (double)i);
    free(x);
    /* y: a == b, so (a - (1 - eps) b) / eps = a */
    double *y = read_output(&out, UNET "y.weight", &dtype, &count);
    ck_assert_double_eq_tol(y[2], 3.0, 1e-2);
    free(y);
    ms_safetensors_close(&out);
    ms_merge_report_free(&report);
}
END_TEST

/* fp16's edge: 65512 rounds down to 65504 and is written; 65520 rounds
 * to infinity (ties to even) and is refused at its index; -65520 too. */
/* The stored-value check reads fp16 four values to a 64-bit word, sixteen
 * at a time: the first value past fp16's range is found wherever it falls
 * in a block (each lane of each word) and in the tail after the blocks.
 * out = 65504 + (16 + 32 (i - k)): finite below k, 65520 (infinity) at k. */
START_TEST(test_fp16_overflow_in_every_lane)
{
    const struct {
        int64_t count, bad;
    } cases[] = {{64, 0},  {64, 1},  {64, 3},  {64, 4},  {64, 7},  {64, 15},
                 {64, 16}, {64, 21}, {64, 47}, {64, 63}, {70, 66}, {17, 16}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t n = cases[i].count, k = cases[i].bad;
        tensor_spec a[] = {{UNET "x.weight", MS_DTYPE_F16, 1, {n}, 65504.0, 0.0}};
        tensor_spec b[] = {{UNET "x.weight", MS_DTYPE_F16, 1, {n}, 16.0 - 32.0 * (double)k, 32.0}};
        tensor_spec c[] = {{UNET "x.weight", MS_DTYPE_F16, 1, {n}, 0.0, 0.0}};
        write_model(path_a, a, 1);
        write_model(path_b, b, 1);
        write_model(path_c, c, 1);
        ms_merge_params params;
        init_params(&params, "add_difference", 1.0, 0.0);
        ms_error err;
        ck_assert_int_eq(merge(&params, true, NULL, &err), MS_ERR_NAN_DETECTED);
        char index[32];
        snprintf(index, sizeof index, "%lld", (long long)k);
        ck_assert_str_eq(err.details[0].name, "index");
        ck_assert_msg(strcmp(err.details[0].value, index) == 0, "%lld values, bad at %s: got %s",
                      (long long)n, index, err.details[0].value);
    }
}
END_TEST

START_TEST(test_fp16_overflow_edge)
{
    tensor_spec a[] = {{UNET "x.weight", MS_DTYPE_F16, 1, {2}, 65504.0, 0.0},
                       {UNET "y.weight", MS_DTYPE_F16, 1, {2}, -65504.0, 0.0}};
    tensor_spec b[] = {{UNET "x.weight", MS_DTYPE_F16, 1, {2}, 8.0, 8.0},
                       {UNET "y.weight", MS_DTYPE_F16, 1, {2}, -8.0, 0.0}};
    tensor_spec c[] = {{UNET "x.weight", MS_DTYPE_F16, 1, {2}, 0.0, 0.0},
                       {UNET "y.weight", MS_DTYPE_F16, 1, {2}, 0.0, 0.0}};
    write_model(path_a, a, 2);
    write_model(path_b, b, 2);
    write_model(path_c, c, 2);
    ms_merge_params params;
    init_params(&params, "add_difference", 1.0, 0.0);
    ms_error err;
    ck_assert_int_eq(merge(&params, true, NULL, &err), MS_ERR_NAN_DETECTED);
    ck_assert_str_eq(err.key, UNET "x.weight");   /* x[1] = 65520 */
    ck_assert_str_eq(err.details[0].name, "index");
    ck_assert_str_eq(err.details[0].value, "1");
    b[0].step = 0.0;                               /* x = 65512, 65512: written */
    b[1].base = -16.0;                             /* y = -65520: refused */
    write_model(path_b, b, 2);
    ck_assert_int_eq(merge(&params, true, NULL, &err), MS_ERR_NAN_DETECTED);
    ck_assert_str_eq(err.key, UNET "y.weight");
    ck_assert_str_eq(err.details[0].value, "0");
    b[1].base = -8.0;
    write_model(path_b, b, 2);
    ms_merge_report report;
    ck_assert_int_eq(merge(&params, true, &report, &err), MS_OK);
    ms_safetensors out;
    ck_assert_int_eq(ms_safetensors_open(path_out, &out, &err), MS_OK);
    ms_dtype dtype;
    uint64_t count;
    double *x = read_output(&out, UNET "x.weight", &dtype, &count);
    ck_assert_double_eq(x[0], 65504.0);
    ck_assert_double_eq(x[1], 65504.0);
    free(x);
    double *y = read_output(&out, UNET "y.weight", &dtype, &count);
    ck_assert_double_eq(y[1], -65504.0);
    free(y);
    ms_safetensors_close(&out);
    ms_merge_report_free(&report);
}
END_TEST

/* Block weights: SD1 keys take their block's alpha from a list of 25. */
START_TEST(test_block_weights_reach_the_method)
{
    tensor_spec a[] = {
        {UNET "time_embed.0.weight", MS_DTYPE_F32, 1, {2}, 0.0, 0.0},
        {UNET "input_blocks.4.1.proj_in.weight", MS_DTYPE_F32, 1, {2}, 0.0, 0.0},
        {UNET "middle_block.1.norm.weight", MS_DTYPE_F32, 1, {2}, 0.0, 0.0},
        {UNET "output_blocks.11.1.proj_out.weight", MS_DTYPE_F32, 1, {2}, 0.0, 0.0},
        {UNET "out.2.weight", MS_DTYPE_F32, 1, {2}, 0.0, 0.0},
        {"first_stage_model.decoder.conv_in.weight", MS_DTYPE_F32, 1, {2}, 0.0, 0.0},
    };
    tensor_spec b[6];
    memcpy(b, a, sizeof b);
    for (int i = 0; i < 6; i++)
        b[i].base = 1.0;
    write_model(path_a, a, 6);
    write_model(path_b, b, 6);
    ms_merge_params params;
    init_params(&params, "weighted_sum", 0.5, 0.5);
    params.precision = 32;
    params.alpha.form = MS_BLOCKS_LIST;
    params.alpha.count = 25;
    for (int i = 0; i < 25; i++)
        params.alpha.values[i] = (double)i / 32.0;
    ms_merge_report report;
    ms_error err;
    ck_assert_int_eq(merge(&params, false, &report, &err), MS_OK);
    ms_safetensors out;
    ck_assert_int_eq(ms_safetensors_open(path_out, &out, &err), MS_OK);
    struct { const char *key; double alpha; } expected[] = {
        {UNET "time_embed.0.weight", 0.0},
        {UNET "input_blocks.4.1.proj_in.weight", 4.0 / 32},
        {UNET "middle_block.1.norm.weight", 12.0 / 32},
        {UNET "output_blocks.11.1.proj_out.weight", 24.0 / 32},
        {UNET "out.2.weight", 24.0 / 32},
        {"first_stage_model.decoder.conv_in.weight", 0.5},
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        ms_dtype dtype;
        uint64_t count;
        double *values = read_output(&out, expected[i].key, &dtype, &count);
        ck_assert_double_eq(values[0], expected[i].alpha);
        free(values);
    }
    ms_safetensors_close(&out);
    ck_assert_int_eq(report.block_form, MS_BLOCKS_LIST);
    ck_assert_int_eq(report.block_uses[0].block, -1);   /* the VAE key: base */
    ck_assert_uint_eq(report.block_uses[0].key_count, 1);
    size_t with_24 = 0;
    for (size_t i = 0; i < report.block_use_count; i++)
        if (report.block_uses[i].block == 24)
            with_24 = report.block_uses[i].key_count;
    ck_assert_uint_eq(with_24, 2);
    ms_merge_report_free(&report);
}
END_TEST

/* A model large enough for several chunks per tensor and many tensors. */
static void write_random_models(void)
{
    enum { TENSORS = 24 };
    tensor_spec a[TENSORS], b[TENSORS];
    static char names[TENSORS][64];
    for (int i = 0; i < TENSORS; i++) {
        snprintf(names[i], sizeof names[i], UNET "input_blocks.%d.0.weight", i % 12);
        if (i >= 12)
            snprintf(names[i], sizeof names[i], "first_stage_model.layer%02d.weight", i);
        int64_t rows = 1 + (i * 37) % 300;
        a[i] = (tensor_spec){names[i], i % 3 == 0 ? MS_DTYPE_F32 : MS_DTYPE_F16, 2,
                             {rows, 1000}, 0.01 * i, 1e-5};
        b[i] = a[i];
        b[i].dtype = i % 2 == 0 ? MS_DTYPE_BF16 : MS_DTYPE_F16;
        b[i].base = -0.02 * i;
        b[i].step = -3e-6;
    }
    write_model(path_a, a, TENSORS);
    write_model(path_b, b, TENSORS);
}

static unsigned char *read_whole(const char *path, size_t *size)
{
    FILE *file = fopen(path, "rb");
    ck_assert_ptr_nonnull(file);
    fseek(file, 0, SEEK_END);
    *size = (size_t)ftell(file);
    fseek(file, 0, SEEK_SET);
    unsigned char *bytes = malloc(*size + 1);
    ck_assert_uint_eq(fread(bytes, 1, *size, file), *size);
    fclose(file);
    return bytes;
}

/* The reference: every tensor read whole into memory, merged by the formula
 * written out here, stored through the spooling writer with the same
 * metadata.  The streamed merge must produce the same bytes. */
static void write_reference(const char *reference_path, double alpha)
{
    ms_safetensors a, b, merged;
    ms_error err;
    ck_assert_int_eq(ms_safetensors_open(path_a, &a, &err), MS_OK);
    ck_assert_int_eq(ms_safetensors_open(path_b, &b, &err), MS_OK);
    ck_assert_int_eq(ms_safetensors_open(path_out, &merged, &err), MS_OK);
    ms_writer *writer = NULL;
    ck_assert_int_eq(ms_writer_open(reference_path, &writer, &err), MS_OK);
    for (size_t i = 0; i < merged.metadata_count; i++)
        ck_assert_int_eq(ms_writer_set_metadata(writer, merged.metadata[i].name,
                                                merged.metadata[i].value, &err), MS_OK);
    for (size_t t = 0; t < a.tensor_count; t++) {
        const ms_tensor_info *x = &a.tensors[t];
        const ms_tensor_info *y = ms_safetensors_find(&b, x->name);
        double *xs = malloc(x->element_count * sizeof *xs);
        double *ys = malloc(x->element_count * sizeof *ys);
        ck_assert_int_eq(ms_safetensors_read_doubles(&a, x, xs, &err), MS_OK);
        ck_assert_int_eq(ms_safetensors_read_doubles(&b, y, ys, &err), MS_OK);
        for (uint64_t i = 0; i < x->element_count; i++)
            xs[i] = (1 - alpha) * xs[i] + alpha * ys[i];
        ck_assert_int_eq(ms_writer_add_doubles(writer, x->name, MS_DTYPE_F16, x->ndim, x->shape,
                                               xs, &err), MS_OK);
        free(xs);
        free(ys);
    }
    ck_assert_int_eq(ms_writer_finish(writer, NULL, &err), MS_OK);
    ms_safetensors_close(&a);
    ms_safetensors_close(&b);
    ms_safetensors_close(&merged);
}

typedef struct progress_log {
    size_t calls;
    size_t last_done, total;
    bool monotone;
    atomic_int *cancel_after_first;
} progress_log;

static void record_progress(void *user_data, size_t done, size_t total, const char *key)
{
    progress_log *log = user_data;
    if (log->calls > 0 && (done < log->last_done || total != log->total))
        log->monotone = false;
    if (log->calls > 0 && key == NULL)
        log->monotone = false;
    log->calls++;
    log->last_done = done;
    log->total = total;
    if (log->cancel_after_first != NULL && log->calls == 2)
        atomic_store(log->cancel_after_first, 1);
}

START_TEST(test_streamed_equals_reference)
{
    write_random_models();
    ms_merge_params params;
    init_params(&params, "weighted_sum", 0.3, 0.5);
    params.threads = 2;
    params.memory_budget = 1;   /* one tensor at a time past the first */
    progress_log log = {.monotone = true};
    ms_merge_inputs inputs = {path_a, path_b, NULL};
    ms_merge_report report;
    ms_error err;
    ck_assert_int_eq(ms_merge_files(&inputs, path_out, &params, record_progress, &log, NULL,
                                    &report, &err), MS_OK);
    ck_assert(log.monotone);
    ck_assert_uint_eq(log.calls, 25);
    ck_assert_uint_eq(log.last_done, log.total);
    char reference[4300];
    snprintf(reference, sizeof reference, "%s/reference.safetensors", temp_dir);
    write_reference(reference, 0.3);
    size_t streamed_size, reference_size;
    unsigned char *streamed = read_whole(path_out, &streamed_size);
    unsigned char *expected = read_whole(reference, &reference_size);
    ck_assert_uint_eq(streamed_size, reference_size);
    ck_assert_uint_eq(report.output_bytes, streamed_size);
    ck_assert(memcmp(streamed, expected, streamed_size) == 0);
    /* the same bytes from one thread */
    free(streamed);
    params.threads = 1;
    params.memory_budget = 0;
    ms_merge_report second;
    ck_assert_int_eq(merge(&params, false, &second, &err), MS_OK);
    ck_assert_str_eq(second.output_sha256, report.output_sha256);
    streamed = read_whole(path_out, &streamed_size);
    ck_assert(memcmp(streamed, expected, streamed_size) == 0);
    free(streamed);
    free(expected);
    ms_merge_report_free(&report);
    ms_merge_report_free(&second);
}
END_TEST

/* distribution_crossover's spectra of 2 MiB and more come from a block each
 * worker keeps from one tensor to the next.  With one worker and the
 * largest tensor first, every later tensor runs in the block the one before
 * left full of its numbers; each must come out as merged alone, in a fresh
 * block.  Two workers under a budget that makes them wait for each other
 * (the waiting one has the other's kept block freed) give the same bytes. */
enum { KEPT_TENSORS = 4 };
static const int64_t kept_rows[KEPT_TENSORS] = {5200, 3000, 4000, 2622};   /* x 100 */

static void kept_specs(int model, size_t first, size_t count, tensor_spec *specs)
{
    static char names[KEPT_TENSORS][64];
    for (size_t i = 0; i < count; i++) {
        size_t t = first + i;
        snprintf(names[t], sizeof names[t], UNET "input_blocks.%zu.0.weight", t);
        double sign = t % 2 == 0 ? 1.0 : -1.0;
        double base[3] = {0.01 * (double)t, -0.02 * (double)t, 0.5 * sign};
        double step[3] = {1e-6, -2e-6, -3e-6 * sign};
        specs[i] = (tensor_spec){names[t], MS_DTYPE_F16, 2, {kept_rows[t], 100},
                                 base[model], step[model]};
    }
}

static void write_kept_models(size_t first, size_t count)
{
    const char *paths[3] = {path_a, path_b, path_c};
    tensor_spec specs[KEPT_TENSORS];
    for (int model = 0; model < 3; model++) {
        kept_specs(model, first, count, specs);
        write_model(paths[model], specs, count);
    }
}

/* The driver's admission rule: within the budget a tensor starts beside
 * anything; past it only when no tensor runs and no other worker keeps a
 * block (SDXL's 506 MB embedding once started beside another worker's
 * kept 303 MB block). */
START_TEST(test_budget_admission)
{
    const uint64_t budget = 100;
    ck_assert(ms_merge_may_start(budget, 40, 60, 3, 2));     /* fits: exactly the budget */
    ck_assert(!ms_merge_may_start(budget, 41, 60, 1, 0));    /* past it, a tensor runs */
    ck_assert(!ms_merge_may_start(budget, 41, 60, 0, 1));    /* past it, a block kept */
    ck_assert(ms_merge_may_start(budget, 0, 500, 0, 0));     /* alone, whatever its size */
    ck_assert(!ms_merge_may_start(budget, 30, 500, 0, 1));
}
END_TEST

/* The cores a tensor may use: all for one past the budget, else an equal
 * share among the workers (all of them for a file's only tensor) */
START_TEST(test_tensor_threads)
{
    ck_assert_int_eq(ms_merge_tensor_threads(2, 2, false), 1);
    ck_assert_int_eq(ms_merge_tensor_threads(2, 2, true), 2);
    ck_assert_int_eq(ms_merge_tensor_threads(2, 1, false), 2);   /* one tensor, two cores */
    ck_assert_int_eq(ms_merge_tensor_threads(2, 1, true), 2);
    ck_assert_int_eq(ms_merge_tensor_threads(8, 3, false), 2);   /* 3 tensors, 8 cores */
    ck_assert_int_eq(ms_merge_tensor_threads(3, 2, false), 1);
    ck_assert_int_eq(ms_merge_tensor_threads(1, 1, true), 1);
    ck_assert_int_eq(ms_merge_tensor_threads(4, 0, false), 4);
}
END_TEST

/* A file of one tensor past the split transform's size, merged on two
 * cores (its one worker's transform in two lanes) and on one: the same
 * bytes. */
START_TEST(test_one_tensor_every_core)
{
    const char *paths[3] = {path_a, path_b, path_c};
    for (int model = 0; model < 3; model++) {
        tensor_spec spec = {UNET "input_blocks.1.0.weight", MS_DTYPE_F16, 2, {6000, 200},
                            0.01 * model, 1e-6 * (model + 1)};
        write_model(paths[model], &spec, 1);
    }
    ms_merge_params params;
    init_params(&params, "distribution_crossover", 0.45, 0.2);
    ms_merge_report one, every;
    ms_error err;
    params.threads = 1;
    ck_assert_int_eq(merge(&params, true, &one, &err), MS_OK);
    params.threads = 2;
    ck_assert_int_eq(merge(&params, true, &every, &err), MS_OK);
    ck_assert_str_eq(every.output_sha256, one.output_sha256);
    ms_merge_report_free(&one);
    ms_merge_report_free(&every);
}
END_TEST

START_TEST(test_crossover_blocks_kept)
{
    write_kept_models(0, KEPT_TENSORS);
    ms_merge_params params;
    init_params(&params, "distribution_crossover", 0.4, 0.25);
    params.threads = 1;
    ms_merge_report one, two;
    ms_error err;
    ck_assert_int_eq(merge(&params, true, &one, &err), MS_OK);
    char kept_path[4400];
    snprintf(kept_path, sizeof kept_path, "%s/kept.safetensors", temp_dir);
    ck_assert_int_eq(rename(path_out, kept_path), 0);
    params.threads = 2;
    params.memory_budget = 8u << 20;
    ck_assert_int_eq(merge(&params, true, &two, &err), MS_OK);
    ck_assert_str_eq(two.output_sha256, one.output_sha256);
    ms_safetensors kept;
    ck_assert_int_eq(ms_safetensors_open(kept_path, &kept, &err), MS_OK);
    params.threads = 1;
    params.memory_budget = 0;
    for (size_t t = 0; t < KEPT_TENSORS; t++) {
        write_kept_models(t, 1);
        ms_merge_report alone;
        ck_assert_int_eq(merge(&params, true, &alone, &err), MS_OK);
        ms_safetensors out;
        ck_assert_int_eq(ms_safetensors_open(path_out, &out, &err), MS_OK);
        tensor_spec spec;
        kept_specs(0, t, 1, &spec);
        const ms_tensor_info *expected = ms_safetensors_find(&out, spec.name);
        const ms_tensor_info *got = ms_safetensors_find(&kept, spec.name);
        ck_assert_ptr_nonnull(expected);
        ck_assert_ptr_nonnull(got);
        ck_assert_uint_eq(got->byte_count, expected->byte_count);
        ck_assert_msg(memcmp(ms_safetensors_tensor_bytes(&kept, got),
                             ms_safetensors_tensor_bytes(&out, expected),
                             (size_t)got->byte_count) == 0,
                      "%s merged in a kept block differs from it merged alone", spec.name);
        ms_safetensors_close(&out);
        ms_merge_report_free(&alone);
    }
    ms_safetensors_close(&kept);
    ms_merge_report_free(&one);
    ms_merge_report_free(&two);
}
END_TEST

START_TEST(test_recipe_metadata)
{
    write_random_models();
    ms_merge_params params;
    init_params(&params, "weighted_sum", 0.9, 0.1);
    params.beta.form = MS_BLOCKS_NAMED;
    params.beta.values[1] = 0.3;
    params.beta.present[1] = true;   /* IN00 */
    ms_error err;
    ck_assert_int_eq(merge(&params, false, NULL, &err), MS_OK);
    ms_safetensors out;
    ck_assert_int_eq(ms_safetensors_open(path_out, &out, &err), MS_OK);
    ck_assert_str_eq(ms_safetensors_metadata_get(&out, "format"), "pt");
    const char *recipe_text = ms_safetensors_metadata_get(&out, "merge_recipe");
    ck_assert_ptr_nonnull(recipe_text);
    ck_assert_ptr_nonnull(strstr(recipe_text, "\"base_alpha\":0.9,"));
    json_error_t json_error;
    json_t *recipe = json_loads(recipe_text, 0, &json_error);
    ck_assert_ptr_nonnull(recipe);
    ck_assert_str_eq(json_string_value(json_object_get(recipe, "method")), "weighted_sum");
    ck_assert_double_eq(json_real_value(json_object_get(recipe, "base_beta")), 0.1);
    ck_assert(json_is_null(json_object_get(recipe, "alpha")));
    ck_assert_double_eq(json_real_value(json_object_get(json_object_get(recipe, "beta"), "IN00")),
                        0.3);
    json_t *model_b = json_object_get(json_object_get(recipe, "models"), "model_b");
    ck_assert_str_eq(json_string_value(json_object_get(model_b, "file")), "b.safetensors");
    struct stat info;
    ck_assert_int_eq(stat(path_b, &info), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(model_b, "bytes")), info.st_size);
    ck_assert_ptr_null(json_object_get(json_object_get(recipe, "models"), "model_c"));
    json_decref(recipe);
    ms_safetensors_close(&out);
}
END_TEST

START_TEST(test_cancel)
{
    write_random_models();
    ms_merge_params params;
    init_params(&params, "weighted_sum", 0.5, 0.5);
    ms_merge_inputs inputs = {path_a, path_b, NULL};
    atomic_int cancel = 1;
    ms_error err;
    ck_assert_int_eq(ms_merge_files(&inputs, path_out, &params, NULL, NULL, &cancel, NULL, &err),
                     MS_ERR_CANCELLED);
    ck_assert_uint_eq(entries_in(temp_dir), 2);
    /* mid-merge: cancelled after the first tensor is written */
    atomic_store(&cancel, 0);
    progress_log log = {.monotone = true, .cancel_after_first = &cancel};
    params.threads = 1;
    ck_assert_int_eq(ms_merge_files(&inputs, path_out, &params, record_progress, &log, &cancel,
                                    NULL, &err), MS_ERR_CANCELLED);
    ck_assert_uint_lt(log.calls, 25);
    ck_assert_uint_eq(entries_in(temp_dir), 2);
}
END_TEST

/* Not enough room: refused before any work, nothing left behind. */
START_TEST(test_disk_full_at_once)
{
    write_random_models();
    char small[4300];
    snprintf(small, sizeof small, "%s/small", temp_dir);
    ck_assert_int_eq(mkdir(small, 0755), 0);
    char command[4400];
    snprintf(command, sizeof command, "mount -t tmpfs -o size=64k tmpfs '%s' 2>/dev/null", small);
    if (system(command) != 0) {
        fprintf(stderr, "test_disk_full_at_once: cannot mount a tmpfs (not root?): skipped\n");
        return;
    }
    snprintf(path_out, sizeof path_out, "%s/out.safetensors", small);
    ms_merge_params params;
    init_params(&params, "weighted_sum", 0.5, 0.5);
    ms_error err;
    ms_status status = merge(&params, false, NULL, &err);
    size_t left = entries_in(small);
    snprintf(command, sizeof command, "umount '%s'", small);
    ck_assert_int_eq(system(command), 0);
    ck_assert_int_eq(status, MS_ERR_DISK_FULL);
    ck_assert_int_eq(err.detail_count >= 2, 1);
    ck_assert_str_eq(err.details[0].name, "needed_bytes");
    ck_assert_uint_eq(left, 0);
}
END_TEST

/* Writes five 32 MiB tensors through the planned writer, dropping written
 * pages or not, and returns the share of the first tensor's pages still in
 * the page cache once the file is published (-1: cannot tell). */
static double first_tensor_cached_share(bool drop)
{
    enum { TENSORS = 5, ELEMENTS = 16 << 20 };
    ms_planned_tensor tensors[TENSORS];
    char names[TENSORS][16];
    for (int t = 0; t < TENSORS; t++) {
        snprintf(names[t], sizeof names[t], "t%d", t);
        tensors[t] = (ms_planned_tensor){names[t], MS_DTYPE_F16, 1, {ELEMENTS}};
    }
    ms_planned_writer *writer = NULL;
    ms_error err;
    ck_assert_int_eq(ms_planned_writer_open(path_out, tensors, TENSORS, NULL, 0, &writer, &err),
                     MS_OK);
    ms_planned_writer_drop_written_pages(writer, drop);
    size_t bytes = (size_t)ELEMENTS * 2;
    unsigned char *block = malloc(bytes);
    ck_assert_ptr_nonnull(block);
    for (size_t position = 0; position < TENSORS; position++) {
        memset(block, (int)(0x10 + position), bytes);
        ck_assert_int_eq(ms_planned_writer_write(writer, position, 0, block, bytes, &err), MS_OK);
        ck_assert_int_eq(ms_planned_writer_seal(writer, position, &err), MS_OK);
    }
    free(block);
    uint64_t file_bytes = 0;
    char sha256[65];
    ck_assert_int_eq(ms_planned_writer_finish(writer, &file_bytes, sha256, &err), MS_OK);
    /* residency first, in a raw mapping nothing has touched: reading the
     * file would bring pages back.  Bytes [8, 24) MiB lie inside t0 (the
     * header is small) away from its edges. */
    double share = -1;
    int fd = open(path_out, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    size_t span = 16u << 20;
    unsigned char *mapping = mmap(NULL, file_bytes, PROT_READ, MAP_SHARED, fd, 0);
    ck_assert(mapping != MAP_FAILED);
    long page = sysconf(_SC_PAGESIZE);
    size_t pages = span / (size_t)page;
    unsigned char *resident = malloc(pages);
    if (mincore(mapping + (8u << 20), span, resident) == 0) {
        size_t cached = 0;
        for (size_t i = 0; i < pages; i++)
            cached += resident[i] & 1;
        share = (double)cached / (double)pages;
    }
    free(resident);
    munmap(mapping, file_bytes);
    close(fd);
    /* the file is whole either way: every tensor holds its own byte */
    ms_safetensors file;
    ck_assert_int_eq(ms_safetensors_open(path_out, &file, &err), MS_OK);
    ck_assert_uint_eq(file.tensor_count, TENSORS);
    for (size_t t = 0; t < TENSORS; t++) {
        const unsigned char *data = ms_safetensors_tensor_bytes(&file, &file.tensors[t]);
        int expected = 0x10 + (int)(file.tensors[t].name[1] - '0');
        ck_assert_int_eq(data[0], expected);
        ck_assert_int_eq(data[bytes - 1], expected);
    }
    ms_safetensors_close(&file);
    unlink(path_out);
    return share;
}

START_TEST(test_written_pages_dropped)
{
    struct statfs info;
    ck_assert_int_eq(statfs(temp_dir, &info), 0);
    if (info.f_type == 0x01021994)   /* tmpfs: its pages are the file, never dropped */
        return;
    double kept = first_tensor_cached_share(false);
    double dropped = first_tensor_cached_share(true);
    ck_assert(kept >= 0 && dropped >= 0);
    ck_assert_msg(kept > 0.9, "without the drop, %.0f %% stayed cached", 100 * kept);
    ck_assert_msg(dropped < 0.1, "with the drop, %.0f %% stayed cached", 100 * dropped);
}
END_TEST

static Suite *merge_driver_suite(void)
{
    Suite *suite = suite_create("merge_driver");
    TCase *tcase = tcase_create("driver");
    tcase_add_checked_fixture(tcase, setup, teardown);
    tcase_set_timeout(tcase, 60);
    tcase_add_test(tcase, test_key_rules);
    tcase_add_test(tcase, test_precision_32_clip_and_prune);
    tcase_add_test(tcase, test_refusals_leave_nothing);
    tcase_add_test(tcase, test_duplicate_text_encoder_spellings);
    tcase_add_test(tcase, test_lora_refused);
    tcase_add_test(tcase, test_nan_policy);
    tcase_add_test(tcase, test_fp16_overflow_edge);
    tcase_add_test(tcase, test_fp16_overflow_in_every_lane);
    tcase_add_test(tcase, test_block_weights_reach_the_method);
    tcase_add_test(tcase, test_streamed_equals_reference);
    tcase_add_test(tcase, test_crossover_blocks_kept);
    tcase_add_test(tcase, test_budget_admission);
    tcase_add_test(tcase, test_tensor_threads);
    tcase_add_test(tcase, test_one_tensor_every_core);
    tcase_add_test(tcase, test_recipe_metadata);
    tcase_add_test(tcase, test_cancel);
    tcase_add_test(tcase, test_disk_full_at_once);
    tcase_add_test(tcase, test_written_pages_dropped);
    suite_add_tcase(suite, tcase);
    return suite;
}

int main(void)
{
    return ms_test_run_suite(merge_driver_suite());
}
