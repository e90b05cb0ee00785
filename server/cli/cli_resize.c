/* mergesvd resize: kohya resize_lora.py on the command line, through the
 * same core call (ms_resize_file) as the HTTP jobs. */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/json_text.h"
#include "cli_options.h"
#include "cli_signals.h"
#include "commands.h"
#include "server/failpoint.h"
#include "server/printable.h"
#include "progress_display.h"

static const char resize_usage[] =
    "usage: mergesvd resize --model IN --save_to OUT [--new_rank N] [--new_conv_rank N]\n"
    "                       [--dynamic_method sv_ratio|sv_fro|sv_cumulative\n"
    "                        --dynamic_param P] [--save_precision float|fp16|bf16]\n"
    "                       [--threads N] [--verbose] [--json]\n"
    "\n"
    "Resizes a LoRA with kohya-ss resize_lora.py semantics. Options take\n"
    "underscores or dashes (--new_rank, --new-rank) and --opt=value.\n"
    "  --model IN            input LoRA (.safetensors)\n"
    "  --save_to OUT         output file (written atomically)\n"
    "  --new_rank N          rank cap (default 4)\n"
    "  --new_conv_rank N     rank cap for conv modules (default new_rank)\n"
    "  --dynamic_method M    choose each module's rank from its singular values\n"
    "  --dynamic_param P     sv_ratio: > 1; sv_fro, sv_cumulative: in (0, 1]\n"
    "  --save_precision P    output dtype (default: the input's)\n"
    "  --threads N           module workers (default 0: every core)\n"
    "  --verbose             one line per module and the mean Frobenius retention\n"
    "  --json                print the job report as JSON on stdout\n";

typedef struct resize_arguments {
    const char *model;
    const char *save_to;
    const char *new_rank;
    const char *new_conv_rank;
    const char *dynamic_method;
    const char *dynamic_param;
    const char *save_precision;
    const char *threads;
    bool verbose;
    bool json;
    bool help;
} resize_arguments;

static void on_progress(void *user_data, size_t done, size_t total, const char *current_key)
{
    ms_progress_display_update(user_data, done, total, current_key);
    ms_failpoint_pause(MS_FAILPOINT_PROGRESS_SLEEP);
}

static int parse_arguments(int argc, char **argv, resize_arguments *args)
{
    const ms_cli_option options[] = {
        {"model", &args->model, NULL},
        {"save_to", &args->save_to, NULL},
        {"new_rank", &args->new_rank, NULL},
        {"new_conv_rank", &args->new_conv_rank, NULL},
        {"dynamic_method", &args->dynamic_method, NULL},
        {"dynamic_param", &args->dynamic_param, NULL},
        {"save_precision", &args->save_precision, NULL},
        {"threads", &args->threads, NULL},
        {"verbose", NULL, &args->verbose},
        {"json", NULL, &args->json},
        {"help", NULL, &args->help},
    };
    ms_cli_spec spec = {"resize", options, sizeof options / sizeof options[0], NULL, 0};
    int positional_count = 0;
    return ms_cli_parse(&spec, argc, argv, &positional_count);
}

static int parse_method_and_precision(const resize_arguments *args, ms_resize_params *params)
{
    if (args->dynamic_method != NULL &&
        (args->dynamic_method[0] == '\0' ||
         !ms_dynamic_method_from_name(args->dynamic_method, &params->dynamic_method)))
        return ms_cli_usage_error("resize",
                                  "--dynamic_method must be sv_ratio, sv_fro or "
                                  "sv_cumulative, not '%s'",
                                  args->dynamic_method);
    if (args->dynamic_param != NULL) {
        if (ms_cli_parse_double("resize", "dynamic_param", args->dynamic_param,
                                &params->dynamic_param) != 0)
            return 2;
        params->has_dynamic_param = true;
    }
    if (args->save_precision != NULL &&
        (!ms_save_precision_from_name(args->save_precision, &params->save_precision) ||
         params->save_precision == MS_SAVE_PRECISION_INPUT))
        return ms_cli_usage_error("resize", "--save_precision must be float, fp16 or bf16, not '%s'",
                                  args->save_precision);
    return 0;
}

static int build_params(const resize_arguments *args, ms_resize_params *params)
{
    ms_resize_params_init(params);
    if (args->model == NULL || args->model[0] == '\0')
        return ms_cli_usage_error("resize", "--model IN is required");
    if (args->save_to == NULL || args->save_to[0] == '\0')
        return ms_cli_usage_error("resize", "--save_to OUT is required");
    if (args->new_rank != NULL &&
        ms_cli_parse_int("resize", "new_rank", args->new_rank, 1, &params->new_rank) != 0)
        return 2;
    params->new_conv_rank = params->new_rank;
    if (args->new_conv_rank != NULL &&
        ms_cli_parse_int("resize", "new_conv_rank", args->new_conv_rank, 1,
                         &params->new_conv_rank) != 0)
        return 2;
    if (args->threads != NULL &&
        ms_cli_parse_int("resize", "threads", args->threads, 0, &params->threads) != 0)
        return 2;
    if (parse_method_and_precision(args, params) != 0)
        return 2;
    ms_error err;
    ms_error_clear(&err);
    if (ms_resize_params_validate(params, &err) != MS_OK)
        return ms_cli_usage_error("resize", "%s", err.message);
    return 0;
}

/* kohya's verbose lines: one per module, then the mean retention. */
static void print_verbose(FILE *stream, const ms_resize_report *report)
{
    for (size_t i = 0; i < report->module_count; i++) {
        const ms_resize_module_report *module = &report->modules[i];
        char name[MS_PRINTABLE_SIZE(512)];
        fprintf(stream,
                "%-75s | rank %d -> %d, alpha %g -> %g | sum(S) retained: %.1f%%, "
                "fro retained: %.1f%%, max(S) ratio: %.1f\n",
                ms_printable(module->name, name, sizeof name), module->old_rank,
                module->new_rank, module->old_alpha,
                module->new_alpha, 100 * module->sum_retained, 100 * module->fro_retained,
                module->max_ratio);
    }
    fprintf(stream, "Average Frobenius norm retention: %.2f%% | std: %.3f\n",
            100 * report->fro_retained_mean, report->fro_retained_std);
}

static void print_json(const resize_arguments *args, const ms_resize_params *params,
                       const ms_resize_report *report)
{
    ms_api_resize_request request = {.model = (char *)args->model, .output_name = NULL,
                                     .params = *params};
    json_t *root = json_object();
    json_object_set_new(root, "params", ms_api_resize_request_to_json(&request));
    json_t *result = json_object();
    json_object_set_new(result, "file", ms_api_json_text(args->save_to));
    json_object_set_new(result, "bytes", json_integer((json_int_t)report->output_bytes));
    json_object_set_new(result, "sha256", ms_api_json_text(report->output_sha256));
    json_object_set_new(root, "result", result);
    json_object_set_new(root, "report", ms_api_resize_report_to_json(report));
    ms_api_json_dumpf(root, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(root);
}

static void print_summary(const resize_arguments *args, const ms_resize_report *report)
{
    printf("resized %zu modules, copied %zu tensors -> %s (%llu bytes, sha256 %s)\n",
           report->module_count, report->copied_tensor_count, args->save_to,
           (unsigned long long)report->output_bytes, report->output_sha256);
    printf("mean Frobenius retention %.2f%% (std %.3f)\n", 100 * report->fro_retained_mean,
           report->fro_retained_std);
}

int ms_command_resize(int argc, char **argv)
{
    resize_arguments args;
    memset(&args, 0, sizeof args);
    if (parse_arguments(argc, argv, &args) != 0)
        return 2;
    if (args.help) {
        fputs(resize_usage, stdout);
        return 0;
    }
    ms_resize_params params;
    if (build_params(&args, &params) != 0)
        return 2;

    /* Ctrl-C stops between modules (cli_signals.h) */
    const atomic_int *cancel = ms_cli_cancel_on_signals();
    ms_progress_display display;
    ms_progress_display_init(&display, stderr);
    ms_resize_report report;
    memset(&report, 0, sizeof report);
    ms_error err;
    ms_error_clear(&err);
    ms_status status = ms_resize_file(args.model, args.save_to, &params,
                                      on_progress, &display, cancel,
                                      &report, &err);
    ms_progress_display_finish(&display);
    if (status != MS_OK) {
        ms_resize_report_free(&report);
        return ms_cli_failure_exit_status(status, ms_cli_report_error(&err, args.json));
    }
    if (args.verbose)
        print_verbose(args.json ? stderr : stdout, &report);
    if (args.json)
        print_json(&args, &params, &report);
    else
        print_summary(&args, &report);
    ms_resize_report_free(&report);
    return 0;
}
