/* A safetensors writer for outputs whose every tensor is known up front.
 *
 * The merge knows each output tensor's name, dtype and shape before it
 * computes any of them, so the header is built first, the file is sized once
 * (after a free-space check against its exact size), and each tensor is
 * written straight to its final offset: no spool, no second copy.  Tensors
 * may be written by several threads in any order; the file hash is taken in
 * file order by ms_planned_writer_seal as tensors complete, which also starts
 * their write-back to disk, so the final fsync has little left to wait for.
 * Publication follows core/output_file.h (temporary beside the target,
 * fsync, rename). */
#ifndef MS_PLANNED_WRITER_H
#define MS_PLANNED_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/format/dtype.h"
#include "core/error.h"
#include "core/format/safetensors.h"

typedef struct ms_planned_tensor {
    const char *name;
    ms_dtype dtype;
    int ndim;
    int64_t shape[MS_MAX_DIMS];
} ms_planned_tensor;

typedef struct ms_planned_writer ms_planned_writer;

/* Orders the tensors as the reference library does (dtype descending, then
 * name), builds the header (metadata sorted, may be NULL), checks the free
 * space of the target's file system (disk_full with details needed_bytes
 * and free_bytes), creates the temporary, reserves its size and writes the
 * header.  Names must be unique (duplicate_key). */
ms_status ms_planned_writer_open(const char *final_path, const ms_planned_tensor *tensors,
                                 size_t count, const ms_metadata_entry *metadata,
                                 size_t metadata_count, ms_planned_writer **writer,
                                 ms_error *err);

/* Index into the caller's tensors of the tensor at file position. */
size_t ms_planned_writer_tensor_at(const ms_planned_writer *writer, size_t position);

uint64_t ms_planned_writer_data_bytes(const ms_planned_writer *writer);
uint64_t ms_planned_writer_tensor_bytes(const ms_planned_writer *writer, size_t position);

/* Writes length bytes of the tensor at position, starting offset bytes into
 * it.  Thread-safe; the range must lie inside the tensor. */
ms_status ms_planned_writer_write(ms_planned_writer *writer, size_t position, uint64_t offset,
                                  const void *bytes, uint64_t length, ms_error *err);

/* When set, sealing also hands the pages of tensors written back to disk
 * over to the page cache's free list (a window behind the newest), so the
 * output does not push its inputs out of memory.  Off by default. */
void ms_planned_writer_drop_written_pages(ms_planned_writer *writer, bool drop);

/* The tensor at position is complete: feeds it to the file hash and starts
 * its write-back.  Call for positions 0, 1, 2... in order, from one thread. */
ms_status ms_planned_writer_seal(ms_planned_writer *writer, size_t position, ms_error *err);

/* After every position is sealed: fsync, rename, fsync the directory.
 * Frees the writer, also on failure (then nothing is left behind). */
ms_status ms_planned_writer_finish(ms_planned_writer *writer, uint64_t *file_bytes,
                                   char file_sha256[65], ms_error *err);

/* Removes the temporary and frees the writer.  NULL is allowed. */
void ms_planned_writer_abort(ms_planned_writer *writer);

#endif
