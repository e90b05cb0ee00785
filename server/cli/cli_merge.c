/* mergesvd merge: sd-meh's merge_models on the command line, through the
 * same request parser (api/merge_request.h) and core call (ms_merge_files)
 * as the HTTP jobs: the options become a /v1/merge-models body, so both
 * accept and refuse exactly the same things. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/json_text.h"
#include "api/merge_request.h"
#include "cli_options.h"
#include "cli_signals.h"
#include "commands.h"
#include "core/merge/rotate_cache.h"
#include "server/failpoint.h"
#include "server/serve_options.h"
#include "server/printable.h"
#include "progress_display.h"

static const char merge_usage[] =
    "usage: mergesvd merge --model_a A --model_b B [--model_c C] --merge_mode METHOD\n"
    "                      [--alpha X] [--beta X] [--weights_alpha W] [--weights_beta W]\n"
    "                      [--precision 16|32] [--weights_clip] [--prune]\n"
    "                      [--nan_policy fail|keep_a] [--threads N] [--verbose] [--json]\n"
    "                      [--cache_dir DIR] [--cache_bytes SIZE] --output OUT\n"
    "\n"
    "Merges Stable Diffusion checkpoints with sd-meh semantics. Options take\n"
    "underscores or dashes (--model_a, --model-a) and --opt=value.\n"
    "  --model_a A, --model_b B   input checkpoints (.safetensors)\n"
    "  --model_c C                third input, for the three-model methods\n"
    "  --merge_mode METHOD        weighted_sum, add_difference, ... (sd-meh's names)\n"
    "  --alpha X, --beta X        base alpha and beta (default 0.5 each)\n"
    "  --weights_alpha W          per-block alpha, either 25 comma-separated values\n"
    "                             (19 for SDXL) in sd-meh's order, or named blocks\n"
    "                             NAME=V,NAME=V (BASE, IN00.., M00, OUT00.., VAE),\n"
    "                             e.g. \"BASE=0.1,IN00=0.3\"; blocks left out take --alpha\n"
    "  --weights_beta W           the same for beta\n"
    "  --precision 16|32          output fp16 (default) or fp32\n"
    "  --weights_clip             clamp each merged value between A's and B's\n"
    "  --prune                    merge only the UNet, VAE and text encoder keys\n"
    "  --nan_policy P             fail (default) or keep_a: keep A's tensor where the\n"
    "                             merge gives NaN or infinity\n"
    "  --threads N                tensor workers (default 0: every core)\n"
    "  --cache_dir DIR            rotate: keep each key's decomposition in DIR, keyed by\n"
    "                             the content of both tensors, so that merging the same\n"
    "                             pair again with other alpha and beta costs a product\n"
    "  --cache_bytes SIZE         at most this much in DIR, least recently used out first\n"
    "                             (K, M, G, T: 1024-based; default 16G)\n"
    "  --output OUT               output file (written atomically)\n"
    "  --verbose                  the alpha and beta each block took, and its keys\n"
    "  --json                     print the job report as JSON on stdout\n";

typedef struct merge_arguments {
    const char *model_a, *model_b, *model_c;
    const char *merge_mode;
    const char *alpha, *beta;
    const char *weights_alpha, *weights_beta;
    const char *precision;
    const char *nan_policy;
    const char *threads;
    const char *output;
    const char *cache_dir, *cache_bytes;
    bool weights_clip, prune;
    bool verbose, json, help;
} merge_arguments;

static int parse_arguments(int argc, char **argv, merge_arguments *args)
{
    const ms_cli_option options[] = {
        {"model_a", &args->model_a, NULL},
        {"model_b", &args->model_b, NULL},
        {"model_c", &args->model_c, NULL},
        {"merge_mode", &args->merge_mode, NULL},
        {"alpha", &args->alpha, NULL},
        {"beta", &args->beta, NULL},
        {"weights_alpha", &args->weights_alpha, NULL},
        {"weights_beta", &args->weights_beta, NULL},
        {"precision", &args->precision, NULL},
        {"nan_policy", &args->nan_policy, NULL},
        {"threads", &args->threads, NULL},
        {"output", &args->output, NULL},
        {"cache_dir", &args->cache_dir, NULL},
        {"cache_bytes", &args->cache_bytes, NULL},
        {"weights_clip", NULL, &args->weights_clip},
        {"prune", NULL, &args->prune},
        {"verbose", NULL, &args->verbose},
        {"json", NULL, &args->json},
        {"help", NULL, &args->help},
    };
    ms_cli_spec spec = {"merge", options, sizeof options / sizeof options[0], NULL, 0};
    int positional_count = 0;
    return ms_cli_parse(&spec, argc, argv, &positional_count);
}

/* ---- options -> a /v1/merge-models body ---- */

/* One "V" or "NAME=V" item of a --weights_* list, cut at its comma. */
static int parse_weight_value(const char *option, const char *text, size_t length,
                              double *value)
{
    char item[64];
    if (length == 0 || length >= sizeof item)
        return ms_cli_usage_error("merge", "--%s: '%.*s' is not a number", option, (int)length,
                                  text);
    memcpy(item, text, length);
    item[length] = '\0';
    char *end = NULL;
    errno = 0;
    *value = strtod(item, &end);
    while (*end == ' ')
        end++;
    if (end == item || *end != '\0' || errno != 0 || !isfinite(*value))
        return ms_cli_usage_error("merge", "--%s: '%s' is not a finite number", option, item);
    return 0;
}

/* "v,v,...": a JSON list; "NAME=v,NAME=v": a JSON object.  Lengths and
 * names are the request parser's to check. */
static int parse_weights(const char *option, const char *text, json_t **out)
{
    bool named = strchr(text, '=') != NULL;
    json_t *weights = named ? json_object() : json_array();
    const char *item = text;
    for (;;) {
        size_t length = strcspn(item, ",");
        const char *equals = memchr(item, '=', length);
        if ((equals != NULL) != named) {
            json_decref(weights);
            return ms_cli_usage_error("merge",
                                      "--%s: give either values (v,v,...) or named blocks "
                                      "(NAME=v,...), not both",
                                      option);
        }
        const char *number = named ? equals + 1 : item;
        double value = 0;
        if (parse_weight_value(option, number, length - (size_t)(number - item), &value) != 0) {
            json_decref(weights);
            return 2;
        }
        if (!named) {
            json_array_append_new(weights, json_real(value));
        } else {
            char name[16];
            size_t name_length = (size_t)(equals - item);
            snprintf(name, sizeof name, "%.*s", (int)name_length, item);
            if (name_length >= sizeof name || json_object_get(weights, name) != NULL) {
                json_decref(weights);
                return ms_cli_usage_error("merge", "--%s: '%.*s' is not a block name or is "
                                          "given twice", option, (int)name_length, item);
            }
            json_object_set_new(weights, name, json_real(value));
        }
        if (item[length] == '\0')
            break;
        item += length + 1;
    }
    *out = weights;
    return 0;
}

/* Paths are bytes, not necessarily UTF-8: kept as given (the request
 * parser only needs C strings). */
static void set_path(json_t *body, const char *field, const char *path)
{
    if (path != NULL)
        json_object_set_new(body, field, json_string_nocheck(path));
}

static int set_number(json_t *body, const char *field, const char *option, const char *text)
{
    double value;
    if (text == NULL)
        return 0;
    if (ms_cli_parse_double("merge", option, text, &value) != 0)
        return 2;
    json_object_set_new(body, field, json_real(value));
    return 0;
}

static int set_weights(json_t *body, const char *field, const char *option, const char *text)
{
    json_t *weights = NULL;
    if (text == NULL)
        return 0;
    if (parse_weights(option, text, &weights) != 0)
        return 2;
    json_object_set_new(body, field, weights);
    return 0;
}

static int build_body(const merge_arguments *args, json_t *body)
{
    set_path(body, "model_a", args->model_a);
    set_path(body, "model_b", args->model_b);
    set_path(body, "model_c", args->model_c);
    if (args->merge_mode != NULL)
        json_object_set_new(body, "merge_method", json_string_nocheck(args->merge_mode));
    if (set_number(body, "base_alpha", "alpha", args->alpha) != 0 ||
        set_number(body, "base_beta", "beta", args->beta) != 0 ||
        set_weights(body, "alpha", "weights_alpha", args->weights_alpha) != 0 ||
        set_weights(body, "beta", "weights_beta", args->weights_beta) != 0)
        return 2;
    if (args->precision != NULL) {
        int precision;
        if (ms_cli_parse_int("merge", "precision", args->precision, 0, &precision) != 0)
            return 2;
        json_object_set_new(body, "precision", json_integer(precision));
    }
    if (args->nan_policy != NULL)
        json_object_set_new(body, "nan_policy", json_string_nocheck(args->nan_policy));
    json_object_set_new(body, "weights_clip", json_boolean(args->weights_clip));
    json_object_set_new(body, "prune", json_boolean(args->prune));
    return 0;
}

/* The body's field names, said as this command's options. */
static const char *option_for_field(const char *field)
{
    static const char *const names[][2] = {
        {"base_alpha", "alpha"},        {"base_beta", "beta"},
        {"alpha", "weights_alpha"},     {"beta", "weights_beta"},
        {"merge_method", "merge_mode"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(field, names[i][0]) == 0)
            return names[i][1];
    return field;
}

/* The request parser's message without its "field 'X'" opening, which the
 * option name replaces. */
static const char *message_after_field(const char *message, const char *field)
{
    char opening[sizeof ((ms_error_detail *)0)->value + 16];
    snprintf(opening, sizeof opening, "field '%s'", field);
    if (strncmp(message, opening, strlen(opening)) != 0)
        return message;
    message += strlen(opening);
    return message + strspn(message, ": ");
}

/* A refused option is a usage error (2); what the service would refuse as
 * not offered (unsupported_option) is a failed operation (1), with the same
 * structured error. */
static int refuse_request(const ms_error *err, bool json)
{
    if (err->code != MS_ERR_INVALID_PARAMETER)
        return ms_cli_report_error(err, json);
    const char *field = err->detail_count > 0 && strcmp(err->details[0].name, "field") == 0
                            ? err->details[0].value
                            : "";
    char message[MS_PRINTABLE_SIZE(512)];
    ms_printable(message_after_field(err->message, field), message, sizeof message);
    ms_cli_usage_error("merge", "--%s %s", option_for_field(field), message);
    return 2;
}

static int build_request(const merge_arguments *args, ms_api_merge_request *request)
{
    json_t *body = json_object();
    if (build_body(args, body) != 0) {
        json_decref(body);
        return 2;
    }
    ms_error err;
    ms_error_clear(&err);
    ms_status status = ms_api_merge_request_from_json(body, request, &err);
    json_decref(body);
    if (status != MS_OK)
        return refuse_request(&err, args->json);
    if (args->threads != NULL &&
        ms_cli_parse_int("merge", "threads", args->threads, 0, &request->params.threads) != 0) {
        ms_api_merge_request_free(request);
        return 2;
    }
    return 0;
}

/* ---- running and reporting ---- */

static void on_progress(void *user_data, size_t done, size_t total, const char *current_key)
{
    ms_progress_display_update(user_data, done, total, current_key);
    ms_failpoint_pause(MS_FAILPOINT_PROGRESS_SLEEP);
}

static void print_json(const merge_arguments *args, const ms_api_merge_request *request,
                       const ms_merge_report *report)
{
    json_t *root = json_object();
    json_object_set_new(root, "params", ms_api_merge_request_to_json(request));
    json_t *result = json_object();
    json_object_set_new(result, "file", ms_api_json_text(args->output));
    json_object_set_new(result, "bytes", json_integer((json_int_t)report->output_bytes));
    json_object_set_new(result, "sha256", ms_api_json_text(report->output_sha256));
    json_object_set_new(root, "result", result);
    json_object_set_new(root, "report", ms_api_merge_report_to_json(report));
    ms_api_json_dumpf(root, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(root);
}

/* One line per block the merge used, then the keys kept from A for NaN. */
static void print_verbose(FILE *stream, const ms_merge_report *report)
{
    for (size_t i = 0; i < report->block_use_count; i++) {
        const ms_merge_block_use *use = &report->block_uses[i];
        const char *name = use->block < 0 ? "base" : NULL;
        if (name == NULL && report->block_form == MS_BLOCKS_NAMED)
            name = ms_block_name(use->block);
        if (name != NULL)
            fprintf(stream, "block %-6s", name);
        else
            fprintf(stream, "block %-6d", use->block);
        fprintf(stream, " alpha %-10g beta %-10g %zu keys\n", use->alpha, use->beta,
                use->key_count);
    }
    for (size_t i = 0; i < report->nan_key_count; i++) {
        char key[MS_PRINTABLE_SIZE(512)];
        fprintf(stream, "kept A for NaN: %s\n",
                ms_printable(report->nan_keys[i], key, sizeof key));
    }
}

static void print_summary(const merge_arguments *args, const ms_merge_report *report)
{
    char output[MS_PRINTABLE_SIZE(1024)];
    printf("merged %zu keys, copied %zu from A, took %zu from B (%s) -> %s "
           "(%llu bytes, sha256 %s)\n",
           report->merged_count, report->copied_from_a_count, report->taken_from_b_count,
           ms_merge_architecture_name(report->architecture),
           ms_printable(args->output, output, sizeof output),
           (unsigned long long)report->output_bytes, report->output_sha256);
    if (report->nan_key_count > 0)
        printf("%zu keys kept from A where the merge gave NaN or infinity\n",
               report->nan_key_count);
    if (report->rotate)
        printf("rotate cache: %llu hits, %llu misses, %llu bytes stored\n",
               (unsigned long long)report->rotate_cache_hits,
               (unsigned long long)report->rotate_cache_misses,
               (unsigned long long)report->rotate_cache_bytes_stored);
}

/* --cache_dir: the rotate decomposition cache (none without it). */
static int open_cache(const merge_arguments *args, ms_rotate_cache **cache)
{
    *cache = NULL;
    uint64_t capacity = MS_ROTATE_CACHE_DEFAULT_BYTES;
    if (args->cache_bytes != NULL && !ms_serve_parse_size(args->cache_bytes, &capacity))
        return ms_cli_usage_error("merge", "--cache_bytes: '%s' is not a size (e.g. 20G)",
                                  args->cache_bytes);
    if (args->cache_dir == NULL)
        return args->cache_bytes != NULL
                   ? ms_cli_usage_error("merge", "--cache_bytes needs --cache_dir")
                   : 0;
    ms_error err;
    ms_error_clear(&err);
    ms_status status = ms_rotate_cache_open(args->cache_dir, capacity, cache, &err);
    if (status != MS_OK)
        return ms_cli_failure_exit_status(status, ms_cli_report_error(&err, args->json));
    return 0;
}

static int run_merge(const merge_arguments *args, const ms_api_merge_request *request)
{
    ms_rotate_cache *cache = NULL;
    int exit_status = open_cache(args, &cache);
    if (exit_status != 0)
        return exit_status;
    ms_merge_params params = request->params;
    params.rotate_cache = cache;
    const atomic_int *cancel = ms_cli_cancel_on_signals();
    ms_progress_display display;
    ms_progress_display_init(&display, stderr);
    ms_merge_inputs inputs = {request->model_a, request->model_b, request->model_c};
    ms_merge_report report;
    memset(&report, 0, sizeof report);
    ms_error err;
    ms_error_clear(&err);
    ms_status status = ms_merge_files(&inputs, args->output, &params, on_progress,
                                      &display, cancel, &report, &err);
    ms_progress_display_finish(&display);
    if (cache != NULL)
        ms_rotate_cache_close(cache);
    if (status != MS_OK) {
        ms_merge_report_free(&report);
        return ms_cli_failure_exit_status(status, ms_cli_report_error(&err, args->json));
    }
    if (args->verbose)
        print_verbose(args->json ? stderr : stdout, &report);
    if (args->json)
        print_json(args, request, &report);
    else
        print_summary(args, &report);
    ms_merge_report_free(&report);
    return 0;
}

int ms_command_merge(int argc, char **argv)
{
    merge_arguments args;
    memset(&args, 0, sizeof args);
    if (parse_arguments(argc, argv, &args) != 0)
        return 2;
    if (args.help) {
        fputs(merge_usage, stdout);
        return 0;
    }
    if (args.output == NULL || args.output[0] == '\0')
        return ms_cli_usage_error("merge", "--output OUT is required");
    ms_api_merge_request request;
    int status = build_request(&args, &request);
    if (status != 0)
        return status;
    status = run_merge(&args, &request);
    ms_api_merge_request_free(&request);
    return status;
}
