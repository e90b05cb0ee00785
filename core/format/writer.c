/* Writer, first half: opening, argument checks, and spooling tensors.
 *
 * An add reserves a byte range of the spool and an index slot under the
 * mutex, then writes (or converts and writes) outside it with pwrite, so
 * threads adding different tensors convert and write in parallel.  The
 * publishing half is in writer_finish.c. */
#include "writer_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

ms_status ms_writer_io_error(ms_error *err, int error_number, const char *action,
                             const char *what)
{
    return ms_output_file_io_error(err, error_number, action, what);
}

/* The bytes written come straight from a mapped input file when a tensor is
 * copied as it is: the kernel says EFAULT where the file has been cut short
 * since it was mapped (where a read of our own would get SIGBUS). */
static ms_status source_shrank(const char *what, ms_error *err)
{
    ms_error_set(err, MS_ERR_IO, NULL,
                 "cannot write %s: its source, a mapped input file, is shorter than when it "
                 "was opened (replaced or cut while in use?)", what);
    ms_error_detail_add(err, "reason", "file_shrank");
    return MS_ERR_IO;
}

ms_status ms_writer_pwrite_all(int fd, const void *bytes, uint64_t length, uint64_t offset,
                               const char *what, ms_error *err)
{
    const unsigned char *cursor = bytes;
    while (length > 0) {
        size_t request = length > (1u << 30) ? (1u << 30) : (size_t)length;
        ssize_t written = pwrite(fd, cursor, request, (off_t)offset);
        if (written < 0 && errno == EINTR)
            continue;
        if (written < 0 && errno == EFAULT)
            return source_shrank(what, err);
        if (written <= 0)
            return ms_writer_io_error(err, written < 0 ? errno : EIO, "write", what);
        cursor += written;
        offset += (uint64_t)written;
        length -= (uint64_t)written;
    }
    return MS_OK;
}

/* O_TMPFILE needs filesystem support; fall back to a named file unlinked at
 * once, so the spool never outlives the process either way. */
static ms_status open_spool(ms_writer *writer, ms_error *err)
{
    const ms_output_file *output = &writer->output;
    writer->spool_fd = openat(output->directory_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (writer->spool_fd >= 0)
        return MS_OK;
    size_t size = strlen(output->directory) + strlen(output->base_name) + 32;
    char *path = malloc(size);
    if (path == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    snprintf(path, size, "%s/.%s.spool-XXXXXX", output->directory, output->base_name);
    writer->spool_fd = mkostemp(path, O_CLOEXEC);
    ms_status status = MS_OK;
    if (writer->spool_fd < 0)
        status = ms_writer_io_error(err, errno, "create a spool file in", output->directory);
    else
        unlink(path);
    free(path);
    return status;
}

ms_status ms_writer_open(const char *final_path, ms_writer **out, ms_error *err)
{
    *out = NULL;
    ms_writer *writer = calloc(1, sizeof *writer);
    if (writer == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    writer->spool_fd = -1;
    pthread_mutex_init(&writer->lock, NULL);

    /* resolves links, refuses FIFOs, devices and directories (output_file.h) */
    ms_status status = ms_output_file_prepare(&writer->output, final_path, err);
    if (status == MS_OK)
        status = open_spool(writer, err);
    if (status != MS_OK)
        ms_writer_free(writer);
    else
        *out = writer;
    return status;
}

void ms_writer_free(ms_writer *writer)
{
    if (writer == NULL)
        return;
    if (writer->spool_fd >= 0)
        close(writer->spool_fd);
    ms_output_file_discard(&writer->output);
    for (size_t i = 0; i < writer->entry_count; i++)
        free(writer->entries[i].name);
    free(writer->entries);
    ms_writer_names_free(&writer->names);
    for (size_t i = 0; i < writer->metadata_count; i++) {
        free(writer->metadata[i].name);
        free(writer->metadata[i].value);
    }
    free(writer->metadata);
    free(writer->data_hash_name);
    free(writer->legacy_hash_name);
    free(writer->legacy_hash_prefix);
    pthread_mutex_destroy(&writer->lock);
    free(writer);
}

void ms_writer_abort(ms_writer *writer)
{
    ms_writer_free(writer); /* the spool is anonymous; no temp file exists before finish */
}

/* The name goes into JSON, so it must be valid UTF-8; jansson checks that. */
static bool valid_utf8(const char *text)
{
    json_t *string = json_string(text);
    json_decref(string);
    return string != NULL;
}

static ms_status check_tensor(const char *name, ms_dtype dtype, int ndim, const int64_t *shape,
                              uint64_t *byte_count, ms_error *err)
{
    if (name == NULL || name[0] == '\0' || strcmp(name, "__metadata__") == 0 || !valid_utf8(name))
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, name,
                            "a tensor name must be non-empty UTF-8 and not __metadata__");
    if ((int)dtype < 0 || dtype >= MS_DTYPE_COUNT)
        return ms_error_set(err, MS_ERR_UNSUPPORTED_DTYPE, name, "tensor \"%s\": unknown dtype %d",
                            name, (int)dtype);
    if (ndim < 0 || ndim > MS_MAX_DIMS || (ndim > 0 && shape == NULL)) {
        ms_error_set(err, MS_ERR_INVALID_PARAMETER, name, "tensor \"%s\": bad rank %d", name, ndim);
        ms_error_detail_add(err, "ndim", "%d", ndim);
        return MS_ERR_INVALID_PARAMETER;
    }
    uint64_t elements = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            ms_error_set(err, MS_ERR_INVALID_PARAMETER, name,
                         "tensor \"%s\": negative dimension %" PRId64, name, shape[i]);
            ms_error_detail_add(err, "dimension", "%d", i);
            return MS_ERR_INVALID_PARAMETER;
        }
        if (__builtin_mul_overflow(elements, (uint64_t)shape[i], &elements))
            return ms_error_set(err, MS_ERR_INTEGER_OVERFLOW, name,
                                "tensor \"%s\": element count overflows", name);
    }
    if (__builtin_mul_overflow(elements, (uint64_t)ms_dtype_size(dtype), byte_count) ||
        *byte_count > (uint64_t)INT64_MAX)
        return ms_error_set(err, MS_ERR_INTEGER_OVERFLOW, name,
                            "tensor \"%s\": byte count overflows", name);
    return MS_OK;
}

static const char *entry_name(const void *context, size_t index)
{
    return ((const ms_writer *)context)->entries[index].name;
}

static bool entry_live(const void *context, size_t index)
{
    return ((const ms_writer *)context)->entries[index].state != WRITER_ENTRY_FAILED;
}

/* Reserves a spool range and an index slot for a new tensor; *index is its
 * slot, stable across later reallocations of the index. */
static ms_status reserve(ms_writer *writer, const char *name, ms_dtype dtype, int ndim,
                         const int64_t *shape, uint64_t byte_count, size_t *index,
                         uint64_t *spool_offset, ms_error *err)
{
    ms_status status = MS_OK;
    char *copy = strdup(name);
    if (copy == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    pthread_mutex_lock(&writer->lock);
    if (ms_writer_names_contains(&writer->names, name, entry_name, entry_live, writer)) {
        status = ms_error_set(err, MS_ERR_DUPLICATE_KEY, name, "tensor \"%s\" was already added",
                              name);
        goto done;
    }
    uint64_t end;
    if (__builtin_add_overflow(writer->spool_size, byte_count, &end) || end > (uint64_t)INT64_MAX) {
        status = ms_error_set(err, MS_ERR_INTEGER_OVERFLOW, name, "spool size overflows");
        goto done;
    }
    if (writer->entry_count == writer->entry_capacity) {
        size_t capacity = writer->entry_capacity ? 2 * writer->entry_capacity : 64;
        writer_entry *grown = realloc(writer->entries, capacity * sizeof *grown);
        if (grown == NULL) {
            status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
            goto done;
        }
        writer->entries = grown;
        writer->entry_capacity = capacity;
    }
    writer_entry *entry = &writer->entries[writer->entry_count];
    memset(entry, 0, sizeof *entry);
    entry->name = copy;
    if (!ms_writer_names_insert(&writer->names, copy, writer->entry_count, entry_name, writer)) {
        status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
        goto done;
    }
    entry->dtype = dtype;
    entry->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        entry->shape[i] = shape[i];
    entry->spool_offset = writer->spool_size;
    entry->byte_count = byte_count;
    entry->state = WRITER_ENTRY_PENDING;
    *index = writer->entry_count++;
    *spool_offset = entry->spool_offset;
    writer->spool_size = end;
    copy = NULL;
done:
    pthread_mutex_unlock(&writer->lock);
    free(copy);
    return status;
}

static void settle(ms_writer *writer, size_t index, ms_status status)
{
    pthread_mutex_lock(&writer->lock);
    writer->entries[index].state = status == MS_OK ? WRITER_ENTRY_READY : WRITER_ENTRY_FAILED;
    pthread_mutex_unlock(&writer->lock);
}

ms_status ms_writer_add_bytes(ms_writer *writer, const char *name, ms_dtype dtype,
                              int ndim, const int64_t *shape,
                              const void *bytes, uint64_t byte_count, ms_error *err)
{
    if (writer == NULL)
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, name, "no writer");
    uint64_t expected;
    ms_status status = check_tensor(name, dtype, ndim, shape, &expected, err);
    if (status != MS_OK)
        return status;
    if (bytes == NULL && byte_count > 0)
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, name, "tensor \"%s\": no bytes", name);
    if (byte_count != expected) {
        ms_error_set(err, MS_ERR_SIZE_MISMATCH, name,
                     "tensor \"%s\": %" PRIu64 " bytes given, shape and dtype need %" PRIu64,
                     name, byte_count, expected);
        ms_error_detail_add(err, "expected_bytes", "%" PRIu64, expected);
        ms_error_detail_add(err, "actual_bytes", "%" PRIu64, byte_count);
        return MS_ERR_SIZE_MISMATCH;
    }
    size_t index;
    uint64_t offset;
    status = reserve(writer, name, dtype, ndim, shape, byte_count, &index, &offset, err);
    if (status != MS_OK)
        return status;
    status = ms_writer_pwrite_all(writer->spool_fd, bytes, byte_count, offset, "the spool", err);
    settle(writer, index, status);
    if (status != MS_OK && err != NULL)
        snprintf(err->key, sizeof err->key, "%s", name);
    return status;
}

/* Checks, converts and spools values in bounded chunks.  The NaN/Inf check
 * runs on small blocks right before their conversion, while they are in
 * cache; a refusal leaves an unused gap in the spool, never in the output. */
static ms_status spool_doubles(int spool_fd, uint64_t offset, const char *name, ms_dtype dtype,
                               const double *values, uint64_t count, ms_error *err)
{
    enum { CHUNK_BYTES = 1u << 20, CHECK_BLOCK = 8192 };
    const size_t element_size = ms_dtype_size(dtype);
    const uint64_t chunk_elements = CHUNK_BYTES / element_size;
    ms_status status = MS_OK;
    unsigned char *scratch = NULL;
    if (count > 0 && dtype != MS_DTYPE_F64) {
        scratch = malloc(count < chunk_elements ? count * element_size : CHUNK_BYTES);
        if (scratch == NULL)
            return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, name, "out of memory");
    }
    for (uint64_t start = 0; start < count && status == MS_OK; start += chunk_elements) {
        uint64_t chunk = count - start < chunk_elements ? count - start : chunk_elements;
        for (uint64_t block = 0; block < chunk; block += CHECK_BLOCK) {
            size_t block_count = chunk - block < CHECK_BLOCK ? (size_t)(chunk - block)
                                                             : CHECK_BLOCK;
            const double *source = values + start + block;
            size_t bad = ms_first_non_finite(source, block_count);
            if (bad < block_count) {
                uint64_t at = start + block + bad;
                ms_error_set(err, MS_ERR_NAN_DETECTED, name,
                             "tensor \"%s\" holds %g at element %" PRIu64, name, source[bad], at);
                ms_error_detail_add(err, "index", "%" PRIu64, at);
                ms_error_detail_add(err, "value", "%g", source[bad]);
                status = MS_ERR_NAN_DETECTED;
                goto done;
            }
            if (scratch != NULL)
                ms_dtype_from_double(dtype, source, scratch + block * element_size, block_count);
        }
        const void *bytes = scratch != NULL ? (const void *)scratch : (const void *)(values + start);
        status = ms_writer_pwrite_all(spool_fd, bytes, chunk * element_size,
                                      offset + start * element_size, "the spool", err);
    }
done:
    free(scratch);
    return status;
}

ms_status ms_writer_add_doubles(ms_writer *writer, const char *name, ms_dtype dtype,
                                int ndim, const int64_t *shape,
                                const double *values, ms_error *err)
{
    if (writer == NULL)
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, name, "no writer");
    uint64_t byte_count;
    ms_status status = check_tensor(name, dtype, ndim, shape, &byte_count, err);
    if (status != MS_OK)
        return status;
    if (!ms_dtype_is_float(dtype)) {
        ms_error_set(err, MS_ERR_UNSUPPORTED_DTYPE, name,
                     "tensor \"%s\": doubles can only be stored as F16, BF16, F32 or F64", name);
        ms_error_detail_add(err, "dtype", "%s", ms_dtype_name(dtype));
        return MS_ERR_UNSUPPORTED_DTYPE;
    }
    uint64_t count = byte_count / ms_dtype_size(dtype);
    if (values == NULL && count > 0)
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, name, "tensor \"%s\": no values", name);
    size_t index;
    uint64_t offset;
    status = reserve(writer, name, dtype, ndim, shape, byte_count, &index, &offset, err);
    if (status != MS_OK)
        return status;
    status = spool_doubles(writer->spool_fd, offset, name, dtype, values, count, err);
    settle(writer, index, status);
    if (status != MS_OK && err != NULL)
        snprintf(err->key, sizeof err->key, "%s", name);
    return status;
}

/* Where name is in the sorted metadata, or where it would go. */
static size_t metadata_position(const ms_writer *writer, const char *name, bool *found)
{
    size_t low = 0, high = writer->metadata_count;
    *found = false;
    if (high > 0 && strcmp(writer->metadata[high - 1].name, name) < 0)
        return high;   /* the common case: names arrive in order */
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        int order = strcmp(writer->metadata[middle].name, name);
        if (order == 0) {
            *found = true;
            return middle;
        }
        if (order < 0)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

static bool reserve_metadata(ms_writer *writer)
{
    if (writer->metadata_count < writer->metadata_capacity)
        return true;
    size_t capacity = writer->metadata_capacity ? 2 * writer->metadata_capacity : 16;
    ms_metadata_entry *grown = realloc(writer->metadata, capacity * sizeof *grown);
    if (grown == NULL)
        return false;
    writer->metadata = grown;
    writer->metadata_capacity = capacity;
    return true;
}

/* Replaces the value of an existing name or inserts a new pair in order. */
static ms_status put_metadata(ms_writer *writer, const char *name, const char *value,
                              ms_error *err)
{
    bool found;
    size_t position = metadata_position(writer, name, &found);
    char *value_copy = strdup(value);
    char *name_copy = found ? NULL : strdup(name);
    if (value_copy == NULL || (!found && (name_copy == NULL || !reserve_metadata(writer)))) {
        free(value_copy);
        free(name_copy);
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    }
    if (found) {
        free(writer->metadata[position].value);
        writer->metadata[position].value = value_copy;
        return MS_OK;
    }
    memmove(&writer->metadata[position + 1], &writer->metadata[position],
            (writer->metadata_count - position) * sizeof *writer->metadata);
    writer->metadata[position] = (ms_metadata_entry){.name = name_copy, .value = value_copy};
    writer->metadata_count++;
    return MS_OK;
}

ms_status ms_writer_set_metadata(ms_writer *writer, const char *name,
                                 const char *value, ms_error *err)
{
    if (writer == NULL || name == NULL || value == NULL || !valid_utf8(name) ||
        !valid_utf8(value))
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, name,
                            "metadata names and values must be UTF-8 strings");
    pthread_mutex_lock(&writer->lock);
    ms_status status = put_metadata(writer, name, value, err);
    pthread_mutex_unlock(&writer->lock);
    return status;
}

ms_status ms_writer_set_data_hash_metadata(ms_writer *writer, const char *name,
                                           ms_error *err)
{
    if (writer == NULL || name == NULL || !valid_utf8(name))
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, name,
                            "the data hash metadata name must be a UTF-8 string");
    char *copy = strdup(name);
    if (copy == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    pthread_mutex_lock(&writer->lock);
    free(writer->data_hash_name);
    writer->data_hash_name = copy;
    pthread_mutex_unlock(&writer->lock);
    return MS_OK;
}

ms_status ms_writer_set_legacy_hash_metadata(ms_writer *writer, const char *name,
                                             const char *prefix, ms_error *err)
{
    if (writer == NULL || name == NULL || prefix == NULL || !valid_utf8(name))
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, name,
                            "the legacy hash metadata name must be a UTF-8 string");
    char *name_copy = strdup(name);
    char *prefix_copy = strdup(prefix);
    if (name_copy == NULL || prefix_copy == NULL) {
        free(name_copy);
        free(prefix_copy);
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    }
    pthread_mutex_lock(&writer->lock);
    free(writer->legacy_hash_name);
    free(writer->legacy_hash_prefix);
    writer->legacy_hash_name = name_copy;
    writer->legacy_hash_prefix = prefix_copy;
    pthread_mutex_unlock(&writer->lock);
    return MS_OK;
}
