/* top_k_tensor_sum (algorithms.md section 3): A's values, sorted, re-ordered
 * like B (out[j] = sa[rank_B(j)]) inside a band of magnitudes of A chosen by
 * (width α, offset β); A's own value elsewhere.
 *
 * Neither sort is stored when the dtypes are F16/BF16: B's stable ranks come
 * from a counting sort replayed in element order (sort_order.c), and the
 * r-th value of sorted A from a histogram of A's 65536 patterns (the key
 * whose cumulative count range holds r).  Sorted A puts -0 and +0 together in
 * A's position order (a stable sort), so when A has zeros of both signs a
 * bitset of their signs, in order, says which one rank r is.  F32/F64 A is
 * sorted into one n-element double array; F32/F64 B keeps a uint32 rank per
 * element (see sort_order.c).  The band's bounds are k-th smallest |a|: from
 * the histogram, or by radix selection (select.c) for F32/F64. */
#include "method_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { KEYS = 65536 };

/* sd-meh's ratio_to_region, in Python's arithmetic. */
typedef struct region {
    int64_t start, end;
    bool inverted;
} region;

static region region_of(double width, double offset, uint64_t count)
{
    double n = (double)count;
    region r;
    if (width < 0) {
        offset += width;
        width = -width;
    }
    if (width > 1)
        width = 1;
    if (offset < 0)
        offset = 1 + offset - trunc(offset);
    offset = fmod(offset, 1.0);
    if (width + offset <= 1) {
        r.inverted = false;
        r.start = ms_merge_python_round(offset * n);
        r.end = ms_merge_python_round((width + offset) * n);
    } else {
        r.inverted = true;
        r.start = ms_merge_python_round((width + offset - 1) * n);
        r.end = ms_merge_python_round(offset * n);
    }
    return r;
}

/* Sorted A: either a histogram over keys (narrow) or the values (wide). */
typedef struct sorted_values {
    ms_dtype dtype;
    uint64_t *pattern_counts;   /* narrow: elements per 16-bit pattern */
    uint64_t *key_starts;       /* narrow: KEYS + 1 cumulative counts by key */
    unsigned char *zero_signs;  /* narrow, zeros of both signs: bit t = t-th zero is -0 */
    bool zeros_negative;        /* narrow, zeros of one sign: they are -0 */
    double *values;             /* wide: A sorted */
} sorted_values;

static void sorted_free(sorted_values *sorted)
{
    free(sorted->pattern_counts);
    free(sorted->key_starts);
    free(sorted->zero_signs);
    free(sorted->values);
    memset(sorted, 0, sizeof *sorted);
}

/* One pass over A's patterns; visit gets each chunk. */
typedef void pattern_visit(sorted_values *sorted, const uint16_t *bits, uint64_t start,
                           size_t count, void *context);

static ms_status pattern_pass(const ms_merge_task *task, sorted_values *sorted,
                              uint16_t *bits, pattern_visit *visit, void *context,
                              ms_error *err)
{
    for (uint64_t start = 0; start < task->count;) {
        size_t count = ms_merge_chunk_length(task, start);
        ms_status status = ms_merge_check_cancel(task, err);
        if (status == MS_OK)
            status = ms_merge_read_bits16(task, &task->a, start, count, bits, err);
        if (status != MS_OK)
            return status;
        visit(sorted, bits, start, count, context);
        start += count;
    }
    return MS_OK;
}

static void count_patterns(sorted_values *sorted, const uint16_t *bits, uint64_t start,
                           size_t count, void *context)
{
    (void)start;
    (void)context;
    for (size_t i = 0; i < count; i++)
        sorted->pattern_counts[bits[i]]++;
}

static void mark_zero_signs(sorted_values *sorted, const uint16_t *bits, uint64_t start,
                            size_t count, void *context)
{
    (void)start;
    uint64_t *zeros_seen = context, limit = sorted->pattern_counts[0] +
                                             sorted->pattern_counts[0x8000];
    for (size_t i = 0; i < count; i++) {
        if ((bits[i] & 0x7fffu) != 0)
            continue;
        uint64_t t = (*zeros_seen)++;
        if (t < limit && bits[i] == 0x8000u)   /* a rewritten file: never past the bitset */
            sorted->zero_signs[t / 8] |= (unsigned char)(1u << (t % 8));
    }
}

static ms_status sorted_build_narrow(const ms_merge_task *task, sorted_values *sorted,
                                     ms_error *err)
{
    uint16_t *bits = malloc(ms_merge_chunk_capacity(task) * sizeof *bits);
    sorted->pattern_counts = calloc(KEYS, sizeof *sorted->pattern_counts);
    sorted->key_starts = calloc(KEYS + 1, sizeof *sorted->key_starts);
    ms_status status = MS_OK;
    if (bits == NULL || sorted->pattern_counts == NULL || sorted->key_starts == NULL)
        status = ms_merge_out_of_memory(task, ms_merge_top_k_scratch(task), err);
    if (status == MS_OK)
        status = pattern_pass(task, sorted, bits, count_patterns, NULL, err);
    if (status == MS_OK) {
        for (uint32_t pattern = 0; pattern < KEYS; pattern++)
            sorted->key_starts[ms_merge_key16(sorted->dtype, (uint16_t)pattern) + 1] +=
                sorted->pattern_counts[pattern];
        for (uint32_t key = 0; key < KEYS; key++)
            sorted->key_starts[key + 1] += sorted->key_starts[key];
        uint64_t positive = sorted->pattern_counts[0], negative = sorted->pattern_counts[0x8000];
        sorted->zeros_negative = positive == 0 && negative > 0;
        if (positive > 0 && negative > 0) {
            sorted->zero_signs = calloc((size_t)((positive + negative + 7) / 8), 1);
            uint64_t zeros_seen = 0;
            if (sorted->zero_signs == NULL)
                status = ms_merge_out_of_memory(task, (positive + negative + 7) / 8, err);
            else
                status = pattern_pass(task, sorted, bits, mark_zero_signs, &zeros_seen, err);
        }
    }
    free(bits);
    return status;
}

static ms_status sorted_build_wide(const ms_merge_task *task, sorted_values *sorted,
                                   ms_error *err)
{
    sorted->values = malloc(task->count * sizeof *sorted->values);
    if (sorted->values == NULL)
        return ms_merge_out_of_memory(task, task->count * sizeof *sorted->values, err);
    double *values = sorted->values;
    for (uint64_t start = 0; start < task->count;) {
        size_t count = ms_merge_chunk_length(task, start);
        ms_status status = ms_merge_check_cancel(task, err);
        if (status == MS_OK)
            status = ms_merge_read(task, &task->a, start, count, values + start, err);
        if (status != MS_OK)
            return status;
        start += count;
    }
    /* sort the keys in place of the values (same size), then map back */
    uint64_t *keys = (uint64_t *)(void *)values;
    uint64_t zero_count = 0;
    for (uint64_t i = 0; i < task->count; i++) {
        double value = values[i];
        zero_count += value == 0;
        keys[i] = ms_merge_key64(value);
    }
    ms_merge_sort_u64(keys, (size_t)task->count);
    uint64_t zero_start = task->count;
    for (uint64_t i = 0; i < task->count; i++) {
        if (keys[i] == UINT64_C(1) << 63 && zero_start == task->count)
            zero_start = i;
        values[i] = ms_merge_key64_value(keys[i]);
    }
    /* the zeros, in A's order with their signs: what a stable sort leaves */
    if (zero_count == 0)
        return MS_OK;
    ms_merge_chunks chunk;
    ms_status status = ms_merge_chunks_alloc(task, MS_MERGE_CHUNK_A, &chunk, err);
    uint64_t zeros_seen = 0;
    for (uint64_t start = 0; status == MS_OK && start < task->count;) {
        size_t count = ms_merge_chunk_length(task, start);
        status = ms_merge_read(task, &task->a, start, count, chunk.a, err);
        for (size_t i = 0; status == MS_OK && i < count; i++)
            if (chunk.a[i] == 0 && zeros_seen < zero_count)
                values[zero_start + zeros_seen++] = chunk.a[i];
        start += count;
    }
    ms_merge_chunks_free(&chunk);
    return status;
}

/* The value at rank r of sorted A. */
static double sorted_at(const sorted_values *sorted, uint64_t rank)
{
    if (sorted->values != NULL)
        return sorted->values[rank];
    /* the last key whose start is <= rank */
    uint32_t low = 0, high = KEYS;
    while (high - low > 1) {
        uint32_t middle = low + (high - low) / 2;
        if (sorted->key_starts[middle] <= rank)
            low = middle;
        else
            high = middle;
    }
    /* the last such key is not empty: the next one starts past rank */
    if (low != MS_MERGE_KEY16_ZERO)
        return ms_merge_key16_value(sorted->dtype, (uint16_t)low);
    bool negative = sorted->zeros_negative;
    if (sorted->zero_signs != NULL) {
        uint64_t t = rank - sorted->key_starts[low];
        negative = (sorted->zero_signs[t / 8] >> (t % 8)) & 1u;
    }
    return negative ? -0.0 : 0.0;
}

/* The k-th smallest |a| from the pattern histogram (magnitude patterns order
 * like their values, NaN above Inf). */
static double narrow_kth_magnitude(const sorted_values *sorted, uint64_t k)
{
    uint64_t seen = 0;
    for (uint32_t magnitude = 0; magnitude < 0x8000u; magnitude++) {
        seen += sorted->pattern_counts[magnitude] + sorted->pattern_counts[magnitude | 0x8000u];
        if (seen >= k)
            return sorted->dtype == MS_DTYPE_F16 ? ms_half_to_double((uint16_t)magnitude)
                                                 : ms_bfloat16_to_double((uint16_t)magnitude);
    }
    return NAN;   /* k <= n: not reached */
}

/* sd-meh's kth_abs_value: -1 for k <= 0. */
static ms_status kth_magnitude(const ms_merge_task *task, const sorted_values *sorted,
                               int64_t k, double *kth, ms_error *err)
{
    if (k <= 0) {
        *kth = -1;
        return MS_OK;
    }
    if (sorted->pattern_counts != NULL) {
        *kth = narrow_kth_magnitude(sorted, (uint64_t)k);
        return MS_OK;
    }
    return ms_merge_select_magnitude(task, &task->a, NULL, (uint64_t)k, MS_MERGE_SELECT_COLLECT,
                                     kth, err);
}

typedef struct top_k {
    const ms_merge_task *task;
    ms_merge_order order;
    sorted_values sorted;
    double low, high;          /* the band: low < |v| <= high */
    bool inverted;
    uint32_t *positions;
} top_k;

static ms_status emit(top_k *t, ms_merge_chunks *chunks, ms_error *err)
{
    const ms_merge_task *task = t->task;
    for (uint64_t start = 0; start < task->count;) {
        size_t count = ms_merge_chunk_length(task, start);
        ms_status status = ms_merge_check_cancel(task, err);
        if (status == MS_OK)
            status = ms_merge_read(task, &task->a, start, count, chunks->a, err);
        if (status == MS_OK)
            status = ms_merge_order_positions(task, &t->order, start, count, t->positions, err);
        if (status != MS_OK)
            return status;
        for (size_t i = 0; i < count; i++) {
            double value = sorted_at(&t->sorted, t->positions[i]);
            double magnitude = fabs(value);
            bool in_band = t->low < magnitude && magnitude <= t->high;
            double mask = in_band != t->inverted ? 1.0 : 0.0;
            chunks->out[i] = (1 - mask) * chunks->a[i] + mask * value;
        }
        if ((status = ms_merge_emit(task, start, chunks->out, count, err)) != MS_OK)
            return status;
        start += count;
    }
    return MS_OK;
}

static ms_status run(top_k *t, ms_error *err)
{
    const ms_merge_task *task = t->task;
    region band = region_of(task->alpha, task->beta, task->count);
    t->inverted = band.inverted;
    if (band.start > (int64_t)task->count || band.end > (int64_t)task->count)
        return ms_error_set(err, MS_ERR_INTERNAL, task->key, "top_k region past the tensor");
    ms_status status = ms_merge_order_build(task, &task->b, &t->order, err);
    if (status != MS_OK)
        return status;
    status = ms_merge_dtype_is_narrow(task->a.dtype) ? sorted_build_narrow(task, &t->sorted, err)
                                                     : sorted_build_wide(task, &t->sorted, err);
    if (status == MS_OK)
        status = kth_magnitude(task, &t->sorted, band.start, &t->low, err);
    if (status == MS_OK)
        status = kth_magnitude(task, &t->sorted, band.end, &t->high, err);
    if (status != MS_OK)
        return status;
    ms_merge_chunks chunks;
    t->positions = malloc(ms_merge_chunk_capacity(task) * sizeof *t->positions);
    status = ms_merge_chunks_alloc(task, MS_MERGE_CHUNK_A | MS_MERGE_CHUNK_OUT, &chunks, err);
    if (status == MS_OK && t->positions == NULL)
        status = ms_merge_out_of_memory(task, ms_merge_top_k_scratch(task), err);
    if (status == MS_OK)
        status = emit(t, &chunks, err);
    ms_merge_chunks_free(&chunks);
    return status;
}

ms_status ms_merge_top_k_tensor_sum(const ms_merge_task *task, ms_error *err)
{
    ms_status status = ms_merge_check_weights(task, err);
    if (status != MS_OK || task->count == 0)
        return status;
    top_k t;
    memset(&t, 0, sizeof t);
    t.task = task;
    t.sorted.dtype = task->a.dtype;
    status = run(&t, err);
    ms_merge_order_free(&t.order);
    sorted_free(&t.sorted);
    free(t.positions);
    return status;
}

/* Phases: B's order is built (its build peak), then sorted A is built next
 * to it, then the band's selections (wide A) and the output pass run next
 * to both. */
uint64_t ms_merge_top_k_scratch(const ms_merge_task *task)
{
    uint64_t order_held, order_peak;
    ms_merge_order_scratch(task, &task->b, &order_held, &order_peak);
    uint64_t chunk = ms_merge_chunk_capacity(task);
    uint64_t sorted_held, sorted_peak, after;
    if (ms_merge_dtype_is_narrow(task->a.dtype)) {
        sorted_held = (2 * KEYS + 1) * sizeof(uint64_t) + (task->count + 7) / 8;
        sorted_peak = sorted_held + chunk * sizeof(uint16_t);
        after = 0;
    } else {
        sorted_held = task->count * sizeof(double);
        sorted_peak = sorted_held + chunk * sizeof(double);
        after = ms_merge_select_scratch(task, MS_MERGE_SELECT_COLLECT);
    }
    uint64_t emitting = ms_merge_chunks_bytes(task, MS_MERGE_CHUNK_A | MS_MERGE_CHUNK_OUT) +
                        chunk * sizeof(uint32_t);
    if (emitting > after)
        after = emitting;
    uint64_t peak = order_peak;
    if (order_held + sorted_peak > peak)
        peak = order_held + sorted_peak;
    if (order_held + sorted_held + after > peak)
        peak = order_held + sorted_held + after;
    return peak;
}
