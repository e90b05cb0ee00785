/* GET /v1/models: the safetensors files under the models roots, each
 * opened (header only, mmapped) and classified. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/api.h"
#include "api/json_text.h"
#include "core/model/inspect.h"
#include "core/format/safetensors.h"
#include "server/paths.h"
#include "routes.h"
#include "server/service.h"

enum { MAX_DEPTH = 8, MAX_MODELS = 10000, MAX_DIRECTORIES = 10000 };

/* A folder entered once per listing: a symlink back up (s/l -> .) would
 * otherwise be walked again at every level, minutes of it. */
typedef struct directory_id {
    dev_t device;
    ino_t inode;
} directory_id;

typedef struct listing {
    json_t *models;
    size_t root_index;
    const char *root_real;
    directory_id *visited;
    size_t visited_count;
} listing;

/* False when the folder was entered already (or too many were). */
static bool enter_directory(listing *state, const struct stat *info)
{
    for (size_t i = 0; i < state->visited_count; i++) {
        if (state->visited[i].device == info->st_dev && state->visited[i].inode == info->st_ino)
            return false;
    }
    if (state->visited_count == MAX_DIRECTORIES)
        return false;
    state->visited[state->visited_count++] = (directory_id){info->st_dev, info->st_ino};
    return true;
}

static bool has_safetensors_suffix(const char *name)
{
    size_t length = strlen(name);
    return length > 12 && strcmp(name + length - 12, ".safetensors") == 0;
}

static json_t *describe(const char *path, const char *relative, size_t root_index,
                        uint64_t bytes)
{
    json_t *entry = json_object();
    json_object_set_new(entry, "path", ms_api_json_text(relative));
    json_object_set_new(entry, "root", json_integer((json_int_t)root_index));
    json_object_set_new(entry, "bytes", json_integer((json_int_t)bytes));
    ms_safetensors file;
    ms_error err;
    ms_error_clear(&err);
    ms_model_summary summary;
    ms_status status = ms_safetensors_open(path, &file, &err);
    if (status == MS_OK) {
        status = ms_inspect_model(&file, &summary, &err);
        ms_safetensors_close(&file);
    }
    if (status == MS_OK) {
        json_t *summary_json = ms_api_model_summary_to_json(&summary);
        json_object_update(entry, summary_json);
        json_decref(summary_json);
    }
    if (status != MS_OK) {
        json_object_set_new(entry, "kind", json_string("unknown"));
        json_object_set_new(entry, "architecture", json_string("unknown"));
        json_object_set_new(entry, "error", ms_api_error_object(&err));
    }
    return entry;
}

/* own: dir_path's stat, as its caller took it. */
static void walk(listing *state, const char *dir_path, const struct stat *own,
                 const char *relative, int depth)
{
    if (depth > MAX_DEPTH || !enter_directory(state, own))
        return;
    DIR *dir = opendir(dir_path);
    if (dir == NULL)
        return;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL && json_array_size(state->models) < MAX_MODELS) {
        if (entry->d_name[0] == '.')
            continue;   /* ".", "..", hidden files and temporaries */
        char *path = ms_paths_join(dir_path, entry->d_name);
        char *child = relative[0] != '\0' ? ms_paths_join(relative, entry->d_name)
                                          : strdup(entry->d_name);
        /* a name that is not UTF-8 cannot be asked for in a JSON request:
         * not listed (shown with '?' it would name nothing) */
        if (child == NULL || !ms_api_text_is_utf8(child)) {
            free(path);
            free(child);
            continue;
        }
        char *real = path != NULL ? realpath(path, NULL) : NULL;
        struct stat info;
        /* symlinks count only when they stay inside the root */
        if (real != NULL && child != NULL && ms_paths_is_inside(state->root_real, real) &&
            stat(real, &info) == 0) {
            if (S_ISDIR(info.st_mode))
                walk(state, path, &info, child, depth + 1);
            else if (S_ISREG(info.st_mode) && has_safetensors_suffix(entry->d_name))
                json_array_append_new(state->models, describe(real, child, state->root_index,
                                                              (uint64_t)info.st_size));
        }
        free(real);
        free(path);
        free(child);
    }
    closedir(dir);
}

static int compare_paths(const void *a, const void *b)
{
    json_t *const *left = a;
    json_t *const *right = b;
    json_int_t left_root = json_integer_value(json_object_get(*left, "root"));
    json_int_t right_root = json_integer_value(json_object_get(*right, "root"));
    if (left_root != right_root)
        return left_root < right_root ? -1 : 1;
    return strcmp(json_string_value(json_object_get(*left, "path")),
                  json_string_value(json_object_get(*right, "path")));
}

/* Sorted by root, then path, so listings are stable. */
static json_t *sorted(json_t *models)
{
    size_t count = json_array_size(models);
    json_t **items = malloc((count + 1) * sizeof *items);
    if (items == NULL)
        return models;
    for (size_t i = 0; i < count; i++)
        items[i] = json_incref(json_array_get(models, i));
    qsort(items, count, sizeof *items, compare_paths);
    json_t *result = json_array();
    for (size_t i = 0; i < count; i++)
        json_array_append_new(result, items[i]);
    free(items);
    json_decref(models);
    return result;
}

/* Opens every model's header: on the read worker, so that polls never
 * wait behind a large models folder. */
static enum MHD_Result list_models(ms_http_request *request)
{
    const ms_serve_options *options = request->service->options;
    listing state = {json_array(), 0, NULL, malloc(MAX_DIRECTORIES * sizeof(directory_id)), 0};
    if (state.visited == NULL) {
        json_decref(state.models);
        return MHD_NO;
    }
    for (size_t i = 0; i < options->model_root_count; i++) {
        char *root_real = realpath(options->model_roots[i], NULL);
        if (root_real == NULL)
            continue;
        state.root_index = i;
        state.root_real = root_real;
        struct stat root_info;
        if (stat(root_real, &root_info) == 0)
            walk(&state, root_real, &root_info, "", 0);
        free(root_real);
    }
    free(state.visited);
    json_t *body = json_object();
    json_object_set_new(body, "models", sorted(state.models));
    char *text = ms_api_json_dumps(body, 0);
    json_decref(body);
    return ms_http_send_json(request, 200, text, NULL);
}

enum MHD_Result ms_models_list(ms_http_request *request)
{
    return ms_http_defer(request, &request->service->read_worker, list_models);
}
