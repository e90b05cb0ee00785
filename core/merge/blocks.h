/* Block weights (algorithms.md section 3): which alpha and beta a key takes.
 *
 * Three forms a client may send: a list of 25 values (sd-meh's order for
 * SD1.x/2.x, also accepted for SDXL through the same rule), a list of 19
 * (SDXL, sd-meh's sdxl branch), or values keyed by the block names users know
 * from supermerger (BASE, IN00.., M00, OUT00.., VAE).  The architecture comes
 * from the keys of model A. */
#ifndef MS_MERGE_BLOCKS_H
#define MS_MERGE_BLOCKS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "core/format/safetensors.h"

typedef enum ms_merge_architecture {
    MS_MERGE_ARCH_SD1,     /* SD1.x and SD2.x: the 25-block UNet */
    MS_MERGE_ARCH_SDXL,    /* conditioner.embedders.1.model. keys */
} ms_merge_architecture;

typedef enum ms_block_form {
    MS_BLOCKS_NONE,        /* absent or empty: the base value everywhere */
    MS_BLOCKS_LIST,        /* 25 or 19 values */
    MS_BLOCKS_NAMED,       /* some of BASE, IN00.., M00, OUT00.., VAE */
} ms_block_form;

/* Named blocks, one index space for both architectures:
 * BASE 0, IN00..IN11 1..12, M00 13, OUT00..OUT11 14..25, VAE 26.
 * SDXL has IN00..IN08 and OUT00..OUT08 only. */
enum {
    MS_BLOCK_NAMED_COUNT = 27,
    MS_BLOCK_LIST_MAX = 25,
};

typedef struct ms_block_weights {
    ms_block_form form;
    size_t count;                           /* LIST: 25 or 19 */
    double values[MS_BLOCK_NAMED_COUNT];    /* LIST: by position; NAMED: by named index */
    bool present[MS_BLOCK_NAMED_COUNT];     /* NAMED: which names were given */
} ms_block_weights;

/* SDXL when A has any key starting with "conditioner.embedders.1.model.". */
ms_merge_architecture ms_merge_detect_architecture(const ms_safetensors *model_a);
const char *ms_merge_architecture_name(ms_merge_architecture arch); /* "sd1", "sdxl" */

/* "BASE", "IN00", ..., "VAE" -> named index; false for anything else
 * (any case is accepted: "in03", "Out11"). */
bool ms_block_name_index(const char *name, int *index);
const char *ms_block_name(int index);   /* NULL outside [0, MS_BLOCK_NAMED_COUNT) */

/* Checks weights against the architecture: a list must have 25 values (or
 * 19 for SDXL); a named block must exist in that architecture (SDXL has no
 * IN09..IN11, OUT09..OUT11).  invalid_parameter naming field ("alpha" or
 * "beta"), with details field, length (given) and accepted ("25" or
 * "25 or 19"), or the block name at fault.  Values must be finite. */
ms_status ms_block_weights_validate(const ms_block_weights *weights, const char *field,
                                    ms_merge_architecture arch, ms_error *err);

/* The value key takes: base when weights are NONE or key matches no block
 * (or the named block was left out); else the block's value by the rules of
 * algorithms.md for the form and architecture.  *block receives the block
 * the key fell in (a list position, or a named index) or -1 for the base
 * (block may be NULL).  Matching is sd-meh's substring search; a block
 * number past the list (where sd-meh raises "illegal block index") and, with
 * a list, SDXL's label_emb take the base.  Call after validate. */
double ms_block_weight_for_key(const ms_block_weights *weights, ms_merge_architecture arch,
                               const char *key, double base, int *block);

#endif
