/* The metadata of a resize against kohya's resize_lora.py: the "from" rank
 * of the comment, ss_network_alpha from the last module kohya processes,
 * and sshs_legacy_hash, checked against a header built here the way
 * Python's safetensors serialises it (not with the project's builder). */
#include <check.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/format/safetensors.h"
#include "core/format/writer.h"
#include "core/lora/resize.h"
#include "check_support.h"
#include "numerics_testutil.h"

#define COUNT_OF(array) (sizeof(array) / sizeof((array)[0]))

enum {
    WINDOW_START = 1 << 20,
    WINDOW_BYTES = 64 << 10,
};

typedef struct module_spec {
    const char *name;   /* kohya spelling: NAME.lora_down.weight, NAME.lora_up.weight */
    int rank;
    int kernel;         /* 0: linear [rank, 10]; k: conv [rank, 2, k, k] */
    double alpha;       /* 0: no alpha tensor */
    bool zero;          /* all-zero weights */
} module_spec;

typedef struct metadata_pair {
    const char *name;
    const char *value;
} metadata_pair;

typedef struct lora_spec {
    const module_spec *modules;
    size_t module_count;
    const metadata_pair *metadata;
    size_t metadata_count;
    uint64_t extra_floats;  /* a passthrough F32 tensor of this many values (0: none) */
} lora_spec;

static char *temp_dir;
static char input_path[300];
static char output_path[300];

static void make_temp_dir(void)
{
    temp_dir = ms_test_make_temp_dir("test_resize_metadata");
    ck_assert_ptr_nonnull(temp_dir);
    snprintf(input_path, sizeof input_path, "%s/in.safetensors", temp_dir);
    snprintf(output_path, sizeof output_path, "%s/out.safetensors", temp_dir);
}

static void remove_temp_dir(void)
{
    ms_test_remove_tree(temp_dir);
    free(temp_dir);
    temp_dir = NULL;
}

static void teardown(void)
{
    unlink(input_path);
    unlink(output_path);
}

static void add_random(ms_writer *writer, const char *name, ms_dtype dtype, int ndim,
                       const int64_t *shape, bool zero, test_rng *rng)
{
    int64_t count = 1;
    for (int i = 0; i < ndim; i++)
        count *= shape[i];
    double *values = malloc((size_t)count * sizeof *values);
    ck_assert_ptr_nonnull(values);
    for (int64_t i = 0; i < count; i++)
        values[i] = zero ? 0.0 : test_rng_normal(rng);
    ms_error err;
    ck_assert_int_eq(ms_writer_add_doubles(writer, name, dtype, ndim, shape, values, &err),
                     MS_OK);
    free(values);
}

static void add_module(ms_writer *writer, const module_spec *m, test_rng *rng)
{
    char name[200];
    int ndim = m->kernel ? 4 : 2;
    int64_t down_shape[4] = {m->rank, m->kernel ? 2 : 10, m->kernel, m->kernel};
    int64_t up_shape[4] = {12, m->rank, 1, 1};
    snprintf(name, sizeof name, "%s.lora_down.weight", m->name);
    add_random(writer, name, MS_DTYPE_F32, ndim, down_shape, m->zero, rng);
    snprintf(name, sizeof name, "%s.lora_up.weight", m->name);
    add_random(writer, name, MS_DTYPE_F32, ndim, up_shape, m->zero, rng);
    if (m->alpha != 0.0) {
        ms_error err;
        snprintf(name, sizeof name, "%s.alpha", m->name);
        ck_assert_int_eq(ms_writer_add_doubles(writer, name, MS_DTYPE_F32, 0, NULL, &m->alpha,
                                               &err), MS_OK);
    }
}

static void write_lora(const lora_spec *spec)
{
    ms_writer *writer;
    ms_error err;
    test_rng rng;
    test_rng_seed(&rng, 11);
    ck_assert_int_eq(ms_writer_open(input_path, &writer, &err), MS_OK);
    for (size_t i = 0; i < spec->module_count; i++)
        add_module(writer, &spec->modules[i], &rng);
    if (spec->extra_floats > 0) {
        int64_t shape[1] = {(int64_t)spec->extra_floats};
        add_random(writer, "extra.weight", MS_DTYPE_F32, 1, shape, false, &rng);
    }
    /* two more dtypes, so the reference order (dtype first) matters */
    int64_t bias_shape[1] = {3};
    add_random(writer, "extra.bias", MS_DTYPE_F16, 1, bias_shape, false, &rng);
    int64_t step = 1234;
    ck_assert_int_eq(ms_writer_add_bytes(writer, "step", MS_DTYPE_I64, 0, NULL, &step,
                                         sizeof step, &err), MS_OK);
    for (size_t i = 0; i < spec->metadata_count; i++)
        ck_assert_int_eq(ms_writer_set_metadata(writer, spec->metadata[i].name,
                                                spec->metadata[i].value, &err), MS_OK);
    ms_status status = ms_writer_finish(writer, NULL, &err);
    ck_assert_msg(status == MS_OK, "%s", err.message);
}

static void resize(const ms_resize_params *params)
{
    ms_error err;
    ms_status status = ms_resize_file(input_path, output_path, params, NULL, NULL, NULL, NULL,
                                      &err);
    ck_assert_msg(status == MS_OK, "resize: %s (%s)", err.message, err.key);
}

static ms_resize_params fixed_params(int new_rank, int new_conv_rank)
{
    ms_resize_params params;
    ms_resize_params_init(&params);
    params.new_rank = new_rank;
    params.new_conv_rank = new_conv_rank;
    params.threads = 1;
    return params;
}

/* Copies the output's metadata value (asserting it is there). */
static void output_metadata(const char *name, char *buffer, size_t size)
{
    ms_safetensors output;
    ms_error err;
    ck_assert_int_eq(ms_safetensors_open(output_path, &output, &err), MS_OK);
    const char *value = ms_safetensors_metadata_get(&output, name);
    ck_assert_msg(value != NULL, "no %s in the output", name);
    snprintf(buffer, size, "%s", value);
    ms_safetensors_close(&output);
}

/* ---- the header as Python's safetensors (serde_json) writes it ---- */

typedef struct text {
    char *bytes;
    size_t length;
    size_t capacity;
} text;

static void append(text *t, const char *bytes, size_t length)
{
    if (t->length + length + 1 > t->capacity) {
        t->capacity = 2 * (t->length + length + 1);
        t->bytes = realloc(t->bytes, t->capacity);
        ck_assert_ptr_nonnull(t->bytes);
    }
    memcpy(t->bytes + t->length, bytes, length);
    t->length += length;
}

static void append_string(text *t, const char *s)
{
    append(t, s, strlen(s));
}

/* serde_json: \" \\ \b \f \n \r \t, other controls as \u00xx (lower
 * case), everything else (UTF-8, '/') as it is */
static void append_json_string(text *t, const char *s)
{
    append(t, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
        char escape[8];
        switch (*c) {
        case '"': append_string(t, "\\\""); break;
        case '\\': append_string(t, "\\\\"); break;
        case '\b': append_string(t, "\\b"); break;
        case '\f': append_string(t, "\\f"); break;
        case '\n': append_string(t, "\\n"); break;
        case '\r': append_string(t, "\\r"); break;
        case '\t': append_string(t, "\\t"); break;
        default:
            if (*c < 0x20) {
                snprintf(escape, sizeof escape, "\\u%04x", *c);
                append_string(t, escape);
            } else {
                append(t, (const char *)c, 1);
            }
        }
    }
    append(t, "\"", 1);
}

/* safetensors' Dtype enum, in declaration order: the data is sorted by it,
 * descending, then by name. */
static int reference_dtype_rank(const char *name)
{
    static const char *const order[] = {
        "BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
        "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32",
        "C64", "F64", "I64", "U64"};
    for (size_t i = 0; i < COUNT_OF(order); i++)
        if (strcmp(order[i], name) == 0)
            return (int)i;
    ck_abort_msg("dtype %s not in the table", name);
    return -1;
}

static int compare_reference(const void *a, const void *b)
{
    const ms_tensor_info *x = *(const ms_tensor_info *const *)a;
    const ms_tensor_info *y = *(const ms_tensor_info *const *)b;
    int rank_x = reference_dtype_rank(ms_dtype_name(x->dtype));
    int rank_y = reference_dtype_rank(ms_dtype_name(y->dtype));
    if (rank_x != rank_y)
        return rank_y - rank_x;
    return strcmp(x->name, y->name);
}

static bool kept(const char *name, const char *prefix)
{
    return strncmp(name, prefix, strlen(prefix)) == 0 &&
           strcmp(name, "sshs_model_hash") != 0 && strcmp(name, "sshs_legacy_hash") != 0;
}

/* The whole file save(tensors, {metadata whose names start with prefix})
 * makes from the file at path: 8-byte length, JSON padded with spaces to a
 * multiple of 8, the data in the reference order.  Metadata names sorted
 * (Python's order is a hash map's). */
static text reference_file(const char *path, const char *prefix)
{
    ms_safetensors file;
    ms_error err;
    ck_assert_int_eq(ms_safetensors_open(path, &file, &err), MS_OK);
    const ms_tensor_info **order = malloc(file.tensor_count * sizeof *order);
    ck_assert_ptr_nonnull(order);
    for (size_t i = 0; i < file.tensor_count; i++)
        order[i] = &file.tensors[i];
    qsort(order, file.tensor_count, sizeof *order, compare_reference);

    text json = {0};
    append_string(&json, "{\"__metadata__\":{");
    bool first = true;
    for (size_t i = 0; i < file.metadata_count; i++) {
        if (!kept(file.metadata[i].name, prefix))
            continue;
        if (!first)
            append_string(&json, ",");
        first = false;
        append_json_string(&json, file.metadata[i].name);
        append_string(&json, ":");
        append_json_string(&json, file.metadata[i].value);
    }
    append_string(&json, "}");
    uint64_t offset = 0;
    for (size_t i = 0; i < file.tensor_count; i++) {
        char number[64];
        append_string(&json, ",");
        append_json_string(&json, order[i]->name);
        append_string(&json, ":{\"dtype\":\"");
        append_string(&json, ms_dtype_name(order[i]->dtype));
        append_string(&json, "\",\"shape\":[");
        for (int d = 0; d < order[i]->ndim; d++) {
            snprintf(number, sizeof number, "%s%lld", d > 0 ? "," : "",
                     (long long)order[i]->shape[d]);
            append_string(&json, number);
        }
        snprintf(number, sizeof number, "],\"data_offsets\":[%llu,%llu]}",
                 (unsigned long long)offset,
                 (unsigned long long)(offset + order[i]->byte_count));
        append_string(&json, number);
        offset += order[i]->byte_count;
    }
    append_string(&json, "}");
    while (json.length % 8 != 0)
        append_string(&json, " ");

    text whole = {0};
    unsigned char length_bytes[8];
    for (int i = 0; i < 8; i++)
        length_bytes[i] = (unsigned char)((uint64_t)json.length >> (8 * i));
    append(&whole, (const char *)length_bytes, 8);
    append(&whole, json.bytes, json.length);
    for (size_t i = 0; i < file.tensor_count; i++)
        append(&whole, (const char *)file.data + order[i]->offset, order[i]->byte_count);
    free(json.bytes);
    free(order);
    ms_safetensors_close(&file);
    return whole;
}

/* addnet_hash_legacy: seek to 1 MiB of a BytesIO, read 64 KiB (fewer, or
 * none, past the end), first 8 hex digits of the sha256. */
static void legacy_hash_of(const text *file, char hex[9])
{
    size_t start = WINDOW_START < file->length ? WINDOW_START : file->length;
    size_t end = WINDOW_START + WINDOW_BYTES < file->length ? WINDOW_START + WINDOW_BYTES
                                                            : file->length;
    unsigned char digest[32];
    unsigned int length = 0;
    ck_assert(EVP_Digest(file->bytes + start, end - start, digest, &length, EVP_sha256(),
                         NULL));
    for (int i = 0; i < 4; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

/* Checks the output's sshs_legacy_hash against kohya's file; returns that
 * file's size so a test can say which part of the window it exercised. */
static size_t check_legacy_hash(const char *path, const char *prefix)
{
    text file = reference_file(path, prefix);
    char expected[9], stored[64];
    legacy_hash_of(&file, expected);
    ms_safetensors output;
    ms_error err;
    ck_assert_int_eq(ms_safetensors_open(path, &output, &err), MS_OK);
    const char *value = ms_safetensors_metadata_get(&output, "sshs_legacy_hash");
    ck_assert_msg(value != NULL, "no sshs_legacy_hash");
    snprintf(stored, sizeof stored, "%s", value);
    ms_safetensors_close(&output);
    ck_assert_str_eq(stored, expected);
    size_t size = file.length;
    free(file.bytes);
    return size;
}

/* ---- ss_network_alpha: the last module kohya processes ---- */

typedef struct alpha_case {
    const char *what;
    module_spec modules[3];
    int new_rank, new_conv_rank;
    const char *alpha;
} alpha_case;

static const alpha_case alpha_cases[] = {
    /* names sort 0 < a < a.b; down keys sort "a.b.lora_down..." <
     * "a.lora_down..." ('b' < 'l'), so kohya does "a" last: 3 / 4 * 2 */
    {"key order, not name order",
     {{"0", 4, 0, 1.0, false}, {"a", 4, 0, 3.0, false}, {"a.b", 4, 0, 5.0, false}}, 2, 0,
     "1.5"},
    /* the last one is a conv module: its cap is new_conv_rank, 2 / 4 * 2 */
    {"conv last", {{"a", 4, 0, 4.0, false}, {"z", 4, 3, 2.0, false}, {NULL, 0, 0, 0, false}},
     3, 2, "1.0"},
    /* the last one is all zero: rank 1, so 2 / 4 * 1 */
    {"all-zero last", {{"a", 4, 0, 4.0, false}, {"z", 4, 0, 2.0, true}, {NULL, 0, 0, 0, false}},
     3, 0, "0.5"},
    /* kohya's scale is a float32 tensor: float32(1 / 3) * 2, not 2 / 3 */
    {"float32 scale", {{"a", 4, 0, 4.0, false}, {"z", 3, 0, 1.0, false}, {NULL, 0, 0, 0, false}},
     2, 0, "0.6666666865348816"},
    /* no alpha: scale 1, so the new rank */
    {"no alpha last", {{"a", 4, 0, 1.0, false}, {"z", 4, 0, 0.0, false}, {NULL, 0, 0, 0, false}},
     3, 0, "3.0"},
};

static size_t module_count_of(const module_spec *modules, size_t capacity)
{
    size_t count = 0;
    while (count < capacity && modules[count].name != NULL)
        count++;
    return count;
}

START_TEST(test_alpha_of_last_processed_module)
{
    const alpha_case *c = &alpha_cases[_i];
    lora_spec spec = {c->modules, module_count_of(c->modules, COUNT_OF(c->modules)), NULL, 0,
                      0};
    write_lora(&spec);
    ms_resize_params params = fixed_params(c->new_rank, c->new_conv_rank);
    resize(&params);
    char value[128];
    output_metadata("ss_network_alpha", value, sizeof value);
    ck_assert_msg(strcmp(value, c->alpha) == 0, "%s: ss_network_alpha %s, kohya %s", c->what,
                  value, c->alpha);
}
END_TEST

/* ---- the comment's "from": the largest input rank ---- */

static const module_spec mixed_ranks[] = {
    {"a", 3, 0, 3.0, false}, {"b", 6, 0, 6.0, false}, {"c", 5, 3, 5.0, false}};

/* metadata of a file a dynamic resize made */
static const metadata_pair after_dynamic[] = {
    {"ss_network_dim", "Dynamic"},
    {"ss_network_alpha", "Dynamic"},
    {"ss_training_comment", "Dynamic resize with sv_fro: 0.9 from 16; first"},
};

START_TEST(test_from_rank_after_dynamic_resize)
{
    lora_spec spec = {mixed_ranks, COUNT_OF(mixed_ranks), after_dynamic,
                      COUNT_OF(after_dynamic), 0};
    write_lora(&spec);
    ms_resize_params params = fixed_params(4, 0);
    resize(&params);
    char value[256];
    output_metadata("ss_training_comment", value, sizeof value);
    ck_assert_str_eq(value,
                     "dimension is resized from 6 to 4; "
                     "Dynamic resize with sv_fro: 0.9 from 16; first");
    output_metadata("ss_network_dim", value, sizeof value);
    ck_assert_str_eq(value, "4");

    params.dynamic_method = MS_DYNAMIC_SV_RATIO;
    params.has_dynamic_param = true;
    params.dynamic_param = 2.0;
    resize(&params);
    output_metadata("ss_training_comment", value, sizeof value);
    ck_assert_str_eq(value,
                     "Dynamic resize with sv_ratio: 2.0 from 6; "
                     "Dynamic resize with sv_fro: 0.9 from 16; first");
}
END_TEST

/* ---- sshs_legacy_hash ---- */

static const module_spec two_modules[] = {{"lora_te_a", 4, 0, 2.0, false},
                                          {"lora_unet_b", 8, 3, 4.0, false}};

START_TEST(test_legacy_hash_small_file)
{
    lora_spec spec = {two_modules, COUNT_OF(two_modules), after_dynamic,
                      COUNT_OF(after_dynamic), 0};
    write_lora(&spec);
    ms_resize_params params = fixed_params(2, 0);
    resize(&params);
    size_t size = check_legacy_hash(output_path, "ss_");
    ck_assert_uint_lt(size, WINDOW_START);
    /* nothing read: the sha256 of no bytes */
    char value[64];
    output_metadata("sshs_legacy_hash", value, sizeof value);
    ck_assert_str_eq(value, "e3b0c442");
}
END_TEST

/* A long non-ss_ entry: our header is 6000 bytes longer than kohya's, so
 * hashing our own file's window would give another answer. */
static char long_note[6001];

static const metadata_pair with_other_metadata[] = {
    {"modelspec.description", long_note},
    {"ss_training_comment", "quote \" backslash \\ newline \n tab \t ctrl \x01 e\xc3\xa9 /"},
    {"ss_tag_frequency", "{\"a\": {\"b\": 1}}"},
    {"sshs_model_hash", "stale"},
    {"sshs_legacy_hash", "stale"},
};

static void fill_long_note(void)
{
    memset(long_note, 'n', sizeof long_note - 1);
    long_note[sizeof long_note - 1] = '\0';
}

START_TEST(test_legacy_hash_partial_window)
{
    fill_long_note();
    /* 1 MiB + 16 KiB of data: kohya's file ends inside the window */
    lora_spec spec = {two_modules, COUNT_OF(two_modules), with_other_metadata,
                      COUNT_OF(with_other_metadata), (WINDOW_START + (16 << 10)) / 4};
    write_lora(&spec);
    ms_resize_params params = fixed_params(2, 0);
    resize(&params);
    size_t size = check_legacy_hash(output_path, "ss_");
    ck_assert_uint_gt(size, WINDOW_START);
    ck_assert_uint_lt(size, WINDOW_START + WINDOW_BYTES);
}
END_TEST

START_TEST(test_legacy_hash_full_window)
{
    fill_long_note();
    lora_spec spec = {two_modules, COUNT_OF(two_modules), with_other_metadata,
                      COUNT_OF(with_other_metadata), 400000};
    write_lora(&spec);
    ms_resize_params params = fixed_params(3, 2);
    params.save_precision = MS_SAVE_PRECISION_FP16;
    resize(&params);
    size_t size = check_legacy_hash(output_path, "ss_");
    ck_assert_uint_ge(size, WINDOW_START + WINDOW_BYTES);
    /* and the stale hashes are replaced */
    char value[80], data_hex[65];
    output_metadata("sshs_model_hash", value, sizeof value);
    ms_safetensors output;
    ms_error err;
    ck_assert_int_eq(ms_safetensors_open(output_path, &output, &err), MS_OK);
    unsigned char digest[32];
    unsigned int length = 0;
    ck_assert(EVP_Digest(output.data, (size_t)output.data_size, digest, &length, EVP_sha256(),
                         NULL));
    for (int i = 0; i < 32; i++)
        snprintf(data_hex + 2 * i, 3, "%02x", digest[i]);
    ms_safetensors_close(&output);
    ck_assert_str_eq(value, data_hex);
}
END_TEST

/* An ss_ entry over 1 MiB: the window starts inside kohya's header and
 * ends in the data. */
START_TEST(test_legacy_hash_window_in_header)
{
    size_t big = WINDOW_START + (20 << 10);
    char *frequency = malloc(big + 1);
    ck_assert_ptr_nonnull(frequency);
    memset(frequency, 'f', big);
    frequency[big] = '\0';
    const metadata_pair metadata[] = {{"ss_tag_frequency", frequency},
                                      {"ss_network_dim", "8"}};
    lora_spec spec = {two_modules, COUNT_OF(two_modules), metadata, COUNT_OF(metadata),
                      100000};
    write_lora(&spec);
    ms_resize_params params = fixed_params(2, 0);
    resize(&params);
    size_t size = check_legacy_hash(output_path, "ss_");
    ck_assert_uint_ge(size, WINDOW_START + WINDOW_BYTES);
    ms_safetensors output;
    ms_error err;
    ck_assert_int_eq(ms_safetensors_open(output_path, &output, &err), MS_OK);
    ck_assert_uint_gt(8 + output.header_length, WINDOW_START);
    ck_assert_uint_lt(8 + output.header_length, WINDOW_START + WINDOW_BYTES);
    ms_safetensors_close(&output);
    free(frequency);
}
END_TEST

/* The writer on its own: no entry with the prefix still writes
 * "__metadata__":{} (kohya passes a dict), and the two hash entries never
 * count, even when their names have the prefix. */
static void write_with_legacy_hash(const metadata_pair *metadata, size_t count,
                                   const char *prefix)
{
    ms_writer *writer;
    ms_error err;
    test_rng rng;
    test_rng_seed(&rng, 5);
    ck_assert_int_eq(ms_writer_open(output_path, &writer, &err), MS_OK);
    int64_t shape[1] = {300000};
    add_random(writer, "w", MS_DTYPE_F32, 1, shape, false, &rng);
    add_random(writer, "h", MS_DTYPE_F16, 1, shape, false, &rng);
    for (size_t i = 0; i < count; i++)
        ck_assert_int_eq(ms_writer_set_metadata(writer, metadata[i].name, metadata[i].value,
                                                &err), MS_OK);
    ck_assert_int_eq(ms_writer_set_data_hash_metadata(writer, "sshs_model_hash", &err), MS_OK);
    ck_assert_int_eq(ms_writer_set_legacy_hash_metadata(writer, "sshs_legacy_hash", prefix,
                                                        &err), MS_OK);
    ck_assert_int_eq(ms_writer_finish(writer, NULL, &err), MS_OK);
}

START_TEST(test_legacy_hash_writer_prefixes)
{
    const metadata_pair none_kept[] = {{"other", "1"}};
    write_with_legacy_hash(none_kept, COUNT_OF(none_kept), "ss_");
    check_legacy_hash(output_path, "ss_");

    const metadata_pair hash_prefix[] = {{"sshs_note", "kept"}, {"ss_x", "dropped"}};
    write_with_legacy_hash(hash_prefix, COUNT_OF(hash_prefix), "sshs_");
    check_legacy_hash(output_path, "sshs_");

    ms_writer *writer = NULL;
    ms_error err;
    ck_assert_int_eq(ms_writer_open(output_path, &writer, &err), MS_OK);
    ck_assert_int_eq(ms_writer_set_legacy_hash_metadata(writer, "bad\xff", "ss_", &err),
                     MS_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(ms_writer_set_legacy_hash_metadata(writer, "name", NULL, &err),
                     MS_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(ms_writer_set_legacy_hash_metadata(NULL, "name", "ss_", &err),
                     MS_ERR_INVALID_PARAMETER);
    ms_writer_abort(writer);
}
END_TEST

static Suite *resize_metadata_suite(void)
{
    Suite *suite = suite_create("resize_metadata");
    TCase *cases = tcase_create("kohya");
    tcase_add_unchecked_fixture(cases, make_temp_dir, remove_temp_dir);
    tcase_add_checked_fixture(cases, NULL, teardown);
    tcase_set_timeout(cases, 60);
    tcase_add_loop_test(cases, test_alpha_of_last_processed_module, 0,
                        (int)COUNT_OF(alpha_cases));
    tcase_add_test(cases, test_from_rank_after_dynamic_resize);
    tcase_add_test(cases, test_legacy_hash_small_file);
    tcase_add_test(cases, test_legacy_hash_partial_window);
    tcase_add_test(cases, test_legacy_hash_full_window);
    tcase_add_test(cases, test_legacy_hash_window_in_header);
    tcase_add_test(cases, test_legacy_hash_writer_prefixes);
    suite_add_tcase(suite, cases);
    return suite;
}

int main(void)
{
    return ms_test_run_suite(resize_metadata_suite());
}
