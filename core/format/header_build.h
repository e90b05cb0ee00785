/* The safetensors header as the reference library writes it: compact JSON,
 * "__metadata__" first (its names sorted), then the tensors in data order
 * with their data offsets, padded with spaces to a multiple of 8 and
 * prefixed by its 8-byte little-endian length. */
#ifndef MS_HEADER_BUILD_H
#define MS_HEADER_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "core/error.h"
#include "safetensors.h"

typedef struct ms_header_tensor {
    const char *name;
    ms_dtype dtype;
    int ndim;
    const int64_t *shape;
    uint64_t byte_count;
} ms_header_tensor;

/* tensors in data order; metadata sorted by name (may be NULL when
 * metadata_count is 0; no "__metadata__" entry is written then).  The
 * result is malloced: 8 + padded JSON bytes.  header_too_large past
 * MS_MAX_HEADER_BYTES, with the size in details. */
ms_status ms_header_build(const ms_header_tensor *tensors, size_t count,
                          const ms_metadata_entry *metadata, size_t metadata_count,
                          unsigned char **header, size_t *header_bytes, ms_error *err);

/* As ms_header_build, but "__metadata__" is written even when empty ({}),
 * as Python's safetensors save(tensors, metadata) does for a dict. */
ms_status ms_header_build_with_metadata_object(const ms_header_tensor *tensors, size_t count,
                                               const ms_metadata_entry *metadata,
                                               size_t metadata_count, unsigned char **header,
                                               size_t *header_bytes, ms_error *err);

#endif
