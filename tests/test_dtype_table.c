/* The table path of ms_dtype_to_double (long F16 runs) agrees bit for bit
 * with the single-value conversion, also when first used by two threads at
 * once (the table is built under pthread_once). */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/format/dtype.h"
#include "check_support.h"

enum { PATTERNS = 65536 };

/* Every half pattern, as one long array (long enough for the table path). */
static int convert_all_and_compare(void)
{
    uint16_t *bits = malloc(PATTERNS * sizeof *bits);
    double *values = malloc(PATTERNS * sizeof *values);
    int mismatches = -1;
    if (bits != NULL && values != NULL) {
        for (uint32_t i = 0; i < PATTERNS; i++)
            bits[i] = (uint16_t)i;
        ms_dtype_to_double(MS_DTYPE_F16, bits, values, PATTERNS);
        mismatches = 0;
        for (uint32_t i = 0; i < PATTERNS; i++) {
            double expected = ms_half_to_double((uint16_t)i);
            if (memcmp(&expected, &values[i], sizeof expected) != 0)
                mismatches++;
        }
    }
    free(bits);
    free(values);
    return mismatches;
}

static void *thread_main(void *result)
{
    *(int *)result = convert_all_and_compare();
    return NULL;
}

START_TEST(test_table_concurrent_first_use)
{
    pthread_t threads[2];
    int results[2] = {-1, -1};
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&threads[i], NULL, thread_main, &results[i]), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_join(threads[i], NULL), 0);
    ck_assert_int_eq(results[0], 0);
    ck_assert_int_eq(results[1], 0);
}
END_TEST

/* Unaligned source, odd length, both sides of the table threshold. */
START_TEST(test_table_unaligned_lengths)
{
    static const size_t lengths[] = {1, 7, 4095, 4096, 4097, 20001};
    for (size_t n = 0; n < sizeof lengths / sizeof lengths[0]; n++) {
        size_t count = lengths[n];
        unsigned char *bytes = malloc(2 * count + 1);
        double *values = malloc(count * sizeof *values);
        ck_assert(bytes != NULL && values != NULL);
        for (size_t i = 0; i < 2 * count + 1; i++)
            bytes[i] = (unsigned char)(i * 37 + 11);
        ms_dtype_to_double(MS_DTYPE_F16, bytes + 1, values, count);
        for (size_t i = 0; i < count; i++) {
            uint16_t bits = (uint16_t)(bytes[1 + 2 * i] | bytes[2 + 2 * i] << 8);
            double expected = ms_half_to_double(bits);
            ck_assert_msg(memcmp(&expected, &values[i], sizeof expected) == 0,
                          "length %zu element %zu (%04x)", count, i, bits);
        }
        free(bytes);
        free(values);
    }
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("dtype_table");
    TCase *cases = tcase_create("table");
    tcase_add_test(cases, test_table_concurrent_first_use);
    tcase_add_test(cases, test_table_unaligned_lengths);
    suite_add_tcase(suite, cases);
    return ms_test_run_suite(suite);
}
