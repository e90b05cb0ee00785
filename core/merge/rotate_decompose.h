/* A key's decompositions, cancellable within 50 ms although a LAPACK call
 * is not (rotate_decompose.c). */
#ifndef MS_ROTATE_DECOMPOSE_H
#define MS_ROTATE_DECOMPOSE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "rotate_math.h"

typedef struct ms_rotate_decomposition ms_rotate_decomposition;

typedef struct ms_rotate_decomposed {
    ms_rotation rotation;            /* full road: the matrix only */
    ms_rotation_spectrum spectrum;   /* of rotation.matrix */
    double svd_seconds, eigen_seconds;
} ms_rotate_decomposed;

/* The full road: from a^T b (columns x columns, malloc'ed; taken over and
 * freed whatever happens).  cancel (may be NULL): cancelled within 50 ms. */
ms_status ms_rotate_decompose_covariance(size_t rows, size_t columns, double *covariance,
                                         bool proper, const atomic_int *cancel,
                                         ms_rotate_decomposed *result, ms_error *err);

/* The subspace road: from the centred inputs (rows x columns each,
 * malloc'ed; taken over and freed). */
ms_status ms_rotate_decompose_rows(size_t rows, size_t columns, double *a, double *b,
                                   bool proper, const atomic_int *cancel,
                                   ms_rotate_decomposed *result, ms_error *err);

void ms_rotate_decomposed_free(ms_rotate_decomposed *result);

#endif
