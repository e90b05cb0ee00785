/* Block weights (blocks.h, algorithms.md section 3).
 *
 * The list rules mirror sd-meh's merge_key (sd_meh/merge.py, main and sdxl
 * branches) literally, surprises included:
 * - every test is a substring search, not a prefix test: a key is a UNet key
 *   when "model.diffusion_model." occurs anywhere in it, and "time_embed" and
 *   ".out." match anywhere in the key;
 * - ".input_blocks.N.", ".middle_block.N." and ".output_blocks.N." need the
 *   digits and the closing dot (a regex search, so a later occurrence counts
 *   when an earlier one lacks them);
 * - SDXL's label_emb matches no rule, so with a list it takes the base
 *   values, not position 0 as time_embed does;
 * - a block number past the list (input_blocks.25 with 25 values) makes
 *   sd-meh raise "illegal block index"; here such a key takes the base
 *   values, since no real checkpoint has one and this function cannot fail.
 * Named blocks follow supermerger / sd-mecha: time_embed and label_emb are
 * BASE, ".out." the last OUT, VAE and text encoders by prefix. */
#include "blocks.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

enum {
    NAMED_BASE = 0,
    NAMED_IN_FIRST = 1,
    NAMED_MIDDLE = 13,
    NAMED_OUT_FIRST = 14,
    NAMED_VAE = 26,
    SD1_LEVEL_BLOCKS = 12,     /* IN00..IN11 and OUT00..OUT11 */
    SDXL_LEVEL_BLOCKS = 9,     /* IN00..IN08 and OUT00..OUT08 */
    SD1_LIST_LENGTH = 25,
    SDXL_LIST_LENGTH = 19,
};

#define UNET_MARKER "model.diffusion_model."
#define SDXL_MARKER "conditioner.embedders.1.model."

ms_merge_architecture ms_merge_detect_architecture(const ms_safetensors *model_a)
{
    for (size_t i = 0; i < model_a->tensor_count; i++)
        if (strncmp(model_a->tensors[i].name, SDXL_MARKER, strlen(SDXL_MARKER)) == 0)
            return MS_MERGE_ARCH_SDXL;
    return MS_MERGE_ARCH_SD1;
}

const char *ms_merge_architecture_name(ms_merge_architecture arch)
{
    return arch == MS_MERGE_ARCH_SDXL ? "sdxl" : "sd1";
}

static int level_blocks(ms_merge_architecture arch)
{
    return arch == MS_MERGE_ARCH_SDXL ? SDXL_LEVEL_BLOCKS : SD1_LEVEL_BLOCKS;
}

const char *ms_block_name(int index)
{
    static const char *const names[MS_BLOCK_NAMED_COUNT] = {
        "BASE",  "IN00",  "IN01",  "IN02",  "IN03",  "IN04",  "IN05",
        "IN06",  "IN07",  "IN08",  "IN09",  "IN10",  "IN11",  "M00",
        "OUT00", "OUT01", "OUT02", "OUT03", "OUT04", "OUT05", "OUT06",
        "OUT07", "OUT08", "OUT09", "OUT10", "OUT11", "VAE",
    };
    if (index < 0 || index >= MS_BLOCK_NAMED_COUNT)
        return NULL;
    return names[index];
}

/* Any case is accepted ("in03", "In03"): names come from users' configs. */
bool ms_block_name_index(const char *name, int *index)
{
    if (name == NULL)
        return false;
    for (int i = 0; i < MS_BLOCK_NAMED_COUNT; i++) {
        if (strcasecmp(name, ms_block_name(i)) == 0) {
            *index = i;
            return true;
        }
    }
    return false;
}

static bool named_block_exists(int index, ms_merge_architecture arch)
{
    if (index < 0 || index >= MS_BLOCK_NAMED_COUNT)
        return false;
    int per_level = level_blocks(arch);
    if (index >= NAMED_IN_FIRST && index < NAMED_MIDDLE)
        return index - NAMED_IN_FIRST < per_level;
    if (index >= NAMED_OUT_FIRST && index < NAMED_VAE)
        return index - NAMED_OUT_FIRST < per_level;
    return true;
}

static ms_status invalid_length(const ms_block_weights *weights, const char *field,
                                ms_merge_architecture arch, ms_error *err)
{
    const char *accepted = arch == MS_MERGE_ARCH_SDXL ? "25 or 19" : "25";
    ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL,
                 "%s: a block weight list has %zu values; %s %s accepts %s", field,
                 weights->count, ms_merge_architecture_name(arch),
                 arch == MS_MERGE_ARCH_SDXL ? "(SDXL)" : "(SD1.x/2.x)", accepted);
    ms_error_detail_add(err, "field", "%s", field);
    ms_error_detail_add(err, "length", "%zu", weights->count);
    ms_error_detail_add(err, "accepted", "%s", accepted);
    return MS_ERR_INVALID_PARAMETER;
}

static ms_status invalid_value(const char *field, const char *where, double value,
                               ms_error *err)
{
    ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL,
                 "%s: block weight %s is %g; values must be finite", field, where, value);
    ms_error_detail_add(err, "field", "%s", field);
    ms_error_detail_add(err, "block", "%s", where);
    return MS_ERR_INVALID_PARAMETER;
}

static ms_status validate_list(const ms_block_weights *weights, const char *field,
                               ms_merge_architecture arch, ms_error *err)
{
    bool accepted = weights->count == SD1_LIST_LENGTH ||
                    (arch == MS_MERGE_ARCH_SDXL && weights->count == SDXL_LIST_LENGTH);
    if (!accepted)
        return invalid_length(weights, field, arch, err);
    for (size_t i = 0; i < weights->count; i++) {
        if (!isfinite(weights->values[i])) {
            char where[32];
            snprintf(where, sizeof where, "%zu", i);
            return invalid_value(field, where, weights->values[i], err);
        }
    }
    return MS_OK;
}

static ms_status validate_named(const ms_block_weights *weights, const char *field,
                                ms_merge_architecture arch, ms_error *err)
{
    for (int i = 0; i < MS_BLOCK_NAMED_COUNT; i++) {
        if (!weights->present[i])
            continue;
        if (!named_block_exists(i, arch)) {
            ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL,
                         "%s: block %s does not exist in %s (it has IN00..IN%02d and "
                         "OUT00..OUT%02d)",
                         field, ms_block_name(i), ms_merge_architecture_name(arch),
                         level_blocks(arch) - 1, level_blocks(arch) - 1);
            ms_error_detail_add(err, "field", "%s", field);
            ms_error_detail_add(err, "block", "%s", ms_block_name(i));
            ms_error_detail_add(err, "architecture", "%s", ms_merge_architecture_name(arch));
            return MS_ERR_INVALID_PARAMETER;
        }
        if (!isfinite(weights->values[i]))
            return invalid_value(field, ms_block_name(i), weights->values[i], err);
    }
    return MS_OK;
}

ms_status ms_block_weights_validate(const ms_block_weights *weights, const char *field,
                                    ms_merge_architecture arch, ms_error *err)
{
    if (field == NULL)
        field = "weights";
    switch (weights->form) {
    case MS_BLOCKS_NONE:
        return MS_OK;
    case MS_BLOCKS_LIST:
        return validate_list(weights, field, arch, err);
    case MS_BLOCKS_NAMED:
        return validate_named(weights, field, arch, err);
    }
    ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL, "%s: unknown block weight form %d", field,
                 (int)weights->form);
    ms_error_detail_add(err, "field", "%s", field);
    return MS_ERR_INVALID_PARAMETER;
}

/* Where a UNet key falls, by sd-meh's rules, before any list or name. */
typedef enum unet_part {
    PART_NONE,
    PART_TIME_EMBED,
    PART_LABEL_EMBED,
    PART_OUT,
    PART_INPUT,
    PART_MIDDLE,
    PART_OUTPUT,
} unet_part;

/* Block numbers this large fall outside every list and every name. */
enum { BLOCK_NUMBER_CAP = 1000000 };

/* sd-meh's re.search(r"\.NAME\.(\d+)\.", key): the first occurrence of
 * marker followed by digits and a dot; *number is capped so huge digit
 * strings cannot overflow. */
static bool find_numbered(const char *key, const char *marker, long *number)
{
    size_t marker_length = strlen(marker);
    for (const char *at = strstr(key, marker); at != NULL; at = strstr(at + 1, marker)) {
        const char *digits = at + marker_length;
        const char *end = digits;
        long value = 0;
        while (isdigit((unsigned char)*end)) {
            if (value < BLOCK_NUMBER_CAP)
                value = value * 10 + (*end - '0');
            end++;
        }
        if (end > digits && *end == '.') {
            *number = value;
            return true;
        }
    }
    return false;
}

static unet_part classify_unet_key(const char *key, long *number)
{
    *number = 0;
    if (strstr(key, UNET_MARKER) == NULL)
        return PART_NONE;
    if (strstr(key, "time_embed") != NULL)
        return PART_TIME_EMBED;
    if (strstr(key, ".out.") != NULL)
        return PART_OUT;
    if (find_numbered(key, ".input_blocks.", number))
        return PART_INPUT;
    long unused;
    if (find_numbered(key, ".middle_block.", &unused))
        return PART_MIDDLE;
    if (find_numbered(key, ".output_blocks.", number))
        return PART_OUTPUT;
    /* Not a list rule (sd-meh gives label_emb the base values), but BASE
     * for named blocks. */
    if (strstr(key, "label_emb") != NULL)
        return PART_LABEL_EMBED;
    return PART_NONE;
}

/* List position of a key, -1 for the base values. */
static int list_position(size_t count, const char *key)
{
    long number;
    unet_part part = classify_unet_key(key, &number);
    long levels = count == SDXL_LIST_LENGTH ? SDXL_LEVEL_BLOCKS : SD1_LEVEL_BLOCKS;
    long position = -1;
    switch (part) {
    case PART_TIME_EMBED:
        position = 0;
        break;
    case PART_OUT:
        position = (long)count - 1;
        break;
    case PART_INPUT:
        position = number;
        break;
    case PART_MIDDLE:
        position = levels;
        break;
    case PART_OUTPUT:
        position = levels + 1 + number;
        break;
    case PART_LABEL_EMBED:
    case PART_NONE:
        break;
    }
    return position >= 0 && position < (long)count ? (int)position : -1;
}

static bool has_prefix(const char *key, const char *prefix)
{
    return strncmp(key, prefix, strlen(prefix)) == 0;
}

/* Named index of a key, -1 for the base values. */
static int named_index(ms_merge_architecture arch, const char *key)
{
    long number;
    unet_part part = classify_unet_key(key, &number);
    int per_level = level_blocks(arch);
    switch (part) {
    case PART_TIME_EMBED:
    case PART_LABEL_EMBED:
        return NAMED_BASE;
    case PART_OUT:
        return NAMED_OUT_FIRST + per_level - 1;
    case PART_INPUT:
        return number < per_level ? NAMED_IN_FIRST + (int)number : -1;
    case PART_MIDDLE:
        return NAMED_MIDDLE;
    case PART_OUTPUT:
        return number < per_level ? NAMED_OUT_FIRST + (int)number : -1;
    case PART_NONE:
        break;
    }
    if (strstr(key, UNET_MARKER) != NULL)
        return -1;     /* a UNet key no rule knows */
    if (has_prefix(key, "first_stage_model."))
        return NAMED_VAE;
    if (has_prefix(key, "cond_stage_model.") || has_prefix(key, "conditioner."))
        return NAMED_BASE;
    return -1;
}

double ms_block_weight_for_key(const ms_block_weights *weights, ms_merge_architecture arch,
                               const char *key, double base, int *block)
{
    int index = -1;
    double value = base;
    if (weights != NULL && key != NULL) {
        if (weights->form == MS_BLOCKS_LIST && weights->count <= MS_BLOCK_LIST_MAX) {
            index = list_position(weights->count, key);
            if (index >= 0)
                value = weights->values[index];
        } else if (weights->form == MS_BLOCKS_NAMED) {
            index = named_index(arch, key);
            if (index >= 0 && weights->present[index])
                value = weights->values[index];
            else
                index = -1;
        }
    }
    if (block != NULL)
        *block = index;
    return value;
}
