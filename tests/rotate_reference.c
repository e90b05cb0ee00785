/* Plain references for the rotate tests, computed the obvious way: a full
 * SVD with determinants as numbers (sd-meh's road), the canonical completion
 * as a polar factor, and the principal power through LAPACK's complex
 * eigendecomposition.  Slow and simple on purpose. */
#include "rotate_reference.h"

#include <cblas.h>
#include <complex.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

double *rr_zeros(size_t count)
{
    double *values = calloc(count, sizeof *values);
    ck_assert_ptr_nonnull(values);
    return values;
}

void rr_multiply(const double *a, const double *b, double *c, size_t m, size_t n, size_t k)
{
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0, a,
                (int)k, b, (int)n, 0.0, c, (int)n);
}

double rr_determinant(const double *matrix, size_t n)
{
    double *lu = rr_zeros(n * n);
    lapack_int *pivots = calloc(n, sizeof *pivots);
    memcpy(lu, matrix, n * n * sizeof(double));
    ck_assert_int_eq(LAPACKE_dgetrf(LAPACK_ROW_MAJOR, (int)n, (int)n, lu, (int)n, pivots), 0);
    double value = 1.0;
    for (size_t i = 0; i < n; i++)
        value *= (pivots[i] != (lapack_int)(i + 1) ? -1.0 : 1.0) * lu[i * n + i];
    free(lu);
    free(pivots);
    return value;
}

double rr_largest_difference(const double *x, const double *y, size_t count)
{
    double largest = 0.0;
    for (size_t i = 0; i < count; i++)
        largest = fmax(largest, fabs(x[i] - y[i]));
    return largest;
}

/* sd-meh's rotation from a full SVD, the determinant taken as a number. */
void rr_reference_rotation(size_t rows, size_t d, const double *a, const double *b,
                               bool proper, double *rotation)
{
    double *m = rr_zeros(d * d), *u = rr_zeros(d * d), *vt = rr_zeros(d * d), *s = rr_zeros(d);
    double *superb = rr_zeros(d);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)d, (int)rows, 1.0, a,
                (int)d, b, (int)d, 0.0, m, (int)d);
    ck_assert_int_eq(LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'A', 'A', (int)d, (int)d, m, (int)d, s, u,
                                    (int)d, vt, (int)d, superb), 0);
    if (proper && rr_determinant(u, d) * rr_determinant(vt, d) < 0)
        for (size_t i = 0; i < d; i++)
            u[i * d + d - 1] = -u[i * d + d - 1];
    rr_multiply(u, vt, rotation, d, d, d);
    free(m);
    free(u);
    free(vt);
    free(s);
    free(superb);
}

/* The canonical completion by another road: the polar factor of
 * M + (I - U1 U1^T)(I - V1 V1^T), whose SVD pairs the two complements
 * the way the closest-to-identity completion does. */
void rr_reference_canonical(size_t rows, size_t d, const double *a, const double *b,
                                double *rotation)
{
    double *m = rr_zeros(d * d), *u = rr_zeros(d * d), *vt = rr_zeros(d * d), *s = rr_zeros(d);
    double *superb = rr_zeros(d), *pu = rr_zeros(d * d), *pv = rr_zeros(d * d);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)d, (int)rows, 1.0, a,
                (int)d, b, (int)d, 0.0, m, (int)d);
    double *copy = rr_zeros(d * d);
    memcpy(copy, m, d * d * sizeof(double));
    ck_assert_int_eq(LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'A', 'A', (int)d, (int)d, copy, (int)d, s,
                                    u, (int)d, vt, (int)d, superb), 0);
    size_t rank = 0;
    while (rank < d && s[rank] > 1e-10 * s[0])
        rank++;
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++) {
            double x = i == j, y = i == j;
            for (size_t t = 0; t < rank; t++) {
                x -= u[i * d + t] * u[j * d + t];
                y -= vt[t * d + i] * vt[t * d + j];
            }
            pu[i * d + j] = x;
            pv[i * d + j] = y;
        }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d, (int)d, (int)d, 1.0, pu,
                (int)d, pv, (int)d, 1.0, m, (int)d);
    ck_assert_int_eq(LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'A', 'A', (int)d, (int)d, m, (int)d, s, u,
                                    (int)d, vt, (int)d, superb), 0);
    rr_multiply(u, vt, rotation, d, d, d);
    free(m);
    free(u);
    free(vt);
    free(s);
    free(superb);
    free(pu);
    free(pv);
    free(copy);
}

/* The principal power through the complex eigendecomposition. */
void rr_reference_power(const double *rotation, size_t n, double alpha, double *power)
{
    lapack_complex_double *matrix = calloc(n * n, sizeof *matrix);
    lapack_complex_double *values = calloc(n, sizeof *values);
    lapack_complex_double *vectors = calloc(n * n, sizeof *vectors);
    lapack_complex_double *scaled = calloc(n * n, sizeof *scaled);
    lapack_complex_double *inverse = calloc(n * n, sizeof *inverse);
    lapack_int *pivots = calloc(n, sizeof *pivots);
    for (size_t i = 0; i < n * n; i++)
        matrix[i] = rotation[i];
    ck_assert_int_eq(LAPACKE_zgeev(LAPACK_ROW_MAJOR, 'N', 'V', (int)n, matrix, (int)n, values,
                                   NULL, (int)n, vectors, (int)n), 0);
    for (size_t i = 0; i < n * n; i++)
        matrix[i] = vectors[i];
    for (size_t i = 0; i < n; i++)
        inverse[i * n + i] = 1.0;
    ck_assert_int_eq(LAPACKE_zgesv(LAPACK_ROW_MAJOR, (int)n, (int)n, matrix, (int)n, pivots,
                                   inverse, (int)n), 0);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            scaled[i * n + j] = vectors[i * n + j] * cpow(values[j], alpha);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double complex sum = 0;
            for (size_t t = 0; t < n; t++)
                sum += scaled[i * n + t] * inverse[t * n + j];
            power[i * n + j] = creal(sum);
        }
    free(matrix);
    free(values);
    free(vectors);
    free(scaled);
    free(inverse);
    free(pivots);
}

