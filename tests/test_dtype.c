/* dtype: names and sizes, exact widening, round-to-nearest-even narrowing.
 *
 * The narrowing is checked against an independent oracle: a binary search
 * over the (monotonic) positive bit patterns of the target format, using only
 * the widening functions, with ties broken to the even pattern. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/format/dtype.h"
#include "check_support.h"

typedef struct narrow_format {
    const char *name;
    double (*to_double)(uint16_t bits);
    uint16_t (*from_double)(double value);
    uint16_t max_finite;   /* bits of the largest finite value */
    uint16_t infinity;
} narrow_format;

static const narrow_format formats[] = {
    {"half", ms_half_to_double, ms_half_from_double, 0x7bff, 0x7c00},
    {"bfloat16", ms_bfloat16_to_double, ms_bfloat16_from_double, 0x7f7f, 0x7f80},
};

/* Expected bits for a finite value, computed without the code under test. */
static uint16_t oracle_round(const narrow_format *format, double value)
{
    uint16_t sign = signbit(value) ? 0x8000 : 0;
    double magnitude = fabs(value);
    double max = format->to_double(format->max_finite);
    double max_ulp = max - format->to_double(format->max_finite - 1);
    if (magnitude >= max + max_ulp / 2)
        return sign | format->infinity;
    /* Largest pattern whose value is <= magnitude. */
    uint32_t low = 0, high = format->max_finite;
    while (low < high) {
        uint32_t middle = (low + high + 1) / 2;
        if (format->to_double((uint16_t)middle) <= magnitude)
            low = middle;
        else
            high = middle - 1;
    }
    if (low == format->max_finite)
        return sign | (uint16_t)low;
    double below = format->to_double((uint16_t)low);
    double above = format->to_double((uint16_t)(low + 1));
    double distance_below = magnitude - below, distance_above = above - magnitude;
    if (distance_below < distance_above)
        return sign | (uint16_t)low;
    if (distance_above < distance_below)
        return sign | (uint16_t)(low + 1);
    return sign | (uint16_t)((low & 1) ? low + 1 : low);
}

START_TEST(test_names_and_sizes)
{
    static const size_t sizes[MS_DTYPE_COUNT] = {1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8};
    for (int i = 0; i < MS_DTYPE_COUNT; i++) {
        ms_dtype parsed = MS_DTYPE_COUNT;
        ck_assert_uint_eq(ms_dtype_size((ms_dtype)i), sizes[i]);
        ck_assert(ms_dtype_from_name(ms_dtype_name((ms_dtype)i), &parsed));
        ck_assert_int_eq(parsed, i);
    }
    ms_dtype parsed;
    ck_assert(!ms_dtype_from_name("f16", &parsed));
    ck_assert(!ms_dtype_from_name("F17", &parsed));
    ck_assert(!ms_dtype_from_name("", &parsed));
    ck_assert(!ms_dtype_from_name(NULL, &parsed));
    ck_assert_str_eq(ms_dtype_name(MS_DTYPE_BF16), "BF16");
    ck_assert_str_eq(ms_dtype_name(MS_DTYPE_F8_E4M3), "F8_E4M3");
    ck_assert(ms_dtype_is_float(MS_DTYPE_F16) && ms_dtype_is_float(MS_DTYPE_BF16));
    ck_assert(ms_dtype_is_float(MS_DTYPE_F32) && ms_dtype_is_float(MS_DTYPE_F64));
    ck_assert(!ms_dtype_is_float(MS_DTYPE_I64) && !ms_dtype_is_float(MS_DTYPE_F8_E5M2));
}
END_TEST

/* Every pattern widens and narrows back to itself (NaN stays a NaN). */
START_TEST(test_round_trip_all_patterns)
{
    const narrow_format *format = &formats[_i];
    for (uint32_t bits = 0; bits <= 0xffff; bits++) {
        double value = format->to_double((uint16_t)bits);
        uint16_t back = format->from_double(value);
        int exponent_all_ones = (bits & 0x7fff) > format->infinity;
        if (exponent_all_ones) {
            ck_assert_msg(isnan(value), "%s %04x should widen to NaN", format->name, bits);
            ck_assert_msg((back & 0x7fff) > format->infinity, "%s %04x: NaN lost (%04x)",
                          format->name, bits, back);
            ck_assert_uint_eq(back & 0x8000, bits & 0x8000);
        } else {
            ck_assert_msg(back == bits, "%s %04x -> %.17g -> %04x", format->name, bits,
                          value, back);
        }
    }
}
END_TEST

/* Midpoints of every adjacent pair (ties), and one step either side. */
START_TEST(test_ties_and_neighbours_all_pairs)
{
    const narrow_format *format = &formats[_i];
    for (uint32_t bits = 0; bits < format->max_finite; bits++) {
        double below = format->to_double((uint16_t)bits);
        double above = format->to_double((uint16_t)(bits + 1));
        double middle = below + (above - below) / 2; /* exact in double */
        uint16_t even = (bits & 1) ? (uint16_t)(bits + 1) : (uint16_t)bits;
        ck_assert_msg(format->from_double(middle) == even, "%s tie after %04x", format->name,
                      bits);
        ck_assert_uint_eq(format->from_double(nextafter(middle, 0.0)), bits);
        ck_assert_uint_eq(format->from_double(nextafter(middle, INFINITY)), bits + 1);
        ck_assert_uint_eq(format->from_double(-middle), 0x8000 | even);
    }
}
END_TEST

/* Random doubles over the whole exponent range of the target, vs the oracle. */
START_TEST(test_random_against_oracle)
{
    const narrow_format *format = &formats[_i];
    uint64_t state = 0x9e3779b97f4a7c15u;
    for (int n = 0; n < 200000; n++) {
        state = state * 6364136223846793005u + 1442695040888963407u;
        uint64_t mantissa = state >> 12;
        int exponent = (int)((state >> 3) % 300) - 150; /* 2^-150 .. 2^149 */
        double value = ldexp(1.0 + (double)mantissa * 0x1p-52, exponent);
        if (state & 1)
            value = -value;
        uint16_t expected = oracle_round(format, value);
        ck_assert_msg(format->from_double(value) == expected, "%s %.17g: got %04x want %04x",
                      format->name, value, format->from_double(value), expected);
    }
}
END_TEST

/* Exponent all ones, quiet bit clear, payload 1. */
static double signalling_nan(void)
{
    const uint64_t bits = UINT64_C(0x7ff0000000000001);
    double value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

START_TEST(test_half_specific_values)
{
    ck_assert_uint_eq(ms_half_from_double(1.0), 0x3c00);
    ck_assert_uint_eq(ms_half_from_double(1.0 + 0x1p-11), 0x3c00);       /* tie to even */
    ck_assert_uint_eq(ms_half_from_double(1.0 + 3 * 0x1p-11), 0x3c02);   /* tie to even up */
    ck_assert_uint_eq(ms_half_from_double(1.0 + 0x1p-11 + 0x1p-40), 0x3c01); /* no double rounding */
    ck_assert_uint_eq(ms_half_from_double(0x1p-24), 0x0001);             /* smallest subnormal */
    ck_assert_uint_eq(ms_half_from_double(0x1p-25), 0x0000);             /* tie to even zero */
    ck_assert_uint_eq(ms_half_from_double(0x1p-25 + 0x1p-60), 0x0001);
    ck_assert_uint_eq(ms_half_from_double(3 * 0x1p-25), 0x0002);
    ck_assert_uint_eq(ms_half_from_double(1023.5 * 0x1p-24), 0x0400);    /* into the normals */
    ck_assert_uint_eq(ms_half_from_double(1e-300), 0x0000);
    ck_assert_uint_eq(ms_half_from_double(-1e-300), 0x8000);
    ck_assert_uint_eq(ms_half_from_double(4.9e-324), 0x0000);            /* double subnormal */
    ck_assert_uint_eq(ms_half_from_double(65504.0), 0x7bff);              /* largest finite */
    ck_assert_uint_eq(ms_half_from_double(65519.99), 0x7bff);
    ck_assert_uint_eq(ms_half_from_double(65520.0), 0x7c00);              /* tie rounds to Inf */
    ck_assert_uint_eq(ms_half_from_double(1e10), 0x7c00);
    ck_assert_uint_eq(ms_half_from_double(-1e10), 0xfc00);
    ck_assert_uint_eq(ms_half_from_double(INFINITY), 0x7c00);
    ck_assert_uint_eq(ms_half_from_double(-INFINITY), 0xfc00);
    ck_assert_uint_eq(ms_half_from_double(-0.0), 0x8000);
    ck_assert_uint_eq(ms_half_from_double(0.0), 0x0000);
    uint16_t nan_bits = ms_half_from_double(NAN);
    ck_assert_uint_eq(nan_bits & 0x7c00, 0x7c00);
    ck_assert_uint_ne(nan_bits & 0x0200, 0); /* quiet */
    ck_assert_uint_eq(ms_half_from_double(-NAN) & 0x8000, 0x8000);
    /* A NaN whose payload lives only in the low bits must not turn into Inf. */
    const double low_payload_nan = signalling_nan();
    ck_assert(isnan(ms_half_to_double(ms_half_from_double(low_payload_nan))));
    ck_assert_uint_ne(ms_half_from_double(low_payload_nan) & 0x0200, 0);
    ck_assert(ms_half_to_double(0x3555) == 0x1.554p-2);
    ck_assert(ms_half_to_double(0x0001) == 0x1p-24);
    ck_assert(signbit(ms_half_to_double(0x8000)) && ms_half_to_double(0x8000) == 0.0);
    ck_assert(isinf(ms_half_to_double(0xfc00)) && ms_half_to_double(0xfc00) < 0);
}
END_TEST

START_TEST(test_bfloat16_specific_values)
{
    ck_assert_uint_eq(ms_bfloat16_from_double(1.0), 0x3f80);
    ck_assert_uint_eq(ms_bfloat16_from_double(1.0 + 0x1p-8), 0x3f80);
    ck_assert_uint_eq(ms_bfloat16_from_double(1.0 + 3 * 0x1p-8), 0x3f82);
    ck_assert_uint_eq(ms_bfloat16_from_double(1.0 + 0x1p-8 + 0x1p-40), 0x3f81);
    ck_assert_uint_eq(ms_bfloat16_from_double(0x1p-133), 0x0001);
    ck_assert_uint_eq(ms_bfloat16_from_double(0x1p-134), 0x0000);
    ck_assert_uint_eq(ms_bfloat16_from_double(0x1.fep127), 0x7f7f);
    ck_assert_uint_eq(ms_bfloat16_from_double(0x1.ffp127), 0x7f80); /* tie to Inf */
    ck_assert_uint_eq(ms_bfloat16_from_double(1e300), 0x7f80);
    ck_assert_uint_eq(ms_bfloat16_from_double(-0.0), 0x8000);
    uint16_t nan_bits = ms_bfloat16_from_double(NAN);
    ck_assert_uint_eq(nan_bits & 0x7f80, 0x7f80);
    ck_assert_uint_ne(nan_bits & 0x0040, 0);
    ck_assert(isnan(ms_bfloat16_to_double(ms_bfloat16_from_double(signalling_nan()))));
    ck_assert(ms_bfloat16_to_double(0x3f80) == 1.0);
    ck_assert(ms_float_from_double(1.0 + 0x1p-24) == 1.0f);
    ck_assert(ms_float_from_double(1.0 + 3 * 0x1p-24) == 1.0f + 0x1p-22f);
}
END_TEST

/* The array entry points agree with the single-value helpers. */
START_TEST(test_array_conversions)
{
    enum { COUNT = 1000 };
    double values[COUNT], back[COUNT];
    unsigned char buffer[COUNT * 8];
    for (int i = 0; i < COUNT; i++)
        values[i] = (i - 500) * 0.3183098861837907 * (i % 7 == 0 ? 1e-6 : 1.0);

    ms_dtype_from_double(MS_DTYPE_F16, values, buffer, COUNT);
    ms_dtype_to_double(MS_DTYPE_F16, buffer, back, COUNT);
    for (int i = 0; i < COUNT; i++) {
        uint16_t bits;
        memcpy(&bits, buffer + 2 * i, 2);
        ck_assert_uint_eq(bits, ms_half_from_double(values[i]));
        ck_assert(back[i] == ms_half_to_double(bits));
    }
    ms_dtype_from_double(MS_DTYPE_BF16, values, buffer, COUNT);
    ms_dtype_to_double(MS_DTYPE_BF16, buffer, back, COUNT);
    for (int i = 0; i < COUNT; i++) {
        uint16_t bits;
        memcpy(&bits, buffer + 2 * i, 2);
        ck_assert_uint_eq(bits, ms_bfloat16_from_double(values[i]));
        ck_assert(back[i] == ms_bfloat16_to_double(bits));
    }
    ms_dtype_from_double(MS_DTYPE_F32, values, buffer, COUNT);
    ms_dtype_to_double(MS_DTYPE_F32, buffer, back, COUNT);
    for (int i = 0; i < COUNT; i++)
        ck_assert(back[i] == (double)(float)values[i]);
    ms_dtype_from_double(MS_DTYPE_F64, values, buffer, COUNT);
    ms_dtype_to_double(MS_DTYPE_F64, buffer, back, COUNT);
    ck_assert(memcmp(back, values, sizeof values) == 0);
}
END_TEST

/* Long arrays take the vector path (F16C, where the processor has it) in
 * blocks of 8: every tie and its neighbours, random values, overflow and
 * underflow boundaries, with NaN and Inf scattered into some blocks, must
 * narrow to the same bits as the scalar conversion; every half pattern must
 * widen to the same double. */
START_TEST(test_half_arrays_match_scalar)
{
    size_t capacity = 4 * 0x7c00 + 200000 + 64, count = 0;
    double *values = malloc(capacity * sizeof *values);
    unsigned char *bytes = malloc(capacity * 2);
    ck_assert_ptr_nonnull(values);
    ck_assert_ptr_nonnull(bytes);
    for (uint32_t bits = 0; bits < 0x7bff; bits++) {
        double below = ms_half_to_double((uint16_t)bits);
        double middle = below + (ms_half_to_double((uint16_t)(bits + 1)) - below) / 2;
        values[count++] = middle;
        values[count++] = nextafter(middle, 0.0);
        values[count++] = -nextafter(middle, INFINITY);
    }
    const double edges[] = {65504.0, 65519.99999999999, 65520.0, 1e300, -1e300, 0x1p-25,
                            0x1p-26, 0x1.0000000000001p-25, 3.4e38, 3.5e38, 1e-320, -0.0};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        values[count++] = edges[i];
    uint64_t state = 12345;
    for (int n = 0; n < 200000; n++) {
        state = state * 6364136223846793005u + 1442695040888963407u;
        int exponent = (int)((state >> 3) % 60) - 40;
        double value = ldexp(1.0 + (double)(state >> 12) * 0x1p-52, exponent);
        values[count++] = (state & 1) ? -value : value;
    }
    for (size_t i = 37; i < count; i += 997)
        values[i] = (i % 3 == 0) ? NAN : (i % 3 == 1) ? INFINITY : -INFINITY;
    ms_dtype_from_double(MS_DTYPE_F16, values, bytes, count);
    for (size_t i = 0; i < count; i++) {
        uint16_t bits;
        memcpy(&bits, bytes + 2 * i, 2);
        ck_assert_msg(bits == ms_half_from_double(values[i]), "%.17g: %04x, scalar %04x",
                      values[i], bits, ms_half_from_double(values[i]));
    }
    for (uint32_t bits = 0; bits <= 0xffff; bits++) {
        uint16_t pattern = (uint16_t)bits;
        memcpy(bytes + 2 * bits, &pattern, 2);
    }
    ms_dtype_to_double(MS_DTYPE_F16, bytes, values, 0x10000);
    for (uint32_t bits = 0; bits <= 0xffff; bits++) {
        double expected = ms_half_to_double((uint16_t)bits);
        ck_assert_msg(memcmp(&values[bits], &expected, sizeof expected) == 0, "%04x", bits);
    }
    free(values);
    free(bytes);
}
END_TEST

START_TEST(test_first_non_finite)
{
    enum { COUNT = 1000 };
    double values[COUNT];
    for (int i = 0; i < COUNT; i++)
        values[i] = i * 1e300; /* large but finite */
    ck_assert_uint_eq(ms_first_non_finite(values, COUNT), COUNT);
    ck_assert_uint_eq(ms_first_non_finite(values, 0), 0);
    const double bad[] = {NAN, INFINITY, -INFINITY, -NAN};
    const size_t positions[] = {0, 255, 256, 511, 999};
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        for (size_t p = 0; p < sizeof positions / sizeof positions[0]; p++) {
            double saved = values[positions[p]];
            values[positions[p]] = bad[b];
            ck_assert_uint_eq(ms_first_non_finite(values, COUNT), positions[p]);
            values[positions[p]] = saved;
        }
    }
    values[700] = NAN;
    values[300] = INFINITY;
    ck_assert_uint_eq(ms_first_non_finite(values, COUNT), 300);
    ck_assert_uint_eq(ms_first_non_finite(values, 300), 300);
}
END_TEST

static Suite *dtype_suite(void)
{
    Suite *suite = suite_create("dtype");
    TCase *tcase = tcase_create("core");
    tcase_set_timeout(tcase, 60);
    tcase_add_test(tcase, test_names_and_sizes);
    tcase_add_loop_test(tcase, test_round_trip_all_patterns, 0, 2);
    tcase_add_loop_test(tcase, test_ties_and_neighbours_all_pairs, 0, 2);
    tcase_add_loop_test(tcase, test_random_against_oracle, 0, 2);
    tcase_add_test(tcase, test_half_specific_values);
    tcase_add_test(tcase, test_bfloat16_specific_values);
    tcase_add_test(tcase, test_array_conversions);
    tcase_add_test(tcase, test_half_arrays_match_scalar);
    tcase_add_test(tcase, test_first_non_finite);
    suite_add_tcase(suite, tcase);
    return suite;
}

int main(void)
{
    return ms_test_run_suite(dtype_suite());
}
