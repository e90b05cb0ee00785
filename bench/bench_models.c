/* The benchmarks' checkpoints and build folder (bench_models.h). */
#include "bench/bench_models.h"

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
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
