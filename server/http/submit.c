/* POST /v1/resize-lora: validate everything a client sent (body, model
 * file, output name) before a job exists, so a queued job only fails for
 * reasons that arise while it runs.  The steps every submit shares
 * (submit.h) live here too. */
#include "submit.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "api/api.h"
#include "api/json_load.h"
#include "server/clock.h"
#include "core/lora/lora.h"
#include "core/format/safetensors.h"
#include "server/failpoint.h"
#include "http_worker.h"
#include "server/jobs/job_waiters.h"
#include "server/log.h"
#include "server/paths.h"
#include "request_values.h"
#include "routes.h"
#include "server/service.h"

typedef struct submission {
    ms_api_resize_request request;
    bool have_request;
    char *output_name;
    char *params_text;
    char *request_text;       /* the body re-serialized compactly: what the job runs from */
    ms_submit_headers headers;
} submission;

enum MHD_Result ms_submit_send_code(ms_http_request *request, ms_status code,
                                    const char *message)
{
    ms_error err;
    ms_error_set(&err, code, NULL, "%s", message);
    return ms_http_send_error(request, &err, NULL);
}

/* "application/json", any case, optionally followed by parameters. */
static bool is_json_content_type(const char *value)
{
    if (value == NULL)
        return false;
    while (*value == ' ')
        value++;
    size_t length = strlen("application/json");
    if (strncasecmp(value, "application/json", length) != 0)
        return false;
    char next = value[length];
    return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

static void sha256_hex(const void *bytes, size_t size, char hex[65])
{
    unsigned char digest[32];
    unsigned int digest_size = sizeof digest;
    EVP_Digest(bytes, size, digest, &digest_size, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", digest[i]);
}

/* The model must be a readable safetensors LoRA with at least one module. */
static ms_status check_model(const char *path, ms_error *err)
{
    ms_safetensors file;
    ms_status status = ms_safetensors_open(path, &file, err);
    if (status != MS_OK)
        return status;
    ms_lora_module_list modules;
    status = ms_lora_find_modules(&file, &modules, err);
    if (status == MS_OK) {
        if (modules.count == 0)
            status = ms_error_set(err, MS_ERR_NOT_A_LORA, NULL,
                                  "the model has no LoRA modules (kohya, peft or control spelling)");
        ms_lora_module_list_free(&modules);
    }
    ms_safetensors_close(&file);
    return status;
}

ms_status ms_submit_parse_body(const ms_http_request *request, json_t **body, ms_error *err)
{
    json_error_t json_error;
    *body = ms_api_json_loadb(request->body != NULL ? request->body : "", request->body_size,
                              JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &json_error);
    if (*body == NULL) {
        ms_error_set(err, MS_ERR_INVALID_JSON, NULL, "the body is not valid JSON: %s",
                     json_error.text);
        ms_error_detail_add(err, "line", "%d", json_error.line);
        ms_error_detail_add(err, "column", "%d", json_error.column);
        return MS_ERR_INVALID_JSON;
    }
    return MS_OK;
}

static ms_status parse_body(ms_http_request *request, submission *work, ms_error *err)
{
    json_t *body = NULL;
    if (ms_submit_parse_body(request, &body, err) != MS_OK)
        return err->code;
    ms_status status = ms_api_resize_request_from_json(body, &work->request, err);
    work->have_request = status == MS_OK;   /* freed by the caller from here on */
    /* compact: a body padded with a megabyte of blanks is not kept (or copied on every GET) */
    if (status == MS_OK)
        work->request_text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (status != MS_OK)
        return status;
    if (work->request_text == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    if (work->request.output_name != NULL) {
        if (!ms_paths_output_name_valid(work->request.output_name)) {
            ms_error_set(err, MS_ERR_INVALID_OUTPUT_NAME, NULL,
                         "output_name must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$ and end "
                         "in .safetensors");
            ms_error_detail_add(err, "field", "output_name");
            return MS_ERR_INVALID_OUTPUT_NAME;
        }
        work->output_name = strdup(work->request.output_name);
    } else {
        work->output_name = ms_paths_default_output_name(work->request.model);
    }
    if (work->output_name == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    /* params show the name actually used */
    char *given_name = work->request.output_name;
    work->request.output_name = work->output_name;
    work->params_text = ms_job_json_text(ms_api_resize_request_to_json(&work->request));
    work->request.output_name = given_name;
    return work->params_text != NULL ? MS_OK
                                     : ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
}

/* What is checked before an earlier job with the same key is looked up. */
ms_status ms_submit_check_headers(ms_http_request *request, bool honour_idempotency_key,
                                  ms_submit_headers *headers, ms_error *err)
{
    memset(headers, 0, sizeof *headers);
    if (!is_json_content_type(ms_http_header(request, MHD_HTTP_HEADER_CONTENT_TYPE)))
        return ms_error_set(err, MS_ERR_UNSUPPORTED_MEDIA_TYPE, NULL,
                            "Content-Type must be application/json");
    if (honour_idempotency_key)
        headers->idempotency_key = ms_http_header(request, "Idempotency-Key");
    if (headers->idempotency_key != NULL && !ms_http_idempotency_key_valid(headers->idempotency_key)) {
        ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL,
                     "Idempotency-Key must be 1 to %d printable ASCII characters",
                     MS_IDEMPOTENCY_KEY_MAX);
        ms_error_detail_add(err, "field", "Idempotency-Key");
        return MS_ERR_INVALID_PARAMETER;
    }
    sha256_hex(request->body != NULL ? request->body : "", request->body_size,
               headers->body_sha256);
    return MS_OK;
}

static ms_status validate(ms_http_request *request, submission *work, ms_error *err)
{
    ms_service *service = request->service;
    ms_status status = parse_body(request, work, err);
    if (status != MS_OK)
        return status;
    char *model_path = NULL;
    size_t root_index = 0;
    const ms_serve_options *options = service->options;
    status = ms_paths_resolve_model(options->model_roots, options->model_root_count,
                                    work->request.model, &model_path, &root_index, err);
    if (status == MS_OK)
        status = check_model(model_path, err);
    free(model_path);
    return status;
}

/* A queued job from what was validated; takes the three texts (freed on
 * failure too).  NULL when out of memory. */
static ms_job *new_job(ms_job_kind kind, char *request_text, char *params_text,
                       char *output_name, const ms_submit_headers *headers)
{
    ms_job *job = ms_job_new(kind);
    if (job == NULL) {
        free(request_text);
        free(params_text);
        free(output_name);
        return NULL;
    }
    job->request_text = request_text;
    job->params_text = params_text;
    job->output_name = output_name;
    const char *key = headers->idempotency_key;
    job->idempotency_key = key != NULL ? strdup(key) : NULL;
    memcpy(job->body_sha256, headers->body_sha256, sizeof job->body_sha256);
    job->created_ms = ms_clock_now_ms();
    if (job->request_text == NULL || job->params_text == NULL || job->output_name == NULL ||
        (key != NULL && job->idempotency_key == NULL)) {
        ms_job_free(job);
        return NULL;
    }
    return job;
}

static enum MHD_Result send_accepted(ms_http_request *request, const char *id, char *text,
                                     bool replayed)
{
    char location[64];
    snprintf(location, sizeof location, "/v1/jobs/%s", id);
    ms_http_set_job_id(request, id);
    const char *headers[] = {MHD_HTTP_HEADER_LOCATION, location,
                             replayed ? "Idempotent-Replayed" : NULL, "true", NULL};
    return ms_http_send_json(request, 202, text, headers);
}

/* Under the submit mutex: an earlier job with this key, if any. */
enum MHD_Result ms_submit_replay_or_conflict(ms_http_request *request,
                                             const ms_submit_headers *headers, bool *handled)
{
    ms_service *service = request->service;
    *handled = false;
    if (headers->idempotency_key == NULL)
        return MHD_YES;
    ms_job_table_lock(&service->table);
    ms_job *job = ms_job_table_find_idempotency_key(&service->table, headers->idempotency_key);
    if (job == NULL) {
        ms_job_table_unlock(&service->table);
        return MHD_YES;
    }
    *handled = true;
    if (strcmp(job->body_sha256, headers->body_sha256) != 0) {
        ms_job_table_unlock(&service->table);
        return ms_submit_send_code(request, MS_ERR_IDEMPOTENCY_CONFLICT,
                               "this Idempotency-Key was used with a different body");
    }
    ms_job *copy = ms_job_copy(job);
    ms_job_table_unlock(&service->table);
    if (copy == NULL)
        return ms_submit_send_code(request, MS_ERR_OUT_OF_MEMORY, "out of memory");
    ms_service_attach_report(service, copy);
    char *text = ms_job_to_json_text(copy, ms_clock_now_ms());
    enum MHD_Result result = send_accepted(request, copy->id, text, true);
    ms_job_free(copy);
    return result;
}

/* Under the submit mutex: replay, queue limit (429), the durable insert,
 * the table.  Takes job; hold as in ms_submit_job. */
static enum MHD_Result enqueue(ms_http_request *request, const ms_submit_headers *headers,
                               ms_job *job, bool hold)
{
    ms_service *service = request->service;
    bool handled = false;
    enum MHD_Result result = ms_submit_replay_or_conflict(request, headers, &handled);
    if (handled) {
        ms_job_free(job);
        return result;
    }
    ms_job_table_lock(&service->table);
    size_t queued = ms_job_table_count_state(&service->table, MS_JOB_QUEUED);
    int64_t sequence = service->table.next_sequence++;
    ms_job_table_unlock(&service->table);
    if (queued >= (size_t)service->options->queue_size) {
        ms_job_free(job);
        static const char *const retry_headers[] = {MHD_HTTP_HEADER_RETRY_AFTER, "5", NULL};
        ms_error err;
        ms_error_set(&err, MS_ERR_QUEUE_FULL, NULL, "the queue is full (%d jobs waiting)",
                     service->options->queue_size);
        ms_error_detail_add(&err, "queue_size", "%d", service->options->queue_size);
        return ms_http_send_error(request, &err, retry_headers);
    }
    job->sequence = sequence;
    /* durable before anyone is told it exists */
    ms_error err;
    if (ms_job_store_insert(service->store, job, &err) != MS_OK) {
        ms_log("job %s: cannot record it: %s", job->id, err.message);
        ms_job_free(job);
        return ms_http_send_error(request, &err, NULL);
    }
    char id[MS_JOB_ID_LENGTH + 1];
    memcpy(id, job->id, sizeof id);
    ms_job_kind kind = job->kind;
    ms_job_table_lock(&service->table);
    int inserted = ms_job_table_insert(&service->table, job);
    char *text = inserted == 0 && !hold ? ms_job_to_json_text(job, ms_clock_now_ms()) : NULL;
    ms_job_table_unlock(&service->table);
    if (inserted != 0) {
        ms_job_store_delete(service->store, id, &err);
        ms_job_free(job);
        return ms_submit_send_code(request, MS_ERR_OUT_OF_MEMORY, "out of memory");
    }
    ms_log("job %s %s queued", id, ms_job_kind_name(kind));
    if (hold) {
        /* queued by ms_job_waiters_hold once the worker lets go of the request */
        ms_http_set_job_id(request, id);
        request->after_deferred = ms_job_waiters_hold;
        return MHD_YES;
    }
    ms_job_queue_push(&service->queue, id);
    return send_accepted(request, id, text, false);
}

enum MHD_Result ms_submit_job(ms_http_request *request, ms_job_kind kind, char *request_text,
                              char *params_text, char *output_name,
                              const ms_submit_headers *headers, bool hold)
{
    ms_job *job = new_job(kind, request_text, params_text, output_name, headers);
    if (job == NULL)
        return ms_submit_send_code(request, MS_ERR_OUT_OF_MEMORY, "out of memory");
    ms_service *service = request->service;
    pthread_mutex_lock(&service->submit_mutex);
    /* looks for the key again: another POST may have won */
    enum MHD_Result result = enqueue(request, headers, job, hold);
    pthread_mutex_unlock(&service->submit_mutex);
    return result;
}

/* On the HTTP worker: it reads the model's header and commits to SQLite. */
static enum MHD_Result submit_resize(ms_http_request *request)
{
    ms_failpoint_pause(MS_FAILPOINT_SUBMIT_SLEEP);
    ms_service *service = request->service;
    if (atomic_load(&service->shutting_down))
        return ms_submit_send_code(request, MS_ERR_SHUTTING_DOWN,
                               "the service is shutting down; retry after the restart");
    submission work;
    memset(&work, 0, sizeof work);
    ms_error err;
    ms_error_clear(&err);
    enum MHD_Result result;
    bool handled = false;
    if (ms_submit_check_headers(request, true, &work.headers, &err) != MS_OK) {
        result = ms_http_send_error(request, &err, NULL);
        goto done;
    }
    /* A replay answers with the job even if the model is gone since. */
    pthread_mutex_lock(&service->submit_mutex);
    result = ms_submit_replay_or_conflict(request, &work.headers, &handled);
    pthread_mutex_unlock(&service->submit_mutex);
    if (handled)
        goto done;
    if (validate(request, &work, &err) != MS_OK) {
        result = ms_http_send_error(request, &err, NULL);
        goto done;
    }
    result = ms_submit_job(request, MS_JOB_KIND_RESIZE, work.request_text, work.params_text,
                           work.output_name, &work.headers, false);
    work.request_text = work.params_text = work.output_name = NULL;
done:
    if (work.have_request)
        ms_api_resize_request_free(&work.request);
    free(work.output_name);
    free(work.params_text);
    free(work.request_text);
    return result;
}

enum MHD_Result ms_submit_resize(ms_http_request *request)
{
    return ms_http_defer(request, &request->service->write_worker, submit_resize);
}
