/* bench_models: the full-size checkpoints the merge benchmarks time, made
 * once by the test generator into a cache folder and reused, and where the
 * benchmarks find the build. */
#ifndef MERGESVD_BENCH_MODELS_H
#define MERGESVD_BENCH_MODELS_H

#include <limits.h>
#include <stddef.h>

#include "tests/checkpoint_generator.h"

const char *bench_arch_name(gen_checkpoint_arch arch);   /* "sd15" or "sdxl" */

/* Model `letter` (a, b, c) of arch in folder: generated unless the folder
 * has it (the generator writes atomically, so a file present is whole).
 * 0 and its path, or -1 (told on stderr, prefixed with program). */
int bench_prepare_checkpoint(const char *program, const char *folder, gen_checkpoint_arch arch,
                             char letter, char *path, size_t size);

/* The build folder: the parent of this program's folder. */
void bench_build_folder(char *path, size_t size);

enum { BENCH_MAX_RUNS = 50 };

/* The options every model benchmark takes: the binary, the folder of
 * models and outputs, and how many runs the median is taken over. */
typedef struct bench_model_options {
    char mergesvd[PATH_MAX];
    char work[PATH_MAX];
    int runs;
} bench_model_options;

/* The defaults: mergesvd and bench-data/ in the build folder, 3 runs. */
void bench_model_options_init(bench_model_options *options);

/* One option with its value (NULL when none followed): 1 when it was one
 * of the shared ones and is taken, 0 when it is not one of them, -1 when
 * its value is refused (told on stderr, prefixed with program). */
int bench_model_option(const char *program, const char *name, const char *value,
                       bench_model_options *options);

#endif
