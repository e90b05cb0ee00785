#include "webui_load.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/json_text.h"
#include "server/log.h"
#include "server/paths.h"

static const char merge_prefix[] = "mergesvd-";
static const char merge_suffix[] = ".safetensors";

/* An answer shown in the report: as JSON when it is (a few KB at most),
 * else its first bytes as text. */
enum { REPORT_ANSWER_MAX = 4096 };

char *ms_webui_checkpoint_path(const ms_webui *webui, const char *job_id)
{
    char name[sizeof merge_prefix + 64 + sizeof merge_suffix];
    snprintf(name, sizeof name, "%s%.64s%s", merge_prefix, job_id, merge_suffix);
    return ms_paths_join(webui->checkpoints_dir, name);
}

json_t *ms_webui_report_new(const ms_webui *webui)
{
    return json_pack("{s:o,s:[]}", "url", ms_api_json_text(webui->base_url), "calls");
}

static json_t *answer_value(const ms_webui_answer *answer)
{
    if (answer->body == NULL || answer->body_size == 0)
        return json_null();
    if (answer->body_size <= REPORT_ANSWER_MAX) {
        json_t *parsed = json_loadb(answer->body, answer->body_size, JSON_DECODE_ANY, NULL);
        if (parsed != NULL)
            return parsed;
    }
    char start[REPORT_ANSWER_MAX / 16 + 1];
    size_t length = answer->body_size < sizeof start - 1 ? answer->body_size : sizeof start - 1;
    memcpy(start, answer->body, length);
    start[length] = '\0';
    return ms_api_json_text(start);
}

/* One call, recorded in report->calls whatever its outcome. */
static ms_status call(const ms_webui *webui, const char *method, const char *path,
                      const char *json_body, const atomic_int *cancel, json_t *report,
                      ms_webui_answer *answer, ms_error *err)
{
    char what[128];
    snprintf(what, sizeof what, "%s %s", method, path);
    ms_status status = ms_webui_call(webui, what, method, path, json_body, cancel, answer, err);
    json_t *entry = json_pack("{s:s}", "call", what);
    if (entry != NULL) {
        if (answer->status != 0)
            json_object_set_new(entry, "status", json_integer(answer->status));
        /* the checkpoint list can be long: only its size */
        if (strcmp(path, "/sdapi/v1/sd-models") == 0 && status == MS_OK)
            json_object_set_new(entry, "answer_bytes", json_integer((json_int_t)answer->body_size));
        else if (answer->status != 0)
            json_object_set_new(entry, "answer", answer_value(answer));
        if (status != MS_OK)
            json_object_set_new(entry, "error", json_string(ms_status_name(status)));
        json_array_append_new(json_object_get(report, "calls"), entry);
    }
    return status;
}

ms_status ms_webui_unload(const ms_webui *webui, const atomic_int *cancel, json_t *report,
                          ms_error *err)
{
    ms_webui_answer answer;
    ms_status status = call(webui, "POST", "/sdapi/v1/unload-checkpoint", NULL, cancel, report,
                            &answer, err);
    ms_webui_answer_free(&answer);
    return status;
}

/* The last component of a path written with / or \ (the web UI may run on
 * Windows and share the folder). */
static const char *base_name(const char *path)
{
    const char *name = path;
    for (const char *at = path; *at != '\0'; at++)
        if (*at == '/' || *at == '\\')
            name = at + 1;
    return name;
}

/* The title of the web UI's entry whose file is name. */
static ms_status find_title(const ms_webui_answer *answer, const char *name, char **title,
                            ms_error *err)
{
    json_t *list = json_loadb(answer->body != NULL ? answer->body : "", answer->body_size, 0, NULL);
    size_t count = json_is_array(list) ? json_array_size(list) : 0;
    for (size_t i = 0; i < count && *title == NULL; i++) {
        json_t *entry = json_array_get(list, i);
        const char *filename = json_string_value(json_object_get(entry, "filename"));
        const char *found = json_string_value(json_object_get(entry, "title"));
        if (filename != NULL && found != NULL && strcmp(base_name(filename), name) == 0)
            *title = strdup(found);
    }
    bool was_list = json_is_array(list);
    json_decref(list);
    if (*title != NULL)
        return MS_OK;
    if (!was_list)
        ms_error_set(err, MS_ERR_WEBUI_ERROR, NULL,
                     "GET /sdapi/v1/sd-models: the web UI's answer is not a list of checkpoints");
    else
        ms_error_set(err, MS_ERR_WEBUI_ERROR, NULL,
                     "the web UI does not list %s after refreshing its checkpoints: "
                     "--webui-checkpoints must be a folder it lists checkpoints from "
                     "(its models/Stable-diffusion or a folder under it)", name);
    ms_error_detail_add(err, "file", "%s", name);
    ms_error_detail_add(err, "listed", "%zu", count);
    return MS_ERR_WEBUI_ERROR;
}

static char *options_body(const char *title)
{
    json_t *body = json_pack("{s:o}", "sd_model_checkpoint", ms_api_json_text(title));
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return text;
}

typedef struct merge_file {
    char *name;
    struct timespec modified;
} merge_file;

static bool is_merge_name(const char *name)
{
    size_t length = strlen(name);
    size_t prefix = sizeof merge_prefix - 1, suffix = sizeof merge_suffix - 1;
    return length > prefix + suffix && strncmp(name, merge_prefix, prefix) == 0 &&
           strcmp(name + length - suffix, merge_suffix) == 0;
}

static int newest_first(const void *a, const void *b)
{
    const struct timespec *x = &((const merge_file *)a)->modified;
    const struct timespec *y = &((const merge_file *)b)->modified;
    if (x->tv_sec != y->tv_sec)
        return x->tv_sec < y->tv_sec ? 1 : -1;
    return x->tv_nsec < y->tv_nsec ? 1 : x->tv_nsec > y->tv_nsec ? -1 : 0;
}

/* Our files but the one just loaded, newest first. */
static merge_file *list_merges(const char *folder, const char *loaded_name, size_t *count)
{
    *count = 0;
    DIR *dir = opendir(folder);
    if (dir == NULL)
        return NULL;
    merge_file *files = NULL;
    size_t capacity = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (!is_merge_name(entry->d_name) || strcmp(entry->d_name, loaded_name) == 0)
            continue;
        struct stat info;
        if (fstatat(dirfd(dir), entry->d_name, &info, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(info.st_mode))
            continue;
        if (*count == capacity) {
            size_t grown = capacity > 0 ? 2 * capacity : 16;
            merge_file *bigger = realloc(files, grown * sizeof *files);
            if (bigger == NULL)
                break;
            files = bigger;
            capacity = grown;
        }
        files[*count].name = strdup(entry->d_name);
        files[*count].modified = info.st_mtim;
        if (files[*count].name != NULL)
            (*count)++;
    }
    closedir(dir);
    if (*count > 0)
        qsort(files, *count, sizeof *files, newest_first);
    return files;
}

/* The loaded file counts as the newest: keep - 1 others stay.  The job
 * answers after this: the reaper frees the blocks (seconds per file). */
static void delete_older(const ms_webui *webui, ms_file_reaper *reaper, const char *loaded_name,
                         json_t *report)
{
    size_t count = 0;
    merge_file *files = list_merges(webui->checkpoints_dir, loaded_name, &count);
    json_t *deleted = json_array();
    for (size_t i = 0; i < count; i++) {
        if (i + 1 >= (size_t)webui->keep) {
            char *path = ms_paths_join(webui->checkpoints_dir, files[i].name);
            if (path != NULL && ms_file_reaper_unlinkat(reaper, AT_FDCWD, path) == 0)
                json_array_append_new(deleted, ms_api_json_text(files[i].name));
            else if (path != NULL && errno != ENOENT)
                ms_log("webui: cannot delete %s: %s", path, strerror(errno));
            free(path);
        }
        free(files[i].name);
    }
    free(files);
    json_object_set_new(report, "deleted", deleted);
}

ms_status ms_webui_load(const ms_webui *webui, ms_file_reaper *reaper, const char *path,
                        const atomic_int *cancel, json_t *report, ms_error *err)
{
    const char *name = base_name(path);
    json_object_set_new(report, "file", ms_api_json_text(path));
    ms_webui_answer answer;
    char *title = NULL, *body = NULL;
    ms_status status = call(webui, "POST", "/sdapi/v1/refresh-checkpoints", NULL, cancel, report,
                            &answer, err);
    ms_webui_answer_free(&answer);
    if (status == MS_OK)
        status = call(webui, "GET", "/sdapi/v1/sd-models", NULL, cancel, report, &answer, err);
    if (status == MS_OK)
        status = find_title(&answer, name, &title, err);
    ms_webui_answer_free(&answer);
    if (status != MS_OK)
        goto done;
    json_object_set_new(report, "checkpoint", ms_api_json_text(title));
    body = options_body(title);
    if (body == NULL) {
        status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
        goto done;
    }
    status = call(webui, "POST", "/sdapi/v1/options", body, cancel, report, &answer, err);
    ms_webui_answer_free(&answer);
    if (status == MS_OK)
        delete_older(webui, reaper, name, report);
done:
    free(body);
    free(title);
    return status;
}
