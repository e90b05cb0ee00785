#include "planned_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/format/header_build.h"
#include "core/format/output_file.h"
#include "core/format/writer_internal.h"

struct ms_planned_writer {
    ms_output_file output;
    size_t count;
    size_t *order;              /* position -> the caller's index */
    uint64_t *offsets;          /* position -> file offset of its first byte */
    uint64_t *byte_counts;      /* position -> bytes */
    uint64_t data_bytes;
    uint64_t file_bytes;        /* header and data */
    EVP_MD_CTX *file_hash;
    unsigned char *hash_buffer;
    size_t sealed;              /* positions fed to the hash so far */
    bool drop_written;          /* see ms_planned_writer_drop_written_pages */
    uint64_t dropped_until;     /* file offset: pages before it were dropped */
};

/* Pages are dropped this far behind the newest sealed tensor: their
 * write-back, started when they were sealed, is done or nearly so by then,
 * and waiting for it throttles the merge to the disk no more than the
 * kernel's dirty-page limit would. */
enum { DROP_LAG_BYTES = 64u << 20 };

/* qsort has no context argument; the sort runs under the open call only. */
static _Thread_local const ms_planned_tensor *sort_tensors;

static int compare_reference_order(const void *left, const void *right)
{
    const ms_planned_tensor *x = &sort_tensors[*(const size_t *)left];
    const ms_planned_tensor *y = &sort_tensors[*(const size_t *)right];
    if (x->dtype != y->dtype)
        return x->dtype > y->dtype ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int compare_names(const void *left, const void *right)
{
    return strcmp(sort_tensors[*(const size_t *)left].name,
                  sort_tensors[*(const size_t *)right].name);
}

static ms_status tensor_bytes(const ms_planned_tensor *tensor, uint64_t *bytes, ms_error *err)
{
    if (tensor->name == NULL || tensor->name[0] == '\0' || (int)tensor->dtype < 0 ||
        tensor->dtype >= MS_DTYPE_COUNT || tensor->ndim < 0 || tensor->ndim > MS_MAX_DIMS)
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, tensor->name,
                            "output tensor without a name, a dtype or a valid rank");
    uint64_t elements = 1;
    for (int i = 0; i < tensor->ndim; i++) {
        if (tensor->shape[i] < 0 ||
            __builtin_mul_overflow(elements, (uint64_t)tensor->shape[i], &elements))
            return ms_error_set(err, MS_ERR_INTEGER_OVERFLOW, tensor->name,
                                "tensor \"%s\": bad or overflowing shape", tensor->name);
    }
    if (__builtin_mul_overflow(elements, (uint64_t)ms_dtype_size(tensor->dtype), bytes) ||
        *bytes > (uint64_t)INT64_MAX)
        return ms_error_set(err, MS_ERR_INTEGER_OVERFLOW, tensor->name,
                            "tensor \"%s\": byte count overflows", tensor->name);
    return MS_OK;
}

/* File order, offsets, and the header text. */
static ms_status lay_out(ms_planned_writer *writer, const ms_planned_tensor *tensors,
                         const ms_metadata_entry *metadata, size_t metadata_count,
                         unsigned char **header, size_t *header_bytes, ms_error *err)
{
    size_t count = writer->count;
    ms_header_tensor *entries = malloc((count + 1) * sizeof *entries);
    if (entries == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    for (size_t i = 0; i < count; i++)
        writer->order[i] = i;
    sort_tensors = tensors;
    qsort(writer->order, count, sizeof *writer->order, compare_names);
    ms_status status = MS_OK;
    for (size_t i = 1; i < count && status == MS_OK; i++) {
        const char *name = tensors[writer->order[i]].name;
        if (strcmp(tensors[writer->order[i - 1]].name, name) == 0)
            status = ms_error_set(err, MS_ERR_DUPLICATE_KEY, name,
                                  "the output would hold tensor \"%s\" twice", name);
    }
    qsort(writer->order, count, sizeof *writer->order, compare_reference_order);
    sort_tensors = NULL;
    uint64_t data_bytes = 0;
    for (size_t position = 0; position < count && status == MS_OK; position++) {
        const ms_planned_tensor *tensor = &tensors[writer->order[position]];
        status = tensor_bytes(tensor, &writer->byte_counts[position], err);
        if (status == MS_OK &&
            __builtin_add_overflow(data_bytes, writer->byte_counts[position], &data_bytes))
            status = ms_error_set(err, MS_ERR_INTEGER_OVERFLOW, NULL, "output size overflows");
        entries[position] = (ms_header_tensor){tensor->name, tensor->dtype, tensor->ndim,
                                               tensor->shape, writer->byte_counts[position]};
    }
    if (status == MS_OK)
        status = ms_header_build(entries, count, metadata, metadata_count, header, header_bytes,
                                 err);
    uint64_t offset = *header_bytes;
    for (size_t position = 0; position < count && status == MS_OK; position++) {
        writer->offsets[position] = offset;
        offset += writer->byte_counts[position];
    }
    writer->data_bytes = data_bytes;
    free(entries);
    return status;
}

/* Refused at once, before minutes of work, when the output cannot fit. */
static ms_status check_space(ms_planned_writer *writer, uint64_t file_bytes, ms_error *err)
{
    uint64_t free_bytes = 0;
    ms_status status = ms_output_file_free_bytes(&writer->output, &free_bytes, err);
    if (status != MS_OK || free_bytes >= file_bytes)
        return status;
    ms_error_set(err, MS_ERR_DISK_FULL, NULL,
                 "the output needs %" PRIu64 " bytes but its file system (%s) has %" PRIu64
                 " free", file_bytes, writer->output.directory, free_bytes);
    ms_error_detail_add(err, "needed_bytes", "%" PRIu64, file_bytes);
    ms_error_detail_add(err, "free_bytes", "%" PRIu64, free_bytes);
    return MS_ERR_DISK_FULL;
}

/* Reserves the blocks now, so that a disk filled by someone else meanwhile
 * fails here and not after minutes; file systems without fallocate get the
 * size only. */
static ms_status reserve_size(ms_planned_writer *writer, uint64_t file_bytes, ms_error *err)
{
    int fd = writer->output.temp_fd;
    if (file_bytes == 0)
        return MS_OK;
    if (fallocate(fd, 0, 0, (off_t)file_bytes) == 0)
        return MS_OK;
    if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL)
        return ms_writer_io_error(err, errno, "reserve space for", "the output file");
    if (ftruncate(fd, (off_t)file_bytes) != 0)
        return ms_writer_io_error(err, errno, "size", "the output file");
    return MS_OK;
}

static ms_status start_file(ms_planned_writer *writer, const char *final_path,
                            const unsigned char *header, size_t header_bytes, ms_error *err)
{
    uint64_t file_bytes = header_bytes + writer->data_bytes;
    writer->file_bytes = file_bytes;
    ms_status status = ms_output_file_prepare(&writer->output, final_path, err);
    if (status == MS_OK)
        status = check_space(writer, file_bytes, err);
    if (status == MS_OK)
        status = ms_output_file_create_temp(&writer->output, err);
    if (status == MS_OK)
        status = reserve_size(writer, file_bytes, err);
    if (status == MS_OK)
        status = ms_writer_pwrite_all(writer->output.temp_fd, header, header_bytes, 0,
                                      "the output file", err);
    if (status == MS_OK && (EVP_DigestInit_ex(writer->file_hash, EVP_sha256(), NULL) != 1 ||
                            EVP_DigestUpdate(writer->file_hash, header, header_bytes) != 1))
        status = ms_error_set(err, MS_ERR_INTERNAL, NULL, "cannot start sha256");
    return status;
}

ms_status ms_planned_writer_open(const char *final_path, const ms_planned_tensor *tensors,
                                 size_t count, const ms_metadata_entry *metadata,
                                 size_t metadata_count, ms_planned_writer **out, ms_error *err)
{
    *out = NULL;
    unsigned char *header = NULL;
    size_t header_bytes = 0;
    ms_planned_writer *writer = calloc(1, sizeof *writer);
    if (writer == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    writer->output.temp_fd = -1;
    writer->output.directory_fd = -1;
    writer->count = count;
    writer->order = malloc((count + 1) * sizeof *writer->order);
    writer->offsets = malloc((count + 1) * sizeof *writer->offsets);
    writer->byte_counts = malloc((count + 1) * sizeof *writer->byte_counts);
    writer->hash_buffer = malloc(MS_WRITER_CHUNK_BYTES);
    writer->file_hash = EVP_MD_CTX_new();
    ms_status status = MS_OK;
    if (writer->order == NULL || writer->offsets == NULL || writer->byte_counts == NULL ||
        writer->hash_buffer == NULL || writer->file_hash == NULL)
        status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    if (status == MS_OK)
        status = lay_out(writer, tensors, metadata, metadata_count, &header, &header_bytes, err);
    if (status == MS_OK)
        status = start_file(writer, final_path, header, header_bytes, err);
    free(header);
    if (status != MS_OK)
        ms_planned_writer_abort(writer);
    else
        *out = writer;
    return status;
}

size_t ms_planned_writer_tensor_at(const ms_planned_writer *writer, size_t position)
{
    return writer->order[position];
}

uint64_t ms_planned_writer_data_bytes(const ms_planned_writer *writer)
{
    return writer->data_bytes;
}

uint64_t ms_planned_writer_tensor_bytes(const ms_planned_writer *writer, size_t position)
{
    return writer->byte_counts[position];
}

ms_status ms_planned_writer_write(ms_planned_writer *writer, size_t position, uint64_t offset,
                                  const void *bytes, uint64_t length, ms_error *err)
{
    if (position >= writer->count || offset > writer->byte_counts[position] ||
        length > writer->byte_counts[position] - offset)
        return ms_error_set(err, MS_ERR_INTERNAL, NULL,
                            "write outside output tensor %zu (offset %" PRIu64 ", %" PRIu64
                            " bytes)", position, offset, length);
    return ms_writer_pwrite_all(writer->output.temp_fd, bytes, length,
                                writer->offsets[position] + offset, "the output file", err);
}

static ms_status read_back(int fd, unsigned char *buffer, size_t length, uint64_t offset,
                           ms_error *err)
{
    size_t done = 0;
    while (done < length) {
        ssize_t got = pread(fd, buffer + done, length - done, (off_t)(offset + done));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return ms_writer_io_error(err, got < 0 ? errno : EIO, "read back", "the output file");
        done += (size_t)got;
    }
    return MS_OK;
}

/* Advice only: a failure leaves the pages cached, which costs memory, not
 * correctness (the final fsync still makes the file durable). */
static void drop_pages_behind(ms_planned_writer *writer, uint64_t sealing_begin)
{
    if (sealing_begin < writer->dropped_until + 2 * (uint64_t)DROP_LAG_BYTES)
        return;
    uint64_t end = sealing_begin - DROP_LAG_BYTES;
    off_t begin = (off_t)writer->dropped_until, length = (off_t)(end - writer->dropped_until);
    int fd = writer->output.temp_fd;
    if (sync_file_range(fd, begin, length,
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                            SYNC_FILE_RANGE_WAIT_AFTER) == 0)
        posix_fadvise(fd, begin, length, POSIX_FADV_DONTNEED);
    writer->dropped_until = end;
}

ms_status ms_planned_writer_seal(ms_planned_writer *writer, size_t position, ms_error *err)
{
    if (position != writer->sealed || position >= writer->count)
        return ms_error_set(err, MS_ERR_INTERNAL, NULL, "tensors sealed out of order");
    int fd = writer->output.temp_fd;
    uint64_t begin = writer->offsets[position];
    uint64_t length = writer->byte_counts[position];
    for (uint64_t done = 0; done < length;) {
        size_t chunk = length - done < MS_WRITER_CHUNK_BYTES ? (size_t)(length - done)
                                                             : MS_WRITER_CHUNK_BYTES;
        ms_status status = read_back(fd, writer->hash_buffer, chunk, begin + done, err);
        if (status != MS_OK)
            return status;
        if (EVP_DigestUpdate(writer->file_hash, writer->hash_buffer, chunk) != 1)
            return ms_error_set(err, MS_ERR_INTERNAL, NULL, "sha256 update failed");
        done += chunk;
    }
    /* Write-back starts now, while later tensors are computed; the final
     * fsync then waits for little.  Advice only: failure changes nothing. */
    if (length > 0)
        sync_file_range(fd, (off_t)begin, (off_t)length, SYNC_FILE_RANGE_WRITE);
    if (writer->drop_written)
        drop_pages_behind(writer, begin);
    writer->sealed++;
    return MS_OK;
}

void ms_planned_writer_drop_written_pages(ms_planned_writer *writer, bool drop)
{
    writer->drop_written = drop;
}

static void free_writer(ms_planned_writer *writer)
{
    ms_output_file_discard(&writer->output);
    EVP_MD_CTX_free(writer->file_hash);
    free(writer->hash_buffer);
    free(writer->order);
    free(writer->offsets);
    free(writer->byte_counts);
    free(writer);
}

ms_status ms_planned_writer_finish(ms_planned_writer *writer, uint64_t *file_bytes,
                                   char file_sha256[65], ms_error *err)
{
    ms_status status = MS_OK;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (writer->sealed != writer->count)
        status = ms_error_set(err, MS_ERR_INTERNAL, NULL,
                              "finish with %zu of %zu tensors sealed", writer->sealed,
                              writer->count);
    if (status == MS_OK && (EVP_DigestFinal_ex(writer->file_hash, digest, &length) != 1 ||
                            length != 32))
        status = ms_error_set(err, MS_ERR_INTERNAL, NULL, "sha256 finalisation failed");
    if (status == MS_OK) {
        for (unsigned int i = 0; i < length; i++)
            snprintf(file_sha256 + 2 * i, 3, "%02x", digest[i]);
        *file_bytes = writer->file_bytes;
        status = ms_output_file_publish(&writer->output, err);
    }
    free_writer(writer);
    return status;
}

void ms_planned_writer_abort(ms_planned_writer *writer)
{
    if (writer != NULL)
        free_writer(writer);
}
