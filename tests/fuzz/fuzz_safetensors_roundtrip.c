/* Read, write, read: a file the reader accepts, written again by our writer
 * (every tensor copied as it is, every metadata entry), must read back with
 * the same tensors (name, dtype, shape, bytes) and the same metadata; and
 * writing that copy once more must give the same bytes (the reference order
 * and header are a function of the content).  The writer may refuse only a
 * tensor named "" (writer.h: names are non-empty), with invalid_parameter.
 * Files go to a private folder under $TMPDIR (tmpfs makes this fast). */
#include "fuzz.h"

#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/format/safetensors.h"
#include "core/format/writer.h"

static char folder[4096];
static char first_path[4200];
static char second_path[4200];

static void remove_folder(void)
{
    unlink(first_path);
    unlink(second_path);
    rmdir(folder);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *temp = getenv("TMPDIR");
    snprintf(folder, sizeof folder, "%s/mergesvd-fuzz-roundtrip-XXXXXX",
             temp != NULL && temp[0] != '\0' ? temp : "/tmp");
    if (mkdtemp(folder) == NULL) {
        perror("mkdtemp");
        abort();
    }
    snprintf(first_path, sizeof first_path, "%s/first.safetensors", folder);
    snprintf(second_path, sizeof second_path, "%s/second.safetensors", folder);
    atexit(remove_folder);
    return 0;
}

/* Writes every tensor and metadata entry of file to path.  false when the
 * writer refused a tensor it may refuse (then nothing is written). */
static bool write_copy(const ms_safetensors *file, const char *path, ms_writer_result *result)
{
    ms_writer *writer = NULL;
    ms_error err;
    MS_FUZZ_CHECK(ms_writer_open(path, &writer, &err) == MS_OK);
    for (size_t i = 0; i < file->tensor_count; i++) {
        const ms_tensor_info *tensor = &file->tensors[i];
        ms_status status = ms_writer_add_bytes(writer, tensor->name, tensor->dtype, tensor->ndim,
                                               tensor->shape,
                                               ms_safetensors_tensor_bytes(file, tensor),
                                               tensor->byte_count, &err);
        if (status != MS_OK) {
            MS_FUZZ_CHECK(tensor->name[0] == '\0' && status == MS_ERR_INVALID_PARAMETER);
            ms_fuzz_check_error(&err);
            ms_writer_abort(writer);
            return false;
        }
    }
    for (size_t i = 0; i < file->metadata_count; i++)
        MS_FUZZ_CHECK(ms_writer_set_metadata(writer, file->metadata[i].name,
                                             file->metadata[i].value, &err) == MS_OK);
    MS_FUZZ_CHECK(ms_writer_finish(writer, result, &err) == MS_OK);
    return true;
}

static void check_same_content(const ms_safetensors *original, const ms_safetensors *copy)
{
    MS_FUZZ_CHECK(copy->tensor_count == original->tensor_count);
    for (size_t i = 0; i < original->tensor_count; i++) {
        const ms_tensor_info *a = &original->tensors[i];
        const ms_tensor_info *b = ms_safetensors_find(copy, a->name);
        MS_FUZZ_CHECK(b != NULL);
        MS_FUZZ_CHECK(a->dtype == b->dtype && a->ndim == b->ndim);
        MS_FUZZ_CHECK(memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof a->shape[0]) == 0);
        MS_FUZZ_CHECK(a->byte_count == b->byte_count);
        MS_FUZZ_CHECK(a->byte_count == 0 ||
                      memcmp(ms_safetensors_tensor_bytes(original, a),
                             ms_safetensors_tensor_bytes(copy, b), (size_t)a->byte_count) == 0);
    }
    MS_FUZZ_CHECK(copy->metadata_count == original->metadata_count);
    for (size_t i = 0; i < original->metadata_count; i++) {
        const char *value = ms_safetensors_metadata_get(copy, original->metadata[i].name);
        MS_FUZZ_CHECK(value != NULL && strcmp(value, original->metadata[i].value) == 0);
    }
}

/* The whole file, to compare two writes byte for byte. */
static unsigned char *read_whole(const char *path, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat info;
    MS_FUZZ_CHECK(fd >= 0 && fstat(fd, &info) == 0);
    *size = (size_t)info.st_size;
    unsigned char *bytes = malloc(*size + 1);
    MS_FUZZ_CHECK(bytes != NULL);
    MS_FUZZ_CHECK(read(fd, bytes, *size) == (ssize_t)*size);
    close(fd);
    return bytes;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ms_safetensors original, copy;
    ms_error err;
    if (ms_safetensors_parse(data, size, &original, &err) != MS_OK)
        return 0;
    ms_writer_result first_result, second_result;
    if (!write_copy(&original, first_path, &first_result)) {
        ms_safetensors_close(&original);
        return 0;
    }
    ms_status reopened = ms_safetensors_open(first_path, &copy, &err);
    MS_FUZZ_CHECK(reopened == MS_OK);
    MS_FUZZ_CHECK(copy.file_size == first_result.file_bytes);
    check_same_content(&original, &copy);

    MS_FUZZ_CHECK(write_copy(&copy, second_path, &second_result));
    MS_FUZZ_CHECK(strcmp(first_result.file_sha256, second_result.file_sha256) == 0);
    size_t first_size, second_size;
    unsigned char *first = read_whole(first_path, &first_size);
    unsigned char *second = read_whole(second_path, &second_size);
    MS_FUZZ_CHECK(first_size == second_size && memcmp(first, second, first_size) == 0);
    free(first);
    free(second);
    ms_safetensors_close(&copy);
    ms_safetensors_close(&original);
    unlink(first_path);
    unlink(second_path);
    return 0;
}
