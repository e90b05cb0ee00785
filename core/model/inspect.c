/* What a safetensors file is (inspect.h).  Detection is a handful of key and
 * shape heuristics: the names say LoRA vs checkpoint, the cross-attention
 * context width and the text encoder say which Stable Diffusion. */
#include "inspect.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

const char *ms_model_kind_name(ms_model_kind kind)
{
    switch (kind) {
    case MS_MODEL_LORA:
        return "lora";
    case MS_MODEL_CHECKPOINT:
        return "checkpoint";
    default:
        return "unknown";
    }
}

const char *ms_architecture_name(ms_architecture arch)
{
    switch (arch) {
    case MS_ARCH_SD1:
        return "sd1";
    case MS_ARCH_SD2:
        return "sd2";
    case MS_ARCH_SDXL:
        return "sdxl";
    default:
        return "unknown";
    }
}

static bool starts_with(const char *text, const char *prefix)
{
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

/* Cross-attention context width: CLIP-L 768 (SD1), OpenCLIP-H 1024 (SD2),
 * CLIP-L + bigG 2048 (SDXL). */
static ms_architecture arch_from_context(int64_t width)
{
    switch (width) {
    case 768:
        return MS_ARCH_SD1;
    case 1024:
        return MS_ARCH_SD2;
    case 2048:
        return MS_ARCH_SDXL;
    default:
        return MS_ARCH_UNKNOWN;
    }
}

static bool any_key_starts_with(const ms_safetensors *file, const char *prefix)
{
    for (size_t i = 0; i < file->tensor_count; i++)
        if (starts_with(file->tensors[i].name, prefix))
            return true;
    return false;
}

static ms_architecture checkpoint_architecture(const ms_safetensors *file)
{
    if (any_key_starts_with(file, "conditioner.embedders."))
        return MS_ARCH_SDXL;
    if (any_key_starts_with(file, "cond_stage_model.model."))
        return MS_ARCH_SD2;   /* OpenCLIP text encoder */
    for (size_t i = 0; i < file->tensor_count; i++) {
        const ms_tensor_info *tensor = &file->tensors[i];
        if (starts_with(tensor->name, "model.diffusion_model.") &&
            strstr(tensor->name, ".attn2.to_k.weight") != NULL && tensor->ndim == 2) {
            ms_architecture arch = arch_from_context(tensor->shape[1]);
            if (arch != MS_ARCH_UNKNOWN)
                return arch;
        }
    }
    if (any_key_starts_with(file, "cond_stage_model.transformer."))
        return MS_ARCH_SD1;
    return MS_ARCH_UNKNOWN;
}

/* Layer index after "encoder_layers_" in a text-encoder module name, -1 when
 * there is none. */
static int text_encoder_layer(const char *name)
{
    const char *marker = strstr(name, "encoder_layers_");
    if (marker == NULL)
        return -1;
    /* strtol, not atoi: a name with 99999999999 must not overflow an int */
    long layer = strtol(marker + strlen("encoder_layers_"), NULL, 10);
    return layer >= 0 && layer <= INT_MAX ? (int)layer : -1;
}

/* Evidence gathered over the modules, strongest first when deciding. */
typedef struct lora_evidence {
    bool sdxl_text_names;            /* lora_te1_/lora_te2_: two text encoders */
    bool ldm_unet_names;             /* input_blocks_N_1_...: kohya's SDXL UNet */
    ms_architecture context_arch;    /* from attn2 to_k/to_v in-features */
    ms_architecture text_arch;       /* from lora_te_ hidden width */
    int max_text_layer;
    bool linear_proj_in;             /* SD2 style; SD1 has conv 1x1 */
    bool conv_proj_in;
} lora_evidence;

static void gather_evidence(const ms_lora_module *module, lora_evidence *evidence)
{
    const char *name = module->name;
    if (starts_with(name, "lora_te1_") || starts_with(name, "lora_te2_"))
        evidence->sdxl_text_names = true;
    if (starts_with(name, "lora_unet_input_blocks_") ||
        starts_with(name, "lora_unet_middle_block_") ||
        starts_with(name, "lora_unet_output_blocks_"))
        evidence->ldm_unet_names = true;
    if (strstr(name, "attn2_to_k") != NULL || strstr(name, "attn2.to_k") != NULL) {
        ms_architecture arch = arch_from_context(module->in_features);
        if (arch != MS_ARCH_UNKNOWN)
            evidence->context_arch = arch;
    }
    if (starts_with(name, "lora_te_")) {
        if (strstr(name, "self_attn_q_proj") != NULL) {
            if (module->in_features == 768)
                evidence->text_arch = MS_ARCH_SD1;
            else if (module->in_features == 1024)
                evidence->text_arch = MS_ARCH_SD2;
        }
        int layer = text_encoder_layer(name);
        if (layer > evidence->max_text_layer)
            evidence->max_text_layer = layer;
    }
    if (strstr(name, "proj_in") != NULL && starts_with(name, "lora_unet_")) {
        if (module->is_conv)
            evidence->conv_proj_in = true;
        else
            evidence->linear_proj_in = true;
    }
}

static ms_architecture lora_architecture(const ms_lora_module_list *list)
{
    lora_evidence evidence = {.max_text_layer = -1};
    for (size_t i = 0; i < list->count; i++)
        gather_evidence(&list->modules[i], &evidence);
    if (evidence.sdxl_text_names)
        return MS_ARCH_SDXL;
    /* The context width is decisive when known; kohya spells SD1/SD2 UNets
     * with diffusers names and SDXL's with LDM names, so those come next. */
    if (evidence.context_arch != MS_ARCH_UNKNOWN)
        return evidence.context_arch;
    if (evidence.ldm_unet_names)
        return MS_ARCH_SDXL;
    if (evidence.text_arch != MS_ARCH_UNKNOWN)
        return evidence.text_arch;
    /* Widths unknown (scaled-down test files, pruned LoRAs): fall back on
     * structure.  SD2's text encoder has 23 layers, SD1's 12; SD2 uses
     * linear proj_in, SD1 a 1x1 conv. */
    if (evidence.max_text_layer > 11 || evidence.linear_proj_in)
        return MS_ARCH_SD2;
    if (evidence.max_text_layer >= 0 || evidence.conv_proj_in)
        return MS_ARCH_SD1;
    return MS_ARCH_UNKNOWN;
}

static void summarise_lora(const ms_lora_module_list *list, ms_model_summary *summary)
{
    size_t spelling_counts[3] = {0, 0, 0};
    summary->kind = MS_MODEL_LORA;
    summary->module_count = list->count;
    summary->passthrough_count = list->passthrough_count;
    summary->rank_min = list->modules[0].rank;
    summary->rank_max = list->modules[0].rank;
    for (size_t i = 0; i < list->count; i++) {
        const ms_lora_module *module = &list->modules[i];
        if ((unsigned)module->spelling < 3)
            spelling_counts[module->spelling]++;
        if (module->is_conv)
            summary->conv_module_count++;
        if (module->rank < summary->rank_min)
            summary->rank_min = module->rank;
        if (module->rank > summary->rank_max)
            summary->rank_max = module->rank;
    }
    summary->spelling = MS_LORA_SPELLING_KOHYA;
    for (int spelling = 1; spelling < 3; spelling++)
        if (spelling_counts[spelling] > spelling_counts[summary->spelling])
            summary->spelling = (ms_lora_spelling)spelling;
    summary->architecture = lora_architecture(list);
}

ms_status ms_inspect_model(const ms_safetensors *file, ms_model_summary *summary,
                           ms_error *err)
{
    memset(summary, 0, sizeof *summary);
    summary->kind = MS_MODEL_UNKNOWN;
    summary->architecture = MS_ARCH_UNKNOWN;
    /* Checkpoints first: their VAE and UNet keys must never be mistaken for
     * LoRA pairs. */
    if (any_key_starts_with(file, "model.diffusion_model.")) {
        summary->kind = MS_MODEL_CHECKPOINT;
        summary->architecture = checkpoint_architecture(file);
        summary->passthrough_count = file->tensor_count;
        return MS_OK;
    }
    ms_lora_module_list list;
    memset(&list, 0, sizeof list);
    ms_status status = ms_lora_find_modules(file, &list, err);
    if (status != MS_OK)
        return status;
    if (list.count > 0)
        summarise_lora(&list, summary);
    else
        summary->passthrough_count = file->tensor_count;
    ms_lora_module_list_free(&list);
    return MS_OK;
}
