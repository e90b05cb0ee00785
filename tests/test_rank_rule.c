/* Rank rules against hand-computed spectra, every boundary of kohya's
 * index_sv_ratio / index_sv_cumulative / index_sv_fro / rank_resize. */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "core/lora/resize.h"
#include "check_support.h"

#define COUNT_OF(array) (sizeof(array) / sizeof((array)[0]))

/* Cumulative fractions .5, .75, .875, 1: exact in double. */
static const double spectrum_4211[] = {4, 2, 1, 1};
/* Squares 4,4,4,1,1,1,1 (sum 16): fractions .25, .5, .75, .8125, ... */
static const double spectrum_2221111[] = {2, 2, 2, 1, 1, 1, 1};

static int rank_of(const double *s, size_t count, size_t padded, ms_dynamic_method method,
                   double param, int cap)
{
    ms_rank_choice choice;
    ms_rank_rule(s, count, padded, method, param, cap, &choice);
    return choice.rank;
}

START_TEST(test_fixed)
{
    ms_rank_choice choice;
    ms_rank_rule(spectrum_4211, 4, 8, MS_DYNAMIC_NONE, 0.0, 3, &choice);
    ck_assert_int_eq(choice.rank, 3);
    ck_assert_double_eq_tol(choice.sum_retained, 7.0 / 8.0, 1e-15);
    ck_assert_double_eq_tol(choice.fro_retained, sqrt(21.0 / 22.0), 1e-15);
    ck_assert_double_eq_tol(choice.max_ratio, 4.0, 1e-15);
    /* cap above the old rank but within L: the padded zeros are kept */
    ms_rank_rule(spectrum_4211, 4, 8, MS_DYNAMIC_NONE, 0.0, 6, &choice);
    ck_assert_int_eq(choice.rank, 6);
    ck_assert_double_eq_tol(choice.fro_retained, 1.0, 1e-15);
    ck_assert(isinf(choice.max_ratio) && choice.max_ratio > 0);
    /* cap above L = min(out, in): clamped to L */
    ck_assert_int_eq(rank_of(spectrum_4211, 4, 4, MS_DYNAMIC_NONE, 0.0, 10), 4);
    ck_assert_int_eq(rank_of(spectrum_4211, 4, 2, MS_DYNAMIC_NONE, 0.0, 10), 2);
    /* rank 1 */
    ms_rank_rule(spectrum_4211, 4, 8, MS_DYNAMIC_NONE, 0.0, 1, &choice);
    ck_assert_int_eq(choice.rank, 1);
    ck_assert_double_eq_tol(choice.sum_retained, 0.5, 1e-15);
    ck_assert_double_eq_tol(choice.max_ratio, 1.0, 1e-15);
}
END_TEST

START_TEST(test_sv_ratio_strict)
{
    /* threshold S[0]/p = 2: only 4 > 2, so count 1, k = 2 */
    ck_assert_int_eq(rank_of(spectrum_4211, 4, 8, MS_DYNAMIC_SV_RATIO, 2.0, 8), 2);
    /* threshold 1: the ones are not strictly greater, k = 3 */
    ck_assert_int_eq(rank_of(spectrum_4211, 4, 8, MS_DYNAMIC_SV_RATIO, 4.0, 8), 3);
    /* threshold just below 1: all four count, k = 5 = r_old + 1 */
    ms_rank_choice choice;
    ms_rank_rule(spectrum_4211, 4, 8, MS_DYNAMIC_SV_RATIO, nextafter(4.0, 5.0), 8, &choice);
    ck_assert_int_eq(choice.rank, 5);
    ck_assert(isinf(choice.max_ratio));
    ck_assert_double_eq_tol(choice.sum_retained, 1.0, 1e-15);
    /* threshold just above 2: k = 2 still */
    ck_assert_int_eq(rank_of(spectrum_4211, 4, 8, MS_DYNAMIC_SV_RATIO, nextafter(2.0, 0.0), 8), 2);
    /* threshold just below 2: the 2 counts */
    ck_assert_int_eq(rank_of(spectrum_4211, 4, 8, MS_DYNAMIC_SV_RATIO, nextafter(2.0, 3.0), 8), 3);
}
END_TEST

START_TEST(test_clamp_to_padded_length)
{
    /* count 4 clamped to L - 1 = 3, then + 1 = 4 */
    ck_assert_int_eq(rank_of(spectrum_4211, 4, 4, MS_DYNAMIC_SV_RATIO, 1000.0, 8), 4);
    ck_assert_int_eq(rank_of(spectrum_4211, 4, 4, MS_DYNAMIC_SV_CUMULATIVE, 1.0, 8), 4);
    /* L = 5: cumulative 1.0 hits index 3, k = 5 (the padded zero) */
    ck_assert_int_eq(rank_of(spectrum_4211, 4, 5, MS_DYNAMIC_SV_CUMULATIVE, 1.0, 8), 5);
    /* L = 1: Python's max(1, min(i, 0)) = 1, k = 2, then clamped to L = 1 */
    static const double single[] = {3};
    ck_assert_int_eq(rank_of(single, 1, 1, MS_DYNAMIC_SV_RATIO, 2.0, 8), 1);
    /* more values than L (out < r): the extra ones are ignored */
    ck_assert_int_eq(rank_of(spectrum_4211, 4, 2, MS_DYNAMIC_NONE, 0.0, 8), 2);
}
END_TEST

START_TEST(test_sv_cumulative_boundaries)
{
    const double *s = spectrum_4211;
    ck_assert_int_eq(rank_of(s, 4, 8, MS_DYNAMIC_SV_CUMULATIVE, 0.1, 8), 2);
    /* p == c[0] exactly: j = 0 (side left), k = 2 */
    ck_assert_int_eq(rank_of(s, 4, 8, MS_DYNAMIC_SV_CUMULATIVE, 0.5, 8), 2);
    ck_assert_int_eq(rank_of(s, 4, 8, MS_DYNAMIC_SV_CUMULATIVE, nextafter(0.5, 1.0), 8), 3);
    /* p == c[1] exactly: j = 1, k = 3; one ulp more: j = 2, k = 4 */
    ck_assert_int_eq(rank_of(s, 4, 8, MS_DYNAMIC_SV_CUMULATIVE, 0.75, 8), 3);
    ck_assert_int_eq(rank_of(s, 4, 8, MS_DYNAMIC_SV_CUMULATIVE, nextafter(0.75, 1.0), 8), 4);
    ck_assert_int_eq(rank_of(s, 4, 8, MS_DYNAMIC_SV_CUMULATIVE, 0.875, 8), 4);
    ck_assert_int_eq(rank_of(s, 4, 8, MS_DYNAMIC_SV_CUMULATIVE, nextafter(0.875, 1.0), 8), 5);
    ck_assert_int_eq(rank_of(s, 4, 8, MS_DYNAMIC_SV_CUMULATIVE, 1.0, 8), 5);
    /* the cap wins */
    ck_assert_int_eq(rank_of(s, 4, 8, MS_DYNAMIC_SV_CUMULATIVE, 1.0, 2), 2);
}
END_TEST

START_TEST(test_sv_fro_boundaries)
{
    const double *s = spectrum_2221111;
    /* target p^2 = 0.25 == c[0]: k = 2 */
    ck_assert_int_eq(rank_of(s, 7, 10, MS_DYNAMIC_SV_FRO, 0.5, 10), 2);
    ck_assert_int_eq(rank_of(s, 7, 10, MS_DYNAMIC_SV_FRO, nextafter(0.5, 1.0), 10), 3);
    /* target 0.5625 lies between .5 and .75: j = 2, k = 4 */
    ck_assert_int_eq(rank_of(s, 7, 10, MS_DYNAMIC_SV_FRO, 0.75, 10), 4);
    /* target 1: j = 6 (last), k = 8 */
    ms_rank_choice choice;
    ms_rank_rule(s, 7, 10, MS_DYNAMIC_SV_FRO, 1.0, 10, &choice);
    ck_assert_int_eq(choice.rank, 8);
    ck_assert_double_eq_tol(choice.fro_retained, 1.0, 1e-15);
    ms_rank_rule(s, 7, 10, MS_DYNAMIC_SV_FRO, 0.75, 10, &choice);
    ck_assert_double_eq_tol(choice.fro_retained, sqrt(13.0 / 16.0), 1e-15);
    ck_assert_double_eq_tol(choice.sum_retained, 7.0 / 10.0, 1e-15);
    ck_assert_double_eq_tol(choice.max_ratio, 2.0, 1e-15);
}
END_TEST

START_TEST(test_zero_module)
{
    static const double zeros[] = {0, 0, 0};
    ms_rank_choice choice;
    for (int method = MS_DYNAMIC_NONE; method <= MS_DYNAMIC_SV_FRO; method++) {
        double param = method == MS_DYNAMIC_SV_RATIO ? 2.0 : 0.9;
        ms_rank_rule(zeros, 3, 5, (ms_dynamic_method)method, param, 3, &choice);
        ck_assert_int_eq(choice.rank, 1);
        /* documented choice: 1.0 where kohya reports 0/0 */
        ck_assert_double_eq(choice.sum_retained, 1.0);
        ck_assert_double_eq(choice.fro_retained, 1.0);
        ck_assert_double_eq(choice.max_ratio, 1.0);
    }
    /* S[0] == 1e-6 counts as zero, twice that does not */
    static const double tiny[] = {1e-6, 1e-7};
    static const double small[] = {2e-6, 1e-7};
    ck_assert_int_eq(rank_of(tiny, 2, 4, MS_DYNAMIC_NONE, 0.0, 3), 1);
    ck_assert_int_eq(rank_of(small, 2, 4, MS_DYNAMIC_NONE, 0.0, 3), 3);
}
END_TEST

START_TEST(test_rank_one_module)
{
    static const double single[] = {5};
    /* r_old = 1, L = 3: sv_ratio gives k = 2, the padded zero */
    ck_assert_int_eq(rank_of(single, 1, 3, MS_DYNAMIC_SV_RATIO, 2.0, 4), 2);
    ck_assert_int_eq(rank_of(single, 1, 3, MS_DYNAMIC_SV_FRO, 0.9, 4), 2);
    ck_assert_int_eq(rank_of(single, 1, 3, MS_DYNAMIC_SV_FRO, 0.9, 1), 1);
    ck_assert_int_eq(rank_of(single, 1, 3, MS_DYNAMIC_NONE, 0.0, 1), 1);
}
END_TEST

static Suite *rank_rule_suite(void)
{
    Suite *suite = suite_create("rank_rule");
    TCase *cases = tcase_create("rules");
    tcase_add_test(cases, test_fixed);
    tcase_add_test(cases, test_sv_ratio_strict);
    tcase_add_test(cases, test_clamp_to_padded_length);
    tcase_add_test(cases, test_sv_cumulative_boundaries);
    tcase_add_test(cases, test_sv_fro_boundaries);
    tcase_add_test(cases, test_zero_module);
    tcase_add_test(cases, test_rank_one_module);
    suite_add_tcase(suite, cases);
    return suite;
}

int main(void)
{
    return ms_test_run_suite(rank_rule_suite());
}
