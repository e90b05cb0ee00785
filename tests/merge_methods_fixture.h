/* Test fixture for the merge methods: operands in malloc'ed bytes of any
 * float dtype, a sink that records what it receives and checks order and
 * coverage, and plain reference implementations of every method. */
#ifndef MS_TEST_MERGE_METHODS_FIXTURE_H
#define MS_TEST_MERGE_METHODS_FIXTURE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/merge/method.h"

/* One input: its bytes, and exactly the doubles they hold. */
typedef struct mm_tensor {
    ms_dtype dtype;
    unsigned char *bytes;
    double *values;
} mm_tensor;

typedef struct mm_case {
    uint64_t count;
    int ndim;
    int64_t shape[4];
    mm_tensor a, b, c;              /* c.bytes NULL for two-model methods */
    double alpha, beta;
    atomic_int cancel;
    /* what the sink saw */
    double *out;
    uint64_t next;                  /* end of the last chunk received */
    size_t calls;
    size_t disorder;                /* chunks not contiguous, empty or past the end */
    size_t fail_at_call;            /* 0: never; n: the n-th write fails (io_error) */
    size_t cancel_at_call;          /* 0: never; n: the n-th write raises cancel */
    /* rotate: handed to the task (NULL: none) */
    struct ms_rotate_cache *rotate_cache;
    ms_merge_rotate_counts *rotate_counts;
} mm_case;

/* A 1-d case of count elements; dtype_c < 0: no c. */
void mm_case_init(mm_case *k, uint64_t count, ms_dtype dtype_a, ms_dtype dtype_b, int dtype_c);
void mm_case_free(mm_case *k);

/* Stores values (rounded to the tensor's dtype) and keeps what it holds. */
void mm_tensor_set(mm_tensor *t, const double *values, uint64_t count);

/* Fills a, b (and c) with random values in [-1, 1); every zero_every-th
 * element (0: none) is +0 or -0, and every repeat_every-th (0: none) repeats
 * the element before it, so sorts meet ties. */
void mm_case_random(mm_case *k, uint64_t seed, unsigned zero_every, unsigned repeat_every);

/* Runs the method through the table; on success also requires that the
 * chunks covered [0, count) in order. */
ms_status mm_run(mm_case *k, const char *method, ms_error *err);

/* Plain references: expected[count] from the case's exact input values. */
void mm_reference(const mm_case *k, const char *method, double *expected);

/* Largest |x| over a, b and c: the scale the tolerance is relative to. */
double mm_scale(const mm_case *k);

#endif
