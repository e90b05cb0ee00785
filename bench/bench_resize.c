/* bench_resize: times `mergesvd resize` on a full-size SD1.5 rank-128 fp16
 * LoRA (generated once into --work DIR) with sv_fro 0.9, sv_ratio 4 and a
 * fixed rank 32; prints the median wall time and the child's peak RSS of
 * each case next to the floor: copying a file of the output's size with
 * fsync, measured in the same run (benchmarks.md). */
#include <errno.h>
#include <limits.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/bench_common.h"
#include "tests/lora_generator.h"

enum { MAX_RUNS = 50 };

typedef struct bench_case {
    const char *label;
    const char *arguments[8];
} bench_case;

static const bench_case cases[] = {
    {"sv_fro 0.9", {"--new_rank", "128", "--dynamic_method", "sv_fro", "--dynamic_param", "0.9", NULL}},
    {"sv_ratio 4", {"--new_rank", "128", "--dynamic_method", "sv_ratio", "--dynamic_param", "4", NULL}},
    {"rank 32", {"--new_rank", "32", NULL}},
};

/* Runs mergesvd resize once; returns 0 and fills result, -1 on failure. */
static int run_resize(const char *mergesvd, const char *input, const char *output,
                      const bench_case *bench, bench_run_result *result)
{
    const char *argv[24];
    int argc = 0;
    argv[argc++] = mergesvd;
    argv[argc++] = "resize";
    argv[argc++] = "--model";
    argv[argc++] = input;
    argv[argc++] = "--save_to";
    argv[argc++] = output;
    for (int i = 0; bench->arguments[i] != NULL; i++)
        argv[argc++] = bench->arguments[i];
    argv[argc] = NULL;
    unlink(output);
    return bench_run_child("bench_resize", argv, bench->label, result);
}

static int prepare_input(const char *work, char *input, size_t size)
{
    snprintf(input, size, "%s/sd15_rank128_fp16.safetensors", work);
    if (access(input, R_OK) == 0)
        return 0;
    if (mkdir(work, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "bench_resize: cannot create %s: %s\n", work, strerror(errno));
        return -1;
    }
    gen_lora_options options;
    gen_lora_options_init(&options);
    options.arch = GEN_LORA_SD15;
    options.rank = 128;
    options.full_size = true;
    options.dtype = MS_DTYPE_F16;
    options.seed = 20261122;
    ms_error err;
    ms_error_clear(&err);
    double start = bench_now_seconds();
    if (gen_lora_write(&options, input, NULL, &err) != MS_OK) {
        fprintf(stderr, "bench_resize: generating %s: %s\n", input, err.message);
        return -1;
    }
    printf("generated %s (%.1f MB) in %.2f s\n", input, bench_file_size(input) / 1e6,
           bench_now_seconds() - start);
    return 0;
}

/* Default binary: ../mergesvd relative to this program (build dir layout). */
static void default_mergesvd(char *path, size_t size)
{
    char self[PATH_MAX];
    ssize_t length = readlink("/proc/self/exe", self, sizeof self - 1);
    if (length <= 0) {
        snprintf(path, size, "./mergesvd");
        return;
    }
    self[length] = '\0';
    char *directory = dirname(self);
    snprintf(path, size, "%s/../mergesvd", directory);
}

static void usage(FILE *stream)
{
    fprintf(stream, "usage: bench_resize [--work DIR] [--mergesvd PATH] [--runs N]\n"
                    "  --work DIR      input cache and outputs (default /tmp/mergesvd-bench)\n"
                    "  --mergesvd PATH binary to time (default: ../mergesvd beside this one)\n"
                    "  --runs N        runs per case, median reported (default 3, at least 3)\n");
}

static int bench_one(const char *mergesvd, const char *work, const char *input,
                     const bench_case *bench, int runs)
{
    char output[PATH_MAX], copy[PATH_MAX];
    snprintf(output, sizeof output, "%s/resized.safetensors", work);
    snprintf(copy, sizeof copy, "%s/floor_copy.safetensors", work);
    double seconds[MAX_RUNS], floors[MAX_RUNS];
    long peak_rss_kb = 0;
    for (int run = 0; run < runs; run++) {
        bench_run_result result;
        if (run_resize(mergesvd, input, output, bench, &result) != 0)
            return -1;
        seconds[run] = result.seconds;
        if (result.peak_rss_kb > peak_rss_kb)
            peak_rss_kb = result.peak_rss_kb;
        floors[run] = bench_copy_with_fsync(output, copy);
        if (floors[run] < 0) {
            fprintf(stderr, "bench_resize: floor copy failed: %s\n", strerror(errno));
            return -1;
        }
    }
    long long output_bytes = bench_file_size(output);
    double wall = bench_median(seconds, runs), floor = bench_median(floors, runs);
    printf("%-12s %9.3f %9.3f %9.3f %10.1f %10.1f %9.3f %7.2fx\n", bench->label, wall,
           seconds[0], seconds[runs - 1], peak_rss_kb / 1024.0, output_bytes / 1e6, floor,
           floor > 0 ? wall / floor : 0.0);
    unlink(output);
    return 0;
}

int main(int argc, char **argv)
{
    const char *work = "/tmp/mergesvd-bench";
    char mergesvd[PATH_MAX];
    default_mergesvd(mergesvd, sizeof mergesvd);
    int runs = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--work") == 0 && i + 1 < argc) {
            work = argv[++i];
        } else if (strcmp(argv[i], "--mergesvd") == 0 && i + 1 < argc) {
            snprintf(mergesvd, sizeof mergesvd, "%s", argv[++i]);
        } else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = atoi(argv[++i]);
            if (runs < 3 || runs > MAX_RUNS) {
                fprintf(stderr, "bench_resize: --runs must be in 3..%d\n", MAX_RUNS);
                return 2;
            }
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (access(mergesvd, X_OK) != 0) {
        fprintf(stderr, "bench_resize: no mergesvd at %s (use --mergesvd PATH)\n", mergesvd);
        return 2;
    }
    char input[PATH_MAX];
    if (prepare_input(work, input, sizeof input) != 0)
        return 1;
    printf("input %s (%.1f MB), binary %s, %d runs per case\n", input,
           bench_file_size(input) / 1e6, mergesvd, runs);
    printf("targets: < 1.5 s, < 400 MB peak RSS\n");
    printf("%-12s %9s %9s %9s %10s %10s %9s %8s\n", "case", "median_s", "min_s", "max_s",
           "peak_MB", "output_MB", "floor_s", "vs_floor");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (bench_one(mergesvd, work, input, &cases[i], runs) != 0)
            return 1;
    return 0;
}
