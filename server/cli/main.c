/* mergesvd: one binary, subcommands resize, merge, inspect, serve. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"resize", ms_command_resize, "shrink a LoRA (kohya resize_lora.py semantics)"},
    {"merge", ms_command_merge, "merge checkpoints (sd-meh merge_models semantics)"},
    {"inspect", ms_command_inspect, "show a safetensors file's tensors, metadata and kind"},
    {"serve", ms_command_serve, "run the HTTP service"},
};

static void print_usage(FILE *stream)
{
    fprintf(stream, "usage: mergesvd COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(stream, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(stream, "\n`mergesvd COMMAND --help` shows a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        print_usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "mergesvd: unknown command '%s'\n\n", argv[1]);
    print_usage(stderr);
    return 2;
}
