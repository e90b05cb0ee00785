/* The benchmarks' checkpoints and build folder (bench_models.h). */
#include "bench/bench_models.h"

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench_common.h"

const char *bench_arch_name(gen_checkpoint_arch arch)
{
    return arch == GEN_CHECKPOINT_SDXL ? "sdxl" : "sd15";
}

int bench_prepare_checkpoint(const char *program, const char *folder, gen_checkpoint_arch arch,
                             char letter, char *path, size_t size)
{
    snprintf(path, size, "%s/%s_%c_fp16.safetensors", folder, bench_arch_name(arch), letter);
    if (access(path, R_OK) == 0)
        return 0;
    gen_checkpoint_options options;
    gen_checkpoint_options_init(&options);
    options.arch = arch;
    options.full_size = true;
    options.dtype = GEN_CHECKPOINT_F16;
    options.seed = 20261206 + (uint64_t)(letter - 'a');
    ms_error err;
    ms_error_clear(&err);
    gen_checkpoint_totals totals;
    double start = bench_now_seconds();
    if (gen_checkpoint_write(&options, path, &totals, &err) != MS_OK) {
        fprintf(stderr, "%s: generating %s: %s\n", program, path, err.message);
        return -1;
    }
    printf("generated %s: %zu tensors, %.1f M parameters, %.1f MB in %.1f s\n", path,
           totals.tensor_count, totals.parameter_count / 1e6, totals.file_bytes / 1e6,
           bench_now_seconds() - start);
    fflush(stdout);
    return 0;
}

void bench_build_folder(char *path, size_t size)
{
    char self[PATH_MAX];
    ssize_t length = readlink("/proc/self/exe", self, sizeof self - 1);
    if (length <= 0) {
        snprintf(path, size, ".");
        return;
    }
    self[length] = '\0';
    snprintf(path, size, "%s/..", dirname(self));
}

void bench_model_options_init(bench_model_options *options)
{
    char build[PATH_MAX];
    bench_build_folder(build, sizeof build);
    snprintf(options->mergesvd, sizeof options->mergesvd, "%.*s/mergesvd", PATH_MAX - 16, build);
    snprintf(options->work, sizeof options->work, "%.*s/bench-data", PATH_MAX - 16, build);
    options->runs = 3;
}

int bench_model_option(const char *program, const char *name, const char *value,
                       bench_model_options *options)
{
    if (strcmp(name, "--work") != 0 && strcmp(name, "--mergesvd") != 0 &&
        strcmp(name, "--runs") != 0)
        return 0;
    if (value == NULL) {
        fprintf(stderr, "%s: %s needs a value\n", program, name);
        return -1;
    }
    if (strcmp(name, "--work") == 0) {
        snprintf(options->work, sizeof options->work, "%s", value);
    } else if (strcmp(name, "--mergesvd") == 0) {
        snprintf(options->mergesvd, sizeof options->mergesvd, "%s", value);
    } else {
        char *end = NULL;
        long runs = strtol(value, &end, 10);
        if (*end != '\0' || runs < 3 || runs > BENCH_MAX_RUNS) {
            fprintf(stderr, "%s: --runs must be in 3..%d\n", program, BENCH_MAX_RUNS);
            return -1;
        }
        options->runs = (int)runs;
    }
    return 1;
}
