/* The merge method table (algorithms.md section 3): one entry per method.
 * Adding a method is adding one entry to the table in method_table.c.
 *
 * A method works on one tensor at a time.  Its inputs are the tensors as they
 * lie in the mapped input files (any float dtype, mixed), read in bounded
 * chunks through ms_merge_operand_read, which also releases the pages read
 * from the process (the page cache keeps them): memory never holds a whole
 * input tensor.  The method hands its result to the sink in ascending,
 * contiguous, non-overlapping chunks that together cover [0, count); the
 * sink converts, clips, checks for NaN/Inf and writes.  Methods that need the
 * whole tensor at once (selection, sorting, FFT) keep their own scratch and
 * declare its size through scratch_bytes, so the driver can bound the memory
 * of the tensors in flight. */
#ifndef MS_MERGE_METHOD_H
#define MS_MERGE_METHOD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/format/dtype.h"
#include "core/error.h"

/* sd-meh's EPSILON */
#define MS_MERGE_EPSILON 1e-10

/* Elements per chunk that methods read and emit at a time (512 KiB of doubles). */
enum { MS_MERGE_CHUNK_ELEMENTS = 1u << 16 };

/* One input tensor: its bytes inside a mapped file, its float dtype. */
typedef struct ms_merge_operand {
    const unsigned char *bytes;
    ms_dtype dtype;                /* F16, BF16, F32 or F64 */
    /* true only when bytes lie in a read-only file mapping (MAP_SHARED, or a
     * MAP_PRIVATE one never written): reads then release the pages they are
     * done with.  false (the zero value) for any other memory, where
     * MADV_DONTNEED would zero the data: tests and in-memory operands. */
    bool release_pages;
} ms_merge_operand;

/* Converts elements [start, start + count) to doubles.  With release_pages it
 * first maps the pages to be read in one call (MADV_POPULATE_READ), then
 * releases (MADV_DONTNEED) every 2 MiB window of the mapping the read
 * completes: passes read in ascending order, so the resident set of a pass
 * stays within a window per operand, and releases (TLB shootdowns) stay
 * rare.  The driver releases the rest of each tensor once it is merged.  A
 * page released early is only refetched from the page cache, never lost.
 * The read runs through ms_mapped_read (core/mapped_read.h): a mapped input
 * file cut short underneath gives io_error (detail reason "file_shrank")
 * instead of SIGBUS killing the process. */
ms_status ms_merge_operand_read(const ms_merge_operand *operand, uint64_t start, size_t count,
                                double *target, ms_error *err);

/* Drops the whole pages inside [bytes, bytes + length) of a read-only file
 * mapping from the process (the page cache keeps them); nothing outside. */
void ms_merge_release_pages(const void *bytes, uint64_t length);

/* Receives a method's result in order (see above). */
typedef struct ms_merge_sink {
    ms_status (*write)(void *context, uint64_t start, const double *values, size_t count,
                       ms_error *err);
    void *context;
} ms_merge_sink;

/* rotate only: the content digests of a task's two inputs, kept once taken
 * for the rest of one merge, which both the scratch estimate and the merge
 * itself need (a merge never outlives the mappings it hashed). */
typedef struct ms_merge_input_digests {
    bool known;
    unsigned char bytes[32];
} ms_merge_input_digests;

/* One tensor to merge.  c.bytes is NULL for two-model methods. */
typedef struct ms_merge_task {
    const char *key;               /* for errors */
    ms_merge_operand a, b, c;
    uint64_t count;                /* elements, the same in a, b and c */
    int ndim;                      /* 0 for a scalar */
    const int64_t *shape;
    double alpha, beta;
    const atomic_int *cancel;      /* may be NULL; checked between chunks: cancelled */
    ms_merge_sink sink;
    /* Optional: four buffers of MS_MERGE_CHUNK_ELEMENTS doubles that the
     * caller (a worker) reuses across tasks, lent to the chunked passes in
     * place of fresh allocations, whose pages the allocator would hand back
     * and fault in again for every tensor.  NULL: the method allocates. */
    double *chunk_buffers[4];
    /* Optional: a block of large_block_doubles doubles the worker keeps
     * from one task to the next, for a method that declares
     * large_block_doubles (below) and takes it when it is large enough:
     * fresh memory for a spectrum is zeroed by the kernel page by page at
     * first touch (4 % of an SDXL crossover's CPU).  NULL: none lent. */
    double *large_block;
    size_t large_block_doubles;
    /* Cores the method may use for this task (0 or 1: only the caller's
     * thread).  The driver gives every core to a tensor that runs alone, and
     * a share of them to each when a file has fewer tensors than cores
     * (ms_merge_tensor_threads), which would otherwise leave cores idle. */
    int threads;
    /* rotate only: the decomposition cache (NULL: none) and the merge's
     * counts of its hits and misses */
    struct ms_rotate_cache *rotate_cache;
    struct ms_merge_rotate_counts *rotate_counts;
    ms_merge_input_digests *rotate_digests;   /* NULL: hashed at every use */
} ms_merge_task;

/* What the rotate method did with the cache during one merge, and where
 * its workers spent their time (nanoseconds, summed over workers). */
typedef struct ms_merge_rotate_counts {
    atomic_ullong hits, misses, bytes_stored;
    atomic_ullong svd_ns, eigen_ns, product_ns, io_ns;
} ms_merge_rotate_counts;

/* Merges one tensor.  alpha and beta must be finite (invalid_parameter
 * otherwise); count 0 emits nothing.  Errors carry task->key: cancelled,
 * out_of_memory, io_error (reason file_shrank), invalid_parameter (a shape or
 * weight the method cannot use), and whatever the sink returns. */
typedef ms_status (*ms_merge_method_fn)(const ms_merge_task *task, ms_error *err);

typedef struct ms_merge_method {
    const char *name;              /* sd-meh's name, e.g. "weighted_sum" */
    int model_count;               /* 2 (a, b) or 3 (a, b, c) */
    bool uses_beta;
    ms_merge_method_fn merge;
    /* Heap bytes the method holds at once for this task (its scratch, chunk
     * buffers included); the driver reserves this much before it starts the
     * tensor. */
    uint64_t (*scratch_bytes)(const ms_merge_task *task);
    /* Optional: the task's work in bytes' worth, for progress, where it is
     * not about its output's bytes (rotate's decompositions dominate).
     * NULL: the output tensor's bytes. */
    uint64_t (*work_units)(const ms_merge_task *task);
    /* Scratch the driver lets tensors hold at once for this method; 0: the
     * driver's default (sized for the 600 MB of the streaming methods). */
    uint64_t memory_budget;
    /* Optional: the doubles of the one large block of this task's scratch
     * (counted in scratch_bytes) that it takes from task->large_block when
     * lent one at least that large; 0 or NULL: none. */
    uint64_t (*large_block_doubles)(const ms_merge_task *task);
} ms_merge_method;

/* The table, and a lookup by name (NULL when unknown). */
const ms_merge_method *ms_merge_methods(size_t *count);
const ms_merge_method *ms_merge_method_find(const char *name);

#endif
