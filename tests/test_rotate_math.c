/* Rotate numerics (core/merge/rotate_math.c) against a plain reference
 * computed here: a full SVD (dgesvd, determinants as numbers) for the
 * Procrustes rotation, and the principal power through LAPACK's complex
 * eigendecomposition (zgeev, then V diag(lambda^alpha) V^-1). */
#include <cblas.h>
#include <complex.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_support.h"
#include "core/merge/rotate_math.h"
#include "numerics_testutil.h"
#include "rotate_reference.h"

#define TOLERANCE 1e-9

static double *solve_full(size_t rows, size_t d, const double *a, const double *b, bool proper)
{
    ms_rotation rotation;
    ms_error err;
    ck_assert_int_eq(ms_rotation_solve(rows, d, a, b, proper, &rotation, &err), MS_OK);
    double *full = rr_zeros(d * d);
    if (rotation.basis == NULL) {
        memcpy(full, rotation.matrix, d * d * sizeof(double));
    } else {
        /* R = I + P (S - I) P^T */
        size_t k = rotation.dimension;
        double *shifted = rr_zeros(k * k), *left = rr_zeros(d * k);
        memcpy(shifted, rotation.matrix, k * k * sizeof(double));
        for (size_t i = 0; i < k; i++)
            shifted[i * k + i] -= 1.0;
        rr_multiply(rotation.basis, shifted, left, d, k, k);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)d, (int)d, (int)k, 1.0, left,
                    (int)k, rotation.basis, (int)k, 0.0, full, (int)d);
        for (size_t i = 0; i < d; i++)
            full[i * d + i] += 1.0;
        free(shifted);
        free(left);
    }
    ms_rotation_free(&rotation);
    return full;
}

static double *power_of(const double *rotation, size_t n, double alpha)
{
    ms_rotation_spectrum spectrum;
    ms_error err;
    ck_assert_int_eq(ms_rotation_spectrum_compute(rotation, n, &spectrum, &err), MS_OK);
    double *power = rr_zeros(n * n);
    ck_assert_int_eq(ms_rotation_power(&spectrum, alpha, power, &err), MS_OK);
    ms_rotation_spectrum_free(&spectrum);
    return power;
}

static void assert_orthogonal(const double *r, size_t n, double expected_determinant)
{
    double *gram = rr_zeros(n * n);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0, r, (int)n,
                r, (int)n, 0.0, gram, (int)n);
    for (size_t i = 0; i < n; i++)
        gram[i * n + i] -= 1.0;
    ck_assert_double_le(cblas_dnrm2((int)(n * n), gram, 1), TOLERANCE);
    if (expected_determinant != 0.0)
        ck_assert_double_le(fabs(rr_determinant(r, n) - expected_determinant), TOLERANCE);
    free(gram);
}

static void random_pair(test_rng *rng, size_t rows, size_t d, double **a, double **b)
{
    *a = rr_zeros(rows * d);
    *b = rr_zeros(rows * d);
    test_random_matrix(rng, rows, d, *a);
    test_random_matrix(rng, rows, d, *b);
}

/* Shapes with more neurons than inputs: the optimum is unique. */
static const size_t full_shapes[][2] = {{12, 5}, {40, 16}, {9, 9}, {30, 2}, {7, 1}};

START_TEST(test_rotation_matches_reference)
{
    test_rng rng;
    test_rng_seed(&rng, 100 + (uint64_t)_i);
    size_t rows = full_shapes[_i][0], d = full_shapes[_i][1];
    double *a, *b;
    random_pair(&rng, rows, d, &a, &b);
    for (int proper = 0; proper < 2; proper++) {
        double *ours = solve_full(rows, d, a, b, proper), *theirs = rr_zeros(d * d);
        rr_reference_rotation(rows, d, a, b, proper, theirs);
        ck_assert_double_le(rr_largest_difference(ours, theirs, d * d), TOLERANCE);
        assert_orthogonal(ours, d, proper ? 1.0 : 0.0);
        free(ours);
        free(theirs);
    }
    free(a);
    free(b);
}
END_TEST

static const double alphas[] = {0.0, 1.0, 2.0, 0.5, 1.7, -0.3, -2.0, 3.25};

START_TEST(test_power_matches_complex_reference)
{
    test_rng rng;
    test_rng_seed(&rng, 7);
    size_t rows = 30, d = 8;
    double *a, *b;
    random_pair(&rng, rows, d, &a, &b);
    double *rotation = solve_full(rows, d, a, b, true);
    double alpha = alphas[_i];
    double *ours = power_of(rotation, d, alpha), *theirs = rr_zeros(d * d);
    rr_reference_power(rotation, d, alpha, theirs);
    ck_assert_double_le(rr_largest_difference(ours, theirs, d * d), TOLERANCE);
    assert_orthogonal(ours, d, 1.0);
    free(rotation);
    free(ours);
    free(theirs);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_powers_add)
{
    test_rng rng;
    test_rng_seed(&rng, 11);
    size_t d = 10;
    double *a, *b;
    random_pair(&rng, 25, d, &a, &b);
    double *rotation = solve_full(25, d, a, b, true);
    double *first = power_of(rotation, d, 0.3), *second = power_of(rotation, d, 1.45);
    double *sum = power_of(rotation, d, 1.75), *product = rr_zeros(d * d);
    rr_multiply(first, second, product, d, d, d);
    ck_assert_double_le(rr_largest_difference(product, sum, d * d), TOLERANCE);
    /* integer powers are plain matrix powers, also for improper rotations */
    double *improper = solve_full(25, d, a, b, false), *square = rr_zeros(d * d);
    rr_multiply(improper, improper, square, d, d, d);
    double *power = power_of(improper, d, 2.0);
    ck_assert_double_le(rr_largest_difference(power, square, d * d), TOLERANCE);
    double *one = power_of(improper, d, 1.0);
    ck_assert_double_le(rr_largest_difference(one, improper, d * d), TOLERANCE);
    free(improper);
    free(square);
    free(power);
    free(one);
    free(rotation);
    free(first);
    free(second);
    free(sum);
    free(product);
    free(a);
    free(b);
}
END_TEST

/* A half turn in one plane and a quarter turn in another: R^0.5 must be a
 * rotation whose square is R, whatever plane the eigensolver offered. */
START_TEST(test_half_turn)
{
    size_t d = 5;
    test_rng rng;
    test_rng_seed(&rng, 5);
    double *basis = rr_zeros(d * d), *block = rr_zeros(d * d), *tmp = rr_zeros(d * d);
    double *rotation = rr_zeros(d * d);
    ck_assert_int_eq(test_random_orthonormal(&rng, d, d, basis), 0);
    if (rr_determinant(basis, d) < 0)
        for (size_t i = 0; i < d; i++)
            basis[i * d] = -basis[i * d];
    block[0 * d + 0] = block[1 * d + 1] = -1.0;
    block[2 * d + 2] = 0.0, block[2 * d + 3] = -1.0, block[3 * d + 2] = 1.0;
    block[4 * d + 4] = 1.0;
    rr_multiply(basis, block, tmp, d, d, d);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)d, (int)d, (int)d, 1.0, tmp, (int)d,
                basis, (int)d, 0.0, rotation, (int)d);
    double *root = power_of(rotation, d, 0.5), *square = rr_zeros(d * d);
    assert_orthogonal(root, d, 1.0);
    rr_multiply(root, root, square, d, d, d);
    ck_assert_double_le(rr_largest_difference(square, rotation, d * d), TOLERANCE);
    double *again = power_of(rotation, d, 0.5);
    ck_assert_double_le(rr_largest_difference(root, again, d * d), 0.0);
    /* the pure half turn -I_2 (+ identity) too */
    double minus[9] = {-1, 0, 0, 0, -1, 0, 0, 0, 1};
    double *third = power_of(minus, 3, 1.0 / 3.0), *cube = rr_zeros(9), *t2 = rr_zeros(9);
    rr_multiply(third, third, t2, 3, 3, 3);
    rr_multiply(t2, third, cube, 3, 3, 3);
    ck_assert_double_le(rr_largest_difference(cube, minus, 9), TOLERANCE);
    assert_orthogonal(third, 3, 1.0);
    free(third);
    free(cube);
    free(t2);
    free(basis);
    free(block);
    free(tmp);
    free(rotation);
    free(root);
    free(square);
    free(again);
}
END_TEST

/* Fewer neurons than inputs: the optimum is a set; ours is optimal,
 * orthogonal, the identity outside both inputs' rows, and at least as
 * close to the identity as the reference's arbitrary completion. */
START_TEST(test_low_rank_canonical)
{
    test_rng rng;
    test_rng_seed(&rng, 21 + (uint64_t)_i);
    size_t rows = 3, d = _i == 0 ? 10 : 6;   /* the subspace path, then the full-size completion */
    double *a, *b;
    random_pair(&rng, rows, d, &a, &b);
    for (int proper = 0; proper < 2; proper++) {
        double *ours = solve_full(rows, d, a, b, proper), *theirs = rr_zeros(d * d);
        rr_reference_rotation(rows, d, a, b, proper, theirs);
        assert_orthogonal(ours, d, proper ? 1.0 : 0.0);
        double *mapped_ours = rr_zeros(rows * d), *mapped_theirs = rr_zeros(rows * d);
        rr_multiply(a, ours, mapped_ours, rows, d, d);
        rr_multiply(a, theirs, mapped_theirs, rows, d, d);
        ck_assert_double_le(rr_largest_difference(mapped_ours, mapped_theirs, rows * d), TOLERANCE);
        double trace_ours = 0.0, trace_theirs = 0.0;
        for (size_t i = 0; i < d; i++)
            trace_ours += ours[i * d + i], trace_theirs += theirs[i * d + i];
        ck_assert_double_ge(trace_ours, trace_theirs - TOLERANCE);
        if (!proper) {
            double *canonical = rr_zeros(d * d);
            rr_reference_canonical(rows, d, a, b, canonical);
            ck_assert_double_le(rr_largest_difference(ours, canonical, d * d), TOLERANCE);
            free(canonical);
        }
        free(mapped_ours);
        free(mapped_theirs);
        free(ours);
        free(theirs);
    }
    if (_i == 0) {
        /* a direction outside every row is left alone */
        double *ours = solve_full(rows, d, a, b, true), *x = rr_zeros(d), *image = rr_zeros(d);
        test_random_matrix(&rng, 1, d, x);
        /* project x off span(rows of a and b) by least squares through QR */
        double *stack = rr_zeros(d * 2 * rows), *tau = rr_zeros(2 * rows);
        for (size_t i = 0; i < d; i++)
            for (size_t r = 0; r < rows; r++) {
                stack[i * 2 * rows + r] = a[r * d + i];
                stack[i * 2 * rows + rows + r] = b[r * d + i];
            }
        ck_assert_int_eq(LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (int)d, (int)(2 * rows), stack,
                                        (int)(2 * rows), tau), 0);
        ck_assert_int_eq(LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (int)d, (int)(2 * rows),
                                        (int)(2 * rows), stack, (int)(2 * rows), tau), 0);
        for (size_t c = 0; c < 2 * rows; c++) {
            double dot = 0.0;
            for (size_t i = 0; i < d; i++)
                dot += stack[i * 2 * rows + c] * x[i];
            for (size_t i = 0; i < d; i++)
                x[i] -= dot * stack[i * 2 * rows + c];
        }
        cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)d, (int)d, 1.0, ours, (int)d, x, 1, 0.0,
                    image, 1);
        ck_assert_double_le(rr_largest_difference(image, x, d), TOLERANCE);
        free(stack);
        free(tau);
        free(ours);
        free(x);
        free(image);
    }
    free(a);
    free(b);
}
END_TEST

START_TEST(test_degenerate_inputs)
{
    /* zero matrices: every rotation is optimal; the canonical one is I */
    size_t rows = 4, d = 3;
    double *a = rr_zeros(rows * d), *b = rr_zeros(rows * d);
    double *rotation = solve_full(rows, d, a, b, true);
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++)
            ck_assert_double_eq_tol(rotation[i * d + j], i == j ? 1.0 : 0.0, TOLERANCE);
    free(rotation);
    /* identical inputs: the identity again */
    test_rng rng;
    test_rng_seed(&rng, 3);
    test_random_matrix(&rng, rows, d, a);
    rotation = solve_full(rows, d, a, a, true);
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++)
            ck_assert_double_eq_tol(rotation[i * d + j], i == j ? 1.0 : 0.0, TOLERANCE);
    free(rotation);
    /* rank-deficient covariance: b = a with one column zeroed */
    memcpy(b, a, rows * d * sizeof(double));
    for (size_t r = 0; r < rows; r++)
        b[r * d + 1] = 0.0;
    rotation = solve_full(rows, d, a, b, true);
    assert_orthogonal(rotation, d, 1.0);
    double *reference = rr_zeros(d * d), *mine = rr_zeros(rows * d), *theirs = rr_zeros(rows * d);
    rr_reference_rotation(rows, d, a, b, false, reference);
    rr_multiply(a, rotation, mine, rows, d, d);
    rr_multiply(a, reference, theirs, rows, d, d);
    /* optimal: as close to b as the reference (which need not be proper) or closer than none */
    double ours_distance = 0.0, reference_distance = 0.0;
    for (size_t i = 0; i < rows * d; i++) {
        ours_distance += (mine[i] - b[i]) * (mine[i] - b[i]);
        reference_distance += (theirs[i] - b[i]) * (theirs[i] - b[i]);
    }
    ck_assert_double_le(ours_distance, reference_distance + TOLERANCE);
    /* the determinant sign of singular and reflected matrices */
    int sign;
    ms_error err;
    double singular[4] = {1, 2, 2, 4}, reflection[4] = {0, 1, 1, 0};
    ck_assert_int_eq(ms_rotation_determinant_sign(singular, 2, &sign, &err), MS_OK);
    ck_assert_int_eq(sign, 0);
    ck_assert_int_eq(ms_rotation_determinant_sign(reflection, 2, &sign, &err), MS_OK);
    ck_assert_int_eq(sign, -1);
    free(reference);
    free(mine);
    free(theirs);
    free(rotation);
    free(a);
    free(b);
}
END_TEST

static Suite *rotate_math_suite(void)
{
    Suite *suite = suite_create("rotate_math");
    TCase *cases = tcase_create("rotation");
    tcase_add_loop_test(cases, test_rotation_matches_reference, 0,
                        (int)(sizeof full_shapes / sizeof full_shapes[0]));
    tcase_add_loop_test(cases, test_power_matches_complex_reference, 0,
                        (int)(sizeof alphas / sizeof alphas[0]));
    tcase_add_test(cases, test_powers_add);
    tcase_add_test(cases, test_half_turn);
    tcase_add_loop_test(cases, test_low_rank_canonical, 0, 2);
    tcase_add_test(cases, test_degenerate_inputs);
    suite_add_tcase(suite, cases);
    return suite;
}

int main(void)
{
    return ms_test_run_suite(rotate_math_suite());
}
