/* Model paths as a web UI client names them (POST /bbwm/merge-models).
 *
 * The client sends paths of its own machine: "/home/u/webui/models/
 * Stable-diffusion/sub/x.safetensors", "sub/x.safetensors", "x.safetensors"
 * or just "x".  The web UI finds a checkpoint by the trailing components of
 * such a path; so does this.  An absolute path inside a models root is
 * taken as it is (found, or model_not_found).  Any other path is compared,
 * component by component from the end, with every safetensors file under
 * the roots (relative to its root): a file matches when one of the two is a
 * trailing part of the other, and its last component may leave out
 * ".safetensors".  The best match wins: more matching components first,
 * then a file whose whole relative path matched (the file "x.safetensors"
 * at a root's top for "x.safetensors", rather than "sub/x.safetensors").
 * Several best matches (two roots holding "x.safetensors") are ambiguous:
 * invalid_parameter listing the candidates. */
#ifndef MS_MODEL_MATCH_H
#define MS_MODEL_MATCH_H

#include <stddef.h>

#include "core/error.h"

/* On success *resolved is the malloced canonical path of a regular file
 * inside a root, *root_index that root.  field names the request field in
 * the error details.  model_not_found (no file matches), invalid_parameter
 * (ambiguous; details field, candidates, candidate_count),
 * path_outside_models (".." components). */
ms_status ms_model_match(char *const *roots, size_t root_count, const char *client_path,
                         const char *field, char **resolved, size_t *root_index, ms_error *err);

#endif
