#include "header_build.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static json_t *metadata_object(const ms_metadata_entry *metadata, size_t count)
{
    json_t *object = json_object();
    for (size_t i = 0; i < count && object != NULL; i++) {
        if (json_object_set_new(object, metadata[i].name, json_string(metadata[i].value)) != 0) {
            json_decref(object);
            object = NULL;
        }
    }
    return object;
}

static json_t *tensor_object(const ms_header_tensor *tensor, uint64_t begin)
{
    json_t *shape = json_array();
    json_t *offsets = json_array();
    json_t *object = json_object();
    bool ok = shape != NULL && offsets != NULL && object != NULL;
    for (int i = 0; i < tensor->ndim && ok; i++)
        ok = json_array_append_new(shape, json_integer(tensor->shape[i])) == 0;
    ok = ok && json_array_append_new(offsets, json_integer((json_int_t)begin)) == 0;
    ok = ok && json_array_append_new(offsets,
                                     json_integer((json_int_t)(begin + tensor->byte_count))) == 0;
    ok = ok && json_object_set_new(object, "dtype", json_string(ms_dtype_name(tensor->dtype))) == 0;
    ok = ok && json_object_set(object, "shape", shape) == 0;
    ok = ok && json_object_set(object, "data_offsets", offsets) == 0;
    json_decref(shape);
    json_decref(offsets);
    if (!ok) {
        json_decref(object);
        return NULL;
    }
    return object;
}

static ms_status build(const ms_header_tensor *tensors, size_t count,
                       const ms_metadata_entry *metadata, size_t metadata_count,
                       bool metadata_when_empty, unsigned char **header, size_t *header_bytes,
                       ms_error *err)
{
    ms_status status = MS_OK;
    char *text = NULL;
    *header = NULL;
    *header_bytes = 0;
    json_t *root = json_object();
    bool ok = root != NULL;
    /* json_object_set_new fails (and frees nothing to leak) when the value is NULL. */
    if (ok && (metadata_count > 0 || metadata_when_empty))
        ok = json_object_set_new(root, "__metadata__", metadata_object(metadata, metadata_count)) == 0;
    uint64_t begin = 0;
    for (size_t i = 0; i < count && ok; i++) {
        ok = json_object_set_new(root, tensors[i].name, tensor_object(&tensors[i], begin)) == 0;
        begin += tensors[i].byte_count;
    }
    if (ok)
        text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text == NULL) {
        status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory building the header");
        goto done;
    }
    size_t length = strlen(text);
    size_t padded = (length + 7) & ~(size_t)7;
    if (padded > MS_MAX_HEADER_BYTES) {
        /* the output's, not an input's: mostly metadata carried over */
        status = ms_error_set(err, MS_ERR_HEADER_TOO_LARGE, NULL,
                              "the output's header would be %zu bytes, over the %u-byte limit "
                              "(its metadata: %zu entries)", padded, MS_MAX_HEADER_BYTES,
                              metadata_count);
        ms_error_detail_add(err, "output_header_bytes", "%zu", padded);
        ms_error_detail_add(err, "limit", "%u", MS_MAX_HEADER_BYTES);
        goto done;
    }
    *header = malloc(8 + padded);
    if (*header == NULL) {
        status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
        goto done;
    }
    for (int i = 0; i < 8; i++)
        (*header)[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(*header + 8, text, length);
    memset(*header + 8 + length, ' ', padded - length);
    *header_bytes = 8 + padded;
done:
    free(text);
    json_decref(root);
    return status;
}

ms_status ms_header_build(const ms_header_tensor *tensors, size_t count,
                          const ms_metadata_entry *metadata, size_t metadata_count,
                          unsigned char **header, size_t *header_bytes, ms_error *err)
{
    return build(tensors, count, metadata, metadata_count, false, header, header_bytes, err);
}

ms_status ms_header_build_with_metadata_object(const ms_header_tensor *tensors, size_t count,
                                               const ms_metadata_entry *metadata,
                                               size_t metadata_count, unsigned char **header,
                                               size_t *header_bytes, ms_error *err)
{
    return build(tensors, count, metadata, metadata_count, true, header, header_bytes, err);
}
