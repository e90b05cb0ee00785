/* The safetensors reader on any bytes: framing, the JSON header, every
 * tensor entry, the tiling of the data section.  What it accepts must keep
 * its promises (safetensors.h): every tensor lies inside the data section
 * with the bytes its shape and dtype need, the tables are sorted and found
 * by name, and float tensors convert (or refuse NaN/Inf) without reading
 * outside the input. */
#include "fuzz.h"

#include <string.h>

#include "core/format/safetensors.h"

/* Converting more costs time, not coverage. */
enum { CONVERTED_ELEMENTS_MAX = 4096 };

static void check_tensor(const ms_safetensors *file, const ms_tensor_info *tensor)
{
    MS_FUZZ_CHECK(tensor->offset <= file->data_size);
    MS_FUZZ_CHECK(tensor->byte_count <= file->data_size - tensor->offset);
    MS_FUZZ_CHECK(tensor->byte_count == tensor->element_count * ms_dtype_size(tensor->dtype));
    MS_FUZZ_CHECK(tensor->ndim >= 0 && tensor->ndim <= MS_MAX_DIMS);
    MS_FUZZ_CHECK(ms_safetensors_find(file, tensor->name) == tensor);
    if (!ms_dtype_is_float(tensor->dtype) || tensor->element_count > CONVERTED_ELEMENTS_MAX)
        return;
    double *values = malloc((tensor->element_count + 1) * sizeof *values);
    if (values == NULL)
        return;
    ms_error err;
    ms_status read = ms_safetensors_read_doubles(file, tensor, values, &err);
    ms_status checked = ms_safetensors_check_finite(file, tensor, &err);
    MS_FUZZ_CHECK(read == checked);
    MS_FUZZ_CHECK(read == MS_OK || read == MS_ERR_NAN_DETECTED);
    free(values);
}

static void check_file(const ms_safetensors *file, size_t size)
{
    MS_FUZZ_CHECK(8 + file->header_length + file->data_size == size);
    for (size_t i = 0; i < file->tensor_count; i++) {
        if (i > 0)
            MS_FUZZ_CHECK(strcmp(file->tensors[i - 1].name, file->tensors[i].name) < 0);
        check_tensor(file, &file->tensors[i]);
    }
    for (size_t i = 0; i < file->metadata_count; i++) {
        const ms_metadata_entry *entry = &file->metadata[i];
        MS_FUZZ_CHECK(ms_safetensors_metadata_get(file, entry->name) == entry->value);
    }
    MS_FUZZ_CHECK(ms_safetensors_find(file, "__metadata__") == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ms_safetensors file;
    ms_error err;
    ms_status status = ms_safetensors_parse(data, size, &file, &err);
    if (status == MS_OK)
        check_file(&file, size);
    else {
        MS_FUZZ_CHECK(file.tensor_count == 0 && file.tensors == NULL && file.metadata == NULL);
        MS_FUZZ_CHECK(err.code == status);
        ms_fuzz_check_error(&err);
    }
    ms_safetensors_close(&file);
    return 0;
}
