/* Validation of the safetensors JSON header.
 *
 * The header is hostile: every field is type-checked, every product and sum
 * is overflow-checked on uint64, and the tensors' byte ranges must tile the
 * data section exactly (no overlap, no hole, nothing trailing), as the
 * reference library requires.  Tensors are checked in name order so the
 * first error reported does not depend on jansson's hash order.
 *
 * Unknown extra fields inside a tensor entry are ignored, as the reference
 * (serde) reader ignores them: refusing them would reject files every other
 * tool reads, and they can't change how we interpret the bytes. */
#include "safetensors_header.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char metadata_key[] = "__metadata__";

/* jansson reports a duplicate key without naming it; its error position is
 * just past the key's closing quote, so walk back to the opening quote
 * (skipping escaped quotes) and decode that JSON string. */
static void duplicate_key_name(const char *text, size_t length, size_t position,
                               char *name, size_t name_size)
{
    name[0] = '\0';
    if (position == 0 || position > length || text[position - 1] != '"')
        return;
    for (size_t start = position - 1; start-- > 0;) {
        if (text[start] != '"')
            continue;
        size_t backslashes = 0;
        while (backslashes < start && text[start - 1 - backslashes] == '\\')
            backslashes++;
        if (backslashes % 2 != 0)
            continue;
        json_t *decoded = json_loadb(text + start, position - start, JSON_DECODE_ANY, NULL);
        if (json_is_string(decoded))
            snprintf(name, name_size, "%s", json_string_value(decoded));
        json_decref(decoded);
        return;
    }
}

static ms_status load_json(const char *text, size_t length, json_t **root, ms_error *err)
{
    json_error_t json_error;
    *root = json_loadb(text, length, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &json_error);
    if (*root != NULL)
        return MS_OK;
    ms_status status;
    switch (json_error_code(&json_error)) {
    case json_error_duplicate_key: {
        char name[256];
        duplicate_key_name(text, length, (size_t)json_error.position, name, sizeof name);
        status = ms_error_set(err, MS_ERR_DUPLICATE_KEY, name, "header has the key \"%s\" twice",
                              name);
        break;
    }
    case json_error_numeric_overflow:
        status = ms_error_set(err, MS_ERR_INTEGER_OVERFLOW, NULL,
                              "header has a number too large for 64 bits: %s", json_error.text);
        break;
    case json_error_out_of_memory:
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory parsing the header");
    default:
        status = ms_error_set(err, MS_ERR_HEADER_NOT_JSON, NULL, "header is not valid JSON: %s",
                              json_error.text);
        break;
    }
    ms_error_detail_add(err, "line", "%d", json_error.line);
    ms_error_detail_add(err, "column", "%d", json_error.column);
    ms_error_detail_add(err, "position", "%d", json_error.position);
    return status;
}

static const char *json_type_name(const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "real";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

static ms_status bad_entry(ms_error *err, const char *name, const char *problem)
{
    return ms_error_set(err, MS_ERR_BAD_TENSOR_ENTRY, name, "tensor \"%s\": %s", name, problem);
}

static ms_status parse_dtype(const char *name, json_t *entry, ms_tensor_info *tensor,
                             ms_error *err)
{
    json_t *dtype = json_object_get(entry, "dtype");
    if (!json_is_string(dtype))
        return bad_entry(err, name, dtype == NULL ? "missing dtype" : "dtype is not a string");
    if (!ms_dtype_from_name(json_string_value(dtype), &tensor->dtype)) {
        ms_error_set(err, MS_ERR_UNSUPPORTED_DTYPE, name, "tensor \"%s\": unknown dtype \"%s\"",
                     name, json_string_value(dtype));
        ms_error_detail_add(err, "dtype", "%s", json_string_value(dtype));
        return MS_ERR_UNSUPPORTED_DTYPE;
    }
    return MS_OK;
}

static ms_status parse_shape(const char *name, json_t *entry, ms_tensor_info *tensor,
                             ms_error *err)
{
    json_t *shape = json_object_get(entry, "shape");
    if (!json_is_array(shape))
        return bad_entry(err, name, shape == NULL ? "missing shape" : "shape is not an array");
    size_t ndim = json_array_size(shape);
    if (ndim > MS_MAX_DIMS) {
        bad_entry(err, name, "shape has too many dimensions");
        ms_error_detail_add(err, "ndim", "%zu", ndim);
        ms_error_detail_add(err, "max_ndim", "%d", MS_MAX_DIMS);
        return MS_ERR_BAD_TENSOR_ENTRY;
    }
    tensor->ndim = (int)ndim;
    uint64_t elements = 1; /* a 0-d tensor holds one element */
    for (size_t i = 0; i < ndim; i++) {
        json_t *dim = json_array_get(shape, i);
        if (!json_is_integer(dim) || json_integer_value(dim) < 0) {
            bad_entry(err, name, "shape entries must be non-negative integers");
            ms_error_detail_add(err, "dimension", "%zu", i);
            if (json_is_integer(dim))
                ms_error_detail_add(err, "value", "%" JSON_INTEGER_FORMAT, json_integer_value(dim));
            else
                ms_error_detail_add(err, "type", "%s", json_type_name(dim));
            return MS_ERR_BAD_TENSOR_ENTRY;
        }
        tensor->shape[i] = json_integer_value(dim);
        if (__builtin_mul_overflow(elements, (uint64_t)tensor->shape[i], &elements)) {
            ms_error_set(err, MS_ERR_INTEGER_OVERFLOW, name,
                         "tensor \"%s\": element count overflows 64 bits", name);
            ms_error_detail_add(err, "dimension", "%zu", i);
            return MS_ERR_INTEGER_OVERFLOW;
        }
    }
    tensor->element_count = elements;
    return MS_OK;
}

static ms_status parse_offsets(const char *name, json_t *entry, uint64_t offsets[2],
                               ms_error *err)
{
    json_t *data_offsets = json_object_get(entry, "data_offsets");
    if (data_offsets == NULL)
        return bad_entry(err, name, "missing data_offsets");
    if (!json_is_array(data_offsets) || json_array_size(data_offsets) != 2)
        return bad_entry(err, name, "data_offsets must be an array of two integers");
    for (size_t i = 0; i < 2; i++) {
        json_t *offset = json_array_get(data_offsets, i);
        if (!json_is_integer(offset) || json_integer_value(offset) < 0)
            return bad_entry(err, name, "data_offsets must be non-negative integers");
        offsets[i] = (uint64_t)json_integer_value(offset);
    }
    return MS_OK;
}

/* Types, sizes and bounds of one tensor; tiling is checked later. */
static ms_status parse_tensor(const char *name, json_t *entry, uint64_t data_size,
                              ms_tensor_info *tensor, ms_error *err)
{
    if (!json_is_object(entry)) {
        bad_entry(err, name, "entry is not an object");
        ms_error_detail_add(err, "type", "%s", json_type_name(entry));
        return MS_ERR_BAD_TENSOR_ENTRY;
    }
    uint64_t offsets[2];
    ms_status status = parse_dtype(name, entry, tensor, err);
    if (status == MS_OK)
        status = parse_shape(name, entry, tensor, err);
    if (status == MS_OK)
        status = parse_offsets(name, entry, offsets, err);
    if (status != MS_OK)
        return status;

    uint64_t expected_bytes;
    if (__builtin_mul_overflow(tensor->element_count, (uint64_t)ms_dtype_size(tensor->dtype),
                               &expected_bytes)) {
        ms_error_set(err, MS_ERR_INTEGER_OVERFLOW, name,
                     "tensor \"%s\": byte size overflows 64 bits", name);
        ms_error_detail_add(err, "element_count", "%" PRIu64, tensor->element_count);
        return MS_ERR_INTEGER_OVERFLOW;
    }
    if (offsets[0] > offsets[1] || offsets[1] > data_size) {
        ms_error_set(err, MS_ERR_OFFSETS_OUT_OF_RANGE, name,
                     "tensor \"%s\": data_offsets [%" PRIu64 ", %" PRIu64
                     "] are not a range inside the %" PRIu64 "-byte data section",
                     name, offsets[0], offsets[1], data_size);
        ms_error_detail_add(err, "begin", "%" PRIu64, offsets[0]);
        ms_error_detail_add(err, "end", "%" PRIu64, offsets[1]);
        ms_error_detail_add(err, "data_size", "%" PRIu64, data_size);
        return MS_ERR_OFFSETS_OUT_OF_RANGE;
    }
    if (offsets[1] - offsets[0] != expected_bytes) {
        ms_error_set(err, MS_ERR_SIZE_MISMATCH, name,
                     "tensor \"%s\": shape and dtype need %" PRIu64 " bytes, data_offsets span %"
                     PRIu64, name, expected_bytes, offsets[1] - offsets[0]);
        ms_error_detail_add(err, "expected_bytes", "%" PRIu64, expected_bytes);
        ms_error_detail_add(err, "actual_bytes", "%" PRIu64, offsets[1] - offsets[0]);
        return MS_ERR_SIZE_MISMATCH;
    }
    tensor->offset = offsets[0];
    tensor->byte_count = expected_bytes;
    return MS_OK;
}

static ms_status parse_metadata(json_t *object, ms_safetensors *file, ms_error *err)
{
    if (!json_is_object(object)) {
        ms_error_set(err, MS_ERR_BAD_METADATA, metadata_key, "__metadata__ is not an object");
        ms_error_detail_add(err, "type", "%s", json_type_name(object));
        return MS_ERR_BAD_METADATA;
    }
    size_t count = json_object_size(object);
    file->metadata = calloc(count ? count : 1, sizeof *file->metadata);
    if (file->metadata == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    const char *name;
    json_t *value;
    json_object_foreach(object, name, value) {
        if (!json_is_string(value)) {
            ms_error_set(err, MS_ERR_BAD_METADATA, name,
                         "__metadata__ value of \"%s\" is not a string", name);
            ms_error_detail_add(err, "type", "%s", json_type_name(value));
            return MS_ERR_BAD_METADATA;
        }
        ms_metadata_entry *entry = &file->metadata[file->metadata_count];
        entry->name = strdup(name);
        entry->value = strdup(json_string_value(value));
        file->metadata_count++;
        if (entry->name == NULL || entry->value == NULL)
            return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    }
    return MS_OK;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int compare_metadata(const void *a, const void *b)
{
    return strcmp(((const ms_metadata_entry *)a)->name, ((const ms_metadata_entry *)b)->name);
}

static int compare_ranges(const void *a, const void *b)
{
    const ms_tensor_info *x = *(const ms_tensor_info *const *)a;
    const ms_tensor_info *y = *(const ms_tensor_info *const *)b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    if (x->byte_count != y->byte_count)
        return x->byte_count < y->byte_count ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* The ranges, sorted by start, must follow each other exactly from 0 to
 * data_size (an empty tensor sits between two others, never inside one). */
static ms_status check_tiling(ms_safetensors *file, uint64_t data_size, ms_error *err)
{
    ms_status status = MS_OK;
    ms_tensor_info **by_offset = malloc((file->tensor_count + 1) * sizeof *by_offset);
    if (by_offset == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    for (size_t i = 0; i < file->tensor_count; i++)
        by_offset[i] = &file->tensors[i];
    qsort(by_offset, file->tensor_count, sizeof *by_offset, compare_ranges);

    uint64_t covered = 0;
    const char *previous = NULL;
    for (size_t i = 0; i < file->tensor_count && status == MS_OK; i++) {
        const ms_tensor_info *tensor = by_offset[i];
        if (tensor->offset < covered) {
            status = ms_error_set(err, MS_ERR_OVERLAPPING_TENSORS, tensor->name,
                                  "tensor \"%s\" starts at %" PRIu64 ", inside \"%s\" (ends at %"
                                  PRIu64 ")", tensor->name, tensor->offset, previous, covered);
            ms_error_detail_add(err, "other_key", "%s", previous);
            ms_error_detail_add(err, "begin", "%" PRIu64, tensor->offset);
            ms_error_detail_add(err, "other_end", "%" PRIu64, covered);
        } else if (tensor->offset > covered) {
            status = ms_error_set(err, MS_ERR_DATA_HOLE, tensor->name,
                                  "bytes %" PRIu64 "..%" PRIu64 " before tensor \"%s\" belong to "
                                  "no tensor", covered, tensor->offset, tensor->name);
            ms_error_detail_add(err, "hole_begin", "%" PRIu64, covered);
            ms_error_detail_add(err, "hole_end", "%" PRIu64, tensor->offset);
        }
        covered = tensor->offset + tensor->byte_count;
        previous = tensor->name;
    }
    if (status == MS_OK && covered != data_size) {
        status = ms_error_set(err, MS_ERR_DATA_HOLE, previous,
                              "the last %" PRIu64 " bytes of the data section belong to no tensor",
                              data_size - covered);
        ms_error_detail_add(err, "hole_begin", "%" PRIu64, covered);
        ms_error_detail_add(err, "hole_end", "%" PRIu64, data_size);
    }
    free(by_offset);
    return status;
}

static ms_status parse_tensors(json_t *root, uint64_t data_size, ms_safetensors *file,
                               ms_error *err)
{
    ms_status status = MS_OK;
    size_t count = json_object_size(root);
    const char **names = malloc((count ? count : 1) * sizeof *names);
    file->tensors = calloc(count ? count : 1, sizeof *file->tensors);
    if (names == NULL || file->tensors == NULL) {
        status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
        goto done;
    }
    size_t name_count = 0;
    const char *name;
    json_t *value;
    json_object_foreach(root, name, value) {
        if (strcmp(name, metadata_key) != 0)
            names[name_count++] = name;
    }
    qsort(names, name_count, sizeof *names, compare_names);
    for (size_t i = 0; i < name_count; i++) {
        ms_tensor_info *tensor = &file->tensors[file->tensor_count];
        status = parse_tensor(names[i], json_object_get(root, names[i]), data_size, tensor, err);
        if (status != MS_OK)
            goto done;
        tensor->name = strdup(names[i]);
        if (tensor->name == NULL) {
            status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
            goto done;
        }
        file->tensor_count++;
    }
    status = check_tiling(file, data_size, err);
done:
    free(names);
    return status;
}

ms_status ms_safetensors_header_parse(const char *text, size_t length, uint64_t data_size,
                                      ms_safetensors *file, ms_error *err)
{
    json_t *root = NULL;
    ms_status status = load_json(text, length, &root, err);
    if (status != MS_OK)
        return status;
    if (!json_is_object(root)) {
        status = ms_error_set(err, MS_ERR_HEADER_NOT_OBJECT, NULL,
                              "header is JSON but not an object");
        ms_error_detail_add(err, "type", "%s", json_type_name(root));
        goto done;
    }
    json_t *metadata = json_object_get(root, metadata_key);
    if (metadata != NULL) {
        status = parse_metadata(metadata, file, err);
        if (status != MS_OK)
            goto done;
        qsort(file->metadata, file->metadata_count, sizeof *file->metadata, compare_metadata);
    }
    status = parse_tensors(root, data_size, file, err);
done:
    json_decref(root);
    if (status != MS_OK)
        ms_safetensors_header_free(file);
    return status;
}

void ms_safetensors_header_free(ms_safetensors *file)
{
    for (size_t i = 0; i < file->tensor_count; i++)
        free(file->tensors[i].name);
    free(file->tensors);
    for (size_t i = 0; i < file->metadata_count; i++) {
        free(file->metadata[i].name);
        free(file->metadata[i].value);
    }
    free(file->metadata);
    file->tensors = NULL;
    file->tensor_count = 0;
    file->metadata = NULL;
    file->metadata_count = 0;
}
