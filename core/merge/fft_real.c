/* A real FFT, a filter on its bins and the inverse, in place in n + 2 doubles,
 * with almost no memory besides.
 *
 * FFTW's in-place r2c of a large size allocates a second n-double buffer
 * and tables of about twice the data, and takes a second or so to plan.
 * So, for even n, the n reals are read as N = n/2 complex numbers (the same
 * bytes) and transformed by a complex FFT of N points, and the real
 * spectrum is unpacked from it (and packed back) pair of bins by pair:
 * - N up to MS_MERGE_FFT_SPLIT_POINTS with no prime factor past 13: one FFTW
 *   transform of N points, in place (the data fits in the caches);
 * - otherwise N = N1 * N2 (N1 the largest divisor up to sqrt(N)), as a
 *   four-step: the N2 columns of N1 points are transformed a block of
 *   COLUMN_BLOCK columns at a time, copied into a small buffer and back (a
 *   column of a matrix with a power-of-two row length is read at a stride
 *   that maps every element to the same cache sets: FFTW's strided plan
 *   ran five times slower there); then each row is twiddled, transformed,
 *   filtered with the row holding its bins' partners (row k1 pairs with
 *   row N1 - k1), transformed back and twiddled back while both are in the
 *   caches, which saves the whole-spectrum filter pass and half the passes
 *   over memory of FFTW's single large transforms.  The bins stay in that
 *   order (bin k1 + N1 k2 at N2 k1 + k2), never transposed.
 * The column blocks are independent, and so are the row pairs: a task that
 * may use more than one core (task->threads, a tensor that runs alone)
 * shares each pass among as many lanes, a thread each, every lane with a
 * block and row twiddles of its own; a lane does exactly what one thread
 * would do with its columns and rows, so the result is the same bit for bit.
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

/* Columns transformed together: a block of N1 x 8 complex numbers stays in
 * the L2 cache for every N1 of a model (at most a few thousand). */
enum { COLUMN_BLOCK = 8 };

/* The FFTW plans of one N1 x N2 layout, [0] forward, [1] inverse: the
 * COLUMN_BLOCK contiguous N1-point transforms of a column block (none when
 * N1 is 1), and the N2-point transform of one row in place.  One row plan
 * serves every row: fftw_alignment_of counts modulo 16 bytes, one complex
 * number, so every row is aligned as the data is. */
typedef struct packed_plans {
    size_t n1, n2;
    int alignment;                     /* fftw_alignment_of the planned buffer */
    fftw_plan columns[2], rows[2];
} packed_plans;

/* What one thread of the split transform works in. */
typedef struct transform_lane {
    fftw_complex *block;               /* N1 x COLUMN_BLOCK */
    /* the twiddles of the two rows in the cache (re, im; N2 each), made
     * on the way forward and conjugated on the way back */
    double *row_roots[2];
} transform_lane;

enum { MAX_LANES = 8 };

typedef struct packed_transform {
    size_t n1, n2;
    fftw_complex *data;
    int lane_count;                    /* 1 unless split */
    transform_lane lanes[MAX_LANES];
    const packed_plans *plans;
    const struct unit_roots *twiddles;     /* period N: the four-step's */
    const struct unit_roots *real_roots;   /* period n: the real spectrum's */
    ms_merge_bin_filter *filter;
    const void *filter_context;
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
        if (plans->columns[inverse] != NULL)
            fftw_destroy_plan(plans->columns[inverse]);
        if (plans->rows[inverse] != NULL)
            fftw_destroy_plan(plans->rows[inverse]);
    }
    memset(plans, 0, sizeof *plans);
}

/* The column plans, made on a block of their own: every block FFTW
 * allocates is aligned alike, so they run on any other. */
static bool make_column_plans(packed_plans *plans)
{
    int n1 = (int)plans->n1;
    fftw_complex *block = fftw_alloc_complex(plans->n1 * COLUMN_BLOCK);
    if (block == NULL)
        return false;
    for (int inverse = 0; inverse < 2; inverse++)
        plans->columns[inverse] =
            fftw_plan_many_dft(1, &n1, COLUMN_BLOCK, block, NULL, 1, n1, block, NULL, 1, n1,
                               inverse ? FFTW_BACKWARD : FFTW_FORWARD, FFTW_ESTIMATE);
    fftw_free(block);
    return plans->columns[0] != NULL && plans->columns[1] != NULL;
}

/* Under planner_lock.  FFTW_ESTIMATE plans never touch the data. */
static bool make_plans(packed_plans *plans, size_t n1_points, size_t n2_points,
                       fftw_complex *data)
{
    int n2 = (int)n2_points;
    plans->n1 = n1_points;
    plans->n2 = n2_points;
    plans->alignment = fftw_alignment_of((double *)(void *)data);
    bool made = n1_points == 1 || make_column_plans(plans);
    for (int inverse = 0; inverse < 2; inverse++) {
        plans->rows[inverse] = fftw_plan_dft_1d(
            n2, data, data, inverse ? FFTW_BACKWARD : FFTW_FORWARD, FFTW_ESTIMATE);
        made = made && plans->rows[inverse] != NULL;
    }
    if (made)
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

static double *row_of(const packed_transform *plan, size_t k1)
{
    return (double *)(void *)(plan->data + plan->n2 * k1);
}

/* Row k1, position N2 k1 + j2, times exp(-2πi j2 k1 / N) (roots of period
 * N), those kept in saved.  Row 0 is multiplied by 1. */
static void twiddle_row_forward(const packed_transform *plan, size_t k1, double *saved)
{
    const unit_roots *roots = plan->twiddles;
    size_t count = plan->n1 * plan->n2;
    double *row = row_of(plan, k1);
    size_t exponent = k1;                     /* j2 k1 mod N, from j2 = 1 */
    for (size_t j2 = 1; k1 > 0 && j2 < plan->n2; j2++) {
        complex_pair w = unit_root(roots, exponent, -1.0);
        saved[2 * j2] = w.re;
        saved[2 * j2 + 1] = w.im;
        complex_pair value = complex_multiply((complex_pair){row[2 * j2], row[2 * j2 + 1]}, w);
        row[2 * j2] = value.re;
        row[2 * j2 + 1] = value.im;
        exponent += k1;
        if (exponent >= count)
            exponent -= count;
    }
}

/* The same back: times the conjugates of the saved roots (what unit_root
 * gives with sign +1, bit for bit). */
static void twiddle_row_back(const packed_transform *plan, size_t k1, const double *saved)
{
    double *row = row_of(plan, k1);
    for (size_t j2 = 1; k1 > 0 && j2 < plan->n2; j2++) {
        complex_pair w = {saved[2 * j2], -saved[2 * j2 + 1]};
        complex_pair value = complex_multiply((complex_pair){row[2 * j2], row[2 * j2 + 1]}, w);
        row[2 * j2] = value.re;
        row[2 * j2 + 1] = value.im;
    }
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

enum { FILTER_BLOCK = 1024 };

/* The pairs of one run of bins: bin first + stride i (i < count) at slots[i]
 * pairs with bin N - that (N itself for bin 0, the Nyquist bin) at
 * mirrors[i]; the factors asked of the filter a block at a time, the
 * partners' ascending, i.e. in reverse (the roots: plan->real_roots). */
typedef struct bin_run {
    size_t first, stride, count;
    double *slot;                /* of bin first; slot i is slot + 2 i */
    double *mirror;              /* of the partner of bin first */
    ptrdiff_t mirror_step;       /* doubles from one partner to the next */
} bin_run;

static void filter_run(const packed_transform *plan, const bin_run *run)
{
    const unit_roots *roots = plan->real_roots;
    ms_merge_bin_filter *filter = plan->filter;
    const void *context = plan->filter_context;
    size_t total = plan->n1 * plan->n2;
    double low[FILTER_BLOCK], high[FILTER_BLOCK];
    for (size_t done = 0; done < run->count; done += FILTER_BLOCK) {
        size_t length = run->count - done < FILTER_BLOCK ? run->count - done : FILTER_BLOCK;
        size_t first = run->first + run->stride * done;
        filter(context, first, run->stride, length, total + 1, low);
        filter(context, total - (first + run->stride * (length - 1)), run->stride, length,
               total + 1, high);
        for (size_t i = 0; i < length; i++) {
            double *slot = run->slot + 2 * (done + i);
            double *mirror = run->mirror + run->mirror_step * (ptrdiff_t)(done + i);
            filter_pair(slot, mirror, unit_root(roots, first + run->stride * i, -1.0), low[i],
                        high[length - 1 - i]);
        }
    }
}

/* Not split: bins in natural order, k with N - k for k <= N/2. */
static void filter_bins(const packed_transform *plan)
{
    size_t total = plan->n2;
    double *data = row_of(plan, 0);
    /* bin 0 pairs with itself (and the Nyquist bin) */
    bin_run zero = {0, 1, 1, data, data, 0};
    filter_run(plan, &zero);
    bin_run rest = {1, 1, total / 2, data + 2, data + 2 * (total - 1), -2};
    filter_run(plan, &rest);
}

/* Split: row k1 holds bins k1 + N1 k2 at column k2; their partners,
 * N - k1 - N1 k2 = (N1 - k1) + N1 (N2 - 1 - k2), are row N1 - k1 backwards
 * (for k1 > 0).  Row 0 pairs with itself (column k2 with N2 - k2), and so
 * does row N1/2 (column k2 with N2 - 1 - k2): half of each then. */
static void filter_row_pair(const packed_transform *plan, size_t k1)
{
    size_t n1 = plan->n1, n2 = plan->n2;
    double *row = row_of(plan, k1);
    if (k1 == 0) {
        bin_run zero = {0, n1, 1, row, row, 0};
        filter_run(plan, &zero);
        bin_run rest = {n1, n1, n2 / 2, row + 2, row + 2 * (n2 - 1), -2};
        filter_run(plan, &rest);
        return;
    }
    size_t partner = n1 - k1;
    size_t count = partner == k1 ? (n2 + 1) / 2 : n2;
    bin_run pairs = {k1, n1, count, row, row_of(plan, partner) + 2 * (n2 - 1), -2};
    filter_run(plan, &pairs);
}

/* The lane's share of the column blocks: a run of them, so that lanes
 * meet in a row at one place only. */
static void lane_columns(const packed_transform *plan, int lane, size_t *begin, size_t *end)
{
    size_t blocks = (plan->n2 + COLUMN_BLOCK - 1) / COLUMN_BLOCK;
    size_t lanes = (size_t)plan->lane_count;
    *begin = blocks * (size_t)lane / lanes * COLUMN_BLOCK;
    *end = blocks * ((size_t)lane + 1) / lanes * COLUMN_BLOCK;
    if (*end > plan->n2)
        *end = plan->n2;
}

/* Columns j2 .. j2 + COLUMN_BLOCK - 1 into the lane's block (one column
 * after the other), transformed, and back.  Past the last column the block
 * keeps the previous block's numbers, transformed and never copied back. */
static void transform_columns(const packed_transform *plan, int lane, int inverse)
{
    size_t n1 = plan->n1, n2 = plan->n2, begin, end;
    lane_columns(plan, lane, &begin, &end);
    complex_pair *data = (complex_pair *)(void *)plan->data;
    fftw_complex *lane_block = plan->lanes[lane].block;
    complex_pair *block = (complex_pair *)(void *)lane_block;
    for (size_t first = begin; first < end; first += COLUMN_BLOCK) {
        size_t width = n2 - first < COLUMN_BLOCK ? n2 - first : COLUMN_BLOCK;
        for (size_t j1 = 0; j1 < n1; j1++)
            for (size_t b = 0; b < width; b++)
                block[b * n1 + j1] = data[n2 * j1 + first + b];
        fftw_execute_dft(plan->plans->columns[inverse], lane_block, lane_block);
        for (size_t k1 = 0; k1 < n1; k1++)
            for (size_t b = 0; b < width; b++)
                data[n2 * k1 + first + b] = block[b * n1 + k1];
    }
}

/* slot: which of the lane's two rows in the cache (its saved twiddles) */
static void transform_row(const packed_transform *plan, int lane, size_t k1, int slot,
                          int inverse)
{
    fftw_complex *row = plan->data + plan->n2 * k1;
    double *saved = plan->lanes[lane].row_roots[slot];
    if (!inverse)
        twiddle_row_forward(plan, k1, saved);
    fftw_execute_dft(plan->plans->rows[inverse], row, row);
    if (inverse)
        twiddle_row_back(plan, k1, saved);
}

/* Row pairs k1 = lane, lane + lanes, ...: interleaved, so that every lane
 * gets rows of both halves of the spectrum (the filter's work differs). */
static void transform_rows(const packed_transform *plan, int lane)
{
    for (size_t k1 = (size_t)lane; k1 <= plan->n1 / 2; k1 += (size_t)plan->lane_count) {
        size_t partner = k1 == 0 ? 0 : plan->n1 - k1;
        for (int inverse = 0; inverse < 2; inverse++) {
            if (inverse)
                filter_row_pair(plan, k1);
            transform_row(plan, lane, k1, 0, inverse);
            if (partner != k1)
                transform_row(plan, lane, partner, 1, inverse);
        }
    }
}

typedef enum split_pass { COLUMNS_FORWARD, ROWS, COLUMNS_BACK } split_pass;

typedef struct lane_work {
    const packed_transform *plan;
    int lane;
    split_pass pass;
} lane_work;

static void *run_lane(void *argument)
{
    const lane_work *work = argument;
    if (work->pass == ROWS)
        transform_rows(work->plan, work->lane);
    else
        transform_columns(work->plan, work->lane, work->pass == COLUMNS_BACK);
    return NULL;
}

/* One pass, lane 0 on this thread, the others on threads of their own;
 * a lane whose thread cannot start runs here after (the same result,
 * later).  Each pass needs the whole of the one before. */
static void run_pass(const packed_transform *plan, split_pass pass)
{
    lane_work work[MAX_LANES];
    pthread_t threads[MAX_LANES];
    bool started[MAX_LANES] = {false};
    for (int lane = 0; lane < plan->lane_count; lane++)
        work[lane] = (lane_work){plan, lane, pass};
    for (int lane = 1; lane < plan->lane_count; lane++)
        started[lane] = pthread_create(&threads[lane], NULL, run_lane, &work[lane]) == 0;
    run_lane(&work[0]);
    for (int lane = 1; lane < plan->lane_count; lane++) {
        if (started[lane])
            pthread_join(threads[lane], NULL);
        else
            run_lane(&work[lane]);
    }
}

static void run_packed(packed_transform *plan)
{
    const packed_plans *plans = plan->plans;
    if (plan->n1 == 1) {
        fftw_execute_dft(plans->rows[0], plan->data, plan->data);
        filter_bins(plan);
        fftw_execute_dft(plans->rows[1], plan->data, plan->data);
        return;
    }
    run_pass(plan, COLUMNS_FORWARD);
    run_pass(plan, ROWS);
    run_pass(plan, COLUMNS_BACK);
}

/* Lanes for n points split into rows: at most the task's threads, and no
 * more than there are row pairs and column blocks to share. */
static int lanes_for(const ms_merge_task *task, size_t rows, size_t n2)
{
    size_t lanes = task->threads > 1 ? (size_t)task->threads : 1;
    if (lanes > MAX_LANES)
        lanes = MAX_LANES;
    if (lanes > rows / 2 + 1)
        lanes = rows / 2 + 1;
    if (lanes > (n2 + COLUMN_BLOCK - 1) / COLUMN_BLOCK)
        lanes = (n2 + COLUMN_BLOCK - 1) / COLUMN_BLOCK;
    return rows > 1 && lanes > 1 ? (int)lanes : 1;
}

/* The lane's block, zeroed (the columns past the last are transformed
 * too), and its row twiddles. */
static bool lane_init(transform_lane *lane, size_t n1, size_t n2)
{
    lane->block = fftw_alloc_complex(n1 * COLUMN_BLOCK);
    if (lane->block != NULL)
        memset(lane->block, 0, n1 * COLUMN_BLOCK * sizeof *lane->block);
    for (int slot = 0; slot < 2; slot++)
        lane->row_roots[slot] = malloc(2 * n2 * sizeof(double));
    return lane->block != NULL && lane->row_roots[0] != NULL && lane->row_roots[1] != NULL;
}

static void lane_free(transform_lane *lane)
{
    fftw_free(lane->block);
    free(lane->row_roots[0]);
    free(lane->row_roots[1]);
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
    plan.lane_count = lanes_for(task, rows, plan.n2);
    unit_roots twiddles = {0}, real_roots = {0};
    plan.twiddles = &twiddles;
    plan.real_roots = &real_roots;
    plan.filter = filter;
    plan.filter_context = context;
    packed_plans own = {0};
    ms_status status = MS_OK;
    bool split_ready = rows == 1 || unit_roots_init(&twiddles, n / 2);
    for (int lane = 0; rows > 1 && lane < plan.lane_count; lane++)
        split_ready = lane_init(&plan.lanes[lane], plan.n1, plan.n2) && split_ready;
    if (!split_ready || !unit_roots_init(&real_roots, n))
        status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, task->key, "out of memory");
    else if ((plan.plans = find_plans(&plan, &own)) == NULL)
        status = ms_error_set(err, MS_ERR_INTERNAL, task->key,
                              "FFTW could not plan transforms of %zu by %zu points", plan.n1,
                              plan.n2);
    else
        run_packed(&plan);
    if (own.n1 != 0) {
        pthread_mutex_lock(&planner_lock);
        destroy_plans(&own);
        pthread_mutex_unlock(&planner_lock);
    }
    unit_roots_free(&twiddles);
    unit_roots_free(&real_roots);
    for (int lane = 0; lane < plan.lane_count; lane++)
        lane_free(&plan.lanes[lane]);
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
        filter(context, first, 1, length, count, factors);
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
 * packed or n/2 is a prime. */
static size_t packed_rows(uint64_t n)
{
    if (n % 2 != 0 || n < 4)
        return 0;
    size_t count = (size_t)(n / 2);
    if (count <= MS_MERGE_FFT_SPLIT_POINTS && smooth(count))
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
 * doubles; declare that for the sizes that go there.  The split takes a
 * block of columns and the twiddles of two rows per lane. */
uint64_t ms_merge_fft_extra_bytes(const ms_merge_task *task, uint64_t n)
{
    size_t rows = rows_for(n);
    if (rows == 0)
        return n * sizeof(double);
    if (rows == 1)
        return 0;
    size_t n2 = (size_t)(n / 2 / rows);
    uint64_t row_roots = 2 * n2 * sizeof(fftw_complex);
    uint64_t lane = (uint64_t)rows * COLUMN_BLOCK * sizeof(fftw_complex) + row_roots;
    return lane * (uint64_t)lanes_for(task, rows, n2);
}
