/* ties_add_difference (algorithms.md section 3): for m in {a, b}, d_m = m - c
 * keeps the entries with |d_m| >= the k-th smallest |d_m|, k =
 * max(int((1-β) n), 1); s = sign(sign(d_a) + sign(d_b)); the kept d_m whose
 * sign is s are averaged (0/0 -> 0); result c + α * that.
 *
 * The two k-th values come from radix selection (select.c), a few chunked
 * passes each; then one emitting pass.  Nothing of size n is held. */
#include "method_internal.h"

#include <math.h>

typedef struct ties {
    double alpha;
    double a_kth, b_kth;
} ties;

/* torch.sign on the CPU: -1, 0 or 1, and 0 for NaN (unlike numpy); in a
 * form without branches, so that the output loop vectorises. */
static inline double sign_of(double value)
{
    return (double)(value > 0) - (double)(value < 0);
}

static void output_chunk(void *context, const ms_merge_chunks *chunks, uint64_t start,
                         size_t count)
{
    (void)start;
    const ties *t = context;
    double alpha = t->alpha, a_kth = t->a_kth, b_kth = t->b_kth;
    const double *a = chunks->a, *b = chunks->b, *c = chunks->c;
    double *out = chunks->out;
#pragma omp simd   /* the chunk buffers never overlap */
    for (size_t i = 0; i < count; i++) {
        /* sd-meh's filter_top_k: d * (|d| >= kth), as a float mask product */
        double da = a[i] - c[i], db = b[i] - c[i];
        da *= fabs(da) >= a_kth ? 1.0 : 0.0;
        db *= fabs(db) >= b_kth ? 1.0 : 0.0;
        double sign_a = sign_of(da), sign_b = sign_of(db);
        double sign = sign_of(sign_a + sign_b);
        double use_a = sign_a == sign ? 1.0 : 0.0, use_b = sign_b == sign ? 1.0 : 0.0;
        double sum = (0.0 + use_a * da) + use_b * db;
        double mean = sum / (use_a + use_b);
        out[i] = c[i] + alpha * (mean == mean ? mean : 0.0);   /* nan_to_num: 0/0 -> 0 */
    }
}

/* k from β; a β below 0 asks for more than n entries, which torch's
 * kthvalue refuses: so do we. */
static ms_status rank_of(const ms_merge_task *task, uint64_t *k, ms_error *err)
{
    int64_t wanted = ms_merge_python_int((1 - task->beta) * (double)task->count);
    if (wanted < 1)
        wanted = 1;
    if ((uint64_t)wanted <= task->count) {
        *k = (uint64_t)wanted;
        return MS_OK;
    }
    ms_error_set(err, MS_ERR_INVALID_PARAMETER, task->key,
                 "ties_add_difference: beta %g keeps the %lld-th of %llu values", task->beta,
                 (long long)wanted, (unsigned long long)task->count);
    ms_error_detail_add(err, "field", "beta");
    ms_error_detail_add(err, "beta", "%.17g", task->beta);
    return MS_ERR_INVALID_PARAMETER;
}

static const int ties_buffers =
    MS_MERGE_CHUNK_A | MS_MERGE_CHUNK_B | MS_MERGE_CHUNK_C | MS_MERGE_CHUNK_OUT;

ms_status ms_merge_ties_add_difference(const ms_merge_task *task, ms_error *err)
{
    ms_status status = ms_merge_check_weights(task, err);
    if (status != MS_OK || task->count == 0)
        return status;
    uint64_t k = 0;
    ties t = {.alpha = task->alpha};
    if ((status = rank_of(task, &k, err)) != MS_OK)
        return status;
    status = ms_merge_select_magnitude(task, &task->a, &task->c, k, MS_MERGE_SELECT_COLLECT,
                                       &t.a_kth, err);
    if (status == MS_OK)
        status = ms_merge_select_magnitude(task, &task->b, &task->c, k,
                                           MS_MERGE_SELECT_COLLECT, &t.b_kth, err);
    if (status != MS_OK)
        return status;
    ms_merge_chunks chunks;
    status = ms_merge_chunks_alloc(task, ties_buffers, &chunks, err);
    if (status == MS_OK)
        status = ms_merge_pass(task, &chunks, output_chunk, &t, true, err);
    ms_merge_chunks_free(&chunks);
    return status;
}

/* The selection's buffers are freed before the output pass's are taken. */
uint64_t ms_merge_ties_scratch(const ms_merge_task *task)
{
    uint64_t selecting = ms_merge_select_scratch(task, MS_MERGE_SELECT_COLLECT);
    uint64_t emitting = ms_merge_chunks_bytes(task, ties_buffers);
    return selecting > emitting ? selecting : emitting;
}
