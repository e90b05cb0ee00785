/* Singular values and truncated factors of up @ down without forming the
 * out x in product (algorithms.md section 2, "Do it fast").  Cost
 * O((out + in) r^2) instead of O(out * in * min(out, in)).
 *
 * This file dispatches to the Cholesky-QR path (lowrank_cholesky.c) and
 * holds the Householder QR fallback.  Everything is column-major and LAPACK
 * is called through the LAPACKE *_work entry points, which for column-major
 * data call the Fortran routine directly: no hidden transposes and no NaN
 * scans (inputs are checked by the reader, outputs before writing).  The
 * row-major r x in down buffer already is down^T in column-major order, and
 * the row-major k x in new_down buffer already is the in x k matrix V[:, :k]
 * in column-major order.  Only up (and new_up) need an explicit transpose. */
#include "lowrank.h"
#include "core/lora/resize.h"

#include <cblas.h>
#include <lapacke.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

ms_status ms_lowrank_lapack_status(int info, const char *routine, ms_error *err)
{
    if (info == 0)
        return MS_OK;
    if (info == LAPACK_WORK_MEMORY_ERROR || info == LAPACK_TRANSPOSE_MEMORY_ERROR)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL,
                            "%s: out of memory for its workspace", routine);
    ms_error_set(err, MS_ERR_LAPACK, NULL, "%s failed (info %d)%s", routine, info,
                 info > 0 ? ": no convergence" : "");
    ms_error_detail_add(err, "routine", "%s", routine);
    ms_error_detail_add(err, "info", "%d", info);
    return MS_ERR_LAPACK;
}

/* LAPACK's workspace size answer (a double) as an allocation count. */
static size_t workspace_count(double query)
{
    return query < 1.0 ? 1 : (size_t)query;
}

static ms_status out_of_workspace(const char *routine, ms_error *err)
{
    return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "%s: out of memory for its workspace",
                        routine);
}

static ms_status geqrf(int m, int n, double *a, double *tau, ms_error *err)
{
    double query = 0.0;
    lapack_int info = LAPACKE_dgeqrf_work(LAPACK_COL_MAJOR, m, n, a, m, tau, &query, -1);
    if (info != 0)
        return ms_lowrank_lapack_status(info, "dgeqrf", err);
    size_t count = workspace_count(query);
    double *work = malloc(count * sizeof(double));
    if (work == NULL)
        return out_of_workspace("dgeqrf", err);
    info = LAPACKE_dgeqrf_work(LAPACK_COL_MAJOR, m, n, a, m, tau, work, (lapack_int)count);
    free(work);
    return ms_lowrank_lapack_status(info, "dgeqrf", err);
}

/* c (m x n, leading dimension m) = Q c, Q from k reflectors of a. */
static ms_status ormqr(int m, int n, int k, const double *a, const double *tau, double *c,
                       ms_error *err)
{
    double query = 0.0;
    lapack_int info = LAPACKE_dormqr_work(LAPACK_COL_MAJOR, 'L', 'N', m, n, k, a, m, tau, c, m,
                                          &query, -1);
    if (info != 0)
        return ms_lowrank_lapack_status(info, "dormqr", err);
    size_t count = workspace_count(query);
    double *work = malloc(count * sizeof(double));
    if (work == NULL)
        return out_of_workspace("dormqr", err);
    info = LAPACKE_dormqr_work(LAPACK_COL_MAJOR, 'L', 'N', m, n, k, a, m, tau, c, m, work,
                               (lapack_int)count);
    free(work);
    return ms_lowrank_lapack_status(info, "dormqr", err);
}

ms_status ms_lowrank_check_core_finite(int m, int n, const double *core, ms_error *err)
{
    for (size_t i = 0; i < (size_t)m * (size_t)n; i++) {
        if (!isfinite(core[i])) {
            ms_error_set(err, MS_ERR_NAN_DETECTED, NULL,
                         "the module's weights are too large: up @ down overflows double "
                         "precision");
            ms_error_detail_add(err, "reason", "overflow");
            return MS_ERR_NAN_DETECTED;
        }
    }
    return MS_OK;
}

ms_status ms_lowrank_core_svd(int m, int n, double *core, double *s, double *u, double *vt,
                              ms_error *err)
{
    if (ms_lowrank_check_core_finite(m, n, core, err) != MS_OK)
        return MS_ERR_NAN_DETECTED;
    int smaller = m < n ? m : n;
    lapack_int *iwork = malloc((size_t)8 * (size_t)smaller * sizeof(lapack_int));
    if (iwork == NULL)
        return out_of_workspace("dgesdd", err);
    double query = 0.0;
    lapack_int info = LAPACKE_dgesdd_work(LAPACK_COL_MAJOR, 'A', m, n, core, m, s, u, m, vt, n,
                                          &query, -1, iwork);
    double *work = NULL;
    if (info == 0) {
        size_t count = workspace_count(query);
        work = malloc(count * sizeof(double));
        if (work == NULL) {
            free(iwork);
            return out_of_workspace("dgesdd", err);
        }
        info = LAPACKE_dgesdd_work(LAPACK_COL_MAJOR, 'A', m, n, core, m, s, u, m, vt, n, work,
                                   (lapack_int)count, iwork);
    }
    free(work);
    free(iwork);
    return ms_lowrank_lapack_status(info, "dgesdd", err);
}

static double *alloc_doubles(size_t count)
{
    return count == 0 ? NULL : malloc(count * sizeof(double));
}

static double *alloc_zeroed(size_t count)
{
    return count == 0 ? NULL : calloc(count, sizeof(double));
}

static int min_int64(int64_t a, int64_t b)
{
    return (int)(a < b ? a : b);
}

ms_status ms_lowrank_check_shape(int64_t out_features, int64_t in_features, int rank,
                                 ms_error *err)
{
    if (out_features < 1 || in_features < 1 || rank < 1)
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL,
                            "low-rank SVD of an empty matrix (%lld x %d x %lld)",
                            (long long)out_features, rank, (long long)in_features);
    /* LAPACK indexes with int: leading dimensions must fit. */
    if (out_features > INT_MAX || in_features > INT_MAX
        || (uint64_t)out_features * (uint64_t)rank > SIZE_MAX / sizeof(double)
        || (uint64_t)in_features * (uint64_t)rank > SIZE_MAX / sizeof(double))
        return ms_error_set(err, MS_ERR_INTEGER_OVERFLOW, NULL,
                            "module too large for LAPACK (%lld x %d x %lld)",
                            (long long)out_features, rank, (long long)in_features);
    return MS_OK;
}

/* Copies the upper trapezoid of a dgeqrf result (rows x rank, leading
 * dimension lda) into a dense rows x rank column-major matrix. */
static void extract_r(const double *qr, int lda, int rows, int rank, double *r)
{
    for (int column = 0; column < rank; column++)
        for (int row = 0; row < rows; row++)
            r[row + (size_t)column * rows] =
                row <= column ? qr[row + (size_t)column * lda] : 0.0;
}

static ms_status factor_qr(ms_lowrank_factor *f, const double *up, const double *down,
                           ms_error *err)
{
    size_t out = (size_t)f->out_features, in = (size_t)f->in_features, r = (size_t)f->rank;
    f->up_qr = alloc_doubles(out * r);
    f->down_qr = alloc_doubles(in * r);
    f->up_tau = alloc_doubles((size_t)f->up_reflectors);
    f->down_tau = alloc_doubles((size_t)f->down_reflectors);
    if (!f->up_qr || !f->down_qr || !f->up_tau || !f->down_tau)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory for the QR");
    for (size_t row = 0; row < out; row++)
        for (size_t column = 0; column < r; column++)
            f->up_qr[row + column * out] = up[row * r + column];
    memcpy(f->down_qr, down, in * r * sizeof(double));

    ms_status status = geqrf((int)out, (int)r, f->up_qr, f->up_tau, err);
    if (status != MS_OK)
        return status;
    return geqrf((int)in, (int)r, f->down_qr, f->down_tau, err);
}

/* core = R1 R2^T (m1 x m2), then its full SVD: the full Vc^T supplies the
 * orthonormal completions inside span(Q2) when k exceeds p. */
static ms_status factor_core(ms_lowrank_factor *f, ms_error *err)
{
    int m1 = f->up_reflectors, m2 = f->down_reflectors, r = f->rank;
    ms_status status = MS_OK;
    double *r1 = alloc_doubles((size_t)m1 * r);
    double *r2 = alloc_doubles((size_t)m2 * r);
    double *core = alloc_doubles((size_t)m1 * m2);
    f->core_u = alloc_doubles((size_t)m1 * m1);
    f->core_vt = alloc_doubles((size_t)m2 * m2);
    f->singular_values = alloc_doubles((size_t)f->core_rank);
    if (!r1 || !r2 || !core || !f->core_u || !f->core_vt || !f->singular_values) {
        status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory for the core SVD");
        goto done;
    }
    extract_r(f->up_qr, (int)f->out_features, m1, r, r1);
    extract_r(f->down_qr, (int)f->in_features, m2, r, r2);
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, m1, m2, r, 1.0, r1, m1, r2, m2,
                0.0, core, m1);
    status = ms_lowrank_core_svd(m1, m2, core, f->singular_values, f->core_u, f->core_vt, err);
done:
    free(r1);
    free(r2);
    free(core);
    return status;
}

ms_status ms_lowrank_factor_init(ms_lowrank_factor *factor, const double *up,
                                 const double *down, int64_t out_features,
                                 int64_t in_features, int rank, int max_new_rank,
                                 ms_error *err)
{
    memset(factor, 0, sizeof *factor);
    ms_status status = ms_lowrank_check_shape(out_features, in_features, rank, err);
    if (status != MS_OK)
        return status;
    factor->out_features = out_features;
    factor->in_features = in_features;
    factor->rank = rank;
    factor->up_reflectors = min_int64(out_features, rank);
    factor->down_reflectors = min_int64(in_features, rank);
    factor->core_rank = factor->up_reflectors < factor->down_reflectors
                            ? factor->up_reflectors : factor->down_reflectors;
    bool cholesky = false;
    if (max_new_rank <= rank)
        status = ms_lowrank_cholesky_init(factor, up, down, &cholesky, err);
    if (status == MS_OK && !cholesky) {
        factor->method = MS_LOWRANK_HOUSEHOLDER;
        status = factor_qr(factor, up, down, err);
        if (status == MS_OK)
            status = factor_core(factor, err);
    }
    if (status != MS_OK)
        ms_lowrank_factor_free(factor);
    return status;
}

/* new_up = Q1 [Uc[:, :kp]; 0] * S[:kp], columns past kp are zero (their
 * singular values are). */
static ms_status truncate_up(const ms_lowrank_factor *f, int new_rank, double *new_up,
                             ms_error *err)
{
    size_t out = (size_t)f->out_features, k = (size_t)new_rank;
    int m1 = f->up_reflectors;
    int kept = new_rank < f->core_rank ? new_rank : f->core_rank;
    double *block = alloc_zeroed(out * (size_t)kept);
    if (block == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory for new_up");
    for (int column = 0; column < kept; column++)
        memcpy(block + (size_t)column * out, f->core_u + (size_t)column * m1,
               (size_t)m1 * sizeof(double));
    ms_status status = ormqr((int)out, kept, m1, f->up_qr, f->up_tau, block, err);
    if (status == MS_OK) {
        for (size_t row = 0; row < out; row++)
            for (size_t column = 0; column < k; column++)
                new_up[row * k + column] = (int)column < kept
                    ? block[row + column * out] * f->singular_values[column] : 0.0;
    }
    free(block);
    return status;
}

/* new_down (row-major k x in) is V[:, :k] column-major: fill the Q2
 * coordinates of each column, then apply the reflectors in place.  Column c
 * is row c of the full Vc^T when c < m2, else the unit vector e_c, which Q2
 * maps outside span(Q2 [I; 0]); all k columns stay orthonormal. */
static ms_status truncate_down(const ms_lowrank_factor *f, int new_rank, double *new_down,
                               ms_error *err)
{
    size_t in = (size_t)f->in_features;
    int m2 = f->down_reflectors;
    memset(new_down, 0, in * (size_t)new_rank * sizeof(double));
    for (int column = 0; column < new_rank; column++) {
        double *target = new_down + (size_t)column * in;
        if (column < m2) {
            for (int i = 0; i < m2; i++)
                target[i] = f->core_vt[column + (size_t)i * m2];
        } else {
            target[column] = 1.0;
        }
    }
    return ormqr((int)in, new_rank, m2, f->down_qr, f->down_tau, new_down, err);
}

ms_status ms_lowrank_factor_truncate(const ms_lowrank_factor *factor, int new_rank,
                                     double *new_up, double *new_down, ms_error *err)
{
    int64_t limit = factor->out_features < factor->in_features
                        ? factor->out_features : factor->in_features;
    if (new_rank < 1 || new_rank > limit)
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL,
                            "new rank %d outside [1, min(out, in) = %lld]", new_rank,
                            (long long)limit);
    if (factor->method == MS_LOWRANK_CHOLESKY)
        return ms_lowrank_cholesky_truncate(factor, new_rank, new_up, new_down, err);
    ms_status status = MS_OK;
    if (new_up != NULL)
        status = truncate_up(factor, new_rank, new_up, err);
    if (status == MS_OK && new_down != NULL)
        status = truncate_down(factor, new_rank, new_down, err);
    return status;
}

void ms_lowrank_factor_free(ms_lowrank_factor *factor)
{
    free(factor->up_qr);
    free(factor->up_tau);
    free(factor->down_qr);
    free(factor->down_tau);
    free(factor->up_r);
    free(factor->down_r);
    free(factor->core_reflectors);
    free(factor->core_tauq);
    free(factor->core_taup);
    free(factor->core_u);
    free(factor->core_vt);
    free(factor->singular_values);
    memset(factor, 0, sizeof *factor);
}

ms_status ms_lowrank_svd(const double *up, const double *down,
                         int64_t out_features, int64_t in_features, int rank,
                         double *singular_values,
                         int new_rank, double *new_up, double *new_down,
                         ms_error *err)
{
    ms_lowrank_factor factor;
    ms_status status = ms_lowrank_factor_init(&factor, up, down, out_features, in_features,
                                              rank, new_rank, err);
    if (status != MS_OK)
        return status;
    for (int i = 0; i < rank; i++)
        singular_values[i] = i < factor.core_rank ? factor.singular_values[i] : 0.0;
    if (new_up != NULL || new_down != NULL)
        status = ms_lowrank_factor_truncate(&factor, new_rank, new_up, new_down, err);
    ms_lowrank_factor_free(&factor);
    return status;
}
