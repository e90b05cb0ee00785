/* bench_merge: times `mergesvd merge` on full-size SD1.5- and SDXL-shaped fp16
 * checkpoints (generated once into a cache folder and reused) for
 * weighted_sum, add_difference, ties_add_difference and
 * distribution_crossover; prints each case's median wall time over the runs,
 * its median CPU time (user + system of every thread: the work done, which
 * wall time alone hides behind the cores and the disk), the child's peak RSS
 * and the floor: copying a file of the output's size with fsync, measured in
 * the same run.  Before each run the case's models are read once, untimed
 * (see warm_models). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/bench_common.h"
#include "bench/bench_models.h"
#include "tests/checkpoint_generator.h"

enum { MAX_METHODS = 16 };

/* sd-meh's methods and how many models each takes. */
static const struct {
    const char *name;
    int model_count;
} known_methods[] = {
    {"weighted_sum", 2},
    {"weighted_subtraction", 2},
    {"tensor_sum", 2},
    {"add_difference", 3},
    {"sum_twice", 3},
    {"triple_sum", 3},
    {"euclidean_add_difference", 3},
    {"multiply_difference", 3},
    {"similarity_add_difference", 3},
    {"ties_add_difference", 3},
    {"top_k_tensor_sum", 2},
    {"distribution_crossover", 3},
};

static const char *const default_methods[] = {"weighted_sum", "add_difference",
                                              "ties_add_difference", "distribution_crossover"};

typedef struct bench_config {
    bench_model_options shared;
    bool archs[2];                      /* by gen_checkpoint_arch */
    const char *methods[MAX_METHODS];
    int method_count;
} bench_config;

static int model_count_of(const char *method)
{
    for (size_t i = 0; i < sizeof known_methods / sizeof known_methods[0]; i++)
        if (strcmp(known_methods[i].name, method) == 0)
            return known_methods[i].model_count;
    return 0;
}

/* Runs mergesvd merge once; 0 and result filled, -1 on failure. */
static int run_merge(const bench_config *config, const char *const models[3], int model_count,
                     const char *method, const char *output, bench_run_result *result)
{
    const char *argv[24];
    int argc = 0;
    argv[argc++] = config->shared.mergesvd;
    argv[argc++] = "merge";
    argv[argc++] = "--model_a";
    argv[argc++] = models[0];
    argv[argc++] = "--model_b";
    argv[argc++] = models[1];
    if (model_count == 3) {
        argv[argc++] = "--model_c";
        argv[argc++] = models[2];
    }
    argv[argc++] = "--merge_mode";
    argv[argc++] = method;
    argv[argc++] = "--alpha";
    argv[argc++] = "0.5";
    argv[argc++] = "--beta";
    argv[argc++] = "0.3";
    argv[argc++] = "--output";
    argv[argc++] = output;
    argv[argc] = NULL;
    unlink(output);
    return bench_run_child("bench_merge", argv, method, result);
}

/* The case's models read once, untimed: the merge then reads them from the
 * page cache, as the floor reads model A (just read by the merge), and as
 * an optimisation loop that merges the same pair again finds them.  Without
 * it a run read from disk whatever the previous case, or the floor's copy
 * of the run before, had pushed out of the cache: SDXL's three models take
 * 21 of the machine's 24 GB, and SDXL weighted_sum's runs spread from 15.4
 * to 23.5 s against a floor of 10.0.
 *
 * They are read as the merge maps them (MADV_HUGEPAGE), so that they are
 * cached as a merge of the loop leaves them: in 2 MiB folios, which the
 * mapping then maps whole.  A file the generator has just written sits in
 * the cache in the small folios of its writes, and reading those through a
 * mapping is some 4x slower on these virtual machines (2.1 against 9.2 GB/s
 * converted in a first pass over a populated mapping: each 4 KiB page's
 * first access costs about 1.5 us, the PVM hypervisor's shadow page
 * tables filling in): such a file is dropped from the cache and read
 * again, once. */
static double pmd_mapped_share(const void *map, size_t length)
{
    char wanted[32], line[512];
    snprintf(wanted, sizeof wanted, "%lx-", (unsigned long)(uintptr_t)map);
    FILE *smaps = fopen("/proc/self/smaps", "r");
    double share = -1;
    bool inside = false;
    while (smaps != NULL && fgets(line, sizeof line, smaps) != NULL) {
        if (strncmp(line, wanted, strlen(wanted)) == 0)
            inside = true;
        else if (inside && strncmp(line, "FilePmdMapped:", 14) == 0) {
            share = atof(line + 14) * 1024.0 / (double)length;
            break;
        }
    }
    if (smaps != NULL)
        fclose(smaps);
    return share;
}

/* Maps path as the merge does and faults it all in: the PMD-mapped share
 * of the mapping, or -1 when that cannot be told. */
static double read_as_mapped(const char *path)
{
    int fd = open(path, O_RDONLY);
    struct stat info;
    if (fd < 0 || fstat(fd, &info) != 0 || info.st_size == 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t length = (size_t)info.st_size;
    void *map = mmap(NULL, length, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return -1;
    madvise(map, length, MADV_HUGEPAGE);
    const volatile unsigned char *bytes = map;
    unsigned sum = 0;
    for (size_t offset = 0; offset < length; offset += 4096)
        sum += bytes[offset];
    (void)sum;
    double share = pmd_mapped_share(map, length);
    munmap(map, length);
    return share;
}

static void drop_from_cache(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

static void warm_models(const char *const models[3], int model_count)
{
    for (int i = 0; i < model_count; i++) {
        double share = read_as_mapped(models[i]);
        if (share < 0 || share >= 0.9)
            continue;
        printf("(%s was %.0f%% in 2 MiB folios: dropped from the page cache, read again)\n",
               models[i], 100 * share);
        fflush(stdout);
        drop_from_cache(models[i]);
        read_as_mapped(models[i]);
    }
}

static int bench_case(const bench_config *config, gen_checkpoint_arch arch,
                      const char *const models[3], const char *method)
{
    char output[PATH_MAX + 32], copy[PATH_MAX + 32];
    snprintf(output, sizeof output, "%s/merged.safetensors", config->shared.work);
    snprintf(copy, sizeof copy, "%s/floor_copy.safetensors", config->shared.work);
    double seconds[BENCH_MAX_RUNS], cpu[BENCH_MAX_RUNS], floors[BENCH_MAX_RUNS];
    long peak_rss_kb = 0;
    long long output_bytes = 0;
    int model_count = model_count_of(method);
    for (int run = 0; run < config->shared.runs; run++) {
        bench_run_result result;
        warm_models(models, model_count);
        if (run_merge(config, models, model_count, method, output, &result) != 0) {
            unlink(output);
            return -1;
        }
        seconds[run] = result.seconds;
        cpu[run] = result.cpu_seconds;
        if (result.peak_rss_kb > peak_rss_kb)
            peak_rss_kb = result.peak_rss_kb;
        output_bytes = bench_file_size(output);
        /* The floor copies model A: the output's size to within its
         * metadata, and cached as the merge left it.  The output itself may
         * be out of the page cache (a merge that crowds the cache drops it),
         * and reading it back from disk would slow the floor, not us. */
        floors[run] = bench_copy_with_fsync(models[0], copy);
        unlink(output);
        if (floors[run] < 0) {
            fprintf(stderr, "bench_merge: floor copy failed: %s\n", strerror(errno));
            return -1;
        }
    }
    double low = seconds[0], high = seconds[0];
    for (int run = 1; run < config->shared.runs; run++) {
        low = seconds[run] < low ? seconds[run] : low;
        high = seconds[run] > high ? seconds[run] : high;
    }
    double wall = bench_median(seconds, config->shared.runs), floor = bench_median(floors, config->shared.runs);
    double cpu_median = bench_median(cpu, config->shared.runs);
    printf("%-5s %-26s %9.2f %9.2f %9.2f %8.2f %10.1f %10.1f %9.2f %7.2fx\n",
           bench_arch_name(arch), method, wall, low, high, cpu_median, peak_rss_kb / 1024.0,
           output_bytes / 1e6, floor, floor > 0 ? wall / floor : 0.0);
    fflush(stdout);
    return 0;
}

static int bench_arch(const bench_config *config, gen_checkpoint_arch arch)
{
    static char paths[3][PATH_MAX + 64];
    bool needs_c = false;
    for (int i = 0; i < config->method_count; i++)
        needs_c = needs_c || model_count_of(config->methods[i]) == 3;
    for (int i = 0; i < (needs_c ? 3 : 2); i++)
        if (bench_prepare_checkpoint("bench_merge", config->shared.work, arch, (char)('a' + i), paths[i],
                                     sizeof paths[i]) != 0)
            return -1;
    const char *const models[3] = {paths[0], paths[1], paths[2]};
    int failures = 0;
    for (int i = 0; i < config->method_count; i++)
        if (bench_case(config, arch, models, config->methods[i]) != 0)
            failures++;
    return failures == 0 ? 0 : -1;
}

static void usage(FILE *stream)
{
    fprintf(stream,
            "usage: bench_merge [--work DIR] [--mergesvd PATH] [--runs N] [--arch sd15|sdxl|all]\n"
            "                   [--methods M1,M2,...]\n"
            "  --work DIR      model cache and outputs (default: bench-data/ in the build folder;\n"
            "                  about 11 GB for SD1.5, 21 GB for SDXL, plus two outputs)\n"
            "  --mergesvd PATH binary to time (default: mergesvd in the build folder)\n"
            "  --runs N        runs per case, median reported (default 3, at least 3)\n"
            "  --arch A        sd15, sdxl or all (default all)\n"
            "  --methods LIST  comma-separated sd-meh names (default weighted_sum,\n"
            "                  add_difference,ties_add_difference,distribution_crossover)\n");
}

static int parse_methods(bench_config *config, char *list)
{
    config->method_count = 0;
    char *save = NULL;
    for (char *name = strtok_r(list, ",", &save); name != NULL;
         name = strtok_r(NULL, ",", &save)) {
        if (model_count_of(name) == 0) {
            fprintf(stderr, "bench_merge: unknown method '%s'\n", name);
            return -1;
        }
        if (config->method_count == MAX_METHODS) {
            fprintf(stderr, "bench_merge: at most %d methods\n", MAX_METHODS);
            return -1;
        }
        config->methods[config->method_count++] = name;
    }
    return config->method_count > 0 ? 0 : -1;
}

static int parse_arguments(int argc, char **argv, bench_config *config)
{
    bench_model_options_init(&config->shared);
    config->archs[GEN_CHECKPOINT_SD15] = config->archs[GEN_CHECKPOINT_SDXL] = true;
    config->method_count = (int)(sizeof default_methods / sizeof default_methods[0]);
    for (int i = 0; i < config->method_count; i++)
        config->methods[i] = default_methods[i];
    /* every option takes a value: they come in pairs */
    for (int i = 1; i < argc; i += 2) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        int shared = bench_model_option("bench_merge", argv[i], value, &config->shared);
        if (shared < 0)
            return -1;
        if (shared > 0)
            continue;
        if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(argv[i], "--arch") == 0 && value != NULL) {
            bool all = strcmp(value, "all") == 0;
            config->archs[GEN_CHECKPOINT_SD15] = all || strcmp(value, "sd15") == 0;
            config->archs[GEN_CHECKPOINT_SDXL] = all || strcmp(value, "sdxl") == 0;
            if (!config->archs[GEN_CHECKPOINT_SD15] && !config->archs[GEN_CHECKPOINT_SDXL]) {
                fprintf(stderr, "bench_merge: unknown --arch '%s'\n", value);
                return -1;
            }
        } else if (strcmp(argv[i], "--methods") == 0 && value != NULL) {
            if (parse_methods(config, argv[i + 1]) != 0)
                return -1;
        } else {
            usage(stderr);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    bench_config config;
    memset(&config, 0, sizeof config);
    if (parse_arguments(argc, argv, &config) != 0)
        return 2;
    if (access(config.shared.mergesvd, X_OK) != 0) {
        fprintf(stderr, "bench_merge: no mergesvd at %s (use --mergesvd PATH)\n",
                config.shared.mergesvd);
        return 2;
    }
    if (mkdir(config.shared.work, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "bench_merge: cannot create %s: %s\n", config.shared.work, strerror(errno));
        return 1;
    }
    printf("binary %s, cache %s, %d runs per case, alpha 0.5, beta 0.3, fp16 output\n",
           config.shared.mergesvd, config.shared.work, config.shared.runs);
    printf("%-5s %-26s %9s %9s %9s %8s %10s %10s %9s %8s\n", "arch", "method", "median_s",
           "min_s", "max_s", "cpu_s", "peak_MB", "output_MB", "floor_s", "vs_floor");
    fflush(stdout);
    int status = 0;
    for (int arch = GEN_CHECKPOINT_SD15; arch <= GEN_CHECKPOINT_SDXL; arch++)
        if (config.archs[arch] && bench_arch(&config, (gen_checkpoint_arch)arch) != 0)
            status = 1;
    return status;
}
