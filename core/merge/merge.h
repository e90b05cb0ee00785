/* Checkpoint merge with sd-meh semantics (algorithms.md section 3), streamed:
 * inputs mmapped, the output header computed first, tensors merged and written
 * in file order with a bounded number (and bounded memory) in flight. */
#ifndef MS_MERGE_H
#define MS_MERGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "blocks.h"
#include "method.h"

typedef enum ms_nan_policy {
    MS_NAN_POLICY_FAIL,            /* nan_detected naming the key */
    MS_NAN_POLICY_KEEP_A,          /* keep A's tensor, list the key in the report */
} ms_nan_policy;

bool ms_nan_policy_from_name(const char *name, ms_nan_policy *policy); /* "fail", "keep_a" */
const char *ms_nan_policy_name(ms_nan_policy policy);

typedef struct ms_merge_params {
    const ms_merge_method *method;
    double base_alpha, base_beta;  /* default 0.5 each */
    ms_block_weights alpha, beta;  /* per block; form NONE = base everywhere */
    int precision;                 /* 16 (fp16 output) or 32 (fp32); default 16 */
    bool weights_clip;
    bool prune;
    ms_nan_policy nan_policy;
    int threads;                   /* tensor workers; 0 = online cores */
    uint64_t memory_budget;        /* bytes of method scratch in flight; 0 = default */
    /* rotate: the decomposition cache shared by merges (NULL: nothing kept
     * between merges) */
    struct ms_rotate_cache *rotate_cache;
} ms_merge_params;

/* The rotate cache's size when none is given: an SD1.5 pair's
 * decompositions with room to spare. */
#define MS_ROTATE_CACHE_DEFAULT_BYTES (UINT64_C(16) << 30)

void ms_merge_params_init(ms_merge_params *params);

/* invalid_parameter naming the field: no method, precision not 16/32,
 * non-finite base values. (Block weights are checked against the
 * architecture once model A is open.) */
ms_status ms_merge_params_validate(const ms_merge_params *params, ms_error *err);

typedef struct ms_merge_inputs {
    const char *model_a, *model_b, *model_c;   /* paths; model_c NULL for two-model methods */
} ms_merge_inputs;

/* How each output key came to be. */
typedef enum ms_merge_action {
    MS_MERGE_ACTION_MERGED,
    MS_MERGE_ACTION_COPIED_FROM_A,     /* A's tensor unchanged (key rules, prune, shapes) */
    MS_MERGE_ACTION_TAKEN_FROM_B,      /* only B has it, or B's is the larger (inpainting) */
    MS_MERGE_ACTION_POSITION_IDS,      /* written as [[0..76]] */
    MS_MERGE_ACTION_KEPT_A_FOR_NAN,    /* nan_policy keep_a */
} ms_merge_action;

typedef struct ms_merge_block_use {
    int block;                     /* list position or named index; -1 = base */
    double alpha, beta;
    size_t key_count;              /* merged keys that took these values */
} ms_merge_block_use;

typedef struct ms_merge_report {
    ms_merge_architecture architecture;
    size_t merged_count;
    size_t copied_from_a_count;
    size_t taken_from_b_count;
    size_t nan_key_count;
    char **nan_keys;                    /* nan_policy keep_a: the keys kept from A */
    ms_block_form block_form;           /* of alpha's weights (beta's when alpha has none):
                                           how to name a block_uses[].block */
    size_t block_use_count;
    ms_merge_block_use *block_uses;     /* by block, base (-1) first */
    uint64_t output_bytes;
    char output_sha256[65];             /* whole file: the job's ETag */
    /* rotate: keys whose decomposition came from the cache, keys computed,
     * and bytes those added to it */
    bool rotate;                        /* the method was rotate: the counts below apply */
    uint64_t rotate_cache_hits, rotate_cache_misses, rotate_cache_bytes_stored;
    /* worker seconds (summed over workers) in SVDs, eigendecompositions,
     * matrix products, and reading inputs and the cache (hashing included) */
    double rotate_svd_seconds, rotate_eigen_seconds, rotate_product_seconds, rotate_io_seconds;
    double seconds;
} ms_merge_report;

/* Merges into output_path (atomic: nothing under output_path on failure or
 * cancel).  Before any work the output's exact size is checked against the
 * free space of its file system: disk_full at once.  progress (may be NULL)
 * is called with bytes of tensor data written so far, the total, and the
 * key just written.  cancel (may be NULL): stops within one chunk of work,
 * returns cancelled.  report may be NULL; free it with ms_merge_report_free. */
ms_status ms_merge_files(const ms_merge_inputs *inputs, const char *output_path,
                         const ms_merge_params *params,
                         ms_progress_fn progress, void *progress_user_data,
                         const atomic_int *cancel,
                         ms_merge_report *report, ms_error *err);

void ms_merge_report_free(ms_merge_report *report);

#endif
