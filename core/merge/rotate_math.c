/* Procrustes rotations and their real fractional powers (rotate_math.h). */
#include "rotate_math.h"

#include "method_internal.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static double *matrix_new(size_t rows, size_t columns)
{
    if (columns != 0 && rows > SIZE_MAX / sizeof(double) / columns)
        return NULL;
    return ms_merge_large_doubles(rows * columns);
}

static ms_status no_memory(ms_error *err)
{
    return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory for a rotation");
}

static ms_status not_converged(const char *routine, int info, size_t dimension, ms_error *err)
{
    ms_error_set(err, MS_ERR_DEGENERATE_ROTATION, NULL,
                 "%s did not converge on a %zu x %zu matrix (info %d)", routine, dimension,
                 dimension, info);
    ms_error_detail_add(err, "routine", "%s", routine);
    ms_error_detail_add(err, "dimension", "%zu", dimension);
    ms_error_detail_add(err, "info", "%d", info);
    return MS_ERR_DEGENERATE_ROTATION;
}

/* c = op(a) op(b) for row-major matrices. */
void ms_rotate_product(bool transpose_a, bool transpose_b, size_t m, size_t n, size_t k,
                    const double *a, size_t lda, const double *b, size_t ldb, double *c,
                    size_t ldc)
{
    cblas_dgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans,
                transpose_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, 1.0, a,
                (int)lda, b, (int)ldb, 0.0, c, (int)ldc);
}

ms_status ms_rotation_determinant_sign(const double *matrix, size_t dimension, int *sign,
                                       ms_error *err)
{
    double *lu = matrix_new(dimension, dimension);
    lapack_int *pivots = malloc((dimension > 0 ? dimension : 1) * sizeof *pivots);
    ms_status status = MS_OK;
    if (lu == NULL || pivots == NULL) {
        status = no_memory(err);
        goto done;
    }
    memcpy(lu, matrix, dimension * dimension * sizeof(double));
    lapack_int info = LAPACKE_dgetrf(LAPACK_ROW_MAJOR, (lapack_int)dimension,
                                     (lapack_int)dimension, lu, (lapack_int)dimension, pivots);
    if (info < 0) {
        status = not_converged("dgetrf", (int)info, dimension, err);
        goto done;
    }
    int result = 1;
    for (size_t i = 0; i < dimension; i++) {
        double pivot = lu[i * dimension + i];
        if (pivot == 0.0) {
            result = 0;
            break;
        }
        if (pivot < 0.0)
            result = -result;
        if (pivots[i] != (lapack_int)(i + 1))
            result = -result;
    }
    *sign = result;
done:
    free(lu);
    free(pivots);
    return status;
}

/* matrix = u diag(s) vt, all square; matrix is destroyed.
 *
 * LAPACK is asked in its own (column-major) order, where our row-major
 * matrix reads as its transpose M^T = U' S V'^T: then M = V' S U'^T, and
 * V'^T and U' stored column-major read row-major as V' and U'^T, so the
 * factors land where we want them with no transposed copies (LAPACKE's
 * row-major path makes three; dgesdd of 1280 x 1280 here: 1.03 s, 0.85 s
 * without them). */
static ms_status svd(double *matrix, size_t dimension, double *s, double *u, double *vt,
                     ms_error *err)
{
    lapack_int n = (lapack_int)dimension;
    lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'A', n, n, matrix, n, s, vt, n, u, n);
    if (info == LAPACK_WORK_MEMORY_ERROR || info == LAPACK_TRANSPOSE_MEMORY_ERROR)
        return no_memory(err);
    if (info != 0)
        return not_converged("dgesdd", (int)info, dimension, err);
    return MS_OK;
}

/* Singular values above the rank tolerance LAPACK's own rank tests use. */
static size_t numerical_rank(const double *s, size_t dimension, size_t rows)
{
    if (dimension == 0 || !(s[0] > 0.0))
        return 0;
    double tolerance = (double)(rows > dimension ? rows : dimension) * DBL_EPSILON * s[0];
    size_t rank = 0;
    while (rank < dimension && s[rank] > tolerance)
        rank++;
    return rank;
}

/* R = U1 V1^T + U0 Z V0^T with Z = B A^T from V0^T U0 = A S B^T: among the
 * optimal rotations, the one of largest trace.  With proper and det R = -1,
 * the column of B of smallest singular value is flipped, which costs the
 * least trace. */
static ms_status complete(size_t k, size_t rank, const double *u, const double *vt,
                          bool proper, double *rotation, ms_error *err)
{
    size_t m = k - rank;
    double *n_matrix = matrix_new(m, m), *a = matrix_new(m, m), *bt = matrix_new(m, m);
    double *sigma = matrix_new(m, 1), *z = matrix_new(m, m), *u0z = matrix_new(k, m);
    ms_status status = MS_OK;
    if (!n_matrix || !a || !bt || !sigma || !z || !u0z) {
        status = no_memory(err);
        goto done;
    }
    ms_rotate_product(false, false, m, m, k, vt + rank * k, k, u + rank, k, n_matrix, m);
    status = svd(n_matrix, m, sigma, a, bt, err);
    if (status != MS_OK)
        goto done;
    ms_rotate_product(true, true, m, m, m, bt, m, a, m, z, m);
    ms_rotate_product(false, false, k, m, m, u + rank, k, z, m, u0z, m);
    memset(rotation, 0, k * k * sizeof(double));
    if (rank > 0)
        ms_rotate_product(false, false, k, k, rank, u, k, vt, k, rotation, k);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)k, (int)k, (int)m, 1.0, u0z,
                (int)m, vt + rank * k, (int)k, 1.0, rotation, (int)k);
    if (proper) {
        int sign;
        status = ms_rotation_determinant_sign(rotation, k, &sign, err);
        if (status != MS_OK || sign >= 0)
            goto done;
        /* Z' = Z - 2 b a^T (last columns): R' = R - 2 (U0 b)(V0 a)^T */
        double *left = matrix_new(k, 1), *right = matrix_new(k, 1);
        if (left != NULL && right != NULL) {
            for (size_t t = 0; t < k; t++) {
                double x = 0.0, y = 0.0;
                for (size_t j = 0; j < m; j++) {
                    x += u[t * k + rank + j] * bt[(m - 1) * m + j];
                    y += vt[(rank + j) * k + t] * a[j * m + m - 1];
                }
                left[t] = x;
                right[t] = y;
            }
            cblas_dger(CblasRowMajor, (int)k, (int)k, -2.0, left, 1, right, 1, rotation, (int)k);
        } else {
            status = no_memory(err);
        }
        free(left);
        free(right);
    }
done:
    free(n_matrix);
    free(a);
    free(bt);
    free(sigma);
    free(z);
    free(u0z);
    return status;
}

ms_status ms_rotation_from_covariance(size_t rows, size_t k, double *covariance, bool proper,
                                      double *rotation, ms_error *err)
{
    double *u = matrix_new(k, k), *vt = matrix_new(k, k), *s = matrix_new(k, 1);
    ms_status status = MS_OK;
    if (!u || !vt || !s) {
        status = no_memory(err);
        goto done;
    }
    status = svd(covariance, k, s, u, vt, err);
    if (status != MS_OK)
        goto done;
    size_t rank = numerical_rank(s, k, rows);
    if (rank < k) {
        status = complete(k, rank, u, vt, proper, rotation, err);
        goto done;
    }
    ms_rotate_product(false, false, k, k, k, u, k, vt, k, rotation, k);
    if (proper) {
        int sign;
        status = ms_rotation_determinant_sign(rotation, k, &sign, err);
        if (status == MS_OK && sign < 0) {
            /* sd-meh's flip of U's last column: R - 2 u_k v_k^T */
            for (size_t i = 0; i < k; i++)
                for (size_t j = 0; j < k; j++)
                    rotation[i * k + j] -= 2.0 * u[i * k + k - 1] * vt[(k - 1) * k + j];
        }
    }
done:
    free(u);
    free(vt);
    free(s);
    return status;
}

/* The k x k Procrustes rotation of a (rows x k) onto b. */
static ms_status procrustes(size_t rows, size_t k, const double *a, const double *b,
                           bool proper, double *rotation, ms_error *err)
{
    double *m = matrix_new(k, k);
    if (m == NULL)
        return no_memory(err);
    ms_rotate_product(true, false, k, k, rows, a, k, b, k, m, k);
    ms_status status = ms_rotation_from_covariance(rows, k, m, proper, rotation, err);
    free(m);
    return status;
}

/* P: an orthonormal basis (columns x 2 rows) holding both inputs' rows,
 * from the QR factorisation [a^T b^T] = P T; T (2 rows square, upper
 * triangular) is kept: a P = [T11^T 0] and b P = [T12^T T22^T]. */
static ms_status row_space_basis(size_t rows, size_t columns, const double *a, const double *b,
                                 double *basis, double *triangle, ms_error *err)
{
    size_t k = 2 * rows;
    double *tau = matrix_new(k, 1);
    if (tau == NULL)
        return no_memory(err);
    for (size_t i = 0; i < columns; i++)
        for (size_t j = 0; j < rows; j++) {
            basis[i * k + j] = a[j * columns + i];
            basis[i * k + rows + j] = b[j * columns + i];
        }
    lapack_int info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (lapack_int)columns, (lapack_int)k, basis,
                                     (lapack_int)k, tau);
    if (info == 0) {
        for (size_t i = 0; i < k; i++)
            for (size_t j = 0; j < k; j++)
                triangle[i * k + j] = j >= i ? basis[i * k + j] : 0.0;
        info = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (lapack_int)columns, (lapack_int)k,
                              (lapack_int)k, basis, (lapack_int)k, tau);
    }
    free(tau);
    if (info == LAPACK_WORK_MEMORY_ERROR)
        return no_memory(err);
    if (info != 0)
        return not_converged("dgeqrf", (int)info, k, err);
    return MS_OK;
}

/* The Procrustes rotation in the subspace, from the triangle alone:
 * (a P)^T (b P) = [C; 0] with C = T11 [T12; T22]^T (rows x k), so its SVD
 * is C's (rows x k, U padded with the identity) and the rank is at most
 * rows: the completion then settles the other k - rank directions.  Two
 * rows-sized decompositions instead of one k-sized one. */
static ms_status subspace_procrustes(size_t rows, const double *triangle, bool proper,
                                     double *rotation, ms_error *err)
{
    size_t n = rows, k = 2 * rows;
    double *c = matrix_new(n, k), *uc = matrix_new(n, n), *vt = matrix_new(k, k);
    double *u = matrix_new(k, k), *s = matrix_new(k, 1);
    ms_status status = MS_OK;
    if (!c || !uc || !vt || !u || !s) {
        status = no_memory(err);
        goto done;
    }
    ms_rotate_product(false, true, n, k, n, triangle, k, triangle + n, k, c, k);
    /* column-major, as svd() explains: c^T (k x n) = U' S V'^T */
    lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'A', (lapack_int)k, (lapack_int)n, c,
                                     (lapack_int)k, s, vt, (lapack_int)k, uc, (lapack_int)n);
    if (info == LAPACK_WORK_MEMORY_ERROR || info == LAPACK_TRANSPOSE_MEMORY_ERROR) {
        status = no_memory(err);
        goto done;
    }
    if (info != 0) {
        status = not_converged("dgesdd", (int)info, n, err);
        goto done;
    }
    memset(u, 0, k * k * sizeof(double));
    for (size_t i = 0; i < n; i++)
        memcpy(u + i * k, uc + i * n, n * sizeof(double));
    for (size_t i = n; i < k; i++) {
        u[i * k + i] = 1.0;
        s[i] = 0.0;
    }
    status = complete(k, numerical_rank(s, k, rows), u, vt, proper, rotation, err);
done:
    free(c);
    free(uc);
    free(vt);
    free(u);
    free(s);
    return status;
}

ms_status ms_rotation_solve(size_t rows, size_t columns, const double *a, const double *b,
                            bool proper, ms_rotation *rotation, ms_error *err)
{
    memset(rotation, 0, sizeof *rotation);
    rotation->columns = columns;
    ms_status status = MS_OK;
    if (2 * rows > columns) {
        rotation->dimension = columns;
        rotation->matrix = matrix_new(columns, columns);
        if (rotation->matrix == NULL)
            return no_memory(err);
        status = procrustes(rows, columns, a, b, proper, rotation->matrix, err);
        goto done;
    }
    size_t k = 2 * rows;
    rotation->dimension = k;
    rotation->basis = matrix_new(columns, k);
    rotation->matrix = matrix_new(k, k);
    rotation->triangle = matrix_new(k, k);
    if (!rotation->basis || !rotation->matrix || !rotation->triangle) {
        status = no_memory(err);
        goto done;
    }
    status = row_space_basis(rows, columns, a, b, rotation->basis, rotation->triangle, err);
    if (status == MS_OK)
        status = subspace_procrustes(rows, rotation->triangle, proper, rotation->matrix, err);
done:
    if (status != MS_OK)
        ms_rotation_free(rotation);
    return status;
}

void ms_rotation_free(ms_rotation *rotation)
{
    free(rotation->basis);
    free(rotation->matrix);
    free(rotation->triangle);
    rotation->basis = rotation->matrix = rotation->triangle = NULL;
}

/* The eigenspace of angle pi (R = -I there) has no preferred planes: its
 * basis is made canonical (independent of the eigensolver's choice) by
 * Gram-Schmidt on the projections of the coordinate axes, in index order,
 * each axis taken once its remaining projection is at least half the
 * largest; consecutive vectors then pair into planes. */
static ms_status canonical_half_turn(ms_rotation_spectrum *spectrum, size_t count,
                                     ms_error *err)
{
    size_t k = spectrum->dimension;
    double *w = spectrum->eigenvectors;
    double *chosen = matrix_new(k, count), *residual = matrix_new(k, 1);
    double *vector = matrix_new(k, 1);
    ms_status status = MS_OK;
    if (!chosen || !residual || !vector) {
        status = no_memory(err);
        goto done;
    }
    for (size_t i = 0; i < k; i++) {
        double sum = 0.0;
        for (size_t j = 0; j < count; j++)
            sum += w[i * k + j] * w[i * k + j];
        residual[i] = sum;
    }
    for (size_t t = 0; t < count; t++) {
        double largest = 0.0;
        for (size_t i = 0; i < k; i++)
            largest = fmax(largest, residual[i]);
        size_t axis = 0;
        while (axis + 1 < k && residual[axis] < 0.5 * largest)
            axis++;
        for (size_t i = 0; i < k; i++) {
            double sum = 0.0;
            for (size_t j = 0; j < count; j++)
                sum += w[i * k + j] * w[axis * k + j];
            vector[i] = sum;
        }
        for (int pass = 0; pass < 2; pass++)
            for (size_t q = 0; q < t; q++) {
                double dot = 0.0;
                for (size_t i = 0; i < k; i++)
                    dot += chosen[i * count + q] * vector[i];
                for (size_t i = 0; i < k; i++)
                    vector[i] -= dot * chosen[i * count + q];
            }
        double norm = cblas_dnrm2((int)k, vector, 1);
        for (size_t i = 0; i < k; i++) {
            chosen[i * count + t] = vector[i] / norm;
            residual[i] -= chosen[i * count + t] * chosen[i * count + t];
        }
    }
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < count; j++)
            w[i * k + j] = chosen[i * count + j];
    for (size_t j = 0; j < count; j++) {
        double *row = spectrum->generator + j * k;
        spectrum->angles[j] = M_PI;
        spectrum->half_turn[j] = 1;
        for (size_t i = 0; i < k; i++) {
            if (j % 2 == 0)
                row[i] = j + 1 < count ? -chosen[i * count + j + 1] : 0.0;
            else
                row[i] = chosen[i * count + j - 1];
        }
    }
done:
    free(chosen);
    free(residual);
    free(vector);
    return status;
}

ms_status ms_rotation_spectrum_compute(const double *matrix, size_t dimension,
                                       ms_rotation_spectrum *spectrum, ms_error *err)
{
    size_t k = dimension;
    memset(spectrum, 0, sizeof *spectrum);
    spectrum->dimension = k;
    spectrum->eigenvectors = matrix_new(k, k);
    spectrum->generator = matrix_new(k, k);
    spectrum->angles = matrix_new(k, 1);
    spectrum->half_turn = calloc(k > 0 ? k : 1, 1);
    double *skew = matrix_new(k, k);
    ms_status status = MS_OK;
    if (!spectrum->eigenvectors || !spectrum->generator || !spectrum->angles ||
        !spectrum->half_turn || !skew) {
        status = no_memory(err);
        goto done;
    }
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < k; j++) {
            spectrum->eigenvectors[i * k + j] = 0.5 * (matrix[i * k + j] + matrix[j * k + i]);
            skew[i * k + j] = 0.5 * (matrix[i * k + j] - matrix[j * k + i]);
        }
    lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', (lapack_int)k,
                                     spectrum->eigenvectors, (lapack_int)k, spectrum->angles);
    if (info == LAPACK_WORK_MEMORY_ERROR) {
        status = no_memory(err);
        goto done;
    }
    if (info != 0) {
        status = not_converged("dsyevd", (int)info, k, err);
        goto done;
    }
    ms_rotate_product(true, false, k, k, k, spectrum->eigenvectors, k, skew, k, spectrum->generator, k);
    /* eigenvalues ascend: the angle-pi ones come first.  Within the
     * eigensolver's accuracy of -1 they are taken as exactly pi; an odd count
     * in a proper rotation means a pair straddled the line. */
    size_t half_turns = 0;
    double tolerance = 8.0 * (double)k * DBL_EPSILON;
    while (half_turns < k && 1.0 + spectrum->angles[half_turns] <= tolerance)
        half_turns++;
    for (size_t j = 0; j < k; j++)
        spectrum->angles[j] = acos(fmax(-1.0, fmin(1.0, spectrum->angles[j])));
    if (half_turns % 2 == 1 && half_turns < k && spectrum->angles[half_turns] > M_PI - 1e-6) {
        int sign;
        status = ms_rotation_determinant_sign(matrix, k, &sign, err);
        if (status != MS_OK)
            goto done;
        if (sign > 0)
            half_turns++;
    }
    if (half_turns > 0)
        status = canonical_half_turn(spectrum, half_turns, err);
done:
    free(skew);
    if (status != MS_OK)
        ms_rotation_spectrum_free(spectrum);
    return status;
}

void ms_rotation_spectrum_free(ms_rotation_spectrum *spectrum)
{
    free(spectrum->eigenvectors);
    free(spectrum->generator);
    free(spectrum->angles);
    free(spectrum->half_turn);
    memset(spectrum, 0, sizeof *spectrum);
}

void ms_rotation_power_factors(const ms_rotation_spectrum *spectrum, double alpha,
                               double *cosines, double *factors)
{
    for (size_t j = 0; j < spectrum->dimension; j++) {
        double angle = spectrum->angles[j];
        cosines[j] = cos(alpha * angle);
        if (spectrum->half_turn[j])
            factors[j] = sin(alpha * M_PI);
        else
            factors[j] = angle == 0.0 ? alpha : sin(alpha * angle) / sin(angle);
    }
}

ms_status ms_rotation_power(const ms_rotation_spectrum *spectrum, double alpha, double *power,
                            ms_error *err)
{
    size_t k = spectrum->dimension;
    double *cosines = matrix_new(k, 1), *factors = matrix_new(k, 1), *right = matrix_new(k, k);
    ms_status status = MS_OK;
    if (!cosines || !factors || !right) {
        status = no_memory(err);
        goto done;
    }
    ms_rotation_power_factors(spectrum, alpha, cosines, factors);
    for (size_t j = 0; j < k; j++)
        for (size_t i = 0; i < k; i++)
            right[j * k + i] = cosines[j] * spectrum->eigenvectors[i * k + j] +
                               factors[j] * spectrum->generator[j * k + i];
    ms_rotate_product(false, false, k, k, k, spectrum->eigenvectors, k, right, k, power, k);
done:
    free(cosines);
    free(factors);
    free(right);
    return status;
}
