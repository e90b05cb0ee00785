/* The stable ascending order of one operand, as the position of each element.
 *
 * F16/BF16 have 65536 patterns: a counting sort (histogram, prefix sums,
 * then position = next[key]++ scanning the elements in order) gives each
 * element's stable position with no per-element memory, and can be replayed
 * by rewinding next.  The histogram counts raw patterns (no key per
 * element), folded into keys after.  F32/F64 cannot be counted: their ranks
 * are stored (uint32 per element), computed by sorting (key, index) pairs,
 * which orders ties by index, i.e. stably. */
#include "method_internal.h"

#include <stdlib.h>
#include <string.h>

enum { KEYS = 65536 };

static ms_status changed(const ms_merge_task *task, ms_error *err)
{
    ms_error_set(err, MS_ERR_IO, task->key,
                 "tensor \"%s\" changed while it was merged (was its file rewritten?)",
                 task->key != NULL ? task->key : "");
    ms_error_detail_add(err, "reason", "input_changed");
    return MS_ERR_IO;
}

static ms_status count_patterns(const ms_merge_task *task, ms_merge_order *order,
                                uint32_t *counts, ms_error *err)
{
    for (uint64_t start = 0; start < task->count;) {
        size_t count = ms_merge_chunk_length(task, start);
        ms_status status = ms_merge_check_cancel(task, err);
        if (status == MS_OK)
            status = ms_merge_read_bits16(task, order->operand, start, count, order->bits, err);
        if (status != MS_OK)
            return status;
        for (size_t i = 0; i < count; i++)
            counts[order->bits[i]]++;
        start += count;
    }
    return MS_OK;
}

/* Each key's range from the pattern counts: its members, then prefix sums
 * (end holds the counts until then). */
static void fold_into_ranges(ms_dtype dtype, const uint32_t *counts, ms_merge_order *order)
{
    for (uint32_t pattern = 0; pattern < KEYS; pattern++)
        order->end[ms_merge_key16(dtype, (uint16_t)pattern)] += counts[pattern];
    uint32_t sum = 0;
    for (size_t key = 0; key < KEYS; key++) {
        order->next[key] = sum;
        sum += order->end[key];
        order->end[key] = sum;
    }
}

static ms_status build_narrow(const ms_merge_task *task, ms_merge_order *order, ms_error *err)
{
    uint32_t *counts = calloc(KEYS, sizeof *counts);
    order->next = malloc(KEYS * sizeof *order->next);
    order->end = calloc(KEYS, sizeof *order->end);
    order->bits = malloc(ms_merge_chunk_capacity(task) * sizeof *order->bits);
    ms_status status = MS_OK;
    if (counts == NULL || order->next == NULL || order->end == NULL || order->bits == NULL) {
        uint64_t held, peak;
        ms_merge_order_scratch(task, order->operand, &held, &peak);
        status = ms_merge_out_of_memory(task, peak, err);
    } else {
        status = count_patterns(task, order, counts, err);
    }
    if (status == MS_OK)
        fold_into_ranges(order->operand->dtype, counts, order);
    free(counts);
    return status;
}

static ms_status read_keys_f32(const ms_merge_task *task, const ms_merge_operand *operand,
                               uint64_t *packed, double *chunk, ms_error *err)
{
    for (uint64_t start = 0; start < task->count;) {
        size_t count = ms_merge_chunk_length(task, start);
        ms_status status = ms_merge_check_cancel(task, err);
        if (status == MS_OK)
            status = ms_merge_read(task, operand, start, count, chunk, err);
        if (status != MS_OK)
            return status;
        for (size_t i = 0; i < count; i++)
            packed[start + i] = (uint64_t)ms_merge_key32((float)chunk[i]) << 32 | (start + i);
        start += count;
    }
    return MS_OK;
}

/* F32: key and index packed in one uint64, so sorting the numbers sorts by
 * key, then index. */
static ms_status ranks_f32(const ms_merge_task *task, ms_merge_order *order, double *chunk,
                           ms_error *err)
{
    uint64_t *packed = malloc(task->count * sizeof *packed);
    if (packed == NULL)
        return ms_merge_out_of_memory(task, task->count * sizeof *packed, err);
    ms_status status = read_keys_f32(task, order->operand, packed, chunk, err);
    if (status == MS_OK) {
        ms_merge_sort_u64(packed, (size_t)task->count);
        for (uint64_t i = 0; i < task->count; i++)
            order->ranks[(uint32_t)packed[i]] = (uint32_t)i;
    }
    free(packed);
    return status;
}

typedef struct keyed_index {
    uint64_t key, index;
} keyed_index;

static int compare_keyed(const void *left, const void *right)
{
    const keyed_index *l = left, *r = right;
    if (l->key != r->key)
        return l->key < r->key ? -1 : 1;
    return l->index < r->index ? -1 : l->index > r->index;
}

/* F64: a 64-bit key leaves no room for the index; pairs, sorted by both. */
static ms_status ranks_f64(const ms_merge_task *task, ms_merge_order *order, double *chunk,
                           ms_error *err)
{
    keyed_index *pairs = malloc(task->count * sizeof *pairs);
    if (pairs == NULL)
        return ms_merge_out_of_memory(task, task->count * sizeof *pairs, err);
    ms_status status = MS_OK;
    for (uint64_t start = 0; status == MS_OK && start < task->count;) {
        size_t count = ms_merge_chunk_length(task, start);
        status = ms_merge_check_cancel(task, err);
        if (status == MS_OK)
            status = ms_merge_read(task, order->operand, start, count, chunk, err);
        for (size_t i = 0; status == MS_OK && i < count; i++)
            pairs[start + i] = (keyed_index){ms_merge_key64(chunk[i]), start + i};
        start += count;
    }
    if (status == MS_OK) {
        qsort(pairs, (size_t)task->count, sizeof *pairs, compare_keyed);
        for (uint64_t i = 0; i < task->count; i++)
            order->ranks[pairs[i].index] = (uint32_t)i;
    }
    free(pairs);
    return status;
}

static ms_status build_wide(const ms_merge_task *task, ms_merge_order *order, ms_error *err)
{
    order->ranks = malloc(task->count * sizeof *order->ranks);
    double *chunk = malloc(ms_merge_chunk_capacity(task) * sizeof *chunk);
    ms_status status = MS_OK;
    if (order->ranks == NULL || chunk == NULL) {
        uint64_t held, peak;
        ms_merge_order_scratch(task, order->operand, &held, &peak);
        status = ms_merge_out_of_memory(task, peak, err);
    } else if (order->operand->dtype == MS_DTYPE_F32) {
        status = ranks_f32(task, order, chunk, err);
    } else {
        status = ranks_f64(task, order, chunk, err);
    }
    free(chunk);
    return status;
}

ms_status ms_merge_order_build(const ms_merge_task *task, const ms_merge_operand *operand,
                               ms_merge_order *order, ms_error *err)
{
    memset(order, 0, sizeof *order);
    order->operand = operand;
    if (task->count == 0)
        return MS_OK;
    /* positions are uint32 */
    if (task->count > UINT32_MAX) {
        ms_error_set(err, MS_ERR_INVALID_PARAMETER, task->key,
                     "tensor \"%s\": %llu elements are too many to sort",
                     task->key != NULL ? task->key : "", (unsigned long long)task->count);
        ms_error_detail_add(err, "elements", "%llu", (unsigned long long)task->count);
        return MS_ERR_INVALID_PARAMETER;
    }
    ms_status status = ms_merge_dtype_is_narrow(operand->dtype) ? build_narrow(task, order, err)
                                                                 : build_wide(task, order, err);
    if (status != MS_OK)
        ms_merge_order_free(order);
    return status;
}

/* The chunk's patterns into keys: a loop of its own, which the compiler
 * vectorises, out of the replay's chain of dependent loads. */
static void patterns_to_keys(ms_dtype dtype, uint16_t *bits, size_t count)
{
    for (size_t i = 0; i < count; i++)
        bits[i] = ms_merge_key16(dtype, bits[i]);
}

/* Once every element is replayed, each key has used its range exactly: a
 * file rewritten since the order was built would show here (a range
 * overrun or left short), never as a write out of bounds, since no
 * position is handed out past the element count. */
static ms_status check_replayed(const ms_merge_task *task, const ms_merge_order *order,
                                ms_error *err)
{
    for (size_t key = 0; key < KEYS; key++)
        if (order->next[key] != order->end[key])
            return changed(task, err);
    return MS_OK;
}

/* next[key]++ is the whole replay; the end of each key's range is
 * checked once at the end (check_replayed), keeping the table the loop
 * walks at 4 bytes per key, where the key's own range check made it 8
 * (its loads, missing the caches, were most of the replay). */
static ms_status replay_narrow(const ms_merge_task *task, ms_merge_order *order,
                               uint64_t start, size_t count, uint32_t *positions,
                               ms_error *err)
{
    const uint16_t *keys = order->bits;
    uint32_t *next = order->next;
    uint64_t limit = task->count;
    for (size_t i = 0; i < count; i++) {
        uint32_t position = next[keys[i]]++;
        if (position >= limit)
            return changed(task, err);
        positions[i] = position;
    }
    return start + count == task->count ? check_replayed(task, order, err) : MS_OK;
}

ms_status ms_merge_order_positions(const ms_merge_task *task, ms_merge_order *order,
                                   uint64_t start, size_t count, uint32_t *positions,
                                   ms_error *err)
{
    if (order->ranks != NULL) {
        memcpy(positions, order->ranks + start, count * sizeof *positions);
        return MS_OK;
    }
    ms_status status = ms_merge_read_bits16(task, order->operand, start, count, order->bits, err);
    if (status != MS_OK)
        return status;
    patterns_to_keys(order->operand->dtype, order->bits, count);
    return replay_narrow(task, order, start, count, positions, err);
}

/* Each key's range starts where the one below ends. */
void ms_merge_order_rewind(ms_merge_order *order)
{
    if (order->next == NULL)
        return;
    order->next[0] = 0;
    for (size_t key = 1; key < KEYS; key++)
        order->next[key] = order->end[key - 1];
}

void ms_merge_order_free(ms_merge_order *order)
{
    free(order->next);
    free(order->end);
    free(order->bits);
    free(order->ranks);
    const ms_merge_operand *operand = order->operand;
    memset(order, 0, sizeof *order);
    order->operand = operand;
}

void ms_merge_order_scratch(const ms_merge_task *task, const ms_merge_operand *operand,
                            uint64_t *held, uint64_t *peak)
{
    uint64_t chunk = ms_merge_chunk_capacity(task);
    if (ms_merge_dtype_is_narrow(operand->dtype)) {
        *held = 2 * KEYS * sizeof(uint32_t) + chunk * sizeof(uint16_t);
        *peak = *held + KEYS * sizeof(uint32_t);   /* the pattern counts */
        return;
    }
    uint64_t pair = operand->dtype == MS_DTYPE_F32 ? sizeof(uint64_t) : sizeof(keyed_index);
    *held = task->count * sizeof(uint32_t);
    *peak = *held + task->count * pair + chunk * sizeof(double);
}
