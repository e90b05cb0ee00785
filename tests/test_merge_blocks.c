/* Block weights and the checkpoint generator: every UNet key the generator
 * knows lands in the block its structure says (parsed here, component by
 * component, independently of blocks.c's substring rules), for the 25 and 19
 * lists and the named blocks; validation; architecture detection on
 * generated files; the generator's key sets, counts, dtypes and variants. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/merge/blocks.h"
#include "core/format/safetensors.h"
#include "check_support.h"
#include "checkpoint_generator.h"

static char *temp_dir;

static void make_temp_dir(void)
{
    temp_dir = ms_test_make_temp_dir("test_merge_blocks");
    ck_assert_ptr_nonnull(temp_dir);
}

static void remove_temp_dir(void)
{
    ms_test_remove_tree(temp_dir);
    free(temp_dir);
    temp_dir = NULL;
}

/* ---- key lists ---- */

enum { MAX_KEYS = 4096, NAME_BYTES = 160 };

typedef struct key_list {
    size_t count;
    char names[MAX_KEYS][NAME_BYTES];
    int ndim[MAX_KEYS];
    int64_t shape[MAX_KEYS][4];
    ms_dtype dtype[MAX_KEYS];
    uint64_t parameters;
} key_list;

static void collect(void *user_data, const gen_checkpoint_tensor *tensor)
{
    key_list *list = user_data;
    ck_assert_uint_lt(list->count, MAX_KEYS);
    ck_assert_uint_lt(strlen(tensor->name), NAME_BYTES);
    strcpy(list->names[list->count], tensor->name);
    list->ndim[list->count] = tensor->ndim;
    memcpy(list->shape[list->count], tensor->shape, sizeof tensor->shape);
    list->dtype[list->count] = tensor->dtype;
    list->parameters += tensor->element_count;
    list->count++;
}

static key_list *keys_of(const gen_checkpoint_options *options)
{
    key_list *list = calloc(1, sizeof *list);
    ck_assert_ptr_nonnull(list);
    gen_checkpoint_enumerate(options, collect, list);
    return list;
}

static key_list *keys_for(gen_checkpoint_arch arch, bool full_size)
{
    gen_checkpoint_options options;
    gen_checkpoint_options_init(&options);
    options.arch = arch;
    options.full_size = full_size;
    options.extra_keys = true;
    return keys_of(&options);
}

static ssize_t find_key(const key_list *list, const char *name)
{
    for (size_t i = 0; i < list->count; i++)
        if (strcmp(list->names[i], name) == 0)
            return (ssize_t)i;
    return -1;
}

/* ---- the expected block, from the key's components ---- */

typedef enum part {
    PART_OTHER,       /* not a UNet key */
    PART_TIME,
    PART_LABEL,
    PART_INPUT,
    PART_MIDDLE,
    PART_OUTPUT,
    PART_OUT,
} part;

/* "model.diffusion_model.<first>.<second>...": first names the part,
 * second is the block number of input_blocks / output_blocks. */
static part part_of(const char *key, int *number)
{
    static const char unet[] = "model.diffusion_model.";
    *number = -1;
    if (strncmp(key, unet, sizeof unet - 1) != 0)
        return PART_OTHER;
    char copy[NAME_BYTES];
    snprintf(copy, sizeof copy, "%s", key + sizeof unet - 1);
    char *save = NULL;
    char *first = strtok_r(copy, ".", &save);
    char *second = strtok_r(NULL, ".", &save);
    ck_assert_ptr_nonnull(first);
    ck_assert_ptr_nonnull(second);
    if (strcmp(first, "time_embed") == 0)
        return PART_TIME;
    if (strcmp(first, "label_emb") == 0)
        return PART_LABEL;
    if (strcmp(first, "out") == 0)
        return PART_OUT;
    if (strcmp(first, "middle_block") == 0)
        return PART_MIDDLE;
    char *end = NULL;
    long value = strtol(second, &end, 10);
    ck_assert_msg(*end == '\0', "block number of %s", key);
    *number = (int)value;
    if (strcmp(first, "input_blocks") == 0)
        return PART_INPUT;
    ck_assert_msg(strcmp(first, "output_blocks") == 0, "unexpected UNet key %s", key);
    return PART_OUTPUT;
}

/* Expected list position (-1 = base) for a list of length count. */
static int expected_position(const char *key, size_t count)
{
    int number;
    int levels = count == 19 ? 9 : 12;
    switch (part_of(key, &number)) {
    case PART_TIME:
        return 0;
    case PART_OUT:
        return (int)count - 1;
    case PART_INPUT:
        return number;
    case PART_MIDDLE:
        return levels;
    case PART_OUTPUT:
        return levels + 1 + number;
    case PART_LABEL:       /* sd-meh: no rule, base values */
    case PART_OTHER:
        break;
    }
    return -1;
}

/* Expected named index (BASE 0, IN 1.., M00 13, OUT 14.., VAE 26). */
static int expected_named(const char *key, gen_checkpoint_arch arch)
{
    int number;
    int levels = arch == GEN_CHECKPOINT_SDXL ? 9 : 12;
    switch (part_of(key, &number)) {
    case PART_TIME:
    case PART_LABEL:
        return 0;
    case PART_OUT:
        return 14 + levels - 1;
    case PART_INPUT:
        return 1 + number;
    case PART_MIDDLE:
        return 13;
    case PART_OUTPUT:
        return 14 + number;
    case PART_OTHER:
        break;
    }
    if (strncmp(key, "first_stage_model.", 18) == 0)
        return 26;
    if (strncmp(key, "cond_stage_model.", 17) == 0 || strncmp(key, "conditioner.", 12) == 0)
        return 0;
    return -1;
}

static ms_merge_architecture merge_arch(gen_checkpoint_arch arch)
{
    return arch == GEN_CHECKPOINT_SDXL ? MS_MERGE_ARCH_SDXL : MS_MERGE_ARCH_SD1;
}

static ms_block_weights list_weights(size_t count)
{
    ms_block_weights weights;
    memset(&weights, 0, sizeof weights);
    weights.form = MS_BLOCKS_LIST;
    weights.count = count;
    for (size_t i = 0; i < count; i++)
        weights.values[i] = 100.0 + (double)i;
    return weights;
}

/* Every key of the architecture through a list; every position used. */
static void check_list(gen_checkpoint_arch arch, size_t count)
{
    key_list *keys = keys_for(arch, true);
    ms_block_weights weights = list_weights(count);
    ms_error err;
    ck_assert_int_eq(ms_block_weights_validate(&weights, "alpha", merge_arch(arch), &err), MS_OK);
    bool used[25] = {false};
    size_t unet_keys = 0;
    for (size_t i = 0; i < keys->count; i++) {
        const char *key = keys->names[i];
        int block = -2;
        double value = ms_block_weight_for_key(&weights, merge_arch(arch), key, -1.0, &block);
        int expected = expected_position(key, count);
        ck_assert_msg(block == expected, "%s: block %d, expected %d", key, block, expected);
        ck_assert_double_eq(value, expected >= 0 ? 100.0 + expected : -1.0);
        if (expected >= 0)
            used[expected] = true;
        if (strncmp(key, "model.diffusion_model.", 22) == 0)
            unet_keys++;
    }
    ck_assert_uint_gt(unet_keys, 600);
    /* SD1 uses every position; SDXL with 25 values skips IN09..IN11 and
     * OUT09..OUT11 (positions 9..11 and 22..23: only 9 output blocks). */
    for (size_t position = 0; position < count; position++) {
        bool skipped = arch == GEN_CHECKPOINT_SDXL && count == 25 &&
                       ((position >= 9 && position <= 11) || (position >= 22 && position <= 23));
        ck_assert_msg(used[position] == !skipped, "position %zu used %d", position,
                      used[position]);
    }
    free(keys);
}

START_TEST(test_list25_sd15)
{
    check_list(GEN_CHECKPOINT_SD15, 25);
}
END_TEST

START_TEST(test_list25_sdxl)
{
    check_list(GEN_CHECKPOINT_SDXL, 25);
}
END_TEST

START_TEST(test_list19_sdxl)
{
    check_list(GEN_CHECKPOINT_SDXL, 19);
}
END_TEST

/* Named blocks, all given (loop 0) or only the even indices (loop 1). */
static void check_named(gen_checkpoint_arch arch, bool only_even)
{
    key_list *keys = keys_for(arch, true);
    ms_block_weights weights;
    memset(&weights, 0, sizeof weights);
    weights.form = MS_BLOCKS_NAMED;
    int levels = arch == GEN_CHECKPOINT_SDXL ? 9 : 12;
    for (int i = 0; i < MS_BLOCK_NAMED_COUNT; i++) {
        bool exists = !((i >= 1 + levels && i <= 12) || (i >= 14 + levels && i <= 25));
        weights.present[i] = exists && (!only_even || i % 2 == 0);
        weights.values[i] = 200.0 + i;
    }
    ms_error err;
    ck_assert_int_eq(ms_block_weights_validate(&weights, "beta", merge_arch(arch), &err), MS_OK);
    bool used[MS_BLOCK_NAMED_COUNT] = {false};
    for (size_t k = 0; k < keys->count; k++) {
        const char *key = keys->names[k];
        int block = -2;
        double value = ms_block_weight_for_key(&weights, merge_arch(arch), key, -1.0, &block);
        int expected = expected_named(key, arch);
        if (expected >= 0 && !weights.present[expected])
            expected = -1;
        ck_assert_msg(block == expected, "%s: block %d, expected %d", key, block, expected);
        ck_assert_double_eq(value, expected >= 0 ? 200.0 + expected : -1.0);
        if (expected >= 0)
            used[expected] = true;
    }
    for (int i = 0; i < MS_BLOCK_NAMED_COUNT; i++)
        ck_assert_msg(used[i] == weights.present[i], "%s used %d", ms_block_name(i), used[i]);
    free(keys);
}

START_TEST(test_named_sd15)
{
    check_named(GEN_CHECKPOINT_SD15, _i == 1);
}
END_TEST

START_TEST(test_named_sdxl)
{
    check_named(GEN_CHECKPOINT_SDXL, _i == 1);
}
END_TEST

/* Keys outside the UNet: base for lists; named: VAE / BASE or base. */
START_TEST(test_non_unet_keys)
{
    ms_block_weights list = list_weights(25);
    static const char *const keys[] = {
        "first_stage_model.decoder.conv_out.weight",
        "cond_stage_model.transformer.text_model.final_layer_norm.weight",
        "conditioner.embedders.1.model.ln_final.weight",
        "alphas_cumprod",
        "model_ema.decay",
    };
    static const int named[] = {26, 0, 0, -1, -1};
    ms_block_weights names;
    memset(&names, 0, sizeof names);
    names.form = MS_BLOCKS_NAMED;
    for (int i = 0; i < MS_BLOCK_NAMED_COUNT; i++) {
        names.present[i] = true;
        names.values[i] = i;
    }
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int block = 7;
        ck_assert_double_eq(ms_block_weight_for_key(&list, MS_MERGE_ARCH_SD1, keys[i], 0.25,
                                                    &block),
                            0.25);
        ck_assert_int_eq(block, -1);
        double value = ms_block_weight_for_key(&names, MS_MERGE_ARCH_SD1, keys[i], 0.25, &block);
        ck_assert_int_eq(block, named[i]);
        ck_assert_double_eq(value, named[i] >= 0 ? named[i] : 0.25);
    }
    /* no weights at all, or NONE: the base, and block may be NULL */
    ms_block_weights none;
    memset(&none, 0, sizeof none);
    int block = 7;
    ck_assert_double_eq(ms_block_weight_for_key(&none, MS_MERGE_ARCH_SD1,
                                                "model.diffusion_model.out.2.weight", 0.5, &block),
                        0.5);
    ck_assert_int_eq(block, -1);
    ck_assert_double_eq(ms_block_weight_for_key(NULL, MS_MERGE_ARCH_SD1,
                                                "model.diffusion_model.out.2.weight", 0.5, NULL),
                        0.5);
    ck_assert_double_eq(ms_block_weight_for_key(&list, MS_MERGE_ARCH_SD1, NULL, 0.5, &block), 0.5);
}
END_TEST

/* sd-meh's substring rules on keys no real checkpoint has. */
START_TEST(test_substring_rules)
{
    ms_block_weights list = list_weights(25);
    static const struct {
        const char *key;
        int position;
    } cases[] = {
        {"prefix.model.diffusion_model.input_blocks.3.0.weight", 3},   /* anywhere */
        {"model.diffusion_model.output_blocks.1.time_embed.weight", 0}, /* first rule wins */
        {"model.diffusion_model.input_blocks.2.out.weight", 24},
        {"model.diffusion_model.input_blocks.x.y.input_blocks.4.z", 4}, /* later occurrence */
        {"model.diffusion_model.input_blocks.07.0.weight", 7},
        {"model.diffusion_model.input_blocks.25.0.weight", -1},         /* past the list */
        {"model.diffusion_model.input_blocks.99999999999999999999.0.w", -1},
        {"model.diffusion_model.input_blocks.5", -1},                   /* no closing dot */
        {"model.diffusion_model.middle_block.weight", -1},              /* no number */
        {"model.diffusion_model.middle_block.7.weight", 12},
        {"model.diffusion_model.output_blocks.11.1.conv.weight", 24},
        {"model.diffusion_model.output_blocks.12.0.weight", -1},
        {"model.diffusion_model.label_emb.0.0.weight", -1},
        {"model.diffusion_model.something_else.weight", -1},
        {"model.diffusion_model", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int block = -2;
        ms_block_weight_for_key(&list, MS_MERGE_ARCH_SD1, cases[i].key, 0, &block);
        ck_assert_msg(block == cases[i].position, "%s: %d, expected %d", cases[i].key, block,
                      cases[i].position);
    }
    /* named: a block number the architecture lacks, and a UNet key no
     * rule knows, take the base */
    ms_block_weights names;
    memset(&names, 0, sizeof names);
    names.form = MS_BLOCKS_NAMED;
    for (int i = 0; i < MS_BLOCK_NAMED_COUNT; i++)
        names.present[i] = true;
    int block = -2;
    ms_block_weight_for_key(&names, MS_MERGE_ARCH_SDXL,
                            "model.diffusion_model.input_blocks.9.0.weight", 0, &block);
    ck_assert_int_eq(block, -1);
    ms_block_weight_for_key(&names, MS_MERGE_ARCH_SDXL,
                            "model.diffusion_model.output_blocks.9.0.weight", 0, &block);
    ck_assert_int_eq(block, -1);
    ms_block_weight_for_key(&names, MS_MERGE_ARCH_SD1,
                            "model.diffusion_model.input_blocks.9.0.weight", 0, &block);
    ck_assert_int_eq(block, 10);
    ms_block_weight_for_key(&names, MS_MERGE_ARCH_SD1, "model.diffusion_model.mystery.weight", 0,
                            &block);
    ck_assert_int_eq(block, -1);
}
END_TEST

static const char *detail(const ms_error *err, const char *name)
{
    for (int i = 0; i < err->detail_count; i++)
        if (strcmp(err->details[i].name, name) == 0)
            return err->details[i].value;
    return NULL;
}

START_TEST(test_wrong_lengths)
{
    static const struct {
        ms_merge_architecture arch;
        size_t count;
        const char *accepted;   /* NULL: valid */
    } cases[] = {
        {MS_MERGE_ARCH_SD1, 0, "25"},        {MS_MERGE_ARCH_SD1, 24, "25"},
        {MS_MERGE_ARCH_SD1, 26, "25"},       {MS_MERGE_ARCH_SD1, 19, "25"},
        {MS_MERGE_ARCH_SD1, 1000, "25"},     {MS_MERGE_ARCH_SD1, 25, NULL},
        {MS_MERGE_ARCH_SDXL, 0, "25 or 19"}, {MS_MERGE_ARCH_SDXL, 18, "25 or 19"},
        {MS_MERGE_ARCH_SDXL, 24, "25 or 19"}, {MS_MERGE_ARCH_SDXL, 26, "25 or 19"},
        {MS_MERGE_ARCH_SDXL, 19, NULL},      {MS_MERGE_ARCH_SDXL, 25, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ms_block_weights weights = list_weights(cases[i].count < 25 ? cases[i].count : 25);
        weights.count = cases[i].count;
        ms_error err;
        ms_error_clear(&err);
        ms_status status = ms_block_weights_validate(&weights, "alpha", cases[i].arch, &err);
        if (cases[i].accepted == NULL) {
            ck_assert_int_eq(status, MS_OK);
            continue;
        }
        ck_assert_int_eq(status, MS_ERR_INVALID_PARAMETER);
        ck_assert_int_eq(err.code, MS_ERR_INVALID_PARAMETER);
        ck_assert_str_eq(detail(&err, "field"), "alpha");
        char length[32];
        snprintf(length, sizeof length, "%zu", cases[i].count);
        ck_assert_str_eq(detail(&err, "length"), length);
        ck_assert_str_eq(detail(&err, "accepted"), cases[i].accepted);
        ck_assert_ptr_nonnull(strstr(err.message, "alpha"));
        ck_assert_ptr_nonnull(strstr(err.message, length));
        ck_assert_ptr_nonnull(strstr(err.message, cases[i].accepted));
    }
}
END_TEST

START_TEST(test_block_names)
{
    int index = -1;
    ck_assert(ms_block_name_index("BASE", &index) && index == 0);
    ck_assert(ms_block_name_index("IN00", &index) && index == 1);
    ck_assert(ms_block_name_index("in11", &index) && index == 12);
    ck_assert(ms_block_name_index("M00", &index) && index == 13);
    ck_assert(ms_block_name_index("Out05", &index) && index == 19);
    ck_assert(ms_block_name_index("OUT11", &index) && index == 25);
    ck_assert(ms_block_name_index("vae", &index) && index == 26);
    static const char *const unknown[] = {"IN12", "IN1", "M01", "OUT12", "", "BASE ", "IN-1",
                                          "MID"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        ck_assert_msg(!ms_block_name_index(unknown[i], &index), "%s accepted", unknown[i]);
    ck_assert(!ms_block_name_index(NULL, &index));
    for (int i = 0; i < MS_BLOCK_NAMED_COUNT; i++) {
        ck_assert(ms_block_name_index(ms_block_name(i), &index));
        ck_assert_int_eq(index, i);
    }
    ck_assert_ptr_null(ms_block_name(-1));
    ck_assert_ptr_null(ms_block_name(MS_BLOCK_NAMED_COUNT));
    ck_assert_str_eq(ms_merge_architecture_name(MS_MERGE_ARCH_SD1), "sd1");
    ck_assert_str_eq(ms_merge_architecture_name(MS_MERGE_ARCH_SDXL), "sdxl");
}
END_TEST

START_TEST(test_named_blocks_the_architecture_lacks)
{
    static const char *const missing[] = {"IN09", "IN10", "IN11", "OUT09", "OUT10", "OUT11"};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        ms_block_weights weights;
        memset(&weights, 0, sizeof weights);
        weights.form = MS_BLOCKS_NAMED;
        int index;
        ck_assert(ms_block_name_index(missing[i], &index));
        weights.present[index] = true;
        weights.present[0] = true;
        ms_error err;
        ms_error_clear(&err);
        ck_assert_int_eq(ms_block_weights_validate(&weights, "beta", MS_MERGE_ARCH_SDXL, &err),
                         MS_ERR_INVALID_PARAMETER);
        ck_assert_str_eq(detail(&err, "field"), "beta");
        ck_assert_str_eq(detail(&err, "block"), missing[i]);
        ck_assert_ptr_nonnull(strstr(err.message, missing[i]));
        ck_assert_int_eq(ms_block_weights_validate(&weights, "beta", MS_MERGE_ARCH_SD1, &err),
                         MS_OK);
    }
}
END_TEST

START_TEST(test_non_finite_values)
{
    const double bad[] = {NAN, INFINITY, -INFINITY};
    for (size_t b = 0; b < 3; b++) {
        ms_block_weights list = list_weights(25);
        list.values[17] = bad[b];
        ms_error err;
        ms_error_clear(&err);
        ck_assert_int_eq(ms_block_weights_validate(&list, "alpha", MS_MERGE_ARCH_SD1, &err),
                         MS_ERR_INVALID_PARAMETER);
        ck_assert_str_eq(detail(&err, "field"), "alpha");
        ck_assert_str_eq(detail(&err, "block"), "17");

        ms_block_weights names;
        memset(&names, 0, sizeof names);
        names.form = MS_BLOCKS_NAMED;
        names.present[26] = true;
        names.values[26] = bad[b];
        names.values[3] = bad[b];    /* not present: not looked at */
        ck_assert_int_eq(ms_block_weights_validate(&names, "beta", MS_MERGE_ARCH_SDXL, &err),
                         MS_ERR_INVALID_PARAMETER);
        ck_assert_str_eq(detail(&err, "block"), "VAE");
        names.present[26] = false;
        ck_assert_int_eq(ms_block_weights_validate(&names, "beta", MS_MERGE_ARCH_SDXL, &err),
                         MS_OK);
    }
    /* NONE is valid whatever its fields hold; an unknown form is not */
    ms_block_weights none;
    memset(&none, 0, sizeof none);
    none.values[0] = NAN;
    none.count = 3;
    ms_error err;
    ck_assert_int_eq(ms_block_weights_validate(&none, "alpha", MS_MERGE_ARCH_SD1, &err), MS_OK);
    none.form = (ms_block_form)42;
    ck_assert_int_eq(ms_block_weights_validate(&none, "alpha", MS_MERGE_ARCH_SD1, &err),
                     MS_ERR_INVALID_PARAMETER);
    ck_assert_str_eq(detail(&err, "field"), "alpha");
}
END_TEST

/* ---- the generator ---- */

typedef struct part_totals {
    uint64_t unet, vae, clip_l, bigg, other;
    size_t position_ids;
} part_totals;

static void add_part(void *user_data, const gen_checkpoint_tensor *tensor)
{
    part_totals *totals = user_data;
    const char *name = tensor->name;
    if (strncmp(name, "model.diffusion_model.", 22) == 0)
        totals->unet += tensor->element_count;
    else if (strncmp(name, "first_stage_model.", 18) == 0)
        totals->vae += tensor->element_count;
    else if (strncmp(name, "conditioner.embedders.1.model.", 30) == 0)
        totals->bigg += tensor->element_count;
    else if (strstr(name, "position_ids") != NULL)
        totals->position_ids += tensor->element_count;
    else if (strncmp(name, "cond_stage_model.", 17) == 0 ||
             strncmp(name, "conditioner.embedders.0.", 24) == 0)
        totals->clip_l += tensor->element_count;
    else
        totals->other += tensor->element_count;
}

/* The published parameter counts of the real models (diffusers / open_clip
 * / transformers), part by part, and the tensor counts of the real files. */
START_TEST(test_full_size_counts)
{
    gen_checkpoint_options options;
    gen_checkpoint_options_init(&options);
    options.full_size = true;
    part_totals parts = {0};
    gen_checkpoint_enumerate(&options, add_part, &parts);
    ck_assert_uint_eq(parts.unet, 859520964u);
    ck_assert_uint_eq(parts.vae, 83653863u);
    ck_assert_uint_eq(parts.clip_l, 123060480u);
    ck_assert_uint_eq(parts.position_ids, 77);
    ck_assert_uint_eq(parts.bigg + parts.other, 0);
    gen_checkpoint_totals totals;
    gen_checkpoint_count(&options, &totals);
    ck_assert_uint_eq(totals.tensor_count, 1131);
    ck_assert_uint_eq(totals.parameter_count, 1066235384u);
    ck_assert_uint_eq(totals.file_bytes, 0);

    options.arch = GEN_CHECKPOINT_SDXL;
    memset(&parts, 0, sizeof parts);
    gen_checkpoint_enumerate(&options, add_part, &parts);
    ck_assert_uint_eq(parts.unet, 2567463684u);
    ck_assert_uint_eq(parts.vae, 83653863u);
    ck_assert_uint_eq(parts.clip_l, 123060480u);
    ck_assert_uint_eq(parts.bigg, 694659841u);   /* text tower + projection + logit_scale */
    ck_assert_uint_eq(parts.other, 0);
    gen_checkpoint_count(&options, &totals);
    ck_assert_uint_eq(totals.tensor_count, 2515);
    ck_assert_uint_eq(totals.parameter_count, 3468837945u);

    /* the LDM buffers: 12 schedules of 1000 steps and two scalars */
    options.arch = GEN_CHECKPOINT_SD15;
    options.extra_keys = true;
    gen_checkpoint_count(&options, &totals);
    ck_assert_uint_eq(totals.tensor_count, 1131 + 14);
    ck_assert_uint_eq(totals.parameter_count, 1066235384u + 12000 + 2);
}
END_TEST

/* Shapes that identify the real layout. */
START_TEST(test_full_size_shapes)
{
    static const struct {
        gen_checkpoint_arch arch;
        const char *name;
        int ndim;
        int64_t shape[4];
    } cases[] = {
        {GEN_CHECKPOINT_SD15, "model.diffusion_model.input_blocks.0.0.weight", 4, {320, 4, 3, 3}},
        {GEN_CHECKPOINT_SD15, "model.diffusion_model.input_blocks.1.1.proj_in.weight", 4,
         {320, 320, 1, 1}},
        {GEN_CHECKPOINT_SD15,
         "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight", 2,
         {640, 768, 0, 0}},
        {GEN_CHECKPOINT_SD15, "model.diffusion_model.input_blocks.9.0.op.weight", 4,
         {1280, 1280, 3, 3}},
        {GEN_CHECKPOINT_SD15, "model.diffusion_model.output_blocks.2.1.conv.weight", 4,
         {1280, 1280, 3, 3}},
        {GEN_CHECKPOINT_SD15, "model.diffusion_model.output_blocks.8.2.conv.weight", 4,
         {640, 640, 3, 3}},
        {GEN_CHECKPOINT_SD15, "model.diffusion_model.output_blocks.0.0.skip_connection.weight",
         4, {1280, 2560, 1, 1}},
        {GEN_CHECKPOINT_SD15, "model.diffusion_model.output_blocks.9.0.in_layers.0.weight", 1,
         {960, 0, 0, 0}},
        {GEN_CHECKPOINT_SD15,
         "model.diffusion_model.output_blocks.11.1.transformer_blocks.0.ff.net.0.proj.weight", 2,
         {2560, 320, 0, 0}},
        {GEN_CHECKPOINT_SD15, "model.diffusion_model.out.2.weight", 4, {4, 320, 3, 3}},
        {GEN_CHECKPOINT_SD15, "first_stage_model.encoder.conv_out.weight", 4, {8, 512, 3, 3}},
        {GEN_CHECKPOINT_SD15, "first_stage_model.decoder.mid.attn_1.q.weight", 4,
         {512, 512, 1, 1}},
        {GEN_CHECKPOINT_SD15, "first_stage_model.quant_conv.weight", 4, {8, 8, 1, 1}},
        {GEN_CHECKPOINT_SD15, "first_stage_model.post_quant_conv.weight", 4, {4, 4, 1, 1}},
        {GEN_CHECKPOINT_SD15,
         "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight", 2,
         {49408, 768, 0, 0}},
        {GEN_CHECKPOINT_SD15, "cond_stage_model.transformer.text_model.embeddings.position_ids",
         2, {1, 77, 0, 0}},
        {GEN_CHECKPOINT_SD15,
         "cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc1.weight", 2,
         {3072, 768, 0, 0}},
        {GEN_CHECKPOINT_SDXL, "model.diffusion_model.label_emb.0.0.weight", 2, {1280, 2816, 0, 0}},
        {GEN_CHECKPOINT_SDXL, "model.diffusion_model.input_blocks.4.1.proj_in.weight", 2,
         {640, 640, 0, 0}},
        {GEN_CHECKPOINT_SDXL,
         "model.diffusion_model.input_blocks.7.1.transformer_blocks.9.attn2.to_v.weight", 2,
         {1280, 2048, 0, 0}},
        {GEN_CHECKPOINT_SDXL,
         "model.diffusion_model.middle_block.1.transformer_blocks.9.norm3.bias", 1,
         {1280, 0, 0, 0}},
        {GEN_CHECKPOINT_SDXL, "model.diffusion_model.output_blocks.2.2.conv.weight", 4,
         {1280, 1280, 3, 3}},
        {GEN_CHECKPOINT_SDXL, "model.diffusion_model.output_blocks.8.0.skip_connection.weight", 4,
         {320, 640, 1, 1}},
        {GEN_CHECKPOINT_SDXL, "conditioner.embedders.1.model.token_embedding.weight", 2,
         {49408, 1280, 0, 0}},
        {GEN_CHECKPOINT_SDXL, "conditioner.embedders.1.model.positional_embedding", 2,
         {77, 1280, 0, 0}},
        {GEN_CHECKPOINT_SDXL,
         "conditioner.embedders.1.model.transformer.resblocks.31.attn.in_proj_weight", 2,
         {3840, 1280, 0, 0}},
        {GEN_CHECKPOINT_SDXL, "conditioner.embedders.1.model.transformer.resblocks.0.mlp.c_fc.weight",
         2, {5120, 1280, 0, 0}},
        {GEN_CHECKPOINT_SDXL, "conditioner.embedders.1.model.logit_scale", 0, {0, 0, 0, 0}},
        {GEN_CHECKPOINT_SDXL,
         "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight", 1,
         {768, 0, 0, 0}},
    };
    key_list *lists[2] = {keys_for(GEN_CHECKPOINT_SD15, true), keys_for(GEN_CHECKPOINT_SDXL, true)};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const key_list *keys = lists[cases[i].arch];
        ssize_t at = find_key(keys, cases[i].name);
        ck_assert_msg(at >= 0, "%s missing", cases[i].name);
        ck_assert_int_eq(keys->ndim[at], cases[i].ndim);
        for (int d = 0; d < cases[i].ndim; d++)
            ck_assert_msg(keys->shape[at][d] == cases[i].shape[d], "%s dim %d: %lld",
                          cases[i].name, d, (long long)keys->shape[at][d]);
    }
    /* no 4-input-channel inpainting confusion, no SDXL keys in SD1.5 */
    ck_assert_int_lt(find_key(lists[0], "model.diffusion_model.label_emb.0.0.weight"), 0);
    ck_assert_int_lt(find_key(lists[1], "model.diffusion_model.input_blocks.9.0.op.weight"), 0);
    free(lists[0]);
    free(lists[1]);
}
END_TEST

static void write_small(const gen_checkpoint_options *options, const char *name, char *path,
                        size_t size, ms_safetensors *file)
{
    snprintf(path, size, "%s/%s.safetensors", temp_dir, name);
    ms_error err;
    ms_error_clear(&err);
    gen_checkpoint_totals totals;
    ck_assert_msg(gen_checkpoint_write(options, path, &totals, &err) == MS_OK, "%s",
                  err.message);
    ck_assert_int_eq(ms_safetensors_open(path, file, &err), MS_OK);
    ck_assert_uint_eq(file->tensor_count, totals.tensor_count);
    ck_assert_uint_eq(file->file_size, totals.file_bytes);
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Small files: same names as full ones (both architectures, all dtypes),
 * open with the reader, stay under 2 MB in fp16; the architecture is
 * detected from them. */
START_TEST(test_small_files_match_full_names)
{
    static const gen_checkpoint_dtype dtypes[] = {GEN_CHECKPOINT_F16, GEN_CHECKPOINT_BF16,
                                                  GEN_CHECKPOINT_F32, GEN_CHECKPOINT_MIXED};
    gen_checkpoint_arch arch = _i % 2 == 0 ? GEN_CHECKPOINT_SD15 : GEN_CHECKPOINT_SDXL;
    gen_checkpoint_dtype dtype = dtypes[_i / 2];
    key_list *full = keys_for(arch, true);
    gen_checkpoint_options options;
    gen_checkpoint_options_init(&options);
    options.arch = arch;
    options.dtype = dtype;
    options.extra_keys = true;
    options.seed = 11;
    char path[4200];
    ms_safetensors file;
    write_small(&options, "small", path, sizeof path, &file);
    ck_assert_uint_eq(file.tensor_count, full->count);
    const char **names = malloc(full->count * sizeof *names);
    ck_assert_ptr_nonnull(names);
    for (size_t i = 0; i < full->count; i++)
        names[i] = full->names[i];
    qsort(names, full->count, sizeof *names, compare_strings);
    bool seen[MS_DTYPE_COUNT] = {false};
    for (size_t i = 0; i < full->count; i++) {
        ck_assert_str_eq(file.tensors[i].name, names[i]);   /* reader sorts by name */
        seen[file.tensors[i].dtype] = true;
    }
    ck_assert(seen[MS_DTYPE_I64] && seen[MS_DTYPE_I32] && seen[MS_DTYPE_F32]);
    ck_assert(seen[MS_DTYPE_F16] == (dtype == GEN_CHECKPOINT_F16 || dtype == GEN_CHECKPOINT_MIXED));
    ck_assert(seen[MS_DTYPE_BF16] ==
              (dtype == GEN_CHECKPOINT_BF16 || dtype == GEN_CHECKPOINT_MIXED));
    if (dtype != GEN_CHECKPOINT_F32)
        ck_assert_uint_lt(file.file_size, 2000000);
    ck_assert_int_eq(ms_merge_detect_architecture(&file),
                     arch == GEN_CHECKPOINT_SDXL ? MS_MERGE_ARCH_SDXL : MS_MERGE_ARCH_SD1);
    ms_safetensors_close(&file);
    free(names);
    free(full);
}
END_TEST

static void read_tensor(const ms_safetensors *file, const char *name, double *values,
                        size_t capacity)
{
    const ms_tensor_info *info = ms_safetensors_find(file, name);
    ck_assert_msg(info != NULL, "%s missing", name);
    ck_assert_uint_le(info->element_count, capacity);
    ms_error err;
    ck_assert_int_eq(ms_safetensors_read_doubles(file, info, values, &err), MS_OK);
}

/* Values: what gen_checkpoint_values says, rounded to the file's dtype;
 * roughly N(0, 0.05); another seed gives others; position_ids and the LDM
 * schedule are the real ones. */
START_TEST(test_values)
{
    gen_checkpoint_options options;
    gen_checkpoint_options_init(&options);
    options.dtype = GEN_CHECKPOINT_MIXED;
    options.extra_keys = true;
    options.seed = 5;
    char path[4200];
    ms_safetensors file, other;
    write_small(&options, "seed5", path, sizeof path, &file);
    options.seed = 6;
    write_small(&options, "seed6", path, sizeof path, &other);

    enum { CAPACITY = 1 << 16 };
    double *values = malloc(CAPACITY * sizeof *values);
    double *expected = malloc(CAPACITY * sizeof *expected);
    double *rounded = malloc(CAPACITY * sizeof *rounded);
    unsigned char *bytes = malloc(CAPACITY * 4);
    ck_assert(values != NULL && expected != NULL && rounded != NULL && bytes != NULL);
    size_t differing = 0;
    for (size_t t = 0; t < file.tensor_count; t++) {
        const ms_tensor_info *info = &file.tensors[t];
        if (!ms_dtype_is_float(info->dtype) || info->element_count > CAPACITY ||
            ms_safetensors_find(&other, info->name) == NULL)
            continue;
        bool random = strncmp(info->name, "model", 5) == 0 || strchr(info->name, '.') != NULL;
        if (!random || strncmp(info->name, "model_ema.", 10) == 0)
            continue;
        size_t n = (size_t)info->element_count;
        read_tensor(&file, info->name, values, CAPACITY);
        gen_checkpoint_values(5, info->name, expected, n);
        ms_dtype_from_double(info->dtype, expected, bytes, n);
        ms_dtype_to_double(info->dtype, bytes, rounded, n);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(values[i] == rounded[i], "%s[%zu]", info->name, i);
        read_tensor(&other, info->name, rounded, CAPACITY);
        if (memcmp(values, rounded, n * sizeof *values) != 0)
            differing++;
    }
    ck_assert_uint_gt(differing, 1000);

    /* a long tensor: mean about 0, deviation about 0.05 */
    const char *big = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight";
    const ms_tensor_info *info = ms_safetensors_find(&file, big);
    ck_assert_ptr_nonnull(info);
    read_tensor(&file, big, values, CAPACITY);
    double sum = 0, squares = 0;
    for (uint64_t i = 0; i < info->element_count; i++) {
        sum += values[i];
        squares += values[i] * values[i];
    }
    double mean = sum / (double)info->element_count;
    double deviation = sqrt(squares / (double)info->element_count - mean * mean);
    ck_assert_double_lt(fabs(mean), 0.002);
    ck_assert_double_lt(fabs(deviation - 0.05), 0.002);

    /* position_ids: int64 [[0..76]] */
    info = ms_safetensors_find(&file, "cond_stage_model.transformer.text_model.embeddings.position_ids");
    ck_assert_ptr_nonnull(info);
    ck_assert_int_eq(info->dtype, MS_DTYPE_I64);
    const unsigned char *ids = ms_safetensors_tensor_bytes(&file, info);
    for (int64_t i = 0; i < 77; i++) {
        int64_t id;
        memcpy(&id, ids + 8 * i, sizeof id);
        ck_assert_int_eq(id, i);
    }
    /* the DDPM schedule of SD1.x: linear in sqrt(beta) from 0.00085 to 0.012 */
    read_tensor(&file, "betas", values, CAPACITY);
    ck_assert_double_eq_tol(values[0], 0.00085, 1e-9);
    ck_assert_double_eq_tol(values[999], 0.012, 1e-9);
    read_tensor(&file, "alphas_cumprod", values, CAPACITY);
    ck_assert_double_eq_tol(values[0], 1 - 0.00085, 1e-7);
    ck_assert_double_lt(values[999], 0.01);
    ck_assert_double_gt(values[999], 0.0);
    read_tensor(&file, "model_ema.decay", values, CAPACITY);
    ck_assert_double_eq_tol(values[0], 0.9999, 1e-6);
    info = ms_safetensors_find(&file, "model_ema.num_updates");
    ck_assert_ptr_nonnull(info);
    ck_assert_int_eq(info->dtype, MS_DTYPE_I32);
    ck_assert_int_eq(info->ndim, 0);

    free(values);
    free(expected);
    free(rounded);
    free(bytes);
    ms_safetensors_close(&file);
    ms_safetensors_close(&other);
}
END_TEST

/* Variants: inpainting, old text-encoder names, dropped keys (the other
 * tensors unchanged). */
START_TEST(test_variants)
{
    gen_checkpoint_options options;
    gen_checkpoint_options_init(&options);
    options.inpainting = true;
    options.old_te_names = true;
    const char *const dropped[] = {"model.diffusion_model.out.2.bias",
                                   "cond_stage_model.transformer.final_layer_norm.weight",
                                   "not.a.key"};
    options.drop_keys = dropped;
    options.drop_key_count = 3;
    char path[4200];
    ms_safetensors variant, plain;
    write_small(&options, "variant", path, sizeof path, &variant);
    gen_checkpoint_options_init(&options);
    write_small(&options, "plain", path, sizeof path, &plain);

    ck_assert_uint_eq(variant.tensor_count, plain.tensor_count - 2);
    const ms_tensor_info *input = ms_safetensors_find(&variant,
                                                      "model.diffusion_model.input_blocks.0.0.weight");
    ck_assert_ptr_nonnull(input);
    ck_assert_int_eq(input->shape[1], 9);
    input = ms_safetensors_find(&plain, "model.diffusion_model.input_blocks.0.0.weight");
    ck_assert_int_eq(input->shape[1], 4);
    ck_assert_ptr_null(ms_safetensors_find(&variant, "model.diffusion_model.out.2.bias"));
    ck_assert_ptr_nonnull(ms_safetensors_find(&variant, "model.diffusion_model.out.2.weight"));
    ck_assert_ptr_null(ms_safetensors_find(&variant,
                                           "cond_stage_model.transformer.final_layer_norm.weight"));
    size_t old_names = 0;
    for (size_t i = 0; i < variant.tensor_count; i++) {
        const char *name = variant.tensors[i].name;
        if (strncmp(name, "cond_stage_model.", 17) != 0)
            continue;
        ck_assert_ptr_null(strstr(name, "text_model."));
        char renamed[300];
        snprintf(renamed, sizeof renamed, "cond_stage_model.transformer.text_model.%s",
                 name + strlen("cond_stage_model.transformer."));
        const ms_tensor_info *same = ms_safetensors_find(&plain, renamed);
        ck_assert_msg(same != NULL, "%s has no new-name twin", name);
        ck_assert_uint_eq(same->element_count, variant.tensors[i].element_count);
        old_names++;
    }
    ck_assert_uint_eq(old_names, 196);
    /* the other tensors did not move: same bytes */
    const char *kept = "model.diffusion_model.middle_block.1.proj_out.weight";
    const ms_tensor_info *a = ms_safetensors_find(&variant, kept);
    const ms_tensor_info *b = ms_safetensors_find(&plain, kept);
    ck_assert(a != NULL && b != NULL && a->byte_count == b->byte_count);
    ck_assert_int_eq(memcmp(ms_safetensors_tensor_bytes(&variant, a),
                            ms_safetensors_tensor_bytes(&plain, b), a->byte_count),
                     0);
    ms_safetensors_close(&variant);
    ms_safetensors_close(&plain);
}
END_TEST

/* A file the writer cannot create: the error comes back, nothing written. */
START_TEST(test_write_failure)
{
    gen_checkpoint_options options;
    gen_checkpoint_options_init(&options);
    char path[4200];
    snprintf(path, sizeof path, "%s/missing-folder/x.safetensors", temp_dir);
    ms_error err;
    ms_error_clear(&err);
    gen_checkpoint_totals totals;
    ck_assert_int_ne(gen_checkpoint_write(&options, path, &totals, &err), MS_OK);
    ck_assert_int_ne(err.code, MS_OK);
}
END_TEST

static Suite *blocks_suite(void)
{
    Suite *suite = suite_create("merge_blocks");
    TCase *tcase = tcase_create("blocks");
    tcase_add_unchecked_fixture(tcase, make_temp_dir, remove_temp_dir);
    tcase_set_timeout(tcase, 60);
    tcase_add_test(tcase, test_list25_sd15);
    tcase_add_test(tcase, test_list25_sdxl);
    tcase_add_test(tcase, test_list19_sdxl);
    tcase_add_loop_test(tcase, test_named_sd15, 0, 2);
    tcase_add_loop_test(tcase, test_named_sdxl, 0, 2);
    tcase_add_test(tcase, test_non_unet_keys);
    tcase_add_test(tcase, test_substring_rules);
    tcase_add_test(tcase, test_wrong_lengths);
    tcase_add_test(tcase, test_block_names);
    tcase_add_test(tcase, test_named_blocks_the_architecture_lacks);
    tcase_add_test(tcase, test_non_finite_values);
    suite_add_tcase(suite, tcase);

    TCase *generator = tcase_create("generator");
    tcase_add_unchecked_fixture(generator, make_temp_dir, remove_temp_dir);
    tcase_set_timeout(generator, 120);
    tcase_add_test(generator, test_full_size_counts);
    tcase_add_test(generator, test_full_size_shapes);
    tcase_add_loop_test(generator, test_small_files_match_full_names, 0, 8);
    tcase_add_test(generator, test_values);
    tcase_add_test(generator, test_variants);
    tcase_add_test(generator, test_write_failure);
    suite_add_tcase(suite, generator);
    return suite;
}

int main(void)
{
    return ms_test_run_suite(blocks_suite());
}
