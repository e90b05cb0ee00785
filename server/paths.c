#include "paths.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { OUTPUT_NAME_MAX = 200 };
static const char safetensors_suffix[] = ".safetensors";

char *ms_paths_join(const char *a, const char *b)
{
    size_t a_length = strlen(a);
    bool slash = a_length > 0 && a[a_length - 1] == '/';
    char *joined = malloc(a_length + strlen(b) + 2);
    if (joined != NULL)
        sprintf(joined, "%s%s%s", a, slash ? "" : "/", b);
    return joined;
}

bool ms_paths_is_inside(const char *root, const char *path)
{
    size_t root_length = strlen(root);
    while (root_length > 0 && root[root_length - 1] == '/')
        root_length--;   /* "/" becomes "", so every absolute path is inside */
    return strncmp(path, root, root_length) == 0 && path[root_length] == '/' &&
           path[root_length + 1] != '\0';
}

static bool has_dot_dot_component(const char *path)
{
    const char *component = path;
    for (;;) {
        const char *slash = strchr(component, '/');
        size_t length = slash != NULL ? (size_t)(slash - component) : strlen(component);
        if (length == 2 && component[0] == '.' && component[1] == '.')
            return true;
        if (slash == NULL)
            return false;
        component = slash + 1;
    }
}

static ms_status outside(ms_error *err, const char *model)
{
    ms_error_set(err, MS_ERR_PATH_OUTSIDE_MODELS, NULL,
                 "model path '%s' is outside the models roots", model);
    ms_error_detail_add(err, "path", "%s", model);
    return MS_ERR_PATH_OUTSIDE_MODELS;
}

static ms_status not_found(ms_error *err, const char *model, const char *why)
{
    ms_error_set(err, MS_ERR_NOT_FOUND, NULL, "model '%s' %s", model, why);
    ms_error_detail_add(err, "path", "%s", model);
    return MS_ERR_NOT_FOUND;
}

/* Index of the root holding canonical path real, or -1.  A symlink in one
 * root may lead into another: still inside the models roots. */
static long root_holding(char *const *roots, size_t root_count, const char *real)
{
    for (size_t i = 0; i < root_count; i++) {
        char *root_real = realpath(roots[i], NULL);
        bool inside = root_real != NULL && ms_paths_is_inside(root_real, real);
        free(root_real);
        if (inside)
            return (long)i;
    }
    return -1;
}

/* True when canonical directory dir is one of the roots itself. */
static bool root_is(char *const *roots, size_t root_count, const char *dir)
{
    for (size_t i = 0; i < root_count; i++) {
        char *root_real = realpath(roots[i], NULL);
        bool same = root_real != NULL && strcmp(root_real, dir) == 0;
        free(root_real);
        if (same)
            return true;
    }
    return false;
}

static ms_status check_regular(char **resolved, const char *model, ms_error *err)
{
    struct stat info;
    if (stat(*resolved, &info) != 0 || !S_ISREG(info.st_mode)) {
        free(*resolved);
        *resolved = NULL;
        return not_found(err, model, "is not a regular file");
    }
    return MS_OK;
}

ms_status ms_paths_resolve_model(char *const *roots, size_t root_count, const char *model,
                                 char **resolved, size_t *root_index, ms_error *err)
{
    *resolved = NULL;
    if (model == NULL || model[0] == '\0')
        return not_found(err, "", "is empty");
    if (has_dot_dot_component(model))
        return outside(err, model);
    bool absolute = model[0] == '/';
    /* absolute: the path itself; relative: tried under each root in order */
    for (size_t i = 0; i < (absolute ? 1 : root_count); i++) {
        char *candidate = absolute ? strdup(model) : NULL;
        if (!absolute) {
            char *root_real = realpath(roots[i], NULL);
            if (root_real == NULL)
                continue;   /* a root that does not exist (yet) holds nothing */
            candidate = ms_paths_join(root_real, model);
            free(root_real);
        }
        if (candidate == NULL)
            return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
        char *real = realpath(candidate, NULL);
        free(candidate);
        if (real == NULL)
            continue;
        long holder = root_holding(roots, root_count, real);
        if (holder < 0) {
            /* "." or a root's own path: inside, but a folder, not a model */
            bool is_root = root_is(roots, root_count, real);
            free(real);
            return is_root ? not_found(err, model, "is a models root, not a file")
                           : outside(err, model);
        }
        *resolved = real;
        *root_index = (size_t)holder;
        return check_regular(resolved, model, err);
    }
    if (absolute) {
        /* Missing: say "outside" unless the path names a place inside a root,
         * so nothing is revealed about the rest of the file system. */
        char *parent = strdup(model);
        char *slash = parent != NULL ? strrchr(parent, '/') : NULL;
        if (slash != NULL)
            *slash = '\0';
        char *parent_real = parent != NULL && parent[0] != '\0' ? realpath(parent, NULL) : NULL;
        bool inside = parent_real != NULL &&
                      (root_holding(roots, root_count, parent_real) >= 0 ||
                       root_is(roots, root_count, parent_real));
        free(parent);
        free(parent_real);
        if (!inside)
            return outside(err, model);
    }
    return not_found(err, model, "does not exist under the models roots");
}

bool ms_paths_output_name_valid(const char *name)
{
    size_t length = strlen(name);
    size_t suffix_length = sizeof safetensors_suffix - 1;
    if (length == 0 || length > OUTPUT_NAME_MAX || length <= suffix_length)
        return false;
    if (strcmp(name + length - suffix_length, safetensors_suffix) != 0)
        return false;
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)name[i];
        bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return false;
    }
    return true;
}

/* The base name of model without ".safetensors" (a web UI client may
 * send backslashes), at most stem_max bytes. */
static const char *model_stem(const char *model, size_t stem_max, size_t *stem_length)
{
    const char *base = model;
    for (const char *at = model; *at != '\0'; at++)
        if (*at == '/' || *at == '\\')
            base = at + 1;
    size_t length = strlen(base);
    size_t suffix_length = sizeof safetensors_suffix - 1;
    if (length > suffix_length && strcmp(base + length - suffix_length, safetensors_suffix) == 0)
        length -= suffix_length;
    *stem_length = length < stem_max ? length : stem_max;
    return base;
}

/* Appends text[0..length) to name, each byte the name rule refuses
 * replaced: '_' inside, 'm' first. */
static size_t append_sanitized(char *name, size_t used, const char *text, size_t length)
{
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)text[i];
        bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        bool allowed = alnum || (used > 0 && (c == '.' || c == '_' || c == '-'));
        char replacement = used == 0 ? 'm' : '_';
        name[used] = allowed ? (char)c : replacement;
        used++;
    }
    return used;
}

char *ms_paths_default_output_name(const char *model)
{
    static const char tail[] = "_resized.safetensors";
    size_t stem_length = 0;
    const char *stem = model_stem(model, OUTPUT_NAME_MAX - (sizeof tail - 1), &stem_length);
    char *name = malloc(stem_length + sizeof tail + 1);
    if (name == NULL)
        return NULL;
    size_t used = append_sanitized(name, 0, stem, stem_length);
    if (used == 0)
        name[used++] = 'm';
    memcpy(name + used, tail, sizeof tail);
    return name;
}

char *ms_paths_default_merge_name(const char *model_a, const char *model_b, const char *method)
{
    enum { METHOD_MAX = 40 };
    size_t method_length = strnlen(method, METHOD_MAX);
    size_t suffix_length = sizeof safetensors_suffix - 1;
    /* "A_B_method.safetensors": the two stems share what the rest leaves */
    size_t stem_max = (OUTPUT_NAME_MAX - suffix_length - method_length - 2) / 2;
    size_t a_length = 0, b_length = 0;
    const char *a = model_stem(model_a, stem_max, &a_length);
    const char *b = model_stem(model_b, stem_max, &b_length);
    char *name = malloc(OUTPUT_NAME_MAX + 1);
    if (name == NULL)
        return NULL;
    size_t used = append_sanitized(name, 0, a, a_length);
    if (used == 0)
        name[used++] = 'm';
    name[used++] = '_';
    used = append_sanitized(name, used, b, b_length);
    name[used++] = '_';
    used = append_sanitized(name, used, method, method_length);
    memcpy(name + used, safetensors_suffix, sizeof safetensors_suffix);
    return name;
}

void ms_paths_remove_dir(const char *dir, ms_file_reaper *reaper)
{
    DIR *stream = opendir(dir);
    if (stream == NULL)
        return;
    struct dirent *entry;
    while ((entry = readdir(stream)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        ms_file_reaper_unlinkat(reaper, dirfd(stream), entry->d_name);
    }
    closedir(stream);
    rmdir(dir);
}

bool ms_paths_make_dir(const char *dir)
{
    return mkdir(dir, 0755) == 0 || errno == EEXIST;
}

bool ms_paths_make_dir_durable(const char *dir)
{
    if (mkdir(dir, 0755) != 0)
        return errno == EEXIST;
    /* the new entry lives in the parent: fsync it, or a power cut after the
     * job's commit could leave "succeeded" without its folder */
    char *parent = strdup(dir);
    if (parent == NULL)
        return false;
    char *slash = strrchr(parent, '/');
    if (slash == NULL) {
        free(parent);
        return true;   /* relative, in the working directory: not ours to sync */
    }
    *(slash == parent ? slash + 1 : slash) = '\0';
    int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(parent);
    if (fd < 0)
        return false;
    bool synced = fsync(fd) == 0 || errno == EINVAL;   /* EINVAL: no fsync for folders here */
    close(fd);
    return synced;
}
