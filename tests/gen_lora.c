/* gen_lora: writes a synthetic LoRA with real SD1.5/SDXL module names and
 * shapes (lora_generator.h).  Used by the tests, deploy/start's sample
 * models and the benchmarks. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lora_generator.h"

static void usage(FILE *stream)
{
    fprintf(stream,
            "usage: gen_lora --arch sd15|sdxl --rank N --output PATH [--size small|full]\n"
            "                [--dtype fp16|bf16|fp32] [--conv]\n"
            "                [--spelling kohya|peft|control|mixed] [--seed S] [--zero-module]\n");
}

static int usage_error(const char *format, const char *value)
{
    fprintf(stderr, "gen_lora: ");
    fprintf(stderr, format, value);
    fprintf(stderr, "\n");
    usage(stderr);
    return 2;
}

static int parse_option(int option, const char *value, gen_lora_options *options)
{
    char *end = NULL;
    switch (option) {
    case 'a':
        if (strcmp(value, "sd15") == 0)
            options->arch = GEN_LORA_SD15;
        else if (strcmp(value, "sdxl") == 0)
            options->arch = GEN_LORA_SDXL;
        else
            return usage_error("unknown --arch '%s'", value);
        return 0;
    case 'r': {
        errno = 0;
        long rank = strtol(value, &end, 10);
        if (errno != 0 || *end != '\0' || rank < 1 || rank > 4096)
            return usage_error("--rank must be an integer in 1..4096, not '%s'", value);
        options->rank = (int)rank;
        return 0;
    }
    case 'z':
        if (strcmp(value, "small") != 0 && strcmp(value, "full") != 0)
            return usage_error("unknown --size '%s'", value);
        options->full_size = strcmp(value, "full") == 0;
        return 0;
    case 'd':
        if (strcmp(value, "fp16") == 0)
            options->dtype = MS_DTYPE_F16;
        else if (strcmp(value, "bf16") == 0)
            options->dtype = MS_DTYPE_BF16;
        else if (strcmp(value, "fp32") == 0 || strcmp(value, "float") == 0)
            options->dtype = MS_DTYPE_F32;
        else
            return usage_error("unknown --dtype '%s'", value);
        return 0;
    case 'p': {
        static const char *const names[] = {"kohya", "peft", "control", "mixed"};
        for (int i = 0; i < 4; i++) {
            if (strcmp(value, names[i]) == 0) {
                options->spelling = (gen_lora_spelling)i;
                return 0;
            }
        }
        return usage_error("unknown --spelling '%s'", value);
    }
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

int main(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"arch", required_argument, NULL, 'a'},    {"rank", required_argument, NULL, 'r'},
        {"size", required_argument, NULL, 'z'},    {"dtype", required_argument, NULL, 'd'},
        {"conv", no_argument, NULL, 'c'},          {"spelling", required_argument, NULL, 'p'},
        {"seed", required_argument, NULL, 's'},    {"zero-module", no_argument, NULL, '0'},
        {"zero_module", no_argument, NULL, '0'},   {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    gen_lora_options options;
    gen_lora_options_init(&options);
    const char *output = NULL;
    int option;
    while ((option = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        int status = 0;
        if (option == 'c')
            options.conv = true;
        else if (option == '0')
            options.zero_module = true;
        else if (option == 'o')
            output = optarg;
        else if (option == 'h') {
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
    if (output == NULL)
        return usage_error("%s", "--output is required");
    ms_error err;
    ms_error_clear(&err);
    int modules = 0;
    if (gen_lora_write(&options, output, &modules, &err) != MS_OK) {
        fprintf(stderr, "gen_lora: %s: %s%s%s\n", ms_status_name(err.code), err.message,
                err.key[0] ? " key: " : "", err.key);
        return 1;
    }
    fprintf(stderr, "gen_lora: wrote %d modules to %s\n", modules, output);
    return 0;
}
