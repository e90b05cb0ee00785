/* server/range: single byte ranges, hostile headers ignored or refused. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "server/http/range.h"
#include "check_support.h"

typedef struct range_case {
    const char *header;
    uint64_t size;
    ms_range_kind kind;
    uint64_t start, length;
} range_case;

static const range_case cases[] = {
    {NULL, 100, MS_RANGE_NONE, 0, 0},
    {"bytes=0-9", 100, MS_RANGE_PARTIAL, 0, 10},
    {"bytes=90-", 100, MS_RANGE_PARTIAL, 90, 10},
    {"bytes=-10", 100, MS_RANGE_PARTIAL, 90, 10},
    {"bytes=-1000", 100, MS_RANGE_PARTIAL, 0, 100},
    {"bytes=50-5000", 100, MS_RANGE_PARTIAL, 50, 50},
    {"bytes=99-99", 100, MS_RANGE_PARTIAL, 99, 1},
    {"BYTES=1-2", 100, MS_RANGE_PARTIAL, 1, 2},
    {" bytes= 1-2 ", 100, MS_RANGE_PARTIAL, 1, 2},
    {"bytes=0-99999999999999999999999999999", 100, MS_RANGE_PARTIAL, 0, 100},
    {"bytes=100-", 100, MS_RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=100-200", 100, MS_RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=99999999999999999999999-", 100, MS_RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=-0", 100, MS_RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=0-", 0, MS_RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=-5", 0, MS_RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=5-2", 100, MS_RANGE_NONE, 0, 0},
    {"bytes=0-1,5-6", 100, MS_RANGE_NONE, 0, 0},
    {"bytes=-", 100, MS_RANGE_NONE, 0, 0},
    {"bytes=", 100, MS_RANGE_NONE, 0, 0},
    {"bytes=a-b", 100, MS_RANGE_NONE, 0, 0},
    {"bytes=+1-2", 100, MS_RANGE_NONE, 0, 0},
    {"bytes=1--2", 100, MS_RANGE_NONE, 0, 0},
    {"items=0-1", 100, MS_RANGE_NONE, 0, 0},
    {"", 100, MS_RANGE_NONE, 0, 0},
    {"bytes=0-1x", 100, MS_RANGE_NONE, 0, 0},
};

START_TEST(test_cases)
{
    const range_case *item = &cases[_i];
    uint64_t start = 12345, length = 54321;
    ms_range_kind kind = ms_range_parse(item->header, item->size, &start, &length);
    ck_assert_msg(kind == item->kind, "'%s' size %llu: kind %d, expected %d",
                  item->header ? item->header : "(null)", (unsigned long long)item->size,
                  (int)kind, (int)item->kind);
    if (kind == MS_RANGE_PARTIAL) {
        ck_assert_uint_eq(start, item->start);
        ck_assert_uint_eq(length, item->length);
        ck_assert_uint_le(start + length, item->size);
        ck_assert_uint_ge(length, 1);
    }
}
END_TEST

/* Every prefix of a few headers: never out of bounds, never empty ranges. */
START_TEST(test_prefixes)
{
    const char *headers[] = {"bytes=12-34", "bytes=-77", "bytes=5-"};
    for (size_t h = 0; h < 3; h++) {
        char text[32];
        for (size_t n = 0; headers[h][n] != '\0'; n++) {
            snprintf(text, sizeof text, "%.*s", (int)n, headers[h]);
            for (uint64_t size = 0; size < 40; size++) {
                uint64_t start = 0, length = 0;
                if (ms_range_parse(text, size, &start, &length) == MS_RANGE_PARTIAL) {
                    ck_assert_uint_ge(length, 1);
                    ck_assert_uint_le(start + length, size);
                }
            }
        }
    }
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("range");
    TCase *tcase = tcase_create("range");
    tcase_add_loop_test(tcase, test_cases, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tcase, test_prefixes);
    suite_add_tcase(suite, tcase);
    return ms_test_run_suite(suite);
}
