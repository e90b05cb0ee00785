/* A real FFT, a filter on its bins and the inverse, in place in n + 2 doubles,
 * with almost no memory besides.
 *
 * FFTW's in-place r2c of a large size with an awkward factor (SDXL's token
 * embedding has n = 2^16 * 5 * 193) allocates a second n-double buffer per
 * plan and takes seconds to plan: twice the memory the whole merge may use.
 * So, for even n, the n reals are read as N = n/2 complex numbers (the same
 * bytes), transformed by a complex FFT of N = N1 * N2 done as N2 strided
 * FFTs of N1, a twiddle, then N1 contiguous FFTs of N2 (FFTW plans of
 * sqrt(N) points: small buffers, instant planning), and the bins are left
 * in that order (bin k1 + N1 k2 at N2 k1 + k2) rather than transposed in
 * place: the filter and the real/complex unpacking address bins through the
 * mapping, and the inverse runs the same steps backwards from that order.
 * Odd n, and N with no factor up to sqrt(N), go to FFTW directly (their
 * extra memory is declared, see ms_merge_fft_extra_bytes). */
#include "method_internal.h"

/* complex.h first: fftw_complex is then C99's double complex */
#include <complex.h>
#include <fftw3.h>
#include <math.h>
#include <pthread.h>

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

typedef struct four_step {
    size_t n1, n2;
    fftw_complex *data;
    fftw_plan strided[2], rows[2];     /* [0] forward, [1] inverse */
} four_step;

static bool plan_four_step(four_step *plan)
{
    int n1 = (int)plan->n1, n2 = (int)plan->n2;
    pthread_mutex_lock(&planner_lock);
    for (int inverse = 0; inverse < 2; inverse++) {
        int sign = inverse ? FFTW_BACKWARD : FFTW_FORWARD;
        plan->strided[inverse] = fftw_plan_many_dft(1, &n1, n2, plan->data, NULL, n2, 1,
                                                    plan->data, NULL, n2, 1, sign,
                                                    FFTW_ESTIMATE);
        plan->rows[inverse] = fftw_plan_many_dft(1, &n2, n1, plan->data, NULL, 1, n2,
                                                 plan->data, NULL, 1, n2, sign, FFTW_ESTIMATE);
    }
    pthread_mutex_unlock(&planner_lock);
    return plan->strided[0] && plan->strided[1] && plan->rows[0] && plan->rows[1];
}

/* position N2 k1 + j2 times exp(sign 2πi j2 k1 / N) */
static void twiddle(const four_step *plan, double sign)
{
    size_t count = plan->n1 * plan->n2;
    for (size_t k1 = 0; k1 < plan->n1; k1++) {
        for (size_t j2 = 0; j2 < plan->n2; j2++) {
            size_t exponent = (j2 * k1) % count;
            if (exponent == 0)
                continue;
            double angle = sign * two_pi * (double)exponent / (double)count;
            double complex w = cos(angle) + I * sin(angle);
            plan->data[plan->n2 * k1 + j2] *= w;
        }
    }
}

static size_t position_of(const four_step *plan, size_t bin)
{
    return plan->n2 * (bin % plan->n1) + bin / plan->n1;
}

/* The spectrum of the n reals from the complex one Z, filtered, and packed
 * back into the complex spectrum whose inverse is n times the filtered
 * reals: bins k and N - k together. */
static void filter_pair(const four_step *plan, size_t k, ms_merge_bin_filter *filter,
                        const void *context)
{
    size_t count = plan->n1 * plan->n2, mirror = (count - k) % count;
    size_t real_count = 2 * count, bins = count + 1;
    double complex *slot = &plan->data[position_of(plan, k)];
    double complex *mirror_slot = &plan->data[position_of(plan, mirror)];
    double complex a = *slot, b = *mirror_slot;
    size_t k_high = count - k;             /* the partner bin, N when k = 0 */
    double angle = -two_pi * (double)k / (double)real_count;
    double complex w = cos(angle) + I * sin(angle);                  /* e^{-2πik/n} */
    double complex w_high = -conj(w);                                /* e^{-2πi(N-k)/n} */
    double complex x = (a + conj(b)) / 2 + w * (a - conj(b)) / (2 * I);
    double complex x_high = (b + conj(a)) / 2 + w_high * (b - conj(a)) / (2 * I);
    double complex g = filter(context, k, bins) * x;
    double complex g_high = filter(context, k_high, bins) * x_high;
    *slot = (g + conj(g_high)) + I * conj(w) * (g - conj(g_high));
    if (mirror_slot != slot)
        *mirror_slot = (g_high + conj(g)) + I * conj(w_high) * (g_high - conj(g));
}

static void run_four_step(four_step *plan, ms_merge_bin_filter *filter, const void *context)
{
    size_t count = plan->n1 * plan->n2;
    fftw_execute(plan->strided[0]);
    twiddle(plan, -1);
    fftw_execute(plan->rows[0]);
    for (size_t k = 0; k <= count / 2; k++)
        filter_pair(plan, k, filter, context);
    fftw_execute(plan->rows[1]);
    twiddle(plan, 1);
    fftw_execute(plan->strided[1]);
}

static ms_status four_step_filter(const ms_merge_task *task, double *data, size_t n,
                                  ms_merge_bin_filter *filter, const void *context,
                                  ms_error *err)
{
    four_step plan = {0};
    plan.n1 = square_factor(n / 2);
    plan.n2 = n / 2 / plan.n1;
    plan.data = (fftw_complex *)(void *)data;
    ms_status status = MS_OK;
    if (!plan_four_step(&plan))
        status = ms_error_set(err, MS_ERR_INTERNAL, task->key,
                              "FFTW could not plan transforms of %zu by %zu points", plan.n1,
                              plan.n2);
    else
        run_four_step(&plan, filter, context);
    for (int i = 0; i < 2; i++) {
        destroy_plan(plan.strided[i]);
        destroy_plan(plan.rows[i]);
    }
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
    for (size_t i = 0; i < count; i++) {
        double f = filter(context, i, count);
        bins[i] *= f;
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

static bool uses_four_step(uint64_t n)
{
    return n % 2 == 0 && n >= 4 && square_factor((size_t)(n / 2)) > 1;
}

ms_status ms_merge_fft_filter(const ms_merge_task *task, double *data, size_t n,
                              ms_merge_bin_filter *filter, const void *context, ms_error *err)
{
    if (n > INT32_MAX)
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, task->key,
                            "%zu points are more than one FFT takes", n);
    if (uses_four_step(n))
        return four_step_filter(task, data, n, filter, context, err);
    return direct_filter(task, data, n, filter, context, err);
}

/* FFTW's direct r2c of a large size has been measured to take another n
 * doubles; declare that for the sizes that go there (odd n, n/2 prime). */
uint64_t ms_merge_fft_extra_bytes(uint64_t n)
{
    return uses_four_step(n) ? 0 : n * sizeof(double);
}
