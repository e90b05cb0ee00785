/* Synthetic Stable Diffusion checkpoints with the real key names of the
 * original LDM / SGM layout (v1-5-pruned-emaonly.safetensors,
 * sd_xl_base_1.0.safetensors) and, at full size, their real shapes: for the
 * merge tests and the merge benchmark.
 *
 * Values are pseudo-random, roughly N(0, 0.05), reproducible: each tensor's
 * values depend only on the seed and the tensor's name, so dropping keys or
 * changing dtypes leaves the other tensors' values as they were, and a test
 * can recompute any tensor with gen_checkpoint_values. */
#ifndef MS_CHECKPOINT_GENERATOR_H
#define MS_CHECKPOINT_GENERATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/format/dtype.h"
#include "core/error.h"

typedef enum gen_checkpoint_arch {
    GEN_CHECKPOINT_SD15,
    GEN_CHECKPOINT_SDXL,
} gen_checkpoint_arch;

typedef enum gen_checkpoint_dtype {
    GEN_CHECKPOINT_F16,
    GEN_CHECKPOINT_BF16,
    GEN_CHECKPOINT_F32,
    GEN_CHECKPOINT_MIXED,     /* F16, BF16 and F32 tensors, chosen by name */
} gen_checkpoint_dtype;

typedef struct gen_checkpoint_options {
    gen_checkpoint_arch arch;
    bool full_size;           /* false: same keys, tiny widths (files well under 2 MB) */
    gen_checkpoint_dtype dtype;
    uint64_t seed;
    bool inpainting;          /* input_blocks.0.0.weight takes 9 input channels, not 4 */
    bool old_te_names;        /* SD1.5: cond_stage_model.transformer.{embeddings,encoder,
                                 final_layer_norm}. without text_model. */
    bool extra_keys;          /* LDM's buffers: betas, alphas_cumprod, ... (no "model" in
                                 their names), model_ema.decay (F32) and
                                 model_ema.num_updates (I32), as SD1.x files carry */
    const char *const *drop_keys;   /* exact names left out of the file */
    size_t drop_key_count;
} gen_checkpoint_options;

/* Defaults: SD15, small, F16, seed 1, no variant. */
void gen_checkpoint_options_init(gen_checkpoint_options *options);

typedef struct gen_checkpoint_tensor {
    const char *name;         /* valid during the visit only */
    ms_dtype dtype;
    int ndim;                 /* 0 (a scalar) to 4 */
    int64_t shape[4];
    uint64_t element_count;
} gen_checkpoint_tensor;

typedef void (*gen_checkpoint_visit_fn)(void *user_data, const gen_checkpoint_tensor *tensor);

/* Calls visit for every tensor the file would hold, without writing. */
void gen_checkpoint_enumerate(const gen_checkpoint_options *options,
                              gen_checkpoint_visit_fn visit, void *user_data);

typedef struct gen_checkpoint_totals {
    size_t tensor_count;
    uint64_t parameter_count;   /* elements of every tensor */
    uint64_t file_bytes;        /* 0 from gen_checkpoint_count */
} gen_checkpoint_totals;

void gen_checkpoint_count(const gen_checkpoint_options *options, gen_checkpoint_totals *totals);

/* Writes the checkpoint to path through ms_writer (atomic), one tensor in
 * memory at a time.  totals may be NULL. */
ms_status gen_checkpoint_write(const gen_checkpoint_options *options, const char *path,
                               gen_checkpoint_totals *totals, ms_error *err);

/* The values the generator gives a float tensor of that name, in double
 * (before rounding to the file's dtype).  The LDM buffers of extra_keys and
 * position_ids are not random: use the file for those. */
void gen_checkpoint_values(uint64_t seed, const char *name, double *values, size_t count);

#endif
