/* The fast low-rank SVD against dgesdd of the formed product W = up @ down. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/linalg/lowrank.h"
#include "core/lora/resize.h"
#include "check_support.h"
#include "numerics_testutil.h"

typedef struct shape_case {
    size_t out, in;
    int rank, new_rank;
} shape_case;

static const shape_case shape_cases[] = {
    {40, 60, 8, 5},    /* plain linear */
    {60, 40, 8, 8},    /* tall, keep all */
    {5, 30, 8, 4},     /* out < r */
    {5, 30, 8, 5},     /* out < r, k = L */
    {30, 5, 8, 4},     /* in < r */
    {6, 7, 8, 6},      /* both sides smaller than r */
    {16, 288, 6, 6},   /* conv-like: in = 32 * 3 * 3 */
    {20, 30, 4, 7},    /* k > r: zero columns and completions */
    {10, 40, 3, 10},   /* k = L = out > r */
    {9, 12, 1, 1},     /* rank one */
    {9, 12, 1, 2},     /* rank one, k = r + 1 */
};

static double *make(size_t count)
{
    double *p = calloc(count ? count : 1, sizeof(double));
    ck_assert_ptr_nonnull(p);
    return p;
}

static void check_case(const shape_case *c, test_rng *rng)
{
    size_t out = c->out, in = c->in, r = (size_t)c->rank, k = (size_t)c->new_rank;
    size_t length = out < in ? out : in;
    size_t core = length < r ? length : r;
    double *up = make(out * r), *down = make(r * in), *w = make(out * in);
    double *s = make(r), *new_up = make(out * k), *new_down = make(k * in);
    double *full_s = make(length), *u = make(out * out), *vt = make(in * in);
    double *recon = make(out * in), *expect = make(out * in), *gram = make(k * k);

    test_random_matrix(rng, out, r, up);
    test_random_matrix(rng, r, in, down);
    test_matmul(up, down, out, r, in, w);
    ck_assert_int_eq(test_full_svd(w, out, in, full_s, u, vt), 0);

    ms_error err;
    ms_status status = ms_lowrank_svd(up, down, (int64_t)out, (int64_t)in, c->rank, s,
                                      c->new_rank, new_up, new_down, &err);
    ck_assert_msg(status == MS_OK, "%s", err.message);

    /* singular values: the nonzero spectrum of W, zeros past it */
    for (size_t i = 0; i < r; i++) {
        if (i < core)
            ck_assert_msg(fabs(s[i] - full_s[i]) <= 1e-10 * full_s[0],
                          "case %zux%zu r%d: S[%zu] %.17g vs %.17g", out, in, c->rank, i,
                          s[i], full_s[i]);
        else
            ck_assert_double_eq(s[i], 0.0);
    }
    for (size_t i = core; i < length; i++)
        ck_assert(full_s[i] <= 1e-12 * full_s[0]);

    /* new_up @ new_down equals the truncated full SVD */
    for (size_t row = 0; row < out; row++)
        for (size_t column = 0; column < in; column++) {
            double sum = 0.0;
            for (size_t i = 0; i < k && i < length; i++)
                sum += u[row * out + i] * full_s[i] * vt[i * in + column];
            expect[row * in + column] = sum;
        }
    test_matmul(new_up, new_down, out, k, in, recon);
    double norm = test_norm(w, out * in);
    ck_assert_msg(test_difference_norm(recon, expect, out * in) <= 1e-10 * norm,
                  "case %zux%zu r%d k%zu: reconstruction differs", out, in, c->rank, k);

    /* Eckart-Young: the discarded energy is the sum of discarded S^2 */
    double discarded = 0.0;
    for (size_t i = k; i < core; i++)
        discarded += s[i] * s[i];
    double residual = test_difference_norm(w, recon, out * in);
    ck_assert(fabs(residual * residual - discarded) <= 1e-9 * norm * norm);

    /* rows of new_down orthonormal, the completions included */
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < k; j++) {
            double dot = 0.0;
            for (size_t l = 0; l < in; l++)
                dot += new_down[i * in + l] * new_down[j * in + l];
            gram[i * k + j] = dot;
            ck_assert_msg(fabs(dot - (i == j ? 1.0 : 0.0)) <= 1e-12,
                          "case %zux%zu r%d k%zu: <v%zu, v%zu> = %g", out, in, c->rank, k,
                          i, j, dot);
        }
    /* columns of new_up past the nonzero spectrum are zero */
    for (size_t row = 0; row < out; row++)
        for (size_t i = core; i < k; i++)
            ck_assert_double_eq(new_up[row * k + i], 0.0);

    free(up); free(down); free(w); free(s); free(new_up); free(new_down);
    free(full_s); free(u); free(vt); free(recon); free(expect); free(gram);
}

START_TEST(test_random_shapes)
{
    test_rng rng;
    test_rng_seed(&rng, 42 + (uint64_t)_i);
    check_case(&shape_cases[_i], &rng);
}
END_TEST

/* up = U diag(s), down = V^T with orthonormal U, V: the spectrum comes back. */
START_TEST(test_known_spectrum)
{
    enum { out = 24, in = 50, r = 6 };
    static const double spectrum[r] = {10, 5, 2.5, 1, 0.5, 0.125};
    test_rng rng;
    test_rng_seed(&rng, 7);
    double u[out * r], v[in * r], up[out * r], down[r * in], s[r];
    ck_assert_int_eq(test_random_orthonormal(&rng, out, r, u), 0);
    ck_assert_int_eq(test_random_orthonormal(&rng, in, r, v), 0);
    for (int row = 0; row < out; row++)
        for (int i = 0; i < r; i++)
            up[row * r + i] = u[row * r + i] * spectrum[i];
    for (int i = 0; i < r; i++)
        for (int column = 0; column < in; column++)
            down[i * in + column] = v[column * r + i];
    ms_error err;
    ck_assert_int_eq(ms_lowrank_svd(up, down, out, in, r, s, 0, NULL, NULL, &err), MS_OK);
    for (int i = 0; i < r; i++)
        ck_assert_double_eq_tol(s[i], spectrum[i], 1e-12);
}
END_TEST

START_TEST(test_bad_arguments)
{
    double up[6] = {1, 2, 3, 4, 5, 6}, down[6] = {1, 0, 0, 0, 1, 0}, s[2];
    double new_up[3 * 4], new_down[4 * 3];
    ms_error err;
    /* k above min(out, in) = 3 */
    ck_assert_int_eq(ms_lowrank_svd(up, down, 3, 3, 2, s, 4, new_up, new_down, &err),
                     MS_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(ms_lowrank_svd(up, down, 3, 3, 2, s, 0, new_up, new_down, &err),
                     MS_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(ms_lowrank_svd(up, down, 3, 3, 0, s, 1, new_up, new_down, &err),
                     MS_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(ms_lowrank_svd(up, down, 0, 3, 2, s, 1, new_up, new_down, &err),
                     MS_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(ms_lowrank_svd(up, down, 3, 3, 2, s, 3, new_up, new_down, &err), MS_OK);
}
END_TEST

/* Finite factors whose product overflows (entries near 1e300): refused as
 * an overflow before the SVD, not left to come out as NaN. */
START_TEST(test_product_overflow)
{
    enum { OUT = 20, IN = 30, RANK = 4 };
    test_rng rng;
    test_rng_seed(&rng, 11);
    double up[OUT * RANK], down[RANK * IN], s[RANK];
    double new_up[OUT * 2], new_down[2 * IN];
    test_random_matrix(&rng, OUT, RANK, up);
    test_random_matrix(&rng, RANK, IN, down);
    for (size_t i = 0; i < OUT * RANK; i++)
        up[i] *= 1e300;
    for (size_t i = 0; i < RANK * IN; i++)
        down[i] *= 1e10;
    ms_error err;
    ck_assert_int_eq(ms_lowrank_svd(up, down, OUT, IN, RANK, s, 2, new_up, new_down, &err),
                     MS_ERR_NAN_DETECTED);
    ck_assert(strstr(err.message, "overflows") != NULL);
    ck_assert_str_eq(err.details[0].name, "reason");
    ck_assert_str_eq(err.details[0].value, "overflow");
    for (size_t i = 0; i < RANK * IN; i++)
        down[i] *= 1e-20;   /* 1e290 x 1e-10: large but finite */
    ck_assert_int_eq(ms_lowrank_svd(up, down, OUT, IN, RANK, s, 2, new_up, new_down, &err),
                     MS_OK);
    ck_assert(isfinite(s[0]) && s[0] > 1e285);
}
END_TEST

/* Which path ran, and does it still match dgesdd of the formed W. */
typedef enum up_kind {
    UP_RANDOM,        /* Gaussian: well conditioned */
    UP_GRADED,        /* singular values 1 .. 10^-decades, mixed by a rotation */
    UP_DUPLICATE,     /* two equal columns: rank-deficient */
    UP_ZERO,          /* all zeros */
    UP_TINY           /* Gaussian times 1e-160: the Gram matrix would underflow */
} up_kind;

typedef struct path_case {
    const char *label;
    up_kind kind;
    double decades;
    size_t out, in;
    int rank, new_rank, max_new_rank;
    ms_lowrank_method expected;
    double tolerance;  /* relative to |W| (or absolute when W = 0) */
} path_case;

static const path_case path_cases[] = {
    {"random", UP_RANDOM, 0, 50, 70, 12, 5, 12, MS_LOWRANK_CHOLESKY, 1e-10},
    {"random, k = r", UP_RANDOM, 0, 70, 50, 12, 12, 12, MS_LOWRANK_CHOLESKY, 1e-10},
    {"cond 1e3", UP_GRADED, 3, 60, 80, 10, 6, 10, MS_LOWRANK_CHOLESKY, 1e-9},
    {"cond 1e9", UP_GRADED, 9, 60, 80, 10, 6, 10, MS_LOWRANK_HOUSEHOLDER, 1e-10},
    {"rank-deficient", UP_DUPLICATE, 0, 40, 60, 8, 5, 8, MS_LOWRANK_HOUSEHOLDER, 1e-10},
    {"zero", UP_ZERO, 0, 30, 40, 8, 3, 8, MS_LOWRANK_HOUSEHOLDER, 1e-12},
    {"tiny", UP_TINY, 0, 30, 40, 8, 3, 8, MS_LOWRANK_HOUSEHOLDER, 1e-10},
    {"k may exceed r", UP_RANDOM, 0, 30, 40, 6, 4, 9, MS_LOWRANK_HOUSEHOLDER, 1e-10},
    {"out < r", UP_RANDOM, 0, 5, 40, 8, 4, 5, MS_LOWRANK_HOUSEHOLDER, 1e-10},
};

static void make_up(const path_case *c, test_rng *rng, double *up)
{
    size_t out = c->out, r = (size_t)c->rank;
    switch (c->kind) {
    case UP_RANDOM:
        test_random_matrix(rng, out, r, up);
        break;
    case UP_GRADED: {
        double *basis = make(out * r), *rotation = make(r * r);
        ck_assert_int_eq(test_random_orthonormal(rng, out, r, basis), 0);
        ck_assert_int_eq(test_random_orthonormal(rng, r, r, rotation), 0);
        for (size_t i = 0; i < r; i++) {
            double scale = pow(10.0, -c->decades * (double)i / (double)(r - 1));
            for (size_t row = 0; row < out; row++)
                basis[row * r + i] *= scale;
        }
        test_matmul(basis, rotation, out, r, r, up);
        free(basis);
        free(rotation);
        break;
    }
    case UP_DUPLICATE:
        test_random_matrix(rng, out, r, up);
        for (size_t row = 0; row < out; row++)
            up[row * r + 1] = up[row * r];
        break;
    case UP_ZERO:
        memset(up, 0, out * r * sizeof(double));
        break;
    case UP_TINY:
        test_random_matrix(rng, out, r, up);
        for (size_t i = 0; i < out * r; i++)
            up[i] *= 1e-160;
        break;
    }
}

START_TEST(test_paths)
{
    const path_case *c = &path_cases[_i];
    size_t out = c->out, in = c->in, r = (size_t)c->rank, k = (size_t)c->new_rank;
    size_t length = out < in ? out : in;
    test_rng rng;
    test_rng_seed(&rng, 1000 + (uint64_t)_i);
    double *up = make(out * r), *down = make(r * in), *w = make(out * in);
    double *full_s = make(length), *u = make(out * out), *vt = make(in * in);
    double *new_up = make(out * k), *new_down = make(k * in);
    double *recon = make(out * in), *expect = make(out * in);
    make_up(c, &rng, up);
    test_random_matrix(&rng, r, in, down);
    test_matmul(up, down, out, r, in, w);
    ck_assert_int_eq(test_full_svd(w, out, in, full_s, u, vt), 0);
    double norm = test_norm(w, out * in);
    double scale = norm > 0.0 ? norm : 1.0;

    ms_lowrank_factor factor;
    ms_error err;
    ms_status status = ms_lowrank_factor_init(&factor, up, down, (int64_t)out, (int64_t)in,
                                              c->rank, c->max_new_rank, &err);
    ck_assert_msg(status == MS_OK, "%s: %s", c->label, err.message);
    ck_assert_msg(factor.method == c->expected, "%s: method %d, expected %d", c->label,
                  (int)factor.method, (int)c->expected);
    for (int i = 0; i < factor.core_rank; i++)
        ck_assert_msg(fabs(factor.singular_values[i] - full_s[i]) <= c->tolerance * scale,
                      "%s: S[%d] %.17g vs %.17g", c->label, i, factor.singular_values[i],
                      full_s[i]);
    status = ms_lowrank_factor_truncate(&factor, c->new_rank, new_up, new_down, &err);
    ck_assert_msg(status == MS_OK, "%s: %s", c->label, err.message);
    ms_lowrank_factor_free(&factor);

    for (size_t row = 0; row < out; row++)
        for (size_t column = 0; column < in; column++) {
            double sum = 0.0;
            for (size_t i = 0; i < k; i++)
                sum += u[row * out + i] * full_s[i] * vt[i * in + column];
            expect[row * in + column] = sum;
        }
    test_matmul(new_up, new_down, out, k, in, recon);
    ck_assert_msg(test_difference_norm(recon, expect, out * in) <= c->tolerance * scale,
                  "%s: reconstruction differs by %g", c->label,
                  test_difference_norm(recon, expect, out * in) / scale);
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < k; j++) {
            double dot = 0.0;
            for (size_t l = 0; l < in; l++)
                dot += new_down[i * in + l] * new_down[j * in + l];
            ck_assert_msg(fabs(dot - (i == j ? 1.0 : 0.0)) <= c->tolerance,
                          "%s: <v%zu, v%zu> = %g", c->label, i, j, dot);
        }
    free(up); free(down); free(w); free(full_s); free(u); free(vt);
    free(new_up); free(new_down); free(recon); free(expect);
}
END_TEST

/* The Cholesky path refuses k > r (that needs the Householder completions). */
START_TEST(test_cholesky_rank_limit)
{
    enum { out = 20, in = 30, r = 4 };
    test_rng rng;
    test_rng_seed(&rng, 5);
    double up[out * r], down[r * in], new_up[out * (r + 1)], new_down[(r + 1) * in];
    test_random_matrix(&rng, out, r, up);
    test_random_matrix(&rng, r, in, down);
    ms_lowrank_factor factor;
    ms_error err;
    ck_assert_int_eq(ms_lowrank_factor_init(&factor, up, down, out, in, r, r, &err), MS_OK);
    ck_assert_int_eq(factor.method, MS_LOWRANK_CHOLESKY);
    ck_assert_int_ne(ms_lowrank_factor_truncate(&factor, r + 1, new_up, new_down, &err), MS_OK);
    ms_lowrank_factor_free(&factor);
}
END_TEST

static Suite *lowrank_suite(void)
{
    Suite *suite = suite_create("lowrank_svd");
    TCase *cases = tcase_create("fast path");
    tcase_add_loop_test(cases, test_random_shapes, 0,
                        (int)(sizeof shape_cases / sizeof shape_cases[0]));
    tcase_add_test(cases, test_known_spectrum);
    tcase_add_test(cases, test_bad_arguments);
    tcase_add_test(cases, test_product_overflow);
    tcase_add_loop_test(cases, test_paths, 0, (int)(sizeof path_cases / sizeof path_cases[0]));
    tcase_add_test(cases, test_cholesky_rank_limit);
    suite_add_tcase(suite, cases);
    return suite;
}

int main(void)
{
    return ms_test_run_suite(lowrank_suite());
}
