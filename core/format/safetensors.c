/* safetensors reader: maps the file, checks the framing (length prefix,
 * header bounds), hands the header to safetensors_header.c, and serves
 * lookups and float conversion from the map.  Nothing is read whole. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mapped_read.h"
#include "safetensors_header.h"

/* The 8-byte length prefix (little-endian on every host). */
static uint64_t little_endian_u64(const unsigned char *bytes)
{
    uint64_t value = 0;
    for (int i = 7; i >= 0; i--)
        value = (value << 8) | bytes[i];
    return value;
}

static void reset(ms_safetensors *file)
{
    memset(file, 0, sizeof *file);
    file->fd = -1;
}

ms_status ms_safetensors_parse(const unsigned char *bytes, uint64_t size,
                               ms_safetensors *file, ms_error *err)
{
    reset(file);
    if (bytes == NULL && size >= 8)
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL, "no bytes to parse");
    if (size < 8) {
        ms_error_set(err, MS_ERR_FILE_TOO_SMALL, NULL,
                     "file has %" PRIu64 " bytes, fewer than the 8-byte header length", size);
        ms_error_detail_add(err, "file_size", "%" PRIu64, size);
        return MS_ERR_FILE_TOO_SMALL;
    }
    uint64_t header_length = little_endian_u64(bytes);
    if (header_length > size - 8 || header_length > MS_MAX_HEADER_BYTES) {
        ms_error_set(err, MS_ERR_HEADER_TOO_LARGE, NULL,
                     "header length %" PRIu64 " exceeds the file (%" PRIu64
                     " bytes) or the %u-byte limit", header_length, size, MS_MAX_HEADER_BYTES);
        ms_error_detail_add(err, "header_length", "%" PRIu64, header_length);
        ms_error_detail_add(err, "file_size", "%" PRIu64, size);
        ms_error_detail_add(err, "limit", "%u", MS_MAX_HEADER_BYTES);
        return MS_ERR_HEADER_TOO_LARGE;
    }
    uint64_t data_size = size - 8 - header_length;
    ms_status status = ms_safetensors_header_parse((const char *)bytes + 8, (size_t)header_length,
                                                   data_size, file, err);
    if (status != MS_OK) {
        reset(file);
        return status;
    }
    file->map = (unsigned char *)bytes; /* read-only; close() knows not to free it */
    file->file_size = size;
    file->header_length = header_length;
    file->data = bytes + 8 + header_length;
    file->data_size = data_size;
    return MS_OK;
}

static ms_status open_error(ms_error *err, const char *path, int error_number)
{
    ms_status code = error_number == ENOENT || error_number == ENOTDIR ? MS_ERR_NOT_FOUND
                                                                       : MS_ERR_IO;
    ms_error_set(err, code, NULL, "cannot open %s: %s", path, strerror(error_number));
    ms_error_detail_add(err, "path", "%s", path);
    return code;
}

static ms_status shrunk_error(ms_error *err, const char *path)
{
    ms_error_set(err, MS_ERR_IO, NULL, "%s became shorter while it was opened", path);
    ms_error_detail_add(err, "path", "%s", path);
    ms_error_detail_add(err, "reason", "file_shrank");
    return MS_ERR_IO;
}

ms_status ms_safetensors_open(const char *path, ms_safetensors *file, ms_error *err)
{
    reset(file);
    if (path == NULL || path[0] == '\0')
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL, "empty path");
    /* O_NONBLOCK so a FIFO planted at the path cannot hang us before fstat. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return open_error(err, path, errno);
    struct stat info;
    if (fstat(fd, &info) != 0) {
        int saved = errno;
        close(fd);
        return open_error(err, path, saved);
    }
    if (!S_ISREG(info.st_mode)) {
        close(fd);
        ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL, "%s is %s, not a safetensors file",
                     path, S_ISDIR(info.st_mode) ? "a directory" : "not a regular file");
        ms_error_detail_add(err, "path", "%s", path);
        return MS_ERR_INVALID_PARAMETER;
    }
    uint64_t size = (uint64_t)info.st_size;
    if (size < 8) {
        close(fd);
        return ms_safetensors_parse(NULL, size, file, err); /* file_too_small */
    }
    void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        int saved = errno;
        close(fd);
        ms_status code = saved == ENOMEM ? MS_ERR_OUT_OF_MEMORY : MS_ERR_IO;
        ms_error_set(err, code, NULL, "cannot map %s: %s", path, strerror(saved));
        ms_error_detail_add(err, "path", "%s", path);
        return code;
    }
    /* Advice only: pages this mapping brings in from disk land in the page
     * cache as 2 MiB folios, and reading those is about 4x faster than 4 KiB
     * ones here (bench/bench_merge; every later merge of the same file gains) */
    (void)madvise(map, (size_t)size, MADV_HUGEPAGE);
    /* the header is read below: fault it in under the guard first (a file
     * cut short since fstat is refused, not a SIGBUS).  A length past the
     * file or the limit is refused by the parse without reading the header,
     * so only that much is touched: a claimed 8 GB header must not cost 8 GB. */
    uint64_t header_end = 8;
    if (ms_mapped_touch(map, 8)) {
        uint64_t header_length = little_endian_u64(map);
        if (header_length <= size - 8 && header_length <= MS_MAX_HEADER_BYTES)
            header_end = 8 + header_length;
    }
    ms_status status = ms_mapped_touch(map, (size_t)header_end)
                           ? ms_safetensors_parse(map, size, file, err)
                           : shrunk_error(err, path);
    if (status != MS_OK) {
        munmap(map, (size_t)size);
        close(fd);
        return status;
    }
    file->fd = fd;
    return MS_OK;
}

void ms_safetensors_close(ms_safetensors *file)
{
    if (file == NULL)
        return;
    ms_safetensors_header_free(file);
    if (file->fd >= 0) {
        if (file->map != NULL)
            munmap(file->map, (size_t)file->file_size);
        close(file->fd);
    }
    reset(file);
}

static int compare_key_to_tensor(const void *key, const void *element)
{
    return strcmp(key, ((const ms_tensor_info *)element)->name);
}

const ms_tensor_info *ms_safetensors_find(const ms_safetensors *file, const char *name)
{
    if (file == NULL || name == NULL || file->tensor_count == 0)
        return NULL;
    return bsearch(name, file->tensors, file->tensor_count, sizeof *file->tensors,
                   compare_key_to_tensor);
}

const unsigned char *ms_safetensors_tensor_bytes(const ms_safetensors *file,
                                                 const ms_tensor_info *tensor)
{
    return file->data + tensor->offset;
}

typedef struct conversion {
    ms_dtype dtype;
    const unsigned char *source;
    double *values;
    size_t count;
} conversion;

static void convert(void *context)
{
    const conversion *work = context;
    ms_dtype_to_double(work->dtype, work->source, work->values, work->count);
}

/* Converts elements [start, start + count) into values and refuses NaN/Inf
 * (index in the tensor) and a file that shrank under the map. */
static ms_status convert_chunk(const ms_safetensors *file, const ms_tensor_info *tensor,
                               uint64_t start, size_t count, double *values, ms_error *err)
{
    const size_t element_size = ms_dtype_size(tensor->dtype);
    conversion work = {tensor->dtype,
                       ms_safetensors_tensor_bytes(file, tensor) + start * element_size, values,
                       count};
    if (!ms_mapped_read(convert, &work)) {
        ms_error_set(err, MS_ERR_IO, tensor->name,
                     "the input file became shorter while tensor \"%s\" was read "
                     "(was it replaced or truncated?)", tensor->name);
        ms_error_detail_add(err, "reason", "file_shrank");
        return MS_ERR_IO;
    }
    size_t bad = ms_first_non_finite(values, count);
    if (bad < count) {
        uint64_t index = start + bad;
        ms_error_set(err, MS_ERR_NAN_DETECTED, tensor->name,
                     "tensor \"%s\" holds %g at element %" PRIu64, tensor->name, values[bad],
                     index);
        ms_error_detail_add(err, "index", "%" PRIu64, index);
        ms_error_detail_add(err, "value", "%g", values[bad]);
        return MS_ERR_NAN_DETECTED;
    }
    return MS_OK;
}

/* Cache-sized chunks, so the NaN scan reads warm data. */
enum { CONVERSION_CHUNK = 16384 };

ms_status ms_safetensors_read_doubles(const ms_safetensors *file,
                                      const ms_tensor_info *tensor,
                                      double *values, ms_error *err)
{
    if (!ms_dtype_is_float(tensor->dtype)) {
        ms_error_set(err, MS_ERR_UNSUPPORTED_DTYPE, tensor->name,
                     "tensor \"%s\" has dtype %s, not a float type", tensor->name,
                     ms_dtype_name(tensor->dtype));
        ms_error_detail_add(err, "dtype", "%s", ms_dtype_name(tensor->dtype));
        return MS_ERR_UNSUPPORTED_DTYPE;
    }
    for (uint64_t start = 0; start < tensor->element_count; start += CONVERSION_CHUNK) {
        uint64_t left = tensor->element_count - start;
        size_t count = left < CONVERSION_CHUNK ? (size_t)left : CONVERSION_CHUNK;
        ms_status status = convert_chunk(file, tensor, start, count, values + start, err);
        if (status != MS_OK)
            return status;
    }
    return MS_OK;
}

ms_status ms_safetensors_check_finite(const ms_safetensors *file, const ms_tensor_info *tensor,
                                      ms_error *err)
{
    if (!ms_dtype_is_float(tensor->dtype))
        return MS_OK;
    double *scratch = malloc(CONVERSION_CHUNK * sizeof *scratch);
    if (scratch == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, tensor->name, "out of memory");
    ms_status status = MS_OK;
    for (uint64_t start = 0; start < tensor->element_count && status == MS_OK;
         start += CONVERSION_CHUNK) {
        uint64_t left = tensor->element_count - start;
        size_t count = left < CONVERSION_CHUNK ? (size_t)left : CONVERSION_CHUNK;
        status = convert_chunk(file, tensor, start, count, scratch, err);
    }
    free(scratch);
    return status;
}

static int compare_key_to_metadata(const void *key, const void *element)
{
    return strcmp(key, ((const ms_metadata_entry *)element)->name);
}

const char *ms_safetensors_metadata_get(const ms_safetensors *file, const char *name)
{
    if (file == NULL || name == NULL || file->metadata_count == 0)
        return NULL;
    const ms_metadata_entry *entry = bsearch(name, file->metadata, file->metadata_count,
                                             sizeof *file->metadata, compare_key_to_metadata);
    return entry != NULL ? entry->value : NULL;
}
