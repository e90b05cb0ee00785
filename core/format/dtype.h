/* safetensors element types and their conversion to and from double.
 *
 * The enum follows the declaration order of the reference (Rust) safetensors
 * library's Dtype, because its writer orders tensors by that enum,
 * descending, then by name; keeping the same order keeps our data sections
 * byte-identical to the Python library's. */
#ifndef MS_DTYPE_H
#define MS_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ms_dtype {
    MS_DTYPE_BOOL,
    MS_DTYPE_U8,
    MS_DTYPE_I8,
    MS_DTYPE_F8_E5M2,
    MS_DTYPE_F8_E4M3,
    MS_DTYPE_I16,
    MS_DTYPE_U16,
    MS_DTYPE_F16,
    MS_DTYPE_BF16,
    MS_DTYPE_I32,
    MS_DTYPE_U32,
    MS_DTYPE_F32,
    MS_DTYPE_F64,
    MS_DTYPE_I64,
    MS_DTYPE_U64,
    MS_DTYPE_COUNT
} ms_dtype;

/* Bytes per element. */
size_t ms_dtype_size(ms_dtype dtype);

/* The safetensors spelling ("F16", "BF16", ...). */
const char *ms_dtype_name(ms_dtype dtype);

/* Parses a safetensors spelling; returns false for anything else. */
bool ms_dtype_from_name(const char *name, ms_dtype *dtype);

/* F16, BF16, F32, F64: the types we compute on.  Everything else is copied
 * byte for byte. */
bool ms_dtype_is_float(ms_dtype dtype);

/* Little-endian element conversion.  to_double is exact; from_double rounds
 * to nearest, ties to even, directly from double (no double rounding through
 * float).  NaN and Inf are kept. dtype must satisfy ms_dtype_is_float. */
void ms_dtype_to_double(ms_dtype dtype, const void *source, double *target, size_t count);
void ms_dtype_from_double(ms_dtype dtype, const double *source, void *target, size_t count);

/* Single-value helpers, exposed for tests. */
double ms_half_to_double(uint16_t bits);
uint16_t ms_half_from_double(double value);
double ms_bfloat16_to_double(uint16_t bits);
uint16_t ms_bfloat16_from_double(double value);
float ms_float_from_double(double value); /* IEEE conversion, RNE */

/* Index of the first NaN or Inf in values, or count when all are finite. */
size_t ms_first_non_finite(const double *values, size_t count);

#endif
