#include "numerics_testutil.h"

#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/format/dtype.h"

void test_rng_seed(test_rng *rng, uint64_t seed)
{
    rng->state = seed * 0x9e3779b97f4a7c15ull + 1;
}

/* splitmix64 */
static uint64_t next_bits(test_rng *rng)
{
    uint64_t z = (rng->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform_open(test_rng *rng)
{
    return ((double)(next_bits(rng) >> 11) + 0.5) / 9007199254740992.0;
}

double test_rng_normal(test_rng *rng)
{
    double u1 = uniform_open(rng), u2 = uniform_open(rng);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void test_random_matrix(test_rng *rng, size_t rows, size_t cols, double *out)
{
    for (size_t i = 0; i < rows * cols; i++)
        out[i] = test_rng_normal(rng);
}

int test_random_orthonormal(test_rng *rng, size_t rows, size_t cols, double *out)
{
    double *tau = malloc(cols * sizeof(double));
    if (tau == NULL)
        return -1;
    test_random_matrix(rng, rows, cols, out);
    int info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (int)rows, (int)cols, out, (int)cols, tau);
    if (info == 0)
        info = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (int)rows, (int)cols, (int)cols, out,
                              (int)cols, tau);
    free(tau);
    return info;
}

void test_matmul(const double *a, const double *b, size_t m, size_t k, size_t n, double *c)
{
    memset(c, 0, m * n * sizeof(double));
    for (size_t i = 0; i < m; i++)
        for (size_t l = 0; l < k; l++) {
            double value = a[i * k + l];
            for (size_t j = 0; j < n; j++)
                c[i * n + j] += value * b[l * n + j];
        }
}

int test_full_svd(const double *a, size_t m, size_t n, double *s, double *u, double *vt)
{
    double *copy = malloc(m * n * sizeof(double));
    if (copy == NULL)
        return -1;
    memcpy(copy, a, m * n * sizeof(double));
    int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'A', (int)m, (int)n, copy, (int)n, s, u,
                              (int)m, vt, (int)n);
    free(copy);
    return info;
}

double test_difference_norm(const double *a, const double *b, size_t count)
{
    double sum = 0.0;
    for (size_t i = 0; i < count; i++)
        sum += (a[i] - b[i]) * (a[i] - b[i]);
    return sqrt(sum);
}

double test_norm(const double *a, size_t count)
{
    double sum = 0.0;
    for (size_t i = 0; i < count; i++)
        sum += a[i] * a[i];
    return sqrt(sum);
}


static uint64_t spec_elements(const test_tensor_spec *spec)
{
    uint64_t count = 1;
    for (int i = 0; i < spec->ndim; i++)
        count *= (uint64_t)spec->shape[i];
    return count;
}

unsigned char *test_build_image(const test_tensor_spec *specs, size_t count,
                                const char *metadata_json, uint64_t *size)
{
    char *header = NULL;
    size_t header_size = 0;
    FILE *stream = open_memstream(&header, &header_size);
    if (stream == NULL)
        return NULL;
    uint64_t offset = 0;
    fputc('{', stream);
    if (metadata_json != NULL)
        fprintf(stream, "\"__metadata__\":%s%s", metadata_json, count ? "," : "");
    for (size_t i = 0; i < count; i++) {
        ms_dtype dtype;
        if (!ms_dtype_from_name(specs[i].dtype, &dtype)) {
            fclose(stream);
            free(header);
            return NULL;
        }
        uint64_t bytes = spec_elements(&specs[i]) * ms_dtype_size(dtype);
        fprintf(stream, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "", specs[i].name,
                specs[i].dtype);
        for (int d = 0; d < specs[i].ndim; d++)
            fprintf(stream, "%s%lld", d ? "," : "", (long long)specs[i].shape[d]);
        fprintf(stream, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                (unsigned long long)(offset + bytes));
        offset += bytes;
    }
    fputc('}', stream);
    fclose(stream);
    while (header_size % 8 != 0) {
        char *grown = realloc(header, header_size + 2);
        if (grown == NULL) {
            free(header);
            return NULL;
        }
        header = grown;
        header[header_size++] = ' ';
        header[header_size] = '\0';
    }
    *size = 8 + header_size + offset;
    unsigned char *image = calloc(1, (size_t)*size);
    if (image == NULL) {
        free(header);
        return NULL;
    }
    for (int i = 0; i < 8; i++)
        image[i] = (unsigned char)((uint64_t)header_size >> (8 * i));
    memcpy(image + 8, header, header_size);
    free(header);
    unsigned char *data = image + 8 + header_size;
    for (size_t i = 0; i < count; i++) {
        ms_dtype dtype;
        ms_dtype_from_name(specs[i].dtype, &dtype);
        uint64_t elements = spec_elements(&specs[i]);
        if (ms_dtype_is_float(dtype))
            for (uint64_t e = 0; e < elements; e++)
                ms_dtype_from_double(dtype, &specs[i].fill, data + e * ms_dtype_size(dtype), 1);
        data += elements * ms_dtype_size(dtype);
    }
    return image;
}
