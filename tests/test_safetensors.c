/* safetensors reader: one malformed image per error code (each asserting the
 * exact code and key), valid corner cases, and real files on disk. */
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/format/mapped_read.h"
#include "core/format/safetensors.h"
#include "check_support.h"

/* 8-byte little-endian length, header, then data_size bytes 0,1,2,... */
static unsigned char *make_image(const char *header, size_t data_size, size_t *size)
{
    size_t header_length = strlen(header);
    *size = 8 + header_length + data_size;
    unsigned char *image = malloc(*size);
    ck_assert_ptr_nonnull(image);
    for (int i = 0; i < 8; i++)
        image[i] = (unsigned char)((uint64_t)header_length >> (8 * i));
    memcpy(image + 8, header, header_length);
    for (size_t i = 0; i < data_size; i++)
        image[8 + header_length + i] = (unsigned char)i;
    return image;
}

static const char *detail(const ms_error *err, const char *name)
{
    for (int i = 0; i < err->detail_count; i++)
        if (strcmp(err->details[i].name, name) == 0)
            return err->details[i].value;
    return NULL;
}

typedef struct malformed_case {
    const char *header;
    size_t data_size;
    ms_status code;
    const char *key; /* expected err.key */
} malformed_case;

#define T(name, body) "\"" name "\":" body
static const malformed_case malformed[] = {
    /* not JSON: truncated, trailing garbage, invalid UTF-8, empty */
    {"{\"a\":", 0, MS_ERR_HEADER_NOT_JSON, ""},
    {"{} x", 0, MS_ERR_HEADER_NOT_JSON, ""},
    {"{\"\xff\":1}", 0, MS_ERR_HEADER_NOT_JSON, ""},
    {"", 0, MS_ERR_HEADER_NOT_JSON, ""},
    /* JSON, not an object */
    {"[]", 0, MS_ERR_HEADER_NOT_OBJECT, ""},
    {"\"text\"", 0, MS_ERR_HEADER_NOT_OBJECT, ""},
    {"3", 0, MS_ERR_HEADER_NOT_OBJECT, ""},
    /* duplicates, named even with escapes in the key */
    {"{" T("a", "{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}") ","
     T("a", "{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}") "}",
     2, MS_ERR_DUPLICATE_KEY, "a"},
    {"{" T("x\\\"y", "1") "," T("x\\\"y", "2") "}", 0, MS_ERR_DUPLICATE_KEY, "x\"y"},
    {"{" T("a", "{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}") "}",
     1, MS_ERR_DUPLICATE_KEY, "dtype"},
    /* bad tensor entries */
    {"{" T("w", "3") "}", 0, MS_ERR_BAD_TENSOR_ENTRY, "w"},
    {"{" T("w", "{\"shape\":[1],\"data_offsets\":[0,1]}") "}", 1, MS_ERR_BAD_TENSOR_ENTRY, "w"},
    {"{" T("w", "{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,1]}") "}", 1,
     MS_ERR_BAD_TENSOR_ENTRY, "w"},
    {"{" T("w", "{\"dtype\":\"U8\",\"data_offsets\":[0,1]}") "}", 1, MS_ERR_BAD_TENSOR_ENTRY, "w"},
    {"{" T("w", "{\"dtype\":\"U8\",\"shape\":1,\"data_offsets\":[0,1]}") "}", 1,
     MS_ERR_BAD_TENSOR_ENTRY, "w"},
    {"{" T("w", "{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}") "}", 1,
     MS_ERR_BAD_TENSOR_ENTRY, "w"},
    {"{" T("w", "{\"dtype\":\"U8\",\"shape\":[1.0],\"data_offsets\":[0,1]}") "}", 1,
     MS_ERR_BAD_TENSOR_ENTRY, "w"},
    {"{" T("w", "{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}") "}", 1,
     MS_ERR_BAD_TENSOR_ENTRY, "w"},
    {"{" T("w", "{\"dtype\":\"U8\",\"shape\":[1]}") "}", 1, MS_ERR_BAD_TENSOR_ENTRY, "w"},
    {"{" T("w", "{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}") "}", 1,
     MS_ERR_BAD_TENSOR_ENTRY, "w"},
    {"{" T("w", "{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}") "}", 1,
     MS_ERR_BAD_TENSOR_ENTRY, "w"},
    {"{" T("w", "{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":\"0,1\"}") "}", 1,
     MS_ERR_BAD_TENSOR_ENTRY, "w"},
    /* dtype strings safetensors does not define (spelling is case-sensitive) */
    {"{" T("w", "{\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,1]}") "}", 1,
     MS_ERR_UNSUPPORTED_DTYPE, "w"},
    {"{" T("w", "{\"dtype\":\"f16\",\"shape\":[1],\"data_offsets\":[0,2]}") "}", 2,
     MS_ERR_UNSUPPORTED_DTYPE, "w"},
    /* shape x dtype size != byte range */
    {"{" T("w", "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}") "}", 4,
     MS_ERR_SIZE_MISMATCH, "w"},
    {"{" T("w", "{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,0]}") "}", 0,
     MS_ERR_SIZE_MISMATCH, "w"},
    /* ranges outside the data section or reversed */
    {"{" T("w", "{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":[0,16]}") "}", 8,
     MS_ERR_OFFSETS_OUT_OF_RANGE, "w"},
    {"{" T("w", "{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,4]}") "}", 8,
     MS_ERR_OFFSETS_OUT_OF_RANGE, "w"},
    /* overlaps, including an empty tensor inside another */
    {"{" T("a", "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}") ","
     T("b", "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}") "}",
     12, MS_ERR_OVERLAPPING_TENSORS, "b"},
    {"{" T("a", "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}") ","
     T("b", "{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}") "}",
     8, MS_ERR_OVERLAPPING_TENSORS, "b"},
    /* holes: in the middle, at the start, trailing, data without tensors */
    {"{" T("a", "{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}") ","
     T("b", "{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[8,12]}") "}",
     12, MS_ERR_DATA_HOLE, "b"},
    {"{" T("a", "{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}") "}", 8,
     MS_ERR_DATA_HOLE, "a"},
    {"{" T("a", "{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}") "}", 8,
     MS_ERR_DATA_HOLE, "a"},
    {"{}", 4, MS_ERR_DATA_HOLE, ""},
    /* metadata */
    {"{" T("__metadata__", "\"x\"") "}", 0, MS_ERR_BAD_METADATA, "__metadata__"},
    {"{" T("__metadata__", "[]") "}", 0, MS_ERR_BAD_METADATA, "__metadata__"},
    {"{" T("__metadata__", "{\"ok\":\"1\",\"epochs\":3}") "}", 0, MS_ERR_BAD_METADATA, "epochs"},
    {"{" T("__metadata__", "{\"n\":null}") "}", 0, MS_ERR_BAD_METADATA, "n"},
    /* overflow in the element count, the byte count, and a number past int64 */
    {"{" T("w", "{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}") "}",
     0, MS_ERR_INTEGER_OVERFLOW, "w"},
    {"{" T("w", "{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]}") "}",
     0, MS_ERR_INTEGER_OVERFLOW, "w"},
    {"{" T("w", "{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,18446744073709551616]}") "}",
     1, MS_ERR_INTEGER_OVERFLOW, ""},
};

START_TEST(test_malformed_image)
{
    const malformed_case *test = &malformed[_i];
    size_t size;
    unsigned char *image = make_image(test->header, test->data_size, &size);
    ms_safetensors file;
    ms_error err;
    ms_error_clear(&err);
    ms_status status = ms_safetensors_parse(image, size, &file, &err);
    ck_assert_msg(status == test->code, "case %d (%s): got %s (%s), want %s", _i, test->header,
                  ms_status_name(status), err.message, ms_status_name(test->code));
    ck_assert_int_eq(err.code, test->code);
    ck_assert_msg(strcmp(err.key, test->key) == 0, "case %d: key \"%s\", want \"%s\"", _i,
                  err.key, test->key);
    ck_assert(err.message[0] != '\0');
    ck_assert_uint_eq(file.tensor_count, 0);
    ck_assert_ptr_null(file.tensors);
    ck_assert_int_eq(file.fd, -1);
    free(image);
}
END_TEST

START_TEST(test_framing_errors)
{
    ms_safetensors file;
    ms_error err;
    unsigned char image[64] = {0};
    for (uint64_t size = 0; size < 8; size++) {
        ck_assert_int_eq(ms_safetensors_parse(image, size, &file, &err), MS_ERR_FILE_TOO_SMALL);
        char expected[2] = {(char)('0' + size), '\0'};
        ck_assert_str_eq(detail(&err, "file_size"), expected);
    }
    /* header length one past the end of the file */
    image[0] = 57;
    memcpy(image + 8, "{}", 2);
    ck_assert_int_eq(ms_safetensors_parse(image, 64, &file, &err), MS_ERR_HEADER_TOO_LARGE);
    ck_assert_str_eq(detail(&err, "header_length"), "57");
    /* an absurd length must not wrap around */
    memset(image, 0xff, 8);
    ck_assert_int_eq(ms_safetensors_parse(image, 64, &file, &err), MS_ERR_HEADER_TOO_LARGE);
    /* exactly fitting is fine: "{}" plus spaces, no data */
    memset(image, 0, 8);
    image[0] = 56;
    memset(image + 8, ' ', 56);
    memcpy(image + 8, "{}", 2);
    ck_assert_int_eq(ms_safetensors_parse(image, 64, &file, &err), MS_OK);
    ck_assert_uint_eq(file.data_size, 0);
    ms_safetensors_close(&file);
}
END_TEST

START_TEST(test_valid_images)
{
    static const char header[] =
        "{" T("__metadata__", "{\"zeta\":\"last\",\"alpha\":\"first\",\"format\":\"pt\"}") ","
        T("scalar", "{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}") ","
        T("empty", "{\"dtype\":\"F16\",\"shape\":[3,0],\"data_offsets\":[4,4],\"extra\":1}") ","
        T("half", "{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[4,12]}") ","
        T("bf", "{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[12,16]}") ","
        T("ints", "{\"dtype\":\"I32\",\"shape\":[1,1],\"data_offsets\":[16,20]}") ","
        T("double", "{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[20,28]}") ","
        T("tail", "{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[28,28]}") "}";
    size_t size;
    unsigned char *image = make_image(header, 28, &size);
    unsigned char *data = image + 8 + strlen(header);
    const float scalar = 1.5f;
    const uint16_t halves[4] = {0x3c00, 0xc000, 0x3555, 0x0001};
    const uint16_t bfloats[2] = {0x3f80, 0xc0a0};
    const double value = -0.1;
    memcpy(data, &scalar, 4);
    memcpy(data + 4, halves, 8);
    memcpy(data + 12, bfloats, 4);
    memcpy(data + 20, &value, 8);

    ms_safetensors file;
    ms_error err;
    ck_assert_int_eq(ms_safetensors_parse(image, size, &file, &err), MS_OK);
    ck_assert_uint_eq(file.tensor_count, 7);
    for (size_t i = 1; i < file.tensor_count; i++)
        ck_assert(strcmp(file.tensors[i - 1].name, file.tensors[i].name) < 0);
    ck_assert_uint_eq(file.metadata_count, 3);
    ck_assert_str_eq(file.metadata[0].name, "alpha");
    ck_assert_str_eq(ms_safetensors_metadata_get(&file, "zeta"), "last");
    ck_assert_str_eq(ms_safetensors_metadata_get(&file, "format"), "pt");
    ck_assert_ptr_null(ms_safetensors_metadata_get(&file, "missing"));

    const ms_tensor_info *t = ms_safetensors_find(&file, "scalar");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->ndim, 0);
    ck_assert_uint_eq(t->element_count, 1);
    double out[4];
    ck_assert_int_eq(ms_safetensors_read_doubles(&file, t, out, &err), MS_OK);
    ck_assert(out[0] == 1.5);

    t = ms_safetensors_find(&file, "empty");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->dtype, MS_DTYPE_F16);
    ck_assert_int_eq(t->ndim, 2);
    ck_assert_int_eq(t->shape[0], 3);
    ck_assert_uint_eq(t->element_count, 0);
    ck_assert_uint_eq(t->byte_count, 0);
    ck_assert_int_eq(ms_safetensors_read_doubles(&file, t, out, &err), MS_OK);

    t = ms_safetensors_find(&file, "half");
    ck_assert_ptr_eq(ms_safetensors_tensor_bytes(&file, t), data + 4);
    ck_assert_int_eq(ms_safetensors_read_doubles(&file, t, out, &err), MS_OK);
    ck_assert(out[0] == 1.0 && out[1] == -2.0 && out[2] == 0x1.554p-2 && out[3] == 0x1p-24);

    t = ms_safetensors_find(&file, "bf");
    ck_assert_int_eq(ms_safetensors_read_doubles(&file, t, out, &err), MS_OK);
    ck_assert(out[0] == 1.0 && out[1] == -5.0);

    t = ms_safetensors_find(&file, "double");
    ck_assert_int_eq(ms_safetensors_read_doubles(&file, t, out, &err), MS_OK);
    ck_assert(out[0] == -0.1);

    t = ms_safetensors_find(&file, "ints");
    ck_assert_int_eq(ms_safetensors_read_doubles(&file, t, out, &err), MS_ERR_UNSUPPORTED_DTYPE);
    ck_assert_str_eq(err.key, "ints");

    ck_assert_ptr_nonnull(ms_safetensors_find(&file, "tail"));
    ck_assert_ptr_null(ms_safetensors_find(&file, "absent"));
    ck_assert_ptr_null(ms_safetensors_find(&file, ""));
    ms_safetensors_close(&file);
    ms_safetensors_close(&file); /* closing twice is harmless */
    free(image);
}
END_TEST

START_TEST(test_empty_header)
{
    size_t size;
    unsigned char *image = make_image("{}", 0, &size);
    ms_safetensors file;
    ms_error err;
    ck_assert_int_eq(ms_safetensors_parse(image, size, &file, &err), MS_OK);
    ck_assert_uint_eq(file.tensor_count, 0);
    ck_assert_uint_eq(file.metadata_count, 0);
    ck_assert_ptr_null(ms_safetensors_find(&file, "x"));
    ms_safetensors_close(&file);
    free(image);
}
END_TEST

START_TEST(test_read_doubles_refuses_non_finite)
{
    static const char header[] =
        "{" T("h", "{\"dtype\":\"F16\",\"shape\":[5],\"data_offsets\":[0,10]}") ","
        T("f", "{\"dtype\":\"F32\",\"shape\":[20000],\"data_offsets\":[10,80010]}") "}";
    size_t size;
    unsigned char *image = make_image(header, 80010, &size);
    unsigned char *data = image + 8 + strlen(header);
    const uint16_t halves[5] = {0x3c00, 0x3c00, 0x3c00, 0x7e00, 0x7c00};
    memcpy(data, halves, sizeof halves);
    float *floats = malloc(20000 * sizeof *floats);
    for (int i = 0; i < 20000; i++)
        floats[i] = (float)i;
    floats[17000] = -INFINITY; /* past the first conversion chunk */
    memcpy(data + 10, floats, 80000);

    ms_safetensors file;
    ms_error err;
    ck_assert_int_eq(ms_safetensors_parse(image, size, &file, &err), MS_OK);
    double *values = malloc(20000 * sizeof *values);
    ck_assert_int_eq(ms_safetensors_read_doubles(&file, ms_safetensors_find(&file, "h"), values,
                                                 &err), MS_ERR_NAN_DETECTED);
    ck_assert_str_eq(err.key, "h");
    ck_assert_str_eq(detail(&err, "index"), "3");
    ck_assert_int_eq(ms_safetensors_read_doubles(&file, ms_safetensors_find(&file, "f"), values,
                                                 &err), MS_ERR_NAN_DETECTED);
    ck_assert_str_eq(err.key, "f");
    ck_assert_str_eq(detail(&err, "index"), "17000");
    /* the bounded-memory check finds the same elements */
    ck_assert_int_eq(ms_safetensors_check_finite(&file, ms_safetensors_find(&file, "h"), &err),
                     MS_ERR_NAN_DETECTED);
    ck_assert_str_eq(detail(&err, "index"), "3");
    ck_assert_int_eq(ms_safetensors_check_finite(&file, ms_safetensors_find(&file, "f"), &err),
                     MS_ERR_NAN_DETECTED);
    ck_assert_str_eq(detail(&err, "index"), "17000");
    floats[17000] = 5.0f;
    memcpy(data + 10, floats, 80000);
    ck_assert_int_eq(ms_safetensors_check_finite(&file, ms_safetensors_find(&file, "f"), &err),
                     MS_OK);
    ms_safetensors_close(&file);
    free(values);
    free(floats);
    free(image);
}
END_TEST

/* Made and removed by the parent process (unchecked fixture), so a failing
 * test leaves nothing behind. */
static char *temp_dir;

static void make_temp_dir(void)
{
    temp_dir = ms_test_make_temp_dir("test_safetensors");
    ck_assert_ptr_nonnull(temp_dir);
}

static void remove_temp_dir(void)
{
    ms_test_remove_tree(temp_dir);
    free(temp_dir);
    temp_dir = NULL;
}

static void write_file(const char *path, const unsigned char *bytes, size_t size)
{
    FILE *stream = fopen(path, "wb");
    ck_assert_ptr_nonnull(stream);
    ck_assert_uint_eq(fwrite(bytes, 1, size, stream), size);
    ck_assert_int_eq(fclose(stream), 0);
}

START_TEST(test_files_on_disk)
{
    char path[4200];
    ms_safetensors file;
    ms_error err;

    size_t size;
    unsigned char *image = make_image(
        "{" T("w", "{\"dtype\":\"U8\",\"shape\":[2,3],\"data_offsets\":[0,6]}") "}", 6, &size);
    snprintf(path, sizeof path, "%s/good.safetensors", temp_dir);
    write_file(path, image, size);
    ck_assert_int_eq(ms_safetensors_open(path, &file, &err), MS_OK);
    ck_assert_int_ge(file.fd, 0);
    const ms_tensor_info *t = ms_safetensors_find(&file, "w");
    ck_assert_ptr_nonnull(t);
    ck_assert(memcmp(ms_safetensors_tensor_bytes(&file, t), image + size - 6, 6) == 0);
    ms_safetensors_close(&file);
    ck_assert_int_eq(file.fd, -1);
    ck_assert_int_eq(unlink(path), 0);
    free(image);

    snprintf(path, sizeof path, "%s/missing.safetensors", temp_dir);
    ck_assert_int_eq(ms_safetensors_open(path, &file, &err), MS_ERR_NOT_FOUND);
    ck_assert_int_eq(ms_safetensors_open(temp_dir, &file, &err), MS_ERR_INVALID_PARAMETER);
    ck_assert(strstr(err.message, "directory") != NULL);

    snprintf(path, sizeof path, "%s/empty.safetensors", temp_dir);
    write_file(path, (const unsigned char *)"", 0);
    ck_assert_int_eq(ms_safetensors_open(path, &file, &err), MS_ERR_FILE_TOO_SMALL);
    ck_assert_int_eq(unlink(path), 0);

    /* A sparse file just past the 100 MB header limit: the length fits the
     * file, yet must be refused before jansson sees 100 MB of zeros. */
    snprintf(path, sizeof path, "%s/huge.safetensors", temp_dir);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    uint64_t length = MS_MAX_HEADER_BYTES + 1;
    unsigned char prefix[8];
    for (int i = 0; i < 8; i++)
        prefix[i] = (unsigned char)(length >> (8 * i));
    ck_assert_int_eq(write(fd, prefix, 8), 8);
    ck_assert_int_eq(ftruncate(fd, (off_t)(8 + length + 16)), 0);
    ck_assert_int_eq(close(fd), 0);
    /* ... and before its 100 MB are read: a claimed length past the limit
     * once cost a read of as much of the file (an 8 GB file, 8 GB).  Paging
     * in 100 MB takes hundreds of faults even with fault-around. */
    struct rusage before, after;
    ck_assert_int_eq(getrusage(RUSAGE_SELF, &before), 0);
    ck_assert_int_eq(ms_safetensors_open(path, &file, &err), MS_ERR_HEADER_TOO_LARGE);
    ck_assert_int_eq(getrusage(RUSAGE_SELF, &after), 0);
    ck_assert_int_lt(after.ru_minflt - before.ru_minflt, 100);   /* 1 now, 455 before */
    ck_assert_str_eq(detail(&err, "header_length"), "100000001");
    ck_assert_int_eq(unlink(path), 0);
}
END_TEST

/* A file cut short while mapped (a model replaced under a running job): the
 * read fails with io_error, reason file_shrank, instead of a SIGBUS that
 * would kill the process; reads that stay inside the file still work. */
START_TEST(test_file_shrinks_while_mapped)
{
    static const char header[] =
        "{" T("a", "{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}") ","
        T("b", "{\"dtype\":\"F32\",\"shape\":[65536],\"data_offsets\":[16,262160]}") "}";
    size_t size;
    unsigned char *image = make_image(header, 262160, &size);
    unsigned char *data = image + 8 + strlen(header);
    for (size_t i = 0; i < 262160 / 4; i++) {
        float value = (float)(i % 100);
        memcpy(data + 4 * i, &value, 4);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/shrinking.safetensors", temp_dir);
    write_file(path, image, size);
    ms_safetensors file;
    ms_error err;
    ck_assert_int_eq(ms_safetensors_open(path, &file, &err), MS_OK);
    ck_assert_int_eq(truncate(path, 8192), 0);   /* "a" stays inside, most of "b" does not */
    double values[65536];
    ck_assert_int_eq(ms_safetensors_read_doubles(&file, ms_safetensors_find(&file, "a"), values,
                                                 &err), MS_OK);
    ck_assert(values[1] == 1.0);
    ck_assert_int_eq(ms_safetensors_read_doubles(&file, ms_safetensors_find(&file, "b"), values,
                                                 &err), MS_ERR_IO);
    ck_assert_str_eq(err.key, "b");
    ck_assert_str_eq(detail(&err, "reason"), "file_shrank");
    ck_assert(strstr(err.message, "shorter") != NULL);
    /* the guard is left: the next read of a whole tensor still works */
    ck_assert_int_eq(ms_safetensors_read_doubles(&file, ms_safetensors_find(&file, "a"), values,
                                                 &err), MS_OK);
    ms_safetensors_close(&file);
    ck_assert_int_eq(unlink(path), 0);
    free(image);
}
END_TEST

/* Outside a guarded read a SIGBUS still ends the process (the handler passes
 * it on to the disposition it replaced: the default, or a sanitizer's; under
 * AddressSanitizer the child's "BUS" report in this test's log is expected). */
START_TEST(test_unguarded_fault_still_fatal)
{
    unsigned char byte = 1;
    ck_assert(ms_mapped_touch(&byte, 1));   /* the handler is installed now */
    char path[4200];
    snprintf(path, sizeof path, "%s/unguarded.bin", temp_dir);
    unsigned char page[8192];
    memset(page, 7, sizeof page);
    write_file(path, page, sizeof page);
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    const volatile unsigned char *map = mmap(NULL, sizeof page, PROT_READ, MAP_PRIVATE, fd, 0);
    ck_assert(map != MAP_FAILED);
    ck_assert_int_eq(truncate(path, 0), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        unsigned char value = map[5000];   /* past the end now: SIGBUS */
        (void)value;
        _exit(0);                          /* must not get here */
    }
    int status = 0;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert_msg(!(WIFEXITED(status) && WEXITSTATUS(status) == 0),
                  "the child read past the end of its file and went on");
    munmap((void *)map, sizeof page);
    close(fd);
    ck_assert_int_eq(unlink(path), 0);
}
END_TEST

static Suite *safetensors_suite(void)
{
    Suite *suite = suite_create("safetensors");
    TCase *tcase = tcase_create("reader");
    tcase_add_loop_test(tcase, test_malformed_image, 0,
                        (int)(sizeof malformed / sizeof malformed[0]));
    tcase_add_test(tcase, test_framing_errors);
    tcase_add_test(tcase, test_valid_images);
    tcase_add_test(tcase, test_empty_header);
    tcase_add_test(tcase, test_read_doubles_refuses_non_finite);
    tcase_add_unchecked_fixture(tcase, make_temp_dir, remove_temp_dir);
    tcase_add_test(tcase, test_files_on_disk);
    tcase_add_test(tcase, test_file_shrinks_while_mapped);
    tcase_add_test(tcase, test_unguarded_fault_still_fatal);
    suite_add_tcase(suite, tcase);
    return suite;
}

int main(void)
{
    return ms_test_run_suite(safetensors_suite());
}
