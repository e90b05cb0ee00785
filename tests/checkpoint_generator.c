/* Synthetic SD1.5 / SDXL checkpoints (checkpoint_generator.h).
 *
 * One walk over the architecture (the LDM UNet, the KL VAE, the text
 * encoders) calls an emitter per tensor; the emitter either reports the
 * tensor (enumerate, count) or generates and writes it.  Writing holds one
 * tensor's bytes and a fixed chunk of doubles: full-size SD1.5 (2.1 GB in
 * fp16) is produced at disk speed.  Widths follow the LDM/SGM configs
 * (v1-inference.yaml, sd_xl_base.yaml); the small size keeps every key and
 * shrinks every width so a file stays well under 2 MB. */
#include "checkpoint_generator.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/format/writer.h"

enum {
    NAME_CAPACITY = 256,
    TEXT_POSITIONS = 77,
    LDM_TIMESTEPS = 1000,
    CHUNK_VALUES = 1 << 16,
    MAX_LEVELS = 4,
    RES_BLOCKS = 2,
};

/* Widths of one architecture at one size. */
typedef struct widths {
    int64_t model_channels;     /* UNet: 320 */
    int level_count;
    int channel_mult[MAX_LEVELS];
    int transformer_depth[MAX_LEVELS];  /* per level, 0 = no attention */
    int middle_depth;
    bool linear_projection;     /* SDXL: proj_in/proj_out are linear, SD1 1x1 convs */
    int64_t context;            /* cross-attention width: 768, SDXL 2048 */
    int64_t adm_channels;       /* SDXL label_emb input: 2816; 0 = none */
    int64_t clip_width;         /* CLIP ViT-L text: 768 */
    int64_t vocabulary;         /* 49408 */
    int64_t bigg_width;         /* OpenCLIP ViT-bigG text: 1280; 0 = none */
    int64_t vae_channels;       /* 128 */
} widths;

static void widths_for(const gen_checkpoint_options *options, widths *w)
{
    bool full = options->full_size;
    memset(w, 0, sizeof *w);
    w->vocabulary = full ? 49408 : 1000;
    w->clip_width = full ? 768 : 16;
    w->vae_channels = full ? 128 : 4;
    w->model_channels = full ? 320 : 4;
    if (options->arch == GEN_CHECKPOINT_SDXL) {
        /* 60 transformer blocks at the deepest level: narrower still */
        w->model_channels = full ? 320 : 2;
        static const int mult[] = {1, 2, 4}, depth[] = {0, 2, 10};
        w->level_count = 3;
        memcpy(w->channel_mult, mult, sizeof mult);
        memcpy(w->transformer_depth, depth, sizeof depth);
        w->middle_depth = 10;
        w->linear_projection = true;
        w->bigg_width = full ? 1280 : 16;
        w->context = w->clip_width + w->bigg_width;
        /* pooled bigG embedding + six 256-wide size/crop embeddings */
        w->adm_channels = w->bigg_width + 6 * (full ? 256 : 8);
    } else {
        static const int mult[] = {1, 2, 4, 4}, depth[] = {1, 1, 1, 0};
        w->level_count = 4;
        memcpy(w->channel_mult, mult, sizeof mult);
        memcpy(w->transformer_depth, depth, sizeof depth);
        w->middle_depth = 1;
        w->context = w->clip_width;
    }
}

/* ---- the emitter: one call per tensor ---- */

typedef enum value_kind {
    VALUES_RANDOM,
    VALUES_POSITION_IDS,      /* int64 [[0, 1, ..., 76]] */
    VALUES_LDM_BUFFER,        /* the DDPM schedule, by name */
    VALUES_EMA_DECAY,
    VALUES_EMA_UPDATES,
} value_kind;

typedef struct emitter emitter;
typedef void (*emit_fn)(emitter *out, const gen_checkpoint_tensor *tensor, value_kind kind);

struct emitter {
    const gen_checkpoint_options *options;
    emit_fn emit;
    /* enumerate */
    gen_checkpoint_visit_fn visit;
    void *user_data;
    /* count and write */
    gen_checkpoint_totals totals;
    ms_writer *writer;
    unsigned char *bytes;
    size_t byte_capacity;
    double *chunk;
    ms_status status;
    ms_error *err;
};

static uint64_t hash_name(const char *name)
{
    uint64_t hash = 0xcbf29ce484222325ull;   /* FNV-1a */
    for (const unsigned char *c = (const unsigned char *)name; *c != '\0'; c++)
        hash = (hash ^ *c) * 0x100000001b3ull;
    return hash;
}

static ms_dtype float_dtype_for(const gen_checkpoint_options *options, const char *name)
{
    static const ms_dtype mixed[] = {MS_DTYPE_F16, MS_DTYPE_BF16, MS_DTYPE_F32};
    switch (options->dtype) {
    case GEN_CHECKPOINT_BF16:
        return MS_DTYPE_BF16;
    case GEN_CHECKPOINT_F32:
        return MS_DTYPE_F32;
    case GEN_CHECKPOINT_MIXED:
        return mixed[(hash_name(name) >> 7) % 3];
    case GEN_CHECKPOINT_F16:
        break;
    }
    return MS_DTYPE_F16;
}

static bool is_dropped(const gen_checkpoint_options *options, const char *name)
{
    for (size_t i = 0; i < options->drop_key_count; i++)
        if (options->drop_keys[i] != NULL && strcmp(options->drop_keys[i], name) == 0)
            return true;
    return false;
}

/* Emits prefix+suffix with up to four dimensions (0 ends the shape; a
 * scalar passes none). */
static void tensor_typed(emitter *out, const char *prefix, const char *suffix, ms_dtype dtype,
                         value_kind kind, int ndim, const int64_t *shape)
{
    char name[NAME_CAPACITY];
    snprintf(name, sizeof name, "%s%s", prefix, suffix);
    if (is_dropped(out->options, name))
        return;
    gen_checkpoint_tensor tensor = {.name = name, .dtype = dtype, .ndim = ndim};
    tensor.element_count = 1;
    for (int i = 0; i < ndim; i++) {
        tensor.shape[i] = shape[i];
        tensor.element_count *= (uint64_t)shape[i];
    }
    out->totals.tensor_count++;
    out->totals.parameter_count += tensor.element_count;
    out->emit(out, &tensor, kind);
}

static void tensor(emitter *out, const char *prefix, const char *suffix, int ndim, int64_t d0,
                   int64_t d1, int64_t d2, int64_t d3)
{
    char name[NAME_CAPACITY];
    snprintf(name, sizeof name, "%s%s", prefix, suffix);
    const int64_t shape[4] = {d0, d1, d2, d3};
    tensor_typed(out, prefix, suffix, float_dtype_for(out->options, name), VALUES_RANDOM, ndim,
                 shape);
}

static void vector(emitter *out, const char *prefix, const char *suffix, int64_t n)
{
    tensor(out, prefix, suffix, 1, n, 0, 0, 0);
}

/* name.weight [out, in] and name.bias [out] (bias optional) */
static void linear(emitter *out, const char *prefix, const char *name, int64_t out_features,
                   int64_t in_features, bool bias)
{
    char suffix[NAME_CAPACITY];
    snprintf(suffix, sizeof suffix, "%s.weight", name);
    tensor(out, prefix, suffix, 2, out_features, in_features, 0, 0);
    if (bias) {
        snprintf(suffix, sizeof suffix, "%s.bias", name);
        vector(out, prefix, suffix, out_features);
    }
}

static void conv(emitter *out, const char *prefix, const char *name, int64_t out_channels,
                 int64_t in_channels, int64_t kernel)
{
    char suffix[NAME_CAPACITY];
    snprintf(suffix, sizeof suffix, "%s.weight", name);
    tensor(out, prefix, suffix, 4, out_channels, in_channels, kernel, kernel);
    snprintf(suffix, sizeof suffix, "%s.bias", name);
    vector(out, prefix, suffix, out_channels);
}

/* GroupNorm / LayerNorm: weight and bias */
static void norm(emitter *out, const char *prefix, const char *name, int64_t channels)
{
    char suffix[NAME_CAPACITY];
    snprintf(suffix, sizeof suffix, "%s.weight", name);
    vector(out, prefix, suffix, channels);
    snprintf(suffix, sizeof suffix, "%s.bias", name);
    vector(out, prefix, suffix, channels);
}

/* ---- the LDM UNet (openaimodel.py) ---- */

static void unet_resblock(emitter *out, const char *prefix, int64_t in, int64_t channels,
                          int64_t embed)
{
    norm(out, prefix, "in_layers.0", in);
    conv(out, prefix, "in_layers.2", channels, in, 3);
    linear(out, prefix, "emb_layers.1", channels, embed, true);
    norm(out, prefix, "out_layers.0", channels);
    conv(out, prefix, "out_layers.3", channels, channels, 3);
    if (in != channels)
        conv(out, prefix, "skip_connection", channels, in, 1);
}

static void transformer_block(emitter *out, const char *prefix, int64_t channels,
                              int64_t context)
{
    static const char *const attentions[] = {"attn1", "attn2"};
    char name[NAME_CAPACITY];
    for (int a = 0; a < 2; a++) {
        int64_t source = a == 0 ? channels : context;
        snprintf(name, sizeof name, "%s.to_q", attentions[a]);
        linear(out, prefix, name, channels, channels, false);
        snprintf(name, sizeof name, "%s.to_k", attentions[a]);
        linear(out, prefix, name, channels, source, false);
        snprintf(name, sizeof name, "%s.to_v", attentions[a]);
        linear(out, prefix, name, channels, source, false);
        snprintf(name, sizeof name, "%s.to_out.0", attentions[a]);
        linear(out, prefix, name, channels, channels, true);
    }
    linear(out, prefix, "ff.net.0.proj", channels * 8, channels, true);   /* GEGLU */
    linear(out, prefix, "ff.net.2", channels, channels * 4, true);
    norm(out, prefix, "norm1", channels);
    norm(out, prefix, "norm2", channels);
    norm(out, prefix, "norm3", channels);
}

static void spatial_transformer(emitter *out, const char *prefix, const widths *w,
                                int64_t channels, int depth)
{
    norm(out, prefix, "norm", channels);
    if (w->linear_projection) {
        linear(out, prefix, "proj_in", channels, channels, true);
        linear(out, prefix, "proj_out", channels, channels, true);
    } else {
        conv(out, prefix, "proj_in", channels, channels, 1);
        conv(out, prefix, "proj_out", channels, channels, 1);
    }
    for (int i = 0; i < depth; i++) {
        char block[NAME_CAPACITY];
        snprintf(block, sizeof block, "%stransformer_blocks.%d.", prefix, i);
        transformer_block(out, block, channels, w->context);
    }
}

static void unet(emitter *out, const widths *w, bool inpainting)
{
    const char *root = "model.diffusion_model.";
    int64_t mc = w->model_channels, embed = 4 * mc;
    char prefix[NAME_CAPACITY];
    linear(out, root, "time_embed.0", embed, mc, true);
    linear(out, root, "time_embed.2", embed, embed, true);
    if (w->adm_channels > 0) {
        linear(out, root, "label_emb.0.0", embed, w->adm_channels, true);
        linear(out, root, "label_emb.0.2", embed, embed, true);
    }
    conv(out, root, "input_blocks.0.0", mc, inpainting ? 9 : 4, 3);

    int64_t skips[3 * MAX_LEVELS + 1];
    int skip_count = 0, block = 1;
    int64_t channels = mc;
    skips[skip_count++] = mc;
    for (int level = 0; level < w->level_count; level++) {
        for (int r = 0; r < RES_BLOCKS; r++, block++) {
            int64_t next = mc * w->channel_mult[level];
            snprintf(prefix, sizeof prefix, "%sinput_blocks.%d.0.", root, block);
            unet_resblock(out, prefix, channels, next, embed);
            channels = next;
            if (w->transformer_depth[level] > 0) {
                snprintf(prefix, sizeof prefix, "%sinput_blocks.%d.1.", root, block);
                spatial_transformer(out, prefix, w, channels, w->transformer_depth[level]);
            }
            skips[skip_count++] = channels;
        }
        if (level + 1 < w->level_count) {
            snprintf(prefix, sizeof prefix, "%sinput_blocks.%d.0.", root, block++);
            conv(out, prefix, "op", channels, channels, 3);
            skips[skip_count++] = channels;
        }
    }

    snprintf(prefix, sizeof prefix, "%smiddle_block.0.", root);
    unet_resblock(out, prefix, channels, channels, embed);
    snprintf(prefix, sizeof prefix, "%smiddle_block.1.", root);
    spatial_transformer(out, prefix, w, channels, w->middle_depth);
    snprintf(prefix, sizeof prefix, "%smiddle_block.2.", root);
    unet_resblock(out, prefix, channels, channels, embed);

    block = 0;
    for (int level = w->level_count - 1; level >= 0; level--) {
        for (int r = 0; r <= RES_BLOCKS; r++, block++) {
            int64_t next = mc * w->channel_mult[level];
            snprintf(prefix, sizeof prefix, "%soutput_blocks.%d.0.", root, block);
            unet_resblock(out, prefix, channels + skips[--skip_count], next, embed);
            channels = next;
            int layer = 1;
            if (w->transformer_depth[level] > 0) {
                snprintf(prefix, sizeof prefix, "%soutput_blocks.%d.1.", root, block);
                spatial_transformer(out, prefix, w, channels, w->transformer_depth[level]);
                layer = 2;
            }
            if (level > 0 && r == RES_BLOCKS) {
                snprintf(prefix, sizeof prefix, "%soutput_blocks.%d.%d.", root, block, layer);
                conv(out, prefix, "conv", channels, channels, 3);
            }
        }
    }
    norm(out, root, "out.0", channels);
    conv(out, root, "out.2", 4, channels, 3);
}

/* ---- the KL-f8 VAE (first_stage_model) ---- */

static void vae_resnet(emitter *out, const char *prefix, int64_t in, int64_t channels)
{
    norm(out, prefix, "norm1", in);
    conv(out, prefix, "conv1", channels, in, 3);
    norm(out, prefix, "norm2", channels);
    conv(out, prefix, "conv2", channels, channels, 3);
    if (in != channels)
        conv(out, prefix, "nin_shortcut", channels, in, 1);
}

static void vae_middle(emitter *out, const char *part, int64_t channels)
{
    char prefix[NAME_CAPACITY];
    snprintf(prefix, sizeof prefix, "first_stage_model.%s.mid.block_1.", part);
    vae_resnet(out, prefix, channels, channels);
    snprintf(prefix, sizeof prefix, "first_stage_model.%s.mid.attn_1.", part);
    norm(out, prefix, "norm", channels);
    conv(out, prefix, "q", channels, channels, 1);
    conv(out, prefix, "k", channels, channels, 1);
    conv(out, prefix, "v", channels, channels, 1);
    conv(out, prefix, "proj_out", channels, channels, 1);
    snprintf(prefix, sizeof prefix, "first_stage_model.%s.mid.block_2.", part);
    vae_resnet(out, prefix, channels, channels);
}

static void vae(emitter *out, const widths *w)
{
    static const int mult[] = {1, 2, 4, 4};
    const int levels = 4;
    const int64_t latent = 4;
    int64_t c = w->vae_channels, channels = c;
    char prefix[NAME_CAPACITY];
    const char *root = "first_stage_model.";

    conv(out, root, "encoder.conv_in", c, 3, 3);
    for (int level = 0; level < levels; level++) {
        for (int b = 0; b < RES_BLOCKS; b++) {
            snprintf(prefix, sizeof prefix, "%sencoder.down.%d.block.%d.", root, level, b);
            vae_resnet(out, prefix, channels, c * mult[level]);
            channels = c * mult[level];
        }
        if (level + 1 < levels) {
            snprintf(prefix, sizeof prefix, "%sencoder.down.%d.downsample.", root, level);
            conv(out, prefix, "conv", channels, channels, 3);
        }
    }
    vae_middle(out, "encoder", channels);
    norm(out, root, "encoder.norm_out", channels);
    conv(out, root, "encoder.conv_out", 2 * latent, channels, 3);
    conv(out, root, "quant_conv", 2 * latent, 2 * latent, 1);
    conv(out, root, "post_quant_conv", latent, latent, 1);

    channels = c * mult[levels - 1];
    conv(out, root, "decoder.conv_in", channels, latent, 3);
    vae_middle(out, "decoder", channels);
    for (int level = levels - 1; level >= 0; level--) {
        for (int b = 0; b <= RES_BLOCKS; b++) {
            snprintf(prefix, sizeof prefix, "%sdecoder.up.%d.block.%d.", root, level, b);
            vae_resnet(out, prefix, channels, c * mult[level]);
            channels = c * mult[level];
        }
        if (level > 0) {
            snprintf(prefix, sizeof prefix, "%sdecoder.up.%d.upsample.", root, level);
            conv(out, prefix, "conv", channels, channels, 3);
        }
    }
    norm(out, root, "decoder.norm_out", channels);
    conv(out, root, "decoder.conv_out", 3, channels, 3);
}

/* ---- text encoders ---- */

/* Hugging Face CLIPTextModel (ViT-L/14): prefix ends in "text_model." (or,
 * for old SD1 files, "transformer."). */
static void clip_text(emitter *out, const char *prefix, const widths *w)
{
    int64_t width = w->clip_width;
    char layer[NAME_CAPACITY];
    tensor(out, prefix, "embeddings.token_embedding.weight", 2, w->vocabulary, width, 0, 0);
    tensor(out, prefix, "embeddings.position_embedding.weight", 2, TEXT_POSITIONS, width, 0, 0);
    const int64_t ids_shape[2] = {1, TEXT_POSITIONS};
    tensor_typed(out, prefix, "embeddings.position_ids", MS_DTYPE_I64, VALUES_POSITION_IDS, 2,
                 ids_shape);
    for (int i = 0; i < 12; i++) {
        snprintf(layer, sizeof layer, "%sencoder.layers.%d.", prefix, i);
        linear(out, layer, "self_attn.k_proj", width, width, true);
        linear(out, layer, "self_attn.v_proj", width, width, true);
        linear(out, layer, "self_attn.q_proj", width, width, true);
        linear(out, layer, "self_attn.out_proj", width, width, true);
        norm(out, layer, "layer_norm1", width);
        linear(out, layer, "mlp.fc1", 4 * width, width, true);
        linear(out, layer, "mlp.fc2", width, 4 * width, true);
        norm(out, layer, "layer_norm2", width);
    }
    norm(out, prefix, "final_layer_norm", width);
}

/* open_clip's text tower of ViT-bigG/14 as SGM stores it (the visual tower
 * deleted; attn_mask is not persistent). */
static void openclip_text(emitter *out, const char *prefix, const widths *w)
{
    int64_t width = w->bigg_width;
    char layer[NAME_CAPACITY];
    tensor(out, prefix, "positional_embedding", 2, TEXT_POSITIONS, width, 0, 0);
    tensor(out, prefix, "text_projection", 2, width, width, 0, 0);
    tensor(out, prefix, "logit_scale", 0, 0, 0, 0, 0);
    tensor(out, prefix, "token_embedding.weight", 2, w->vocabulary, width, 0, 0);
    norm(out, prefix, "ln_final", width);
    for (int i = 0; i < 32; i++) {
        snprintf(layer, sizeof layer, "%stransformer.resblocks.%d.", prefix, i);
        norm(out, layer, "ln_1", width);
        tensor(out, layer, "attn.in_proj_weight", 2, 3 * width, width, 0, 0);
        vector(out, layer, "attn.in_proj_bias", 3 * width);
        linear(out, layer, "attn.out_proj", width, width, true);
        norm(out, layer, "ln_2", width);
        linear(out, layer, "mlp.c_fc", 4 * width, width, true);
        linear(out, layer, "mlp.c_proj", width, 4 * width, true);
    }
}

/* LatentDiffusion's registered buffers (ddpm.py register_schedule) and
 * LitEma's two counters. */
static const char *const ldm_buffers[] = {
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
};

static void extra_keys(emitter *out)
{
    const int64_t steps[1] = {LDM_TIMESTEPS};
    for (size_t i = 0; i < sizeof ldm_buffers / sizeof ldm_buffers[0]; i++)
        tensor_typed(out, "", ldm_buffers[i], MS_DTYPE_F32, VALUES_LDM_BUFFER, 1, steps);
    tensor_typed(out, "", "model_ema.decay", MS_DTYPE_F32, VALUES_EMA_DECAY, 0, NULL);
    tensor_typed(out, "", "model_ema.num_updates", MS_DTYPE_I32, VALUES_EMA_UPDATES, 0, NULL);
}

static void walk(emitter *out)
{
    const gen_checkpoint_options *options = out->options;
    widths w;
    widths_for(options, &w);
    unet(out, &w, options->inpainting);
    vae(out, &w);
    if (options->arch == GEN_CHECKPOINT_SDXL) {
        clip_text(out, "conditioner.embedders.0.transformer.text_model.", &w);
        openclip_text(out, "conditioner.embedders.1.model.", &w);
    } else {
        clip_text(out, options->old_te_names ? "cond_stage_model.transformer."
                                             : "cond_stage_model.transformer.text_model.",
                  &w);
    }
    if (options->extra_keys)
        extra_keys(out);
}

/* ---- values ---- */

static uint64_t splitmix_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Irwin-Hall with four 16-bit uniforms per draw: close enough to a normal
 * for test data (bounded at 3.5 sigma) and several times faster than
 * Box-Muller, which matters at 3.5 G values. */
typedef struct value_stream {
    uint64_t state;
} value_stream;

static void value_stream_init(value_stream *stream, uint64_t seed, const char *name)
{
    stream->state = seed ^ hash_name(name);
    splitmix_next(&stream->state);
}

static void value_stream_fill(value_stream *stream, double *values, size_t count)
{
    const double sigma = 0.05;
    const double scale = sigma * sqrt(3.0) / 65536.0;   /* sum of 4 U(0,1): variance 1/3 */
    for (size_t i = 0; i < count; i++) {
        uint64_t bits = splitmix_next(&stream->state);
        int64_t sum = (int64_t)(bits & 0xffff) + (int64_t)((bits >> 16) & 0xffff) +
                      (int64_t)((bits >> 32) & 0xffff) + (int64_t)(bits >> 48);
        values[i] = (double)(sum - 2 * 65536 + 2) * scale;
    }
}

void gen_checkpoint_values(uint64_t seed, const char *name, double *values, size_t count)
{
    value_stream stream;
    value_stream_init(&stream, seed, name);
    value_stream_fill(&stream, values, count);
}

/* The DDPM schedule of v1-inference.yaml: linear in sqrt(beta) from 0.00085
 * to 0.012 over 1000 steps. */
static double ldm_buffer_value(const char *name, int step)
{
    double alphas_cumprod = 1, previous = 1, beta = 0;
    for (int t = 0; t <= step; t++) {
        double root = sqrt(0.00085) + (sqrt(0.012) - sqrt(0.00085)) * t / (LDM_TIMESTEPS - 1);
        beta = root * root;
        previous = alphas_cumprod;
        alphas_cumprod *= 1 - beta;
    }
    double posterior = beta * (1 - previous) / (1 - alphas_cumprod);
    if (strcmp(name, "betas") == 0)
        return beta;
    if (strcmp(name, "alphas_cumprod") == 0)
        return alphas_cumprod;
    if (strcmp(name, "alphas_cumprod_prev") == 0)
        return previous;
    if (strcmp(name, "sqrt_alphas_cumprod") == 0)
        return sqrt(alphas_cumprod);
    if (strcmp(name, "sqrt_one_minus_alphas_cumprod") == 0)
        return sqrt(1 - alphas_cumprod);
    if (strcmp(name, "log_one_minus_alphas_cumprod") == 0)
        return log(1 - alphas_cumprod);
    if (strcmp(name, "sqrt_recip_alphas_cumprod") == 0)
        return sqrt(1 / alphas_cumprod);
    if (strcmp(name, "sqrt_recipm1_alphas_cumprod") == 0)
        return sqrt(1 / alphas_cumprod - 1);
    if (strcmp(name, "posterior_variance") == 0)
        return posterior;
    if (strcmp(name, "posterior_log_variance_clipped") == 0)
        return log(posterior > 1e-20 ? posterior : 1e-20);
    if (strcmp(name, "posterior_mean_coef1") == 0)
        return beta * sqrt(previous) / (1 - alphas_cumprod);
    return (1 - previous) * sqrt(1 - beta) / (1 - alphas_cumprod);   /* posterior_mean_coef2 */
}

static bool ensure_bytes(emitter *out, size_t count)
{
    if (count <= out->byte_capacity)
        return true;
    unsigned char *grown = realloc(out->bytes, count);
    if (grown == NULL)
        return false;
    out->bytes = grown;
    out->byte_capacity = count;
    return true;
}

/* Random values generated and converted a chunk at a time. */
static void fill_random(emitter *out, const gen_checkpoint_tensor *t)
{
    size_t element_size = ms_dtype_size(t->dtype);
    value_stream stream;
    value_stream_init(&stream, out->options->seed, t->name);
    for (uint64_t done = 0; done < t->element_count; done += CHUNK_VALUES) {
        uint64_t left = t->element_count - done;
        size_t count = left < CHUNK_VALUES ? (size_t)left : CHUNK_VALUES;
        value_stream_fill(&stream, out->chunk, count);
        ms_dtype_from_double(t->dtype, out->chunk, out->bytes + done * element_size, count);
    }
}

static void fill(emitter *out, const gen_checkpoint_tensor *t, value_kind kind)
{
    switch (kind) {
    case VALUES_RANDOM:
        fill_random(out, t);
        return;
    case VALUES_POSITION_IDS:
        for (int64_t i = 0; i < TEXT_POSITIONS; i++) {
            int64_t id = i;   /* little-endian hosts only, as the writer */
            memcpy(out->bytes + 8 * i, &id, sizeof id);
        }
        return;
    case VALUES_LDM_BUFFER:
        for (int step = 0; step < LDM_TIMESTEPS; step++)
            out->chunk[step] = ldm_buffer_value(t->name, step);
        ms_dtype_from_double(t->dtype, out->chunk, out->bytes, LDM_TIMESTEPS);
        return;
    case VALUES_EMA_DECAY:
        out->chunk[0] = 0.9999;
        ms_dtype_from_double(t->dtype, out->chunk, out->bytes, 1);
        return;
    case VALUES_EMA_UPDATES: {
        int32_t updates = 0;
        memcpy(out->bytes, &updates, sizeof updates);
        return;
    }
    }
}

static void emit_write(emitter *out, const gen_checkpoint_tensor *t, value_kind kind)
{
    if (out->status != MS_OK)
        return;
    size_t byte_count = (size_t)(t->element_count * ms_dtype_size(t->dtype));
    if (!ensure_bytes(out, byte_count > 0 ? byte_count : 1)) {
        out->status = ms_error_set(out->err, MS_ERR_OUT_OF_MEMORY, t->name,
                                   "out of memory for %zu bytes", byte_count);
        return;
    }
    fill(out, t, kind);
    out->status = ms_writer_add_bytes(out->writer, t->name, t->dtype, t->ndim, t->shape,
                                      out->bytes, byte_count, out->err);
}

static void emit_visit(emitter *out, const gen_checkpoint_tensor *t, value_kind kind)
{
    (void)kind;
    if (out->visit != NULL)
        out->visit(out->user_data, t);
}

void gen_checkpoint_options_init(gen_checkpoint_options *options)
{
    memset(options, 0, sizeof *options);
    options->arch = GEN_CHECKPOINT_SD15;
    options->dtype = GEN_CHECKPOINT_F16;
    options->seed = 1;
}

void gen_checkpoint_enumerate(const gen_checkpoint_options *options,
                              gen_checkpoint_visit_fn visit, void *user_data)
{
    emitter out = {.options = options, .emit = emit_visit, .visit = visit,
                   .user_data = user_data};
    walk(&out);
}

void gen_checkpoint_count(const gen_checkpoint_options *options, gen_checkpoint_totals *totals)
{
    emitter out = {.options = options, .emit = emit_visit};
    walk(&out);
    *totals = out.totals;
}

ms_status gen_checkpoint_write(const gen_checkpoint_options *options, const char *path,
                               gen_checkpoint_totals *totals, ms_error *err)
{
    emitter out = {.options = options, .emit = emit_write, .status = MS_OK, .err = err};
    ms_writer_result result;
    out.chunk = malloc(CHUNK_VALUES * sizeof *out.chunk);
    if (out.chunk == NULL) {
        out.status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
        goto done;
    }
    out.status = ms_writer_open(path, &out.writer, err);
    if (out.status != MS_OK)
        goto done;
    walk(&out);
    if (out.status != MS_OK) {
        ms_writer_abort(out.writer);
        goto done;
    }
    out.status = ms_writer_finish(out.writer, &result, err);
    if (out.status == MS_OK)
        out.totals.file_bytes = result.file_bytes;
done:
    if (totals != NULL)
        *totals = out.totals;
    free(out.chunk);
    free(out.bytes);
    return out.status;
}
