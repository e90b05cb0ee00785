/* Model kind and architecture detection (core/inspect.h) on generated
 * LoRAs and hand-made checkpoints. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/model/inspect.h"
#include "core/format/writer.h"
#include "check_support.h"
#include "lora_generator.h"

static char *temp_dir;

static void make_temp_dir(void)
{
    temp_dir = ms_test_make_temp_dir("test_inspect");
    ck_assert_ptr_nonnull(temp_dir);
}

static void remove_temp_dir(void)
{
    ck_assert_int_eq(ms_test_remove_tree(temp_dir), 0);
    free(temp_dir);
    temp_dir = NULL;
}

typedef struct tensor_spec {
    const char *name;
    int ndim;
    int64_t shape[4];
} tensor_spec;

/* Writes F32 tensors filled with small values; returns the path. */
static const char *write_tensors(const char *file_name, const tensor_spec *specs, size_t count)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", temp_dir, file_name);
    ms_writer *writer = NULL;
    ms_error err;
    ck_assert_int_eq(ms_writer_open(path, &writer, &err), MS_OK);
    for (size_t i = 0; i < count; i++) {
        size_t elements = 1;
        for (int d = 0; d < specs[i].ndim; d++)
            elements *= (size_t)specs[i].shape[d];
        double *values = calloc(elements, sizeof *values);
        for (size_t e = 0; e < elements; e++)
            values[e] = 0.01 * (double)((e * 7 + i) % 13) - 0.05;
        ck_assert_int_eq(ms_writer_add_doubles(writer, specs[i].name, MS_DTYPE_F32,
                                               specs[i].ndim, specs[i].shape, values, &err),
                         MS_OK);
        free(values);
    }
    ms_writer_result result;
    ck_assert_msg(ms_writer_finish(writer, &result, &err) == MS_OK, "%s", err.message);
    return path;
}

static ms_status inspect_path(const char *path, ms_model_summary *summary, ms_error *err)
{
    ms_safetensors file;
    ck_assert_msg(ms_safetensors_open(path, &file, err) == MS_OK, "%s", err->message);
    ms_status status = ms_inspect_model(&file, summary, err);
    ms_safetensors_close(&file);
    return status;
}

static void inspect_generated(const gen_lora_options *options, ms_model_summary *summary,
                              int *module_count)
{
    char path[512];
    snprintf(path, sizeof path, "%s/generated.safetensors", temp_dir);
    ms_error err;
    ck_assert_msg(gen_lora_write(options, path, module_count, &err) == MS_OK, "%s",
                  err.message);
    ck_assert_msg(inspect_path(path, summary, &err) == MS_OK, "%s", err.message);
}

START_TEST(test_names)
{
    ck_assert_str_eq(ms_model_kind_name(MS_MODEL_LORA), "lora");
    ck_assert_str_eq(ms_model_kind_name(MS_MODEL_CHECKPOINT), "checkpoint");
    ck_assert_str_eq(ms_model_kind_name(MS_MODEL_UNKNOWN), "unknown");
    ck_assert_str_eq(ms_model_kind_name((ms_model_kind)77), "unknown");
    ck_assert_str_eq(ms_architecture_name(MS_ARCH_SD1), "sd1");
    ck_assert_str_eq(ms_architecture_name(MS_ARCH_SD2), "sd2");
    ck_assert_str_eq(ms_architecture_name(MS_ARCH_SDXL), "sdxl");
    ck_assert_str_eq(ms_architecture_name(MS_ARCH_UNKNOWN), "unknown");
    ck_assert_str_eq(ms_architecture_name((ms_architecture)77), "unknown");
}
END_TEST

START_TEST(test_generated_sd15)
{
    gen_lora_options options;
    gen_lora_options_init(&options);
    options.rank = 4;
    ms_model_summary summary;
    int modules = 0;
    inspect_generated(&options, &summary, &modules);
    ck_assert_int_eq(modules, 264);
    ck_assert_int_eq(summary.kind, MS_MODEL_LORA);
    ck_assert_int_eq(summary.architecture, MS_ARCH_SD1);
    ck_assert_int_eq(summary.spelling, MS_LORA_SPELLING_KOHYA);
    ck_assert_uint_eq(summary.module_count, 264);
    ck_assert_uint_eq(summary.conv_module_count, 32); /* 1x1 proj_in/proj_out */
    ck_assert_int_eq(summary.rank_min, 4);
    ck_assert_int_eq(summary.rank_max, 4);
    ck_assert_uint_eq(summary.passthrough_count, 0);

    options.conv = true;
    options.spelling = GEN_LORA_PEFT;
    options.rank = 64;   /* small widths cap some modules below 64 */
    inspect_generated(&options, &summary, &modules);
    ck_assert_int_eq(modules, 284);
    ck_assert_uint_eq(summary.module_count, 284);
    ck_assert_uint_eq(summary.conv_module_count, 52);
    ck_assert_int_eq(summary.spelling, MS_LORA_SPELLING_PEFT);
    ck_assert_int_eq(summary.architecture, MS_ARCH_SD1);
    ck_assert_int_eq(summary.rank_max, 64);
    ck_assert_int_eq(summary.rank_min, 40);   /* 320 / 8 */
}
END_TEST

START_TEST(test_generated_mixed_and_control)
{
    gen_lora_options options;
    gen_lora_options_init(&options);
    options.rank = 2;
    options.spelling = GEN_LORA_MIXED;
    options.dtype = MS_DTYPE_BF16;
    ms_model_summary summary;
    int modules = 0;
    inspect_generated(&options, &summary, &modules);
    ck_assert_uint_eq(summary.module_count, 264);
    ck_assert_int_eq(summary.kind, MS_MODEL_LORA);
    options.spelling = GEN_LORA_CONTROL;
    inspect_generated(&options, &summary, &modules);
    ck_assert_int_eq(summary.spelling, MS_LORA_SPELLING_CONTROL);
    ck_assert_uint_eq(summary.module_count, 264);
}
END_TEST

START_TEST(test_generated_sdxl)
{
    gen_lora_options options;
    gen_lora_options_init(&options);
    options.arch = GEN_LORA_SDXL;
    options.rank = 2;
    ms_model_summary summary;
    int modules = 0;
    inspect_generated(&options, &summary, &modules);
    ck_assert_int_eq(summary.kind, MS_MODEL_LORA);
    ck_assert_int_eq(summary.architecture, MS_ARCH_SDXL);
    ck_assert_uint_eq(summary.module_count, (size_t)modules);
    ck_assert_uint_eq(summary.conv_module_count, 0);   /* SDXL proj_in is linear */
}
END_TEST

/* Real widths decide SD1 vs SD2 when a LoRA has them. */
START_TEST(test_lora_widths)
{
    static const tensor_spec sd2_unet[] = {
        {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight", 2, {1, 1024}},
        {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight", 2, {8, 1}},
    };
    ms_model_summary summary;
    ms_error err;
    ck_assert_int_eq(inspect_path(write_tensors("sd2u.safetensors", sd2_unet, 2), &summary, &err), MS_OK);
    ck_assert_int_eq(summary.kind, MS_MODEL_LORA);
    ck_assert_int_eq(summary.architecture, MS_ARCH_SD2);

    static const tensor_spec sd1_unet[] = {
        {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight", 2, {1, 768}},
        {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight", 2, {8, 1}},
    };
    ck_assert_int_eq(inspect_path(write_tensors("sd1u.safetensors", sd1_unet, 2), &summary, &err), MS_OK);
    ck_assert_int_eq(summary.architecture, MS_ARCH_SD1);

    static const tensor_spec sd2_text[] = {
        {"lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", 2, {1, 1024}},
        {"lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight", 2, {1024, 1}},
    };
    ck_assert_int_eq(inspect_path(write_tensors("sd2t.safetensors", sd2_text, 2), &summary, &err), MS_OK);
    ck_assert_int_eq(summary.architecture, MS_ARCH_SD2);

    static const tensor_spec sd1_text[] = {
        {"lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", 2, {1, 768}},
        {"lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight", 2, {768, 1}},
        {"lora_te_text_projection.lora_down.weight", 2, {3, 8}},
        {"lora_te_text_projection.lora_up.weight", 2, {8, 3}},
    };
    ck_assert_int_eq(inspect_path(write_tensors("sd1t.safetensors", sd1_text, 4), &summary, &err), MS_OK);
    ck_assert_int_eq(summary.architecture, MS_ARCH_SD1);
    ck_assert_int_eq(summary.rank_min, 1);
    ck_assert_int_eq(summary.rank_max, 3);

    static const tensor_spec sdxl_context[] = {
        {"lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight", 2, {1, 2048}},
        {"lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight", 2, {8, 1}},
    };
    ck_assert_int_eq(inspect_path(write_tensors("xlc.safetensors", sdxl_context, 2), &summary, &err), MS_OK);
    ck_assert_int_eq(summary.architecture, MS_ARCH_SDXL);

    /* unknown widths: SD2's 23-layer text encoder shows through the index */
    static const tensor_spec deep_text[] = {
        {"lora_te_text_model_encoder_layers_20_mlp_fc1.lora_down.weight", 2, {1, 16}},
        {"lora_te_text_model_encoder_layers_20_mlp_fc1.lora_up.weight", 2, {64, 1}},
    };
    ck_assert_int_eq(inspect_path(write_tensors("deep.safetensors", deep_text, 2), &summary, &err), MS_OK);
    ck_assert_int_eq(summary.architecture, MS_ARCH_SD2);
    /* an index past int is no evidence (atoi would have made it one) */
    static const tensor_spec absurd_text[] = {
        {"lora_te_text_model_encoder_layers_99999999999_mlp_fc1.lora_down.weight", 2, {1, 16}},
        {"lora_te_text_model_encoder_layers_99999999999_mlp_fc1.lora_up.weight", 2, {64, 1}},
    };
    ck_assert_int_eq(inspect_path(write_tensors("absurd.safetensors", absurd_text, 2), &summary,
                                  &err), MS_OK);
    ck_assert_int_eq(summary.architecture, MS_ARCH_UNKNOWN);

    /* SDXL UNet LDM names alone */
    static const tensor_spec sdxl_unet[] = {
        {"lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight", 2, {2, 16}},
        {"lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_up.weight", 2, {16, 2}},
        {"lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.alpha", 0, {0}},
    };
    ck_assert_int_eq(inspect_path(write_tensors("xl.safetensors", sdxl_unet, 3), &summary, &err), MS_OK);
    ck_assert_int_eq(summary.architecture, MS_ARCH_SDXL);

    /* no name gives it away */
    static const tensor_spec anonymous[] = {
        {"something.lora_down.weight", 2, {2, 16}},
        {"something.lora_up.weight", 2, {16, 2}},
        {"extra_tensor", 1, {3}},
    };
    ck_assert_int_eq(inspect_path(write_tensors("anon.safetensors", anonymous, 3), &summary, &err), MS_OK);
    ck_assert_int_eq(summary.kind, MS_MODEL_LORA);
    ck_assert_int_eq(summary.architecture, MS_ARCH_UNKNOWN);
    ck_assert_uint_eq(summary.passthrough_count, 1);
}
END_TEST

START_TEST(test_checkpoints)
{
    ms_model_summary summary;
    ms_error err;
    static const tensor_spec sdxl[] = {
        {"model.diffusion_model.out.2.bias", 1, {4}},
        {"conditioner.embedders.0.transformer.text_model.final_layer_norm.bias", 1, {4}},
    };
    ck_assert_int_eq(inspect_path(write_tensors("xl.safetensors", sdxl, 2), &summary, &err), MS_OK);
    ck_assert_int_eq(summary.kind, MS_MODEL_CHECKPOINT);
    ck_assert_int_eq(summary.architecture, MS_ARCH_SDXL);

    static const tensor_spec sd2_openclip[] = {
        {"model.diffusion_model.out.2.bias", 1, {4}},
        {"cond_stage_model.model.ln_final.bias", 1, {4}},
    };
    ck_assert_int_eq(inspect_path(write_tensors("sd2.safetensors", sd2_openclip, 2), &summary, &err), MS_OK);
    ck_assert_int_eq(summary.architecture, MS_ARCH_SD2);

    static const tensor_spec sd2_context[] = {
        {"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", 2, {2, 1024}},
        {"cond_stage_model.transformer.text_model.final_layer_norm.bias", 1, {4}},
    };
    ck_assert_int_eq(inspect_path(write_tensors("sd2c.safetensors", sd2_context, 2), &summary, &err), MS_OK);
    ck_assert_int_eq(summary.architecture, MS_ARCH_SD2);

    static const tensor_spec sd1[] = {
        {"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", 2, {2, 768}},
        {"cond_stage_model.transformer.text_model.final_layer_norm.bias", 1, {4}},
        {"first_stage_model.decoder.up.0.block.0.conv1.weight", 4, {2, 2, 3, 3}},
    };
    ck_assert_int_eq(inspect_path(write_tensors("sd1.safetensors", sd1, 3), &summary, &err), MS_OK);
    ck_assert_int_eq(summary.kind, MS_MODEL_CHECKPOINT);
    ck_assert_int_eq(summary.architecture, MS_ARCH_SD1);
    ck_assert_uint_eq(summary.module_count, 0);

    static const tensor_spec sd1_clip[] = {
        {"model.diffusion_model.out.2.bias", 1, {4}},
        {"cond_stage_model.transformer.text_model.final_layer_norm.bias", 1, {4}},
    };
    ck_assert_int_eq(inspect_path(write_tensors("sd1clip.safetensors", sd1_clip, 2), &summary, &err), MS_OK);
    ck_assert_int_eq(summary.architecture, MS_ARCH_SD1);

    static const tensor_spec unet_only[] = {
        {"model.diffusion_model.out.2.bias", 1, {4}},
    };
    ck_assert_int_eq(inspect_path(write_tensors("unet.safetensors", unet_only, 1), &summary, &err), MS_OK);
    ck_assert_int_eq(summary.kind, MS_MODEL_CHECKPOINT);
    ck_assert_int_eq(summary.architecture, MS_ARCH_UNKNOWN);
}
END_TEST

START_TEST(test_unknown_and_malformed)
{
    ms_model_summary summary;
    ms_error err;
    static const tensor_spec other[] = {
        {"encoder.weight", 2, {3, 3}},
    };
    ck_assert_int_eq(inspect_path(write_tensors("other.safetensors", other, 1), &summary, &err), MS_OK);
    ck_assert_int_eq(summary.kind, MS_MODEL_UNKNOWN);
    ck_assert_int_eq(summary.architecture, MS_ARCH_UNKNOWN);
    ck_assert_uint_eq(summary.passthrough_count, 1);

    static const tensor_spec mismatch[] = {
        {"lora_unet_x.lora_down.weight", 2, {4, 8}},
        {"lora_unet_x.lora_up.weight", 2, {8, 3}},
    };
    ms_status status = inspect_path(write_tensors("bad.safetensors", mismatch, 2), &summary, &err);
    ck_assert_int_eq(status, MS_ERR_RANK_MISMATCH);
    ck_assert_ptr_nonnull(strstr(err.key, "lora_unet_x"));
}
END_TEST

static Suite *inspect_suite(void)
{
    Suite *suite = suite_create("inspect");
    TCase *detect = tcase_create("detect");
    tcase_add_checked_fixture(detect, make_temp_dir, remove_temp_dir);
    tcase_set_timeout(detect, 60);
    tcase_add_test(detect, test_names);
    tcase_add_test(detect, test_generated_sd15);
    tcase_add_test(detect, test_generated_mixed_and_control);
    tcase_add_test(detect, test_generated_sdxl);
    tcase_add_test(detect, test_lora_widths);
    tcase_add_test(detect, test_checkpoints);
    tcase_add_test(detect, test_unknown_and_malformed);
    suite_add_tcase(suite, detect);
    return suite;
}

int main(void)
{
    return ms_test_run_suite(inspect_suite());
}
