/* The stable ascending order of one operand, as the position of each element.
 *
 * F16/BF16 have 65536 patterns: a counting sort (histogram of keys, prefix
 * sums, then position = next[key]++ scanning the elements in order) gives
 * each element's stable position with no per-element memory, and can be
 * replayed by rewinding next.  F32/F64 cannot be counted: their ranks are
 * stored (uint32 per element), computed by sorting (key, index) pairs, which
 * orders ties by index, i.e. stably. */
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

static ms_status build_narrow(const ms_merge_task *task, ms_merge_order *order, ms_error *err)
{
    size_t chunk = ms_merge_chunk_capacity(task);
    order->starts = calloc(KEYS + 1, sizeof *order->starts);
    order->next = malloc(KEYS * sizeof *order->next);
    order->bits = malloc(chunk * sizeof *order->bits);
    if (order->starts == NULL || order->next == NULL || order->bits == NULL) {
        uint64_t held, peak;
        ms_merge_order_scratch(task, order->operand, &held, &peak);
        return ms_merge_out_of_memory(task, peak, err);
    }
    for (uint64_t start = 0; start < task->count;) {
        size_t count = ms_merge_chunk_length(task, start);
        ms_status status = ms_merge_check_cancel(task, err);
        if (status == MS_OK)
            status = ms_merge_read_bits16(task, order->operand, start, count, order->bits, err);
        if (status != MS_OK)
            return status;
        for (size_t i = 0; i < count; i++)
            order->starts[ms_merge_key16(order->operand->dtype, order->bits[i]) + 1]++;
        start += count;
    }
    for (size_t key = 0; key < KEYS; key++)
        order->starts[key + 1] += order->starts[key];
    ms_merge_order_rewind(order);
    return MS_OK;
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
    if (task->count > UINT32_MAX) {
        ms_error_set(err, MS_ERR_INVALID_PARAMETER, task->key,
                     "tensor \"%s\": %llu elements are too many to sort in %s",
                     task->key != NULL ? task->key : "", (unsigned long long)task->count,
                     ms_dtype_name(order->operand->dtype));
        ms_error_detail_add(err, "elements", "%llu", (unsigned long long)task->count);
        return MS_ERR_INVALID_PARAMETER;
    }
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
    ms_status status = ms_merge_dtype_is_narrow(operand->dtype) ? build_narrow(task, order, err)
                                                                 : build_wide(task, order, err);
    if (status != MS_OK)
        ms_merge_order_free(order);
    return status;
}

ms_status ms_merge_order_positions(const ms_merge_task *task, ms_merge_order *order,
                                   uint64_t start, size_t count, uint64_t *positions,
                                   ms_error *err)
{
    if (order->ranks != NULL) {
        for (size_t i = 0; i < count; i++)
            positions[i] = order->ranks[start + i];
        return MS_OK;
    }
    ms_status status = ms_merge_read_bits16(task, order->operand, start, count, order->bits, err);
    if (status != MS_OK)
        return status;
    for (size_t i = 0; i < count; i++) {
        uint16_t key = ms_merge_key16(order->operand->dtype, order->bits[i]);
        /* a rewritten file could overrun a key's range: never write past n */
        if (order->next[key] >= order->starts[key + 1])
            return changed(task, err);
        positions[i] = order->next[key]++;
    }
    return MS_OK;
}

void ms_merge_order_rewind(ms_merge_order *order)
{
    if (order->next != NULL)
        memcpy(order->next, order->starts, KEYS * sizeof *order->next);
}

void ms_merge_order_free(ms_merge_order *order)
{
    free(order->starts);
    free(order->next);
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
        *held = (2 * KEYS + 1) * sizeof(uint64_t) + chunk * sizeof(uint16_t);
        *peak = *held;
        return;
    }
    uint64_t pair = operand->dtype == MS_DTYPE_F32 ? sizeof(uint64_t) : sizeof(keyed_index);
    *held = task->count * sizeof(uint32_t);
    *peak = *held + task->count * pair + chunk * sizeof(double);
}
