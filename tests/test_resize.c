/* ms_resize_file end to end on small LoRA files with known spectra: ranks,
 * alphas, Eckart-Young, passthrough bytes, metadata, cancel, progress. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/linalg/lowrank.h"
#include "core/lora/resize.h"
#include "core/lora/resize_internal.h"
#include "core/format/safetensors.h"
#include "core/format/writer.h"
#include "check_support.h"
#include "numerics_testutil.h"

#define COUNT_OF(array) (sizeof(array) / sizeof((array)[0]))

/* One input module: up = U diag(spectrum), down = V^T. */
typedef struct module_spec {
    const char *name;
    const char *down_suffix, *up_suffix;
    ms_dtype dtype;
    int64_t out, in_channels, kernel; /* kernel 0: linear */
    int rank;
    double alpha;                     /* 0: no alpha tensor */
    double spectrum[8];               /* all zero: an all-zero module */
} module_spec;

static const module_spec modules[] = {
    {"b", ".lora_A", ".lora_B", MS_DTYPE_F16, 9, 14, 0, 5, 2.5, {6, 1, 0.5, 0.25, 0.1}},
    {"lora_te_zero", ".lora_down.weight", ".lora_up.weight", MS_DTYPE_F32, 12, 20, 0, 4, 1.0,
     {0}},
    {"lora_unet_conv", ".lora_down.weight", ".lora_up.weight", MS_DTYPE_F32, 16, 5, 3, 6, 3.0,
     {5, 3, 1.2, 0.5, 0.2, 0.1}},
    {"lora_unet_conv1x1", ".down.weight", ".up.weight", MS_DTYPE_F32, 10, 12, 1, 4, 0.0,
     {3, 2, 1, 0.5}},
    {"lora_unet_lin", ".lora_down.weight", ".lora_up.weight", MS_DTYPE_F32, 24, 40, 0, 8, 4.0,
     {8, 4, 2, 1, 0.5, 0.25, 0.125, 0.0625}},
};
enum { module_count = COUNT_OF(modules), linear_index = 4 };

static char *temp_dir;
static char input_path[300];
static char output_path[300];

static void join(char *target, const char *name)
{
    snprintf(target, 300, "%s/%s", temp_dir, name);
}

static char *key_of(const module_spec *m, const char *suffix)
{
    char *key = NULL;
    ck_assert_int_ge(asprintf(&key, "%s%s", m->name, suffix), 0);
    return key;
}

static int64_t in_features(const module_spec *m)
{
    int64_t kernel = m->kernel ? m->kernel : 1;
    return m->in_channels * kernel * kernel;
}

static void add_module(ms_writer *writer, const module_spec *m, test_rng *rng)
{
    int64_t out = m->out, in = in_features(m);
    int r = m->rank;
    double *u = calloc((size_t)(out * r), sizeof(double));
    double *v = calloc((size_t)(in * r), sizeof(double));
    double *up = calloc((size_t)(out * r), sizeof(double));
    double *down = calloc((size_t)(in * r), sizeof(double));
    ck_assert(u && v && up && down);
    ck_assert_int_eq(test_random_orthonormal(rng, (size_t)out, (size_t)r, u), 0);
    ck_assert_int_eq(test_random_orthonormal(rng, (size_t)in, (size_t)r, v), 0);
    for (int64_t row = 0; row < out; row++)
        for (int i = 0; i < r; i++)
            up[row * r + i] = u[row * r + i] * m->spectrum[i];
    for (int i = 0; i < r; i++)
        for (int64_t column = 0; column < in; column++)
            down[i * in + column] = m->spectrum[0] == 0 ? 0.0 : v[column * r + i];
    ms_error err;
    int ndim = m->kernel ? 4 : 2;
    int64_t down_shape[4] = {r, m->kernel ? m->in_channels : in, m->kernel, m->kernel};
    int64_t up_shape[4] = {out, r, 1, 1};
    char *down_key = key_of(m, m->down_suffix), *up_key = key_of(m, m->up_suffix);
    ck_assert_int_eq(ms_writer_add_doubles(writer, down_key, m->dtype, ndim, down_shape, down,
                                           &err), MS_OK);
    ck_assert_int_eq(ms_writer_add_doubles(writer, up_key, m->dtype, ndim, up_shape, up, &err),
                     MS_OK);
    if (m->alpha != 0.0) {
        char *alpha_key = key_of(m, ".alpha");
        ck_assert_int_eq(ms_writer_add_doubles(writer, alpha_key, m->dtype, 0, NULL, &m->alpha,
                                               &err), MS_OK);
        free(alpha_key);
    }
    free(down_key); free(up_key); free(u); free(v); free(up); free(down);
}

static const double bias_values[7] = {1, -2, 3.5, 0.25, 1e-3, 7, -0.5};

static void write_input(bool with_metadata)
{
    ms_writer *writer;
    ms_error err;
    test_rng rng;
    test_rng_seed(&rng, 2024);
    ck_assert_int_eq(ms_writer_open(input_path, &writer, &err), MS_OK);
    for (size_t i = 0; i < module_count; i++)
        add_module(writer, &modules[i], &rng);
    int64_t bias_shape[1] = {7};
    ck_assert_int_eq(ms_writer_add_doubles(writer, "extra.bias", MS_DTYPE_F16, 1, bias_shape,
                                           bias_values, &err), MS_OK);
    int64_t step = 1234;
    ck_assert_int_eq(ms_writer_add_bytes(writer, "step", MS_DTYPE_I64, 0, NULL, &step,
                                         sizeof step, &err), MS_OK);
    if (with_metadata) {
        ck_assert_int_eq(ms_writer_set_metadata(writer, "ss_network_dim", "8", &err), MS_OK);
        ck_assert_int_eq(ms_writer_set_metadata(writer, "ss_training_comment", "hello", &err),
                         MS_OK);
        ck_assert_int_eq(ms_writer_set_metadata(writer, "ss_custom", "kept", &err), MS_OK);
    }
    ms_status status = ms_writer_finish(writer, NULL, &err);
    ck_assert_msg(status == MS_OK, "%s", err.message);
}

/* The directory is made and removed by the parent process (unchecked
 * fixture), so it goes away even when a test fails in its child. */
static void make_temp_dir(void)
{
    temp_dir = ms_test_make_temp_dir("test_resize");
    ck_assert_ptr_nonnull(temp_dir);
    join(input_path, "in.safetensors");
    join(output_path, "out.safetensors");
}

static void empty_temp_dir(void)
{
    DIR *dir = opendir(temp_dir);
    struct dirent *entry;
    char path[600];
    while (dir != NULL && (entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", temp_dir, entry->d_name);
        unlink(path);
    }
    if (dir != NULL)
        closedir(dir);
}

static void remove_temp_dir(void)
{
    ms_test_remove_tree(temp_dir);
    free(temp_dir);
    temp_dir = NULL;
}

/* Every test starts from the standard input and no output. */
static void setup(void)
{
    empty_temp_dir();
    write_input(true);
}

static void teardown(void)
{
    empty_temp_dir();
}

/* Names in the temp dir other than the input: the output, or leftovers. */
static int other_entries(void)
{
    DIR *dir = opendir(temp_dir);
    struct dirent *entry;
    int count = 0;
    ck_assert_ptr_nonnull(dir);
    while ((entry = readdir(dir)) != NULL)
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0
            && strcmp(entry->d_name, "in.safetensors") != 0)
            count++;
    closedir(dir);
    return count;
}

static double *read_tensor(const ms_safetensors *file, const char *name,
                           const ms_tensor_info **info)
{
    *info = ms_safetensors_find(file, name);
    ck_assert_msg(*info != NULL, "missing %s", name);
    double *values = malloc((size_t)(*info)->element_count * sizeof(double));
    ms_error err;
    ck_assert_int_eq(ms_safetensors_read_doubles(file, *info, values, &err), MS_OK);
    return values;
}

/* resize always writes NAME.alpha, as a 0-d tensor */
static double read_alpha(const ms_safetensors *file, const module_spec *m)
{
    char *key = key_of(m, ".alpha");
    const ms_tensor_info *info;
    double *value = read_tensor(file, key, &info);
    ck_assert_int_eq(info->ndim, 0);
    double alpha = value[0];
    free(value);
    free(key);
    return alpha;
}

/* Singular values of the stored input module by dgesdd of the formed W:
 * independent of the fast path under test. */
static void input_spectrum(const double *up, const double *down, int64_t out, int64_t in,
                           int rank, double *s)
{
    double *w = malloc((size_t)(out * in) * sizeof(double));
    double *u = malloc((size_t)(out * out) * sizeof(double));
    double *vt = malloc((size_t)(in * in) * sizeof(double));
    test_matmul(up, down, (size_t)out, (size_t)rank, (size_t)in, w);
    ck_assert_int_eq(test_full_svd(w, (size_t)out, (size_t)in, s, u, vt), 0);
    free(w); free(u); free(vt);
}

typedef struct check_options {
    double tolerance;         /* relative, of the save precision */
    const ms_resize_params *params;
    int expected_linear_rank; /* 0: not checked */
} check_options;

/* Per module: rank within cap, the rank rule on the independent spectrum,
 * alpha/rank preserved, Eckart-Young, orthonormal new_down rows. */
static void check_module(const ms_safetensors *input, const ms_safetensors *output,
                         const module_spec *m, const ms_resize_module_report *report,
                         const check_options *options)
{
    const ms_tensor_info *info;
    char *down_key = key_of(m, m->down_suffix), *up_key = key_of(m, m->up_suffix);
    int64_t out = m->out, in = in_features(m), length = out < in ? out : in;
    double *up = read_tensor(input, up_key, &info);
    double *down = read_tensor(input, down_key, &info);
    double *new_up = read_tensor(output, up_key, &info);
    int k = (int)info->shape[1];
    ck_assert_int_eq(info->shape[0], out);
    ck_assert_int_eq(info->ndim, m->kernel ? 4 : 2);
    double *new_down = read_tensor(output, down_key, &info);
    ck_assert_int_eq(info->shape[0], k);
    if (m->kernel) {
        ck_assert_int_eq(info->shape[1], m->in_channels);
        ck_assert_int_eq(info->shape[2], m->kernel);
        ck_assert_int_eq(info->shape[3], m->kernel);
    }

    const ms_resize_params *params = options->params;
    int cap = m->kernel && params->new_conv_rank ? params->new_conv_rank : params->new_rank;
    ck_assert_int_le(k, cap);
    ck_assert_int_eq(k, report->new_rank);
    double *s = calloc((size_t)length, sizeof(double));
    input_spectrum(up, down, out, in, m->rank, s);
    /* the same rule on dgesdd's spectrum, zeroing its noise past r */
    for (int64_t i = m->rank; i < length; i++)
        s[i] = 0.0;
    ms_rank_choice choice;
    ms_rank_rule(s, (size_t)length, (size_t)length, params->dynamic_method,
                 params->dynamic_param, cap, &choice);
    ck_assert_int_eq(k, choice.rank);
    ck_assert_double_eq_tol(report->fro_retained, choice.fro_retained, 1e-9);

    double alpha = m->alpha != 0.0 ? m->alpha : (double)m->rank; /* exact in F16 */
    ck_assert_double_eq(report->old_alpha, alpha);
    ck_assert_int_eq(report->old_rank, m->rank);
    double new_alpha = read_alpha(output, m);
    double scale = alpha / m->rank, new_scale = new_alpha / k;
    ck_assert_double_eq_tol(new_scale, scale, options->tolerance * scale);

    double *w = malloc((size_t)(out * in) * sizeof(double));
    double *w_new = malloc((size_t)(out * in) * sizeof(double));
    test_matmul(up, down, (size_t)out, (size_t)m->rank, (size_t)in, w);
    test_matmul(new_up, new_down, (size_t)out, (size_t)k, (size_t)in, w_new);
    for (int64_t i = 0; i < out * in; i++) {
        w[i] *= scale;
        w_new[i] *= new_scale;
    }
    double discarded = 0.0;
    for (int64_t i = k; i < length; i++)
        discarded += s[i] * s[i];
    double residual = test_difference_norm(w, w_new, (size_t)(out * in));
    double norm = test_norm(w, (size_t)(out * in));
    ck_assert_msg(fabs(residual - scale * sqrt(discarded)) <= options->tolerance * norm + 1e-300,
                  "%s: residual %g, expected %g", m->name, residual, scale * sqrt(discarded));
    for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++) {
            double dot = 0.0;
            for (int64_t l = 0; l < in; l++)
                dot += new_down[i * in + l] * new_down[j * in + l];
            ck_assert_double_eq_tol(dot, i == j ? 1.0 : 0.0, 4 * options->tolerance);
        }
    if (options->expected_linear_rank && m == &modules[linear_index])
        ck_assert_int_eq(k, options->expected_linear_rank);
    free(s); free(w); free(w_new); free(up); free(down); free(new_up); free(new_down);
    free(down_key); free(up_key);
}

static void check_passthrough(const ms_safetensors *input, const ms_safetensors *output)
{
    static const char *const names[] = {"extra.bias", "step"};
    for (size_t i = 0; i < COUNT_OF(names); i++) {
        const ms_tensor_info *a = ms_safetensors_find(input, names[i]);
        const ms_tensor_info *b = ms_safetensors_find(output, names[i]);
        ck_assert(a != NULL && b != NULL);
        ck_assert_int_eq(a->dtype, b->dtype);
        ck_assert_int_eq(a->ndim, b->ndim);
        ck_assert_uint_eq(a->byte_count, b->byte_count);
        ck_assert(memcmp(ms_safetensors_tensor_bytes(input, a),
                         ms_safetensors_tensor_bytes(output, b), a->byte_count) == 0);
    }
}

static void data_sha256(const ms_safetensors *file, char hex[65])
{
    unsigned char digest[32];
    unsigned int length = 0;
    ck_assert(EVP_Digest(file->data, (size_t)file->data_size, digest, &length, EVP_sha256(),
                         NULL));
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

static void run_and_check(const ms_resize_params *params, const check_options *options,
                          ms_resize_report *report)
{
    ms_error err;
    ms_status status = ms_resize_file(input_path, output_path, params, NULL, NULL, NULL, report,
                                      &err);
    ck_assert_msg(status == MS_OK, "resize: %s (%s)", err.message, err.key);
    ms_safetensors input, output;
    ck_assert_int_eq(ms_safetensors_open(input_path, &input, &err), MS_OK);
    ck_assert_int_eq(ms_safetensors_open(output_path, &output, &err), MS_OK);
    ck_assert_uint_eq(report->module_count, module_count);
    for (size_t i = 0; i < module_count; i++) {
        ck_assert_str_eq(report->modules[i].name, modules[i].name); /* sorted by name */
        check_module(&input, &output, &modules[i], &report->modules[i], options);
    }
    check_passthrough(&input, &output);
    ck_assert_uint_eq(report->copied_tensor_count, 2);
    /* 5 modules x 3 tensors (alpha always written) + 2 passthrough */
    ck_assert_uint_eq(output.tensor_count, 3 * module_count + 2);

    char hex[65];
    data_sha256(&output, hex);
    ck_assert_str_eq(hex, report->model_hash);
    ck_assert_str_eq(ms_safetensors_metadata_get(&output, "sshs_model_hash"), hex);
    ck_assert_uint_eq(report->output_bytes, output.file_size);
    ck_assert_str_eq(ms_safetensors_metadata_get(&output, "ss_custom"), "kept");

    /* kohya leaves the all-zero module (NaN retention) out of the summary */
    double mean = 0.0, variance = 0.0, counted = 0.0;
    for (size_t i = 0; i < module_count; i++)
        if (modules[i].spectrum[0] != 0.0) {
            mean += report->modules[i].fro_retained;
            counted += 1.0;
        }
    mean /= counted;
    for (size_t i = 0; i < module_count; i++)
        if (modules[i].spectrum[0] != 0.0)
            variance += pow(report->modules[i].fro_retained - mean, 2) / counted;
    ck_assert_double_eq_tol(report->fro_retained_mean, mean, 1e-12);
    ck_assert_double_eq_tol(report->fro_retained_std, sqrt(variance), 1e-12);
    ms_safetensors_close(&input);
    ms_safetensors_close(&output);
}

static const char *output_metadata(const char *name, char *buffer, size_t size)
{
    ms_safetensors output;
    ms_error err;
    ck_assert_int_eq(ms_safetensors_open(output_path, &output, &err), MS_OK);
    const char *value = ms_safetensors_metadata_get(&output, name);
    ck_assert_ptr_nonnull(value);
    snprintf(buffer, size, "%s", value);
    ms_safetensors_close(&output);
    return buffer;
}

static ms_dtype output_dtype(const char *name)
{
    ms_safetensors output;
    ms_error err;
    ck_assert_int_eq(ms_safetensors_open(output_path, &output, &err), MS_OK);
    const ms_tensor_info *info = ms_safetensors_find(&output, name);
    ck_assert_ptr_nonnull(info);
    ms_dtype dtype = info->dtype;
    ms_safetensors_close(&output);
    return dtype;
}

START_TEST(test_fixed_rank)
{
    ms_resize_params params;
    ms_resize_params_init(&params);
    params.new_rank = 3;
    params.new_conv_rank = 2;
    params.save_precision = MS_SAVE_PRECISION_FLOAT;
    params.threads = 2;
    check_options options = {.tolerance = 2e-6, .params = &params, .expected_linear_rank = 3};
    ms_resize_report report;
    run_and_check(&params, &options, &report);
    ck_assert_int_eq(report.modules[1].new_rank, 1);      /* the all-zero module */
    ck_assert_double_eq(report.modules[1].fro_retained, 1.0);
    ck_assert_int_eq(report.modules[2].new_rank, 2);      /* conv 3x3: conv cap */
    ck_assert_int_eq(report.modules[3].new_rank, 2);      /* conv 1x1: conv cap too */
    ck_assert_int_eq(report.modules[0].new_rank, 3);
    ms_resize_report_free(&report);

    char text[512];
    ck_assert_str_eq(output_metadata("ss_training_comment", text, sizeof text),
                     "dimension is resized from 8 to 3 (conv: 2); hello");
    ck_assert_str_eq(output_metadata("ss_network_dim", text, sizeof text), "3");
    /* first module by name is "b": alpha 2.5, rank 5, so 2.5 / 5 * 3 */
    ck_assert_str_eq(output_metadata("ss_network_alpha", text, sizeof text), "1.5");
    ck_assert_int_eq(output_dtype("b.lora_A"), MS_DTYPE_F32);
    ck_assert_int_eq(output_dtype("b.alpha"), MS_DTYPE_F32);
    ck_assert_int_eq(other_entries(), 1);
}
END_TEST

/* k above the old rank: zero columns of up, orthonormal completions. */
START_TEST(test_rank_above_old_rank)
{
    ms_resize_params params;
    ms_resize_params_init(&params);
    params.new_rank = 10;
    params.save_precision = MS_SAVE_PRECISION_FLOAT;
    params.threads = 1;
    check_options options = {.tolerance = 2e-6, .params = &params, .expected_linear_rank = 10};
    ms_resize_report report;
    run_and_check(&params, &options, &report);
    ck_assert_int_eq(report.modules[0].new_rank, 9);  /* b: clamped to L = min(9, 14) */
    ck_assert_int_eq(report.modules[3].new_rank, 10); /* conv1x1: L = 10 */
    ck_assert(isinf(report.modules[4].max_ratio));
    ms_resize_report_free(&report);
    char text[512];
    ck_assert_str_eq(output_metadata("ss_training_comment", text, sizeof text),
                     "dimension is resized from 8 to 10; hello");
}
END_TEST

typedef struct dynamic_case {
    ms_dynamic_method method;
    double param;
    int linear_rank;      /* by hand from {8, 4, 2, 1, .5, ...} */
    const char *comment;
} dynamic_case;

static const dynamic_case dynamic_cases[] = {
    /* threshold 1.6: 8, 4, 2 above it, k = 4 */
    {MS_DYNAMIC_SV_RATIO, 5.0, 4, "Dynamic resize with sv_ratio: 5.0 from 8; hello"},
    /* squares 64, 16, 4 reach 0.99^2 of 85.33, k = 4 */
    {MS_DYNAMIC_SV_FRO, 0.99, 4, "Dynamic resize with sv_fro: 0.99 from 8; hello"},
    /* sums 8, 12, 14, 15 of 15.94: 15 first reaches 0.9, j = 3, k = 5 */
    {MS_DYNAMIC_SV_CUMULATIVE, 0.9, 5, "Dynamic resize with sv_cumulative: 0.9 from 8; hello"},
};

START_TEST(test_dynamic)
{
    const dynamic_case *c = &dynamic_cases[_i];
    ms_resize_params params;
    ms_resize_params_init(&params);
    params.new_rank = 8;
    params.dynamic_method = c->method;
    params.has_dynamic_param = true;
    params.dynamic_param = c->param;
    params.save_precision = MS_SAVE_PRECISION_FLOAT;
    check_options options = {.tolerance = 2e-6, .params = &params,
                             .expected_linear_rank = c->linear_rank};
    ms_resize_report report;
    run_and_check(&params, &options, &report);
    ms_resize_report_free(&report);
    char text[512];
    ck_assert_str_eq(output_metadata("ss_training_comment", text, sizeof text), c->comment);
    ck_assert_str_eq(output_metadata("ss_network_dim", text, sizeof text), "Dynamic");
    ck_assert_str_eq(output_metadata("ss_network_alpha", text, sizeof text), "Dynamic");
}
END_TEST

START_TEST(test_precisions)
{
    static const struct {
        ms_save_precision precision;
        double tolerance;
        ms_dtype linear, peft;
    } cases[] = {
        {MS_SAVE_PRECISION_INPUT, 1e-3, MS_DTYPE_F32, MS_DTYPE_F16},
        {MS_SAVE_PRECISION_FP16, 1e-3, MS_DTYPE_F16, MS_DTYPE_F16},
        {MS_SAVE_PRECISION_BF16, 8e-3, MS_DTYPE_BF16, MS_DTYPE_BF16},
    };
    for (size_t i = 0; i < COUNT_OF(cases); i++) {
        ms_resize_params params;
        ms_resize_params_init(&params);
        params.new_rank = 4;
        params.save_precision = cases[i].precision;
        check_options options = {.tolerance = cases[i].tolerance, .params = &params};
        ms_resize_report report;
        run_and_check(&params, &options, &report);
        ms_resize_report_free(&report);
        ck_assert_int_eq(output_dtype("lora_unet_lin.lora_up.weight"), cases[i].linear);
        ck_assert_int_eq(output_dtype("lora_unet_lin.alpha"), cases[i].linear);
        ck_assert_int_eq(output_dtype("b.lora_B"), cases[i].peft);
        ck_assert_int_eq(output_dtype("extra.bias"), MS_DTYPE_F16);
    }
}
END_TEST

/* kohya's "from" is the largest input rank (lora_unet_lin's 8), not the
 * first module's (b's 5) */
START_TEST(test_old_dim_is_largest_rank)
{
    write_input(false); /* no ss_network_dim, no comment */
    ms_resize_params params;
    ms_resize_params_init(&params);
    params.new_rank = 2;
    ms_error err;
    ck_assert_int_eq(ms_resize_file(input_path, output_path, &params, NULL, NULL, NULL, NULL,
                                    &err), MS_OK);
    char text[512];
    ck_assert_str_eq(output_metadata("ss_training_comment", text, sizeof text),
                     "dimension is resized from 8 to 2; ");
    ck_assert_str_eq(output_metadata("ss_network_alpha", text, sizeof text), "1.0");
}
END_TEST

typedef struct progress_log {
    size_t calls;
    size_t last_done;
    bool monotonic;
    bool total_ok;
} progress_log;

static void record_progress(void *user_data, size_t done, size_t total, const char *key)
{
    progress_log *log = user_data;
    /* the first call announces the total before any module: (0, total, NULL) */
    bool first = log->calls == 0;
    log->calls++;
    if (first ? done != 0 || key != NULL : done != log->last_done + 1 || key == NULL)
        log->monotonic = false;
    if (total != module_count)
        log->total_ok = false;
    log->last_done = done;
}

START_TEST(test_progress)
{
    for (int threads = 1; threads <= 3; threads++) {
        progress_log log = {0, 0, true, true};
        ms_resize_params params;
        ms_resize_params_init(&params);
        params.threads = threads;
        ms_error err;
        ck_assert_int_eq(ms_resize_file(input_path, output_path, &params, record_progress, &log,
                                        NULL, NULL, &err), MS_OK);
        ck_assert_uint_eq(log.calls, module_count + 1);
        ck_assert_uint_eq(log.last_done, module_count);
        ck_assert(log.monotonic);
        ck_assert(log.total_ok);
    }
}
END_TEST

START_TEST(test_cancelled)
{
    atomic_int cancel = 1;
    ms_resize_params params;
    ms_resize_params_init(&params);
    ms_error err;
    progress_log log = {0, 0, true, true};
    ck_assert_int_eq(ms_resize_file(input_path, output_path, &params, record_progress, &log,
                                    &cancel, NULL, &err), MS_ERR_CANCELLED);
    ck_assert_uint_eq(log.calls, 0);
    ck_assert_int_eq(other_entries(), 0);
    ck_assert_int_eq(access(output_path, F_OK), -1);
}
END_TEST

/* Cancel from the progress callback after the first module. */
static void cancel_after_first(void *user_data, size_t done, size_t total, const char *key)
{
    (void)total;
    (void)key;
    if (done == 1)
        atomic_store((atomic_int *)user_data, 1);
}

START_TEST(test_cancelled_midway)
{
    atomic_int cancel = 0;
    ms_resize_params params;
    ms_resize_params_init(&params);
    params.threads = 1;
    ms_error err;
    ck_assert_int_eq(ms_resize_file(input_path, output_path, &params, cancel_after_first,
                                    &cancel, &cancel, NULL, &err), MS_ERR_CANCELLED);
    ck_assert_int_eq(other_entries(), 0);
}
END_TEST

START_TEST(test_invalid_parameters)
{
    ms_resize_params params;
    ms_error err;
    ms_resize_params_init(&params);
    params.new_rank = 0;
    ck_assert_int_eq(ms_resize_file(input_path, output_path, &params, NULL, NULL, NULL, NULL,
                                    &err), MS_ERR_INVALID_PARAMETER);
    ck_assert_str_eq(err.details[0].value, "new_rank");
    ms_resize_params_init(&params);
    params.dynamic_method = MS_DYNAMIC_SV_RATIO;
    params.has_dynamic_param = true;
    params.dynamic_param = 1.0;
    ck_assert_int_eq(ms_resize_file(input_path, output_path, &params, NULL, NULL, NULL, NULL,
                                    &err), MS_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(other_entries(), 0);
}
END_TEST

START_TEST(test_params_validate)
{
    ms_resize_params params;
    ms_error err;
    ms_resize_params_init(&params);
    ck_assert_int_eq(params.new_rank, 4);
    ck_assert_int_eq(ms_resize_params_validate(&params, &err), MS_OK);
    params.new_conv_rank = -1;
    ck_assert_int_eq(ms_resize_params_validate(&params, &err), MS_ERR_INVALID_PARAMETER);
    ms_resize_params_init(&params);
    params.dynamic_method = MS_DYNAMIC_SV_FRO;        /* method without param */
    ck_assert_int_eq(ms_resize_params_validate(&params, &err), MS_ERR_INVALID_PARAMETER);
    params.has_dynamic_param = true;
    params.dynamic_param = 1.0;
    ck_assert_int_eq(ms_resize_params_validate(&params, &err), MS_OK);
    params.dynamic_param = 0.0;
    ck_assert_int_eq(ms_resize_params_validate(&params, &err), MS_ERR_INVALID_PARAMETER);
    params.dynamic_param = NAN;
    ck_assert_int_eq(ms_resize_params_validate(&params, &err), MS_ERR_INVALID_PARAMETER);
    params.dynamic_method = MS_DYNAMIC_SV_CUMULATIVE;
    params.dynamic_param = 1.5;
    ck_assert_int_eq(ms_resize_params_validate(&params, &err), MS_ERR_INVALID_PARAMETER);
    params.dynamic_method = MS_DYNAMIC_SV_RATIO;
    ck_assert_int_eq(ms_resize_params_validate(&params, &err), MS_OK);
    params.dynamic_param = INFINITY;
    ck_assert_int_eq(ms_resize_params_validate(&params, &err), MS_ERR_INVALID_PARAMETER);
    params.dynamic_method = MS_DYNAMIC_NONE;          /* param without method */
    params.dynamic_param = 2.0;
    ck_assert_int_eq(ms_resize_params_validate(&params, &err), MS_ERR_INVALID_PARAMETER);

    ms_dynamic_method method;
    ck_assert(ms_dynamic_method_from_name("sv_cumulative", &method));
    ck_assert_int_eq(method, MS_DYNAMIC_SV_CUMULATIVE);
    ck_assert(!ms_dynamic_method_from_name("sv_bogus", &method));
    ck_assert_str_eq(ms_dynamic_method_name(MS_DYNAMIC_SV_FRO), "sv_fro");
    ck_assert_ptr_null(ms_dynamic_method_name(MS_DYNAMIC_NONE));
    ms_save_precision precision;
    ck_assert(ms_save_precision_from_name("bf16", &precision));
    ck_assert_int_eq(precision, MS_SAVE_PRECISION_BF16);
    ck_assert(!ms_save_precision_from_name("fp8", &precision));
    ck_assert_str_eq(ms_save_precision_name(MS_SAVE_PRECISION_FLOAT), "float");
}
END_TEST

START_TEST(test_not_a_lora_and_nan)
{
    ms_writer *writer;
    ms_error err;
    ms_resize_params params;
    ms_resize_params_init(&params);
    int64_t shape[2] = {2, 3};
    double values[6] = {1, 2, 3, 4, 5, 6};
    ck_assert_int_eq(ms_writer_open(input_path, &writer, &err), MS_OK);
    ck_assert_int_eq(ms_writer_add_doubles(writer, "model.weight", MS_DTYPE_F32, 2, shape,
                                           values, &err), MS_OK);
    ck_assert_int_eq(ms_writer_finish(writer, NULL, &err), MS_OK);
    ck_assert_int_eq(ms_resize_file(input_path, output_path, &params, NULL, NULL, NULL, NULL,
                                    &err), MS_ERR_NOT_A_LORA);
    ck_assert_int_eq(other_entries(), 0);

    double with_nan[6] = {1, 2, NAN, 4, 5, 6};
    int64_t up_shape[2] = {3, 2};
    ck_assert_int_eq(ms_writer_open(input_path, &writer, &err), MS_OK);
    ck_assert_int_eq(ms_writer_add_doubles(writer, "m.lora_down.weight", MS_DTYPE_F32, 2, shape,
                                           values, &err), MS_OK);
    ck_assert_int_eq(ms_writer_add_bytes(writer, "m.lora_up.weight", MS_DTYPE_F64, 2, up_shape,
                                         with_nan, sizeof with_nan, &err), MS_OK);
    ck_assert_int_eq(ms_writer_finish(writer, NULL, &err), MS_OK);
    ck_assert_int_eq(ms_resize_file(input_path, output_path, &params, NULL, NULL, NULL, NULL,
                                    &err), MS_ERR_NAN_DETECTED);
    ck_assert_str_eq(err.key, "m.lora_up.weight");
    ck_assert_int_eq(other_entries(), 0);

    /* a tensor copied as it is (no module) is checked too; integers pass */
    uint16_t half_inf[3] = {0x3c00, 0x7c00, 0x3c00};
    int64_t three[1] = {3};
    unsigned char counts[3] = {1, 2, 3};
    double up[6] = {1, 2, 3, 4, 5, 6};
    ck_assert_int_eq(ms_writer_open(input_path, &writer, &err), MS_OK);
    ck_assert_int_eq(ms_writer_add_doubles(writer, "m.lora_down.weight", MS_DTYPE_F32, 2, shape,
                                           values, &err), MS_OK);
    ck_assert_int_eq(ms_writer_add_doubles(writer, "m.lora_up.weight", MS_DTYPE_F32, 2, up_shape,
                                           up, &err), MS_OK);
    ck_assert_int_eq(ms_writer_add_bytes(writer, "extra.counts", MS_DTYPE_U8, 1, three, counts,
                                         sizeof counts, &err), MS_OK);
    ck_assert_int_eq(ms_writer_add_bytes(writer, "extra.scale", MS_DTYPE_F16, 1, three, half_inf,
                                         sizeof half_inf, &err), MS_OK);
    ck_assert_int_eq(ms_writer_finish(writer, NULL, &err), MS_OK);
    ck_assert_int_eq(ms_resize_file(input_path, output_path, &params, NULL, NULL, NULL, NULL,
                                    &err), MS_ERR_NAN_DETECTED);
    ck_assert_str_eq(err.key, "extra.scale");
    ck_assert_int_eq(other_entries(), 0);
}
END_TEST

/* A finite value too large for the save dtype is refused, not written as Inf. */
START_TEST(test_fp16_overflow)
{
    ms_writer *writer;
    ms_error err;
    double down[6] = {1, 0, 0, 0, 1, 0}, up[6] = {1e5, 0, 0, 1, 0, 0};
    int64_t down_shape[2] = {2, 3}, up_shape[2] = {3, 2};
    ck_assert_int_eq(ms_writer_open(input_path, &writer, &err), MS_OK);
    ck_assert_int_eq(ms_writer_add_doubles(writer, "m.lora_down.weight", MS_DTYPE_F32, 2,
                                           down_shape, down, &err), MS_OK);
    ck_assert_int_eq(ms_writer_add_doubles(writer, "m.lora_up.weight", MS_DTYPE_F32, 2, up_shape,
                                           up, &err), MS_OK);
    ck_assert_int_eq(ms_writer_finish(writer, NULL, &err), MS_OK);
    ms_resize_params params;
    ms_resize_params_init(&params);
    params.save_precision = MS_SAVE_PRECISION_FP16;
    ck_assert_int_eq(ms_resize_file(input_path, output_path, &params, NULL, NULL, NULL, NULL,
                                    &err), MS_ERR_NAN_DETECTED);
    ck_assert_str_eq(err.key, "m.lora_up.weight");
    ck_assert_int_eq(other_entries(), 0);
    params.save_precision = MS_SAVE_PRECISION_FLOAT;
    ck_assert_int_eq(ms_resize_file(input_path, output_path, &params, NULL, NULL, NULL, NULL,
                                    &err), MS_OK);
}
END_TEST

/* str(float) of CPython, checked against values printed by Python 3. */
START_TEST(test_python_float_str)
{
    static const struct {
        double value;
        const char *text;
    } cases[] = {
        {0.9, "0.9"}, {4.0, "4.0"}, {0.0001, "0.0001"}, {0.00001, "1e-05"},
        {1e16, "1e+16"}, {1e15, "1000000000000000.0"}, {1.5e-7, "1.5e-07"},
        {123.456, "123.456"}, {-2.5, "-2.5"}, {0.1 + 0.2, "0.30000000000000004"},
        {1.0 / 3.0, "0.3333333333333333"}, {12345678901234567.0, "1.2345678901234568e+16"},
        {5e-324, "5e-324"}, {0.0, "0.0"}, {100.0, "100.0"}, {0.001234, "0.001234"},
    };
    char text[64];
    for (size_t i = 0; i < COUNT_OF(cases); i++) {
        ms_python_float_str(cases[i].value, text, sizeof text);
        ck_assert_str_eq(text, cases[i].text);
    }
}
END_TEST

static Suite *resize_suite(void)
{
    Suite *suite = suite_create("resize");
    TCase *cases = tcase_create("file");
    tcase_add_unchecked_fixture(cases, make_temp_dir, remove_temp_dir);
    tcase_add_checked_fixture(cases, setup, teardown);
    tcase_set_timeout(cases, 60);
    tcase_add_test(cases, test_fixed_rank);
    tcase_add_test(cases, test_rank_above_old_rank);
    tcase_add_loop_test(cases, test_dynamic, 0, (int)COUNT_OF(dynamic_cases));
    tcase_add_test(cases, test_precisions);
    tcase_add_test(cases, test_old_dim_is_largest_rank);
    tcase_add_test(cases, test_progress);
    tcase_add_test(cases, test_cancelled);
    tcase_add_test(cases, test_cancelled_midway);
    tcase_add_test(cases, test_invalid_parameters);
    tcase_add_test(cases, test_params_validate);
    tcase_add_test(cases, test_not_a_lora_and_nan);
    tcase_add_test(cases, test_fp16_overflow);
    suite_add_tcase(suite, cases);
    TCase *text = tcase_create("text");
    tcase_add_test(text, test_python_float_str);
    suite_add_tcase(suite, text);
    return suite;
}

int main(void)
{
    return ms_test_run_suite(resize_suite());
}
