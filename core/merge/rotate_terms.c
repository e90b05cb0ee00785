/* The rotate method's terms: produced from the inputs (one SVD and one
 * symmetric eigendecomposition per key), or read back from the cache,
 * whose entry is exactly what production wrote.  Both roads then run the
 * same apply on the same doubles, so a cached merge equals an uncached
 * one bit for bit.
 *
 * Cache entry payload, doubles after a 64-byte header:
 *   centroid_a, centroid_b (columns each), angles, half_turn (dimension
 *   each), eigen_rows E, generator_rows G (dimension x columns each; in a
 *   subspace dimension x dimension, then the basis P, columns x dimension),
 *   then per neuron its row: A, B (dimension each; in a subspace also Z).
 *
 * In a subspace the rows come from the QR triangle of the inputs without
 * touching P (a P and b P are its columns), and P is applied once per
 * neuron at the end:
 *   out = (((1-beta) A + beta B) C(alpha) + beta Z) P^T
 *         + (1-beta) Xa + beta Xb + c
 * with C = diag(cos - 1) W^T + diag(f) G, A = (a P) W, B = (b P) S^T W,
 * Z = (b P)(S^T - I). */
#include "method_rotate.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/format/mapped_read.h"
#include "rotate_decompose.h"
#include "rotate_math.h"

enum { HEADER_BYTES = 64, HASH_WINDOW = 4u << 20, ENTRY_FORMAT = 2 };
static const char entry_magic[8] = {'M', 'S', 'R', 'O', 'T', 'A', 'T', '1'};

typedef struct entry_header {
    char magic[8];
    uint64_t rows, columns, dimension, subspace, reserved[3];
} entry_header;

/* ---- where the time goes (the report's rotate_seconds) ---- */

typedef enum spent_on { SPENT_SVD, SPENT_EIGEN, SPENT_PRODUCTS, SPENT_IO } spent_on;

static uint64_t clock_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* Adds the time since `since` to the merge's counter; returns the clock. */
static uint64_t spent(const ms_merge_task *task, spent_on what, uint64_t since)
{
    uint64_t now = clock_ns();
    if (task->rotate_counts != NULL) {
        ms_merge_rotate_counts *counts = task->rotate_counts;
        atomic_ullong *counter = what == SPENT_SVD     ? &counts->svd_ns
                                 : what == SPENT_EIGEN ? &counts->eigen_ns
                                 : what == SPENT_PRODUCTS ? &counts->product_ns
                                                          : &counts->io_ns;
        atomic_fetch_add(counter, now - since);
    }
    return now;
}

static size_t dimension_of(size_t rows, size_t columns)
{
    return 2 * rows < columns ? 2 * rows : columns;
}

static size_t fixed_length(size_t columns, size_t dimension, bool subspace)
{
    size_t spectrum = subspace ? 2 * dimension * dimension + columns * dimension
                               : 2 * dimension * columns;
    return 2 * columns + 2 * dimension + spectrum;
}

/* E, G and C are dimension x this. */
static size_t coefficient_width(const ms_rotate_terms *terms)
{
    return terms->subspace ? terms->dimension : terms->columns;
}

uint64_t ms_rotate_scratch_bytes(size_t rows, size_t columns, bool producing)
{
    size_t k = dimension_of(rows, columns), d = columns;
    bool subspace = 2 * rows <= columns;
    size_t block = ms_rotate_block_rows(columns);
    uint64_t held = (uint64_t)block * (3 * d + 5 * k);   /* the blocks of apply */
    held += fixed_length(d, k, subspace) + (subspace ? (uint64_t)k * k : (uint64_t)k * d);
    if (producing && subspace)   /* inputs and P beside the solve's k x k matrices (its peak) */
        held += 2 * (uint64_t)rows * d + (uint64_t)d * k + 8 * (uint64_t)k * k;
    else if (producing)          /* covariance, SVD, spectrum, maps */
        held += 10 * (uint64_t)d * d;
    return held * sizeof(double);
}

/* ---- the cache key: content hashes of both inputs ---- */

typedef struct hash_work {
    XXH3_state_t *state;
    const unsigned char *bytes;
    size_t length;
} hash_work;

static void hash_window(void *context)
{
    hash_work *work = context;
    XXH3_128bits_update(work->state, work->bytes, work->length);
}

static ms_status hash_operand(const ms_merge_task *task, const ms_merge_operand *operand,
                              uint64_t seed, unsigned char *digest, ms_error *err)
{
    XXH3_state_t *state = XXH3_createState();
    if (state == NULL)
        return ms_merge_out_of_memory(task, 576, err);   /* sizeof(XXH3_state_t) */
    XXH3_128bits_reset_withSeed(state, seed);
    uint64_t total = task->count * ms_dtype_size(operand->dtype);
    ms_status status = MS_OK;
    for (uint64_t offset = 0; offset < total; offset += HASH_WINDOW) {
        hash_work work = {state, operand->bytes + offset,
                          (size_t)(total - offset < HASH_WINDOW ? total - offset : HASH_WINDOW)};
        if (!ms_mapped_read(hash_window, &work)) {
            ms_error_set(err, MS_ERR_IO, task->key, "%s: an input file shrank while it was read",
                         task->key);
            ms_error_detail_add(err, "reason", "file_shrank");
            status = MS_ERR_IO;
            break;
        }
        if (operand->release_pages)
            ms_merge_release_pages(work.bytes, work.length);
    }
    XXH128_hash_t hash = XXH3_128bits_digest(state);
    XXH128_canonical_t canonical;
    XXH128_canonicalFromHash(&canonical, hash);
    memcpy(digest, canonical.digest, 16);
    XXH3_freeState(state);
    return status;
}

/* Both inputs' contents, how they are viewed (rows, columns, dtypes) and
 * the variant (a proper rotation for fractional alpha). */
static ms_status cache_key(const ms_merge_task *task, size_t rows, size_t columns, bool proper,
                           ms_rotate_cache_key *key, ms_error *err)
{
    memset(key, 0, sizeof *key);
    ms_merge_input_digests *kept = task->rotate_digests;
    ms_status status = MS_OK;
    if (kept != NULL && kept->known) {
        memcpy(key->bytes, kept->bytes, 32);
    } else {
        uint64_t seed = (uint64_t)rows * 0x9E3779B97F4A7C15ull ^ (uint64_t)columns;
        uint64_t started = clock_ns();
        status = hash_operand(task, &task->a, seed, key->bytes, err);
        if (status == MS_OK)
            status = hash_operand(task, &task->b, seed, key->bytes + 16, err);
        spent(task, SPENT_IO, started);
        if (status == MS_OK && kept != NULL) {
            memcpy(kept->bytes, key->bytes, 32);
            kept->known = true;
        }
    }
    key->bytes[32] = ENTRY_FORMAT;
    key->bytes[33] = proper ? 1 : 0;
    key->bytes[34] = (unsigned char)task->a.dtype;
    key->bytes[35] = (unsigned char)task->b.dtype;
    return status;
}

static bool alpha_is_fractional(double alpha)
{
    return alpha != nearbyint(alpha);
}

/* ---- production ---- */

static void layout_fixed(ms_rotate_terms *terms, double *base)
{
    size_t d = terms->columns, k = terms->dimension, width = coefficient_width(terms);
    terms->centroid_a = base;
    terms->centroid_b = base + d;
    terms->angles = base + 2 * d;
    terms->half_turn = base + 2 * d + k;
    terms->eigen_rows = base + 2 * d + 2 * k;
    terms->generator_rows = base + 2 * d + 2 * k + k * width;
    terms->basis = terms->subspace ? base + 2 * d + 2 * k + 2 * k * width : NULL;
}


/* Reads rows [row, row + count) of an operand, centred. */
static ms_status read_centred(const ms_merge_task *task, const ms_merge_operand *operand,
                              size_t row, size_t count, size_t columns, const double *centroid,
                              double *target, ms_error *err)
{
    uint64_t started = clock_ns();
    ms_status status = ms_merge_read(task, operand, (uint64_t)row * columns, count * columns,
                                     target, err);
    if (status != MS_OK)
        return status;
    for (size_t i = 0; i < count; i++)
        for (size_t j = 0; j < columns; j++)
            target[i * columns + j] -= centroid[j];
    spent(task, SPENT_IO, started);
    return MS_OK;
}

/* a^T b of the centred inputs, accumulated block by block. */
static ms_status covariance(const ms_merge_task *task, const ms_rotate_terms *terms,
                            double *result, ms_error *err)
{
    size_t d = terms->columns, block = ms_rotate_block_rows(d);
    double *a = ms_merge_large_doubles(block * d), *b = ms_merge_large_doubles(block * d);
    ms_status status = MS_OK;
    if (a == NULL || b == NULL) {
        status = ms_merge_out_of_memory(task, 2 * block * d * sizeof(double), err);
        goto done;
    }
    memset(result, 0, d * d * sizeof(double));
    for (size_t row = 0; row < terms->rows; row += block) {
        size_t count = terms->rows - row < block ? terms->rows - row : block;
        status = ms_merge_check_cancel(task, err);
        if (status == MS_OK)
            status = read_centred(task, &task->a, row, count, d, terms->centroid_a, a, err);
        if (status == MS_OK)
            status = read_centred(task, &task->b, row, count, d, terms->centroid_b, b, err);
        if (status != MS_OK)
            goto done;
        uint64_t started = clock_ns();
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)d, (int)count, 1.0, a,
                    (int)d, b, (int)d, 1.0, result, (int)d);
        spent(task, SPENT_PRODUCTS, started);
    }
done:
    free(a);
    free(b);
    return status;
}

/* Adds a decomposition's seconds to the merge's counters. */
static void count_decomposition(const ms_merge_task *task, const ms_rotate_decomposed *result)
{
    if (task->rotate_counts == NULL)
        return;
    atomic_fetch_add(&task->rotate_counts->svd_ns, (uint64_t)(result->svd_seconds * 1e9));
    atomic_fetch_add(&task->rotate_counts->eigen_ns, (uint64_t)(result->eigen_seconds * 1e9));
}

/* The spectrum's rows, and the maps: A = Xa W, B = Xb R^T W (full). */
static ms_status full_terms(const ms_merge_task *task, ms_rotate_terms *terms, bool proper,
                            ms_error *err)
{
    size_t d = terms->columns;
    double *m = ms_merge_large_doubles(d * d);
    ms_rotate_decomposed result = {0};
    ms_status status = MS_OK;
    if (m == NULL) {
        status = ms_merge_out_of_memory(task, d * d * sizeof(double), err);
        goto done;
    }
    status = covariance(task, terms, m, err);
    if (status == MS_OK)
        status = ms_merge_check_cancel(task, err);
    if (status != MS_OK)
        goto done;
    status = ms_rotate_decompose_covariance(terms->rows, d, m, proper, task->cancel, &result,
                                            err);
    m = NULL;   /* taken over */
    if (status != MS_OK)
        goto done;
    count_decomposition(task, &result);
    uint64_t started = clock_ns();
    const ms_rotation_spectrum *spectrum = &result.spectrum;
    double *fixed = terms->owned;
    double *eigen = fixed + 2 * d + 2 * d, *generator = eigen + d * d;
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++)
            eigen[j * d + i] = spectrum->eigenvectors[i * d + j];
    memcpy(generator, spectrum->generator, d * d * sizeof(double));
    for (size_t j = 0; j < d; j++) {
        fixed[2 * d + j] = spectrum->angles[j];
        fixed[3 * d + j] = spectrum->half_turn[j];
    }
    terms->b_map = ms_merge_large_doubles(d * d);   /* R^T W */
    if (terms->b_map == NULL) {
        status = ms_merge_out_of_memory(task, d * d * sizeof(double), err);
        goto done;
    }
    terms->a_map = result.spectrum.eigenvectors;
    result.spectrum.eigenvectors = NULL;
    ms_rotate_product(true, false, d, d, d, result.rotation.matrix, d, terms->a_map, d,
                      terms->b_map, d);
    spent(task, SPENT_PRODUCTS, started);
done:
    free(m);
    ms_rotate_decomposed_free(&result);
    return ms_merge_with_key(task, status, err);
}

/* The same in the span P of both inputs' rows: E = W^T, G (k x k), P,
 * and the maps for the rows: W, S^T W, S^T - I, with the triangle T that
 * gives a P and b P. */
static ms_status subspace_terms(const ms_merge_task *task, ms_rotate_terms *terms, bool proper,
                                ms_error *err)
{
    size_t n = terms->rows, d = terms->columns, k = terms->dimension;
    double *a = ms_merge_large_doubles(n * d), *b = ms_merge_large_doubles(n * d);
    ms_rotate_decomposed result = {0};
    ms_status status = MS_OK;
    if (a == NULL || b == NULL) {
        status = ms_merge_out_of_memory(task, 2 * n * d * sizeof(double), err);
        goto done;
    }
    status = read_centred(task, &task->a, 0, n, d, terms->centroid_a, a, err);
    if (status == MS_OK)
        status = read_centred(task, &task->b, 0, n, d, terms->centroid_b, b, err);
    if (status != MS_OK)
        goto done;
    status = ms_rotate_decompose_rows(n, d, a, b, proper, task->cancel, &result, err);
    a = b = NULL;   /* taken over */
    if (status != MS_OK)
        goto done;
    count_decomposition(task, &result);
    uint64_t started = clock_ns();
    terms->b_map = ms_merge_large_doubles(k * k);
    terms->z_map = ms_merge_large_doubles(k * k);
    if (!terms->b_map || !terms->z_map) {
        status = ms_merge_out_of_memory(task, 2 * k * k * sizeof(double), err);
        goto done;
    }
    const ms_rotation *rotation = &result.rotation;
    const ms_rotation_spectrum *spectrum = &result.spectrum;
    double *fixed = terms->owned;
    double *eigen = fixed + 2 * d + 2 * k, *generator = eigen + k * k, *basis = generator + k * k;
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < k; j++)
            eigen[j * k + i] = spectrum->eigenvectors[i * k + j];
    memcpy(generator, spectrum->generator, k * k * sizeof(double));
    memcpy(basis, rotation->basis, d * k * sizeof(double));
    for (size_t j = 0; j < k; j++) {
        fixed[2 * d + j] = spectrum->angles[j];
        fixed[2 * d + k + j] = spectrum->half_turn[j];
    }
    ms_rotate_product(true, false, k, k, k, rotation->matrix, k, spectrum->eigenvectors, k,
                      terms->b_map, k);
    for (size_t i = 0; i < k; i++)      /* S^T - I */
        for (size_t j = 0; j < k; j++)
            terms->z_map[i * k + j] = rotation->matrix[j * k + i] - (i == j ? 1.0 : 0.0);
    spent(task, SPENT_PRODUCTS, started);
    terms->a_map = result.spectrum.eigenvectors;
    result.spectrum.eigenvectors = NULL;
    terms->triangle = result.rotation.triangle;
    result.rotation.triangle = NULL;
done:
    free(a);
    free(b);
    ms_rotate_decomposed_free(&result);
    return ms_merge_with_key(task, status, err);
}

static ms_status append(const ms_merge_task *task, ms_rotate_terms *terms, const void *data,
                        size_t bytes, ms_error *err)
{
    if (terms->writer == NULL)
        return MS_OK;
    ms_status status = ms_rotate_cache_writer_append(terms->writer, data, bytes, err);
    return ms_merge_with_key(task, status, err);
}

static ms_status produce(const ms_merge_task *task, ms_rotate_terms *terms, bool proper,
                         ms_error *err)
{
    size_t d = terms->columns, k = terms->dimension;
    terms->owned_length = fixed_length(d, k, terms->subspace);
    terms->owned = ms_merge_large_doubles(terms->owned_length);
    if (terms->owned == NULL)
        return ms_merge_out_of_memory(task, terms->owned_length * sizeof(double), err);
    memset(terms->owned, 0, terms->owned_length * sizeof(double));
    layout_fixed(terms, terms->owned);
    bool equal_in_half;
    ms_status status = ms_rotate_scan(task, terms->rows, d, terms->owned, terms->owned + d,
                                      &equal_in_half, err);
    if (status != MS_OK)
        return status;
    if (equal_in_half) {
        terms->outcome = MS_ROTATE_EQUAL_IN_HALF;
        return MS_OK;
    }
    if (terms->rows == 1) {
        terms->outcome = MS_ROTATE_ONE_ROW;
        return MS_OK;
    }
    status = terms->subspace ? subspace_terms(task, terms, proper, err)
                             : full_terms(task, terms, proper, err);
    if (status != MS_OK)
        return status;
    entry_header header = {{0}, terms->rows, d, k, terms->subspace, {0, 0, 0}};
    memcpy(header.magic, entry_magic, sizeof entry_magic);
    status = append(task, terms, &header, sizeof header, err);
    if (status == MS_OK)
        status = append(task, terms, terms->owned, terms->owned_length * sizeof(double), err);
    return status;
}

/* ---- reading an entry back ---- */

static bool entry_fits(const ms_rotate_terms *terms, const ms_rotate_cache_entry *entry)
{
    const unsigned char *data = ms_rotate_cache_entry_data(entry);
    uint64_t size = ms_rotate_cache_entry_size(entry);
    if (size < HEADER_BYTES)
        return false;
    entry_header header;
    memcpy(&header, data, sizeof header);
    uint64_t expected = HEADER_BYTES + (fixed_length(terms->columns, terms->dimension,
                                                     terms->subspace) +
                                        (uint64_t)terms->rows * terms->row_length) *
                                           sizeof(double);
    return memcmp(header.magic, entry_magic, sizeof entry_magic) == 0 &&
           header.rows == terms->rows && header.columns == terms->columns &&
           header.dimension == terms->dimension && header.subspace == terms->subspace &&
           size == expected;
}

static void read_entry(ms_rotate_terms *terms)
{
    const unsigned char *data = ms_rotate_cache_entry_data(terms->entry);
    const double *base = (const double *)(const void *)(data + HEADER_BYTES);
    layout_fixed(terms, (double *)(uintptr_t)base);
    terms->stored_rows = base + fixed_length(terms->columns, terms->dimension, terms->subspace);
    terms->outcome = MS_ROTATE_TURN;
    /* start reading the rows from disk now: the apply then rarely waits */
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t begin = (uintptr_t)terms->stored_rows & ~(page - 1);
    uintptr_t end = (uintptr_t)(data + ms_rotate_cache_entry_size(terms->entry));
    if (end > begin)
        madvise((void *)begin, end - begin, MADV_WILLNEED);
}

static void count(atomic_ullong *counter, uint64_t amount)
{
    atomic_fetch_add(counter, amount);
}

bool ms_rotate_terms_cached(const ms_merge_task *task, size_t rows, size_t columns)
{
    if (task->rotate_cache == NULL || rows <= 1)
        return false;
    ms_rotate_cache_key key;
    ms_error ignored;
    return cache_key(task, rows, columns, alpha_is_fractional(task->alpha), &key, &ignored) ==
               MS_OK &&
           ms_rotate_cache_contains(task->rotate_cache, &key);
}

ms_status ms_rotate_terms_acquire(const ms_merge_task *task, size_t rows, size_t columns,
                                  ms_rotate_terms *terms, ms_error *err)
{
    memset(terms, 0, sizeof *terms);
    terms->outcome = MS_ROTATE_TURN;
    terms->rows = rows;
    terms->columns = columns;
    terms->dimension = dimension_of(rows, columns);
    terms->subspace = 2 * rows <= columns;
    terms->row_length = (terms->subspace ? 3 : 2) * terms->dimension;
    bool proper = alpha_is_fractional(task->alpha);
    ms_status status = MS_OK;
    if (task->rotate_cache != NULL && rows > 1) {
        ms_rotate_cache_key key;
        status = cache_key(task, rows, columns, proper, &key, err);
        if (status == MS_OK)
            status = ms_rotate_cache_acquire(task->rotate_cache, &key, task->cancel,
                                             &terms->entry, &terms->writer, err);
        if (status != MS_OK)
            return ms_merge_with_key(task, status, err);
        if (terms->entry != NULL && entry_fits(terms, terms->entry)) {
            if (task->rotate_counts != NULL)
                count(&task->rotate_counts->hits, 1);
            read_entry(terms);
            return MS_OK;
        }
        if (terms->entry != NULL) {    /* a foreign entry under our key: compute anew */
            ms_rotate_cache_entry_release(terms->entry);
            terms->entry = NULL;
        }
        if (task->rotate_counts != NULL)
            count(&task->rotate_counts->misses, 1);
    }
    status = produce(task, terms, proper, err);
    if (status != MS_OK || terms->outcome != MS_ROTATE_TURN) {
        if (terms->writer != NULL)
            ms_rotate_cache_writer_abandon(terms->writer);
        terms->writer = NULL;
        if (status != MS_OK)
            ms_rotate_terms_release(terms);
    }
    return status;
}

/* ---- apply ---- */

/* C(alpha) = diag(cos - shift) E + diag(f) G, dimension x its width
 * (shift 1 in a subspace: the identity is added back outside). */
static ms_status coefficients(const ms_merge_task *task, const ms_rotate_terms *terms,
                              double *result, ms_error *err)
{
    size_t k = terms->dimension, width = coefficient_width(terms);
    ms_rotation_spectrum view = {0};
    double *cosines = ms_merge_large_doubles(k), *factors = ms_merge_large_doubles(k);
    unsigned char *half_turn = malloc(k > 0 ? k : 1);
    ms_status status = MS_OK;
    if (!cosines || !factors || !half_turn) {
        status = ms_merge_out_of_memory(task, 3 * k * sizeof(double), err);
        goto done;
    }
    for (size_t j = 0; j < k; j++)
        half_turn[j] = terms->half_turn[j] != 0.0;
    view.dimension = k;
    view.angles = (double *)(uintptr_t)terms->angles;
    view.half_turn = half_turn;
    ms_rotation_power_factors(&view, task->alpha, cosines, factors);
    double shift = terms->subspace ? 1.0 : 0.0;
    for (size_t j = 0; j < k; j++)
        for (size_t i = 0; i < width; i++)
            result[j * width + i] = (cosines[j] - shift) * terms->eigen_rows[j * width + i] +
                                    factors[j] * terms->generator_rows[j * width + i];
done:
    free(cosines);
    free(factors);
    free(half_turn);
    return status;
}

typedef struct apply_buffers {
    double *coefficient, *centroid, *a, *b, *rows, *mixed, *turned, *out;
} apply_buffers;

static void apply_buffers_free(apply_buffers *buffers)
{
    free(buffers->coefficient);
    free(buffers->centroid);
    free(buffers->a);
    free(buffers->b);
    free(buffers->rows);
    free(buffers->mixed);
    free(buffers->turned);
    free(buffers->out);
}

/* Production of a block's rows.  Full: A = Xa W, B = Xb R^T W from the
 * centred inputs.  Subspace: from the triangle's columns (a P is T11^T
 * padded with zeros, b P is [T12; T22]^T): A = (a P) W, B = (b P) S^T W,
 * Z = (b P)(S^T - I). */
static void produce_rows(const ms_rotate_terms *terms, size_t row, size_t count,
                         const apply_buffers *buffers, double *target)
{
    size_t d = terms->columns, k = terms->dimension, length = terms->row_length;
    if (!terms->subspace) {
        ms_rotate_product(false, false, count, k, d, buffers->a, d, terms->a_map, k, target, length);
        ms_rotate_product(false, false, count, k, d, buffers->b, d, terms->b_map, k, target + k, length);
        return;
    }
    size_t n = terms->rows;
    const double *a_columns = terms->triangle + row, *b_columns = terms->triangle + n + row;
    ms_rotate_product(true, false, count, k, n, a_columns, k, terms->a_map, k, target, length);
    ms_rotate_product(true, false, count, k, k, b_columns, k, terms->b_map, k, target + k, length);
    ms_rotate_product(true, false, count, k, k, b_columns, k, terms->z_map, k, target + 2 * k, length);
}

/* Maps a block's stored rows in one call: faulting them in page by page
 * costs an exception each (dear on a virtual machine).  Advice only. */
static void populate_rows(const double *rows, size_t bytes)
{
#ifdef MADV_POPULATE_READ
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t begin = (uintptr_t)rows & ~(page - 1), end = (uintptr_t)rows + bytes;
    if (end > begin)
        madvise((void *)begin, end - begin, MADV_POPULATE_READ);
#else
    (void)rows;
    (void)bytes;
#endif
}

/* The rows of neurons [row, row + count): produced (and stored), or read
 * from the entry; the centred inputs too where the formula needs them. */
static ms_status block_rows(const ms_merge_task *task, ms_rotate_terms *terms, size_t row,
                            size_t count, apply_buffers *buffers, const double **rows,
                            ms_error *err)
{
    size_t d = terms->columns, length = terms->row_length;
    bool needs_inputs = terms->subspace || terms->stored_rows == NULL;
    ms_status status = MS_OK;
    if (needs_inputs) {
        status = read_centred(task, &task->a, row, count, d, terms->centroid_a, buffers->a, err);
        if (status == MS_OK)
            status = read_centred(task, &task->b, row, count, d, terms->centroid_b, buffers->b,
                                  err);
        if (status != MS_OK)
            return status;
    }
    if (terms->stored_rows != NULL) {
        *rows = terms->stored_rows + row * length;
        populate_rows(*rows, count * length * sizeof(double));
        return MS_OK;
    }
    uint64_t started = clock_ns();
    produce_rows(terms, row, count, buffers, buffers->rows);
    *rows = buffers->rows;
    started = spent(task, SPENT_PRODUCTS, started);
    status = append(task, terms, buffers->rows, count * length * sizeof(double), err);
    spent(task, SPENT_IO, started);
    return status;
}

static ms_status apply_block(const ms_merge_task *task, ms_rotate_terms *terms, size_t row,
                             size_t count, apply_buffers *buffers, ms_error *err)
{
    size_t d = terms->columns, k = terms->dimension, length = terms->row_length;
    const double *rows;
    ms_status status = block_rows(task, terms, row, count, buffers, &rows, err);
    if (status != MS_OK)
        return status;
    uint64_t started = clock_ns();
    double alpha_weight = 1.0 - task->beta, beta = task->beta;
    /* the buffers and the rows never overlap: the simd loops need no checks */
    for (size_t i = 0; i < count; i++)
#pragma omp simd
        for (size_t j = 0; j < k; j++)
            buffers->mixed[i * k + j] =
                alpha_weight * rows[i * length + j] + beta * rows[i * length + k + j];
    if (!terms->subspace) {
        ms_rotate_product(false, false, count, d, k, buffers->mixed, k, buffers->coefficient, d,
                buffers->out, d);
    } else {
        ms_rotate_product(false, false, count, k, k, buffers->mixed, k, buffers->coefficient, k,
                buffers->turned, k);
        for (size_t i = 0; i < count; i++)
#pragma omp simd
            for (size_t j = 0; j < k; j++)
                buffers->turned[i * k + j] += beta * rows[i * length + 2 * k + j];
        ms_rotate_product(false, true, count, d, k, buffers->turned, k, terms->basis, k, buffers->out, d);
    }
    for (size_t i = 0; i < count; i++) {
        double *out = buffers->out + i * d;
#pragma omp simd
        for (size_t j = 0; j < d; j++)
            out[j] += buffers->centroid[j];
        if (!terms->subspace)
            continue;
        const double *a = buffers->a + i * d, *b = buffers->b + i * d;
#pragma omp simd
        for (size_t j = 0; j < d; j++)
            out[j] += alpha_weight * a[j] + beta * b[j];
    }
    started = spent(task, SPENT_PRODUCTS, started);
    if (terms->entry != NULL)
        ms_rotate_cache_entry_drop_pages(
            terms->entry,
            (uint64_t)((const unsigned char *)rows -
                       ms_rotate_cache_entry_data(terms->entry)),
            (uint64_t)count * length * sizeof(double));
    status = ms_merge_emit(task, (uint64_t)row * d, buffers->out, count * d, err);
    spent(task, SPENT_IO, started);
    return status;
}

ms_status ms_rotate_terms_apply(const ms_merge_task *task, ms_rotate_terms *terms,
                                ms_error *err)
{
    size_t d = terms->columns, k = terms->dimension, block = ms_rotate_block_rows(d);
    apply_buffers buffers = {
        ms_merge_large_doubles(k * coefficient_width(terms)), ms_merge_large_doubles(d), ms_merge_large_doubles(block * d),
        ms_merge_large_doubles(block * d), ms_merge_large_doubles(block * terms->row_length), ms_merge_large_doubles(block * k),
        ms_merge_large_doubles(block * k), ms_merge_large_doubles(block * d)};
    ms_status status = MS_OK;
    if (!buffers.coefficient || !buffers.centroid || !buffers.a || !buffers.b ||
        !buffers.rows || !buffers.mixed || !buffers.turned || !buffers.out) {
        status = ms_merge_out_of_memory(task, ms_rotate_scratch_bytes(terms->rows, d, false),
                                        err);
        goto done;
    }
    status = coefficients(task, terms, buffers.coefficient, err);
    if (status != MS_OK)
        goto done;
    for (size_t j = 0; j < d; j++)
        buffers.centroid[j] =
            (1.0 - task->alpha) * terms->centroid_a[j] + task->alpha * terms->centroid_b[j];
    for (size_t row = 0; row < terms->rows && status == MS_OK; row += block) {
        size_t count = terms->rows - row < block ? terms->rows - row : block;
        status = ms_merge_check_cancel(task, err);
        if (status == MS_OK)
            status = apply_block(task, terms, row, count, &buffers, err);
    }
    if (status == MS_OK && terms->writer != NULL) {
        ms_rotate_cache_entry *entry = NULL;
        ms_rotate_cache_writer *writer = terms->writer;
        terms->writer = NULL;
        status = ms_merge_with_key(task, ms_rotate_cache_writer_commit(writer, &entry, err), err);
        if (status == MS_OK) {
            if (task->rotate_counts != NULL)
                count(&task->rotate_counts->bytes_stored, ms_rotate_cache_entry_size(entry));
            ms_rotate_cache_entry_release(entry);
        }
    }
done:
    apply_buffers_free(&buffers);
    return status;
}

void ms_rotate_terms_release(ms_rotate_terms *terms)
{
    if (terms->writer != NULL)
        ms_rotate_cache_writer_abandon(terms->writer);
    if (terms->entry != NULL)
        ms_rotate_cache_entry_release(terms->entry);
    free(terms->owned);
    free(terms->a_map);
    free(terms->b_map);
    free(terms->z_map);
    free(terms->triangle);
    memset(terms, 0, sizeof *terms);
}
