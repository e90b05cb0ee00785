#include "routes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "server/clock.h"
#include "config.h"
#include "http_worker.h"
#include "query.h"
#include "request_values.h"
#include "server/jobs/job_runner.h"
#include "server/log.h"
#include "server/paths.h"
#include "server/service.h"
#include "server/webui/passthrough.h"


/* GET/DELETE /v1/jobs/{id}, GET /v1/jobs/{id}/result */
#define JOBS_PREFIX "/v1/jobs/"
static bool is_method(const ms_http_request *request, const char *name)
{
    return strcmp(request->method, name) == 0;
}

static enum MHD_Result send_code(ms_http_request *request, ms_status code, const char *message)
{
    ms_error err;
    ms_error_set(&err, code, NULL, "%s", message);
    return ms_http_send_error(request, &err, NULL);
}

static enum MHD_Result method_not_allowed(ms_http_request *request, const char *allow)
{
    ms_error err;
    ms_error_set(&err, MS_ERR_METHOD_NOT_ALLOWED, NULL, "method %s is not allowed on %s",
                 request->method, request->path);
    ms_error_detail_add(&err, "allow", "%s", allow);
    const char *headers[] = {MHD_HTTP_HEADER_ALLOW, allow, NULL};
    return ms_http_send_error(request, &err, headers);
}

static enum MHD_Result handle_health(ms_http_request *request)
{
    ms_service *service = request->service;
    ms_job_table_lock(&service->table);
    size_t running = ms_job_table_count_state(&service->table, MS_JOB_RUNNING);
    size_t queued = ms_job_table_count_state(&service->table, MS_JOB_QUEUED);
    ms_job_table_unlock(&service->table);
    char *text = NULL;
    if (asprintf(&text, "{\"status\":\"ok\",\"version\":\"%s\",\"jobs_running\":%zu,"
                        "\"queue_depth\":%zu}", PACKAGE_VERSION, running, queued) < 0)
        return MHD_NO;
    return ms_http_send_json(request, 200, text, NULL);
}

static enum MHD_Result handle_metrics(ms_http_request *request)
{
    ms_service *service = request->service;
    size_t counts[MS_JOB_KIND_COUNT][MS_JOB_STATE_COUNT];
    ms_job_table_lock(&service->table);
    memcpy(counts, service->table.state_counts, sizeof counts);
    ms_job_table_unlock(&service->table);
    size_t queued = 0;
    for (int kind = 0; kind < MS_JOB_KIND_COUNT; kind++)
        queued += counts[kind][MS_JOB_QUEUED];
    char *text = ms_metrics_render(&service->metrics, counts, queued);
    return ms_http_send_text(request, 200, "text/plain; version=0.0.4; charset=utf-8", text,
                             NULL);
}

/* --openapi, else: a binary run from its build folder serves the source
 * tree's copy (the one being edited); an installed one the installed copy
 * (not a source tree that may have moved on), else one beside it. */
static int open_openapi(const ms_service *service)
{
    if (service->options->openapi_path != NULL)
        return open(service->options->openapi_path, O_RDONLY | O_CLOEXEC);
    char beside[4096] = "";
    ssize_t length = readlink("/proc/self/exe", beside, sizeof beside - 32);
    bool in_build = false;
    if (length > 0) {
        beside[length] = '\0';
        size_t build_length = strlen(MS_BUILD_DIR);
        in_build = strncmp(beside, MS_BUILD_DIR, build_length) == 0 &&
                   beside[build_length] == '/';
        char *slash = strrchr(beside, '/');
        if (slash != NULL)
            strcpy(slash + 1, "openapi.yaml");
    }
    const char *source = MS_SOURCE_DIR "/openapi.yaml";
    const char *candidates[] = {in_build ? source : MS_PKGDATA_DIR "/openapi.yaml", beside,
                                "/usr/share/mergesvd/openapi.yaml",
                                in_build ? MS_PKGDATA_DIR "/openapi.yaml" : source};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        if (candidates[i][0] == '\0')
            continue;
        int fd = open(candidates[i], O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
            return fd;
    }
    return -1;
}

static enum MHD_Result handle_openapi(ms_http_request *request)
{
    int fd = open_openapi(request->service);
    struct stat info;
    if (fd < 0 || fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
        if (fd >= 0)
            close(fd);
        return send_code(request, MS_ERR_ROUTE_NOT_FOUND, "openapi.yaml is not installed");
    }
    struct MHD_Response *response =
        MHD_create_response_from_fd64((uint64_t)info.st_size, fd);
    if (response == NULL) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/yaml");
    return ms_http_send(request, 200, response);
}

static enum MHD_Result job_not_found(ms_http_request *request, const char *id)
{
    ms_error err;
    ms_error_set(&err, MS_ERR_JOB_NOT_FOUND, NULL, "no job with id '%.64s'", id);
    return ms_http_send_error(request, &err, NULL);
}

static enum MHD_Result handle_job_get_stored(ms_http_request *request);

static enum MHD_Result handle_job_get(ms_http_request *request, const char *id)
{
    ms_service *service = request->service;
    /* only a copy under the lock (the report is shared, not copied): polls
     * never wait for another poll's JSON to be written */
    ms_job_table_lock(&service->table);
    ms_job *job = ms_job_table_find(&service->table, id);
    ms_job *copy = job != NULL ? ms_job_copy(job) : NULL;
    ms_job_table_unlock(&service->table);
    if (job == NULL)
        return job_not_found(request, id);
    if (copy == NULL)
        return MHD_NO;
    if (copy->report_in_store && copy->report == NULL && !request->deferred) {
        ms_job_free(copy);
        return ms_http_defer(request, &service->read_worker, handle_job_get_stored);
    }
    ms_http_set_job_id(request, id);
    ms_service_attach_report(service, copy);
    char *text = ms_job_to_json_text(copy, ms_clock_now_ms());
    ms_job_free(copy);
    return ms_http_send_json(request, 200, text, NULL);
}

/* A finished job's report is read back from SQLite (a few ms for a large
 * one): on the HTTP worker, so polls of running jobs never wait behind it. */
static enum MHD_Result handle_job_get_stored(ms_http_request *request)
{
    return handle_job_get(request, request->path + strlen(JOBS_PREFIX));
}

/* Here, not on the reaper: on a full disk the store's next change (and its
 * reserve) needs the space this frees. */
static void remove_result(ms_service *service, const char *id)
{
    char *result_dir = ms_service_result_dir(service, id);
    if (result_dir != NULL)
        ms_paths_remove_dir(result_dir, NULL);
    free(result_dir);
}

/* Called with the table locked; unlocks.  The record goes first, under the
 * lock (a DELETE is rare; this runs on the write worker): if the store
 * cannot delete it, nothing is removed and the client hears so, instead of
 * a 204 for a job that comes back after a restart without its file.  A
 * full disk is not such a case: the store deletes on its reserve's space
 * (job_store.h), and when even that is spent, the job's own file goes
 * first to make room (its downloads answer 410 from then on, as for an
 * expired result). */
static enum MHD_Result delete_finished(ms_http_request *request, ms_job *job)
{
    ms_service *service = request->service;
    ms_error err;
    ms_status status = ms_job_store_delete(service->store, job->id, &err);
    if (status == MS_ERR_DISK_FULL && job->has_result && !job->result_expired) {
        ms_log("job %s: the disk is full and the store's reserve spent: its file goes first",
               job->id);
        job->result_expired = true;
        remove_result(service, job->id);
        status = ms_job_store_delete(service->store, job->id, &err);
    }
    if (status != MS_OK) {
        ms_job_table_unlock(&service->table);
        ms_log("job %s: deleting the record failed: %s", request->job_id, err.message);
        return ms_http_send_error(request, &err, NULL);
    }
    ms_job_table_remove(&service->table, job);
    ms_job_table_unlock(&service->table);
    remove_result(service, job->id);
    ms_job_store_restore_reserve(service->store, &err);   /* the room just freed */
    ms_log("job %s %s deleted", job->id, ms_job_kind_name(job->kind));
    ms_job_free(job);
    struct MHD_Response *response = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    return ms_http_send(request, 204, response);
}

/* A queued job's cancellation is committed before it shows, under the
 * lock, so that the loop cannot start it meanwhile: a cancel the store did
 * not take (disk full) would otherwise run after a restart.  Called with
 * the table locked. */
static ms_status cancel_queued(ms_service *service, ms_job *job, char **cancelled_error,
                               int64_t now, ms_error *err)
{
    ms_job *snapshot = ms_job_copy(job);
    if (snapshot == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    snapshot->state = MS_JOB_CANCELLED;
    snapshot->finished_ms = now;
    free(snapshot->error_text);
    snapshot->error_text = *cancelled_error;
    *cancelled_error = NULL;
    ms_status status = ms_job_store_update(service->store, snapshot, err);
    if (status == MS_OK) {
        ms_job_table_set_state(&service->table, job, MS_JOB_CANCELLED);
        job->finished_ms = now;
        free(job->error_text);
        job->error_text = snapshot->error_text;
        snapshot->error_text = NULL;
    }
    ms_job_free(snapshot);
    return status;
}

/* Called with the table locked; unlocks.  A queued job is cancelled at
 * once; a running one stops between modules, then the loop thread marks it
 * cancelled and removes its partial output. */
static enum MHD_Result cancel_job(ms_http_request *request, ms_job *job, char *cancelled_error)
{
    ms_service *service = request->service;
    int64_t now = ms_clock_now_ms();
    bool was_queued = false;
    unsigned status = 202;
    if (job->state == MS_JOB_QUEUED) {
        ms_error err;
        if (cancel_queued(service, job, &cancelled_error, now, &err) != MS_OK) {
            ms_job_table_unlock(&service->table);
            free(cancelled_error);
            ms_log("job %s: cancelling failed: %s", request->job_id, err.message);
            return ms_http_send_error(request, &err, NULL);
        }
        was_queued = true;
        status = 200;
    } else {
        job->cancel_requested = true;
        atomic_store(&job->cancel, 1);
    }
    char *text = ms_job_to_json_text(job, now);
    char id[MS_JOB_ID_LENGTH + 1];
    memcpy(id, job->id, sizeof id);
    ms_job_kind kind = job->kind;
    /* a /bbwm request waiting for this job hears of it too */
    char *ended_error = was_queued && job->error_text != NULL ? strdup(job->error_text) : NULL;
    ms_job_table_unlock(&service->table);
    free(cancelled_error);
    if (was_queued) {
        ms_job_waiters_job_ended(service, id, MS_JOB_CANCELLED, ended_error);
        free(ended_error);
    }
    if (was_queued)
        ms_log("job %s %s cancelled (was queued)", id, ms_job_kind_name(kind));
    else
        ms_log("job %s cancel requested", id);
    return ms_http_send_json(request, status, text, NULL);
}

static enum MHD_Result handle_job_delete(ms_http_request *request, const char *id)
{
    ms_service *service = request->service;
    /* built before locking: nothing allocates JSON under the lock but copies */
    char *cancelled_error = ms_job_runner_error_text(MS_ERR_CANCELLED, "the job was cancelled");
    ms_job_table_lock(&service->table);
    ms_job *job = ms_job_table_find(&service->table, id);
    if (job == NULL) {
        ms_job_table_unlock(&service->table);
        free(cancelled_error);
        return job_not_found(request, id);
    }
    ms_http_set_job_id(request, id);
    if (ms_job_state_is_final(job->state)) {
        free(cancelled_error);
        return delete_finished(request, job);
    }
    return cancel_job(request, job, cancelled_error);
}

/* A DELETE commits to SQLite and may remove a large file: on the write
 * worker, like submits, so polls do not wait behind it. */
static enum MHD_Result delete_job_deferred(ms_http_request *request)
{
    return handle_job_delete(request, request->path + strlen(JOBS_PREFIX));
}

/* Reads every listed finished job's report from SQLite: on the HTTP worker
 * (see handle_job_list). */
static enum MHD_Result list_jobs(ms_http_request *request)
{
    long long limit = 50, cursor = 0;
    const char *limit_text = ms_http_query(request, "limit");
    const char *cursor_text = ms_http_query(request, "cursor");
    if (limit_text != NULL && !ms_http_parse_positive(limit_text, 500, &limit))
        return ms_http_invalid_query(request, "limit", "limit must be an integer from 1 to 500");
    if (cursor_text != NULL && !ms_http_parse_positive(cursor_text, INT64_MAX, &cursor))
        return ms_http_invalid_query(request, "cursor", "cursor must be a next_cursor value");
    ms_service *service = request->service;
    ms_job **jobs = NULL;
    size_t count = 0;
    int64_t next_cursor = 0;
    ms_job_table_lock(&service->table);
    bool copied = ms_job_table_page(&service->table, cursor, (size_t)limit, &jobs, &count,
                                    &next_cursor);
    ms_job_table_unlock(&service->table);
    if (!copied)
        return MHD_NO;
    for (size_t i = 0; i < count; i++)
        ms_service_attach_report(service, jobs[i]);
    char *text = ms_job_page_json(jobs, count, next_cursor, ms_clock_now_ms());
    ms_job_page_free(jobs, count);
    return ms_http_send_json(request, 200, text, NULL);
}

static enum MHD_Result handle_job_list(ms_http_request *request)
{
    return ms_http_defer(request, &request->service->read_worker, list_jobs);
}

/* /v1/jobs/{id} and /v1/jobs/{id}/result */
static enum MHD_Result route_job(ms_http_request *request, const char *rest)
{
    char id[MS_JOB_ID_LENGTH + 8];
    const char *slash = strchr(rest, '/');
    size_t id_length = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
    if (id_length == 0 || id_length >= sizeof id)
        return id_length == 0 ? send_code(request, MS_ERR_ROUTE_NOT_FOUND, "no such route")
                              : job_not_found(request, "(too long)");
    memcpy(id, rest, id_length);
    id[id_length] = '\0';
    if (slash == NULL) {
        if (is_method(request, "GET") || is_method(request, "HEAD"))
            return handle_job_get(request, id);
        if (is_method(request, "DELETE"))
            return ms_http_defer(request, &request->service->write_worker, delete_job_deferred);
        return method_not_allowed(request, "GET, HEAD, DELETE");
    }
    if (strcmp(slash, "/result") == 0) {
        if (is_method(request, "GET") || is_method(request, "HEAD"))
            return ms_download_result(request, id);
        return method_not_allowed(request, "GET, HEAD");
    }
    return send_code(request, MS_ERR_ROUTE_NOT_FOUND, "no such route");
}

typedef struct static_route {
    const char *path;
    bool post;        /* POST route; otherwise GET/HEAD */
    enum MHD_Result (*handler)(ms_http_request *request);
} static_route;

static const static_route static_routes[] = {
    {"/healthz", false, handle_health},
    {"/metrics", false, handle_metrics},
    {"/openapi.yaml", false, handle_openapi},
    {"/v1/jobs", false, handle_job_list},
    {"/v1/models", false, ms_models_list},
    {"/v1/resize-lora", true, ms_submit_resize},
    {"/resize-lora", true, ms_submit_resize},
    {"/v1/merge-models", true, ms_submit_merge},
    {"/merge-models", true, ms_submit_merge},
    {"/bbwm/merge-models", true, ms_submit_bbwm_merge},
};

bool ms_routes_authorized(ms_http_request *request)
{
    const char *token = request->service->token;
    return token == NULL || strcmp(request->path, "/healthz") == 0 ||
           ms_auth_check(token, ms_http_header(request, MHD_HTTP_HEADER_AUTHORIZATION));
}

enum MHD_Result ms_routes_refuse_unauthorized(ms_http_request *request)
{
    static const char *const headers[] = {MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer", NULL};
    ms_error err;
    ms_error_set(&err, MS_ERR_UNAUTHORIZED, NULL,
                 "missing or wrong bearer token (Authorization: Bearer TOKEN)");
    return ms_http_send_error(request, &err, headers);
}

bool ms_routes_may_pass_through(const char *uri)
{
    static const char own[] = "/bbwm/merge-models";
    if (strncmp(uri, "/sdapi/", 7) == 0)
        return true;
    if (strncmp(uri, "/bbwm/", 6) != 0)
        return false;
    size_t length = strcspn(uri, "?");
    return !(length == sizeof own - 1 && strncmp(uri, own, length) == 0);
}

static bool passes_through(const ms_http_request *request)
{
    return request->service->passthrough != NULL && request->raw_uri != NULL &&
           ms_routes_may_pass_through(request->path);
}

size_t ms_routes_body_limit(const ms_http_request *request)
{
    return passes_through(request) ? MS_PASSTHROUGH_MAX_BODY : MS_HTTP_MAX_BODY;
}

/* Authorization was checked at the request's first callback (routes.h). */
enum MHD_Result ms_routes_handle(ms_http_request *request)
{
    for (size_t i = 0; i < sizeof static_routes / sizeof static_routes[0]; i++) {
        const static_route *route = &static_routes[i];
        if (strcmp(request->path, route->path) != 0)
            continue;
        bool allowed = route->post ? is_method(request, "POST")
                                   : is_method(request, "GET") || is_method(request, "HEAD");
        if (!allowed)
            return method_not_allowed(request, route->post ? "POST" : "GET, HEAD");
        return route->handler(request);
    }
    if (strncmp(request->path, JOBS_PREFIX, strlen(JOBS_PREFIX)) == 0)
        return route_job(request, request->path + strlen(JOBS_PREFIX));
    if (passes_through(request))
        return ms_passthrough_handle(request->service->passthrough, request);
    if (ms_routes_may_pass_through(request->path))
        return send_code(request, MS_ERR_ROUTE_NOT_FOUND,
                         "no such route: /sdapi and /bbwm requests pass through to a web UI "
                         "(serve --webui URL --webui-checkpoints DIR); none is attached");
    return send_code(request, MS_ERR_ROUTE_NOT_FOUND, "no such route");
}
