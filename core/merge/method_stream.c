/* Chunked passes over a merge task, and the small rules methods share. */
#include "method_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <sys/mman.h>

size_t ms_merge_chunk_length(const ms_merge_task *task, uint64_t start)
{
    uint64_t left = task->count - start;
    return left < MS_MERGE_CHUNK_ELEMENTS ? (size_t)left : MS_MERGE_CHUNK_ELEMENTS;
}

size_t ms_merge_chunk_capacity(const ms_merge_task *task)
{
    return ms_merge_chunk_length(task, 0);
}

ms_status ms_merge_with_key(const ms_merge_task *task, ms_status status, ms_error *err)
{
    if (status != MS_OK && err != NULL && err->key[0] == '\0' && task->key != NULL)
        snprintf(err->key, sizeof err->key, "%s", task->key);
    return status;
}

ms_status ms_merge_check_cancel(const ms_merge_task *task, ms_error *err)
{
    if (task->cancel == NULL || atomic_load(task->cancel) == 0)
        return MS_OK;
    return ms_error_set(err, MS_ERR_CANCELLED, task->key, "cancelled while merging %s",
                        task->key != NULL ? task->key : "a tensor");
}

ms_status ms_merge_check_weights(const ms_merge_task *task, ms_error *err)
{
    if (isfinite(task->alpha) && isfinite(task->beta))
        return MS_OK;
    const char *name = isfinite(task->alpha) ? "beta" : "alpha";
    double value = isfinite(task->alpha) ? task->beta : task->alpha;
    ms_error_set(err, MS_ERR_INVALID_PARAMETER, task->key, "%s is %g: it must be finite", name,
                 value);
    ms_error_detail_add(err, "field", "%s", name);
    return MS_ERR_INVALID_PARAMETER;
}

ms_status ms_merge_out_of_memory(const ms_merge_task *task, uint64_t bytes, ms_error *err)
{
    ms_error_set(err, MS_ERR_OUT_OF_MEMORY, task->key,
                 "out of memory: %" PRIu64 " bytes of scratch to merge %s", bytes,
                 task->key != NULL ? task->key : "a tensor");
    ms_error_detail_add(err, "bytes", "%" PRIu64, bytes);
    return MS_ERR_OUT_OF_MEMORY;
}

ms_status ms_merge_read(const ms_merge_task *task, const ms_merge_operand *operand,
                        uint64_t start, size_t count, double *target, ms_error *err)
{
    return ms_merge_with_key(task, ms_merge_operand_read(operand, start, count, target, err),
                             err);
}

ms_status ms_merge_emit(const ms_merge_task *task, uint64_t start, const double *values,
                        size_t count, ms_error *err)
{
    ms_status status = task->sink.write(task->sink.context, start, values, count, err);
    return ms_merge_with_key(task, status, err);
}

static const int chunk_flags[4] = {MS_MERGE_CHUNK_A, MS_MERGE_CHUNK_B, MS_MERGE_CHUNK_C,
                                   MS_MERGE_CHUNK_OUT};

static double **chunk_slot(ms_merge_chunks *chunks, int index)
{
    double **slots[4] = {&chunks->a, &chunks->b, &chunks->c, &chunks->out};
    return slots[index];
}

uint64_t ms_merge_chunks_bytes(const ms_merge_task *task, int which)
{
    uint64_t buffers = 0;
    for (int i = 0; i < 4; i++)
        buffers += (which & chunk_flags[i]) != 0;
    return buffers * ms_merge_chunk_capacity(task) * sizeof(double);
}

ms_status ms_merge_chunks_alloc(const ms_merge_task *task, int which, ms_merge_chunks *chunks,
                                ms_error *err)
{
    *chunks = (ms_merge_chunks){NULL, NULL, NULL, NULL, 0};
    size_t capacity = ms_merge_chunk_capacity(task);
    if (capacity == 0)
        capacity = 1;
    for (int i = 0; i < 4; i++) {
        if ((which & chunk_flags[i]) == 0)
            continue;
        double **slot = chunk_slot(chunks, i);
        *slot = task->chunk_buffers[i];
        if (*slot != NULL)
            continue;
        *slot = malloc(capacity * sizeof(double));
        chunks->owned |= (unsigned)chunk_flags[i];
        if (*slot == NULL) {
            ms_merge_chunks_free(chunks);
            return ms_merge_out_of_memory(task, ms_merge_chunks_bytes(task, which), err);
        }
    }
    return MS_OK;
}

void ms_merge_chunks_free(ms_merge_chunks *chunks)
{
    for (int i = 0; i < 4; i++)
        if (chunks->owned & (unsigned)chunk_flags[i])
            free(*chunk_slot(chunks, i));
    *chunks = (ms_merge_chunks){NULL, NULL, NULL, NULL, 0};
}

static ms_status read_chunk(const ms_merge_task *task, const ms_merge_chunks *chunks,
                            uint64_t start, size_t count, ms_error *err)
{
    ms_status status = MS_OK;
    if (chunks->a != NULL)
        status = ms_merge_read(task, &task->a, start, count, chunks->a, err);
    if (status == MS_OK && chunks->b != NULL)
        status = ms_merge_read(task, &task->b, start, count, chunks->b, err);
    if (status == MS_OK && chunks->c != NULL)
        status = ms_merge_read(task, &task->c, start, count, chunks->c, err);
    return status;
}

ms_status ms_merge_pass(const ms_merge_task *task, const ms_merge_chunks *chunks,
                        ms_merge_visit_fn *visit, void *context, bool emit, ms_error *err)
{
    for (uint64_t start = 0; start < task->count;) {
        size_t count = ms_merge_chunk_length(task, start);
        ms_status status = ms_merge_check_cancel(task, err);
        if (status == MS_OK)
            status = read_chunk(task, chunks, start, count, err);
        if (status != MS_OK)
            return status;
        visit(context, chunks, start, count);
        if (emit && (status = ms_merge_emit(task, start, chunks->out, count, err)) != MS_OK)
            return status;
        start += count;
    }
    return MS_OK;
}

static int elementwise_buffers(const ms_merge_task *task)
{
    int which = MS_MERGE_CHUNK_A | MS_MERGE_CHUNK_B | MS_MERGE_CHUNK_OUT;
    return task->c.bytes != NULL ? which | MS_MERGE_CHUNK_C : which;
}

ms_status ms_merge_elementwise(const ms_merge_task *task, ms_merge_visit_fn *visit,
                               void *context, ms_error *err)
{
    ms_status status = ms_merge_check_weights(task, err);
    if (status != MS_OK || task->count == 0)
        return status;
    ms_merge_chunks chunks;
    status = ms_merge_chunks_alloc(task, elementwise_buffers(task), &chunks, err);
    if (status == MS_OK)
        status = ms_merge_pass(task, &chunks, visit, context, true, err);
    ms_merge_chunks_free(&chunks);
    return status;
}

uint64_t ms_merge_elementwise_scratch(const ms_merge_task *task)
{
    return ms_merge_chunks_bytes(task, elementwise_buffers(task));
}

/* 2^62: past any element count, and exact in both double and int64. */
static const double python_int_limit = 4611686018427387904.0;

static int64_t clamped(double value)
{
    if (value > python_int_limit)
        return (int64_t)python_int_limit;
    if (value < -python_int_limit)
        return -(int64_t)python_int_limit;
    return (int64_t)value;
}

int64_t ms_merge_python_int(double value)
{
    return clamped(trunc(value));
}

int64_t ms_merge_python_round(double value)
{
    /* nearbyint rounds half to even in the default rounding mode, as
     * Python's round() does */
    return clamped(nearbyint(value));
}

enum {
    HUGE_PAGE_BYTES = MS_MERGE_LARGE_BLOCK_BYTES,
    /* past glibc's largest dynamic mmap threshold (32 MiB on 64-bit) */
    OWN_MAPPING_BYTES = 64u << 20,
};

/* A block of 2 MiB or more is asked of malloc as at least 64 MiB, which
 * glibc always serves as a mapping of its own (only the pages touched
 * become resident), so free() unmaps it, advice and all.  Served from an
 * arena instead (glibc's dynamic threshold rises to 32 MiB after large
 * frees), the huge-page advice stayed on that arena range after free(),
 * and every small allocation placed there later faulted in a whole 2 MiB
 * page that the arena never gave back: a service that had merged sat at
 * 190 MB instead of 40 (found by tests/soak.sh).  Fixing the threshold
 * with mallopt instead would have sent FFTW's per-transform buffers of a
 * few MiB to fresh mappings too, faulted in anew at every execution.  Only
 * glibc's malloc needs steering so: AddressSanitizer's allocator would
 * poison and quarantine all 64 MiB of every block. */
double *ms_merge_large_doubles(size_t count)
{
    if (count > SIZE_MAX / sizeof(double))
        return NULL;
    size_t bytes = (count > 0 ? count : 1) * sizeof(double);
    void *memory = NULL;   /* 64: past what FFTW's SIMD code wants */
    if (bytes < HUGE_PAGE_BYTES)
        return posix_memalign(&memory, 64, bytes) == 0 ? memory : NULL;
    size_t asked = MS_MERGE_GLIBC_MALLOC && bytes < OWN_MAPPING_BYTES ? OWN_MAPPING_BYTES : bytes;
    if (posix_memalign(&memory, HUGE_PAGE_BYTES, asked) != 0)
        return NULL;
#ifdef MADV_HUGEPAGE
    madvise(memory, bytes, MADV_HUGEPAGE);   /* advice only */
#endif
    return memory;
}

void ms_merge_deadline_after_ms(struct timespec *deadline, long milliseconds)
{
    clock_gettime(CLOCK_REALTIME, deadline);
    deadline->tv_nsec += milliseconds * 1000000L;
    deadline->tv_sec += deadline->tv_nsec / 1000000000L;
    deadline->tv_nsec %= 1000000000L;
}
