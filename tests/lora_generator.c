/* Synthetic LoRAs (lora_generator.h).
 *
 * Each module gets up = U diag(s), down = V^T with random sign vectors for
 * U and V (nearly orthogonal at these widths, and cheap: no QR, so the full
 * SD1.5 size is generated in about a second) and a decaying spectrum
 * s_i = exp(-i / tau) whose tau varies per module, so the dynamic rank rules
 * pick different ranks for different modules. */
#include "lora_generator.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/format/writer.h"

typedef struct generator {
    const gen_lora_options *options;
    ms_writer *writer;
    uint64_t rng;
    int module_index;
    int divisor;              /* 1 full size, 8 small */
    double *up;               /* scratch, grown as needed */
    double *down;
    size_t up_capacity;
    size_t down_capacity;
    ms_status status;
    ms_error *err;
} generator;

/* splitmix64: tiny, seedable, good enough for test data. */
static uint64_t next_random(generator *gen)
{
    uint64_t z = (gen->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double next_uniform(generator *gen)
{
    return (double)(next_random(gen) >> 11) * 0x1.0p-53;
}

/* Fills count values with +-scale, 64 signs per random draw. */
static void fill_signs(generator *gen, double *values, size_t count, double scale)
{
    uint64_t bits = 0;
    for (size_t i = 0; i < count; i++) {
        if ((i & 63) == 0)
            bits = next_random(gen);
        values[i] = (bits & 1) ? scale : -scale;
        bits >>= 1;
    }
}

static bool ensure_capacity(double **buffer, size_t *capacity, size_t count)
{
    if (count <= *capacity)
        return true;
    double *grown = realloc(*buffer, count * sizeof **buffer);
    if (grown == NULL)
        return false;
    *buffer = grown;
    *capacity = count;
    return true;
}

static const char *down_suffix(gen_lora_spelling spelling, bool with_weight)
{
    switch (spelling) {
    case GEN_LORA_PEFT:
        return with_weight ? ".lora_A.weight" : ".lora_A";
    case GEN_LORA_CONTROL:
        return with_weight ? ".down.weight" : ".down";
    default:
        return with_weight ? ".lora_down.weight" : ".lora_down";
    }
}

static const char *up_suffix(gen_lora_spelling spelling, bool with_weight)
{
    switch (spelling) {
    case GEN_LORA_PEFT:
        return with_weight ? ".lora_B.weight" : ".lora_B";
    case GEN_LORA_CONTROL:
        return with_weight ? ".up.weight" : ".up";
    default:
        return with_weight ? ".lora_up.weight" : ".lora_up";
    }
}

static ms_status write_alpha(generator *gen, const char *name, int rank)
{
    char key[512];
    snprintf(key, sizeof key, "%s.alpha", name);
    double alpha = rank / 2.0;
    ms_dtype dtype = gen->options->dtype == MS_DTYPE_F16 ? MS_DTYPE_F16 : MS_DTYPE_F32;
    return ms_writer_add_doubles(gen->writer, key, dtype, 0, NULL, &alpha, gen->err);
}

static void fill_factors(generator *gen, int64_t out, int64_t in_flat, int rank)
{
    double tau = rank * (0.1 + 0.4 * next_uniform(gen));
    double magnitude = 0.5 + next_uniform(gen);
    fill_signs(gen, gen->up, (size_t)(out * rank), magnitude / sqrt((double)out));
    /* up is [out, r]: column i carries s_i */
    for (int i = 0; i < rank; i++) {
        double singular = exp(-i / tau);
        for (int64_t row = 0; row < out; row++)
            gen->up[row * rank + i] *= singular;
    }
    fill_signs(gen, gen->down, (size_t)(rank * in_flat), 1.0 / sqrt((double)in_flat));
    if (gen->options->zero_module && gen->module_index == 0) {
        memset(gen->up, 0, (size_t)(out * rank) * sizeof(double));
        memset(gen->down, 0, (size_t)(rank * in_flat) * sizeof(double));
    }
}

/* Emits one module: in/out are the real widths (divided for small files);
 * kernel is 0 for linear, 1 for a 1x1 conv, 3 for a 3x3 conv. */
static void add_module(generator *gen, const char *name, int64_t in, int64_t out, int kernel)
{
    if (gen->status != MS_OK)
        return;
    in /= gen->divisor;
    out /= gen->divisor;
    int64_t kernel_area = kernel > 0 ? (int64_t)kernel * kernel : 1;
    int64_t in_flat = in * kernel_area;
    int rank = gen->options->rank;
    if (rank > out)
        rank = (int)out;
    if (rank > in_flat)
        rank = (int)in_flat;
    if (!ensure_capacity(&gen->up, &gen->up_capacity, (size_t)(out * rank)) ||
        !ensure_capacity(&gen->down, &gen->down_capacity, (size_t)(rank * in_flat))) {
        gen->status = ms_error_set(gen->err, MS_ERR_OUT_OF_MEMORY, name, "out of memory");
        return;
    }
    fill_factors(gen, out, in_flat, rank);

    gen_lora_spelling spelling = gen->options->spelling;
    bool with_weight = true;
    bool with_alpha = true;
    if (spelling == GEN_LORA_MIXED) {
        spelling = (gen_lora_spelling)(gen->module_index % 3);
        with_weight = gen->module_index % 7 != 3;
        with_alpha = gen->module_index % 5 != 4;
    }
    char down_key[512], up_key[512];
    snprintf(down_key, sizeof down_key, "%s%s", name, down_suffix(spelling, with_weight));
    snprintf(up_key, sizeof up_key, "%s%s", name, up_suffix(spelling, with_weight));
    int64_t down_shape[4] = {rank, in, kernel, kernel};
    int64_t up_shape[4] = {out, rank, 1, 1};
    int ndim = kernel > 0 ? 4 : 2;
    ms_dtype dtype = gen->options->dtype;
    gen->status = ms_writer_add_doubles(gen->writer, down_key, dtype, ndim, down_shape,
                                        gen->down, gen->err);
    if (gen->status == MS_OK)
        gen->status = ms_writer_add_doubles(gen->writer, up_key, dtype, ndim, up_shape,
                                            gen->up, gen->err);
    if (gen->status == MS_OK && with_alpha)
        gen->status = write_alpha(gen, name, rank);
    gen->module_index++;
}

/* CLIP text encoder layers: q, k, v, out projections and the MLP. */
static void add_text_encoder(generator *gen, const char *prefix, int layers, int64_t hidden,
                             int64_t mlp)
{
    static const char *const projections[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
    char name[256];
    for (int layer = 0; layer < layers; layer++) {
        for (int i = 0; i < 4; i++) {
            snprintf(name, sizeof name, "%s_text_model_encoder_layers_%d_self_attn_%s", prefix,
                     layer, projections[i]);
            add_module(gen, name, hidden, hidden, 0);
        }
        snprintf(name, sizeof name, "%s_text_model_encoder_layers_%d_mlp_fc1", prefix, layer);
        add_module(gen, name, hidden, mlp, 0);
        snprintf(name, sizeof name, "%s_text_model_encoder_layers_%d_mlp_fc2", prefix, layer);
        add_module(gen, name, mlp, hidden, 0);
    }
}

/* One BasicTransformerBlock: self attention, cross attention, GEGLU FF. */
static void add_transformer_block(generator *gen, const char *block, int64_t dim,
                                  int64_t context)
{
    static const struct {
        const char *suffix;
        int in_kind;     /* 0 dim, 1 context, 2 4*dim */
        int out_scale;
    } layers[] = {
        {"attn1_to_q", 0, 1},  {"attn1_to_k", 0, 1},  {"attn1_to_v", 0, 1},
        {"attn1_to_out_0", 0, 1}, {"attn2_to_q", 0, 1}, {"attn2_to_k", 1, 1},
        {"attn2_to_v", 1, 1},  {"attn2_to_out_0", 0, 1}, {"ff_net_0_proj", 0, 8},
        {"ff_net_2", 2, 1},
    };
    char name[320];
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        int64_t in = layers[i].in_kind == 0 ? dim : layers[i].in_kind == 1 ? context : 4 * dim;
        snprintf(name, sizeof name, "%s_%s", block, layers[i].suffix);
        add_module(gen, name, in, dim * layers[i].out_scale, 0);
    }
}

/* A Transformer2DModel: proj_in, depth blocks, proj_out. */
static void add_spatial_transformer(generator *gen, const char *prefix, int64_t dim, int depth,
                                    int64_t context, int proj_kernel)
{
    char name[256];
    snprintf(name, sizeof name, "%s_proj_in", prefix);
    add_module(gen, name, dim, dim, proj_kernel);
    for (int block = 0; block < depth; block++) {
        snprintf(name, sizeof name, "%s_transformer_blocks_%d", prefix, block);
        add_transformer_block(gen, name, dim, context);
    }
    snprintf(name, sizeof name, "%s_proj_out", prefix);
    add_module(gen, name, dim, dim, proj_kernel);
}

static void add_sd15(generator *gen)
{
    add_text_encoder(gen, "lora_te", 12, 768, 3072);
    static const struct {
        const char *name;
        int64_t dim;
    } blocks[] = {
        {"down_blocks_0_attentions_0", 320}, {"down_blocks_0_attentions_1", 320},
        {"down_blocks_1_attentions_0", 640}, {"down_blocks_1_attentions_1", 640},
        {"down_blocks_2_attentions_0", 1280}, {"down_blocks_2_attentions_1", 1280},
        {"mid_block_attentions_0", 1280},
        {"up_blocks_1_attentions_0", 1280}, {"up_blocks_1_attentions_1", 1280},
        {"up_blocks_1_attentions_2", 1280},
        {"up_blocks_2_attentions_0", 640}, {"up_blocks_2_attentions_1", 640},
        {"up_blocks_2_attentions_2", 640},
        {"up_blocks_3_attentions_0", 320}, {"up_blocks_3_attentions_1", 320},
        {"up_blocks_3_attentions_2", 320},
    };
    char name[160];
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
        snprintf(name, sizeof name, "lora_unet_%s", blocks[i].name);
        add_spatial_transformer(gen, name, blocks[i].dim, 1, 768, 1);
    }
    if (!gen->options->conv)
        return;
    /* LoCon: the ResNet 3x3 convolutions of the down path and the middle */
    static const int64_t channels[4] = {320, 640, 1280, 1280};
    for (int block = 0; block < 4; block++) {
        for (int resnet = 0; resnet < 2; resnet++) {
            int64_t in = resnet == 0 && block > 0 ? channels[block - 1] : channels[block];
            snprintf(name, sizeof name, "lora_unet_down_blocks_%d_resnets_%d_conv1", block, resnet);
            add_module(gen, name, in, channels[block], 3);
            snprintf(name, sizeof name, "lora_unet_down_blocks_%d_resnets_%d_conv2", block, resnet);
            add_module(gen, name, channels[block], channels[block], 3);
        }
    }
    for (int resnet = 0; resnet < 2; resnet++) {
        for (int conv = 1; conv <= 2; conv++) {
            snprintf(name, sizeof name, "lora_unet_mid_block_resnets_%d_conv%d", resnet, conv);
            add_module(gen, name, 1280, 1280, 3);
        }
    }
}

static void add_sdxl(generator *gen)
{
    add_text_encoder(gen, "lora_te1", 12, 768, 3072);
    add_text_encoder(gen, "lora_te2", 32, 1280, 5120);
    static const struct {
        const char *name;
        int64_t dim;
        int depth;
    } blocks[] = {
        {"input_blocks_4_1", 640, 2},   {"input_blocks_5_1", 640, 2},
        {"input_blocks_7_1", 1280, 10}, {"input_blocks_8_1", 1280, 10},
        {"middle_block_1", 1280, 10},
        {"output_blocks_0_1", 1280, 10}, {"output_blocks_1_1", 1280, 10},
        {"output_blocks_2_1", 1280, 10},
        {"output_blocks_3_1", 640, 2},  {"output_blocks_4_1", 640, 2},
        {"output_blocks_5_1", 640, 2},
    };
    char name[160];
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
        snprintf(name, sizeof name, "lora_unet_%s", blocks[i].name);
        add_spatial_transformer(gen, name, blocks[i].dim, blocks[i].depth, 2048, 0);
    }
    if (!gen->options->conv)
        return;
    static const struct {
        const char *name;
        int64_t in, out;
    } resnets[] = {
        {"input_blocks_1_0", 320, 320},  {"input_blocks_2_0", 320, 320},
        {"input_blocks_4_0", 320, 640},  {"input_blocks_5_0", 640, 640},
        {"input_blocks_7_0", 640, 1280}, {"input_blocks_8_0", 1280, 1280},
        {"middle_block_0", 1280, 1280},  {"middle_block_2", 1280, 1280},
    };
    for (size_t i = 0; i < sizeof resnets / sizeof resnets[0]; i++) {
        snprintf(name, sizeof name, "lora_unet_%s_in_layers_2", resnets[i].name);
        add_module(gen, name, resnets[i].in, resnets[i].out, 3);
        snprintf(name, sizeof name, "lora_unet_%s_out_layers_3", resnets[i].name);
        add_module(gen, name, resnets[i].out, resnets[i].out, 3);
    }
}

static ms_status write_metadata(generator *gen)
{
    const gen_lora_options *options = gen->options;
    char text[256];
    ms_status status;
    snprintf(text, sizeof text, "%d", options->rank);
    status = ms_writer_set_metadata(gen->writer, "ss_network_dim", text, gen->err);
    if (status != MS_OK)
        return status;
    snprintf(text, sizeof text, "%g", options->rank / 2.0);
    status = ms_writer_set_metadata(gen->writer, "ss_network_alpha", text, gen->err);
    if (status != MS_OK)
        return status;
    snprintf(text, sizeof text, "synthetic %s LoRA from gen_lora, seed %llu",
             options->arch == GEN_LORA_SDXL ? "SDXL" : "SD1.5",
             (unsigned long long)options->seed);
    status = ms_writer_set_metadata(gen->writer, "ss_training_comment", text, gen->err);
    if (status != MS_OK)
        return status;
    return ms_writer_set_metadata(gen->writer, "ss_base_model_version",
                                  options->arch == GEN_LORA_SDXL ? "sdxl_base_v1-0" : "sd_v1",
                                  gen->err);
}

void gen_lora_options_init(gen_lora_options *options)
{
    memset(options, 0, sizeof *options);
    options->arch = GEN_LORA_SD15;
    options->rank = 8;
    options->dtype = MS_DTYPE_F16;
    options->spelling = GEN_LORA_KOHYA;
    options->seed = 1;
}

ms_status gen_lora_write(const gen_lora_options *options, const char *path,
                         int *module_count, ms_error *err)
{
    generator gen = {
        .options = options,
        .rng = options->seed,
        .divisor = options->full_size ? 1 : 8,
        .status = MS_OK,
        .err = err,
    };
    if (options->rank < 1)
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL, "rank must be at least 1");
    gen.status = ms_writer_open(path, &gen.writer, err);
    if (gen.status != MS_OK)
        goto done;
    gen.status = write_metadata(&gen);
    if (gen.status != MS_OK)
        goto done;
    if (options->arch == GEN_LORA_SDXL)
        add_sdxl(&gen);
    else
        add_sd15(&gen);
    if (gen.status != MS_OK)
        goto done;
    ms_writer_result result;
    gen.status = ms_writer_finish(gen.writer, &result, err);
    gen.writer = NULL;
done:
    ms_writer_abort(gen.writer);
    free(gen.up);
    free(gen.down);
    if (gen.status == MS_OK && module_count != NULL)
        *module_count = gen.module_index;
    return gen.status;
}
