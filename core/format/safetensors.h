/* Reading safetensors files over mmap.
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON header, then
 * the data section.  Everything in the header is hostile until checked:
 * ms_safetensors_open validates the whole header before returning, so every
 * ms_tensor_info handed out is safe to use (its bytes lie inside the data
 * section, its shape matches its byte range, no overlaps, no holes). */
#ifndef MS_SAFETENSORS_H
#define MS_SAFETENSORS_H

#include <stdint.h>
#include <stddef.h>

#include "dtype.h"
#include "core/error.h"

enum {
    MS_MAX_DIMS = 8,
};
#define MS_MAX_HEADER_BYTES (100u * 1000u * 1000u)

typedef struct ms_tensor_info {
    char *name;
    ms_dtype dtype;
    int ndim;
    int64_t shape[MS_MAX_DIMS];
    uint64_t element_count;
    uint64_t offset;      /* in the data section */
    uint64_t byte_count;
} ms_tensor_info;

typedef struct ms_metadata_entry {
    char *name;
    char *value;
} ms_metadata_entry;

typedef struct ms_safetensors {
    int fd;
    unsigned char *map;          /* whole file, read-only */
    uint64_t file_size;
    uint64_t header_length;      /* N */
    const unsigned char *data;   /* map + 8 + N */
    uint64_t data_size;
    size_t tensor_count;
    ms_tensor_info *tensors;     /* sorted by name (strcmp) */
    size_t metadata_count;
    ms_metadata_entry *metadata; /* sorted by name */
} ms_safetensors;

/* Maps and validates a file.  On failure the struct is left closed and err
 * names the first problem found (its code says which). */
ms_status ms_safetensors_open(const char *path, ms_safetensors *file, ms_error *err);

/* Validates an in-memory image (used by open and by tests).  The bytes must
 * outlive the struct; close() does not free them when fd is -1. */
ms_status ms_safetensors_parse(const unsigned char *bytes, uint64_t size,
                               ms_safetensors *file, ms_error *err);

void ms_safetensors_close(ms_safetensors *file);

/* Binary search by name; NULL when absent. */
const ms_tensor_info *ms_safetensors_find(const ms_safetensors *file, const char *name);

/* Pointer to the tensor's bytes inside the map. */
const unsigned char *ms_safetensors_tensor_bytes(const ms_safetensors *file,
                                                 const ms_tensor_info *tensor);

/* Converts a float tensor to doubles (caller allocates element_count).
 * Refuses non-float dtypes (unsupported_dtype) and NaN/Inf (nan_detected,
 * with the key and the element index in details). */
ms_status ms_safetensors_read_doubles(const ms_safetensors *file,
                                      const ms_tensor_info *tensor,
                                      double *values, ms_error *err);

/* NaN/Inf in a float tensor (nan_detected, as above) or a file that shrank
 * (io_error); other dtypes pass.  Bounded memory: for tensors copied as they
 * are, which must be checked like every output tensor. */
ms_status ms_safetensors_check_finite(const ms_safetensors *file, const ms_tensor_info *tensor,
                                      ms_error *err);

/* Metadata value or NULL. */
const char *ms_safetensors_metadata_get(const ms_safetensors *file, const char *name);

#endif
