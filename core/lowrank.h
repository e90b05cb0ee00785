/* The fast path of ms_lowrank_svd split in two steps, so that the resize
 * driver can choose the rank from the singular values before it pays for the
 * truncated factors (internal to the numerics files; resize.h is the
 * contract).
 *
 * With up = Q1 R1 and down^T = Q2 R2 (thin Householder QR),
 * W = up @ down = Q1 (R1 R2^T) Q2^T, and the SVD of the small core
 * R1 R2^T = Uc S Vc^T gives U = Q1 Uc and V = Q2 Vc.  Q1 and Q2 are never
 * formed: their reflectors are applied to the few columns we need. */
#ifndef MS_LOWRANK_H
#define MS_LOWRANK_H

#include <stdint.h>

#include "error.h"

typedef struct ms_lowrank_factor {
    int64_t out_features;
    int64_t in_features;
    int rank;                 /* r */
    int up_reflectors;        /* m1 = min(out, r) */
    int down_reflectors;      /* m2 = min(in, r) */
    int core_rank;            /* p = min(m1, m2) = min(out, in, r) */
    double *up_qr;            /* out x r, column-major, dgeqrf output */
    double *up_tau;           /* m1 */
    double *down_qr;          /* in x r, column-major, dgeqrf output */
    double *down_tau;         /* m2 */
    double *core_u;           /* m1 x m1, column-major */
    double *core_vt;          /* m2 x m2, column-major */
    double *singular_values;  /* p, descending */
} ms_lowrank_factor;

/* QR of both factors and the SVD of the core.  up is out x r and down is
 * r x in, row-major. On failure the factor is left freed. */
ms_status ms_lowrank_factor_init(ms_lowrank_factor *factor, const double *up,
                                 const double *down, int64_t out_features,
                                 int64_t in_features, int rank, ms_error *err);

/* Rank-k factors, 1 <= k <= min(out, in): new_up = U[:, :k] * S[:k]
 * (out x k, row-major), new_down = Vt[:k, :] (k x in, row-major).  Either
 * output may be NULL. Rows of new_down past p are orthonormal completions. */
ms_status ms_lowrank_factor_truncate(const ms_lowrank_factor *factor, int new_rank,
                                     double *new_up, double *new_down, ms_error *err);

void ms_lowrank_factor_free(ms_lowrank_factor *factor);

#endif
