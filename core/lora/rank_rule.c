/* The kohya rank rules (algorithms.md section 2, resize_lora.py's
 * index_sv_ratio / index_sv_cumulative / index_sv_fro / rank_resize).
 *
 * kohya applies them to all min(out, in) singular values of the full W; we
 * only compute the first few (the rest are exactly zero), so every index is
 * taken against the padded length L and a missing S[i] reads as 0. */
#include "resize.h"

#include <math.h>

/* kohya's MIN_SV: at or below it the module is treated as all zero. */
static const double zero_module_threshold = 1e-6;

static double value_at(const double *values, size_t count, size_t i)
{
    return i < count ? values[i] : 0.0;
}

/* Python's max(1, min(index, L - 1)), with L - 1 possibly 0. */
static long clamp_index(long index, long padded_length)
{
    long upper = padded_length - 1;
    if (index > upper)
        index = upper;
    if (index < 1)
        index = 1;
    return index;
}

static long count_above_ratio(const double *s, size_t count, double ratio)
{
    double threshold = s[0] / ratio;
    long above = 0;
    for (size_t i = 0; i < count; i++)
        if (s[i] > threshold) /* strictly greater, as torch.sum(S > min_sv) */
            above++;
    return above;
}

/* torch.searchsorted(cumsum(x) / sum(x), target), side left: the first index
 * whose cumulative fraction is >= target, or L when there is none.  The
 * total is the last cumulative sum itself, so the final fraction is exactly
 * 1 and a target of 1.0 always finds the last nonzero entry; boundaries that
 * are exact in double (S = {4, 2, 1, 1}) are hit exactly. */
static long search_cumulative(const double *s, size_t count, size_t padded_length,
                              bool squares, double target)
{
    double total = 0.0;
    for (size_t i = 0; i < count; i++)
        total += squares ? s[i] * s[i] : s[i];
    double running = 0.0;
    for (size_t i = 0; i < count; i++) {
        running += squares ? s[i] * s[i] : s[i];
        if (running / total >= target)
            return (long)i;
    }
    /* Not found (target above 1, or 0/0 for an all-zero module, which the
     * S[0] check overrides anyway): searchsorted returns the length. */
    return (long)padded_length;
}

static long dynamic_rank(const double *s, size_t count, size_t padded_length,
                         ms_dynamic_method method, double param)
{
    long length = (long)padded_length;
    switch (method) {
    case MS_DYNAMIC_SV_RATIO:
        return clamp_index(count_above_ratio(s, count, param), length) + 1;
    case MS_DYNAMIC_SV_CUMULATIVE:
        return clamp_index(search_cumulative(s, count, padded_length, false, param) + 1,
                           length) + 1;
    case MS_DYNAMIC_SV_FRO:
        return clamp_index(search_cumulative(s, count, padded_length, true, param * param) + 1,
                           length) + 1;
    default:
        return -1;
    }
}

/* For an all-zero module kohya reports 0/0 = NaN.  NaN has no JSON
 * spelling, and nothing was discarded, so we report 1.0: the retained share
 * of a zero matrix is all of it.  max_ratio is S[0]/S[0] = 1 by the same
 * reading. */
static void fill_report(const double *s, size_t count, int rank, ms_rank_choice *choice)
{
    double sum = 0.0, sum_kept = 0.0, squares = 0.0, squares_kept = 0.0;
    for (size_t i = 0; i < count; i++) {
        sum += fabs(s[i]);
        squares += s[i] * s[i];
        if (i < (size_t)rank) {
            sum_kept += fabs(s[i]);
            squares_kept += s[i] * s[i];
        }
    }
    choice->rank = rank;
    choice->sum_retained = sum > 0.0 ? sum_kept / sum : 1.0;
    choice->fro_retained = squares > 0.0 ? sqrt(squares_kept / squares) : 1.0;
    double first = value_at(s, count, 0);
    double last = value_at(s, count, (size_t)rank - 1);
    if (first == 0.0)
        choice->max_ratio = 1.0;
    else
        choice->max_ratio = first / last; /* +Inf past the nonzero spectrum */
}

void ms_rank_rule(const double *singular_values, size_t count, size_t padded_length,
                  ms_dynamic_method method, double param, int cap,
                  ms_rank_choice *choice)
{
    if (padded_length < count)
        count = padded_length; /* entries past min(out, in) cannot exist */
    if (padded_length == 0) {
        choice->rank = 0;
        choice->sum_retained = choice->fro_retained = choice->max_ratio = 1.0;
        return;
    }
    if (cap < 1)
        cap = 1;

    long rank = cap;
    if (method != MS_DYNAMIC_NONE && count > 0)
        rank = dynamic_rank(singular_values, count, padded_length, method, param);
    if (rank < 1)
        rank = cap;

    if (value_at(singular_values, count, 0) <= zero_module_threshold)
        rank = 1;
    else if (rank > cap)
        rank = cap;
    /* kohya would slice U[:, :rank] down to L columns but still write alpha
     * for the unclamped rank, changing the effective weight; we clamp. */
    if (rank > (long)padded_length)
        rank = (long)padded_length;

    fill_report(singular_values, count, (int)rank, choice);
}
