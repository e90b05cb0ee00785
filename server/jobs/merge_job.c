#include "merge_job.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/json_text.h"
#include "core/merge/blocks.h"
#include "core/format/safetensors.h"
#include "server/model_match.h"
#include "server/paths.h"
#include "server/service.h"

static const char bbwm_wrapper[] = "bbwm";
static const char safetensors_suffix[] = ".safetensors";

static ms_status out_of_memory(ms_error *err)
{
    return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
}

ms_status ms_merge_job_parse(const json_t *body, bool from_bbwm, ms_merge_job *job,
                             ms_error *err)
{
    memset(job, 0, sizeof *job);
    job->from_bbwm = from_bbwm;
    ms_status status = from_bbwm ? ms_api_bbwm_request_from_json(body, &job->request, err)
                                 : ms_api_merge_request_from_json(body, &job->request, err);
    /* the parser may leave strings behind on failure too: always freed */
    job->have_request = true;
    return status;
}

ms_status ms_merge_job_parse_stored(const char *request_text, ms_merge_job *job, ms_error *err)
{
    memset(job, 0, sizeof *job);
    json_error_t json_error;
    json_t *stored = json_loads(request_text, 0, &json_error);
    if (stored == NULL)
        return ms_error_set(err, MS_ERR_INTERNAL, NULL, "stored request is not JSON: %s",
                            json_error.text);
    json_t *wrapped = json_object_size(stored) == 1 ? json_object_get(stored, bbwm_wrapper)
                                                    : NULL;
    ms_status status = ms_merge_job_parse(wrapped != NULL ? wrapped : stored, wrapped != NULL,
                                          job, err);
    json_decref(stored);
    return status;
}

char *ms_merge_job_stored_text(const json_t *body, bool from_bbwm)
{
    if (!from_bbwm)
        return json_dumps(body, JSON_COMPACT);
    json_t *wrapper = json_object();
    if (wrapper == NULL || json_object_set(wrapper, bbwm_wrapper, (json_t *)body) != 0) {
        json_decref(wrapper);
        return NULL;
    }
    char *text = json_dumps(wrapper, JSON_COMPACT);
    json_decref(wrapper);
    return text;
}

/* ---- models ---- */

static const char *const model_fields[3] = {"model_a", "model_b", "model_c"};

static ms_status find_model(const ms_service *service, const ms_merge_job *job, int index,
                            const char *model, char **path, ms_error *err)
{
    const ms_serve_options *options = service->options;
    size_t root_index = 0;
    if (job->from_bbwm)
        return ms_model_match(options->model_roots, options->model_root_count, model,
                              model_fields[index], path, &root_index, err);
    ms_status status = ms_paths_resolve_model(options->model_roots, options->model_root_count,
                                              model, path, &root_index, err);
    if (status != MS_OK)
        ms_error_detail_add(err, "field", "%s", model_fields[index]);
    return status;
}

/* Each model must be a safetensors file; A's keys say which block weights fit. */
static ms_status check_models(ms_merge_job *job, ms_error *err)
{
    for (int i = 0; i < 3 && job->model_paths[i] != NULL; i++) {
        ms_safetensors file;
        ms_status status = ms_safetensors_open(job->model_paths[i], &file, err);
        if (status != MS_OK) {
            ms_error_detail_add(err, "field", "%s", model_fields[i]);
            return status;
        }
        if (i == 0) {
            ms_merge_architecture arch = ms_merge_detect_architecture(&file);
            status = ms_block_weights_validate(&job->request.params.alpha, "alpha", arch, err);
            if (status == MS_OK)
                status = ms_block_weights_validate(&job->request.params.beta, "beta", arch, err);
        }
        ms_safetensors_close(&file);
        if (status != MS_OK)
            return status;
    }
    return MS_OK;
}

/* ---- destination (/bbwm) ---- */

static ms_status destination_error(ms_error *err, ms_status code, const char *destination,
                                   const char *why, const char *reason)
{
    ms_error_set(err, code, NULL, "destination '%s' %s", destination, why);
    ms_error_detail_add(err, "field", "destination");
    if (reason != NULL)
        ms_error_detail_add(err, "reason", "%s", reason);
    return code;
}

/* Canonical real lies inside a root, or is one when root_itself. */
static bool inside_roots(const ms_serve_options *options, const char *real, bool root_itself)
{
    for (size_t i = 0; i < options->model_root_count; i++) {
        char *root_real = realpath(options->model_roots[i], NULL);
        bool inside = root_real != NULL &&
                      (ms_paths_is_inside(root_real, real) ||
                       (root_itself && strcmp(root_real, real) == 0));
        free(root_real);
        if (inside)
            return true;
    }
    return false;
}

static bool has_dot_dot(const char *path)
{
    for (const char *at = path; (at = strstr(at, "..")) != NULL; at += 2) {
        bool starts = at == path || at[-1] == '/';
        bool ends = at[2] == '\0' || at[2] == '/';
        if (starts && ends)
            return true;
    }
    return false;
}

/* The file name: .safetensors (the only format written), a name the file
 * system takes, not hidden (the models listing skips those). */
static ms_status check_destination_name(const char *destination, const char *name,
                                        ms_error *err)
{
    size_t length = strlen(name);
    size_t suffix_length = sizeof safetensors_suffix - 1;
    if (length <= suffix_length || strcmp(name + length - suffix_length, safetensors_suffix) != 0)
        return destination_error(err, MS_ERR_INVALID_PARAMETER, destination,
                                 "must name a .safetensors file", NULL);
    if (length > NAME_MAX)
        return destination_error(err, MS_ERR_INVALID_PARAMETER, destination,
                                 "has a file name longer than the file system takes", NULL);
    if (name[0] == '.')
        return destination_error(err, MS_ERR_INVALID_PARAMETER, destination,
                                 "must not name a hidden file", NULL);
    return MS_OK;
}

/* An existing target (a symlink is followed by the writer) must be a
 * regular file inside the roots. */
static ms_status check_existing_target(const ms_serve_options *options, const char *path,
                                       const char *destination, ms_error *err)
{
    struct stat info;
    if (lstat(path, &info) != 0)
        return MS_OK;   /* a new file */
    char *real = realpath(path, NULL);
    if (real == NULL)
        return destination_error(err, MS_ERR_PATH_OUTSIDE_MODELS, destination,
                                 "is a link that leads nowhere", NULL);
    bool inside = inside_roots(options, real, false);
    bool regular = stat(real, &info) == 0 && S_ISREG(info.st_mode);
    free(real);
    if (!inside)
        return destination_error(err, MS_ERR_PATH_OUTSIDE_MODELS, destination,
                                 "leads outside the models roots", NULL);
    if (!regular)
        return destination_error(err, MS_ERR_INVALID_PARAMETER, destination,
                                 "exists and is not a regular file", NULL);
    return MS_OK;
}

static ms_status resolve_destination(const ms_serve_options *options, ms_merge_job *job,
                                     ms_error *err)
{
    const char *destination = job->request.destination;
    if (destination == NULL)
        return MS_OK;
    if (has_dot_dot(destination))
        return destination_error(err, MS_ERR_PATH_OUTSIDE_MODELS, destination,
                                 "climbs out with '..'", NULL);
    char *joined = NULL;
    if (destination[0] == '/') {
        joined = strdup(destination);
    } else {
        /* relative: beside model A, as the web UI does */
        char *folder = strdup(job->model_paths[0]);
        char *slash = folder != NULL ? strrchr(folder, '/') : NULL;
        if (slash != NULL)
            *slash = '\0';
        joined = folder != NULL ? ms_paths_join(folder, destination) : NULL;
        free(folder);
    }
    if (joined == NULL)
        return out_of_memory(err);
    size_t length = strlen(joined);
    while (length > 1 && joined[length - 1] == '/')
        joined[--length] = '\0';
    char *slash = strrchr(joined, '/');
    const char *name = slash + 1;
    ms_status status = check_destination_name(destination, name, err);
    char *folder_real = NULL;
    if (status == MS_OK) {
        *slash = '\0';
        folder_real = realpath(joined[0] != '\0' ? joined : "/", NULL);
        *slash = '/';
        if (folder_real == NULL)
            status = destination_error(err, MS_ERR_INVALID_PARAMETER, destination,
                                       "is in a folder that does not exist", NULL);
        else if (!inside_roots(options, folder_real, true))
            status = destination_error(err, MS_ERR_PATH_OUTSIDE_MODELS, destination,
                                       "is outside the models roots", NULL);
    }
    if (status == MS_OK)
        status = check_existing_target(options, joined, destination, err);
    if (status == MS_OK) {
        job->destination = ms_paths_join(folder_real, name);
        if (job->destination == NULL)
            status = out_of_memory(err);
    }
    free(folder_real);
    free(joined);
    return status;
}

ms_status ms_merge_job_check_writable(const ms_merge_job *job, ms_error *err)
{
    if (job->destination == NULL)
        return MS_OK;
    char *folder = strdup(job->destination);
    if (folder == NULL)
        return out_of_memory(err);
    char *slash = strrchr(folder, '/');
    *(slash == folder ? slash + 1 : slash) = '\0';
    int error = access(folder, W_OK) == 0 ? 0 : errno;
    free(folder);
    if (error == 0)
        return MS_OK;
    const char *destination = job->request.destination;
    if (error == EROFS)
        return destination_error(err, MS_ERR_INVALID_PARAMETER, destination,
                                 "is on a read-only file system; the service cannot write it",
                                 "read_only_file_system");
    if (error == EACCES || error == EPERM)
        return destination_error(err, MS_ERR_INVALID_PARAMETER, destination,
                                 "is in a folder the service may not write (for systemd: "
                                 "ReadWritePaths in the unit)", "permission_denied");
    return destination_error(err, MS_ERR_IO, destination, "cannot be written", strerror(error));
}

/* destination "memory" (/bbwm) and load_into_webui (/v1) need a web UI. */
static ms_status check_webui(const ms_service *service, const ms_merge_job *job, ms_error *err)
{
    if (!job->request.load_into_webui || service->webui != NULL)
        return MS_OK;
    const char *field = job->from_bbwm ? "destination" : "load_into_webui";
    ms_error_set(err, MS_ERR_UNSUPPORTED_OPTION, NULL,
                 "%s loads the merge into a web UI; none is attached (serve --webui URL "
                 "--webui-checkpoints DIR)%s", job->from_bbwm ? "destination \"memory\"" : field,
                 job->from_bbwm ? ": give a file path" : "");
    ms_error_detail_add(err, "field", "%s", field);
    ms_error_detail_add(err, "options", "--webui, --webui-checkpoints");
    return MS_ERR_UNSUPPORTED_OPTION;
}

ms_status ms_merge_job_resolve(const ms_service *service, ms_merge_job *job, ms_error *err)
{
    ms_status webui_status = check_webui(service, job, err);
    if (webui_status != MS_OK)
        return webui_status;
    const char *models[3] = {job->request.model_a, job->request.model_b, job->request.model_c};
    for (int i = 0; i < 3; i++) {
        if (models[i] == NULL)
            continue;
        ms_status status = find_model(service, job, i, models[i], &job->model_paths[i], err);
        if (status != MS_OK)
            return status;
    }
    ms_status status = check_models(job, err);
    if (status == MS_OK)
        status = resolve_destination(service->options, job, err);
    if (status == MS_OK)
        status = ms_merge_job_check_writable(job, err);
    return status;
}

char *ms_merge_job_output_name(const ms_merge_job *job)
{
    if (job->destination != NULL)
        return strdup(strrchr(job->destination, '/') + 1);
    if (job->request.output_name != NULL)
        return strdup(job->request.output_name);
    const ms_merge_method *method = job->request.params.method;
    return ms_paths_default_merge_name(job->request.model_a, job->request.model_b,
                                       method != NULL ? method->name : "merge");
}

char *ms_merge_job_params_text(ms_merge_job *job, const char *output_name)
{
    /* params show the name actually used */
    char *given_name = job->request.output_name;
    job->request.output_name = (char *)output_name;
    json_t *params = ms_api_merge_request_to_json(&job->request);
    job->request.output_name = given_name;
    /* a /bbwm body says "memory" where /v1 says load_into_webui: echoed as sent,
     * so that the echo reads back as the same request */
    if (params != NULL && job->from_bbwm && job->request.load_into_webui &&
        job->request.destination == NULL)
        json_object_set_new(params, "destination", json_string("memory"));
    char *text = params != NULL ? ms_api_json_dumps(params, 0) : NULL;
    json_decref(params);
    return text;
}

void ms_merge_job_free(ms_merge_job *job)
{
    if (job->have_request)
        ms_api_merge_request_free(&job->request);
    for (int i = 0; i < 3; i++)
        free(job->model_paths[i]);
    free(job->destination);
    memset(job, 0, sizeof *job);
}
