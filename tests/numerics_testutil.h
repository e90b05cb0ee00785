/* Small deterministic linear-algebra helpers for the numerics tests. */
#ifndef MS_NUMERICS_TESTUTIL_H
#define MS_NUMERICS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

typedef struct test_rng {
    uint64_t state;
} test_rng;

void test_rng_seed(test_rng *rng, uint64_t seed);
double test_rng_normal(test_rng *rng);

/* rows x cols, row-major, standard normal entries. */
void test_random_matrix(test_rng *rng, size_t rows, size_t cols, double *out);

/* rows x cols (rows >= cols), row-major, orthonormal columns. Returns 0 on success. */
int test_random_orthonormal(test_rng *rng, size_t rows, size_t cols, double *out);

/* c = a (m x k) @ b (k x n), all row-major. */
void test_matmul(const double *a, const double *b, size_t m, size_t k, size_t n, double *c);

/* Full SVD of a row-major m x n matrix: s (min(m,n)), u (m x m), vt (n x n),
 * row-major.  a is not modified.  Returns LAPACK's info. */
int test_full_svd(const double *a, size_t m, size_t n, double *s, double *u, double *vt);

/* Frobenius norm of a - b over count entries. */
double test_difference_norm(const double *a, const double *b, size_t count);
double test_norm(const double *a, size_t count);

#endif

/* An in-memory safetensors image, for tests that do not need a file. */
typedef struct test_tensor_spec {
    const char *name;
    const char *dtype;      /* "F32", "F16", "I64", ... */
    int ndim;
    int64_t shape[4];
    double fill;            /* every element (float dtypes); 0 bytes otherwise */
} test_tensor_spec;

/* Returns a malloc'ed image (free it) and its size; NULL on failure. */
unsigned char *test_build_image(const test_tensor_spec *specs, size_t count,
                                const char *metadata_json, uint64_t *size);
