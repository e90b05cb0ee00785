/* The merge method table (core/merge): every sd-meh method against hand
 * computed answers and against plain references (tests/merge_methods_
 * reference.c) on random tensors of every dtype mix, tensors of several
 * chunks, the selection and sorting machinery, cancel, sink errors, the
 * declared scratch and the page-releasing operand reads. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/merge/method.h"
#include "core/merge/method_internal.h"
#include "check_support.h"
#include "merge_methods_fixture.h"

#define COUNT_OF(array) (sizeof(array) / sizeof((array)[0]))

static const char *const all_methods[] = {
    "weighted_sum", "weighted_subtraction", "tensor_sum", "add_difference", "sum_twice",
    "triple_sum", "euclidean_add_difference", "multiply_difference", "top_k_tensor_sum",
    "similarity_add_difference", "distribution_crossover", "ties_add_difference",
};

static bool three_models(const char *method)
{
    return ms_merge_method_find(method)->model_count == 3;
}

/* exact: bit for bit (zero signs included); else within tolerance * scale */
static bool exact_method(const char *method)
{
    return strcmp(method, "tensor_sum") == 0 || strcmp(method, "top_k_tensor_sum") == 0;
}

static void check_against_reference(mm_case *k, const char *method, const char *label)
{
    ms_error err;
    ms_status status = mm_run(k, method, &err);
    ck_assert_msg(status == MS_OK, "%s %s: %s", method, label, err.message);
    double *expected = malloc(k->count * sizeof *expected);
    ck_assert(expected != NULL);
    mm_reference(k, method, expected);
    double scale = mm_scale(k);
    double tolerance = 1e-12 * (scale > 1 ? scale : 1);
    /* plain loop, one assertion: Check's asserts cost a syscall each */
    uint64_t bad = k->count;
    for (uint64_t i = 0; i < k->count && bad == k->count; i++) {
        double got = k->out[i], want = expected[i];
        bool same = memcmp(&got, &want, sizeof got) == 0 || (isnan(got) && isnan(want));
        if (!exact_method(method))
            same = same || got == want ||
                   fabs(got - want) <= tolerance * (fabs(want) > 1 ? fabs(want) : 1);
        if (!same)
            bad = i;
    }
    ck_assert_msg(bad == k->count, "%s %s [%llu]: %.17g, want %.17g", method, label,
                  (unsigned long long)bad, bad < k->count ? k->out[bad] : 0.0,
                  bad < k->count ? expected[bad] : 0.0);
    free(expected);
}

static void set_values(mm_tensor *t, const double *values, uint64_t count)
{
    mm_tensor_set(t, values, count);
}

/* Runs a hand case: a, b, c (c may be NULL) as F64, expects want. */
static void check_hand(const char *method, size_t n, const double *a, const double *b,
                       const double *c, double alpha, double beta, const double *want)
{
    mm_case k;
    mm_case_init(&k, n, MS_DTYPE_F64, MS_DTYPE_F64, c != NULL ? MS_DTYPE_F64 : -1);
    set_values(&k.a, a, n);
    set_values(&k.b, b, n);
    if (c != NULL)
        set_values(&k.c, c, n);
    k.alpha = alpha;
    k.beta = beta;
    ms_error err;
    ck_assert_msg(mm_run(&k, method, &err) == MS_OK, "%s: %s", method, err.message);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg((isnan(want[i]) && isnan(k.out[i])) || k.out[i] == want[i] ||
                          fabs(k.out[i] - want[i]) <= 1e-12 * (fabs(want[i]) + 1),
                      "%s [%zu]: %.17g, want %.17g", method, i, k.out[i], want[i]);
    mm_case_free(&k);
}

START_TEST(test_table)
{
    static const struct {
        const char *name;
        int models;
        bool beta;
    } expected[] = {
        {"weighted_sum", 2, false},
        {"weighted_subtraction", 2, true},
        {"tensor_sum", 2, true},
        {"add_difference", 3, false},
        {"sum_twice", 3, true},
        {"triple_sum", 3, true},
        {"euclidean_add_difference", 3, false},
        {"multiply_difference", 3, true},
        {"top_k_tensor_sum", 2, true},
        {"similarity_add_difference", 3, true},
        {"distribution_crossover", 3, true},
        {"ties_add_difference", 3, true},
        {"rotate", 2, true},
    };
    size_t count = 0;
    const ms_merge_method *methods = ms_merge_methods(&count);
    ck_assert_uint_eq(count, COUNT_OF(expected));
    for (size_t i = 0; i < count; i++) {
        ck_assert_str_eq(methods[i].name, expected[i].name);
        ck_assert_int_eq(methods[i].model_count, expected[i].models);
        ck_assert_int_eq(methods[i].uses_beta, expected[i].beta);
        ck_assert(methods[i].merge != NULL && methods[i].scratch_bytes != NULL);
        ck_assert_ptr_eq(ms_merge_method_find(expected[i].name), &methods[i]);
    }
    ck_assert_ptr_null(ms_merge_method_find("Rotate"));
    ck_assert_ptr_null(ms_merge_method_find("Weighted_Sum"));
    ck_assert_ptr_null(ms_merge_method_find(""));
    ck_assert_ptr_null(ms_merge_method_find(NULL));
}
END_TEST

START_TEST(test_elementwise_by_hand)
{
    const double a[] = {1, 2, 4, 0}, b[] = {3, 6, 9, 0}, c[] = {0, 1, 10, 0};
    check_hand("weighted_sum", 2, a, b, NULL, 0.25, 0, (const double[]){1.5, 3});
    /* (a - αβ b) / (1 - αβ) */
    check_hand("weighted_subtraction", 2, a, b, NULL, 0.5, 0.5,
               (const double[]){(1 - 0.75) / 0.75, (2 - 1.5) / 0.75});
    check_hand("add_difference", 3, a, b, c, 0.5, 0, (const double[]){2.5, 4.5, 3.5});
    check_hand("sum_twice", 3, a, b, c, 0.5, 0.25,
               (const double[]){0.75 * 2 + 0, 0.75 * 4 + 0.25, 0.75 * 6.5 + 2.5});
    check_hand("triple_sum", 3, a, b, c, 0.25, 0.5,
               (const double[]){0.25 + 0.75, 0.5 + 1.5 + 0.5, 1 + 2.25 + 5});
    /* c + copysign(|a-c|^(1-α) |b-c|^α, (1-β)a + βb - c) */
    check_hand("multiply_difference", 2, (const double[]){4, 4}, (const double[]){9, 9},
               (const double[]){0, 10}, 0.5, 0.5,
               (const double[]){6, 10 - sqrt(6.0)});
    /* a = b = c = 0: 0/0 similarity is β; opposite signs: similarity 0 */
    check_hand("similarity_add_difference", 3, (const double[]){0, 2, 2},
               (const double[]){0, -2, 2}, (const double[]){0, 0, 1}, 0.5, 1,
               (const double[]){0, 1, 2});
}
END_TEST

/* α = β = 1: β - eps keeps it finite; other αβ = 1 divide by zero */
START_TEST(test_weighted_subtraction_guard)
{
    double beta = 1.0 - 1e-10;
    double want = (2 - beta * 1) / (1 - beta);
    check_hand("weighted_subtraction", 1, (const double[]){2}, (const double[]){1}, NULL, 1, 1,
               &want);
    check_hand("weighted_subtraction", 1, (const double[]){1}, (const double[]){0}, NULL, 2,
               0.5, (const double[]){INFINITY});
}
END_TEST

static void check_tensor_sum(int64_t rows, uint64_t count, int ndim, double alpha, double beta,
                             const int *from_b_rows)
{
    mm_case k;
    mm_case_init(&k, count, MS_DTYPE_F32, MS_DTYPE_F16, -1);
    k.ndim = ndim;
    k.shape[0] = rows;
    k.shape[1] = (int64_t)(count / (uint64_t)(rows > 0 ? rows : 1));
    double a[16], b[16];
    for (uint64_t i = 0; i < count; i++) {
        a[i] = (double)i + 1;
        b[i] = -(double)i - 1;
    }
    set_values(&k.a, a, count);
    set_values(&k.b, b, count);
    k.alpha = alpha;
    k.beta = beta;
    ms_error err;
    ck_assert_int_eq(mm_run(&k, "tensor_sum", &err), MS_OK);
    uint64_t row = count / (uint64_t)(ndim > 0 ? rows : 1);
    for (uint64_t i = 0; i < count; i++) {
        double want = from_b_rows[i / row] ? b[i] : a[i];
        ck_assert_msg(k.out[i] == want, "alpha %g beta %g [%llu]: %g, want %g", alpha, beta,
                      (unsigned long long)i, k.out[i], want);
    }
    mm_case_free(&k);
}

START_TEST(test_tensor_sum_rows)
{
    /* 4 rows of 2: α+β <= 1: rows [int(4β), int(4(α+β))) from B */
    check_tensor_sum(4, 8, 2, 0.5, 0.25, (const int[]){0, 1, 1, 0});
    /* α+β > 1: B, with rows [int(4(α+β-1)), int(4β)) from A */
    check_tensor_sum(4, 8, 2, 0.75, 0.5, (const int[]){1, 0, 1, 1});
    /* negative bounds slice from the end, as Python does: [-2, 3) = [2, 3) */
    check_tensor_sum(4, 8, 2, 1.25, -0.5, (const int[]){0, 0, 1, 0});
    /* past the end: clamped */
    check_tensor_sum(4, 8, 2, 5, 0.5, (const int[]){1, 1, 1, 1});
    /* a 0-d tensor is one row */
    check_tensor_sum(1, 1, 0, 0.5, 0.25, (const int[]){0});
    check_tensor_sum(1, 1, 0, 0.5, 0.5, (const int[]){1});

    mm_case k;
    mm_case_init(&k, 8, MS_DTYPE_F32, MS_DTYPE_F32, -1);
    k.ndim = 2;
    k.shape[0] = 3;
    ms_error err;
    ck_assert_int_eq(mm_run(&k, "tensor_sum", &err), MS_ERR_INVALID_PARAMETER);
    k.shape[0] = 0;
    ck_assert_int_eq(mm_run(&k, "tensor_sum", &err), MS_ERR_INVALID_PARAMETER);
    mm_case_free(&k);
}
END_TEST

START_TEST(test_euclidean_by_hand)
{
    /* da = [1, 0], db = [0, 1], d = sqrt(.5) [1, 1], |d| = 1, s = [1.5, 2], |s| = 2.5 */
    double d = sqrt(0.5) * 2.5;
    check_hand("euclidean_add_difference", 2, (const double[]){3, 0}, (const double[]){0, 4},
               (const double[]){0, 0}, 0.5, 0, (const double[]){d, d});
    /* the sign of s: a, b below c */
    check_hand("euclidean_add_difference", 2, (const double[]){-3, 0}, (const double[]){0, -4},
               (const double[]){0, 0}, 0.5, 0, (const double[]){-d, -d});
    /* a = b = c: |d| = 0, 0/0 is NaN as in sd-meh (the driver's NaN policy decides) */
    check_hand("euclidean_add_difference", 2, (const double[]){1, 2}, (const double[]){1, 2},
               (const double[]){1, 2}, 0.5, 0, (const double[]){NAN, NAN});
    /* b = c: db is 0/0 -> 0 */
    check_hand("euclidean_add_difference", 2, (const double[]){3, 4}, (const double[]){0, 0},
               (const double[]){0, 0}, 0.5, 0,
               (const double[]){3 / 5.0 * 2.5, 4 / 5.0 * 2.5});
}
END_TEST

START_TEST(test_ties_by_hand)
{
    /* k = int(0.5 * 4) = 2: kth |d_a| = 1, kth |d_b| = 1.  Element 0: the
     * signs cancel, nothing agrees, 0/0 -> 0; 1: both; 2: both; 3: zeros. */
    check_hand("ties_add_difference", 4, (const double[]){1, -2, 3, 0},
               (const double[]){-1, -1, 1, 0}, (const double[]){0, 0, 0, 0}, 1, 0.5,
               (const double[]){0, -1.5, 2, 0});
    /* k = int(0.75 * 4) = 3: kth = 0.5 for both; d_a[0] = 0.1 is dropped, then
     * element 1 (0.5 against -0.5) has no majority; α scales, c offsets */
    check_hand("ties_add_difference", 4, (const double[]){1.1, 1.5, 3, 1},
               (const double[]){1.2, 0.5, 1.5, 1}, (const double[]){1, 1, 1, 1}, 0.5, 0.25,
               (const double[]){1, 1, 1 + 0.5 * 1.25, 1});
    /* a == b == c */
    check_hand("ties_add_difference", 3, (const double[]){1, 2, 3}, (const double[]){1, 2, 3},
               (const double[]){1, 2, 3}, 1, 0.3, (const double[]){1, 2, 3});
    /* NaN in a: its kth is NaN, nothing kept; NaN*0 still poisons the sum,
     * which nan_to_num turns into 0 (torch.sign(NaN) is 0) */
    check_hand("ties_add_difference", 2, (const double[]){NAN, 1}, (const double[]){1, 1},
               (const double[]){0, 0}, 1, 0, (const double[]){0, 1});
    /* β > 1: k = 1 keeps everything; -1 against 3 has no majority */
    check_hand("ties_add_difference", 2, (const double[]){1, -1}, (const double[]){1, 3},
               (const double[]){0, 0}, 1, 2, (const double[]){1, 0});

    /* β < 0 asks for more than n: refused like torch's kthvalue */
    mm_case k;
    mm_case_init(&k, 4, MS_DTYPE_F16, MS_DTYPE_F16, MS_DTYPE_F16);
    k.beta = -0.5;
    ms_error err;
    ck_assert_int_eq(mm_run(&k, "ties_add_difference", &err), MS_ERR_INVALID_PARAMETER);
    ck_assert_uint_eq(k.calls, 0);
    mm_case_free(&k);
}
END_TEST

START_TEST(test_top_k_by_hand)
{
    const double a[] = {3, -1, 2, 0}, b[] = {10, 30, 20, 40};
    /* sorted a = [-1, 0, 2, 3]; B's ranks [0, 2, 1, 3] */
    check_hand("top_k_tensor_sum", 4, a, b, NULL, 1, 0, (const double[]){-1, 2, 0, 3});
    /* negative width: offset += width; band |v| <= 1 */
    check_hand("top_k_tensor_sum", 4, a, b, NULL, -0.5, 0.5, (const double[]){-1, -1, 0, 0});
    /* negative offset wraps (0.75), inverted band outside (0, 2] */
    check_hand("top_k_tensor_sum", 4, a, b, NULL, 0.5, -0.25, (const double[]){3, -1, 0, 3});
    /* start = round(0.5) = 0 (half to even; half up would give 1 and keep a[2]) */
    check_hand("top_k_tensor_sum", 4, a, b, NULL, 0.25, 0.125,
               (const double[]){-1, -1, 0, 0});
    /* ties in B keep position order: out = sorted a */
    check_hand("top_k_tensor_sum", 4, a, (const double[]){5, 5, 5, 5}, NULL, 1, 0,
               (const double[]){-1, 0, 2, 3});
    /* zero width: end = start = 0, both bounds -1, band empty: a unchanged */
    check_hand("top_k_tensor_sum", 4, a, b, NULL, 0, 0, a);
}
END_TEST

START_TEST(test_crossover_by_hand)
{
    /* p = argsort c = [3, 1, 2, 0]; y - x = [-3, -2, 4, 4]; bins f = [0, 0, 1];
     * only the Nyquist bin (-1) passes: g = -1/4 (-1)^j; z = x + g */
    check_hand("distribution_crossover", 4, (const double[]){1, 2, 3, 4},
               (const double[]){5, 0, 7, 1}, (const double[]){3, 1, 2, 0}, 0.5, 0,
               (const double[]){1.25, 2.25, 2.75, 3.75});
    /* β below eps, α = 0: every bin from B */
    check_hand("distribution_crossover", 5, (const double[]){1, 2, 3, 4, 5},
               (const double[]){-1, 7, 0.5, 2, 9}, (const double[]){0, 0, 0, 0, 0}, 0, 1e-11,
               (const double[]){-1, 7, 0.5, 2, 9});
    /* α past the last bin: every bin from A */
    check_hand("distribution_crossover", 5, (const double[]){1, 2, 3, 4, 5},
               (const double[]){-1, 7, 0.5, 2, 9}, (const double[]){5, 4, 3, 2, 1}, 1, 0,
               (const double[]){1, 2, 3, 4, 5});
    /* a 0-d tensor: α a + (1-α) b */
    mm_case k;
    mm_case_init(&k, 1, MS_DTYPE_F32, MS_DTYPE_F32, MS_DTYPE_F32);
    k.ndim = 0;
    set_values(&k.a, (const double[]){2}, 1);
    set_values(&k.b, (const double[]){4}, 1);
    k.alpha = 0.25;
    ms_error err;
    ck_assert_int_eq(mm_run(&k, "distribution_crossover", &err), MS_OK);
    ck_assert(k.out[0] == 3.5);
    mm_case_free(&k);
}
END_TEST

typedef struct dtype_mix {
    ms_dtype a, b, c;
    const char *label;
} dtype_mix;

static const dtype_mix mixes[] = {
    {MS_DTYPE_F16, MS_DTYPE_F16, MS_DTYPE_F16, "F16"},
    {MS_DTYPE_BF16, MS_DTYPE_BF16, MS_DTYPE_BF16, "BF16"},
    {MS_DTYPE_F32, MS_DTYPE_F32, MS_DTYPE_F32, "F32"},
    {MS_DTYPE_F64, MS_DTYPE_F64, MS_DTYPE_F64, "F64"},
    {MS_DTYPE_F16, MS_DTYPE_F32, MS_DTYPE_BF16, "F16/F32/BF16"},
    {MS_DTYPE_F32, MS_DTYPE_BF16, MS_DTYPE_F16, "F32/BF16/F16"},
    {MS_DTYPE_F64, MS_DTYPE_F16, MS_DTYPE_F32, "F64/F16/F32"},
};

static const double weight_pairs[][2] = {
    {0.5, 0.5}, {0.3, 0.2}, {0.8, 0.7}, {1.2, -0.3}, {-0.4, 0.9}, {0.1, 0.0},
};

/* random small tensors, every dtype mix, several weights, with zeros of both
 * signs and repeated values so the sorts meet ties */
START_TEST(test_random_against_reference)
{
    const char *method = all_methods[_i];
    static const uint64_t sizes[] = {1, 2, 7, 26, 64, 210, 257};
    for (size_t m = 0; m < COUNT_OF(mixes); m++) {
        for (size_t s = 0; s < COUNT_OF(sizes); s++) {
            for (size_t w = 0; w < COUNT_OF(weight_pairs); w++) {
                if (strcmp(method, "ties_add_difference") == 0 && weight_pairs[w][1] < 0)
                    continue;   /* refused, tested above */
                mm_case k;
                mm_case_init(&k, sizes[s], mixes[m].a, mixes[m].b,
                             three_models(method) ? (int)mixes[m].c : -1);
                mm_case_random(&k, 1000 * m + 10 * s + w, 5, 3);
                k.alpha = weight_pairs[w][0];
                k.beta = weight_pairs[w][1];
                char label[96];
                snprintf(label, sizeof label, "%s n=%zu a=%g b=%g", mixes[m].label,
                         (size_t)sizes[s], k.alpha, k.beta);
                check_against_reference(&k, method, label);
                mm_case_free(&k);
            }
        }
    }
}
END_TEST

/* several chunks: 2.3 chunks of F16 and of a mix; distribution_crossover on
 * 2^19 points (a radix-2 reference FFT) */
START_TEST(test_large_against_reference)
{
    const char *method = all_methods[_i];
    bool crossover = strcmp(method, "distribution_crossover") == 0;
    uint64_t n = crossover ? (UINT64_C(1) << 19) : 300001;
    const dtype_mix large_mixes[] = {mixes[0], mixes[4]};
    for (size_t m = 0; m < COUNT_OF(large_mixes); m++) {
        mm_case k;
        mm_case_init(&k, n, large_mixes[m].a, large_mixes[m].b,
                     three_models(method) ? (int)large_mixes[m].c : -1);
        mm_case_random(&k, 77 + m, 1001, 7);
        k.alpha = 0.35;
        k.beta = strcmp(method, "ties_add_difference") == 0 ? 0.6 : 0.3;
        if (strcmp(method, "tensor_sum") == 0) {
            k.ndim = 2;
            k.shape[0] = 23077;   /* rows of 13 */
            k.shape[1] = 13;
        }
        check_against_reference(&k, method, large_mixes[m].label);
        mm_case_free(&k);
    }
}
END_TEST

/* ties on 1.5M F32 values that share their top 16 bits: the radix selection
 * needs a second histogram level before it can collect */
START_TEST(test_ties_second_level)
{
    uint64_t n = 1500000;
    mm_case k;
    mm_case_init(&k, n, MS_DTYPE_F32, MS_DTYPE_F32, MS_DTYPE_F32);
    double *values = malloc(n * sizeof *values);
    ck_assert(values != NULL);
    for (uint64_t i = 0; i < n; i++)
        values[i] = 1 + (double)((i * 7919) % n) / (double)n / 32;   /* [1, 1 + 1/32) */
    set_values(&k.a, values, n);
    for (uint64_t i = 0; i < n; i++)
        values[i] = (i % 3 == 0 ? -1 : 1) * (1 + (double)((i * 104729) % n) / (double)n / 32);
    set_values(&k.b, values, n);
    memset(values, 0, n * sizeof *values);
    set_values(&k.c, values, n);
    free(values);
    k.alpha = 0.7;
    k.beta = 0.4;
    check_against_reference(&k, "ties_add_difference", "second level");
    mm_case_free(&k);
}
END_TEST

static int compare_u64(const void *left, const void *right)
{
    uint64_t l = *(const uint64_t *)left, r = *(const uint64_t *)right;
    return (l > r) - (l < r);
}

/* selection at every level: a tiny collect limit forces histograms of the
 * lower 16-bit groups, and all-equal values resolve all 64 bits */
START_TEST(test_select_levels)
{
    static const size_t limits[] = {0, 3, 40, 1u << 20};
    uint64_t n = 2000;
    mm_case k;
    mm_case_init(&k, n, MS_DTYPE_F64, MS_DTYPE_F32, -1);
    double *values = malloc(n * sizeof *values);
    uint64_t *sorted = malloc(n * sizeof *sorted);
    ck_assert(values != NULL && sorted != NULL);
    for (int pattern = 0; pattern < 3; pattern++) {
        for (uint64_t i = 0; i < n; i++) {
            double tail = (double)((i * 613) % 97) * 0x1p-40;    /* below the top 16 bits */
            values[i] = pattern == 0   ? 1.5 + tail
                        : pattern == 1 ? (i % 2 ? -1 : 1) * (2.0 + (double)(i % 13) * 0x1p-30)
                                       : 0.75;
        }
        set_values(&k.a, values, n);
        for (uint64_t i = 0; i < n; i++) {
            double magnitude = fabs(k.a.values[i]);
            memcpy(&sorted[i], &magnitude, sizeof magnitude);
        }
        qsort(sorted, n, sizeof *sorted, compare_u64);
        ms_merge_task task = {.key = "select", .count = n};
        task.a = (ms_merge_operand){k.a.bytes, k.a.dtype, false};
        for (size_t l = 0; l < COUNT_OF(limits); l++) {
            for (uint64_t rank = 1; rank <= n; rank += 199) {
                double kth = -1;
                ms_error err;
                ck_assert_int_eq(ms_merge_select_magnitude(&task, &task.a, NULL, rank,
                                                           limits[l], &kth, &err),
                                 MS_OK);
                double want;
                memcpy(&want, &sorted[rank - 1], sizeof want);
                ck_assert_msg(kth == want, "pattern %d limit %zu rank %llu: %.17g, want %.17g",
                              pattern, limits[l], (unsigned long long)rank, kth, want);
            }
        }
    }
    ms_merge_task task = {.key = "select", .count = n};
    task.a = (ms_merge_operand){k.a.bytes, k.a.dtype, false};
    double kth;
    ms_error err;
    ck_assert_int_eq(ms_merge_select_magnitude(&task, &task.a, NULL, 0, 8, &kth, &err),
                     MS_ERR_INTERNAL);
    ck_assert_int_eq(ms_merge_select_magnitude(&task, &task.a, NULL, n + 1, 8, &kth, &err),
                     MS_ERR_INTERNAL);
    free(values);
    free(sorted);
    mm_case_free(&k);
}
END_TEST

START_TEST(test_nth_and_sort)
{
    enum { N = 5000 };
    uint64_t *values = malloc(N * sizeof *values), *copy = malloc(N * sizeof *copy),
             *sorted = malloc(N * sizeof *sorted);
    ck_assert(values && copy && sorted);
    uint64_t state = 12345;
    for (int trial = 0; trial < 4; trial++) {
        for (size_t i = 0; i < N; i++) {
            state = state * UINT64_C(6364136223846793005) + 1442695040888963407u;
            values[i] = trial == 0   ? state
                        : trial == 1 ? state % 7                 /* many ties */
                        : trial == 2 ? (state >> 60) << 56       /* one varying byte */
                                     : UINT64_MAX - (uint64_t)i; /* descending */
        }
        memcpy(sorted, values, N * sizeof *values);
        qsort(sorted, N, sizeof *sorted, compare_u64);
        for (size_t index = 0; index < N; index += 311) {
            memcpy(copy, values, N * sizeof *values);
            ck_assert(ms_merge_nth_u64(copy, N, index) == sorted[index]);
        }
        memcpy(copy, values, N * sizeof *values);
        ck_assert(ms_merge_nth_u64(copy, N, N - 1) == sorted[N - 1]);
        memcpy(copy, values, N * sizeof *values);
        ms_merge_sort_u64(copy, N);
        ck_assert(memcmp(copy, sorted, N * sizeof *copy) == 0);
    }
    ms_merge_sort_u64(values, 0);
    ms_merge_sort_u64(values, 1);
    free(values);
    free(copy);
    free(sorted);
}
END_TEST

/* One pattern against another: keys order them as torch orders the values. */
static bool keys_agree(ms_dtype dtype, uint16_t bits, uint16_t other_bits)
{
    double value = dtype == MS_DTYPE_F16 ? ms_half_to_double(bits) : ms_bfloat16_to_double(bits);
    double other = dtype == MS_DTYPE_F16 ? ms_half_to_double(other_bits)
                                         : ms_bfloat16_to_double(other_bits);
    uint16_t key = ms_merge_key16(dtype, bits), other_key = ms_merge_key16(dtype, other_bits);
    double back = ms_merge_key16_value(dtype, key);
    if (isnan(value))
        return key == 0xffff && isnan(back) && (isnan(other) || other_key < key);
    bool ok = back == value && (ms_merge_key64(value) == ms_merge_key64(0.0)) == (value == 0) &&
              ms_merge_key64_value(ms_merge_key64(value)) == value;
    if (isnan(other))
        return ok && key < other_key;
    return ok && (value < other) == (key < other_key) && (value == other) == (key == other_key) &&
           (value < other) == (ms_merge_key32((float)value) < ms_merge_key32((float)other)) &&
           (value < other) == (ms_merge_key64(value) < ms_merge_key64(other));
}

/* keys order every F16/BF16 pattern like torch: -0 == +0, NaN on top */
START_TEST(test_keys)
{
    const ms_dtype dtypes[] = {MS_DTYPE_F16, MS_DTYPE_BF16};
    for (size_t d = 0; d < COUNT_OF(dtypes); d++) {
        uint32_t bad = 65536;
        for (uint32_t p = 0; p < 65536 && bad == 65536; p++)
            for (uint32_t step = 1; step < 65536 && bad == 65536; step = step * 7 + 3)
                if (!keys_agree(dtypes[d], (uint16_t)p, (uint16_t)(p + step)))
                    bad = p;
        ck_assert_msg(bad == 65536, "%s pattern %04x", ms_dtype_name(dtypes[d]), bad);
    }
    ck_assert_uint_eq(ms_merge_key16(MS_DTYPE_F16, 0x8000), MS_MERGE_KEY16_ZERO);
    ck_assert_uint_eq(ms_merge_key32(-0.0f), ms_merge_key32(0.0f));
    ck_assert_uint_eq(ms_merge_key32(NAN), UINT32_MAX);
    ck_assert(ms_merge_key32(INFINITY) < UINT32_MAX);
    ck_assert(ms_merge_key64(INFINITY) < ms_merge_key64(NAN));
    ck_assert(ms_merge_key64(-INFINITY) < ms_merge_key64(-1e308));
    ck_assert(isnan(ms_merge_key64_value(UINT64_MAX)));
}
END_TEST

/* C's counting-sort order: replayed after a rewind it is the same stable
 * order (checked against a plain insertion of every element); a C whose
 * bytes change under it (a rewritten file) is refused as input_changed:
 * at once where a position would pass the tensor, else when the pass ends
 * with a key's range overrun or left short. */
START_TEST(test_order_replay_and_change)
{
    enum { N = 3 * MS_MERGE_CHUNK_ELEMENTS / 2 + 7 };
    const ms_dtype dtypes[] = {MS_DTYPE_F16, MS_DTYPE_BF16};
    for (size_t d = 0; d < COUNT_OF(dtypes); d++) {
        uint16_t *patterns = malloc(N * sizeof *patterns);
        uint32_t *positions = malloc(N * sizeof *positions), *again = malloc(N * sizeof *again);
        uint32_t *seen = calloc(65536, sizeof *seen), *below = calloc(65537, sizeof *below);
        ck_assert(patterns && positions && again && seen && below);
        uint64_t state = 12345;
        for (size_t i = 0; i < N; i++) {
            state = state * 6364136223846793005u + 1442695040888963407u;
            /* a narrow spread, so that keys repeat; zeros of both signs, a NaN */
            patterns[i] = (uint16_t)((state >> 33) % 512 + ((state >> 20) & 1 ? 0xa000u : 0x2000u));
            if (i % 97 == 0)
                patterns[i] = (i % 194 == 0) ? 0x8000u : 0x0000u;
            if (i == 5)
                patterns[i] = dtypes[d] == MS_DTYPE_F16 ? 0x7e00u : 0x7fc1u;
        }
        /* expected: elements of smaller keys, then earlier ones of the same key */
        for (size_t i = 0; i < N; i++)
            below[ms_merge_key16(dtypes[d], patterns[i]) + 1]++;
        for (size_t key = 0; key < 65536; key++)
            below[key + 1] += below[key];
        ms_merge_task task = {.key = "c", .count = N, .ndim = 1};
        task.c = (ms_merge_operand){(const unsigned char *)patterns, dtypes[d], false};
        ms_merge_order order;
        ms_error err;
        ck_assert_int_eq(ms_merge_order_build(&task, &task.c, &order, &err), MS_OK);
        for (int pass = 0; pass < 2; pass++) {
            uint32_t *target = pass == 0 ? positions : again;
            for (uint64_t start = 0; start < N; start += MS_MERGE_CHUNK_ELEMENTS) {
                size_t count = ms_merge_chunk_length(&task, start);
                ck_assert_int_eq(ms_merge_order_positions(&task, &order, start, count,
                                                          target + start, &err), MS_OK);
            }
            ms_merge_order_rewind(&order);
        }
        for (size_t i = 0; i < N; i++) {
            uint16_t key = ms_merge_key16(dtypes[d], patterns[i]);
            ck_assert_uint_eq(positions[i], below[key] + seen[key]++);
        }
        ck_assert(memcmp(positions, again, N * sizeof *positions) == 0);
        /* every element now equal to the first: its key's range overflows,
         * past the tensor's end; then every element -Inf, a key below all
         * (its range empty, at 0): no position passes the end, the ranges
         * are found misused when the pass ends */
        const uint16_t minus_infinity = dtypes[d] == MS_DTYPE_F16 ? 0xfc00u : 0xff80u;
        for (int change = 0; change < 2; change++) {
            for (size_t i = 1; i < N; i++)
                patterns[i] = patterns[0];
            if (change == 1)
                for (size_t i = 0; i < N; i++)
                    patterns[i] = minus_infinity;
            ms_merge_order_rewind(&order);
            ms_status status = MS_OK;
            uint64_t start = 0;
            for (; status == MS_OK && start < N; start += MS_MERGE_CHUNK_ELEMENTS)
                status = ms_merge_order_positions(&task, &order, start,
                                                  ms_merge_chunk_length(&task, start),
                                                  positions, &err);
            ck_assert_int_eq(status, MS_ERR_IO);
            /* -Inf: only the last chunk could tell */
            if (change == 1)
                ck_assert_uint_ge(start, N);
            ck_assert_str_eq(err.key, "c");
            ck_assert_ptr_nonnull(strstr(err.message, "changed while it was merged"));
        }
        ms_merge_order_free(&order);
        free(patterns);
        free(positions);
        free(again);
        free(seen);
        free(below);
    }
}
END_TEST

START_TEST(test_cancel_before_start)
{
    const char *method = all_methods[_i];
    mm_case k;
    mm_case_init(&k, 1000, MS_DTYPE_F16, MS_DTYPE_F32, three_models(method) ? MS_DTYPE_F16 : -1);
    mm_case_random(&k, 5, 0, 0);
    atomic_store(&k.cancel, 1);
    ms_error err;
    ck_assert_int_eq(mm_run(&k, method, &err), MS_ERR_CANCELLED);
    ck_assert_uint_eq(k.calls, 0);
    mm_case_free(&k);
}
END_TEST

/* a sink error stops the method at once and comes back with the key */
START_TEST(test_sink_error)
{
    const char *method = all_methods[_i];
    mm_case k;
    uint64_t n = 2 * MS_MERGE_CHUNK_ELEMENTS + 5;
    mm_case_init(&k, n, MS_DTYPE_F16, MS_DTYPE_F16, three_models(method) ? MS_DTYPE_F16 : -1);
    mm_case_random(&k, 9, 0, 0);
    k.fail_at_call = 2;
    ms_error err;
    ck_assert_int_eq(mm_run(&k, method, &err), MS_ERR_IO);
    ck_assert_uint_eq(k.calls, 2);
    mm_case_free(&k);
}
END_TEST

START_TEST(test_weights_and_empty)
{
    const char *method = all_methods[_i];
    mm_case k;
    mm_case_init(&k, 4, MS_DTYPE_F32, MS_DTYPE_F32, three_models(method) ? MS_DTYPE_F32 : -1);
    ms_error err;
    k.alpha = NAN;
    ck_assert_int_eq(mm_run(&k, method, &err), MS_ERR_INVALID_PARAMETER);
    ck_assert_str_eq(err.details[0].value, "alpha");
    k.alpha = 0.5;
    k.beta = INFINITY;
    ck_assert_int_eq(mm_run(&k, method, &err), MS_ERR_INVALID_PARAMETER);
    ck_assert_str_eq(err.details[0].value, "beta");
    k.beta = 0.5;
    k.count = 0;
    k.shape[0] = 0;
    ck_assert_int_eq(mm_run(&k, method, &err), MS_OK);
    ck_assert_uint_eq(k.calls, 0);
    mm_case_free(&k);
}
END_TEST

static uint64_t scratch_of(const char *method, uint64_t count, ms_dtype dtype)
{
    ms_merge_task task;
    memset(&task, 0, sizeof task);
    task.count = count;
    task.ndim = 2;
    int64_t shape[2] = {(int64_t)count, 1};
    task.shape = shape;
    task.a = task.b = (ms_merge_operand){NULL, dtype, false};
    if (three_models(method))
        task.c = (ms_merge_operand){(const unsigned char *)"", dtype, false};
    return ms_merge_method_find(method)->scratch_bytes(&task);
}

/* the OpenCLIP token embedding of SDXL: what each method declares */
START_TEST(test_scratch_bounds)
{
    const uint64_t n = 63238400, mib = 1 << 20;
    for (size_t m = 0; m < COUNT_OF(all_methods); m++) {
        const char *method = all_methods[m];
        uint64_t f16 = scratch_of(method, n, MS_DTYPE_F16);
        uint64_t bound = 5 * mib;   /* chunk buffers */
        if (strcmp(method, "ties_add_difference") == 0)
            bound = 12 * mib;       /* + a histogram and the 8 MiB collect buffer */
        else if (strcmp(method, "top_k_tensor_sum") == 0)
            bound = n / 8 + 6 * mib;    /* + the zero-sign bitset at worst */
        else if (strcmp(method, "distribution_crossover") == 0)
            bound = (n + 2) * 8 + 7 * mib;  /* + the one FFT buffer */
        ck_assert_msg(f16 <= bound && f16 > 0, "%s declares %llu for F16", method,
                      (unsigned long long)f16);
        /* small tensors hold small buffers */
        ck_assert_msg(scratch_of(method, 10, MS_DTYPE_F16) < 3 * mib, "%s small", method);
    }
    /* F32 sorts hold ranks and the sort pairs: declared, 12n at most */
    uint64_t crossover32 = scratch_of("distribution_crossover", n, MS_DTYPE_F32);
    ck_assert(crossover32 >= 12 * n && crossover32 <= 12 * n + 8 * mib);
    uint64_t top_k32 = scratch_of("top_k_tensor_sum", n, MS_DTYPE_F32);
    ck_assert(top_k32 >= 12 * n && top_k32 <= 12 * n + 16 * mib);
    ck_assert(scratch_of("top_k_tensor_sum", n, MS_DTYPE_F64) >= 20 * n);
}
END_TEST

/* operands in a real read-only file mapping: release_pages drops pages as
 * it goes and the data stays right; a file cut short is io_error, not SIGBUS */
START_TEST(test_operand_file_mapping)
{
    char *dir = ms_test_make_temp_dir("methods");
    ck_assert(dir != NULL);
    char path[512];
    snprintf(path, sizeof path, "%s/operand.bin", dir);
    enum { N = 3 * MS_MERGE_CHUNK_ELEMENTS + 11, OFFSET = 6 };
    size_t bytes_size = OFFSET + 2 * (size_t)N;
    unsigned char *bytes = calloc(bytes_size, 1);
    double *values = malloc(N * sizeof *values), *read = malloc(N * sizeof *read);
    ck_assert(bytes && values && read);
    for (size_t i = 0; i < N; i++)
        values[i] = (double)(i % 2048) - 1024;
    ms_dtype_from_double(MS_DTYPE_F16, values, bytes + OFFSET, N);
    FILE *file = fopen(path, "wb");
    ck_assert(file != NULL);
    ck_assert_uint_eq(fwrite(bytes, 1, bytes_size, file), bytes_size);
    ck_assert_int_eq(fclose(file), 0);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    unsigned char *map = mmap(NULL, bytes_size, PROT_READ, MAP_SHARED, fd, 0);
    ck_assert(map != MAP_FAILED);
    ms_merge_operand operand = {map + OFFSET, MS_DTYPE_F16, true};
    ms_error err;
    for (int pass = 0; pass < 2; pass++) {
        for (uint64_t start = 0; start < N; start += 1000) {
            size_t count = N - start < 1000 ? (size_t)(N - start) : 1000;
            ck_assert_int_eq(ms_merge_operand_read(&operand, start, count, read + start, &err),
                             MS_OK);
        }
        size_t bad = N;
        for (size_t i = 0; i < N && bad == N; i++)
            if (read[i] != values[i])
                bad = i;
        ck_assert_uint_eq(bad, N);
    }
    ck_assert_int_eq(ftruncate(fd, 4096), 0);
    ck_assert_int_eq(ms_merge_operand_read(&operand, N - 100, 100, read, &err), MS_ERR_IO);
    ck_assert_str_eq(err.details[0].value, "file_shrank");
    /* an operand that is not a float type */
    ms_merge_operand integers = {bytes, MS_DTYPE_I32, false};
    ck_assert_int_eq(ms_merge_operand_read(&integers, 0, 1, read, &err),
                     MS_ERR_UNSUPPORTED_DTYPE);
    munmap(map, bytes_size);
    close(fd);
    free(bytes);
    free(values);
    free(read);
    ck_assert_int_eq(ms_test_remove_tree(dir), 0);
    free(dir);
}
END_TEST

/* A crossover-shaped filter: a ramp over the bins. */
static void ramp_filter(const void *context, size_t first, size_t stride, size_t count,
                        size_t bins, double *factors)
{
    (void)context;
    for (size_t i = 0; i < count; i++) {
        double f = ((double)(first + stride * i) / (double)bins - 0.4) / 0.3 + 0.5;
        factors[i] = f < 0 ? 0.0 : f > 1 ? 1.0 : f;
    }
}

static void fill_random(double *values, size_t n, uint64_t seed)
{
    uint64_t state = seed;
    for (size_t i = 0; i < n; i++) {
        state = state * 6364136223846793005u + 1442695040888963407u;
        values[i] = (double)(state >> 11) * 0x1p-53 - 0.5;
    }
}

static void check_close(const double *expected, const double *got, size_t n, const char *what)
{
    double largest = 0;
    for (size_t i = 0; i < n; i++)
        largest = fmax(largest, fabs(expected[i]));
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabs(expected[i] - got[i]) <= 1e-12 * largest * log2((double)n),
                      "%s, n %zu, element %zu: %.17g vs %.17g", what, n, i, expected[i], got[i]);
}

/* The packed transform (used past MS_MERGE_FFT_DIRECT_POINTS) gives what
 * FFTW's own r2c/c2r gives, as one complex transform (rows 1) and split
 * four-step (rows > 1), on sizes that are powers of two, smooth, and with a
 * large prime factor (SDXL's token embedding has 193); its plans, kept by
 * size and alignment, give the same again on another buffer of the same
 * size, aligned alike or not; shared among threads, the split gives the
 * same bit for bit. */
START_TEST(test_fft_packed_matches_direct)
{
    const struct {
        size_t n, rows;
    } cases[] = {{1u << 15, 1}, {1u << 15, 128}, {30030, 1}, {30030, 105},
                 {2 * 193 * 50, 1}, {2 * 193 * 50, 50}, {12, 1}, {12, 2}, {384, 3},
                 {2 * 4 * 1031, 4}};
    ms_merge_task task = {.key = "fft"};
    for (size_t s = 0; s < sizeof cases / sizeof cases[0]; s++) {
        size_t n = cases[s].n, rows = cases[s].rows;
        double *direct = malloc((n + 2) * sizeof *direct);
        double *packed = malloc((n + 2) * sizeof *packed);
        double *again = malloc((n + 2) * sizeof *again);
        double *shifted = malloc((n + 3) * sizeof *shifted);   /* one double off */
        double *direct_input = malloc(n * sizeof *direct_input);
        ck_assert_ptr_nonnull(direct_input);
        ck_assert_ptr_nonnull(direct);
        ck_assert_ptr_nonnull(packed);
        ck_assert_ptr_nonnull(again);
        ck_assert_ptr_nonnull(shifted);
        fill_random(direct, n, 99 + n);
        memcpy(direct_input, direct, n * sizeof *direct_input);
        memcpy(packed, direct, n * sizeof *packed);
        memcpy(again, direct, n * sizeof *again);
        memcpy(shifted + 1, direct, n * sizeof *shifted);
        ms_error err;
        ck_assert_int_eq(ms_merge_fft_filter(&task, direct, n, ramp_filter, NULL, &err), MS_OK);
        ck_assert_int_eq(
            ms_merge_fft_filter_packed(&task, packed, n, rows, ramp_filter, NULL, &err), MS_OK);
        check_close(direct, packed, n, rows == 1 ? "packed" : "packed, split");
        ck_assert_int_eq(
            ms_merge_fft_filter_packed(&task, again, n, rows, ramp_filter, NULL, &err), MS_OK);
        ck_assert_msg(memcmp(again, packed, n * sizeof *packed) == 0,
                      "n %zu, rows %zu: the kept plans gave another answer", n, rows);
        /* shared among threads (a tensor that runs alone), bit for bit */
        for (int threads = 2; threads <= 3; threads++) {
            ms_merge_task shared = {.key = "fft", .threads = threads};
            memcpy(again, direct_input, n * sizeof *again);
            ck_assert_int_eq(ms_merge_fft_filter_packed(&shared, again, n, rows, ramp_filter,
                                                        NULL, &err),
                             MS_OK);
            ck_assert_msg(memcmp(again, packed, n * sizeof *packed) == 0,
                          "n %zu, rows %zu, %d threads: another answer", n, rows, threads);
        }
        ck_assert_int_eq(
            ms_merge_fft_filter_packed(&task, shifted + 1, n, rows, ramp_filter, NULL, &err),
            MS_OK);
        check_close(direct, shifted + 1, n, "packed, buffer one double off");
        free(direct);
        free(packed);
        free(again);
        free(shifted);
        free(direct_input);
    }
    /* odd sizes cannot be packed, nor rows that do not divide n/2 */
    double odd[12 + 2] = {0};
    ms_error err;
    ck_assert_int_eq(ms_merge_fft_filter_packed(&task, odd, 7, 1, ramp_filter, NULL, &err),
                     MS_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(ms_merge_fft_filter_packed(&task, odd, 12, 4, ramp_filter, NULL, &err),
                     MS_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(ms_merge_fft_filter_packed(&task, odd, 12, 0, ramp_filter, NULL, &err),
                     MS_ERR_INVALID_PARAMETER);
}
END_TEST

/* A large block is a mapping of its own, returned to the system by free(),
 * also after a large free has raised glibc's dynamic mmap threshold: the
 * block then came from an arena, where its huge-page advice stayed after
 * free() and small allocations later placed there faulted in 2 MiB pages
 * that were never given back. */
START_TEST(test_large_block_returned)
{
#if MS_MERGE_GLIBC_MALLOC
    size_t raise_bytes = 16u << 20;
    unsigned char *raise_threshold = malloc(raise_bytes);
    ck_assert(raise_threshold != NULL);
    memset(raise_threshold, 1, raise_bytes);
    free(raise_threshold);   /* glibc's threshold is 16 MiB now */
    size_t count = (4u << 20) / sizeof(double);
    double *block = ms_merge_large_doubles(count);
    ck_assert(block != NULL);
    ck_assert_uint_eq((uintptr_t)block % (2u << 20), 0);
    for (size_t i = 0; i < count; i += 512)
        block[i] = (double)i;
    /* an address the compiler does not follow: it is asked about after free() */
    volatile uintptr_t middle = (uintptr_t)(block + count / 2);
    unsigned char resident = 0;
    ck_assert_int_eq(mincore((void *)middle, 4096, &resident), 0);
    free(block);
    errno = 0;
    ck_assert_int_eq(mincore((void *)middle, 4096, &resident), -1);   /* no longer mapped */
    ck_assert_int_eq(errno, ENOMEM);
#endif
}
END_TEST

static Suite *methods_suite(void)
{
    Suite *suite = suite_create("merge_methods");
    TCase *basics = tcase_create("by_hand");
    tcase_add_test(basics, test_table);
    tcase_add_test(basics, test_elementwise_by_hand);
    tcase_add_test(basics, test_weighted_subtraction_guard);
    tcase_add_test(basics, test_tensor_sum_rows);
    tcase_add_test(basics, test_euclidean_by_hand);
    tcase_add_test(basics, test_ties_by_hand);
    tcase_add_test(basics, test_top_k_by_hand);
    tcase_add_test(basics, test_crossover_by_hand);
    tcase_add_test(basics, test_keys);
    tcase_add_test(basics, test_order_replay_and_change);
    tcase_add_test(basics, test_nth_and_sort);
    tcase_add_test(basics, test_select_levels);
    tcase_add_test(basics, test_scratch_bounds);
    tcase_add_test(basics, test_operand_file_mapping);
    tcase_add_test(basics, test_large_block_returned);
    tcase_add_loop_test(basics, test_cancel_before_start, 0, COUNT_OF(all_methods));
    tcase_add_loop_test(basics, test_sink_error, 0, COUNT_OF(all_methods));
    tcase_add_loop_test(basics, test_weights_and_empty, 0, COUNT_OF(all_methods));
    suite_add_tcase(suite, basics);

    TCase *reference = tcase_create("reference");
    tcase_set_timeout(reference, 600);
    tcase_add_loop_test(reference, test_random_against_reference, 0, COUNT_OF(all_methods));
    tcase_add_loop_test(reference, test_large_against_reference, 0, COUNT_OF(all_methods));
    tcase_add_test(reference, test_ties_second_level);
    tcase_add_test(reference, test_fft_packed_matches_direct);
    suite_add_tcase(suite, reference);
    return suite;
}

int main(void)
{
    return ms_test_run_suite(methods_suite());
}
