/* Finding LoRA modules in a safetensors file.
 *
 * A module NAME is a pair of tensors in one of three spellings, with or
 * without a trailing ".weight":
 *   kohya:   NAME.lora_down[.weight]  NAME.lora_up[.weight]
 *   peft:    NAME.lora_A[.weight]     NAME.lora_B[.weight]   (A is down)
 *   control: NAME.down[.weight]       NAME.up[.weight]
 * plus an optional scalar NAME.alpha (missing: alpha = rank).
 * down is [r, in] or [r, in, kh, kw]; up is [out, r] or [out, r, 1, 1]. */
#ifndef MS_LORA_H
#define MS_LORA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/format/safetensors.h"

typedef enum ms_lora_spelling {
    MS_LORA_SPELLING_KOHYA,
    MS_LORA_SPELLING_PEFT,
    MS_LORA_SPELLING_CONTROL,
} ms_lora_spelling;

const char *ms_lora_spelling_name(ms_lora_spelling spelling); /* "kohya", "peft", "control" */

typedef struct ms_lora_module {
    char *name;                    /* NAME, without the suffixes */
    ms_lora_spelling spelling;
    const ms_tensor_info *down;
    const ms_tensor_info *up;
    const ms_tensor_info *alpha;   /* NULL when absent */
    int rank;                      /* r */
    int64_t out_features;          /* up rows */
    int64_t in_features;           /* down columns after flattening in*kh*kw */
    bool is_conv;                  /* 4-D tensors (1x1 included) */
    int64_t kernel_h, kernel_w;    /* 1 for linear */
} ms_lora_module;

typedef struct ms_lora_module_list {
    size_t count;
    ms_lora_module *modules;       /* sorted by name */
    /* Tensors that belong to no complete module, copied unchanged. */
    size_t passthrough_count;
    const ms_tensor_info **passthrough;
} ms_lora_module_list;

/* Groups the file's tensors into modules and checks each module's shapes:
 * rank_mismatch when down and up disagree on r, shape_mismatch for shapes
 * that do not fit (wrong ndim, up not [out, r, 1, 1], alpha not a scalar
 * float), each error naming the module's tensor key.  A down without an up
 * (or the reverse) is not an error: those tensors are passthrough. */
ms_status ms_lora_find_modules(const ms_safetensors *file, ms_lora_module_list *list,
                               ms_error *err);

void ms_lora_module_list_free(ms_lora_module_list *list);

/* Alpha as a double (rank when absent).  Refuses NaN/Inf. */
ms_status ms_lora_module_alpha(const ms_safetensors *file, const ms_lora_module *module,
                               double *alpha, ms_error *err);

#endif
