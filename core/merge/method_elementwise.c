/* The methods that are a formula per element (algorithms.md section 3),
 * written in sd-meh's order of operations, plus tensor_sum (rows of dim 0).
 * One emitting pass each; nothing is held but the chunk buffers. */
#include "method_internal.h"

#include <math.h>

typedef struct weights {
    double alpha, beta;
} weights;

static void weighted_sum_chunk(void *context, const ms_merge_chunks *chunks, uint64_t start,
                               size_t count)
{
    (void)start;
    const weights *w = context;
#pragma omp simd   /* the chunk buffers never overlap */
    for (size_t i = 0; i < count; i++)
        chunks->out[i] = (1 - w->alpha) * chunks->a[i] + w->alpha * chunks->b[i];
}

static void weighted_subtraction_chunk(void *context, const ms_merge_chunks *chunks,
                                       uint64_t start, size_t count)
{
    (void)start;
    const weights *w = context;
    double product = w->alpha * w->beta;
#pragma omp simd   /* the chunk buffers never overlap */
    for (size_t i = 0; i < count; i++)
        chunks->out[i] = (chunks->a[i] - product * chunks->b[i]) / (1 - product);
}

static void add_difference_chunk(void *context, const ms_merge_chunks *chunks, uint64_t start,
                                 size_t count)
{
    (void)start;
    const weights *w = context;
#pragma omp simd   /* the chunk buffers never overlap */
    for (size_t i = 0; i < count; i++)
        chunks->out[i] = chunks->a[i] + w->alpha * (chunks->b[i] - chunks->c[i]);
}

static void sum_twice_chunk(void *context, const ms_merge_chunks *chunks, uint64_t start,
                            size_t count)
{
    (void)start;
    const weights *w = context;
#pragma omp simd   /* the chunk buffers never overlap */
    for (size_t i = 0; i < count; i++) {
        double inner = (1 - w->alpha) * chunks->a[i] + w->alpha * chunks->b[i];
        chunks->out[i] = (1 - w->beta) * inner + w->beta * chunks->c[i];
    }
}

static void triple_sum_chunk(void *context, const ms_merge_chunks *chunks, uint64_t start,
                             size_t count)
{
    (void)start;
    const weights *w = context;
#pragma omp simd   /* the chunk buffers never overlap */
    for (size_t i = 0; i < count; i++)
        chunks->out[i] = (1 - w->alpha - w->beta) * chunks->a[i] + w->alpha * chunks->b[i] +
                         w->beta * chunks->c[i];
}

static void multiply_difference_chunk(void *context, const ms_merge_chunks *chunks,
                                      uint64_t start, size_t count)
{
    (void)start;
    const weights *w = context;
    for (size_t i = 0; i < count; i++) {
        double a = chunks->a[i], b = chunks->b[i], c = chunks->c[i];
        double magnitude = pow(fabs(a - c), 1 - w->alpha) * pow(fabs(b - c), w->alpha);
        double direction = (1 - w->beta) * a + w->beta * b - c;
        chunks->out[i] = c + copysign(magnitude, direction);
    }
}

/* torch.maximum propagates NaN, fmax would not */
static double nan_maximum(double x, double y)
{
    if (isnan(x) || isnan(y))
        return NAN;
    return x > y ? x : y;
}

static void similarity_add_difference_chunk(void *context, const ms_merge_chunks *chunks,
                                            uint64_t start, size_t count)
{
    (void)start;
    const weights *w = context;
    for (size_t i = 0; i < count; i++) {
        double a = chunks->a[i], b = chunks->b[i], c = chunks->c[i];
        double threshold = nan_maximum(fabs(a), fabs(b));
        double similarity = ((a * b / (threshold * threshold)) + 1) / 2 * w->beta;
        if (isnan(similarity))       /* 0/0 where a = b = 0: nan_to_num(nan=beta) */
            similarity = w->beta;
        double difference = a + w->alpha * (b - c);
        double sum = (1 - w->alpha / 2) * a + (w->alpha / 2) * b;
        chunks->out[i] = (1 - similarity) * difference + similarity * sum;
    }
}

static ms_status run(const ms_merge_task *task, ms_merge_visit_fn *visit, ms_error *err)
{
    weights w = {task->alpha, task->beta};
    return ms_merge_elementwise(task, visit, &w, err);
}

ms_status ms_merge_weighted_sum(const ms_merge_task *task, ms_error *err)
{
    return run(task, weighted_sum_chunk, err);
}

ms_status ms_merge_weighted_subtraction(const ms_merge_task *task, ms_error *err)
{
    weights w = {task->alpha, task->beta};
    /* sd-meh's guard against 0/0; other alpha * beta == 1 still divide by 0 */
    if (w.alpha == 1.0 && w.beta == 1.0)
        w.beta -= MS_MERGE_EPSILON;
    return ms_merge_elementwise(task, weighted_subtraction_chunk, &w, err);
}

ms_status ms_merge_add_difference(const ms_merge_task *task, ms_error *err)
{
    return run(task, add_difference_chunk, err);
}

ms_status ms_merge_sum_twice(const ms_merge_task *task, ms_error *err)
{
    return run(task, sum_twice_chunk, err);
}

ms_status ms_merge_triple_sum(const ms_merge_task *task, ms_error *err)
{
    return run(task, triple_sum_chunk, err);
}

ms_status ms_merge_multiply_difference(const ms_merge_task *task, ms_error *err)
{
    return run(task, multiply_difference_chunk, err);
}

ms_status ms_merge_similarity_add_difference(const ms_merge_task *task, ms_error *err)
{
    return run(task, similarity_add_difference_chunk, err);
}

/* ---- tensor_sum ---- */

/* A Python slice bound over n rows: negative counts from the end, then
 * clamped into [0, n]. */
static int64_t slice_bound(int64_t index, int64_t rows)
{
    if (index < 0)
        index += rows;
    return index < 0 ? 0 : index > rows ? rows : index;
}

/* Rows of dim 0.  sd-meh indexes a.shape[0], which a 0-d tensor does not
 * have (torch raises); here a 0-d tensor is one row, so the rule still
 * picks A or B for it. */
static ms_status rows_of(const ms_merge_task *task, int64_t *rows, ms_error *err)
{
    *rows = task->ndim > 0 ? task->shape[0] : 1;
    if (*rows > 0 && task->count % (uint64_t)*rows == 0)
        return MS_OK;
    ms_error_set(err, MS_ERR_INVALID_PARAMETER, task->key,
                 "tensor_sum: %lld rows do not divide %llu elements", (long long)*rows,
                 (unsigned long long)task->count);
    ms_error_detail_add(err, "rows", "%lld", (long long)*rows);
    return MS_ERR_INVALID_PARAMETER;
}

/* Elements [first, end) come from *inner, the rest from *outer. */
typedef struct row_split {
    const ms_merge_operand *outer, *inner;
    uint64_t first, end;
} row_split;

static row_split split_rows(const ms_merge_task *task, int64_t rows)
{
    double alpha = task->alpha, beta = task->beta, n = (double)rows;
    int64_t start, stop;
    row_split split;
    if (alpha + beta <= 1) {
        start = ms_merge_python_int(n * beta);
        stop = ms_merge_python_int(n * (alpha + beta));
        split.outer = &task->a;
        split.inner = &task->b;
    } else {
        start = ms_merge_python_int(n * (alpha + beta - 1));
        stop = ms_merge_python_int(n * beta);
        split.outer = &task->b;
        split.inner = &task->a;
    }
    start = slice_bound(start, rows);
    stop = slice_bound(stop, rows);
    if (stop < start)
        stop = start;
    uint64_t row_length = task->count / (uint64_t)rows;
    split.first = (uint64_t)start * row_length;
    split.end = (uint64_t)stop * row_length;
    return split;
}

/* Reads [start, start + count) of the output from whichever operand each
 * element comes from: outer before the split, inner inside it, outer after. */
static ms_status read_rows(const ms_merge_task *task, const row_split *split, uint64_t start,
                           size_t count, double *out, ms_error *err)
{
    uint64_t end = start + count;
    uint64_t inner_from = split->first > start ? split->first : start;
    uint64_t inner_to = split->end < end ? split->end : end;
    if (inner_to < inner_from)     /* no row of this chunk is in the split */
        inner_to = inner_from = start;
    struct {
        const ms_merge_operand *source;
        uint64_t from, to;
    } runs[3] = {{split->outer, start, inner_from},
                 {split->inner, inner_from, inner_to},
                 {split->outer, inner_to, end}};
    for (int i = 0; i < 3; i++) {
        if (runs[i].from >= runs[i].to)
            continue;
        ms_status status = ms_merge_read(task, runs[i].source, runs[i].from,
                                         (size_t)(runs[i].to - runs[i].from),
                                         out + (runs[i].from - start), err);
        if (status != MS_OK)
            return status;
    }
    return MS_OK;
}

ms_status ms_merge_tensor_sum(const ms_merge_task *task, ms_error *err)
{
    int64_t rows = 0;
    ms_status status = ms_merge_check_weights(task, err);
    if (status != MS_OK || task->count == 0)
        return status;
    if ((status = rows_of(task, &rows, err)) != MS_OK)
        return status;
    row_split split = split_rows(task, rows);
    ms_merge_chunks chunks;
    status = ms_merge_chunks_alloc(task, MS_MERGE_CHUNK_OUT, &chunks, err);
    for (uint64_t start = 0; status == MS_OK && start < task->count;) {
        size_t count = ms_merge_chunk_length(task, start);
        status = ms_merge_check_cancel(task, err);
        if (status == MS_OK)
            status = read_rows(task, &split, start, count, chunks.out, err);
        if (status == MS_OK)
            status = ms_merge_emit(task, start, chunks.out, count, err);
        start += count;
    }
    ms_merge_chunks_free(&chunks);
    return status;
}

uint64_t ms_merge_tensor_sum_scratch(const ms_merge_task *task)
{
    return ms_merge_chunks_bytes(task, MS_MERGE_CHUNK_OUT);
}
