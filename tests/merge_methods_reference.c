/* Reference implementations of the merge methods, written plainly from
 * algorithms.md section 3 (and sd-meh): whole arrays, long double where it
 * helps, full sorts (qsort with an index tie-break) instead of selection,
 * and a naive DFT (or a textbook radix-2 FFT for long power-of-two inputs)
 * in long double instead of FFTW. */
#include "merge_methods_fixture.h"

#include <check.h>
#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const long double pi_l = 3.141592653589793238462643383279502884L;

/* ---- orders ---- */

/* torch's order: -0 == +0, NaN above everything */
static int compare_values(double x, double y)
{
    if (isnan(x) || isnan(y))
        return isnan(x) - isnan(y);
    return x < y ? -1 : x > y;
}

static const double *sort_values;

static int compare_indices(const void *left, const void *right)
{
    size_t i = *(const size_t *)left, j = *(const size_t *)right;
    int order = compare_values(sort_values[i], sort_values[j]);
    return order != 0 ? order : (i > j) - (i < j);
}

/* order[i] = index of the i-th smallest, ties by index (a stable sort) */
static size_t *stable_order(const double *values, uint64_t count)
{
    size_t *order = malloc((count ? count : 1) * sizeof *order);
    ck_assert(order != NULL);
    for (size_t i = 0; i < count; i++)
        order[i] = i;
    sort_values = values;
    qsort(order, (size_t)count, sizeof *order, compare_indices);
    return order;
}

static int compare_doubles(const void *left, const void *right)
{
    return compare_values(*(const double *)left, *(const double *)right);
}

/* the k-th smallest |values| (1-based) by a full sort */
static double kth_magnitude(const double *values, uint64_t count, uint64_t k)
{
    double *magnitudes = malloc(count * sizeof *magnitudes);
    ck_assert(magnitudes != NULL);
    for (uint64_t i = 0; i < count; i++)
        magnitudes[i] = fabs(values[i]);
    qsort(magnitudes, (size_t)count, sizeof *magnitudes, compare_doubles);
    double kth = magnitudes[k - 1];
    free(magnitudes);
    return kth;
}

static double torch_sign(double x)
{
    return x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0;   /* NaN -> 0 */
}

/* Python's round(): half to even, written out */
static long long python_round(double x)
{
    double lower = floor(x), fraction = x - lower;
    if (fraction > 0.5 || (fraction == 0.5 && fmod(lower, 2.0) != 0))
        lower += 1;
    return (long long)lower;
}

/* ---- elementwise ---- */

static double elementwise(const char *method, double alpha, double beta, double a, double b,
                          double c)
{
    long double al = alpha, be = beta, x = a, y = b, z = c;
    if (strcmp(method, "weighted_sum") == 0)
        return (double)((1 - al) * x + al * y);
    if (strcmp(method, "weighted_subtraction") == 0) {
        if (alpha == 1.0 && beta == 1.0)
            be = (long double)(beta - 1e-10);
        return (double)((x - al * be * y) / (1 - al * be));
    }
    if (strcmp(method, "add_difference") == 0)
        return (double)(x + al * (y - z));
    if (strcmp(method, "sum_twice") == 0)
        return (double)((1 - be) * ((1 - al) * x + al * y) + be * z);
    if (strcmp(method, "triple_sum") == 0)
        return (double)((1 - al - be) * x + al * y + be * z);
    if (strcmp(method, "multiply_difference") == 0) {
        long double size = powl(fabsl(x - z), 1 - al) * powl(fabsl(y - z), al);
        /* the sign is a discontinuity: taken in double, in the documented order */
        double direction = (1 - beta) * a + beta * b - c;
        return (double)(z + (signbit(direction) ? -size : size));
    }
    /* similarity_add_difference */
    long double t = fabsl(x) > fabsl(y) ? fabsl(x) : fabsl(y);
    long double similarity = (x * y / (t * t) + 1) / 2 * be;
    if (isnan((double)similarity))
        similarity = be;
    return (double)((1 - similarity) * (x + al * (y - z)) +
                    similarity * ((1 - al / 2) * x + (al / 2) * y));
}

static void tensor_sum(const mm_case *k, double *expected)
{
    long long n = k->ndim > 0 ? k->shape[0] : 1;
    uint64_t row = k->count / (uint64_t)n;
    double alpha = k->alpha, beta = k->beta;
    long long start, stop;
    const double *outer = k->a.values, *inner = k->b.values;
    if (alpha + beta <= 1) {
        start = (long long)(n * beta);
        stop = (long long)(n * (alpha + beta));
    } else {
        start = (long long)(n * (alpha + beta - 1));
        stop = (long long)(n * beta);
        outer = k->b.values;
        inner = k->a.values;
    }
    /* Python slicing */
    start = start < 0 ? (start + n < 0 ? 0 : start + n) : (start > n ? n : start);
    stop = stop < 0 ? (stop + n < 0 ? 0 : stop + n) : (stop > n ? n : stop);
    for (uint64_t i = 0; i < k->count; i++) {
        long long r = (long long)(i / row);
        expected[i] = r >= start && r < stop ? inner[i] : outer[i];
    }
}

static void euclidean(const mm_case *k, double *expected)
{
    const double *a = k->a.values, *b = k->b.values, *c = k->c.values;
    long double al = k->alpha, na = 0, nb = 0, ns = 0, nd = 0;
    for (uint64_t i = 0; i < k->count; i++) {
        long double s = (1 - al) * a[i] + al * b[i] - c[i];
        na += ((long double)a[i] - c[i]) * ((long double)a[i] - c[i]);
        nb += ((long double)b[i] - c[i]) * ((long double)b[i] - c[i]);
        ns += s * s;
    }
    na = sqrtl(na);
    nb = sqrtl(nb);
    ns = sqrtl(ns);
    long double *d = malloc(k->count * sizeof *d);
    ck_assert(d != NULL);
    for (uint64_t i = 0; i < k->count; i++) {
        long double da = ((long double)a[i] - c[i]) / na, db = ((long double)b[i] - c[i]) / nb;
        if (isnan((double)da))
            da = 0;
        if (isnan((double)db))
            db = 0;
        double s = (1 - k->alpha) * a[i] + k->alpha * b[i] - c[i];   /* the sign: in double */
        d[i] = sqrtl((1 - al) * da * da + al * db * db);
        if (signbit(s))
            d[i] = -d[i];
        nd += d[i] * d[i];
    }
    nd = sqrtl(nd);
    for (uint64_t i = 0; i < k->count; i++)
        expected[i] = (double)(c[i] + d[i] / nd * ns);
    free(d);
}

static void ties(const mm_case *k, double *expected)
{
    uint64_t n = k->count;
    long long wanted = (long long)((1 - k->beta) * (double)n);
    uint64_t kk = wanted < 1 ? 1 : (uint64_t)wanted;
    double *da = calloc(n ? n : 1, sizeof *da), *db = calloc(n ? n : 1, sizeof *db);
    ck_assert(da != NULL && db != NULL);
    for (uint64_t i = 0; i < n; i++) {
        da[i] = k->a.values[i] - k->c.values[i];
        db[i] = k->b.values[i] - k->c.values[i];
    }
    double ka = kth_magnitude(da, n, kk), kb = kth_magnitude(db, n, kk);
    for (uint64_t i = 0; i < n; i++) {
        double x = da[i] * (fabs(da[i]) >= ka), y = db[i] * (fabs(db[i]) >= kb);
        double sx = torch_sign(x), sy = torch_sign(y), s = torch_sign(sx + sy);
        double fx = sx == s, fy = sy == s;
        double mean = (fx * x + fy * y) / (fx + fy);
        expected[i] = k->c.values[i] + k->alpha * (isnan(mean) ? 0 : mean);
    }
    free(da);
    free(db);
}

static void top_k(const mm_case *k, double *expected)
{
    uint64_t n = k->count;
    double width = k->alpha, offset = k->beta;
    if (width < 0) {
        offset += width;
        width = -width;
    }
    width = width < 1 ? width : 1;
    if (offset < 0)
        offset = 1 + offset - (double)(long long)offset;
    offset = fmod(offset, 1.0);
    bool inverted = width + offset > 1;
    long long start = python_round(inverted ? (width + offset - 1) * (double)n : offset * (double)n);
    long long end = python_round(inverted ? offset * (double)n : (width + offset) * (double)n);
    double low = start <= 0 ? -1 : kth_magnitude(k->a.values, n, (uint64_t)start);
    double high = end <= 0 ? -1 : kth_magnitude(k->a.values, n, (uint64_t)end);
    size_t *order_a = stable_order(k->a.values, n), *order_b = stable_order(k->b.values, n);
    double *sorted = malloc(n * sizeof *sorted);
    size_t *rank = malloc(n * sizeof *rank);
    ck_assert(sorted != NULL && rank != NULL);
    for (uint64_t i = 0; i < n; i++) {
        sorted[i] = k->a.values[order_a[i]];
        rank[order_b[i]] = i;
    }
    for (uint64_t j = 0; j < n; j++) {
        double v = sorted[rank[j]];
        bool band = low < fabs(v) && fabs(v) <= high;
        double mask = band != inverted;
        expected[j] = (1 - mask) * k->a.values[j] + mask * v;
    }
    free(order_a);
    free(order_b);
    free(sorted);
    free(rank);
}

/* ---- distribution_crossover ---- */

typedef long double complex complex_l;

static void naive_dft(const long double *x, size_t n, complex_l *bins, size_t count)
{
    for (size_t k = 0; k < count; k++) {
        complex_l sum = 0;
        for (size_t j = 0; j < n; j++) {
            long double angle = -2 * pi_l * (long double)((j * k) % n) / (long double)n;
            sum += x[j] * (cosl(angle) + I * sinl(angle));
        }
        bins[k] = sum;
    }
}

/* textbook iterative radix-2 FFT; sign -1 forward, +1 inverse (unscaled) */
static void radix2_fft(complex_l *data, size_t n, int sign)
{
    for (size_t i = 1, j = 0; i < n; i++) {
        size_t bit = n >> 1;
        for (; j & bit; bit >>= 1)
            j ^= bit;
        j ^= bit;
        if (i < j) {
            complex_l t = data[i];
            data[i] = data[j];
            data[j] = t;
        }
    }
    for (size_t length = 2; length <= n; length <<= 1) {
        for (size_t k = 0; k < length / 2; k++) {
            long double angle = sign * 2 * pi_l * (long double)k / (long double)length;
            complex_l w = cosl(angle) + I * sinl(angle);
            for (size_t start = 0; start < n; start += length) {
                complex_l u = data[start + k], v = data[start + k + length / 2] * w;
                data[start + k] = u + v;
                data[start + k + length / 2] = u - v;
            }
        }
    }
}

static void real_spectrum(const long double *x, size_t n, complex_l *bins, size_t count)
{
    if (n < 4096 || (n & (n - 1)) != 0) {
        naive_dft(x, n, bins, count);
        return;
    }
    complex_l *data = malloc(n * sizeof *data);
    ck_assert(data != NULL);
    for (size_t j = 0; j < n; j++)
        data[j] = x[j];
    radix2_fft(data, n, -1);
    memcpy(bins, data, count * sizeof *bins);
    free(data);
}

/* irfft with n points: Hermitian extension, Nyquist (and DC) imaginary
 * parts ignored */
static void inverse_real(const complex_l *bins, size_t count, size_t n, long double *z)
{
    complex_l *full = malloc(n * sizeof *full);
    ck_assert(full != NULL);
    for (size_t k = 0; k < n; k++) {
        size_t source = k < count ? k : n - k;
        full[k] = k < count ? bins[source] : conjl(bins[source]);
    }
    full[0] = creall(full[0]);
    if (n % 2 == 0)
        full[n / 2] = creall(full[n / 2]);
    if (n >= 4096 && (n & (n - 1)) == 0) {
        radix2_fft(full, n, 1);
        for (size_t j = 0; j < n; j++)
            z[j] = creall(full[j]) / (long double)n;
    } else {
        for (size_t j = 0; j < n; j++) {
            complex_l sum = 0;
            for (size_t k = 0; k < n; k++) {
                long double angle = 2 * pi_l * (long double)((j * k) % n) / (long double)n;
                sum += full[k] * (cosl(angle) + I * sinl(angle));
            }
            z[j] = creall(sum) / (long double)n;
        }
    }
    free(full);
}

static void crossover(const mm_case *k, double *expected)
{
    if (k->ndim == 0) {
        expected[0] = k->alpha * k->a.values[0] + (1 - k->alpha) * k->b.values[0];
        return;
    }
    size_t n = (size_t)k->count, count = n / 2 + 1;
    size_t *order = stable_order(k->c.values, n);
    long double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y),
                *z = malloc(n * sizeof *z);
    complex_l *xs = malloc(count * sizeof *xs), *ys = malloc(count * sizeof *ys);
    ck_assert(x && y && z && xs && ys);
    for (size_t j = 0; j < n; j++) {
        x[j] = k->a.values[order[j]];
        y[j] = k->b.values[order[j]];
    }
    real_spectrum(x, n, xs, count);
    real_spectrum(y, n, ys, count);
    for (size_t i = 0; i < count; i++) {
        long double f = (long double)i / (long double)count;
        if (k->beta > 1e-10) {
            f = (f - k->alpha) / k->beta + 0.5L;
            f = f < 0 ? 0 : f > 1 ? 1 : f;
        } else {
            f = f >= k->alpha ? 1 : 0;
        }
        xs[i] = (1 - f) * xs[i] + f * ys[i];
    }
    inverse_real(xs, count, n, z);
    for (size_t j = 0; j < n; j++)
        expected[order[j]] = (double)z[j];
    free(order);
    free(x);
    free(y);
    free(z);
    free(xs);
    free(ys);
}

void mm_reference(const mm_case *k, const char *method, double *expected)
{
    if (strcmp(method, "tensor_sum") == 0)
        tensor_sum(k, expected);
    else if (strcmp(method, "euclidean_add_difference") == 0)
        euclidean(k, expected);
    else if (strcmp(method, "ties_add_difference") == 0)
        ties(k, expected);
    else if (strcmp(method, "top_k_tensor_sum") == 0)
        top_k(k, expected);
    else if (strcmp(method, "distribution_crossover") == 0)
        crossover(k, expected);
    else
        for (uint64_t i = 0; i < k->count; i++)
            expected[i] = elementwise(method, k->alpha, k->beta, k->a.values[i],
                                      k->b.values[i], k->c.values ? k->c.values[i] : 0.0);
}
