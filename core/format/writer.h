/* Writing safetensors files: streamed, atomic, in the reference order.
 *
 * Tensors may be added in any order, from several threads; each one is
 * appended to an anonymous spool file in the target directory, so memory
 * holds one tensor at a time.  ms_writer_finish then orders them as the
 * reference library does (dtype enum descending, then name), writes the
 * header (padded with spaces to a multiple of 8) and the data into a
 * temporary file beside the target, fsyncs it, renames it over the final
 * name and fsyncs the directory.  A crash leaves no file under the final
 * name; ms_writer_abort (or a failed finish) removes every temporary. */
#ifndef MS_WRITER_H
#define MS_WRITER_H

#include <stdint.h>

#include "dtype.h"
#include "core/error.h"

typedef struct ms_writer ms_writer;

typedef struct ms_writer_result {
    uint64_t file_bytes;
    char file_sha256[65];   /* of the whole file: the job's ETag */
    char data_sha256[65];   /* of the data section: sshs_model_hash */
} ms_writer_result;

ms_status ms_writer_open(const char *final_path, ms_writer **writer, ms_error *err);

/* Copies bytes as they are (any dtype).  byte_count must equal the element
 * count times the dtype size. Thread-safe. */
ms_status ms_writer_add_bytes(ms_writer *writer, const char *name, ms_dtype dtype,
                              int ndim, const int64_t *shape,
                              const void *bytes, uint64_t byte_count, ms_error *err);

/* Converts doubles to a float dtype (round to nearest even) and adds them.
 * Refuses NaN/Inf with nan_detected naming the key. Thread-safe. */
ms_status ms_writer_add_doubles(ms_writer *writer, const char *name, ms_dtype dtype,
                                int ndim, const int64_t *shape,
                                const double *values, ms_error *err);

/* Sets (or replaces) a __metadata__ entry. */
ms_status ms_writer_set_metadata(ms_writer *writer, const char *name,
                                 const char *value, ms_error *err);

/* When set, finish stores the hex sha256 of the data section under this
 * metadata name (kohya's "sshs_model_hash") before writing the header. */
ms_status ms_writer_set_data_hash_metadata(ms_writer *writer, const char *name,
                                           ms_error *err);

/* When set, finish stores under name kohya's legacy addnet hash
 * ("sshs_legacy_hash"): the first 8 hex digits of the sha256 of bytes
 * [1 MiB, 1 MiB + 64 KiB) of the file as Python's safetensors would write it
 * with only the metadata whose names start with prefix (neither hash entry
 * among them).  Past the end that window is short or empty, as a read past
 * the end of a BytesIO is.  Same data section as ours; only the header
 * differs, and it is built, never written. */
ms_status ms_writer_set_legacy_hash_metadata(ms_writer *writer, const char *name,
                                             const char *prefix, ms_error *err);

/* Publishes the file and frees the writer (also on failure). */
ms_status ms_writer_finish(ms_writer *writer, ms_writer_result *result, ms_error *err);

/* Removes every temporary and frees the writer.  NULL is allowed. */
void ms_writer_abort(ms_writer *writer);

#endif
