/* LoRA module discovery (core/lora/lora.c) and the model summary
 * (core/model/inspect.c) on random key names and shapes (key_lines.h).
 * What discovery accepts must keep lora.h's promises: modules sorted by
 * unique name, down and up of one spelling with agreeing ranks, every
 * tensor claimed by exactly one module or listed as passthrough.  The
 * summary fails exactly when discovery does, unless the file is a
 * checkpoint (classified before any LoRA pair is looked for). */
#include "fuzz.h"

#include <string.h>

#include "core/lora/lora.h"
#include "core/model/inspect.h"
#include "key_lines.h"

static void check_modules(const ms_safetensors *file, const ms_lora_module_list *list)
{
    size_t claimed = list->passthrough_count;
    for (size_t i = 0; i < list->count; i++) {
        const ms_lora_module *module = &list->modules[i];
        if (i > 0)
            MS_FUZZ_CHECK(strcmp(list->modules[i - 1].name, module->name) < 0);
        MS_FUZZ_CHECK(module->down != NULL && module->up != NULL && module->down != module->up);
        MS_FUZZ_CHECK(module->rank >= 1 && module->rank == module->down->shape[0]);
        MS_FUZZ_CHECK(module->up->shape[1] == module->rank);
        MS_FUZZ_CHECK(module->out_features >= 1 && module->in_features >= 1);
        MS_FUZZ_CHECK(strncmp(module->down->name, module->name, strlen(module->name)) == 0);
        claimed += module->alpha != NULL ? 3 : 2;
        double alpha = 0;
        ms_error err;
        if (ms_lora_module_alpha(file, module, &alpha, &err) != MS_OK)
            ms_fuzz_check_error(&err);
    }
    MS_FUZZ_CHECK(claimed == file->tensor_count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ms_fuzz_tensor_file image;
    if (!ms_fuzz_tensor_file_make(data, size, &image))
        return 0;
    ms_lora_module_list list;
    ms_error err;
    ms_status found = ms_lora_find_modules(&image.file, &list, &err);
    if (found == MS_OK) {
        check_modules(&image.file, &list);
        ms_lora_module_list_free(&list);
    } else {
        MS_FUZZ_CHECK(list.count == 0 && list.modules == NULL);
        ms_fuzz_check_error(&err);
    }
    /* a checkpoint's keys are never read as LoRA pairs (inspect.c) */
    ms_model_summary summary;
    ms_status inspected = ms_inspect_model(&image.file, &summary, &err);
    if (inspected != MS_OK || summary.kind != MS_MODEL_CHECKPOINT)
        MS_FUZZ_CHECK(inspected == found);
    if (inspected == MS_OK && summary.kind == MS_MODEL_LORA)
        MS_FUZZ_CHECK(summary.module_count >= 1 && summary.rank_min <= summary.rank_max);
    ms_fuzz_tensor_file_free(&image);
    return 0;
}
