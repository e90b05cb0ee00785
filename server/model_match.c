#include "model_match.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "paths.h"

/* The same bounds as the models listing (models.c). */
enum { MAX_DEPTH = 8, MAX_DIRECTORIES = 10000, MAX_COMPONENTS = 256, MAX_CANDIDATES = 8 };

static const char safetensors_suffix[] = ".safetensors";
enum { SUFFIX_LENGTH = sizeof safetensors_suffix - 1 };

typedef struct component {
    const char *text;
    size_t length;
} component;

/* The client's path cut at '/' and '\\' (a web UI on Windows sends
 * backslashes), without empty and "." components. */
typedef struct match_query {
    component parts[MAX_COMPONENTS];
    size_t count;
    bool has_suffix;          /* the last part ends in .safetensors */
} match_query;

typedef struct candidate {
    char *real;
    char *relative;
    size_t root_index;
} candidate;

typedef struct directory_id {
    dev_t device;
    ino_t inode;
} directory_id;

typedef struct match_state {
    const match_query *query;
    size_t root_index;
    const char *root_real;
    const char *names[MAX_DEPTH + 2];   /* the relative path being walked */
    directory_id *visited;
    size_t visited_count;
    size_t best_matched;                /* 0: nothing matched yet */
    bool best_whole;
    candidate best[MAX_CANDIDATES];
    size_t best_stored;
    size_t best_count;                  /* distinct files, stored or not */
    bool out_of_memory;
} match_state;

static bool ends_with_suffix(const char *text, size_t length)
{
    return length > SUFFIX_LENGTH &&
           memcmp(text + length - SUFFIX_LENGTH, safetensors_suffix, SUFFIX_LENGTH) == 0;
}

/* False when a ".." component makes the path climb (or it has too many). */
static bool split_query(const char *path, match_query *query)
{
    query->count = 0;
    const char *start = path;
    for (const char *at = path;; at++) {
        if (*at != '/' && *at != '\\' && *at != '\0')
            continue;
        size_t length = (size_t)(at - start);
        bool skip = length == 0 || (length == 1 && start[0] == '.');
        if (length == 2 && start[0] == '.' && start[1] == '.')
            return false;
        if (!skip) {
            if (query->count == MAX_COMPONENTS)
                return false;
            query->parts[query->count++] = (component){start, length};
        }
        if (*at == '\0')
            break;
        start = at + 1;
    }
    const component *last = query->count > 0 ? &query->parts[query->count - 1] : NULL;
    query->has_suffix = last != NULL && ends_with_suffix(last->text, last->length);
    return true;
}

static bool part_equals(const component *part, const char *name, size_t name_length)
{
    return part->length == name_length && memcmp(part->text, name, name_length) == 0;
}

/* Compares the trailing components of the query and of the relative path
 * in state->names[0..depth]; *matched = how many, *whole = the relative
 * path matched in full.  False when they disagree somewhere. */
static bool compare_tail(const match_state *state, size_t depth, size_t *matched, bool *whole)
{
    const match_query *query = state->query;
    size_t name_count = depth + 1;
    size_t common = query->count < name_count ? query->count : name_count;
    for (size_t i = 0; i < common; i++) {
        const component *part = &query->parts[query->count - 1 - i];
        const char *name = state->names[name_count - 1 - i];
        size_t name_length = strlen(name);
        bool equal = part_equals(part, name, name_length);
        if (!equal && i == 0 && !query->has_suffix)
            equal = part_equals(part, name, name_length - SUFFIX_LENGTH);   /* "x" for x.safetensors */
        if (!equal)
            return false;
    }
    *matched = common;
    *whole = name_count <= query->count;
    return true;
}

static char *relative_text(const match_state *state, size_t depth)
{
    size_t length = 0;
    for (size_t i = 0; i <= depth; i++)
        length += strlen(state->names[i]) + 1;
    char *text = malloc(length);
    if (text == NULL)
        return NULL;
    text[0] = '\0';
    for (size_t i = 0; i <= depth; i++) {
        if (i > 0)
            strcat(text, "/");
        strcat(text, state->names[i]);
    }
    return text;
}

static void clear_candidates(match_state *state)
{
    for (size_t i = 0; i < state->best_stored; i++) {
        free(state->best[i].real);
        free(state->best[i].relative);
    }
    state->best_stored = 0;
    state->best_count = 0;
}

/* A file that matched: kept when it is among the best so far. */
static void consider(match_state *state, const char *real, size_t depth, size_t matched,
                     bool whole)
{
    bool better = matched > state->best_matched ||
                  (matched == state->best_matched && whole && !state->best_whole);
    bool equal = matched == state->best_matched && whole == state->best_whole;
    if (!better && !equal)
        return;
    if (better) {
        clear_candidates(state);
        state->best_matched = matched;
        state->best_whole = whole;
    }
    /* one file reached twice (a link beside its target) is one candidate */
    for (size_t i = 0; i < state->best_stored; i++)
        if (strcmp(state->best[i].real, real) == 0)
            return;
    state->best_count++;
    if (state->best_stored == MAX_CANDIDATES)
        return;
    candidate *slot = &state->best[state->best_stored];
    slot->real = strdup(real);
    slot->relative = relative_text(state, depth);
    slot->root_index = state->root_index;
    if (slot->real == NULL || slot->relative == NULL) {
        free(slot->real);
        free(slot->relative);
        state->out_of_memory = true;
        return;
    }
    state->best_stored++;
}

static bool enter_directory(match_state *state, const struct stat *info)
{
    for (size_t i = 0; i < state->visited_count; i++)
        if (state->visited[i].device == info->st_dev && state->visited[i].inode == info->st_ino)
            return false;
    if (state->visited_count == MAX_DIRECTORIES)
        return false;
    state->visited[state->visited_count++] = (directory_id){info->st_dev, info->st_ino};
    return true;
}

/* depth: how many folders below the root dir_path lies. */
static void walk(match_state *state, const char *dir_path, const struct stat *own, size_t depth)
{
    if (depth > MAX_DEPTH || !enter_directory(state, own))
        return;
    DIR *dir = opendir(dir_path);
    if (dir == NULL)
        return;
    struct dirent *entry;
    while (!state->out_of_memory && (entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;   /* ".", "..", hidden files and writers' temporaries */
        char *path = ms_paths_join(dir_path, entry->d_name);
        char *real = path != NULL ? realpath(path, NULL) : NULL;
        struct stat info;
        state->names[depth] = entry->d_name;
        /* symlinks count only when they stay inside the root */
        if (real != NULL && ms_paths_is_inside(state->root_real, real) &&
            stat(real, &info) == 0) {
            size_t matched = 0;
            bool whole = false;
            if (S_ISDIR(info.st_mode))
                walk(state, path, &info, depth + 1);
            else if (S_ISREG(info.st_mode) &&
                     ends_with_suffix(entry->d_name, strlen(entry->d_name)) &&
                     compare_tail(state, depth, &matched, &whole))
                consider(state, real, depth, matched, whole);
        }
        if (path == NULL)
            state->out_of_memory = true;
        free(real);
        free(path);
    }
    closedir(dir);
}

static ms_status ambiguous(const match_state *state, const char *client_path, const char *field,
                           ms_error *err)
{
    ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL,
                 "%s '%s' matches %zu models under the models roots; send a longer path",
                 field, client_path, state->best_count);
    ms_error_detail_add(err, "field", "%s", field);
    ms_error_detail_add(err, "candidate_count", "%zu", state->best_count);
    char list[160] = "";
    size_t used = 0;
    for (size_t i = 0; i < state->best_stored && used < sizeof list; i++) {
        int written = snprintf(list + used, sizeof list - used, "%s%s (root %zu)",
                               i > 0 ? ", " : "", state->best[i].relative,
                               state->best[i].root_index);
        if (written < 0)
            break;
        used += (size_t)written;
    }
    ms_error_detail_add(err, "candidates", "%s", list);
    return MS_ERR_INVALID_PARAMETER;
}

static ms_status not_found(const char *client_path, const char *field, ms_error *err)
{
    ms_error_set(err, MS_ERR_NOT_FOUND, NULL,
                 "%s '%s' matches no model under the models roots", field, client_path);
    ms_error_detail_add(err, "field", "%s", field);
    ms_error_detail_add(err, "path", "%s", client_path);
    return MS_ERR_NOT_FOUND;
}

static ms_status match_by_tail(char *const *roots, size_t root_count, const char *client_path,
                               const char *field, const match_query *query, char **resolved,
                               size_t *root_index, ms_error *err)
{
    match_state state;
    memset(&state, 0, sizeof state);
    state.query = query;
    state.visited = malloc(MAX_DIRECTORIES * sizeof *state.visited);
    if (state.visited == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    for (size_t i = 0; i < root_count && !state.out_of_memory; i++) {
        char *root_real = realpath(roots[i], NULL);
        struct stat info;
        if (root_real != NULL && stat(root_real, &info) == 0 && S_ISDIR(info.st_mode)) {
            state.root_index = i;
            state.root_real = root_real;
            walk(&state, root_real, &info, 0);
        }
        free(root_real);
    }
    ms_status status = MS_OK;
    if (state.out_of_memory)
        status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    else if (state.best_count == 0)
        status = not_found(client_path, field, err);
    else if (state.best_count > 1)
        status = ambiguous(&state, client_path, field, err);
    else {
        *resolved = state.best[0].real;
        *root_index = state.best[0].root_index;
        state.best[0].real = NULL;
    }
    clear_candidates(&state);
    free(state.visited);
    return status;
}

ms_status ms_model_match(char *const *roots, size_t root_count, const char *client_path,
                         const char *field, char **resolved, size_t *root_index, ms_error *err)
{
    *resolved = NULL;
    if (client_path == NULL || client_path[0] == '\0')
        return not_found("", field, err);
    match_query *query = malloc(sizeof *query);
    if (query == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    ms_status status;
    if (!split_query(client_path, query) || query->count == 0) {
        ms_error_set(err, MS_ERR_PATH_OUTSIDE_MODELS, NULL,
                     "%s '%s' climbs out with '..' or names no file", field, client_path);
        ms_error_detail_add(err, "field", "%s", field);
        ms_error_detail_add(err, "path", "%s", client_path);
        status = MS_ERR_PATH_OUTSIDE_MODELS;
        goto done;
    }
    if (client_path[0] == '/') {
        /* inside a root: that file or none; elsewhere: the client's machine */
        status = ms_paths_resolve_model(roots, root_count, client_path, resolved, root_index,
                                        err);
        if (status != MS_OK && status != MS_ERR_PATH_OUTSIDE_MODELS)
            ms_error_detail_add(err, "field", "%s", field);
        if (status != MS_ERR_PATH_OUTSIDE_MODELS)
            goto done;
    }
    ms_error_clear(err);
    status = match_by_tail(roots, root_count, client_path, field, query, resolved, root_index,
                           err);
done:
    free(query);
    return status;
}
