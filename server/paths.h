/* Where files may come from and go to.
 *
 * A model path from a client resolves (realpath) inside one of the models
 * roots or is refused: ".." components, absolute paths outside the roots and
 * symlinks that lead out are path_outside_models.  Output names are plain
 * file names, so results always stay in DATA/results/<job id>/. */
#ifndef MS_PATHS_H
#define MS_PATHS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "server/file_reaper.h"

/* On success *resolved is a malloced canonical path of a regular file and
 * *root_index the root it lies in.  model_not_found when no root holds it. */
ms_status ms_paths_resolve_model(char *const *roots, size_t root_count, const char *model,
                                 char **resolved, size_t *root_index, ms_error *err);

/* True when canonical path lies strictly inside canonical directory root. */
bool ms_paths_is_inside(const char *root, const char *path);

/* ^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$ ending in ".safetensors". */
bool ms_paths_output_name_valid(const char *name);

/* "<model basename without .safetensors>_resized.safetensors", with every
 * character the name rule refuses replaced by '_' and the stem shortened to
 * fit; always valid. Malloced. */
char *ms_paths_default_output_name(const char *model);

/* "<A>_<B>_<method>.safetensors" for a merge (A and B: the models' base
 * names without .safetensors), sanitised and shortened like the above;
 * always valid.  Malloced. */
char *ms_paths_default_merge_name(const char *model_a, const char *model_b, const char *method);

/* Removes the files directly inside dir, then dir.  Missing dir is fine.
 * The files' blocks are freed on reaper's thread (file_reaper.h; NULL:
 * here). */
void ms_paths_remove_dir(const char *dir, ms_file_reaper *reaper);

/* mkdir -p for one level under an existing parent; EEXIST is fine. */
bool ms_paths_make_dir(const char *dir);

/* The same, and the new folder's entry fsynced in its parent. */
bool ms_paths_make_dir_durable(const char *dir);

/* malloced "a/b". */
char *ms_paths_join(const char *a, const char *b);

#endif
