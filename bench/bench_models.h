/* bench_models: the full-size checkpoints the merge benchmarks time, made
 * once by the test generator into a cache folder and reused, and where the
 * benchmarks find the build. */
#ifndef MERGESVD_BENCH_MODELS_H
#define MERGESVD_BENCH_MODELS_H

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

#endif
