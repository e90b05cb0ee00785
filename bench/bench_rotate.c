/* bench_rotate: times `mergesvd merge --merge_mode rotate` on the two
 * full-size SD1.5-shaped fp16 checkpoints of bench_merge (generated once,
 * reused): alpha 0.5, beta 0.3 with an empty decomposition cache, then
 * alpha 0.7, beta 0.1 with the cache it left, --runs times over.  Prints
 * each run's wall seconds and peak RSS, the cache's bytes, and where the
 * workers' time went (SVD, eigendecomposition, products, I/O: the report's
 * rotate_seconds), then the median of the cold and of the warm runs with
 * the fsync'd copy floor. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "bench/bench_common.h"
#include "bench/bench_models.h"

typedef struct rotate_config {
    bench_model_options shared;
    char threads[16];
} rotate_config;

/* One merge's figures, for the medians. */
typedef struct case_figures {
    double seconds;
    double peak_mb;
    double floor_seconds;
} case_figures;

static double number_at(json_t *report, const char *object, const char *field)
{
    return json_number_value(json_object_get(json_object_get(report, object), field));
}

/* One merge; prints its line.  0, or -1 when it failed. */
static int run_case(const rotate_config *config, const char *const models[2], const char *alpha,
                    const char *beta, const char *label, case_figures *figures)
{
    char output[PATH_MAX + 32], cache[PATH_MAX + 32], report_path[PATH_MAX + 32];
    char copy[PATH_MAX + 32];
    snprintf(output, sizeof output, "%s/rotated.safetensors", config->shared.work);
    snprintf(cache, sizeof cache, "%s/rotate-cache", config->shared.work);
    snprintf(report_path, sizeof report_path, "%s/rotate-report.json", config->shared.work);
    snprintf(copy, sizeof copy, "%s/floor_copy.safetensors", config->shared.work);
    const char *argv[] = {config->shared.mergesvd, "merge", "--model_a", models[0], "--model_b",
                          models[1], "--merge_mode", "rotate", "--alpha", alpha, "--beta", beta,
                          "--cache_dir", cache, "--cache_bytes", "64G", "--threads",
                          config->threads, "--json", "--output", output, NULL};
    unlink(output);
    bench_run_result result;
    if (bench_run_child_to("bench_rotate", argv, label, report_path, &result) != 0)
        return -1;
    json_error_t error;
    json_t *printed = json_load_file(report_path, 0, &error);
    json_t *report = json_object_get(printed, "report");
    if (report == NULL) {
        fprintf(stderr, "bench_rotate: no report in %s: %s\n", report_path, error.text);
        json_decref(printed);
        return -1;
    }
    double svd = number_at(report, "rotate_seconds", "svd");
    double eigen = number_at(report, "rotate_seconds", "eigen");
    double products = number_at(report, "rotate_seconds", "products");
    double io = number_at(report, "rotate_seconds", "io");
    double busy = svd + eigen + products + io;
    double floor = bench_copy_with_fsync(models[0], copy);   /* as bench_merge's */
    printf("%-10s alpha %-4s beta %-4s %9.1f s %9.1f MB  hits %5.0f misses %5.0f  "
           "cache %8.1f MB stored  svd %4.1f%% eigen %4.1f%% products %4.1f%% io %4.1f%%  "
           "(worker s %.1f, floor %.2f s)\n",
           label, alpha, beta, result.seconds, result.peak_rss_kb / 1024.0,
           number_at(report, "rotate_cache", "hits"),
           number_at(report, "rotate_cache", "misses"),
           number_at(report, "rotate_cache", "bytes_stored") / 1e6,
           busy > 0 ? 100 * svd / busy : 0.0, busy > 0 ? 100 * eigen / busy : 0.0,
           busy > 0 ? 100 * products / busy : 0.0, busy > 0 ? 100 * io / busy : 0.0, busy, floor);
    fflush(stdout);
    json_decref(printed);
    unlink(output);
    *figures = (case_figures){result.seconds, result.peak_rss_kb / 1024.0, floor};
    return floor < 0 ? -1 : 0;
}

static void usage(FILE *stream)
{
    fprintf(stream,
            "usage: bench_rotate [--work DIR] [--mergesvd PATH] [--runs N] [--threads N]\n"
            "  --work DIR      model cache, decomposition cache and output (default:\n"
            "                  bench-data/ in the build folder, as bench_merge)\n"
            "  --mergesvd PATH binary to time (default: mergesvd in the build folder)\n"
            "  --runs N        cold and warm pairs, medians reported (default 3, at least 3)\n"
            "  --threads N     tensor workers (default 0: every core)\n");
}

static int parse_arguments(int argc, char **argv, rotate_config *config)
{
    bench_model_options_init(&config->shared);
    snprintf(config->threads, sizeof config->threads, "0");
    for (int i = 1; i < argc; i += 2) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        int shared = bench_model_option("bench_rotate", argv[i], value, &config->shared);
        if (shared < 0)
            return -1;
        if (shared > 0)
            continue;
        if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(argv[i], "--threads") == 0 && value != NULL &&
                   strspn(value, "0123456789") == strlen(value) && strlen(value) < 4) {
            snprintf(config->threads, sizeof config->threads, "%s", value);
        } else {
            usage(stderr);
            return -1;
        }
    }
    return 0;
}

/* The cache starts empty: its files removed (nothing else is in it). */
static int empty_cache(const rotate_config *config)
{
    char command[PATH_MAX + 64];
    snprintf(command, sizeof command, "rm -rf '%s/rotate-cache'", config->shared.work);
    return system(command) == 0 ? 0 : -1;
}

/* The median line of one label's runs. */
static void print_median(const char *label, const case_figures *figures, int runs)
{
    double seconds[BENCH_MAX_RUNS], floors[BENCH_MAX_RUNS], peak_mb = 0;
    for (int i = 0; i < runs; i++) {
        seconds[i] = figures[i].seconds;
        floors[i] = figures[i].floor_seconds;
        peak_mb = figures[i].peak_mb > peak_mb ? figures[i].peak_mb : peak_mb;
    }
    double median = bench_median(seconds, runs), floor = bench_median(floors, runs);
    printf("median %-4s of %d: %.1f s (%.1f..%.1f), peak RSS %.1f MB at most, "
           "floor %.2f s, %.1fx the floor\n",
           label, runs, median, seconds[0], seconds[runs - 1], peak_mb, floor,
           floor > 0 ? median / floor : 0.0);
}

int main(int argc, char **argv)
{
    rotate_config config;
    memset(&config, 0, sizeof config);
    if (parse_arguments(argc, argv, &config) != 0)
        return 2;
    if (access(config.shared.mergesvd, X_OK) != 0) {
        fprintf(stderr, "bench_rotate: no mergesvd at %s (use --mergesvd PATH)\n",
                config.shared.mergesvd);
        return 2;
    }
    if (mkdir(config.shared.work, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "bench_rotate: cannot create %s: %s\n", config.shared.work,
                strerror(errno));
        return 1;
    }
    static char paths[2][PATH_MAX + 64];
    for (int i = 0; i < 2; i++)
        if (bench_prepare_checkpoint("bench_rotate", config.shared.work, GEN_CHECKPOINT_SD15,
                                     (char)('a' + i), paths[i], sizeof paths[i]) != 0)
            return 1;
    const char *const models[2] = {paths[0], paths[1]};
    printf("binary %s, SD1.5 fp16 pair in %s, threads %s, %d runs\n", config.shared.mergesvd,
           config.shared.work, config.threads, config.shared.runs);
    fflush(stdout);
    case_figures cold[BENCH_MAX_RUNS], warm[BENCH_MAX_RUNS];
    for (int run = 0; run < config.shared.runs; run++) {
        if (empty_cache(&config) != 0) {
            fprintf(stderr, "bench_rotate: cannot empty %s/rotate-cache\n", config.shared.work);
            return 1;
        }
        if (run_case(&config, models, "0.5", "0.3", "cold", &cold[run]) != 0 ||
            run_case(&config, models, "0.7", "0.1", "warm", &warm[run]) != 0)
            return 1;
    }
    print_median("cold", cold, config.shared.runs);
    print_median("warm", warm, config.shared.runs);
    return 0;
}
