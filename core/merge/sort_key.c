/* Order keys for floating-point values, and an in-place sort of them.
 *
 * torch sorts floats by value with -0 == +0 and NaN above everything; the
 * usual sign-magnitude flip (negative: all bits inverted; positive: sign bit
 * set) orders the bit patterns the same way once both zeros are mapped to one
 * key and every NaN to the top key. */
#include "method_internal.h"

#include <math.h>
#include <string.h>

bool ms_merge_dtype_is_narrow(ms_dtype dtype)
{
    return dtype == MS_DTYPE_F16 || dtype == MS_DTYPE_BF16;
}

double ms_merge_key16_value(ms_dtype dtype, uint16_t key)
{
    if (key == 0xffffu)
        return NAN;
    uint16_t bits = (key & 0x8000u) ? (uint16_t)(key & 0x7fffu) : (uint16_t)~key;
    return dtype == MS_DTYPE_F16 ? ms_half_to_double(bits) : ms_bfloat16_to_double(bits);
}

uint32_t ms_merge_key32(float value)
{
    if (isnan(value))
        return UINT32_MAX;
    if (value == 0)
        return UINT32_C(1) << 31;
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return (bits >> 31) ? ~bits : bits | UINT32_C(1) << 31;
}

uint64_t ms_merge_key64(double value)
{
    if (isnan(value))
        return UINT64_MAX;
    if (value == 0)
        return UINT64_C(1) << 63;
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    return (bits >> 63) ? ~bits : bits | UINT64_C(1) << 63;
}

double ms_merge_key64_value(uint64_t key)
{
    if (key == UINT64_MAX)
        return NAN;
    uint64_t bits = (key >> 63) ? key & ~(UINT64_C(1) << 63) : ~key;
    double value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* ---- American flag sort: MSD radix on bytes, in place ---- */

enum { INSERTION_LIMIT = 48 };

static void insertion_sort(uint64_t *values, size_t count)
{
    for (size_t i = 1; i < count; i++) {
        uint64_t value = values[i];
        size_t j = i;
        for (; j > 0 && values[j - 1] > value; j--)
            values[j] = values[j - 1];
        values[j] = value;
    }
}

static unsigned digit(uint64_t value, int shift)
{
    return (unsigned)(value >> shift) & 0xffu;
}

/* Moves every value into its digit's bucket by following cycles. */
static void permute_into_buckets(uint64_t *values, size_t *heads, const size_t *ends,
                                 int shift)
{
    for (unsigned bucket = 0; bucket < 256; bucket++) {
        while (heads[bucket] < ends[bucket]) {
            uint64_t value = values[heads[bucket]];
            unsigned d = digit(value, shift);
            while (d != bucket) {
                uint64_t displaced = values[heads[d]];
                values[heads[d]++] = value;
                value = displaced;
                d = digit(value, shift);
            }
            values[heads[bucket]++] = value;
        }
    }
}

static void flag_sort(uint64_t *values, size_t count, int shift)
{
    if (count <= INSERTION_LIMIT) {
        insertion_sort(values, count);
        return;
    }
    size_t heads[256] = {0}, ends[256], starts[256];
    for (size_t i = 0; i < count; i++)
        heads[digit(values[i], shift)]++;
    size_t sum = 0;
    for (unsigned bucket = 0; bucket < 256; bucket++) {
        size_t members = heads[bucket];
        starts[bucket] = heads[bucket] = sum;
        sum += members;
        ends[bucket] = sum;
    }
    permute_into_buckets(values, heads, ends, shift);
    if (shift == 0)
        return;
    for (unsigned bucket = 0; bucket < 256; bucket++)
        if (ends[bucket] - starts[bucket] > 1)
            flag_sort(values + starts[bucket], ends[bucket] - starts[bucket], shift - 8);
}

void ms_merge_sort_u64(uint64_t *values, size_t count)
{
    flag_sort(values, count, 56);
}
