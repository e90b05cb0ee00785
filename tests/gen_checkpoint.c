/* gen_checkpoint: writes a synthetic SD1.5- or SDXL-shaped checkpoint with
 * the real key names (checkpoint_generator.h), for the merge tests and the
 * merge benchmark; prints its tensor and parameter counts. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checkpoint_generator.h"

enum { MAX_DROPPED = 64 };

static void usage(FILE *stream)
{
    fprintf(stream,
            "usage: gen_checkpoint --arch sd15|sdxl --output FILE [--size full|small]\n"
            "                      [--dtype f16|bf16|f32|mixed] [--seed N] [--inpainting]\n"
            "                      [--old-te-names] [--extra-keys] [--drop KEY]...\n"
            "                      [--count-only]\n");
}

static int usage_error(const char *format, const char *value)
{
    fprintf(stderr, "gen_checkpoint: ");
    fprintf(stderr, format, value);
    fprintf(stderr, "\n");
    usage(stderr);
    return 2;
}

static int parse_dtype(const char *value, gen_checkpoint_options *options)
{
    static const struct {
        const char *name;
        gen_checkpoint_dtype dtype;
    } names[] = {
        {"f16", GEN_CHECKPOINT_F16},   {"fp16", GEN_CHECKPOINT_F16},
        {"bf16", GEN_CHECKPOINT_BF16}, {"f32", GEN_CHECKPOINT_F32},
        {"fp32", GEN_CHECKPOINT_F32},  {"mixed", GEN_CHECKPOINT_MIXED},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(value, names[i].name) == 0) {
            options->dtype = names[i].dtype;
            return 0;
        }
    }
    return usage_error("unknown --dtype '%s'", value);
}

static int parse_option(int option, const char *value, gen_checkpoint_options *options)
{
    char *end = NULL;
    switch (option) {
    case 'a':
        if (strcmp(value, "sd15") == 0)
            options->arch = GEN_CHECKPOINT_SD15;
        else if (strcmp(value, "sdxl") == 0)
            options->arch = GEN_CHECKPOINT_SDXL;
        else
            return usage_error("unknown --arch '%s'", value);
        return 0;
    case 'z':
        if (strcmp(value, "small") != 0 && strcmp(value, "full") != 0)
            return usage_error("unknown --size '%s'", value);
        options->full_size = strcmp(value, "full") == 0;
        return 0;
    case 'd':
        return parse_dtype(value, options);
    case 's':
        errno = 0;
        options->seed = strtoull(value, &end, 10);
        if (errno != 0 || *end != '\0' || value[0] == '\0' || value[0] == '-')
            return usage_error("--seed must be a non-negative integer, not '%s'", value);
        return 0;
    default:
        return 2;
    }
}

static double now_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + now.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"arch", required_argument, NULL, 'a'},   {"size", required_argument, NULL, 'z'},
        {"dtype", required_argument, NULL, 'd'},  {"seed", required_argument, NULL, 's'},
        {"inpainting", no_argument, NULL, 'i'},   {"old-te-names", no_argument, NULL, 't'},
        {"old_te_names", no_argument, NULL, 't'}, {"extra-keys", no_argument, NULL, 'x'},
        {"extra_keys", no_argument, NULL, 'x'},   {"drop", required_argument, NULL, 'r'},
        {"count-only", no_argument, NULL, 'c'},   {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    gen_checkpoint_options options;
    gen_checkpoint_options_init(&options);
    const char *dropped[MAX_DROPPED];
    const char *output = NULL;
    bool count_only = false;
    int option;
    while ((option = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        int status = 0;
        if (option == 'i')
            options.inpainting = true;
        else if (option == 't')
            options.old_te_names = true;
        else if (option == 'x')
            options.extra_keys = true;
        else if (option == 'c')
            count_only = true;
        else if (option == 'o')
            output = optarg;
        else if (option == 'r') {
            if (options.drop_key_count == MAX_DROPPED)
                return usage_error("at most %s --drop options", "64");
            dropped[options.drop_key_count++] = optarg;
            options.drop_keys = dropped;
        } else if (option == 'h') {
            usage(stdout);
            return 0;
        } else if (option == '?') {
            usage(stderr);
            return 2;
        } else
            status = parse_option(option, optarg, &options);
        if (status != 0)
            return status;
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    gen_checkpoint_totals totals;
    if (count_only) {
        gen_checkpoint_count(&options, &totals);
        printf("%zu tensors, %llu parameters\n", totals.tensor_count,
               (unsigned long long)totals.parameter_count);
        return 0;
    }
    if (output == NULL)
        return usage_error("%s is required", "--output");
    ms_error err;
    ms_error_clear(&err);
    double start = now_seconds();
    if (gen_checkpoint_write(&options, output, &totals, &err) != MS_OK) {
        fprintf(stderr, "gen_checkpoint: %s: %s%s%s\n", ms_status_name(err.code), err.message,
                err.key[0] != '\0' ? " key " : "", err.key);
        return 1;
    }
    printf("%s: %zu tensors, %llu parameters, %llu bytes, %.2f s\n", output,
           totals.tensor_count, (unsigned long long)totals.parameter_count,
           (unsigned long long)totals.file_bytes, now_seconds() - start);
    return 0;
}
