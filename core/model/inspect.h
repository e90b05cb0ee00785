/* What a safetensors file is: a LoRA (which spelling, modules, ranks) or a
 * checkpoint (SD1.x, SD2.x, SDXL), for `mergesvd inspect` and GET /v1/models. */
#ifndef MS_INSPECT_H
#define MS_INSPECT_H

#include <stddef.h>

#include "core/error.h"
#include "core/lora/lora.h"
#include "core/format/safetensors.h"

typedef enum ms_model_kind {
    MS_MODEL_UNKNOWN,
    MS_MODEL_LORA,
    MS_MODEL_CHECKPOINT,
} ms_model_kind;

typedef enum ms_architecture {
    MS_ARCH_UNKNOWN,
    MS_ARCH_SD1,
    MS_ARCH_SD2,
    MS_ARCH_SDXL,
} ms_architecture;

const char *ms_model_kind_name(ms_model_kind kind);          /* "lora", "checkpoint", "unknown" */
const char *ms_architecture_name(ms_architecture arch);      /* "sd1", "sd2", "sdxl", "unknown" */

typedef struct ms_model_summary {
    ms_model_kind kind;
    ms_architecture architecture;
    /* LoRA only */
    ms_lora_spelling spelling;
    size_t module_count;
    size_t conv_module_count;
    int rank_min;
    int rank_max;
    size_t passthrough_count;
} ms_model_summary;

/* Classifies an open file.  A file whose LoRA modules are malformed is
 * reported as that error (so inspect shows it); otherwise never fails. */
ms_status ms_inspect_model(const ms_safetensors *file, ms_model_summary *summary,
                           ms_error *err);

#endif
