/* Synthetic LoRA files with the real module names and shapes of SD1.5 and
 * SDXL kohya LoRAs, for tests, the sample models and the benchmarks. */
#ifndef MS_LORA_GENERATOR_H
#define MS_LORA_GENERATOR_H

#include <stdbool.h>
#include <stdint.h>

#include "core/format/dtype.h"
#include "core/error.h"

typedef enum gen_lora_arch {
    GEN_LORA_SD15,
    GEN_LORA_SDXL,
} gen_lora_arch;

typedef enum gen_lora_spelling {
    GEN_LORA_KOHYA,
    GEN_LORA_PEFT,
    GEN_LORA_CONTROL,
    GEN_LORA_MIXED,   /* all three, some modules without .weight or alpha */
} gen_lora_spelling;

typedef struct gen_lora_options {
    gen_lora_arch arch;
    int rank;
    bool full_size;           /* false: every feature width divided by 8 */
    ms_dtype dtype;           /* F16, BF16 or F32 */
    bool conv;                /* add LoCon 3x3 modules */
    gen_lora_spelling spelling;
    uint64_t seed;
    bool zero_module;         /* the first module is all zeros */
} gen_lora_options;

void gen_lora_options_init(gen_lora_options *options);

/* Writes the LoRA to path (atomically, through ms_writer); module_count
 * (may be NULL) receives the number of modules written. */
ms_status gen_lora_write(const gen_lora_options *options, const char *path,
                         int *module_count, ms_error *err);

#endif
