/* euclidean_add_difference: c + d / |d| * |s| (algorithms.md section 3),
 * with da = (a-c)/|a-c|, db = (b-c)/|b-c| (NaN -> 0),
 * d = copysign(sqrt((1-α) da² + α db²), s), s = (1-α) a + α b - c.
 * The norms need the whole tensor, the elements only their own chunk: three
 * passes (|a-c|, |b-c| and |s|; then |d|; then the output), nothing held but
 * the chunk buffers.  Sums of squares are compensated (Neumaier), so a
 * 63M-element norm loses nothing to the running total. */
#include "method_internal.h"

#include <math.h>

typedef struct compensated_sum {
    double sum, compensation;
} compensated_sum;

static void add_term(compensated_sum *total, double term)
{
    double next = total->sum + term;
    if (!isfinite(next)) {          /* an Inf input: the norm is Inf, as torch's */
        total->sum = next;
        return;
    }
    if (fabs(total->sum) >= fabs(term))
        total->compensation += (total->sum - next) + term;
    else
        total->compensation += (term - next) + total->sum;
    total->sum = next;
}

static double norm_of(const compensated_sum *squares)
{
    if (!isfinite(squares->sum))
        return sqrt(squares->sum);
    return sqrt(squares->sum + squares->compensation);
}

typedef struct euclidean {
    double alpha;
    compensated_sum a_squares, b_squares, s_squares, d_squares;
    double a_norm, b_norm, s_norm, d_norm;
} euclidean;

/* torch.nan_to_num: NaN -> 0 (here from 0/0 when a norm is 0) */
static double nan_to_zero(double value)
{
    return isnan(value) ? 0.0 : value;
}

static double direction_of(const euclidean *e, double a, double b, double c)
{
    return (1 - e->alpha) * a + e->alpha * b - c;
}

/* d for one element, its sign from s. */
static double distance_of(const euclidean *e, double a, double b, double c)
{
    double da = nan_to_zero((a - c) / e->a_norm);
    double db = nan_to_zero((b - c) / e->b_norm);
    double distance = sqrt((1 - e->alpha) * (da * da) + e->alpha * (db * db));
    return copysign(distance, direction_of(e, a, b, c));
}

static void norms_chunk(void *context, const ms_merge_chunks *chunks, uint64_t start,
                        size_t count)
{
    (void)start;
    euclidean *e = context;
    for (size_t i = 0; i < count; i++) {
        double a = chunks->a[i], b = chunks->b[i], c = chunks->c[i];
        double s = direction_of(e, a, b, c);
        add_term(&e->a_squares, (a - c) * (a - c));
        add_term(&e->b_squares, (b - c) * (b - c));
        add_term(&e->s_squares, s * s);
    }
}

static void distance_norm_chunk(void *context, const ms_merge_chunks *chunks, uint64_t start,
                                size_t count)
{
    (void)start;
    euclidean *e = context;
    for (size_t i = 0; i < count; i++) {
        double d = distance_of(e, chunks->a[i], chunks->b[i], chunks->c[i]);
        add_term(&e->d_squares, d * d);
    }
}

/* A zero |d| (a = b = c) gives 0/0 = NaN, as in sd-meh; the driver's NaN
 * policy decides what to do with it. */
static void output_chunk(void *context, const ms_merge_chunks *chunks, uint64_t start,
                         size_t count)
{
    (void)start;
    const euclidean *e = context;
    for (size_t i = 0; i < count; i++) {
        double c = chunks->c[i];
        double d = distance_of(e, chunks->a[i], chunks->b[i], c);
        chunks->out[i] = c + d / e->d_norm * e->s_norm;
    }
}

static const int euclidean_buffers =
    MS_MERGE_CHUNK_A | MS_MERGE_CHUNK_B | MS_MERGE_CHUNK_C | MS_MERGE_CHUNK_OUT;

ms_status ms_merge_euclidean_add_difference(const ms_merge_task *task, ms_error *err)
{
    ms_status status = ms_merge_check_weights(task, err);
    if (status != MS_OK || task->count == 0)
        return status;
    euclidean e = {.alpha = task->alpha};
    ms_merge_chunks chunks;
    status = ms_merge_chunks_alloc(task, euclidean_buffers, &chunks, err);
    if (status == MS_OK)
        status = ms_merge_pass(task, &chunks, norms_chunk, &e, false, err);
    if (status == MS_OK) {
        e.a_norm = norm_of(&e.a_squares);
        e.b_norm = norm_of(&e.b_squares);
        e.s_norm = norm_of(&e.s_squares);
        status = ms_merge_pass(task, &chunks, distance_norm_chunk, &e, false, err);
    }
    if (status == MS_OK) {
        e.d_norm = norm_of(&e.d_squares);
        status = ms_merge_pass(task, &chunks, output_chunk, &e, true, err);
    }
    ms_merge_chunks_free(&chunks);
    return status;
}

uint64_t ms_merge_euclidean_scratch(const ms_merge_task *task)
{
    return ms_merge_chunks_bytes(task, euclidean_buffers);
}
