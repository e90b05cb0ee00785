/* Block-weight mapping (core/merge/blocks.c) on random key names: each
 * line of the input is a key of model A (the first line's architecture
 * test included).  For every form (none, 25 and 19 values, all and some
 * named blocks), a key takes either the base value (block -1) or the value
 * of the block it reports, a block that exists in that form. */
#include "fuzz.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "core/merge/blocks.h"

enum { KEYS_MAX = 512 };

static const double base_value = -1.0;

/* Distinct values, so a value tells which block it came from. */
static void fill_forms(ms_block_weights forms[5])
{
    memset(forms, 0, 5 * sizeof forms[0]);
    forms[0].form = MS_BLOCKS_NONE;
    forms[1].form = MS_BLOCKS_LIST;
    forms[1].count = 25;
    forms[2].form = MS_BLOCKS_LIST;
    forms[2].count = 19;
    forms[3].form = MS_BLOCKS_NAMED;
    forms[4].form = MS_BLOCKS_NAMED;
    for (int i = 0; i < MS_BLOCK_NAMED_COUNT; i++) {
        for (int form = 1; form < 5; form++)
            forms[form].values[i] = 100 * form + i;
        forms[3].present[i] = true;
        forms[4].present[i] = i % 3 != 1;
    }
}

/* The mapping is defined after validate only: which forms fit arch. */
static void valid_forms(const ms_block_weights forms[5], ms_merge_architecture arch,
                        bool valid[5])
{
    for (int form = 0; form < 5; form++) {
        ms_error err;
        valid[form] = ms_block_weights_validate(&forms[form], "alpha", arch, &err) == MS_OK;
    }
}

static void check_key(const ms_block_weights forms[5], const bool valid[5],
                      ms_merge_architecture arch, const char *key)
{
    for (int form = 0; form < 5; form++) {
        const ms_block_weights *weights = &forms[form];
        if (!valid[form])
            continue;
        int block = -2;
        double value = ms_block_weight_for_key(weights, arch, key, base_value, &block);
        if (block == -1) {
            MS_FUZZ_CHECK(value == base_value);
            continue;
        }
        MS_FUZZ_CHECK(weights->form != MS_BLOCKS_NONE && block >= 0);
        if (weights->form == MS_BLOCKS_LIST)
            MS_FUZZ_CHECK((size_t)block < weights->count);
        else
            MS_FUZZ_CHECK(block < MS_BLOCK_NAMED_COUNT && weights->present[block]);
        MS_FUZZ_CHECK(value == weights->values[block]);
    }
    int index = -1;
    if (ms_block_name_index(key, &index))
        MS_FUZZ_CHECK(strcasecmp(key, ms_block_name(index)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    ms_tensor_info *tensors = calloc(lines < KEYS_MAX ? lines : KEYS_MAX, sizeof *tensors);
    MS_FUZZ_CHECK(tensors != NULL);
    ms_safetensors model = {.fd = -1, .tensors = tensors};
    size_t cursor = 0;
    char *key;
    while (model.tensor_count < KEYS_MAX && (key = ms_fuzz_next_line(data, size, &cursor)) != NULL)
        tensors[model.tensor_count++].name = key;
    ms_block_weights forms[5];
    fill_forms(forms);
    ms_merge_architecture detected = ms_merge_detect_architecture(&model);
    MS_FUZZ_CHECK(detected == MS_MERGE_ARCH_SD1 || detected == MS_MERGE_ARCH_SDXL);
    bool sd1_valid[5], sdxl_valid[5];
    valid_forms(forms, MS_MERGE_ARCH_SD1, sd1_valid);
    valid_forms(forms, MS_MERGE_ARCH_SDXL, sdxl_valid);
    for (size_t i = 0; i < model.tensor_count; i++) {
        check_key(forms, sd1_valid, MS_MERGE_ARCH_SD1, tensors[i].name);
        check_key(forms, sdxl_valid, MS_MERGE_ARCH_SDXL, tensors[i].name);
        free(tensors[i].name);
    }
    free(tensors);
    return 0;
}
