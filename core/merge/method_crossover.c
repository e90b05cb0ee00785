/* distribution_crossover (algorithms.md section 3): with p the stable
 * ascending order of C, x = a[p], y = b[p], the spectrum (1-f) X + f Y is
 * brought back, z = irfft(...), and out[p[j]] = z[j].
 *
 * By linearity z = x + irfft(f ⊙ rfft(y - x)): only y - x needs an n-element
 * array, and it is the one in-place FFTW buffer (n + 2 doubles).  x is never
 * stored: out[j] = a[j] + g[position of j], scanning j in order, with the
 * position replayed from C's counting sort (or its stored ranks, F32/F64).
 * So the tensor is emitted in order, chunk by chunk, and the method holds the
 * FFT buffer plus C's order (nothing per element for F16/BF16); the FFT
 * itself works in that buffer (fft_real.c). */
#include "method_internal.h"

#include <fftw3.h>
#include <math.h>
#include <limits.h>
#include <stdlib.h>

static void scalar_chunk(void *context, const ms_merge_chunks *chunks, uint64_t start,
                         size_t count)
{
    (void)start;
    double alpha = *(const double *)context;
    for (size_t i = 0; i < count; i++)
        chunks->out[i] = alpha * chunks->a[i] + (1 - alpha) * chunks->b[i];
}

enum { KEPT_MAPPED_BYTES = 64u << 20 };

/* The scatter and the gather touch the spectrum in C's order: past the
 * caches nearly every access misses, and the processor keeps only so many
 * misses in flight (a store waits in the store buffer for its line).  Asking
 * for the line of the element this far ahead keeps more of them going:
 * SDXL's crossover took 87-89 s of user time against 96-98 with none, 91-98
 * at 32 ahead and 86-94 at 128 (alternated runs, inputs in 2 MiB folios). */
enum { PREFETCH_AHEAD = 64 };

/* A's and C's bytes of the tensor when they stay mapped, else 0: resident
 * while the tensor runs, so counted in its scratch like its heap. */
static uint64_t kept_mapped_bytes(const ms_merge_task *task)
{
    uint64_t reread = task->count * (ms_dtype_size(task->a.dtype) + ms_dtype_size(task->c.dtype));
    return reread <= KEPT_MAPPED_BYTES ? reread : 0;
}

typedef struct crossover {
    const ms_merge_task *task;
    ms_merge_order order;
    double *spectrum;          /* n + 2 doubles: y - x, then its transforms */
    double *own_spectrum;      /* the spectrum when not the task's block */
    uint32_t *positions;
    ms_merge_chunks chunks;
} crossover;

/* spectrum[position of j] = b[j] - a[j] */
static ms_status scatter_differences(crossover *x, ms_error *err)
{
    const ms_merge_task *task = x->task;
    for (uint64_t start = 0; start < task->count;) {
        size_t count = ms_merge_chunk_length(task, start);
        ms_status status = ms_merge_check_cancel(task, err);
        if (status == MS_OK)
            status = ms_merge_read(task, &task->a, start, count, x->chunks.a, err);
        if (status == MS_OK)
            status = ms_merge_read(task, &task->b, start, count, x->chunks.b, err);
        if (status == MS_OK)
            status = ms_merge_order_positions(task, &x->order, start, count, x->positions, err);
        if (status != MS_OK)
            return status;
        for (size_t i = 0; i < count; i++) {
            if (i + PREFETCH_AHEAD < count)
                __builtin_prefetch(&x->spectrum[x->positions[i + PREFETCH_AHEAD]], 1);
            x->spectrum[x->positions[i]] = x->chunks.b[i] - x->chunks.a[i];
        }
        start += count;
    }
    return MS_OK;
}

static double ramp_at(double alpha, double beta, size_t bin, size_t bins)
{
    double f = ((double)bin / (double)bins - alpha) / beta + 0.5;
    return f < 0 ? 0.0 : f > 1 ? 1.0 : f;
}

/* The first i in [low, high) whose factor is past `level` (high if none):
 * the ramp is monotone in the bin. */
static size_t first_past(const ms_merge_task *task, size_t first, size_t stride, size_t bins,
                         size_t low, size_t high, double level)
{
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (ramp_at(task->alpha, task->beta, first + stride * middle, bins) > level)
            high = middle;
        else
            low = middle + 1;
    }
    return low;
}

/* The crossover filter of bins first + stride i.  Each step of the ramp's
 * formula is monotone in the bin (correctly rounded division and
 * subtraction are), so the factors are 0 up to some i and 1 from some
 * later i: those two are found by bisection and only the bins between are
 * computed, bit for bit as each alone.  (A row of the split transform
 * holds bins from all over the spectrum: the ramp crosses every row.) */
static void crossover_filter(const void *context, size_t first, size_t stride, size_t count,
                             size_t bins, double *factors)
{
    const ms_merge_task *task = context;
    double alpha = task->alpha, beta = task->beta;
    if (!(beta > MS_MERGE_EPSILON)) {
        for (size_t i = 0; i < count; i++)
            factors[i] = (double)(first + stride * i) / (double)bins >= alpha ? 1.0 : 0.0;
        return;
    }
    size_t ramp_begin = first_past(task, first, stride, bins, 0, count, 0.0);
    size_t ramp_end = first_past(task, first, stride, bins, ramp_begin, count, nextafter(1.0, 0));
    for (size_t i = 0; i < ramp_begin; i++)
        factors[i] = 0.0;
    for (size_t i = ramp_begin; i < ramp_end; i++)
        factors[i] = ramp_at(alpha, beta, first + stride * i, bins);
    for (size_t i = ramp_end; i < count; i++)
        factors[i] = 1.0;
}

/* out[j] = a[j] + g[position of j] / n */
static ms_status emit(crossover *x, ms_error *err)
{
    const ms_merge_task *task = x->task;
    double scale = 1.0 / (double)task->count;
    ms_merge_order_rewind(&x->order);
    for (uint64_t start = 0; start < task->count;) {
        size_t count = ms_merge_chunk_length(task, start);
        ms_status status = ms_merge_check_cancel(task, err);
        if (status == MS_OK)
            status = ms_merge_read(task, &task->a, start, count, x->chunks.a, err);
        if (status == MS_OK)
            status = ms_merge_order_positions(task, &x->order, start, count, x->positions, err);
        if (status != MS_OK)
            return status;
        for (size_t i = 0; i < count; i++) {
            if (i + PREFETCH_AHEAD < count)
                __builtin_prefetch(&x->spectrum[x->positions[i + PREFETCH_AHEAD]], 0);
            x->chunks.out[i] = x->chunks.a[i] + x->spectrum[x->positions[i]] * scale;
        }
        if ((status = ms_merge_emit(task, start, x->chunks.out, count, err)) != MS_OK)
            return status;
        start += count;
    }
    return MS_OK;
}

static const int crossover_buffers = MS_MERGE_CHUNK_A | MS_MERGE_CHUNK_B | MS_MERGE_CHUNK_OUT;

static ms_status run(crossover *x, ms_error *err)
{
    const ms_merge_task *task = x->task;
    /* FFTW's basic interface counts points in an int */
    if (task->count > INT_MAX) {
        ms_error_set(err, MS_ERR_INVALID_PARAMETER, task->key,
                     "distribution_crossover: %llu elements are more than one FFT takes",
                     (unsigned long long)task->count);
        ms_error_detail_add(err, "elements", "%llu", (unsigned long long)task->count);
        return MS_ERR_INVALID_PARAMETER;
    }
    ms_status status = ms_merge_order_build(task, &task->c, &x->order, err);
    if (status != MS_OK)
        return status;
    /* on 2 MiB pages where the kernel gives them: the scatter and gather
     * address the buffer in C's order, all over it (fewer TLB misses) */
    if (task->large_block != NULL && task->large_block_doubles >= task->count + 2)
        x->spectrum = task->large_block;
    else
        x->spectrum = x->own_spectrum = ms_merge_large_doubles((size_t)task->count + 2);
    x->positions = malloc(ms_merge_chunk_capacity(task) * sizeof *x->positions);
    if (x->spectrum == NULL || x->positions == NULL)
        return ms_merge_out_of_memory(task, ms_merge_crossover_scratch(task), err);
    status = ms_merge_chunks_alloc(task, crossover_buffers, &x->chunks, err);
    if (status == MS_OK)
        status = scatter_differences(x, err);
    if (status == MS_OK)
        status = ms_merge_fft_filter(task, x->spectrum, (size_t)task->count, crossover_filter,
                                     task, err);
    if (status == MS_OK)
        status = emit(x, err);
    return status;
}

ms_status ms_merge_distribution_crossover(const ms_merge_task *task, ms_error *err)
{
    ms_status status = ms_merge_check_weights(task, err);
    if (status != MS_OK || task->count == 0)
        return status;
    if (task->ndim == 0) {
        double alpha = task->alpha;
        return ms_merge_elementwise(task, scalar_chunk, &alpha, err);
    }
    /* A's pages are read again after the FFT, C's twice more: their pages
     * stay mapped until the driver releases the tensor, where that is at
     * most KEPT_MAPPED_BYTES (a page's first touch after it was unmapped
     * costs a page-table walk again, on a virtual machine a trap).  The
     * token embeddings (126 MB per operand on SDXL) release as they go. */
    ms_merge_task kept = *task;
    if (kept_mapped_bytes(task) > 0)
        kept.a.release_pages = kept.c.release_pages = false;
    crossover x = {.task = &kept};
    status = run(&x, err);
    ms_merge_order_free(&x.order);
    free(x.own_spectrum);
    free(x.positions);
    ms_merge_chunks_free(&x.chunks);
    return status;
}

/* The spectrum, when it is a block of 2 MiB and more (smaller ones come
 * from the allocator's arenas, quickly). */
uint64_t ms_merge_crossover_spectrum_doubles(const ms_merge_task *task)
{
    uint64_t doubles = task->count + 2;
    return task->ndim > 0 && doubles * sizeof(double) >= MS_MERGE_LARGE_BLOCK_BYTES ? doubles
                                                                                  : 0;
}

/* C's order is built first (its build peak), then held next to the FFT
 * buffer, the chunk buffers, what FFTW may hold (see fft_real.c) and A's
 * and C's pages while they stay mapped. */
uint64_t ms_merge_crossover_scratch(const ms_merge_task *task)
{
    if (task->ndim == 0)
        return ms_merge_elementwise_scratch(task);
    uint64_t order_held, order_peak;
    ms_merge_order_scratch(task, &task->c, &order_held, &order_peak);
    uint64_t running = order_held + (task->count + 2) * sizeof(double) +
                       ms_merge_fft_extra_bytes(task, task->count) +
                       ms_merge_chunks_bytes(task, crossover_buffers) +
                       ms_merge_chunk_capacity(task) * sizeof(uint32_t) + kept_mapped_bytes(task);
    return running > order_peak ? running : order_peak;
}
