/* writer: round trip through the reader, the reference order, padding,
 * hashes, refusals that leave nothing behind, and concurrent adds. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/format/output_file.h"
#include "core/format/safetensors.h"
#include "core/format/writer.h"
#include "core/format/writer_internal.h"
#include "check_support.h"

/* base_dir is made and removed by the parent process (unchecked fixture),
 * so even a failing or crashing test leaves nothing behind; each test gets
 * its own empty temp_dir inside it. */
static char *base_dir;
static char temp_dir[4200];
static char final_path[4300];

static void make_base_dir(void)
{
    base_dir = ms_test_make_temp_dir("test_writer");
    ck_assert_ptr_nonnull(base_dir);
}

static void remove_base_dir(void)
{
    ms_test_remove_tree(base_dir);
    free(base_dir);
    base_dir = NULL;
}

static void setup(void)
{
    snprintf(temp_dir, sizeof temp_dir, "%s/case-XXXXXX", base_dir);
    ck_assert_ptr_nonnull(mkdtemp(temp_dir));
    snprintf(final_path, sizeof final_path, "%s/out.safetensors", temp_dir);
}

static int directory_entry_count(void)
{
    DIR *dir = opendir(temp_dir);
    ck_assert_ptr_nonnull(dir);
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL)
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
            count++;
    closedir(dir);
    return count;
}

static unsigned char *read_whole(const char *path, size_t *size)
{
    FILE *stream = fopen(path, "rb");
    ck_assert_ptr_nonnull(stream);
    fseek(stream, 0, SEEK_END);
    *size = (size_t)ftell(stream);
    fseek(stream, 0, SEEK_SET);
    unsigned char *bytes = malloc(*size + 1);
    ck_assert_uint_eq(fread(bytes, 1, *size, stream), *size);
    fclose(stream);
    return bytes;
}

static uint64_t header_length_of(const unsigned char *bytes)
{
    uint64_t length = 0;
    for (int i = 7; i >= 0; i--)
        length = (length << 8) | bytes[i];
    return length;
}

static void sha256_hex(const void *bytes, size_t size, char hex[65])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    ck_assert_int_eq(EVP_Digest(bytes, size, digest, &length, EVP_sha256(), NULL), 1);
    for (unsigned int i = 0; i < length; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

/* Reads the published file back and checks the writer's hashes and size
 * against it; returns the file's bytes and the data section's sha256. */
static unsigned char *check_result_hashes(const ms_writer_result *result, char data_hex[65])
{
    size_t size;
    unsigned char *bytes = read_whole(final_path, &size);
    uint64_t length = header_length_of(bytes);
    char file_hex[65];
    sha256_hex(bytes + 8 + length, size - 8 - length, data_hex);
    sha256_hex(bytes, size, file_hex);
    ck_assert_str_eq(result->data_sha256, data_hex);
    ck_assert_str_eq(result->file_sha256, file_hex);
    ck_assert_uint_eq(result->file_bytes, size);
    return bytes;
}

START_TEST(test_round_trip)
{
    ms_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_writer_open(final_path, &writer, &err), MS_OK);

    const int64_t shape_2x3[] = {2, 3}, shape_4[] = {4}, shape_empty[] = {5, 0};
    const unsigned char raw[6] = {1, 2, 3, 250, 251, 252};
    const int64_t ints[4] = {-1, 0, 1, INT64_MAX};
    const double values[6] = {1.0, -2.5, 1.0 / 3.0, 1e-6, 65504.0, -0.0};
    const double scalar = 3.25;
    ck_assert_int_eq(ms_writer_add_bytes(writer, "raw", MS_DTYPE_U8, 2, shape_2x3, raw, 6, &err),
                     MS_OK);
    ck_assert_int_eq(ms_writer_add_bytes(writer, "ints", MS_DTYPE_I64, 1, shape_4, ints, 32, &err),
                     MS_OK);
    ck_assert_int_eq(ms_writer_add_doubles(writer, "half", MS_DTYPE_F16, 2, shape_2x3, values,
                                           &err), MS_OK);
    ck_assert_int_eq(ms_writer_add_doubles(writer, "bf", MS_DTYPE_BF16, 2, shape_2x3, values,
                                           &err), MS_OK);
    ck_assert_int_eq(ms_writer_add_doubles(writer, "single", MS_DTYPE_F32, 2, shape_2x3, values,
                                           &err), MS_OK);
    ck_assert_int_eq(ms_writer_add_doubles(writer, "double", MS_DTYPE_F64, 2, shape_2x3, values,
                                           &err), MS_OK);
    ck_assert_int_eq(ms_writer_add_doubles(writer, "scalar", MS_DTYPE_F32, 0, NULL, &scalar, &err),
                     MS_OK);
    ck_assert_int_eq(ms_writer_add_doubles(writer, "empty", MS_DTYPE_F16, 2, shape_empty, NULL,
                                           &err), MS_OK);
    ck_assert_int_eq(ms_writer_set_metadata(writer, "format", "pt", &err), MS_OK);
    ck_assert_int_eq(ms_writer_set_metadata(writer, "comment", "first", &err), MS_OK);
    ck_assert_int_eq(ms_writer_set_metadata(writer, "comment", "h\xc3\xa9 \"quoted\"", &err), MS_OK);
    ms_writer_result result;
    ck_assert_int_eq(ms_writer_finish(writer, &result, &err), MS_OK);
    ck_assert_int_eq(directory_entry_count(), 1);

    ms_safetensors file;
    ck_assert_int_eq(ms_safetensors_open(final_path, &file, &err), MS_OK);
    ck_assert_uint_eq(result.file_bytes, file.file_size);
    ck_assert_uint_eq(file.tensor_count, 8);
    ck_assert_str_eq(ms_safetensors_metadata_get(&file, "format"), "pt");
    ck_assert_str_eq(ms_safetensors_metadata_get(&file, "comment"), "h\xc3\xa9 \"quoted\"");

    const ms_tensor_info *t = ms_safetensors_find(&file, "raw");
    ck_assert_int_eq(t->dtype, MS_DTYPE_U8);
    ck_assert_int_eq(t->ndim, 2);
    ck_assert_int_eq(t->shape[0], 2);
    ck_assert_int_eq(t->shape[1], 3);
    ck_assert(memcmp(ms_safetensors_tensor_bytes(&file, t), raw, 6) == 0);
    t = ms_safetensors_find(&file, "ints");
    ck_assert_int_eq(t->dtype, MS_DTYPE_I64);
    ck_assert(memcmp(ms_safetensors_tensor_bytes(&file, t), ints, 32) == 0);

    const ms_dtype float_types[] = {MS_DTYPE_F16, MS_DTYPE_BF16, MS_DTYPE_F32, MS_DTYPE_F64};
    const char *float_names[] = {"half", "bf", "single", "double"};
    for (int k = 0; k < 4; k++) {
        unsigned char expected[48];
        ms_dtype_from_double(float_types[k], values, expected, 6);
        t = ms_safetensors_find(&file, float_names[k]);
        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(t->dtype, float_types[k]);
        ck_assert_uint_eq(t->byte_count, 6 * ms_dtype_size(float_types[k]));
        ck_assert(memcmp(ms_safetensors_tensor_bytes(&file, t), expected, t->byte_count) == 0);
    }
    double back[6];
    ck_assert_int_eq(ms_safetensors_read_doubles(&file, ms_safetensors_find(&file, "double"), back,
                                                 &err), MS_OK);
    ck_assert(memcmp(back, values, sizeof values) == 0);
    t = ms_safetensors_find(&file, "scalar");
    ck_assert_int_eq(t->ndim, 0);
    ck_assert_int_eq(ms_safetensors_read_doubles(&file, t, back, &err), MS_OK);
    ck_assert(back[0] == 3.25);
    t = ms_safetensors_find(&file, "empty");
    ck_assert_int_eq(t->ndim, 2);
    ck_assert_int_eq(t->shape[0], 5);
    ck_assert_uint_eq(t->byte_count, 0);
    ms_safetensors_close(&file);
}
END_TEST

typedef struct order_item {
    const char *name;
    ms_dtype dtype;
} order_item;

static int compare_reference(const void *a, const void *b)
{
    const order_item *x = a, *y = b;
    if (x->dtype != y->dtype)
        return (int)y->dtype - (int)x->dtype;
    return strcmp(x->name, y->name);
}

/* Data order (dtype descending, then bytes of the name) and the header's key
 * order (__metadata__ first, then the tensors in data order). */
START_TEST(test_reference_order)
{
    order_item items[] = {
        {"b", MS_DTYPE_F16},   {"a", MS_DTYPE_F16},   {"Z", MS_DTYPE_F16},
        {"m", MS_DTYPE_F32},   {"a.10", MS_DTYPE_F32}, {"a.9", MS_DTYPE_F32},
        {"c", MS_DTYPE_BF16},  {"z", MS_DTYPE_U8},    {"\xc3\xa9", MS_DTYPE_F16},
        {"y", MS_DTYPE_I64},   {"x", MS_DTYPE_F64},   {"e", MS_DTYPE_BOOL},
        {"aa", MS_DTYPE_F16},  {"A", MS_DTYPE_U64},
    };
    enum { COUNT = sizeof items / sizeof items[0] };
    ms_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_writer_open(final_path, &writer, &err), MS_OK);
    const int64_t shape[] = {3};
    unsigned char bytes[24];
    for (int i = 0; i < COUNT; i++) {
        memset(bytes, i + 1, sizeof bytes);
        ck_assert_int_eq(ms_writer_add_bytes(writer, items[i].name, items[i].dtype, 1, shape, bytes,
                                             3 * ms_dtype_size(items[i].dtype), &err), MS_OK);
    }
    ck_assert_int_eq(ms_writer_set_metadata(writer, "zz", "1", &err), MS_OK);
    ck_assert_int_eq(ms_writer_set_metadata(writer, "aa", "2", &err), MS_OK);
    ck_assert_int_eq(ms_writer_finish(writer, NULL, &err), MS_OK);

    qsort(items, COUNT, sizeof items[0], compare_reference);
    ms_safetensors file;
    ck_assert_int_eq(ms_safetensors_open(final_path, &file, &err), MS_OK);
    uint64_t expected_offset = 0;
    for (int i = 0; i < COUNT; i++) {
        const ms_tensor_info *t = ms_safetensors_find(&file, items[i].name);
        ck_assert_ptr_nonnull(t);
        ck_assert_msg(t->offset == expected_offset, "%s at %llu, expected %llu", items[i].name,
                      (unsigned long long)t->offset, (unsigned long long)expected_offset);
        expected_offset += t->byte_count;
    }

    /* jansson keeps keys in file order when decoding. */
    json_t *header = json_loadb((const char *)file.map + 8, file.header_length, 0, NULL);
    ck_assert_ptr_nonnull(header);
    const char *key;
    json_t *value;
    int position = -1;
    json_object_foreach(header, key, value) {
        if (position < 0) {
            ck_assert_str_eq(key, "__metadata__");
            const char *first_meta = json_object_iter_key(json_object_iter(value));
            ck_assert_str_eq(first_meta, "aa");
        } else {
            ck_assert_str_eq(key, items[position].name);
        }
        position++;
    }
    ck_assert_int_eq(position, COUNT);
    json_decref(header);
    ms_safetensors_close(&file);
}
END_TEST

/* Name lengths 1..8 give every padding from 0 to 7. */
START_TEST(test_header_padding)
{
    char name[16];
    memset(name, 0, sizeof name);
    memset(name, 'n', (size_t)(_i + 1));
    ms_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_writer_open(final_path, &writer, &err), MS_OK);
    const int64_t shape[] = {1};
    const unsigned char byte = 7;
    ck_assert_int_eq(ms_writer_add_bytes(writer, name, MS_DTYPE_U8, 1, shape, &byte, 1, &err), MS_OK);
    ck_assert_int_eq(ms_writer_finish(writer, NULL, &err), MS_OK);

    size_t size;
    unsigned char *bytes = read_whole(final_path, &size);
    uint64_t length = header_length_of(bytes);
    ck_assert_uint_eq(length % 8, 0);
    ck_assert_uint_eq(size, 8 + length + 1);
    const char *text = (const char *)bytes + 8;
    size_t json_end = length;
    while (json_end > 0 && text[json_end - 1] == ' ')
        json_end--;
    ck_assert_uint_gt(json_end, 0);
    ck_assert_int_eq(text[json_end - 1], '}');
    ck_assert_uint_lt(length - json_end, 8);
    /* compact, as the reference writes it */
    char expected[128];
    snprintf(expected, sizeof expected,
             "{\"%s\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", name);
    ck_assert_uint_eq(json_end, strlen(expected));
    ck_assert(memcmp(text, expected, json_end) == 0);
    ck_assert_int_eq(bytes[size - 1], 7);
    free(bytes);
}
END_TEST

START_TEST(test_hashes)
{
    ms_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_writer_open(final_path, &writer, &err), MS_OK);
    const int64_t shape[] = {300, 7};
    double *values = malloc(2100 * sizeof *values);
    for (int i = 0; i < 2100; i++)
        values[i] = sin(i * 0.1);
    ck_assert_int_eq(ms_writer_add_doubles(writer, "w", MS_DTYPE_F16, 2, shape, values, &err), MS_OK);
    ck_assert_int_eq(ms_writer_add_doubles(writer, "v", MS_DTYPE_F32, 2, shape, values, &err), MS_OK);
    ck_assert_int_eq(ms_writer_set_metadata(writer, "sshs_model_hash", "stale", &err), MS_OK);
    ck_assert_int_eq(ms_writer_set_metadata(writer, "other", "kept", &err), MS_OK);
    ck_assert_int_eq(ms_writer_set_data_hash_metadata(writer, "sshs_model_hash", &err), MS_OK);
    ms_writer_result result;
    ck_assert_int_eq(ms_writer_finish(writer, &result, &err), MS_OK);

    char data_hex[65];
    unsigned char *bytes = check_result_hashes(&result, data_hex);

    ms_safetensors file;
    ck_assert_int_eq(ms_safetensors_open(final_path, &file, &err), MS_OK);
    ck_assert_str_eq(ms_safetensors_metadata_get(&file, "sshs_model_hash"), data_hex);
    ck_assert_str_eq(ms_safetensors_metadata_get(&file, "other"), "kept");
    ms_safetensors_close(&file);
    free(bytes);
    free(values);
}
END_TEST

/* Without the hash in metadata, the single-pass file hash is right too. */
START_TEST(test_hashes_without_metadata)
{
    ms_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_writer_open(final_path, &writer, &err), MS_OK);
    const int64_t shape[] = {10};
    const double values[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    ck_assert_int_eq(ms_writer_add_doubles(writer, "w", MS_DTYPE_BF16, 1, shape, values, &err), MS_OK);
    ms_writer_result result;
    ck_assert_int_eq(ms_writer_finish(writer, &result, &err), MS_OK);
    char data_hex[65];
    unsigned char *bytes = check_result_hashes(&result, data_hex);
    ck_assert(strstr((const char *)bytes + 8, "__metadata__") == NULL);
    free(bytes);
}
END_TEST

/* No tensors at all, then only an empty one: valid files, no data section. */
START_TEST(test_empty_outputs)
{
    ms_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_writer_open(final_path, &writer, &err), MS_OK);
    ms_writer_result result;
    ck_assert_int_eq(ms_writer_finish(writer, &result, &err), MS_OK);
    size_t size;
    unsigned char *bytes = read_whole(final_path, &size);
    ck_assert_uint_eq(size, 16);
    ck_assert(memcmp(bytes + 8, "{}      ", 8) == 0);
    ck_assert_uint_eq(header_length_of(bytes), 8);
    free(bytes);

    ck_assert_int_eq(ms_writer_open(final_path, &writer, &err), MS_OK);
    const int64_t shape[] = {0, 3};
    ck_assert_int_eq(ms_writer_add_doubles(writer, "e", MS_DTYPE_F64, 2, shape, NULL, &err), MS_OK);
    ck_assert_int_eq(ms_writer_finish(writer, &result, &err), MS_OK);
    ms_safetensors file;
    ck_assert_int_eq(ms_safetensors_open(final_path, &file, &err), MS_OK);
    ck_assert_uint_eq(file.tensor_count, 1);
    ck_assert_uint_eq(file.data_size, 0);
    ck_assert_uint_eq(result.file_bytes, file.file_size);
    ms_safetensors_close(&file);
    ck_assert_int_eq(directory_entry_count(), 1);
}
END_TEST

START_TEST(test_nan_refused_leaves_nothing)
{
    ms_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_writer_open(final_path, &writer, &err), MS_OK);
    const int64_t shape[] = {20000};
    double *values = calloc(20000, sizeof *values);
    ck_assert_int_eq(ms_writer_add_doubles(writer, "good", MS_DTYPE_F16, 1, shape, values, &err),
                     MS_OK);
    values[12345] = NAN;
    ck_assert_int_eq(ms_writer_add_doubles(writer, "lora_up.weight", MS_DTYPE_F16, 1, shape,
                                           values, &err), MS_ERR_NAN_DETECTED);
    ck_assert_str_eq(err.key, "lora_up.weight");
    ck_assert_str_eq(err.details[0].name, "index");
    ck_assert_str_eq(err.details[0].value, "12345");
    values[12345] = -INFINITY;
    ck_assert_int_eq(ms_writer_add_doubles(writer, "x", MS_DTYPE_F32, 1, shape, values, &err),
                     MS_ERR_NAN_DETECTED);
    ck_assert_str_eq(err.key, "x");
    ck_assert_int_eq(directory_entry_count(), 0); /* the spool has no name */
    ms_writer_abort(writer);
    ck_assert_int_eq(directory_entry_count(), 0);
    ck_assert_int_ne(access(final_path, F_OK), 0);
    free(values);
}
END_TEST

/* A refused tensor is not in the output, and its name can be used again. */
START_TEST(test_refused_tensor_not_written)
{
    ms_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_writer_open(final_path, &writer, &err), MS_OK);
    const int64_t shape[] = {2};
    const double bad[2] = {1.0, NAN}, good[2] = {1.0, 2.0};
    ck_assert_int_eq(ms_writer_add_doubles(writer, "w", MS_DTYPE_F32, 1, shape, bad, &err),
                     MS_ERR_NAN_DETECTED);
    ck_assert_int_eq(ms_writer_add_doubles(writer, "w", MS_DTYPE_F32, 1, shape, good, &err), MS_OK);
    ck_assert_int_eq(ms_writer_finish(writer, NULL, &err), MS_OK);
    ms_safetensors file;
    ck_assert_int_eq(ms_safetensors_open(final_path, &file, &err), MS_OK);
    ck_assert_uint_eq(file.tensor_count, 1);
    ck_assert_uint_eq(file.data_size, 8);
    double back[2];
    ck_assert_int_eq(ms_safetensors_read_doubles(&file, &file.tensors[0], back, &err), MS_OK);
    ck_assert(back[0] == 1.0 && back[1] == 2.0);
    ms_safetensors_close(&file);
}
END_TEST

/* Bytes copied as they are come from a mapped input: cut short meanwhile,
 * the copy fails as file_shrank (the kernel's EFAULT), not as "Bad address". */
START_TEST(test_source_shrank)
{
    char source_path[4200];
    snprintf(source_path, sizeof source_path, "%s/source.bin", base_dir);
    int fd = open(source_path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 65536), 0);
    void *map = mmap(NULL, 65536, PROT_READ, MAP_SHARED, fd, 0);
    ck_assert_ptr_ne(map, MAP_FAILED);
    ck_assert_int_eq(ftruncate(fd, 4096), 0);
    ms_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_writer_open(final_path, &writer, &err), MS_OK);
    const int64_t shape[] = {65536};
    ck_assert_int_eq(ms_writer_add_bytes(writer, "copied", MS_DTYPE_U8, 1, shape, map, 65536,
                                         &err), MS_ERR_IO);
    ck_assert_str_eq(err.details[0].name, "reason");
    ck_assert_str_eq(err.details[0].value, "file_shrank");
    ck_assert(strstr(err.message, "shorter") != NULL);
    ms_writer_abort(writer);
    ck_assert_int_eq(directory_entry_count(), 0);
    munmap(map, 65536);
    close(fd);
    ck_assert_int_eq(unlink(source_path), 0);
}
END_TEST

/* Metadata carried over can make the output's header exceed the format's
 * limit: refused as the output's, with its size, and nothing is left. */
START_TEST(test_output_header_too_large)
{
    ms_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_writer_open(final_path, &writer, &err), MS_OK);
    size_t length = MS_MAX_HEADER_BYTES;
    char *comment = malloc(length + 1);
    ck_assert_ptr_nonnull(comment);
    memset(comment, 'c', length);
    comment[length] = '\0';
    ck_assert_int_eq(ms_writer_set_metadata(writer, "ss_training_comment", comment, &err), MS_OK);
    free(comment);
    ck_assert_int_eq(ms_writer_finish(writer, NULL, &err), MS_ERR_HEADER_TOO_LARGE);
    ck_assert(strstr(err.message, "output's header") != NULL);
    ck_assert_str_eq(err.details[0].name, "output_header_bytes");
    ck_assert(err.details[0].is_number);
    ck_assert_uint_gt(strtoull(err.details[0].value, NULL, 10), MS_MAX_HEADER_BYTES);
    ck_assert_int_eq(directory_entry_count(), 0);
}
END_TEST

START_TEST(test_abort_leaves_nothing)
{
    ms_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_writer_open(final_path, &writer, &err), MS_OK);
    const int64_t shape[] = {1000};
    unsigned char bytes[1000] = {0};
    ck_assert_int_eq(ms_writer_add_bytes(writer, "a", MS_DTYPE_U8, 1, shape, bytes, 1000, &err),
                     MS_OK);
    ms_writer_abort(writer);
    ms_writer_abort(NULL);
    ck_assert_int_eq(directory_entry_count(), 0);
}
END_TEST

/* A finish that fails late (a directory appeared at the final name while
 * the tensors were added) removes its temp file and leaves the directory. */
START_TEST(test_failed_finish_leaves_no_temp)
{
    ms_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_writer_open(final_path, &writer, &err), MS_OK);
    const int64_t shape[] = {4};
    const unsigned char bytes[4] = {1, 2, 3, 4};
    ck_assert_int_eq(ms_writer_add_bytes(writer, "a", MS_DTYPE_U8, 1, shape, bytes, 4, &err), MS_OK);
    ck_assert_int_eq(mkdir(final_path, 0700), 0);
    char inner[8400];
    snprintf(inner, sizeof inner, "%s/keep", final_path);
    FILE *stream = fopen(inner, "w");
    ck_assert_ptr_nonnull(stream);
    fclose(stream);
    ck_assert_int_eq(ms_writer_finish(writer, NULL, &err), MS_ERR_IO);
    ck_assert_int_eq(directory_entry_count(), 1); /* only the directory we made */
    ck_assert_int_eq(unlink(inner), 0);
}
END_TEST

START_TEST(test_argument_checks)
{
    ms_writer *writer;
    ms_error err;
    char missing[8400];
    snprintf(missing, sizeof missing, "%s/no/such/dir/out.safetensors", temp_dir);
    ck_assert_int_eq(ms_writer_open(missing, &writer, &err), MS_ERR_IO);
    ck_assert_ptr_null(writer);
    ck_assert_int_eq(ms_writer_open(temp_dir, &writer, &err), MS_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(ms_writer_open("", &writer, &err), MS_ERR_INVALID_PARAMETER);
    snprintf(missing, sizeof missing, "%s/", temp_dir);
    ck_assert_int_eq(ms_writer_open(missing, &writer, &err), MS_ERR_INVALID_PARAMETER);

    ck_assert_int_eq(ms_writer_open(final_path, &writer, &err), MS_OK);
    const int64_t shape[] = {2, 2}, negative[] = {2, -2};
    const int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    const unsigned char bytes[8] = {0};
    const double values[4] = {0};
    ck_assert_int_eq(ms_writer_add_bytes(writer, "", MS_DTYPE_U8, 2, shape, bytes, 4, &err),
                     MS_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(ms_writer_add_bytes(writer, NULL, MS_DTYPE_U8, 2, shape, bytes, 4, &err),
                     MS_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(ms_writer_add_bytes(writer, "__metadata__", MS_DTYPE_U8, 2, shape, bytes, 4,
                                         &err), MS_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(ms_writer_add_bytes(writer, "bad\xff", MS_DTYPE_U8, 2, shape, bytes, 4, &err),
                     MS_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(ms_writer_add_bytes(writer, "w", MS_DTYPE_U8, -1, shape, bytes, 4, &err),
                     MS_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(ms_writer_add_bytes(writer, "w", MS_DTYPE_U8, 9, nine, bytes, 1, &err),
                     MS_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(ms_writer_add_bytes(writer, "w", MS_DTYPE_U8, 2, negative, bytes, 4, &err),
                     MS_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(ms_writer_add_bytes(writer, "w", MS_DTYPE_U8, 2, shape, bytes, 5, &err),
                     MS_ERR_SIZE_MISMATCH);
    ck_assert_str_eq(err.key, "w");
    ck_assert_int_eq(ms_writer_add_bytes(writer, "w", MS_DTYPE_COUNT, 2, shape, bytes, 4, &err),
                     MS_ERR_UNSUPPORTED_DTYPE);
    ck_assert_int_eq(ms_writer_add_doubles(writer, "w", MS_DTYPE_I32, 2, shape, values, &err),
                     MS_ERR_UNSUPPORTED_DTYPE);
    const int64_t huge[] = {INT64_MAX, 4};
    ck_assert_int_eq(ms_writer_add_bytes(writer, "w", MS_DTYPE_U8, 2, huge, bytes, 4, &err),
                     MS_ERR_INTEGER_OVERFLOW);
    ck_assert_int_eq(ms_writer_add_bytes(writer, "w", MS_DTYPE_U8, 2, shape, bytes, 4, &err),
                     MS_OK);
    ck_assert_int_eq(ms_writer_add_doubles(writer, "w", MS_DTYPE_F16, 2, shape, values, &err),
                     MS_ERR_DUPLICATE_KEY);
    ck_assert_str_eq(err.key, "w");
    ck_assert_int_eq(ms_writer_set_metadata(writer, "k", "bad\xff", &err), MS_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(ms_writer_set_metadata(writer, "k", NULL, &err), MS_ERR_INVALID_PARAMETER);
    ms_writer_abort(writer);
    ck_assert_int_eq(directory_entry_count(), 0);
}
END_TEST

/* The full-write loop maps ENOSPC (what /dev/full always answers) to
 * disk_full, and other failures to io_error. */
START_TEST(test_write_errors)
{
    ms_error err;
    unsigned char bytes[4096] = {0};
    int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        ck_assert_int_eq(ms_writer_pwrite_all(fd, bytes, sizeof bytes, 0, "the test", &err),
                         MS_ERR_DISK_FULL);
        ck_assert_int_eq(err.code, MS_ERR_DISK_FULL);
        close(fd);
    }
    ck_assert_int_eq(ms_writer_pwrite_all(-1, bytes, sizeof bytes, 0, "the test", &err), MS_ERR_IO);
    ck_assert_int_eq(ms_writer_io_error(&err, EDQUOT, "write", "x"), MS_ERR_DISK_FULL);
    ck_assert_int_eq(ms_writer_pwrite_all(-1, bytes, 0, 0, "nothing", &err), MS_OK);
}
END_TEST

/* Duplicates are caught after the name index has grown several times. */
START_TEST(test_many_names)
{
    ms_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_writer_open(final_path, &writer, &err), MS_OK);
    const unsigned char byte = 1;
    char name[64];
    for (int i = 0; i < 1500; i++) {
        snprintf(name, sizeof name, "model.diffusion_model.block.%d.weight", i);
        ck_assert_int_eq(ms_writer_add_bytes(writer, name, MS_DTYPE_U8, 0, NULL, &byte, 1, &err),
                         MS_OK);
    }
    for (int i = 0; i < 1500; i += 7) {
        snprintf(name, sizeof name, "model.diffusion_model.block.%d.weight", i);
        ck_assert_int_eq(ms_writer_add_bytes(writer, name, MS_DTYPE_U8, 0, NULL, &byte, 1, &err),
                         MS_ERR_DUPLICATE_KEY);
    }
    ck_assert_int_eq(ms_writer_finish(writer, NULL, &err), MS_OK);
    ms_safetensors file;
    ck_assert_int_eq(ms_safetensors_open(final_path, &file, &err), MS_OK);
    ck_assert_uint_eq(file.tensor_count, 1500);
    ms_safetensors_close(&file);
}
END_TEST

/* Metadata names in order (as copied from an input), reversed, and again
 * (replacing): each name once in the output with its last value.  The
 * sorted store keeps 10^5 names cheap; a list scan made 80,000 cost 19 s. */
START_TEST(test_many_metadata_names)
{
    enum { NAMES = 3000 };
    ms_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_writer_open(final_path, &writer, &err), MS_OK);
    char name[32], value[32];
    for (int i = 0; i < NAMES; i += 2) {   /* even names in order */
        snprintf(name, sizeof name, "k%05d", i);
        ck_assert_int_eq(ms_writer_set_metadata(writer, name, "first", &err), MS_OK);
    }
    for (int i = NAMES - 1; i >= 0; i--) {   /* all names, reversed: odd ones inserted */
        snprintf(name, sizeof name, "k%05d", i);
        snprintf(value, sizeof value, "%d", i);
        ck_assert_int_eq(ms_writer_set_metadata(writer, name, i % 3 ? value : "first", &err),
                         MS_OK);
    }
    ck_assert_int_eq(ms_writer_set_metadata(writer, "", "empty name", &err), MS_OK);
    ck_assert_int_eq(ms_writer_finish(writer, NULL, &err), MS_OK);
    ms_safetensors file;
    ck_assert_int_eq(ms_safetensors_open(final_path, &file, &err), MS_OK);
    ck_assert_uint_eq(file.metadata_count, NAMES + 1);
    for (int i = 0; i < NAMES; i++) {
        snprintf(name, sizeof name, "k%05d", i);
        snprintf(value, sizeof value, "%d", i);
        ck_assert_str_eq(ms_safetensors_metadata_get(&file, name), i % 3 ? value : "first");
    }
    ck_assert_str_eq(ms_safetensors_metadata_get(&file, ""), "empty name");
    ms_safetensors_close(&file);
}
END_TEST

enum { THREADS = 4, PER_THREAD = 40, ELEMENTS = 3000 };

typedef struct thread_job {
    ms_writer *writer;
    int thread;
    int failures;
} thread_job;

static double thread_value(int thread, int tensor, int element)
{
    return (thread + 1) * 0.25 + tensor * 0.5 + element * 1e-3;
}

static void *add_from_thread(void *argument)
{
    thread_job *job = argument;
    double *values = malloc(ELEMENTS * sizeof *values);
    const int64_t shape[] = {ELEMENTS};
    for (int tensor = 0; tensor < PER_THREAD; tensor++) {
        char name[64];
        snprintf(name, sizeof name, "t%d.w%02d", job->thread, tensor);
        for (int e = 0; e < ELEMENTS; e++)
            values[e] = thread_value(job->thread, tensor, e);
        ms_error err;
        ms_status status = tensor % 2 == 0
            ? ms_writer_add_doubles(job->writer, name, MS_DTYPE_F32, 1, shape, values, &err)
            : ms_writer_add_bytes(job->writer, name, MS_DTYPE_F64, 1, shape, values,
                                  ELEMENTS * sizeof(double), &err);
        if (status != MS_OK)
            job->failures++;
    }
    free(values);
    return NULL;
}

START_TEST(test_concurrent_adds)
{
    ms_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_writer_open(final_path, &writer, &err), MS_OK);
    pthread_t threads[THREADS];
    thread_job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (thread_job){writer, i, 0};
        ck_assert_int_eq(pthread_create(&threads[i], NULL, add_from_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        ck_assert_int_eq(jobs[i].failures, 0);
    }
    ck_assert_int_eq(ms_writer_finish(writer, NULL, &err), MS_OK);

    ms_safetensors file;
    ck_assert_int_eq(ms_safetensors_open(final_path, &file, &err), MS_OK);
    ck_assert_uint_eq(file.tensor_count, THREADS * PER_THREAD);
    double *back = malloc(ELEMENTS * sizeof *back);
    for (int thread = 0; thread < THREADS; thread++) {
        for (int tensor = 0; tensor < PER_THREAD; tensor++) {
            char name[64];
            snprintf(name, sizeof name, "t%d.w%02d", thread, tensor);
            const ms_tensor_info *t = ms_safetensors_find(&file, name);
            ck_assert_ptr_nonnull(t);
            ck_assert_int_eq(ms_safetensors_read_doubles(&file, t, back, &err), MS_OK);
            for (int e = 0; e < ELEMENTS; e++) {
                double expected = thread_value(thread, tensor, e);
                if (t->dtype == MS_DTYPE_F32)
                    expected = (float)expected;
                ck_assert_msg(back[e] == expected, "%s[%d]", name, e);
            }
        }
    }
    free(back);
    ms_safetensors_close(&file);
}
END_TEST

/* ---- where the output goes: core/output_file.h ---- */

static void path_in_case(char *path, size_t size, const char *name)
{
    snprintf(path, size, "%s/%s", temp_dir, name);
}

/* Writes a small valid file through the writer; the status of the open. */
static ms_status write_small_output(const char *path, ms_error *err)
{
    ms_writer *writer;
    ms_status status = ms_writer_open(path, &writer, err);
    if (status != MS_OK)
        return status;
    const int64_t shape[] = {3};
    const unsigned char bytes[3] = {7, 8, 9};
    ck_assert_int_eq(ms_writer_add_bytes(writer, "w", MS_DTYPE_U8, 1, shape, bytes, 3, err),
                     MS_OK);
    return ms_writer_finish(writer, NULL, err);
}

static const char *detail_of(const ms_error *err, const char *name)
{
    for (int i = 0; i < err->detail_count; i++)
        if (strcmp(err->details[i].name, name) == 0)
            return err->details[i].value;
    return NULL;
}

static void assert_refused_as(const ms_error *err, const char *what, const char *word)
{
    ck_assert_int_eq(err->code, MS_ERR_INVALID_PARAMETER);
    ck_assert_msg(strstr(err->message, what) != NULL, "message: %s", err->message);
    ck_assert(strstr(err->message, "out.safetensors") != NULL);
    ck_assert_str_eq(detail_of(err, "reason"), "not_a_regular_file");
    ck_assert_str_eq(detail_of(err, "file_type"), word);
}

static mode_t mode_of(const char *path)
{
    struct stat info;
    ck_assert_int_eq(stat(path, &info), 0);
    return info.st_mode & 07777;
}

START_TEST(test_fifo_target_refused)
{
    ck_assert_int_eq(mkfifo(final_path, 0600), 0);
    ms_error err;
    ck_assert_int_eq(write_small_output(final_path, &err), MS_ERR_INVALID_PARAMETER);
    assert_refused_as(&err, "is a FIFO", "fifo");
    struct stat info;
    ck_assert_int_eq(lstat(final_path, &info), 0);
    ck_assert(S_ISFIFO(info.st_mode));
    ck_assert_int_eq(directory_entry_count(), 1);
}
END_TEST

/* Never /dev/null itself: only a link to it, so a wrong writer replaces
 * the link, not the device. */
START_TEST(test_link_to_device_refused)
{
    struct stat before, after;
    ck_assert_int_eq(stat("/dev/null", &before), 0);
    ck_assert(S_ISCHR(before.st_mode));
    ck_assert_int_eq(symlink("/dev/null", final_path), 0);
    ms_error err;
    ck_assert_int_eq(write_small_output(final_path, &err), MS_ERR_INVALID_PARAMETER);
    assert_refused_as(&err, "a character device", "character_device");
    ck_assert_msg(strstr(err.message, "leads to \"/dev/null\"") != NULL, "%s", err.message);
    ck_assert_int_eq(lstat(final_path, &after), 0);
    ck_assert(S_ISLNK(after.st_mode));
    ck_assert_int_eq(stat("/dev/null", &after), 0);
    ck_assert(S_ISCHR(after.st_mode));
    ck_assert_uint_eq(after.st_rdev, before.st_rdev);
    ck_assert_int_eq(directory_entry_count(), 1);
}
END_TEST

START_TEST(test_directory_target_refused)
{
    ck_assert_int_eq(mkdir(final_path, 0700), 0);
    ms_error err;
    ck_assert_int_eq(write_small_output(final_path, &err), MS_ERR_INVALID_PARAMETER);
    assert_refused_as(&err, "is a directory", "directory");
    /* a link to a directory too, named as the link's target */
    char link_path[4400];
    path_in_case(link_path, sizeof link_path, "link.safetensors");
    ck_assert_int_eq(symlink("out.safetensors", link_path), 0);
    ck_assert_int_eq(write_small_output(link_path, &err), MS_ERR_INVALID_PARAMETER);
    ck_assert_msg(strstr(err.message, "leads to") != NULL, "%s", err.message);
    ck_assert_str_eq(detail_of(&err, "file_type"), "directory");
    ck_assert_int_eq(directory_entry_count(), 2);
}
END_TEST

/* A socket (when the case folder's path fits in sun_path). */
START_TEST(test_socket_target_refused)
{
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    size_t length = strlen(final_path);
    if (length >= sizeof address.sun_path)
        return;
    memcpy(address.sun_path, final_path, length + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (const struct sockaddr *)&address, sizeof address), 0);
    ms_error err;
    ck_assert_int_eq(write_small_output(final_path, &err), MS_ERR_INVALID_PARAMETER);
    assert_refused_as(&err, "is a socket", "socket");
    close(fd);
    ck_assert_int_eq(directory_entry_count(), 1);
}
END_TEST

/* Every kind of file has a name; kinds a test cannot make are checked here. */
START_TEST(test_type_names)
{
    const struct {
        mode_t mode;
        const char *name;
        const char *word;
    } cases[] = {
        {S_IFREG, "a regular file", "regular_file"}, {S_IFDIR, "a directory", "directory"},
        {S_IFIFO, "a FIFO", "fifo"}, {S_IFCHR, "a character device", "character_device"},
        {S_IFBLK, "a block device", "block_device"}, {S_IFSOCK, "a socket", "socket"},
        {S_IFLNK, "a symbolic link", "symbolic_link"}, {0, "not a regular file", "other"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *word = NULL;
        ck_assert_str_eq(ms_output_file_type_name(cases[i].mode | 0644, &word), cases[i].name);
        ck_assert_str_eq(word, cases[i].word);
        ck_assert_str_eq(ms_output_file_type_name(cases[i].mode, NULL), cases[i].name);
    }
}
END_TEST

static void write_text(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    ck_assert_int_eq(fchmod(fd, mode), 0);
    close(fd);
}

static void assert_link_to(const char *link_path, const char *expected_target)
{
    struct stat info;
    ck_assert_int_eq(lstat(link_path, &info), 0);
    ck_assert(S_ISLNK(info.st_mode));
    char target[4400];
    ssize_t length = readlink(link_path, target, sizeof target - 1);
    ck_assert_int_gt(length, 0);
    target[length] = '\0';
    ck_assert_str_eq(target, expected_target);
}

static void assert_is_small_output(const char *path)
{
    ms_safetensors file;
    ms_error err;
    ck_assert_int_eq(ms_safetensors_open(path, &file, &err), MS_OK);
    ck_assert_uint_eq(file.tensor_count, 1);
    ck_assert(memcmp(ms_safetensors_tensor_bytes(&file, &file.tensors[0]), "\x07\x08\x09", 3) == 0);
    ms_safetensors_close(&file);
}

/* Through a chain of two links (one relative, one absolute), in another
 * folder: the file at the end is replaced, keeps its mode, the links stay. */
START_TEST(test_link_to_file_replaces_target)
{
    char real_folder[4400], real_path[4500], middle[4400];
    path_in_case(real_folder, sizeof real_folder, "real");
    ck_assert_int_eq(mkdir(real_folder, 0700), 0);
    snprintf(real_path, sizeof real_path, "%s/model.safetensors", real_folder);
    write_text(real_path, "old contents", 0640);
    path_in_case(middle, sizeof middle, "middle.safetensors");
    ck_assert_int_eq(symlink(real_path, middle), 0);
    ck_assert_int_eq(symlink("middle.safetensors", final_path), 0);
    ms_error err;
    ck_assert_int_eq(write_small_output(final_path, &err), MS_OK);
    assert_link_to(final_path, "middle.safetensors");
    assert_link_to(middle, real_path);
    assert_is_small_output(real_path);
    ck_assert_uint_eq(mode_of(real_path), 0640);
    ck_assert_int_eq(directory_entry_count(), 3);
    DIR *dir = opendir(real_folder);
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL)
        count += entry->d_name[0] != '.';
    closedir(dir);
    ck_assert_int_eq(count, 1); /* no temporary left beside the target */
}
END_TEST

/* A dangling link: the file it names is created (as the shell's `>`
 * does), the link stays; a link into a missing folder, a loop and a link
 * to a name too long for a temporary are refused and create nothing. */
START_TEST(test_dangling_link)
{
    char made[4400];
    ck_assert_int_eq(symlink("made.safetensors", final_path), 0);
    ms_error err;
    ck_assert_int_eq(write_small_output(final_path, &err), MS_OK);
    assert_link_to(final_path, "made.safetensors");
    path_in_case(made, sizeof made, "made.safetensors");
    assert_is_small_output(made);
    ck_assert_int_eq(directory_entry_count(), 2);

    char link_path[4400];
    path_in_case(link_path, sizeof link_path, "missing_folder.safetensors");
    ck_assert_int_eq(symlink("no/such/folder/x.safetensors", link_path), 0);
    ck_assert_int_eq(write_small_output(link_path, &err), MS_ERR_IO);
    ck_assert_str_eq(detail_of(&err, "errno"), "2");
    ck_assert_msg(strstr(err.message, "symbolic link to") != NULL, "%s", err.message);

    char loop_a[4400], loop_b[4400];
    path_in_case(loop_a, sizeof loop_a, "loop_a");
    path_in_case(loop_b, sizeof loop_b, "loop_b");
    ck_assert_int_eq(symlink("loop_b", loop_a), 0);
    ck_assert_int_eq(symlink("loop_a", loop_b), 0);
    ck_assert_int_eq(write_small_output(loop_a, &err), MS_ERR_IO);
    ck_assert(strstr(err.message, "loop_a") != NULL);

    char long_name[NAME_MAX + 1];
    memset(long_name, 'n', NAME_MAX - 4);
    long_name[NAME_MAX - 4] = '\0';
    path_in_case(link_path, sizeof link_path, "to_long_name");
    ck_assert_int_eq(symlink(long_name, link_path), 0);
    ck_assert_int_eq(write_small_output(link_path, &err), MS_ERR_INVALID_PARAMETER);
    ck_assert_ptr_nonnull(detail_of(&err, "max_name_bytes"));
    ck_assert_int_eq(directory_entry_count(), 6); /* out, made and the four links */
}
END_TEST

/* A chain of dangling links longer than the kernel follows is refused. */
START_TEST(test_dangling_link_chain_too_long)
{
    char link_path[4400], target[64];
    for (int i = 0; i < 45; i++) {
        snprintf(target, sizeof target, "link%02d", i + 1);
        snprintf(link_path, sizeof link_path, "%s/link%02d", temp_dir, i);
        ck_assert_int_eq(symlink(target, link_path), 0);
    }
    snprintf(link_path, sizeof link_path, "%s/link00", temp_dir);
    ms_error err;
    ck_assert_int_eq(write_small_output(link_path, &err), MS_ERR_IO);
    ck_assert_str_eq(detail_of(&err, "errno"), "40"); /* ELOOP */
    ck_assert_int_eq(directory_entry_count(), 45);
}
END_TEST

/* A new file gets 0666 under the umask: 022, 077, 027 (restored after). */
START_TEST(test_new_file_mode_follows_umask)
{
    const mode_t masks[] = {022, 077, 027};
    const mode_t expected[] = {0644, 0600, 0640};
    mode_t saved = umask(masks[_i]);
    ms_error err;
    ms_status status = write_small_output(final_path, &err);
    umask(saved);
    ck_assert_int_eq(status, MS_OK);
    ck_assert_uint_eq(mode_of(final_path), expected[_i]);
}
END_TEST

/* An existing file keeps its own bits whatever the umask, and its data is
 * never more readable while the temporary is written. */
START_TEST(test_existing_file_keeps_mode)
{
    const mode_t old_modes[] = {0600, 0640, 0604};
    const mode_t masks[] = {022, 077, 0};
    write_text(final_path, "old", old_modes[_i]);
    mode_t saved = umask(masks[_i]);
    ms_output_file output;
    ms_error err;
    ck_assert_int_eq(ms_output_file_prepare(&output, final_path, &err), MS_OK);
    ck_assert_int_eq(ms_output_file_create_temp(&output, &err), MS_OK);
    umask(saved);
    struct stat info;
    ck_assert_int_eq(fstat(output.temp_fd, &info), 0);
    ck_assert_uint_eq(info.st_mode & 07777, old_modes[_i]);
    ck_assert_int_eq(write(output.temp_fd, "new", 3), 3);
    ck_assert_int_eq(ms_output_file_publish(&output, &err), MS_OK);
    ms_output_file_discard(&output);
    ck_assert_uint_eq(mode_of(final_path), old_modes[_i]);
    size_t size;
    unsigned char *bytes = read_whole(final_path, &size);
    ck_assert(size == 3 && memcmp(bytes, "new", 3) == 0);
    free(bytes);
    ck_assert_int_eq(directory_entry_count(), 1);

    /* and through the writer */
    ck_assert_int_eq(chmod(final_path, old_modes[_i]), 0);
    ck_assert_int_eq(write_small_output(final_path, &err), MS_OK);
    ck_assert_uint_eq(mode_of(final_path), old_modes[_i]);
}
END_TEST

START_TEST(test_free_bytes)
{
    ms_output_file output;
    ms_error err;
    ck_assert_int_eq(ms_output_file_prepare(&output, final_path, &err), MS_OK);
    uint64_t free_bytes = 0;
    ck_assert_int_eq(ms_output_file_free_bytes(&output, &free_bytes, &err), MS_OK);
    struct statvfs info;
    ck_assert_int_eq(statvfs(temp_dir, &info), 0);
    ck_assert_uint_gt(free_bytes, 0);
    ck_assert_uint_le(free_bytes, (uint64_t)info.f_blocks * info.f_frsize);
    ms_output_file_discard(&output);
    ck_assert_int_eq(ms_output_file_free_bytes(&output, &free_bytes, &err), MS_ERR_IO);
    ck_assert_uint_eq(free_bytes, 0);
}
END_TEST

/* The resolved names, the temporary's name, publish and discard. */
START_TEST(test_temporary_lifecycle)
{
    ms_output_file output;
    ms_error err;
    ck_assert_int_eq(ms_output_file_prepare(&output, final_path, &err), MS_OK);
    ck_assert_str_eq(output.base_name, "out.safetensors");
    ck_assert_int_eq(output.directory[0], '/');
    ck_assert_int_eq(output.temp_fd, -1);
    ck_assert_ptr_null(output.temp_name);
    ck_assert_int_eq(ms_output_file_publish(&output, &err), MS_ERR_INTERNAL);
    ck_assert_int_eq(ms_output_file_create_temp(&output, &err), MS_OK);
    ck_assert_int_eq(ms_output_file_create_temp(&output, &err), MS_ERR_INTERNAL);
    ck_assert(strncmp(output.temp_name, ".out.safetensors.tmp-", 21) == 0);
    ck_assert_int_eq(write(output.temp_fd, "draft", 5), 5);
    ck_assert_int_eq(directory_entry_count(), 1);
    ms_output_file_discard(&output);
    ck_assert_int_eq(directory_entry_count(), 0);
    ms_output_file_discard(&output); /* again: harmless */

    ck_assert_int_eq(ms_output_file_prepare(&output, final_path, &err), MS_OK);
    ck_assert_int_eq(ms_output_file_create_temp(&output, &err), MS_OK);
    ck_assert_int_eq(write(output.temp_fd, "hello", 5), 5);
    ck_assert_int_eq(ms_output_file_publish(&output, &err), MS_OK);
    ck_assert_ptr_null(output.temp_name);
    ck_assert_int_eq(output.temp_fd, -1);
    ck_assert_int_eq(directory_entry_count(), 1);
    ms_output_file_discard(&output);
    ck_assert_int_eq(directory_entry_count(), 1);
    size_t size;
    unsigned char *bytes = read_whole(final_path, &size);
    ck_assert(size == 5 && memcmp(bytes, "hello", 5) == 0);
    free(bytes);

    /* a relative path resolves against the working folder */
    int previous_folder = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(previous_folder, 0);
    ck_assert_int_eq(chdir(temp_dir), 0);
    ms_status status = ms_output_file_prepare(&output, "out.safetensors", &err);
    ck_assert_int_eq(fchdir(previous_folder), 0);
    close(previous_folder);
    ck_assert_int_eq(status, MS_OK);
    char *real_case = realpath(temp_dir, NULL);
    ck_assert_str_eq(output.directory, real_case);
    free(real_case);
    ms_output_file_discard(&output);
    ck_assert_int_eq(ms_output_file_prepare(&output, NULL, &err), MS_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(ms_output_file_prepare(&output, "..", &err), MS_ERR_INVALID_PARAMETER);
    ms_output_file_discard(&output);
}
END_TEST

/* The target turned into a FIFO after prepare: the temporary is not made,
 * or (after it was) not published; the FIFO stays and no temporary is left. */
START_TEST(test_target_changed_later)
{
    ms_output_file output;
    ms_error err;
    ck_assert_int_eq(ms_output_file_prepare(&output, final_path, &err), MS_OK);
    ck_assert_int_eq(mkfifo(final_path, 0600), 0);
    ck_assert_int_eq(ms_output_file_create_temp(&output, &err), MS_ERR_IO);
    ck_assert_str_eq(detail_of(&err, "reason"), "target_changed");
    ck_assert_str_eq(detail_of(&err, "file_type"), "fifo");
    ms_output_file_discard(&output);
    ck_assert_int_eq(unlink(final_path), 0);

    ck_assert_int_eq(ms_output_file_prepare(&output, final_path, &err), MS_OK);
    ck_assert_int_eq(ms_output_file_create_temp(&output, &err), MS_OK);
    ck_assert_int_eq(mkfifo(final_path, 0600), 0);
    ck_assert_int_eq(ms_output_file_publish(&output, &err), MS_ERR_IO);
    ck_assert(strstr(err.message, "became a FIFO") != NULL);
    ms_output_file_discard(&output);
    struct stat info;
    ck_assert_int_eq(lstat(final_path, &info), 0);
    ck_assert(S_ISFIFO(info.st_mode));
    ck_assert_int_eq(directory_entry_count(), 1);
}
END_TEST

/* A regular file that appeared after the temporary was made: its mode
 * is the one published. */
START_TEST(test_target_appeared_later)
{
    ms_output_file output;
    ms_error err;
    ck_assert_int_eq(ms_output_file_prepare(&output, final_path, &err), MS_OK);
    ck_assert_int_eq(ms_output_file_create_temp(&output, &err), MS_OK);
    write_text(final_path, "someone else's", 0604);
    ck_assert_int_eq(ms_output_file_publish(&output, &err), MS_OK);
    ms_output_file_discard(&output);
    ck_assert_uint_eq(mode_of(final_path), 0604);
    ck_assert_int_eq(directory_entry_count(), 1);
}
END_TEST

/* A name too long to have its temporary beside it; a folder removed after
 * prepare (so even root cannot create the temporary in it). */
START_TEST(test_long_name_and_folder_gone)
{
    ms_output_file output;
    ms_error err;
    char name[NAME_MAX + 8];
    memset(name, 'n', sizeof name);
    snprintf(name + NAME_MAX - 10, 11, "%s", "0123456789");
    char long_path[8600];
    path_in_case(long_path, sizeof long_path, name);
    ck_assert_int_eq(ms_output_file_prepare(&output, long_path, &err), MS_ERR_INVALID_PARAMETER);
    ck_assert_ptr_nonnull(detail_of(&err, "max_name_bytes"));
    ms_output_file_discard(&output);

    char folder[4400], path[4500];
    path_in_case(folder, sizeof folder, "gone");
    ck_assert_int_eq(mkdir(folder, 0700), 0);
    snprintf(path, sizeof path, "%s/out.safetensors", folder);
    ck_assert_int_eq(ms_output_file_prepare(&output, path, &err), MS_OK);
    ck_assert_int_eq(rmdir(folder), 0);
    ck_assert_int_eq(ms_output_file_create_temp(&output, &err), MS_ERR_IO);
    ck_assert_str_eq(detail_of(&err, "errno"), "2"); /* ENOENT */
    ck_assert(strstr(err.message, "create a temporary file in") != NULL);
    ms_output_file_discard(&output);
    ck_assert_int_eq(directory_entry_count(), 0);
}
END_TEST

static Suite *writer_suite(void)
{
    Suite *suite = suite_create("writer");
    TCase *tcase = tcase_create("writer");
    tcase_add_unchecked_fixture(tcase, make_base_dir, remove_base_dir);
    tcase_add_checked_fixture(tcase, setup, NULL);
    tcase_set_timeout(tcase, 60);
    tcase_add_test(tcase, test_round_trip);
    tcase_add_test(tcase, test_reference_order);
    tcase_add_loop_test(tcase, test_header_padding, 0, 8);
    tcase_add_test(tcase, test_hashes);
    tcase_add_test(tcase, test_hashes_without_metadata);
    tcase_add_test(tcase, test_empty_outputs);
    tcase_add_test(tcase, test_nan_refused_leaves_nothing);
    tcase_add_test(tcase, test_refused_tensor_not_written);
    tcase_add_test(tcase, test_abort_leaves_nothing);
    tcase_add_test(tcase, test_output_header_too_large);
    tcase_add_test(tcase, test_source_shrank);
    tcase_add_test(tcase, test_failed_finish_leaves_no_temp);
    tcase_add_test(tcase, test_argument_checks);
    tcase_add_test(tcase, test_write_errors);
    tcase_add_test(tcase, test_many_names);
    tcase_add_test(tcase, test_many_metadata_names);
    tcase_add_test(tcase, test_concurrent_adds);
    tcase_add_test(tcase, test_fifo_target_refused);
    tcase_add_test(tcase, test_link_to_device_refused);
    tcase_add_test(tcase, test_directory_target_refused);
    tcase_add_test(tcase, test_socket_target_refused);
    tcase_add_test(tcase, test_type_names);
    tcase_add_test(tcase, test_link_to_file_replaces_target);
    tcase_add_test(tcase, test_dangling_link);
    tcase_add_test(tcase, test_dangling_link_chain_too_long);
    tcase_add_loop_test(tcase, test_new_file_mode_follows_umask, 0, 3);
    tcase_add_loop_test(tcase, test_existing_file_keeps_mode, 0, 3);
    tcase_add_test(tcase, test_free_bytes);
    tcase_add_test(tcase, test_temporary_lifecycle);
    tcase_add_test(tcase, test_target_changed_later);
    tcase_add_test(tcase, test_target_appeared_later);
    tcase_add_test(tcase, test_long_name_and_folder_gone);
    suite_add_tcase(suite, tcase);
    return suite;
}

int main(void)
{
    return ms_test_run_suite(writer_suite());
}
