/* Plain references for the rotate tests (rotate_reference.c). */
#ifndef MS_TEST_ROTATE_REFERENCE_H
#define MS_TEST_ROTATE_REFERENCE_H

#include <stdbool.h>
#include <stddef.h>

double *rr_zeros(size_t count);                 /* calloc'ed, never NULL */
/* c = a b: m x k times k x n, row-major */
void rr_multiply(const double *a, const double *b, double *c, size_t m, size_t n, size_t k);
double rr_determinant(const double *matrix, size_t n);
double rr_largest_difference(const double *x, const double *y, size_t count);
/* sd-meh's rotation of a onto b (rows x d, centred) from a full SVD */
void rr_reference_rotation(size_t rows, size_t d, const double *a, const double *b,
                           bool proper, double *rotation);
/* the closest-to-identity optimal rotation, as a polar factor */
void rr_reference_canonical(size_t rows, size_t d, const double *a, const double *b,
                            double *rotation);
/* the principal rotation^alpha through zgeev */
void rr_reference_power(const double *rotation, size_t n, double alpha, double *power);

#endif
