/* The rotate method (algorithms.md section 4): A's neurons turned about
 * their centroid towards B's by the fractional power of the Procrustes
 * rotation, morphed towards B's shape by beta, moved to the blended
 * centroid.
 *
 * Everything that does not depend on alpha and beta is reduced to "terms"
 * (rotate_terms.c): the centroids, the spectrum of the rotation as
 * eigen_rows and generator_rows, and per neuron the rows A, B (and Z in a
 * subspace).  Then for any alpha and beta a key costs one product:
 *   full:     out = ((1-beta) A + beta B) D(alpha) + c
 *   subspace: out = ((1-beta) A + beta B) F(alpha)
 *                   + (1-beta) Xa + beta (Xb + Z) + c
 * with D = diag(cos) E + diag(f) G and F = diag(cos - 1) E + diag(f) G
 * (rotate_math.h), c = (1-alpha) ca + alpha cb, Xa, Xb the centred inputs. */
#include "method_rotate.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/format/dtype.h"

void ms_rotate_shape(const ms_merge_task *task, size_t *rows, size_t *columns)
{
    uint64_t length = 1;
    if (task->ndim == 4)
        length = (uint64_t)task->shape[1] * (uint64_t)task->shape[2] * (uint64_t)task->shape[3];
    else if (task->ndim >= 1)
        length = (uint64_t)task->shape[task->ndim - 1];
    *columns = (size_t)length;
    *rows = length > 0 ? (size_t)(task->count / length) : 0;
}

bool ms_rotate_is_rotated(const ms_merge_task *task)
{
    if (task->alpha == 0.0 && task->beta == 0.0)
        return false;
    if (task->ndim == 0 || (task->ndim == 4 && task->shape[3] != 1) || task->count == 0)
        return false;
    return true;
}

size_t ms_rotate_block_rows(size_t columns)
{
    size_t rows = ROTATE_ROW_BLOCK_ELEMENTS / (columns > 0 ? columns : 1);
    return rows > 0 ? rows : 1;
}

/* ---- the early returns: plain passes ---- */

static void copy_a_chunk(void *context, const ms_merge_chunks *chunks, uint64_t start,
                         size_t count)
{
    (void)context;
    (void)start;
    memcpy(chunks->out, chunks->a, count * sizeof(double));
}

static void weighted_by_beta_chunk(void *context, const ms_merge_chunks *chunks,
                                   uint64_t start, size_t count)
{
    const ms_merge_task *task = context;
    (void)start;
    for (size_t i = 0; i < count; i++)
        chunks->out[i] = (1.0 - task->beta) * chunks->a[i] + task->beta * chunks->b[i];
}

static ms_status emit_pass(const ms_merge_task *task, ms_merge_visit_fn *visit, bool needs_b,
                           ms_error *err)
{
    ms_merge_chunks chunks;
    int which = MS_MERGE_CHUNK_A | MS_MERGE_CHUNK_OUT | (needs_b ? MS_MERGE_CHUNK_B : 0);
    ms_status status = ms_merge_chunks_alloc(task, which, &chunks, err);
    if (status != MS_OK)
        return status;
    status = ms_merge_pass(task, &chunks, visit, (void *)task, true, err);
    ms_merge_chunks_free(&chunks);
    return status;
}

/* ---- the pass that needs no decomposition ---- */

static ms_status input_not_finite(const ms_merge_task *task, const char *model, uint64_t index,
                                  ms_error *err)
{
    ms_error_set(err, MS_ERR_NAN_DETECTED, task->key,
                 "%s: model %s's tensor holds NaN or Inf (element %llu): it cannot be rotated",
                 task->key, model, (unsigned long long)index);
    ms_error_detail_add(err, "model", "%s", model);
    ms_error_detail_add(err, "element", "%llu", (unsigned long long)index);
    return MS_ERR_NAN_DETECTED;
}

static bool same_half(double x, double y)
{
    uint16_t hx = ms_half_from_double(x), hy = ms_half_from_double(y);
    if ((hx & 0x7c00u) == 0x7c00u && (hx & 0x03ffu) != 0)
        return false;                                    /* NaN */
    return hx == hy || ((hx | hy) & 0x7fffu) == 0;       /* +0 == -0 */
}

ms_status ms_rotate_scan(const ms_merge_task *task, size_t rows, size_t columns,
                         double *centroid_a, double *centroid_b, bool *equal_in_half,
                         ms_error *err)
{
    size_t block_rows = ms_rotate_block_rows(columns);
    double *a = ms_merge_large_doubles(block_rows * columns), *b = ms_merge_large_doubles(block_rows * columns);
    ms_status status = MS_OK;
    if (a == NULL || b == NULL) {
        status = ms_merge_out_of_memory(task, 2 * block_rows * columns * sizeof(double), err);
        goto done;
    }
    memset(centroid_a, 0, columns * sizeof(double));
    memset(centroid_b, 0, columns * sizeof(double));
    *equal_in_half = true;
    for (size_t row = 0; row < rows; row += block_rows) {
        size_t count = (rows - row < block_rows ? rows - row : block_rows) * columns;
        uint64_t start = (uint64_t)row * columns;
        status = ms_merge_check_cancel(task, err);
        if (status == MS_OK)
            status = ms_merge_read(task, &task->a, start, count, a, err);
        if (status == MS_OK)
            status = ms_merge_read(task, &task->b, start, count, b, err);
        if (status != MS_OK)
            goto done;
        size_t bad = ms_first_non_finite(a, count);
        if (bad < count) {
            status = input_not_finite(task, "A", start + bad, err);
            goto done;
        }
        bad = ms_first_non_finite(b, count);
        if (bad < count) {
            status = input_not_finite(task, "B", start + bad, err);
            goto done;
        }
        for (size_t i = 0; i < count; i++) {
            centroid_a[i % columns] += a[i];
            centroid_b[i % columns] += b[i];
            if (*equal_in_half && !same_half(a[i], b[i]))
                *equal_in_half = false;
        }
    }
    for (size_t j = 0; j < columns; j++) {
        centroid_a[j] /= (double)rows;
        centroid_b[j] /= (double)rows;
    }
done:
    free(a);
    free(b);
    return status;
}

/* One row: the blended centroid is the answer. */
static ms_status emit_centroid(const ms_merge_task *task, size_t columns,
                               const double *centroid_a, const double *centroid_b,
                               ms_error *err)
{
    double *row = ms_merge_large_doubles(columns);
    if (row == NULL)
        return ms_merge_out_of_memory(task, columns * sizeof(double), err);
    for (size_t j = 0; j < columns; j++)
        row[j] = (1.0 - task->alpha) * centroid_a[j] + task->alpha * centroid_b[j];
    ms_status status = ms_merge_emit(task, 0, row, columns, err);
    free(row);
    return status;
}

ms_status ms_merge_rotate(const ms_merge_task *task, ms_error *err)
{
    ms_status status = ms_merge_check_weights(task, err);
    if (status != MS_OK)
        return status;
    if (task->alpha == 0.0 && task->beta == 0.0)
        return emit_pass(task, copy_a_chunk, false, err);
    if (!ms_rotate_is_rotated(task))
        return emit_pass(task, weighted_by_beta_chunk, true, err);
    size_t rows, columns;
    ms_rotate_shape(task, &rows, &columns);
    ms_rotate_terms terms;
    status = ms_rotate_terms_acquire(task, rows, columns, &terms, err);
    if (status != MS_OK)
        return status;
    if (terms.outcome == MS_ROTATE_EQUAL_IN_HALF)
        status = emit_pass(task, weighted_by_beta_chunk, true, err);
    else if (terms.outcome == MS_ROTATE_ONE_ROW)
        status = emit_centroid(task, columns, terms.centroid_a, terms.centroid_b, err);
    else
        status = ms_rotate_terms_apply(task, &terms, err);
    ms_rotate_terms_release(&terms);
    return status;
}

/* Floating-point operations in bytes' worth: a computed key's SVD and
 * eigendecomposition (about 25 k^3) and its products (about 8 n d k), an
 * eighth of a byte each, so that a large key weighs what it costs next to
 * the bytes of the keys merely copied or blended. */
uint64_t ms_merge_rotate_work(const ms_merge_task *task)
{
    uint64_t bytes = task->count * 2;
    if (!ms_rotate_is_rotated(task))
        return bytes;
    size_t rows, columns;
    ms_rotate_shape(task, &rows, &columns);
    double k = 2 * rows < columns ? 2.0 * (double)rows : (double)columns;
    double flops = 25.0 * k * k * k + 8.0 * (double)rows * (double)columns * k;
    return bytes + (uint64_t)(flops / 8.0);
}

uint64_t ms_merge_rotate_scratch(const ms_merge_task *task)
{
    if (!ms_rotate_is_rotated(task))
        return ms_merge_chunks_bytes(task, MS_MERGE_CHUNK_A | MS_MERGE_CHUNK_B |
                                               MS_MERGE_CHUNK_OUT);
    size_t rows, columns;
    ms_rotate_shape(task, &rows, &columns);
    return ms_rotate_scratch_bytes(rows, columns, !ms_rotate_terms_cached(task, rows, columns));
}
