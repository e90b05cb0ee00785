/* A real FFT, a filter on its bins and the inverse, in place in n + 2 doubles,
 * with almost no memory besides.
 *
 * FFTW's in-place r2c of a large size allocates a second n-double buffer
 * and tables of about twice the data, and takes a second or so to plan.
 * So, for even n, the n reals are read as N = n/2 complex numbers (the same
 * bytes) and transformed by a complex FFT of N points, and the real
 * spectrum is unpacked from it (and packed back) pair of bins by pair:
 * - N with no prime factor past 13 (every size of a model's tensors but
 *   the token embeddings): one FFTW transform of N points, in place, whose
 *   plan is small (under a megabyte) and quick to make;
 * - otherwise (SDXL's token embedding has N = 2^15 * 5 * 193, where FFTW's
 *   plan held 150 MB and ran three times slower) N = N1 * N2 done as N2
 *   strided FFTs of N1, a twiddle, then N1 contiguous FFTs of N2 (FFTW plans
 *   of about sqrt(N) points), with the bins left in that order (bin
 *   k1 + N1 k2 at N2 k1 + k2) rather than transposed in place: the filter
 *   addresses bins through the mapping, and the inverse runs the same steps
 *   backwards from that order.
 * Plans are kept for the next tensor of the same size.  Odd n, and prime N,
 * go to FFTW's r2c directly (their extra memory is declared, see
 * ms_merge_fft_extra_bytes). */
#include "method_internal.h"

/* complex.h first: fftw_complex is then C99's double complex */
#include <complex.h>
#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* FFTW's planner is not thread-safe (fftw_execute is): two workers may plan
 * at once, so planning and destroying go through one lock. */
static pthread_mutex_t planner_lock = PTHREAD_MUTEX_INITIALIZER;

static const double two_pi = 6.283185307179586476925286766559;

static void destroy_plan(fftw_plan plan)
{
    if (plan == NULL)
        return;
    pthread_mutex_lock(&planner_lock);
    fftw_destroy_plan(plan);
    pthread_mutex_unlock(&planner_lock);
}

/* The largest divisor of count that is at most its square root. */
static size_t square_factor(size_t count)
{
    size_t best = 1;
    for (size_t d = 2; d * d <= count; d++)
        if (count % d == 0)
            best = d;
    return best;
}

/* The FFTW plans of one N1 x N2 layout, [0] forward, [1] inverse: the
 * strided N1-point transforms (none when N1 is 1) and the N2-point rows. */
typedef struct packed_plans {
    size_t n1, n2;
    int alignment;                     /* fftw_alignment_of the planned buffer */
    fftw_plan strided[2], rows[2];
} packed_plans;

typedef struct packed_transform {
    size_t n1, n2;
    fftw_complex *data;
    const packed_plans *plans;
} packed_transform;

/* Plans are kept for the process, by split and alignment, and run on each
 * tensor's buffer through the new-array interface (thread-safe): a model
 * has a few dozen tensor sizes, and planning one (codelets, twiddle tables)
 * took as long as transforming its millions of points.  They are small
 * (transforms of about sqrt(N) points); past PLAN_CACHE_SLOTS sizes a
 * tensor plans for itself and destroys its plans after. */
enum { PLAN_CACHE_SLOTS = 128 };
static packed_plans plan_cache[PLAN_CACHE_SLOTS];
static size_t plan_cache_count;

static void destroy_plans(packed_plans *plans)
{
    for (int inverse = 0; inverse < 2; inverse++) {
        if (plans->strided[inverse] != NULL)
            fftw_destroy_plan(plans->strided[inverse]);
        if (plans->rows[inverse] != NULL)
            fftw_destroy_plan(plans->rows[inverse]);
    }
    memset(plans, 0, sizeof *plans);
}

/* Under planner_lock. */
static bool make_plans(packed_plans *plans, size_t n1_points, size_t n2_points,
                       fftw_complex *data)
{
    int n1 = (int)n1_points, n2 = (int)n2_points;
    plans->n1 = n1_points;
    plans->n2 = n2_points;
    plans->alignment = fftw_alignment_of((double *)(void *)data);
    for (int inverse = 0; inverse < 2; inverse++) {
        int sign = inverse ? FFTW_BACKWARD : FFTW_FORWARD;
        if (n1 > 1)
            plans->strided[inverse] = fftw_plan_many_dft(1, &n1, n2, data, NULL, n2, 1, data,
                                                         NULL, n2, 1, sign, FFTW_ESTIMATE);
        plans->rows[inverse] = fftw_plan_many_dft(1, &n2, n1, data, NULL, 1, n2, data, NULL, 1,
                                                  n2, sign, FFTW_ESTIMATE);
    }
    bool strided_made = n1 == 1 || (plans->strided[0] && plans->strided[1]);
    if (strided_made && plans->rows[0] && plans->rows[1])
        return true;
    destroy_plans(plans);
    return false;
}

/* The cached plans for plan's split and buffer, else own ones made in
 * *own (the caller destroys them); NULL when FFTW cannot plan. */
static const packed_plans *find_plans(const packed_transform *plan, packed_plans *own)
{
    int alignment = fftw_alignment_of((double *)(void *)plan->data);
    const packed_plans *found = NULL;
    pthread_mutex_lock(&planner_lock);
    for (size_t i = 0; i < plan_cache_count && found == NULL; i++)
        if (plan_cache[i].n1 == plan->n1 && plan_cache[i].n2 == plan->n2 &&
            plan_cache[i].alignment == alignment)
            found = &plan_cache[i];
    if (found == NULL && plan_cache_count < PLAN_CACHE_SLOTS &&
        make_plans(&plan_cache[plan_cache_count], plan->n1, plan->n2, plan->data))
        found = &plan_cache[plan_cache_count++];
    if (found == NULL && make_plans(own, plan->n1, plan->n2, plan->data))
        found = own;
    pthread_mutex_unlock(&planner_lock);
    return found;
}

/* exp(2πi m / period) for any m < period from two tables of about
 * sqrt(period) entries, e^{i(a+b)} = e^{ia} e^{ib} (an ulp or two): a cos
 * and a sin per element cost more than the transforms themselves. */
typedef struct unit_roots {
    unsigned shift;
    size_t period;
    double *low;     /* exp(2πi j / period), j < 2^shift: re, im */
    double *high;    /* exp(2πi (h << shift) / period) */
} unit_roots;

static bool unit_roots_init(unit_roots *roots, size_t period)
{
    roots->shift = 0;
    while (((size_t)1 << (2 * roots->shift)) < period)
        roots->shift++;
    roots->period = period;
    size_t low_count = (size_t)1 << roots->shift, high_count = (period >> roots->shift) + 1;
    roots->low = malloc(2 * low_count * sizeof(double));
    roots->high = malloc(2 * high_count * sizeof(double));
    if (roots->low == NULL || roots->high == NULL)
        return false;
    for (size_t j = 0; j < low_count; j++) {
        double angle = two_pi * (double)j / (double)period;
        roots->low[2 * j] = cos(angle);
        roots->low[2 * j + 1] = sin(angle);
    }
    for (size_t h = 0; h < high_count; h++) {
        double angle = two_pi * (double)(h << roots->shift) / (double)period;
        roots->high[2 * h] = cos(angle);
        roots->high[2 * h + 1] = sin(angle);
    }
    return true;
}

static void unit_roots_free(unit_roots *roots)
{
    free(roots->low);
    free(roots->high);
}

typedef struct complex_pair {
    double re, im;
} complex_pair;

/* exp(sign 2πi m / period), sign +1 or -1 */
static inline complex_pair unit_root(const unit_roots *roots, size_t m, double sign)
{
    const double *a = roots->low + 2 * (m & (((size_t)1 << roots->shift) - 1));
    const double *b = roots->high + 2 * (m >> roots->shift);
    return (complex_pair){a[0] * b[0] - a[1] * b[1], sign * (a[0] * b[1] + a[1] * b[0])};
}

static inline complex_pair complex_multiply(complex_pair x, complex_pair y)
{
    return (complex_pair){x.re * y.re - x.im * y.im, x.re * y.im + x.im * y.re};
}

static inline complex_pair complex_conjugate(complex_pair x)
{
    return (complex_pair){x.re, -x.im};
}

/* position N2 k1 + j2 times exp(sign 2πi j2 k1 / N); roots of period N */
static void twiddle(const packed_transform *plan, const unit_roots *roots, double sign)
{
    size_t count = plan->n1 * plan->n2;
    double *data = (double *)(void *)plan->data;
    for (size_t k1 = 1; k1 < plan->n1; k1++) {
        double *row = data + 2 * plan->n2 * k1;
        size_t exponent = k1;                 /* j2 k1 mod N, from j2 = 1 */
        for (size_t j2 = 1; j2 < plan->n2; j2++) {
            complex_pair w = unit_root(roots, exponent, sign);
            complex_pair value = complex_multiply((complex_pair){row[2 * j2], row[2 * j2 + 1]}, w);
            row[2 * j2] = value.re;
            row[2 * j2 + 1] = value.im;
            exponent += k1;
            if (exponent >= count)
                exponent -= count;
        }
    }
}

static size_t position_of(const packed_transform *plan, size_t bin)
{
    return plan->n2 * (bin % plan->n1) + bin / plan->n1;
}

/* The spectrum of the n reals from the complex one Z, filtered, and packed
 * back into the complex spectrum whose inverse is n times the filtered
 * reals: bins k and N - k together.  With u = a + conj(b), v = a - conj(b)
 * (a at k, b at N - k) and w = e^{-2πik/n}: X_k = u/2 + w v/(2i) and
 * X_{N-k} = conj(u)/2 + conj(w) conj(v)/(2i); back, with G the filtered
 * bins (factors f and f_high), Z_k = G_k + conj(G_{N-k}) + i conj(w)
 * (G_k - conj(G_{N-k})). */
static void filter_pair(double *slot, double *mirror_slot, complex_pair w, double f,
                        double f_high)
{
    complex_pair a = {slot[0], slot[1]}, b = {mirror_slot[0], mirror_slot[1]};
    complex_pair u = {a.re + b.re, a.im - b.im}, v = {a.re - b.re, a.im + b.im};
    complex_pair half_u = {u.re / 2, u.im / 2}, v_over_2i = {v.im / 2, -v.re / 2};
    complex_pair x = complex_multiply(w, v_over_2i);
    x = (complex_pair){half_u.re + x.re, half_u.im + x.im};
    complex_pair x_high = complex_multiply(complex_conjugate(w), complex_conjugate(v_over_2i));
    x_high = (complex_pair){half_u.re - x_high.re, -half_u.im - x_high.im};
    complex_pair g = {f * x.re, f * x.im}, g_high = {f_high * x_high.re, f_high * x_high.im};
    complex_pair i_conj_w = {w.im, w.re};               /* i conj(w) */
    complex_pair sum = {g.re + g_high.re, g.im - g_high.im};
    complex_pair rotated = complex_multiply(i_conj_w, (complex_pair){g.re - g_high.re,
                                                                     g.im + g_high.im});
    slot[0] = sum.re + rotated.re;
    slot[1] = sum.im + rotated.im;
    if (mirror_slot == slot)
        return;
    /* the same with k and N - k swapped: w becomes -conj(w) */
    complex_pair i_conj_w_high = {w.im, -w.re};
    complex_pair sum_high = {g_high.re + g.re, g_high.im - g.im};
    complex_pair rotated_high = complex_multiply(
        i_conj_w_high, (complex_pair){g_high.re - g.re, g_high.im + g.im});
    mirror_slot[0] = sum_high.re + rotated_high.re;
    mirror_slot[1] = sum_high.im + rotated_high.im;
}

static double *slot_of(const packed_transform *plan, size_t bin)
{
    double *data = (double *)(void *)plan->data;
    /* not split: bins in natural order (and no division per bin) */
    return data + 2 * (plan->n1 == 1 ? bin : position_of(plan, bin));
}

enum { FILTER_BLOCK = 1024 };

/* Every pair k, N - k for k <= N/2, the factors asked of the filter a
 * block at a time (bins k ascending, their partners descending). roots:
 * period n. */
static void filter_bins(const packed_transform *plan, const unit_roots *roots,
                        ms_merge_bin_filter *filter, const void *context)
{
    size_t count = plan->n1 * plan->n2, last = count / 2;
    double low[FILTER_BLOCK], high[FILTER_BLOCK];
    for (size_t first = 0; first <= last; first += FILTER_BLOCK) {
        size_t length = last + 1 - first < FILTER_BLOCK ? last + 1 - first : FILTER_BLOCK;
        filter(context, first, length, count + 1, low);
        /* partner of k: N - k (N itself for k = 0, the Nyquist bin) */
        filter(context, count - first - (length - 1), length, count + 1, high);
        for (size_t i = 0; i < length; i++) {
            size_t k = first + i, mirror = k == 0 ? 0 : count - k;
            filter_pair(slot_of(plan, k), slot_of(plan, mirror), unit_root(roots, k, -1.0),
                        low[i], high[length - 1 - i]);
        }
    }
}

static void run_packed(packed_transform *plan, const unit_roots *twiddles,
                          const unit_roots *real_roots, ms_merge_bin_filter *filter,
                          const void *context)
{
    const packed_plans *plans = plan->plans;
    bool split = plan->n1 > 1;
    if (split) {
        fftw_execute_dft(plans->strided[0], plan->data, plan->data);
        twiddle(plan, twiddles, -1.0);
    }
    fftw_execute_dft(plans->rows[0], plan->data, plan->data);
    filter_bins(plan, real_roots, filter, context);
    fftw_execute_dft(plans->rows[1], plan->data, plan->data);
    if (split) {
        twiddle(plan, twiddles, 1.0);
        fftw_execute_dft(plans->strided[1], plan->data, plan->data);
    }
}

/* rows = N1, a divisor of n/2; 1: one transform of n/2 points */
static ms_status packed_filter(const ms_merge_task *task, double *data, size_t n,
                                  size_t rows, ms_merge_bin_filter *filter,
                                  const void *context, ms_error *err)
{
    packed_transform plan = {0};
    plan.n1 = rows;
    plan.n2 = n / 2 / plan.n1;
    plan.data = (fftw_complex *)(void *)data;
    unit_roots twiddles = {0}, real_roots = {0};
    packed_plans own = {0};
    ms_status status = MS_OK;
    if ((rows > 1 && !unit_roots_init(&twiddles, n / 2)) || !unit_roots_init(&real_roots, n))
        status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, task->key, "out of memory");
    else if ((plan.plans = find_plans(&plan, &own)) == NULL)
        status = ms_error_set(err, MS_ERR_INTERNAL, task->key,
                              "FFTW could not plan transforms of %zu by %zu points", plan.n1,
                              plan.n2);
    else
        run_packed(&plan, &twiddles, &real_roots, filter, context);
    if (own.n1 != 0) {
        pthread_mutex_lock(&planner_lock);
        destroy_plans(&own);
        pthread_mutex_unlock(&planner_lock);
    }
    unit_roots_free(&twiddles);
    unit_roots_free(&real_roots);
    return status;
}

/* FFTW's own r2c and c2r, in place */
static ms_status direct_filter(const ms_merge_task *task, double *data, size_t n,
                               ms_merge_bin_filter *filter, const void *context, ms_error *err)
{
    fftw_complex *bins = (fftw_complex *)(void *)data;
    pthread_mutex_lock(&planner_lock);
    fftw_plan forward = fftw_plan_dft_r2c_1d((int)n, data, bins, FFTW_ESTIMATE);
    pthread_mutex_unlock(&planner_lock);
    if (forward == NULL)
        return ms_error_set(err, MS_ERR_INTERNAL, task->key,
                            "FFTW could not plan a transform of %zu points", n);
    fftw_execute(forward);
    destroy_plan(forward);
    size_t count = n / 2 + 1;
    double factors[FILTER_BLOCK];
    for (size_t first = 0; first < count; first += FILTER_BLOCK) {
        size_t length = count - first < FILTER_BLOCK ? count - first : FILTER_BLOCK;
        filter(context, first, length, count, factors);
        for (size_t i = 0; i < length; i++)
            bins[first + i] *= factors[i];
    }
    pthread_mutex_lock(&planner_lock);
    fftw_plan inverse = fftw_plan_dft_c2r_1d((int)n, bins, data, FFTW_ESTIMATE);
    pthread_mutex_unlock(&planner_lock);
    if (inverse == NULL)
        return ms_error_set(err, MS_ERR_INTERNAL, task->key,
                            "FFTW could not plan a transform of %zu points", n);
    fftw_execute(inverse);
    destroy_plan(inverse);
    return MS_OK;
}

/* N with no prime factor past 13: FFTW's codelets cover it. */
static bool smooth(size_t count)
{
    static const size_t primes[] = {2, 3, 5, 7, 11, 13};
    for (size_t i = 0; i < sizeof primes / sizeof primes[0]; i++)
        while (count % primes[i] == 0)
            count /= primes[i];
    return count == 1;
}

/* N1 for n reals as n/2 complex points (1: not split), 0 when n cannot be
 * packed or n/2 is a prime past 13. */
static size_t packed_rows(uint64_t n)
{
    if (n % 2 != 0 || n < 4)
        return 0;
    size_t count = (size_t)(n / 2);
    if (smooth(count))
        return 1;
    size_t rows = square_factor(count);
    return rows > 1 ? rows : 0;
}

/* Up to MS_MERGE_FFT_DIRECT_POINTS FFTW's own r2c (quick to plan, small
 * tables at these sizes), 0 here.  Past it the packed transform's rows:
 * it keeps its plans for the next tensor and needs no second buffer, where
 * FFTW's r2c and c2r of a million points and more each held tables and
 * buffers of twice the data. */
static size_t rows_for(uint64_t n)
{
    return n > MS_MERGE_FFT_DIRECT_POINTS ? packed_rows(n) : 0;
}

static ms_status check_size(const ms_merge_task *task, size_t n, ms_error *err)
{
    if (n > INT32_MAX)
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, task->key,
                            "%zu points are more than one FFT takes", n);
    return MS_OK;
}

ms_status ms_merge_fft_filter(const ms_merge_task *task, double *data, size_t n,
                              ms_merge_bin_filter *filter, const void *context, ms_error *err)
{
    ms_status status = check_size(task, n, err);
    if (status != MS_OK)
        return status;
    size_t rows = rows_for(n);
    if (rows != 0)
        return packed_filter(task, data, n, rows, filter, context, err);
    return direct_filter(task, data, n, filter, context, err);
}

ms_status ms_merge_fft_filter_packed(const ms_merge_task *task, double *data, size_t n,
                                     size_t rows, ms_merge_bin_filter *filter,
                                     const void *context, ms_error *err)
{
    ms_status status = check_size(task, n, err);
    if (status == MS_OK && (n % 2 != 0 || n < 4 || rows == 0 || (n / 2) % rows != 0))
        status = ms_error_set(err, MS_ERR_INVALID_PARAMETER, task->key,
                              "%zu points cannot be packed into %zu rows", n, rows);
    if (status != MS_OK)
        return status;
    return packed_filter(task, data, n, rows, filter, context, err);
}

/* FFTW's direct r2c of a large size has been measured to take another n
 * doubles; declare that for the sizes that go there. */
uint64_t ms_merge_fft_extra_bytes(uint64_t n)
{
    return rows_for(n) != 0 ? 0 : n * sizeof(double);
}
