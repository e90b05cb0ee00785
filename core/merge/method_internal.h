/* Private to the merge methods: chunked passes, selection, stable orders.
 *
 * Every method streams its operands in chunks of MS_MERGE_CHUNK_ELEMENTS;
 * the few that need a whole-tensor view (ties: a k-th value; top_k and
 * distribution_crossover: sorted orders) get it without an n-element copy of
 * an input where the dtype allows (radix selection, counting sorts over the
 * 65536 patterns of F16/BF16), and declare what they do hold. */
#ifndef MS_MERGE_METHOD_INTERNAL_H
#define MS_MERGE_METHOD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "method.h"

/* ---- chunked passes (method_stream.c) ---- */

/* Elements of the chunk that starts at start. */
size_t ms_merge_chunk_length(const ms_merge_task *task, uint64_t start);

/* Elements in one chunk buffer for this task: min(count, chunk). */
size_t ms_merge_chunk_capacity(const ms_merge_task *task);

ms_status ms_merge_check_cancel(const ms_merge_task *task, ms_error *err);

/* invalid_parameter unless alpha and beta are finite. */
ms_status ms_merge_check_weights(const ms_merge_task *task, ms_error *err);

/* out_of_memory naming the key and the bytes asked for. */
ms_status ms_merge_out_of_memory(const ms_merge_task *task, uint64_t bytes, ms_error *err);

/* Puts the task's key on an error that names none; returns status. */
ms_status ms_merge_with_key(const ms_merge_task *task, ms_status status, ms_error *err);

/* ms_merge_operand_read, with the task's key put on its error. */
ms_status ms_merge_read(const ms_merge_task *task, const ms_merge_operand *operand,
                        uint64_t start, size_t count, double *target, ms_error *err);

/* Reads raw 16-bit patterns of an F16/BF16 operand (same page release and
 * file-shrank guard as ms_merge_operand_read). */
ms_status ms_merge_read_bits16(const ms_merge_task *task, const ms_merge_operand *operand,
                               uint64_t start, size_t count, uint16_t *target, ms_error *err);

/* Hands values to the sink, with the task's key put on an error that has none. */
ms_status ms_merge_emit(const ms_merge_task *task, uint64_t start, const double *values,
                        size_t count, ms_error *err);

/* Chunk buffers for a pass: a, b, c are read when non-NULL; out is emitted. */
typedef struct ms_merge_chunks {
    double *a, *b, *c, *out;
    unsigned owned;        /* the MS_MERGE_CHUNK_ flags of those allocated here */
} ms_merge_chunks;

/* Which buffers to allocate. */
enum {
    MS_MERGE_CHUNK_A = 1,
    MS_MERGE_CHUNK_B = 2,
    MS_MERGE_CHUNK_C = 4,
    MS_MERGE_CHUNK_OUT = 8,
};

ms_status ms_merge_chunks_alloc(const ms_merge_task *task, int which, ms_merge_chunks *chunks,
                                ms_error *err);
void ms_merge_chunks_free(ms_merge_chunks *chunks);
uint64_t ms_merge_chunks_bytes(const ms_merge_task *task, int which);

/* Called once per chunk of a pass, in ascending order, after the chunk's
 * a, b, c were read; fills chunks->out when the pass emits. */
typedef void ms_merge_visit_fn(void *context, const ms_merge_chunks *chunks, uint64_t start,
                               size_t count);

/* One pass over [0, count): checks cancel, reads, visits, and when emit is
 * set hands chunks->out to the sink. */
ms_status ms_merge_pass(const ms_merge_task *task, const ms_merge_chunks *chunks,
                        ms_merge_visit_fn *visit, void *context, bool emit, ms_error *err);

/* A whole method that is one emitting pass over a, b (and c when the task
 * has it), with its chunk buffers; and the scratch it declares. */
ms_status ms_merge_elementwise(const ms_merge_task *task, ms_merge_visit_fn *visit,
                               void *context, ms_error *err);
uint64_t ms_merge_elementwise_scratch(const ms_merge_task *task);

/* The CLOCK_REALTIME time milliseconds from now, for pthread_cond_timedwait
 * on a condition with the default clock (the driver's and rotate's short
 * waits that watch a cancel flag). */
struct timespec;
void ms_merge_deadline_after_ms(struct timespec *deadline, long milliseconds);

/* ---- numeric helpers shared by methods (method_stream.c) ---- */

/* count doubles on the heap (NULL when out of memory or too many), freed
 * with free(), aligned to 64 bytes.  A block of 2 MiB or more is aligned to
 * 2 MiB and asked for huge pages: a large matrix is then faulted in 512
 * times less often (each fault an exception, dear on a virtual machine) and
 * takes fewer TLB entries to walk.  Such a block is a mapping of its own,
 * returned to the system by free(). */
double *ms_merge_large_doubles(size_t count);
/* From this size on a block is such a mapping (and huge-page advised). */
#define MS_MERGE_LARGE_BLOCK_BYTES (UINT64_C(2) << 20)

/* 1 where glibc's malloc serves malloc(), 0 elsewhere, AddressSanitizer's
 * allocator included (it replaces glibc's in the sanitizer build). */
#if defined(__SANITIZE_ADDRESS__)
#define MS_MERGE_GLIBC_MALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MS_MERGE_GLIBC_MALLOC 0
#endif
#endif
#ifndef MS_MERGE_GLIBC_MALLOC
#ifdef __GLIBC__
#define MS_MERGE_GLIBC_MALLOC 1
#else
#define MS_MERGE_GLIBC_MALLOC 0
#endif
#endif

/* Python's int(x) of a finite double, clamped into [-2^62, 2^62] (any slice
 * bound past the tensor acts the same). */
int64_t ms_merge_python_int(double value);

/* Python's round(x) (half to even) of a finite double, clamped likewise. */
int64_t ms_merge_python_round(double value);

/* ---- order keys (sort_key.c) ---- */

bool ms_merge_dtype_is_narrow(ms_dtype dtype);      /* F16 or BF16 */

/* The key of zero (both signs). */
enum { MS_MERGE_KEY16_ZERO = 0x8000u };

/* Order-preserving keys as torch's sort orders values: -0 and +0 are one
 * key, every NaN is one key above +Inf.  key16 works on F16/BF16 patterns,
 * key32 on F32 patterns, key64 on doubles. */
static inline uint16_t ms_merge_key16(ms_dtype dtype, uint16_t bits)
{
    /* inline and without a branch on the sign (random in a weight tensor):
     * called per element when C's order is replayed */
    uint16_t infinity = dtype == MS_DTYPE_F16 ? 0x7c00u : 0x7f80u;
    uint16_t magnitude = bits & 0x7fffu;
    /* one compare finds both zeros (0 - 1 wraps to 0xffff) and every NaN */
    if ((uint16_t)(magnitude - 1u) >= infinity)
        return magnitude == 0 ? (uint16_t)MS_MERGE_KEY16_ZERO : 0xffffu;
    /* negative: every bit flipped; positive: the sign bit set */
    return (uint16_t)(bits ^ (0x8000u | (uint16_t)-(bits >> 15)));
}

uint32_t ms_merge_key32(float value);
uint64_t ms_merge_key64(double value);

/* The value of a key (+0 for the zero key, a quiet NaN for the NaN key). */
double ms_merge_key16_value(ms_dtype dtype, uint16_t key);
double ms_merge_key64_value(uint64_t key);

/* Sorts ascending, in place (MSD radix, no extra array). */
void ms_merge_sort_u64(uint64_t *values, size_t count);

/* ---- selection (select.c) ---- */

/* Members collected for the final quickselect when a radix bucket is this
 * small (8 MiB of keys); larger buckets are split on the next 16 bits. */
enum { MS_MERGE_SELECT_COLLECT = 1u << 20 };

/* The index-th smallest (0-based) of values, which it reorders. */
uint64_t ms_merge_nth_u64(uint64_t *values, size_t count, size_t index);

/* The k-th smallest (1 <= k <= count) of |x_i - y_i|, or of |x_i| when y is
 * NULL, over the task's elements, the differences taken in double.  Radix
 * selection on the bit patterns of the magnitudes (for non-negative doubles
 * and NaN they order like the values, NaN above all): a histogram of the top
 * 16 bits, then of the next 16 among the bucket holding rank k, ..., until
 * the bucket has at most collect_limit members, which are then collected and
 * quickselected.  One chunked pass per level. */
ms_status ms_merge_select_magnitude(const ms_merge_task *task, const ms_merge_operand *x,
                                    const ms_merge_operand *y, uint64_t k,
                                    size_t collect_limit, double *kth, ms_error *err);
uint64_t ms_merge_select_scratch(const ms_merge_task *task, size_t collect_limit);

/* ---- stable orders (sort_order.c) ---- */

/* The position of every element in a stable ascending sort of one operand,
 * produced in element order.  F16/BF16: a counting sort, two counters per
 * key (its next position and its range's end) and nothing per element.
 * F32/F64: a uint32 rank per element (4n bytes), found by sorting (key,
 * index) pairs that are freed once the ranks are known (8n bytes for F32,
 * packed in one uint64; 16n for F64).  At most UINT32_MAX elements. */
typedef struct ms_merge_order {
    const ms_merge_operand *operand;
    uint32_t *next;               /* narrow: by key, its next position */
    uint32_t *end;                /* narrow: by key, the end of its range */
    uint16_t *bits;               /* narrow: one chunk of keys */
    uint32_t *ranks;              /* wide: position of each element */
} ms_merge_order;

ms_status ms_merge_order_build(const ms_merge_task *task, const ms_merge_operand *operand,
                               ms_merge_order *order, ms_error *err);
/* Positions of elements [start, start + count); calls must run over the
 * elements in ascending order, from 0 after build or rewind. */
ms_status ms_merge_order_positions(const ms_merge_task *task, ms_merge_order *order,
                                   uint64_t start, size_t count, uint32_t *positions,
                                   ms_error *err);
void ms_merge_order_rewind(ms_merge_order *order);
void ms_merge_order_free(ms_merge_order *order);
/* held: bytes kept from build to free; peak: the most held during build. */
void ms_merge_order_scratch(const ms_merge_task *task, const ms_merge_operand *operand,
                            uint64_t *held, uint64_t *peak);

/* ---- real FFT filter (fft_real.c) ---- */

/* The filter's factors for bins first + stride i (i < count) of `bins`
 * (n/2 + 1 of them), into factors[0 .. count - 1]: asked a block at a time,
 * so that a filter is a loop the compiler can vectorise, not a call per bin
 * (the split transform holds bins N1 apart in a row: stride N1). */
typedef void ms_merge_bin_filter(const void *context, size_t first, size_t stride,
                                 size_t count, size_t bins, double *factors);

/* Past this many points the transform is packed (see below). */
#define MS_MERGE_FFT_DIRECT_POINTS (UINT64_C(1) << 17)
/* Past this many complex points (4 MiB of data: past the caches) the packed
 * transform is split (fft_real.c); up to it one transform is quicker. */
#define MS_MERGE_FFT_SPLIT_POINTS (UINT64_C(1) << 18)

/* data holds n reals and 2 spare doubles; on return it holds
 * n * irfft(filter ⊙ rfft(x)) (unnormalised, like FFTW's c2r).  Even n past
 * MS_MERGE_FFT_DIRECT_POINTS: a complex FFT of n/2 points in the same bytes,
 * no n-sized extra (one FFTW transform up to MS_MERGE_FFT_SPLIT_POINTS when
 * n/2 has no prime factor past 13, else a four-step split); otherwise (and
 * odd n, prime n/2) FFTW's r2c/c2r. */
ms_status ms_merge_fft_filter(const ms_merge_task *task, double *data, size_t n,
                              ms_merge_bin_filter *filter, const void *context,
                              ms_error *err);
/* The packed path whatever n, for tests: n even, rows a divisor of n/2 (1:
 * one complex transform; more: the four-step split into rows x n/2/rows). */
ms_status ms_merge_fft_filter_packed(const ms_merge_task *task, double *data, size_t n,
                                     size_t rows, ms_merge_bin_filter *filter,
                                     const void *context, ms_error *err);
/* What the transform may hold besides data for n points of the task (FFTW's
 * r2c: n doubles; the packed path: a little per lane). */
uint64_t ms_merge_fft_extra_bytes(const ms_merge_task *task, uint64_t n);

/* ---- the methods (one file per kind; the table is method_table.c) ---- */

ms_status ms_merge_weighted_sum(const ms_merge_task *task, ms_error *err);
uint64_t ms_merge_crossover_spectrum_doubles(const ms_merge_task *task);
ms_status ms_merge_weighted_subtraction(const ms_merge_task *task, ms_error *err);
ms_status ms_merge_add_difference(const ms_merge_task *task, ms_error *err);
ms_status ms_merge_sum_twice(const ms_merge_task *task, ms_error *err);
ms_status ms_merge_triple_sum(const ms_merge_task *task, ms_error *err);
ms_status ms_merge_multiply_difference(const ms_merge_task *task, ms_error *err);
ms_status ms_merge_similarity_add_difference(const ms_merge_task *task, ms_error *err);
ms_status ms_merge_tensor_sum(const ms_merge_task *task, ms_error *err);
uint64_t ms_merge_tensor_sum_scratch(const ms_merge_task *task);
ms_status ms_merge_euclidean_add_difference(const ms_merge_task *task, ms_error *err);
uint64_t ms_merge_euclidean_scratch(const ms_merge_task *task);
ms_status ms_merge_ties_add_difference(const ms_merge_task *task, ms_error *err);
uint64_t ms_merge_ties_scratch(const ms_merge_task *task);
ms_status ms_merge_top_k_tensor_sum(const ms_merge_task *task, ms_error *err);
uint64_t ms_merge_top_k_scratch(const ms_merge_task *task);
ms_status ms_merge_distribution_crossover(const ms_merge_task *task, ms_error *err);
uint64_t ms_merge_crossover_scratch(const ms_merge_task *task);
ms_status ms_merge_rotate(const ms_merge_task *task, ms_error *err);
uint64_t ms_merge_rotate_scratch(const ms_merge_task *task);
uint64_t ms_merge_rotate_work(const ms_merge_task *task);

#endif
