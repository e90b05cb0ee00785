/* Neuron rotation, the numerics (algorithms.md section 4): the orthogonal
 * Procrustes rotation between two centred sets of neurons, and its real
 * fractional powers.  Matrices are row-major doubles; nothing here reads
 * files or knows about caches.
 *
 * A rotation may act only inside a subspace: R = I + P (S - I) P^T with P
 * (columns x dimension) orthonormal and S (dimension x dimension)
 * orthogonal.  When a layer has at most half as many neurons as inputs, P
 * spans both inputs' rows (2 rows columns) and everything outside is left
 * alone, which is the canonical choice there; the decompositions are then
 * rows-sized, from the QR triangle of the inputs.  Without P (more neurons),
 * R = S. */
#ifndef MS_ROTATE_MATH_H
#define MS_ROTATE_MATH_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

typedef struct ms_rotation {
    size_t columns;       /* d: the length of a neuron */
    size_t dimension;     /* k: where the rotation acts (d, or up to twice the rows) */
    double *basis;        /* P: d x k, NULL when k == d */
    double *matrix;       /* S: k x k, orthogonal */
    /* with P: T (k x k, upper triangular) of [a^T b^T] = P T, so that
     * a P = [T11^T 0] and b P = [T12^T T22^T] without a product */
    double *triangle;
} ms_rotation;

/* The rotation R with a R ~ b (a, b: rows x columns, centred) that the
 * Procrustes problem asks for: R = U V^T from the SVD a^T b = U diag(s) V^T.
 * Where the optimum is not unique (a^T b rank-deficient) the completion
 * closest to the identity; proper: det R = +1 (for fractional powers), the
 * sign found from an LU factorisation, never by dividing by a determinant.
 * degenerate_rotation when an SVD does not converge; out_of_memory. */
ms_status ms_rotation_solve(size_t rows, size_t columns, const double *a, const double *b,
                            bool proper, ms_rotation *rotation, ms_error *err);
void ms_rotation_free(ms_rotation *rotation);

/* The same rotation (k x k, no subspace) from the covariance a^T b of rows
 * neurons, which it destroys: for callers that accumulate it in blocks. */
ms_status ms_rotation_from_covariance(size_t rows, size_t k, double *covariance, bool proper,
                                      double *rotation, ms_error *err);

/* S = W (diag(cos theta) + diag(sin theta) H) W^T: the real spectral form of
 * an orthogonal S, from the symmetric eigendecomposition of (S + S^T)/2.
 * generator row j is (W^T K)_j with K = (S - S^T)/2, which is sin(theta_j)
 * times row j of H W^T; for the angle-pi space (no preferred plane) the rows
 * pair a canonical basis of that space explicitly and are unit rows of
 * H W^T.  Then S^alpha = W (diag(cos(alpha theta)) W^T + diag(f) G) with f
 * from ms_rotation_power_factors. */
typedef struct ms_rotation_spectrum {
    size_t dimension;
    double *eigenvectors;     /* W: k x k, eigenvector j in column j */
    double *angles;           /* theta_j in [0, pi] */
    double *generator;        /* G: k x k */
    unsigned char *half_turn; /* 1 where theta_j is pi and row j of G is unit */
} ms_rotation_spectrum;

ms_status ms_rotation_spectrum_compute(const double *matrix, size_t dimension,
                                       ms_rotation_spectrum *spectrum, ms_error *err);
void ms_rotation_spectrum_free(ms_rotation_spectrum *spectrum);

/* cosines[j] = cos(alpha theta_j), factors[j] the weight of G's row j:
 * sin(alpha theta)/sin(theta) (alpha at theta 0), sin(alpha pi) on the
 * half-turn rows. */
void ms_rotation_power_factors(const ms_rotation_spectrum *spectrum, double alpha,
                               double *cosines, double *factors);

/* S^alpha as a k x k matrix (tests and small keys). */
ms_status ms_rotation_power(const ms_rotation_spectrum *spectrum, double alpha, double *power,
                            ms_error *err);

/* c = op(a) op(b) (op: transposed or not) for row-major matrices, with
 * their leading dimensions: the one dgemm call both files make. */
void ms_rotate_product(bool transpose_a, bool transpose_b, size_t m, size_t n, size_t k,
                       const double *a, size_t lda, const double *b, size_t ldb, double *c,
                       size_t ldc);

/* The sign of det(matrix) for a square matrix from its LU factorisation:
 * +1, -1, or 0 when singular.  out_of_memory on allocation failure. */
ms_status ms_rotation_determinant_sign(const double *matrix, size_t dimension, int *sign,
                                       ms_error *err);

#endif
