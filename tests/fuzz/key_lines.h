/* Fuzz inputs that name tensors: one line per tensor, "NAME DTYPE DIMS"
 * (DIMS comma-separated, e.g. "lora_unet_x.lora_down.weight F16 4,320"),
 * turned into a safetensors image by our own header builder, so the
 * fuzzer spends its time on key names and shapes rather than on JSON.  A
 * line without a known DTYPE and DIMS is a whole name (an F32 scalar). */
#ifndef MS_FUZZ_KEY_LINES_H
#define MS_FUZZ_KEY_LINES_H

#include <stddef.h>
#include <stdint.h>

#include "core/format/safetensors.h"

typedef struct ms_fuzz_tensor_file {
    unsigned char *bytes;     /* header and zeroed data */
    size_t size;
    ms_safetensors file;      /* parsed from bytes */
} ms_fuzz_tensor_file;

/* Builds and parses the image (the reader must take what the builder
 * wrote: aborts otherwise).  Lines that repeat a name, are not UTF-8, name
 * "__metadata__" or hold too many elements are left out.  False when no
 * line is left. */
bool ms_fuzz_tensor_file_make(const uint8_t *data, size_t size, ms_fuzz_tensor_file *out);

void ms_fuzz_tensor_file_free(ms_fuzz_tensor_file *file);

#endif
