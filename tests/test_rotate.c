/* The rotate method through the method table, against sd-meh's rotate
 * computed plainly here (rotate_reference.c), its properties, its early
 * returns, and the decomposition cache: a cached merge equals an uncached
 * one bit for bit, a changed input never hits, a damaged entry is a miss,
 * two merges of one pair at once. */
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include "check_support.h"
#include "core/merge/method_rotate.h"
#include "core/merge/rotate_cache.h"
#include "core/merge/rotate_decompose.h"
#include "core/merge/rotate_math.h"
#include "merge_methods_fixture.h"
#include "numerics_testutil.h"
#include "rotate_reference.h"

#define TOLERANCE 1e-9

/* A rows x columns case of doubles (exact), random normal values. */
static void make_case(mm_case *k, size_t rows, size_t columns, uint64_t seed)
{
    mm_case_init(k, (uint64_t)rows * columns, MS_DTYPE_F64, MS_DTYPE_F64, -1);
    k->ndim = 2;
    k->shape[0] = (int64_t)rows;
    k->shape[1] = (int64_t)columns;
    test_rng rng;
    test_rng_seed(&rng, seed);
    double *values = rr_zeros(rows * columns);
    test_random_matrix(&rng, rows, columns, values);
    mm_tensor_set(&k->a, values, k->count);
    test_random_matrix(&rng, rows, columns, values);
    mm_tensor_set(&k->b, values, k->count);
    free(values);
}

static void centre(const double *x, size_t rows, size_t d, double *centred, double *centroid)
{
    for (size_t j = 0; j < d; j++) {
        double sum = 0.0;
        for (size_t i = 0; i < rows; i++)
            sum += x[i * d + j];
        centroid[j] = sum / (double)rows;
    }
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < d; j++)
            centred[i * d + j] = x[i * d + j] - centroid[j];
}

/* sd-meh's rotate of a rotated key, in double, given the rotation R. */
static void reference_with(const mm_case *k, size_t rows, size_t d, const double *rotation,
                           double *expected)
{
    double *xa = rr_zeros(rows * d), *xb = rr_zeros(rows * d), *ca = rr_zeros(d);
    double *cb = rr_zeros(d), *power = rr_zeros(d * d), *mixed = rr_zeros(rows * d);
    centre(k->a.values, rows, d, xa, ca);
    centre(k->b.values, rows, d, xb, cb);
    rr_reference_power(rotation, d, k->alpha, power);
    /* mixed = (1 - beta) xa + beta xb R^T */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)d, (int)d, k->beta, xb,
                (int)d, rotation, (int)d, 0.0, mixed, (int)d);
    for (size_t i = 0; i < rows * d; i++)
        mixed[i] += (1.0 - k->beta) * xa[i];
    rr_multiply(mixed, power, expected, rows, d, d);
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < d; j++)
            expected[i * d + j] += (1.0 - k->alpha) * ca[j] + k->alpha * cb[j];
    free(xa);
    free(xb);
    free(ca);
    free(cb);
    free(power);
    free(mixed);
}

/* The whole reference: R from a full SVD (unique optimum: rows > columns). */
static void reference(const mm_case *k, size_t rows, size_t d, double *expected)
{
    double *xa = rr_zeros(rows * d), *xb = rr_zeros(rows * d), *centroid = rr_zeros(d);
    double *rotation = rr_zeros(d * d);
    centre(k->a.values, rows, d, xa, centroid);
    centre(k->b.values, rows, d, xb, centroid);
    rr_reference_rotation(rows, d, xa, xb, k->alpha != nearbyint(k->alpha), rotation);
    reference_with(k, rows, d, rotation, expected);
    free(xa);
    free(xb);
    free(centroid);
    free(rotation);
}

static double scale_of(const mm_case *k)
{
    return fmax(1.0, mm_scale(k));
}

static const double weights[][2] = {
    {0.5, 0.3}, {1.7, 0.0}, {-0.3, 0.6}, {2.0, 0.3}, {1.0, 0.0}, {0.0, 0.4}, {0.5, 1.0},
};

START_TEST(test_matches_sd_meh_reference)
{
    mm_case k;
    size_t rows = 24, d = 6;
    make_case(&k, rows, d, 40 + (uint64_t)_i);
    k.alpha = weights[_i][0];
    k.beta = weights[_i][1];
    ms_error err;
    ck_assert_int_eq(mm_run(&k, "rotate", &err), MS_OK);
    double *expected = rr_zeros(rows * d);
    reference(&k, rows, d, expected);
    ck_assert_double_le(rr_largest_difference(k.out, expected, rows * d),
                        TOLERANCE * scale_of(&k));
    free(expected);
    mm_case_free(&k);
}
END_TEST

/* Fewer neurons than inputs (the subspace road, and the completion at full
 * size): equal to the plain formula with our canonical R. */
START_TEST(test_subspace_matches_formula)
{
    mm_case k;
    size_t rows = _i == 0 ? 3 : 5, d = _i == 0 ? 11 : 8;
    make_case(&k, rows, d, 70 + (uint64_t)_i);
    k.alpha = 0.6;
    k.beta = 0.25;
    ms_error err;
    ck_assert_int_eq(mm_run(&k, "rotate", &err), MS_OK);
    double *xa = rr_zeros(rows * d), *xb = rr_zeros(rows * d), *centroid = rr_zeros(d);
    double *full = rr_zeros(d * d), *expected = rr_zeros(rows * d);
    centre(k.a.values, rows, d, xa, centroid);
    centre(k.b.values, rows, d, xb, centroid);
    ms_rotation rotation;
    ck_assert_int_eq(ms_rotation_solve(rows, d, xa, xb, true, &rotation, &err), MS_OK);
    if (rotation.basis == NULL) {
        memcpy(full, rotation.matrix, d * d * sizeof(double));
    } else {
        size_t dim = rotation.dimension;
        double *left = rr_zeros(d * dim), *shifted = rr_zeros(dim * dim);
        memcpy(shifted, rotation.matrix, dim * dim * sizeof(double));
        for (size_t i = 0; i < dim; i++)
            shifted[i * dim + i] -= 1.0;
        rr_multiply(rotation.basis, shifted, left, d, dim, dim);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)d, (int)d, (int)dim, 1.0, left,
                    (int)dim, rotation.basis, (int)dim, 0.0, full, (int)d);
        for (size_t i = 0; i < d; i++)
            full[i * d + i] += 1.0;
        free(left);
        free(shifted);
    }
    ck_assert_int_eq(_i == 0, rotation.basis != NULL);
    reference_with(&k, rows, d, full, expected);
    ck_assert_double_le(rr_largest_difference(k.out, expected, rows * d),
                        TOLERANCE * scale_of(&k));
    ms_rotation_free(&rotation);
    free(xa);
    free(xb);
    free(centroid);
    free(full);
    free(expected);
    mm_case_free(&k);
}
END_TEST

START_TEST(test_properties)
{
    size_t rows = 20, d = 5;
    ms_error err;
    /* alpha 1, beta 1: B itself */
    mm_case k;
    make_case(&k, rows, d, 90);
    k.alpha = 1.0;
    k.beta = 1.0;
    ck_assert_int_eq(mm_run(&k, "rotate", &err), MS_OK);
    ck_assert_double_le(rr_largest_difference(k.out, k.b.values, k.count), TOLERANCE);
    /* alpha 1, beta 0: A's neurons aligned to B's: nothing left to rotate */
    k.beta = 0.0;
    ck_assert_int_eq(mm_run(&k, "rotate", &err), MS_OK);
    double *aligned = rr_zeros(rows * d), *xb = rr_zeros(rows * d), *centroid = rr_zeros(d);
    double *cb = rr_zeros(d);
    centre(k.out, rows, d, aligned, centroid);
    centre(k.b.values, rows, d, xb, cb);
    ck_assert_double_le(rr_largest_difference(centroid, cb, d), TOLERANCE);
    double *again = rr_zeros(d * d);
    rr_reference_rotation(rows, d, aligned, xb, false, again);
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++)
            ck_assert_double_eq_tol(again[i * d + j], i == j ? 1.0 : 0.0, 1e-8);
    /* beta 1, any alpha: B's shape (the neurons' pairwise products about
     * their centroid), only turned */
    k.alpha = 0.4;
    k.beta = 1.0;
    ck_assert_int_eq(mm_run(&k, "rotate", &err), MS_OK);
    double *shaped = rr_zeros(rows * d), *gram_out = rr_zeros(rows * rows);
    double *gram_b = rr_zeros(rows * rows);
    centre(k.out, rows, d, shaped, centroid);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)rows, (int)d, 1.0,
                shaped, (int)d, shaped, (int)d, 0.0, gram_out, (int)rows);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)rows, (int)d, 1.0, xb,
                (int)d, xb, (int)d, 0.0, gram_b, (int)rows);
    ck_assert_double_le(rr_largest_difference(gram_out, gram_b, rows * rows), TOLERANCE * 10);
    free(shaped);
    free(gram_out);
    free(gram_b);
    /* alpha 0, beta 0: A unchanged, exactly */
    k.alpha = 0.0;
    k.beta = 0.0;
    ck_assert_int_eq(mm_run(&k, "rotate", &err), MS_OK);
    ck_assert_mem_eq(k.out, k.a.values, k.count * sizeof(double));
    free(aligned);
    free(xb);
    free(centroid);
    free(cb);
    free(again);
    mm_case_free(&k);
}
END_TEST

/* B = A turned by exactly pi in one plane: alpha 0.5 turns by a quarter,
 * and twice that is the half turn. */
START_TEST(test_half_turn_pair)
{
    size_t rows = 30, d = 4;
    mm_case k;
    make_case(&k, rows, d, 95);
    double *b = rr_zeros(rows * d);
    for (size_t i = 0; i < rows; i++) {
        const double *a = k.a.values + i * d;
        b[i * d + 0] = -a[0];
        b[i * d + 1] = -a[1];
        b[i * d + 2] = a[2];
        b[i * d + 3] = a[3];
    }
    mm_tensor_set(&k.b, b, k.count);
    k.alpha = 0.5;
    k.beta = 0.0;
    ms_error err;
    ck_assert_int_eq(mm_run(&k, "rotate", &err), MS_OK);
    double *xa = rr_zeros(rows * d), *xo = rr_zeros(rows * d), *centroid = rr_zeros(d);
    double *turn = rr_zeros(d * d), *square = rr_zeros(d * d);
    centre(k.a.values, rows, d, xa, centroid);
    centre(k.out, rows, d, xo, centroid);
    rr_reference_rotation(rows, d, xa, xo, false, turn);
    rr_multiply(turn, turn, square, d, d, d);
    double half_turn[16] = {-1, 0, 0, 0, 0, -1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
    ck_assert_double_le(rr_largest_difference(square, half_turn, 16), 1e-8);
    ck_assert_double_le(fabs(rr_determinant(turn, d) - 1.0), 1e-9);
    free(b);
    free(xa);
    free(xo);
    free(centroid);
    free(turn);
    free(square);
    mm_case_free(&k);
}
END_TEST

START_TEST(test_early_returns)
{
    ms_error err;
    mm_case k;
    /* identical inputs: weighted_sum(a, b, beta) = a */
    make_case(&k, 6, 3, 1);
    mm_tensor_set(&k.b, k.a.values, k.count);
    k.alpha = 0.7;
    k.beta = 0.3;
    ck_assert_int_eq(mm_run(&k, "rotate", &err), MS_OK);
    ck_assert_double_le(rr_largest_difference(k.out, k.a.values, k.count), 1e-15);
    mm_case_free(&k);
    /* one row, and a 1-D tensor: the blended centroid (1 - alpha) a + alpha b */
    for (int shape = 0; shape < 2; shape++) {
        make_case(&k, 1, 7, 2);
        if (shape == 1) {
            k.ndim = 1;
            k.shape[0] = 7;
        }
        k.alpha = 0.25;
        k.beta = 0.9;
        ck_assert_int_eq(mm_run(&k, "rotate", &err), MS_OK);
        for (uint64_t i = 0; i < k.count; i++)
            ck_assert_double_eq_tol(k.out[i], 0.75 * k.a.values[i] + 0.25 * k.b.values[i],
                                    1e-15);
        mm_case_free(&k);
    }
    /* a 3x3 conv kernel and a scalar: weighted_sum(a, b, beta) */
    make_case(&k, 2, 18, 3);
    k.ndim = 4;
    k.shape[0] = 2, k.shape[1] = 2, k.shape[2] = 3, k.shape[3] = 3;
    k.alpha = 0.5;
    k.beta = 0.2;
    ck_assert_int_eq(mm_run(&k, "rotate", &err), MS_OK);
    for (uint64_t i = 0; i < k.count; i++)
        ck_assert_double_eq_tol(k.out[i], 0.8 * k.a.values[i] + 0.2 * k.b.values[i], 1e-15);
    mm_case_free(&k);
    /* zero matrices are equal in fp16: zeros */
    mm_case_init(&k, 12, MS_DTYPE_F32, MS_DTYPE_F16, -1);
    k.ndim = 2, k.shape[0] = 4, k.shape[1] = 3;
    ck_assert_int_eq(mm_run(&k, "rotate", &err), MS_OK);
    for (uint64_t i = 0; i < k.count; i++)
        ck_assert_double_eq(k.out[i], 0.0);
    mm_case_free(&k);
}
END_TEST

/* A conv 1x1 kernel is rotated as its [out, in] matrix. */
START_TEST(test_conv_one_by_one)
{
    ms_error err;
    mm_case conv, plain;
    make_case(&conv, 12, 4, 5);
    make_case(&plain, 12, 4, 5);
    conv.ndim = 4;
    conv.shape[0] = 12, conv.shape[1] = 4, conv.shape[2] = 1, conv.shape[3] = 1;
    conv.alpha = plain.alpha = 0.4;
    conv.beta = plain.beta = 0.1;
    ck_assert_int_eq(mm_run(&conv, "rotate", &err), MS_OK);
    ck_assert_int_eq(mm_run(&plain, "rotate", &err), MS_OK);
    ck_assert_mem_eq(conv.out, plain.out, conv.count * sizeof(double));
    mm_case_free(&conv);
    mm_case_free(&plain);
}
END_TEST

START_TEST(test_failures_name_the_key)
{
    ms_error err;
    mm_case k;
    make_case(&k, 8, 3, 6);
    double *values = rr_zeros(k.count);
    memcpy(values, k.b.values, k.count * sizeof(double));
    values[5] = NAN;
    mm_tensor_set(&k.b, values, k.count);
    ck_assert_int_eq(mm_run(&k, "rotate", &err), MS_ERR_NAN_DETECTED);
    ck_assert_str_eq(err.key, "model.test.weight");
    ck_assert_ptr_nonnull(strstr(err.message, "model B"));
    values[5] = 0.0;
    mm_tensor_set(&k.b, values, k.count);
    atomic_store(&k.cancel, 1);
    ck_assert_int_eq(mm_run(&k, "rotate", &err), MS_ERR_CANCELLED);
    atomic_store(&k.cancel, 0);
    k.alpha = INFINITY;
    ck_assert_int_eq(mm_run(&k, "rotate", &err), MS_ERR_INVALID_PARAMETER);
    free(values);
    mm_case_free(&k);
}
END_TEST

/* ---- the cache ---- */

static char *cache_folder;

static void setup_cache_folder(void)
{
    cache_folder = ms_test_make_temp_dir("rotate-cache");
    ck_assert_ptr_nonnull(cache_folder);
}

static void teardown_cache_folder(void)
{
    ms_test_remove_tree(cache_folder);
    free(cache_folder);
}

static ms_rotate_cache *open_cache(void)
{
    ms_rotate_cache *cache;
    ms_error err;
    ck_assert_int_eq(ms_rotate_cache_open(cache_folder, 1u << 30, &cache, &err), MS_OK);
    return cache;
}

static double *run_with(mm_case *k, ms_rotate_cache *cache, ms_merge_rotate_counts *counts,
                        double alpha, double beta)
{
    k->rotate_cache = cache;
    k->rotate_counts = counts;
    k->alpha = alpha;
    k->beta = beta;
    ms_error err;
    ck_assert_int_eq(mm_run(k, "rotate", &err), MS_OK);
    double *copy = rr_zeros(k->count);
    memcpy(copy, k->out, k->count * sizeof(double));
    return copy;
}

START_TEST(test_cache_bit_for_bit)
{
    mm_case k;
    size_t rows = _i == 0 ? 40 : 4, d = _i == 0 ? 9 : 13;   /* full, then subspace */
    make_case(&k, rows, d, 300 + (uint64_t)_i);
    ms_rotate_cache *cache = open_cache();
    ms_merge_rotate_counts counts = {0};
    double *first = run_with(&k, cache, &counts, 0.5, 0.3);
    ck_assert_uint_eq(atomic_load(&counts.misses), 1);
    ck_assert_uint_gt(atomic_load(&counts.bytes_stored), 0);
    double *cached = run_with(&k, cache, &counts, 0.7, 0.1);
    ck_assert_uint_eq(atomic_load(&counts.hits), 1);
    double *uncached = run_with(&k, NULL, NULL, 0.7, 0.1);
    ck_assert_mem_eq(cached, uncached, k.count * sizeof(double));
    ck_assert_double_gt(rr_largest_difference(first, cached, k.count), 1e-6);
    /* an integer alpha needs the unflipped rotation: another entry */
    double *integer = run_with(&k, cache, &counts, 2.0, 0.1);
    double *integer_uncached = run_with(&k, NULL, NULL, 2.0, 0.1);
    ck_assert_mem_eq(integer, integer_uncached, k.count * sizeof(double));
    ck_assert_uint_eq(atomic_load(&counts.misses), 2);
    /* a renamed copy of the same tensors hits: the key is the content */
    ms_rotate_cache_close(cache);
    cache = open_cache();
    double *reopened = run_with(&k, cache, &counts, 0.7, 0.1);
    ck_assert_mem_eq(reopened, uncached, k.count * sizeof(double));
    ck_assert_uint_eq(atomic_load(&counts.hits), 2);
    /* a changed input never does */
    double *values = rr_zeros(k.count);
    memcpy(values, k.a.values, k.count * sizeof(double));
    values[3] += 0.5;
    mm_tensor_set(&k.a, values, k.count);
    double *changed = run_with(&k, cache, &counts, 0.7, 0.1);
    double *changed_uncached = run_with(&k, NULL, NULL, 0.7, 0.1);
    ck_assert_mem_eq(changed, changed_uncached, k.count * sizeof(double));
    ck_assert_uint_eq(atomic_load(&counts.misses), 3);
    ms_rotate_cache_close(cache);
    free(values);
    free(first);
    free(cached);
    free(uncached);
    free(integer);
    free(integer_uncached);
    free(reopened);
    free(changed);
    free(changed_uncached);
    mm_case_free(&k);
}
END_TEST

/* Every entry file in the folder: cut short (kind 0) or one byte flipped
 * near its end (kind 1). */
static void damage_entries(int kind)
{
    DIR *folder = opendir(cache_folder);
    ck_assert_ptr_nonnull(folder);
    struct dirent *item;
    int damaged = 0;
    while ((item = readdir(folder)) != NULL) {
        if (item->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", cache_folder, item->d_name);
        struct stat info;
        ck_assert_int_eq(stat(path, &info), 0);
        if (kind == 0) {
            ck_assert_int_eq(truncate(path, info.st_size / 2), 0);
        } else {
            int fd = open(path, O_RDWR);
            ck_assert_int_ge(fd, 0);
            unsigned char byte;
            ck_assert_int_eq(pread(fd, &byte, 1, info.st_size - 9), 1);
            byte ^= 0x40;
            ck_assert_int_eq(pwrite(fd, &byte, 1, info.st_size - 9), 1);
            close(fd);
        }
        damaged++;
    }
    closedir(folder);
    ck_assert_int_gt(damaged, 0);
}

START_TEST(test_cache_damage_is_a_miss)
{
    mm_case k;
    make_case(&k, 30, 7, 400);
    ms_rotate_cache *cache = open_cache();
    ms_merge_rotate_counts counts = {0};
    double *first = run_with(&k, cache, &counts, 0.5, 0.3);
    ms_rotate_cache_close(cache);
    damage_entries(_i);
    cache = open_cache();
    double *again = run_with(&k, cache, &counts, 0.5, 0.3);
    ck_assert_mem_eq(first, again, k.count * sizeof(double));
    ck_assert_uint_eq(atomic_load(&counts.misses), 2);
    ck_assert_uint_eq(atomic_load(&counts.hits), 0);
    ms_rotate_cache_close(cache);
    free(first);
    free(again);
    mm_case_free(&k);
}
END_TEST

typedef struct concurrent_run {
    mm_case k;
    ms_rotate_cache *cache;
    ms_merge_rotate_counts *counts;
    ms_status status;
} concurrent_run;

static void *run_thread(void *argument)
{
    concurrent_run *run = argument;
    run->k.rotate_cache = run->cache;
    run->k.rotate_counts = run->counts;
    run->k.alpha = 0.5;
    run->k.beta = 0.3;
    ms_error err;
    run->status = mm_run(&run->k, "rotate", &err);
    return NULL;
}

START_TEST(test_cache_two_merges_at_once)
{
    ms_rotate_cache *cache = open_cache();
    ms_merge_rotate_counts counts = {0};
    concurrent_run runs[2];
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) {
        make_case(&runs[i].k, 200, 24, 500);
        runs[i].cache = cache;
        runs[i].counts = &counts;
        ck_assert_int_eq(pthread_create(&threads[i], NULL, run_thread, &runs[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    ck_assert_int_eq(runs[0].status, MS_OK);
    ck_assert_int_eq(runs[1].status, MS_OK);
    ck_assert_mem_eq(runs[0].k.out, runs[1].k.out, runs[0].k.count * sizeof(double));
    ck_assert_uint_eq(atomic_load(&counts.misses), 1);
    ck_assert_uint_eq(atomic_load(&counts.hits), 1);
    for (int i = 0; i < 2; i++)
        mm_case_free(&runs[i].k);
    ms_rotate_cache_close(cache);
}
END_TEST

/* Cancel inside a key: raised while its first block of neurons is written,
 * honoured before the next; with a cache, nothing is stored. */
START_TEST(test_cancel_inside_a_key)
{
    mm_case k;
    size_t d = 8, rows = 3 * ms_rotate_block_rows(d) + 5;
    make_case(&k, rows, d, 600);
    k.cancel_at_call = 1;
    k.alpha = 0.5;
    k.beta = 0.3;
    ms_rotate_cache *cache = open_cache();
    ms_merge_rotate_counts counts = {0};
    k.rotate_cache = _i == 0 ? NULL : cache;
    k.rotate_counts = &counts;
    ms_error err;
    ck_assert_int_eq(mm_run(&k, "rotate", &err), MS_ERR_CANCELLED);
    ck_assert_uint_eq(k.calls, 1);
    ck_assert_uint_eq(atomic_load(&counts.bytes_stored), 0);
    ms_rotate_cache_stats stats;
    ms_rotate_cache_stats_get(cache, &stats);
    ck_assert_uint_eq(stats.entries, 0);
    ms_rotate_cache_close(cache);
    mm_case_free(&k);
}
END_TEST

/* The decompositions on their own thread: a cancel is answered at once
 * (the abandoned job finishes alone and frees its inputs); without one,
 * the same rotation as computed in place. */
START_TEST(test_decomposition_thread)
{
    size_t rows = 60, d = _i == 0 ? 200 : 40;   /* the subspace road, then the full one */
    test_rng rng;
    test_rng_seed(&rng, 700);
    atomic_int cancel;
    atomic_init(&cancel, 1);
    ms_error err;
    for (int round = 0; round < 2; round++) {
        double *a = rr_zeros(rows * d), *b = rr_zeros(rows * d);
        test_random_matrix(&rng, rows, d, a);
        test_random_matrix(&rng, rows, d, b);
        ms_rotation direct;
        ck_assert_int_eq(ms_rotation_solve(rows, d, a, b, true, &direct, &err), MS_OK);
        ms_rotate_decomposed result;
        ms_status status;
        if (_i == 0) {
            status = ms_rotate_decompose_rows(rows, d, a, b, true, &cancel, &result, &err);
        } else {
            double *covariance = rr_zeros(d * d);
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)d, (int)rows, 1.0,
                        a, (int)d, b, (int)d, 0.0, covariance, (int)d);
            free(a);
            free(b);
            status = ms_rotate_decompose_covariance(rows, d, covariance, true, &cancel, &result,
                                                    &err);
        }
        if (round == 0) {
            ck_assert_int_eq(status, MS_ERR_CANCELLED);
            atomic_store(&cancel, 0);
        } else {
            ck_assert_int_eq(status, MS_OK);
            size_t k = direct.dimension;
            ck_assert_uint_eq(result.rotation.dimension, k);
            ck_assert_mem_eq(result.rotation.matrix, direct.matrix, k * k * sizeof(double));
            ck_assert_ptr_nonnull(result.spectrum.eigenvectors);
            ms_rotate_decomposed_free(&result);
        }
        ms_rotation_free(&direct);
    }
}
END_TEST

static Suite *rotate_suite(void)
{
    Suite *suite = suite_create("rotate");
    TCase *method = tcase_create("method");
    tcase_add_loop_test(method, test_matches_sd_meh_reference, 0,
                        (int)(sizeof weights / sizeof weights[0]));
    tcase_add_loop_test(method, test_subspace_matches_formula, 0, 2);
    tcase_add_test(method, test_properties);
    tcase_add_test(method, test_half_turn_pair);
    tcase_add_test(method, test_early_returns);
    tcase_add_test(method, test_conv_one_by_one);
    tcase_add_test(method, test_failures_name_the_key);
    tcase_add_loop_test(method, test_decomposition_thread, 0, 2);
    suite_add_tcase(suite, method);
    TCase *cache = tcase_create("cache");
    tcase_add_checked_fixture(cache, setup_cache_folder, teardown_cache_folder);
    tcase_add_loop_test(cache, test_cache_bit_for_bit, 0, 2);
    tcase_add_loop_test(cache, test_cache_damage_is_a_miss, 0, 2);
    tcase_add_test(cache, test_cache_two_merges_at_once);
    tcase_add_loop_test(cache, test_cancel_inside_a_key, 0, 2);
    tcase_set_timeout(cache, 60);
    suite_add_tcase(suite, cache);
    return suite;
}

int main(void)
{
    return ms_test_run_suite(rotate_suite());
}
