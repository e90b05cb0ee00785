/* The k-th smallest magnitude of a tensor without holding the tensor.
 *
 * Non-negative doubles order like their bit patterns read as uint64 (and a
 * NaN, its sign cleared by fabs, lands above +Inf, where torch's kthvalue
 * puts it), so the k-th value can be found 16 bits at a time: histogram the
 * top 16 bits over the whole tensor, keep the bucket holding rank k, then
 * histogram the next 16 bits among that bucket's members, and so on.  Each
 * level is one chunked pass; once a bucket is small it is collected and the
 * rest is done in memory.  Memory: two chunks, one 65536-entry histogram and
 * the collect buffer. */
#include "method_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { HISTOGRAM_SIZE = 65536 };

static unsigned byte_at(uint64_t value, int shift)
{
    return (unsigned)(value >> shift) & 0xffu;
}

/* Byte by byte: a 256-bucket histogram, keep the bucket holding index.
 * Linear whatever the input (no quickselect worst case for crafted data). */
uint64_t ms_merge_nth_u64(uint64_t *values, size_t count, size_t index)
{
    for (int shift = 56; shift >= 0 && count > 1; shift -= 8) {
        size_t counts[256] = {0};
        for (size_t i = 0; i < count; i++)
            counts[byte_at(values[i], shift)]++;
        unsigned bucket = 0;
        while (index >= counts[bucket])
            index -= counts[bucket++];
        size_t kept = 0;
        for (size_t i = 0; i < count; i++)
            if (byte_at(values[i], shift) == bucket)
                values[kept++] = values[i];
        count = kept;
    }
    return values[index];
}

typedef struct selection {
    const ms_merge_task *task;
    const ms_merge_operand *x, *y;
    double *x_chunk, *y_chunk;
    uint64_t *histogram;
    uint64_t *collected;
    uint64_t collected_count;
    uint64_t prefix;          /* the known top prefix_bits of the answer */
    int prefix_bits;
} selection;

static uint64_t bits_of(double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

static bool has_prefix(const selection *s, uint64_t bits)
{
    return s->prefix_bits == 0 || bits >> (64 - s->prefix_bits) == s->prefix;
}

/* Magnitudes of [start, start + count) into x_chunk. */
static ms_status read_magnitudes(selection *s, uint64_t start, size_t count, ms_error *err)
{
    ms_status status = ms_merge_check_cancel(s->task, err);
    if (status == MS_OK)
        status = ms_merge_read(s->task, s->x, start, count, s->x_chunk, err);
    if (status == MS_OK && s->y != NULL)
        status = ms_merge_read(s->task, s->y, start, count, s->y_chunk, err);
    if (status != MS_OK)
        return status;
    double *x = s->x_chunk;
    const double *y = s->y_chunk;
    if (y != NULL) {
#pragma omp simd   /* two separate buffers */
        for (size_t i = 0; i < count; i++)
            x[i] = fabs(x[i] - y[i]);
    } else {
#pragma omp simd
        for (size_t i = 0; i < count; i++)
            x[i] = fabs(x[i]);
    }
    return MS_OK;
}

/* Histogram of the 16 bits below the prefix, among members of the prefix. */
static ms_status histogram_pass(selection *s, ms_error *err)
{
    memset(s->histogram, 0, HISTOGRAM_SIZE * sizeof *s->histogram);
    int shift = 48 - s->prefix_bits;
    for (uint64_t start = 0; start < s->task->count;) {
        size_t count = ms_merge_chunk_length(s->task, start);
        ms_status status = read_magnitudes(s, start, count, err);
        if (status != MS_OK)
            return status;
        for (size_t i = 0; i < count; i++) {
            uint64_t bits = bits_of(s->x_chunk[i]);
            if (has_prefix(s, bits))
                s->histogram[(bits >> shift) & 0xffffu]++;
        }
        start += count;
    }
    return MS_OK;
}

/* A file rewritten under the mapping can change the members between passes:
 * never store past capacity, count the rest so the caller sees the change. */
static ms_status collect_pass(selection *s, uint64_t capacity, ms_error *err)
{
    s->collected_count = 0;
    for (uint64_t start = 0; start < s->task->count;) {
        size_t count = ms_merge_chunk_length(s->task, start);
        ms_status status = read_magnitudes(s, start, count, err);
        if (status != MS_OK)
            return status;
        for (size_t i = 0; i < count; i++) {
            uint64_t bits = bits_of(s->x_chunk[i]);
            if (!has_prefix(s, bits))
                continue;
            if (s->collected_count < capacity)
                s->collected[s->collected_count] = bits;
            s->collected_count++;
        }
        start += count;
    }
    return MS_OK;
}

/* Narrows the prefix to the bucket holding rank (0-based; updated to the
 * rank inside the bucket); *members: how many the bucket has. */
static void choose_bucket(selection *s, uint64_t *rank, uint64_t *members)
{
    unsigned bucket = 0;
    while (*rank >= s->histogram[bucket])
        *rank -= s->histogram[bucket++];
    *members = s->histogram[bucket];
    s->prefix = s->prefix << 16 | bucket;
    s->prefix_bits += 16;
}

static double double_of(uint64_t bits)
{
    double value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static ms_status select_levels(selection *s, uint64_t k, size_t collect_limit, double *kth,
                               ms_error *err)
{
    uint64_t rank = k - 1, members = s->task->count;
    while (members > collect_limit) {
        ms_status status = histogram_pass(s, err);
        if (status != MS_OK)
            return status;
        choose_bucket(s, &rank, &members);
        if (s->prefix_bits == 64) {          /* every bit known: all members equal */
            *kth = double_of(s->prefix);
            return MS_OK;
        }
    }
    s->collected = malloc((members > 0 ? members : 1) * sizeof *s->collected);
    if (s->collected == NULL)
        return ms_merge_out_of_memory(s->task, members * sizeof *s->collected, err);
    ms_status status = collect_pass(s, members, err);
    if (status == MS_OK && s->collected_count != members)
        status = ms_error_set(err, MS_ERR_INTERNAL, s->task->key,
                              "selection: a bucket changed between passes");
    if (status == MS_OK)
        *kth = double_of(ms_merge_nth_u64(s->collected, (size_t)members, (size_t)rank));
    return status;
}

ms_status ms_merge_select_magnitude(const ms_merge_task *task, const ms_merge_operand *x,
                                    const ms_merge_operand *y, uint64_t k,
                                    size_t collect_limit, double *kth, ms_error *err)
{
    if (k < 1 || k > task->count)
        return ms_error_set(err, MS_ERR_INTERNAL, task->key,
                            "selection rank %llu outside 1..%llu", (unsigned long long)k,
                            (unsigned long long)task->count);
    size_t chunk = ms_merge_chunk_capacity(task);
    selection s = {task, x, y, NULL, NULL, NULL, NULL, 0, 0, 0};
    s.x_chunk = malloc(chunk * sizeof(double));
    s.y_chunk = y != NULL ? malloc(chunk * sizeof(double)) : NULL;
    s.histogram = malloc(HISTOGRAM_SIZE * sizeof *s.histogram);
    ms_status status = MS_OK;
    if (s.x_chunk == NULL || (y != NULL && s.y_chunk == NULL) || s.histogram == NULL)
        status = ms_merge_out_of_memory(task, ms_merge_select_scratch(task, collect_limit), err);
    else
        status = select_levels(&s, k, collect_limit, kth, err);
    free(s.x_chunk);
    free(s.y_chunk);
    free(s.histogram);
    free(s.collected);
    return status;
}

uint64_t ms_merge_select_scratch(const ms_merge_task *task, size_t collect_limit)
{
    uint64_t collected = task->count < collect_limit ? task->count : collect_limit;
    return 2 * ms_merge_chunks_bytes(task, MS_MERGE_CHUNK_A) +
           HISTOGRAM_SIZE * sizeof(uint64_t) + collected * sizeof(uint64_t);
}
