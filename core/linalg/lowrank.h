/* The fast path of ms_lowrank_svd split in two steps, so that the resize
 * driver can choose the rank from the singular values before it pays for the
 * truncated factors (internal to the numerics files; resize.h is the
 * contract).
 *
 * With up = Q1 R1 and down^T = Q2 R2 (thin QR, r x r factors),
 * W = up @ down = Q1 (R1 R2^T) Q2^T, and the SVD of the small core
 * R1 R2^T = Uc S Vc^T gives U = Q1 Uc and V = Q2 Vc.  Q1 and Q2 are never
 * formed.  Two ways to get there:
 *
 * - Cholesky-QR (the usual one, lowrank_cholesky.c): R1 and R2 are the
 *   Cholesky factors of the Gram matrices up^T up and down down^T, which
 *   are the thin QR's R factors; then U[:, :k] = up R1^-1 Uc[:, :k] and
 *   V[:, :k] = down^T R2^-1 Vc[:, :k].  All BLAS-3, half the flops of
 *   Householder, but it squares the condition number, so it is only taken
 *   when both R are well conditioned and k <= r.
 * - Householder QR (lowrank_svd.c): the fallback for ill-conditioned,
 *   rank-deficient or zero factors, for out < r or in < r, for factors
 *   whose squared column norms leave the normal double range, and for
 *   k > r (whose orthonormal completions need Q2's reflectors). */
#ifndef MS_LOWRANK_H
#define MS_LOWRANK_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

/* Cholesky-QR loses about eps * cond(R)^2 (relative to the largest
 * singular value); below this reciprocal condition estimate (LAPACK dtrcon,
 * 1-norm) of R1 or R2 the Householder path is used instead.  1e-5 keeps
 * the loss near 1e-11, invisible even in an fp32 output; 1e-7 would allow
 * about 1e-7, the size of an fp32 rounding. */
#define MS_LOWRANK_CHOLESKY_MIN_RCOND 1e-5

typedef enum ms_lowrank_method {
    MS_LOWRANK_HOUSEHOLDER,
    MS_LOWRANK_CHOLESKY
} ms_lowrank_method;

typedef struct ms_lowrank_factor {
    ms_lowrank_method method; /* which path ran (tests assert it) */
    int64_t out_features;
    int64_t in_features;
    int rank;                 /* r */
    int up_reflectors;        /* m1 = min(out, r) */
    int down_reflectors;      /* m2 = min(in, r) */
    int core_rank;            /* p = min(m1, m2) = min(out, in, r) */
    /* Householder only */
    double *up_qr;            /* out x r, column-major, dgeqrf output */
    double *up_tau;           /* m1 */
    double *down_qr;          /* in x r, column-major, dgeqrf output */
    double *down_tau;         /* m2 */
    /* Cholesky only: the caller's inputs (borrowed: they must outlive the
     * factor until the last truncate) and the two r x r upper R factors */
    const double *up;
    const double *down;
    double *up_r;             /* r x r, column-major, upper triangle */
    double *down_r;           /* r x r, column-major, upper triangle */
    double *core_reflectors;  /* r x r, dgebrd output: core = Qb B Pb^T */
    double *core_tauq;        /* r */
    double *core_taup;        /* r */
    /* both.  Householder: the core's singular vectors.  Cholesky: those of
     * its bidiagonal B (truncate applies Qb and Pb to the k it needs) */
    double *core_u;           /* m1 x m1, column-major */
    double *core_vt;          /* m2 x m2, column-major */
    double *singular_values;  /* p, descending */
} ms_lowrank_factor;

/* MS_OK when an out x rank x in problem fits LAPACK's int indexes and
 * memory's size_t; callers check before reading factors that size. */
ms_status ms_lowrank_check_shape(int64_t out_features, int64_t in_features, int rank,
                                 ms_error *err);

/* Thin QR of both factors and the SVD of the core.  up is out x r and down
 * is r x in, row-major; max_new_rank is the largest k that truncate will be
 * asked for (k > r forces the Householder path).  On the Cholesky path the
 * factor keeps pointers to up and down: keep them alive until the factor is
 * freed.  On failure the factor is left freed. */
ms_status ms_lowrank_factor_init(ms_lowrank_factor *factor, const double *up,
                                 const double *down, int64_t out_features,
                                 int64_t in_features, int rank, int max_new_rank,
                                 ms_error *err);

/* Rank-k factors, 1 <= k <= min(out, in) (and k <= max_new_rank of init):
 * new_up = U[:, :k] * S[:k] (out x k, row-major), new_down = Vt[:k, :]
 * (k x in, row-major).  Either output may be NULL. Rows of new_down past p
 * are orthonormal completions. */
ms_status ms_lowrank_factor_truncate(const ms_lowrank_factor *factor, int new_rank,
                                     double *new_up, double *new_down, ms_error *err);

void ms_lowrank_factor_free(ms_lowrank_factor *factor);

/* Between the lowrank files. */

/* MS_OK, or the error for a LAPACK info code. */
ms_status ms_lowrank_lapack_status(int info, const char *routine, ms_error *err);

/* Finite factors can still overflow in their product (entries near 1e300):
 * the SVD would then return NaN, and the NaN would be blamed on an output
 * tensor.  nan_detected, reason "overflow", when the m x n core holds a
 * non-finite value.  Only the Householder path needs it: the Cholesky path
 * takes columns whose squared norms stay below DBL_MAX x DBL_EPSILON, so
 * its core's entries stay below r times that. */
ms_status ms_lowrank_check_core_finite(int m, int n, const double *core, ms_error *err);

/* Full SVD of the m x n column-major core (overwritten): s (min(m, n)),
 * u (m x m), vt (n x n), after ms_lowrank_check_core_finite; no transposes. */
ms_status ms_lowrank_core_svd(int m, int n, double *core, double *s, double *u, double *vt,
                              ms_error *err);

/* The Cholesky path of init: returns MS_OK with *taken false (and nothing
 * allocated) when the factors are too ill-conditioned for it. */
ms_status ms_lowrank_cholesky_init(ms_lowrank_factor *factor, const double *up,
                                   const double *down, bool *taken, ms_error *err);

ms_status ms_lowrank_cholesky_truncate(const ms_lowrank_factor *factor, int new_rank,
                                       double *new_up, double *new_down, ms_error *err);

#endif
