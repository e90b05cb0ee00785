/* Cholesky-QR path of the fast low-rank SVD (lowrank.h).
 *
 * This is still the thin QR of up and down^T: the Cholesky factor R of the
 * Gram matrix A^T A is the thin QR's R factor of A (up to signs), and
 * Q = A R^-1 is never formed.  One dsyrk per factor, two r x r Cholesky
 * factorisations, the r x r core SVD, and for the truncated factors one
 * small triangular solve plus one dgemm each: everything but the core SVD
 * is BLAS-3 on the caller's buffers, with no copies or transposes.
 *
 * The core SVD is dgesdd's own recipe (dgebrd, dbdsdc, dormbr) taken
 * apart: the bidiagonal's singular vectors are computed in init, but the
 * core's reflectors are applied in truncate to the k vectors kept only,
 * not to all r (measured: 15-20% of dgesdd's time for k = 32 of r = 128).
 *
 * Squaring the condition number costs about eps * cond(R)^2 relative to
 * the largest singular value (measured: 9e-14 at cond 1e4), hence the
 * MS_LOWRANK_CHOLESKY_MIN_RCOND guard in lowrank.h.
 *
 * Layout: the row-major out x r up buffer is the column-major r x out
 * matrix up^T (leading dimension r), and the row-major r x in down buffer is
 * the column-major in x r matrix down^T (leading dimension in). */
#include "lowrank.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <stdlib.h>
#include <string.h>

/* Squared column norms outside [GRAM_MIN, GRAM_MAX] take the Householder
 * path: below, the squares are subnormal or nearly so. */
#define MS_LOWRANK_GRAM_MIN (DBL_MIN / DBL_EPSILON)
#define MS_LOWRANK_GRAM_MAX (DBL_MAX * DBL_EPSILON)

/* R (r x r upper, column-major) of the Gram matrix gram, or *ok false when
 * it is not numerically positive definite or too ill-conditioned for its
 * square to be trusted. */
static ms_status cholesky_r(int r, double *gram, bool *ok, ms_error *err)
{
    *ok = false;
    /* The diagonal holds the squared column norms: near the ends of the
     * double range the squares have underflowed (lost digits) or
     * overflowed, which no condition estimate can see afterwards. */
    for (int i = 0; i < r; i++) {
        double diagonal = gram[i + (size_t)i * r];
        if (!(diagonal >= MS_LOWRANK_GRAM_MIN && diagonal <= MS_LOWRANK_GRAM_MAX))
            return MS_OK;
    }
    lapack_int info = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'U', r, gram, r);
    if (info > 0)
        return MS_OK; /* not positive definite: rank-deficient or zero */
    ms_status status = ms_lowrank_lapack_status(info, "dpotrf", err);
    if (status != MS_OK)
        return status;
    double rcond = 0.0;
    double *work = malloc((size_t)3 * (size_t)r * sizeof(double));
    lapack_int *iwork = malloc((size_t)r * sizeof(lapack_int));
    if (work == NULL || iwork == NULL) {
        status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory for dtrcon");
    } else {
        status = ms_lowrank_lapack_status(
            LAPACKE_dtrcon_work(LAPACK_COL_MAJOR, '1', 'U', 'N', r, gram, r, &rcond, work,
                                iwork), "dtrcon", err);
    }
    free(work);
    free(iwork);
    /* a NaN rcond fails the comparison too */
    if (status == MS_OK && rcond >= MS_LOWRANK_CHOLESKY_MIN_RCOND)
        *ok = true;
    return status;
}

/* up_r and down_r from the Gram matrices; *taken false if either is unfit. */
static ms_status factor_r(ms_lowrank_factor *f, bool *taken, ms_error *err)
{
    int r = f->rank;
    /* dsyrk writes the upper triangle only: calloc leaves the lower zero,
     * which the core product below relies on */
    f->up_r = calloc((size_t)r * (size_t)r, sizeof(double));
    f->down_r = calloc((size_t)r * (size_t)r, sizeof(double));
    if (f->up_r == NULL || f->down_r == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory for the Gram matrices");
    cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, r, (int)f->out_features, 1.0, f->up,
                r, 0.0, f->up_r, r);
    cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, r, (int)f->in_features, 1.0, f->down,
                (int)f->in_features, 0.0, f->down_r, r);
    bool up_ok = false, down_ok = false;
    ms_status status = cholesky_r(r, f->up_r, &up_ok, err);
    if (status == MS_OK && up_ok)
        status = cholesky_r(r, f->down_r, &down_ok, err);
    *taken = up_ok && down_ok;
    return status;
}

/* The SVD of the bidiagonal form of the r x r core (overwritten by its
 * reflectors): singular values descending, and the bidiagonal's vectors. */
static ms_status core_svd_split(ms_lowrank_factor *f, ms_error *err)
{
    int r = f->rank;
    double *superdiagonal = malloc((size_t)r * sizeof(double));
    double *work = NULL;
    lapack_int *iwork = malloc((size_t)8 * (size_t)r * sizeof(lapack_int));
    ms_status status = MS_OK;
    double query = 0.0;
    if (superdiagonal == NULL || iwork == NULL) {
        status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory for the core SVD");
        goto done;
    }
    status = ms_lowrank_lapack_status(
        LAPACKE_dgebrd_work(LAPACK_COL_MAJOR, r, r, f->core_reflectors, r, f->singular_values,
                            superdiagonal, f->core_tauq, f->core_taup, &query, -1),
        "dgebrd", err);
    if (status != MS_OK)
        goto done;
    /* one workspace for both: dbdsdc needs 3 r^2 + 4 r */
    size_t count = (size_t)3 * (size_t)r * (size_t)r + (size_t)4 * (size_t)r;
    if (query > (double)count)
        count = (size_t)query;
    work = malloc(count * sizeof(double));
    if (work == NULL) {
        status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory for the core SVD");
        goto done;
    }
    status = ms_lowrank_lapack_status(
        LAPACKE_dgebrd_work(LAPACK_COL_MAJOR, r, r, f->core_reflectors, r, f->singular_values,
                            superdiagonal, f->core_tauq, f->core_taup, work,
                            (lapack_int)count), "dgebrd", err);
    /* square input: B is upper bidiagonal; dbdsdc sorts S descending */
    if (status == MS_OK)
        status = ms_lowrank_lapack_status(
            LAPACKE_dbdsdc_work(LAPACK_COL_MAJOR, 'U', 'I', r, f->singular_values,
                                superdiagonal, f->core_u, r, f->core_vt, r, NULL, NULL, work,
                                iwork), "dbdsdc", err);
done:
    free(superdiagonal);
    free(work);
    free(iwork);
    return status;
}

/* core = R1 R2^T (r x r; both lower triangles are zero), then its SVD. */
static ms_status factor_core(ms_lowrank_factor *f, ms_error *err)
{
    int r = f->rank;
    size_t square = (size_t)r * (size_t)r;
    f->core_reflectors = malloc(square * sizeof(double));
    f->core_tauq = malloc((size_t)r * sizeof(double));
    f->core_taup = malloc((size_t)r * sizeof(double));
    f->core_u = malloc(square * sizeof(double));
    f->core_vt = malloc(square * sizeof(double));
    f->singular_values = malloc((size_t)r * sizeof(double));
    if (f->core_reflectors == NULL || f->core_tauq == NULL || f->core_taup == NULL
        || f->core_u == NULL || f->core_vt == NULL || f->singular_values == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory for the core SVD");
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, r, r, r, 1.0, f->up_r, r, f->down_r,
                r, 0.0, f->core_reflectors, r);
    return core_svd_split(f, err);
}

/* c (r x k) = Qb c ('Q') or Pb c ('P'), the core's reflectors. */
static ms_status apply_core_reflectors(const ms_lowrank_factor *f, char which, int k, double *c,
                                       ms_error *err)
{
    int r = f->rank;
    const double *tau = which == 'Q' ? f->core_tauq : f->core_taup;
    double query = 0.0;
    lapack_int info = LAPACKE_dormbr_work(LAPACK_COL_MAJOR, which, 'L', 'N', r, k, r,
                                          f->core_reflectors, r, tau, c, r, &query, -1);
    if (info != 0)
        return ms_lowrank_lapack_status(info, "dormbr", err);
    size_t count = query < 1.0 ? 1 : (size_t)query;
    double *work = malloc(count * sizeof(double));
    if (work == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory for dormbr");
    info = LAPACKE_dormbr_work(LAPACK_COL_MAJOR, which, 'L', 'N', r, k, r, f->core_reflectors,
                               r, tau, c, r, work, (lapack_int)count);
    free(work);
    return ms_lowrank_lapack_status(info, "dormbr", err);
}

static void release(ms_lowrank_factor *f)
{
    free(f->up_r);
    free(f->down_r);
    free(f->core_reflectors);
    free(f->core_tauq);
    free(f->core_taup);
    free(f->core_u);
    free(f->core_vt);
    free(f->singular_values);
    f->up_r = f->down_r = f->core_reflectors = f->core_tauq = f->core_taup = NULL;
    f->core_u = f->core_vt = f->singular_values = NULL;
    f->up = f->down = NULL;
}

ms_status ms_lowrank_cholesky_init(ms_lowrank_factor *factor, const double *up,
                                   const double *down, bool *taken, ms_error *err)
{
    *taken = false;
    /* out < r or in < r: the Gram matrix is singular, do not bother */
    if (factor->out_features < factor->rank || factor->in_features < factor->rank)
        return MS_OK;
    factor->up = up;
    factor->down = down;
    ms_status status = factor_r(factor, taken, err);
    if (status == MS_OK && *taken)
        status = factor_core(factor, err);
    if (status != MS_OK || !*taken) {
        release(factor);
        *taken = false;
    } else {
        factor->method = MS_LOWRANK_CHOLESKY;
    }
    return status;
}

/* new_up^T (k x out, column-major, = new_up row-major) = X^T up^T with
 * X = R1^-1 Uc[:, :k] S[:k] (r x k), Uc[:, :k] = Qb Ub[:, :k]. */
static ms_status truncate_up(const ms_lowrank_factor *f, int k, double *new_up, ms_error *err)
{
    int r = f->rank;
    double *x = malloc((size_t)r * (size_t)k * sizeof(double));
    if (x == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory for new_up");
    memcpy(x, f->core_u, (size_t)r * (size_t)k * sizeof(double));
    ms_status status = apply_core_reflectors(f, 'Q', k, x, err);
    if (status == MS_OK) {
        for (int column = 0; column < k; column++)
            cblas_dscal(r, f->singular_values[column], x + (size_t)column * r, 1);
        cblas_dtrsm(CblasColMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, r, k,
                    1.0, f->up_r, r, x, r);
        cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, k, (int)f->out_features, r, 1.0,
                    x, r, f->up, r, 0.0, new_up, k);
    }
    free(x);
    return status;
}

/* new_down (row-major k x in, = V[:, :k] column-major in x k) =
 * down^T X with X = R2^-1 Vc[:, :k] (r x k), Vc[:, :k] = Pb Vb[:, :k]. */
static ms_status truncate_down(const ms_lowrank_factor *f, int k, double *new_down,
                               ms_error *err)
{
    int r = f->rank;
    double *x = malloc((size_t)r * (size_t)k * sizeof(double));
    if (x == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory for new_down");
    for (int column = 0; column < k; column++)
        for (int row = 0; row < r; row++)
            x[row + (size_t)column * r] = f->core_vt[column + (size_t)row * r];
    ms_status status = apply_core_reflectors(f, 'P', k, x, err);
    if (status == MS_OK) {
        cblas_dtrsm(CblasColMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, r, k,
                    1.0, f->down_r, r, x, r);
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)f->in_features, k, r, 1.0,
                    f->down, (int)f->in_features, x, r, 0.0, new_down, (int)f->in_features);
    }
    free(x);
    return status;
}

ms_status ms_lowrank_cholesky_truncate(const ms_lowrank_factor *factor, int new_rank,
                                       double *new_up, double *new_down, ms_error *err)
{
    if (new_rank > factor->rank)
        return ms_error_set(err, MS_ERR_INTERNAL, NULL,
                            "rank %d above r = %d on the Cholesky path", new_rank,
                            factor->rank);
    ms_status status = MS_OK;
    if (new_up != NULL)
        status = truncate_up(factor, new_rank, new_up, err);
    if (status == MS_OK && new_down != NULL)
        status = truncate_down(factor, new_rank, new_down, err);
    return status;
}
