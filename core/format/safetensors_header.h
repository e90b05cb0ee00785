/* Private to the reader: turns the JSON header of a safetensors file into the
 * validated, name-sorted tensor and metadata tables of an ms_safetensors. */
#ifndef MS_SAFETENSORS_HEADER_H
#define MS_SAFETENSORS_HEADER_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "safetensors.h"

/* Parses text[0..length) and checks every tensor against a data section of
 * data_size bytes.  On success fills file->tensors/tensor_count and
 * file->metadata/metadata_count; on failure leaves them empty. */
ms_status ms_safetensors_header_parse(const char *text, size_t length, uint64_t data_size,
                                      ms_safetensors *file, ms_error *err);

/* Frees the tables filled by ms_safetensors_header_parse. */
void ms_safetensors_header_free(ms_safetensors *file);

#endif
