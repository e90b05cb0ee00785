/* LoRA resize with kohya-ss resize_lora.py semantics (algorithms.md section 2),
 * computed by the fast path: thin QR of up and down^T, SVD of the small r x r
 * product, never the full out x in matrix. */
#ifndef MS_RESIZE_H
#define MS_RESIZE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef enum ms_dynamic_method {
    MS_DYNAMIC_NONE,
    MS_DYNAMIC_SV_RATIO,
    MS_DYNAMIC_SV_CUMULATIVE,
    MS_DYNAMIC_SV_FRO,
} ms_dynamic_method;

typedef enum ms_save_precision {
    MS_SAVE_PRECISION_INPUT,   /* the input's dtype (default) */
    MS_SAVE_PRECISION_FLOAT,   /* fp32 */
    MS_SAVE_PRECISION_FP16,
    MS_SAVE_PRECISION_BF16,
} ms_save_precision;

/* "sv_ratio" etc.; NULL/"" -> none. Returns false for unknown words. */
bool ms_dynamic_method_from_name(const char *name, ms_dynamic_method *method);
const char *ms_dynamic_method_name(ms_dynamic_method method); /* NULL for none */
bool ms_save_precision_from_name(const char *name, ms_save_precision *precision);
const char *ms_save_precision_name(ms_save_precision precision); /* NULL for input */

typedef struct ms_resize_params {
    int new_rank;                 /* cap, default 4 */
    int new_conv_rank;            /* cap for 4-D modules; 0 means new_rank */
    ms_dynamic_method dynamic_method;
    bool has_dynamic_param;
    double dynamic_param;
    ms_save_precision save_precision;
    int threads;                  /* module-level workers; 0 = online cores */
} ms_resize_params;

void ms_resize_params_init(ms_resize_params *params);

/* invalid_parameter with details naming the field: new_rank < 1,
 * new_conv_rank < 0, method without param, param without method,
 * sv_ratio <= 1, sv_fro/sv_cumulative outside (0, 1], non-finite param. */
ms_status ms_resize_params_validate(const ms_resize_params *params, ms_error *err);

/* The rank rule of algorithms.md section 2 on singular values S (descending,
 * count entries), conceptually padded with zeros to padded_length =
 * min(out, in) >= count. */
typedef struct ms_rank_choice {
    int rank;
    double sum_retained;
    double fro_retained;
    double max_ratio;             /* may be +Inf when S[rank-1] == 0 */
} ms_rank_choice;

void ms_rank_rule(const double *singular_values, size_t count, size_t padded_length,
                  ms_dynamic_method method, double param, int cap,
                  ms_rank_choice *choice);

/* Fast path on one module.  up is out x r, down is r x in (row-major doubles).
 * Computes the r singular values of up @ down (descending) into
 * singular_values, and, when new_up/new_down are not NULL, the truncated
 * factors for rank k (1 <= k <= min(out, in)): new_up = U[:, :k] * S[:k]
 * (out x k), new_down = Vt[:k, :] (k x in).  For k > r the extra singular
 * values are zero and the extra rows of new_down are orthonormal
 * completions. */
ms_status ms_lowrank_svd(const double *up, const double *down,
                         int64_t out_features, int64_t in_features, int rank,
                         double *singular_values,
                         int new_rank, double *new_up, double *new_down,
                         ms_error *err);

typedef struct ms_resize_module_report {
    char *name;
    bool is_conv;
    int old_rank;
    int new_rank;
    double old_alpha;
    double new_alpha;
    double sum_retained;
    double fro_retained;
    double max_ratio;
} ms_resize_module_report;

typedef struct ms_resize_report {
    size_t module_count;
    ms_resize_module_report *modules;   /* sorted by name */
    size_t copied_tensor_count;         /* passthrough tensors */
    double fro_retained_mean;
    double fro_retained_std;            /* population std, as numpy */
    uint64_t output_bytes;
    char output_sha256[65];             /* whole file */
    char model_hash[65];                /* sshs_model_hash: data section */
} ms_resize_report;

/* Resizes input_path into output_path (atomic; nothing is left under
 * output_path on failure or cancellation).  progress may be NULL; it is
 * called after each module with (done, total, module name).  cancel may be
 * NULL; when it becomes non-zero the call stops between modules and returns
 * cancelled.  report may be NULL. */
ms_status ms_resize_file(const char *input_path, const char *output_path,
                         const ms_resize_params *params,
                         ms_progress_fn progress, void *progress_user_data,
                         const atomic_int *cancel,
                         ms_resize_report *report, ms_error *err);

void ms_resize_report_free(ms_resize_report *report);

#endif
