#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api/api.h"
#include "api/json_text.h"
#include "server/clock.h"
#include "connection_guard.h"
#include "http_worker.h"
#include "request_limits.h"
#include "server/log.h"
#include "routes.h"
#include "server/service.h"
#include "server/text.h"
#include "server/thread_priority.h"

void ms_http_set_job_id(ms_http_request *request, const char *job_id)
{
    if (ms_job_id_valid(job_id))
        memcpy(request->job_id, job_id, sizeof request->job_id);
}

const char *ms_http_header(const ms_http_request *request, const char *name)
{
    return MHD_lookup_connection_value(request->connection, MHD_HEADER_KIND, name);
}

const char *ms_http_query(const ms_http_request *request, const char *name)
{
    return MHD_lookup_connection_value(request->connection, MHD_GET_ARGUMENT_KIND, name);
}

/* One request per connection: the request gate (request_gate.h) checks the
 * first head of each connection before libmicrohttpd reads it, and only the
 * first, so a connection kept alive would let libmicrohttpd answer a
 * malformed later head with its HTML.  Closing after every answer costs a
 * client one more TCP handshake per request. */
static bool close_after(struct MHD_Response *response)
{
    const char *connection = MHD_get_response_header(response, MHD_HTTP_HEADER_CONNECTION);
    if (connection != NULL && strcasecmp(connection, "close") == 0)
        return true;
    return MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close") == MHD_YES;
}

enum MHD_Result ms_http_send(ms_http_request *request, unsigned status,
                             struct MHD_Response *response)
{
    if (response == NULL)
        return MHD_NO;   /* out of memory: drop the connection */
    if (!close_after(response)) {
        MHD_destroy_response(response);
        return MHD_NO;   /* out of memory: drop the connection */
    }
    request->status = status;
    request->responded = true;
    if (request->in_worker) {
        /* only an HTTP thread may queue it: the next callback does */
        request->ready_response = response;
        request->ready_status = status;
        return MHD_YES;
    }
    enum MHD_Result result = MHD_queue_response(request->connection, status, response);
    MHD_destroy_response(response);
    return result;
}

void ms_http_answer_held(ms_http_request *request, unsigned status, char *text)
{
    /* as a deferred handler would: kept, queued by the next callback */
    request->in_worker = true;
    ms_http_send_json(request, status, text, NULL);
    request->in_worker = false;
    MHD_resume_connection(request->connection);
}

void ms_http_answer_held_response(ms_http_request *request, unsigned status,
                                  struct MHD_Response *response)
{
    request->in_worker = true;
    request->worker_result = response != NULL ? MHD_YES : MHD_NO;
    if (response != NULL)
        ms_http_send(request, status, response);
    request->in_worker = false;
    MHD_resume_connection(request->connection);
}

static void add_headers(struct MHD_Response *response, const char *const *extra_headers)
{
    for (size_t i = 0; extra_headers != NULL && extra_headers[i] != NULL; i += 2)
        MHD_add_response_header(response, extra_headers[i], extra_headers[i + 1]);
}

enum MHD_Result ms_http_send_text(ms_http_request *request, unsigned status,
                                  const char *content_type, char *text,
                                  const char *const *extra_headers)
{
    if (text == NULL)
        return MHD_NO;
    struct MHD_Response *response =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (response == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    add_headers(response, extra_headers);
    return ms_http_send(request, status, response);
}

enum MHD_Result ms_http_send_json(ms_http_request *request, unsigned status, char *text,
                                  const char *const *extra_headers)
{
    return ms_http_send_text(request, status, "application/json", text, extra_headers);
}

enum MHD_Result ms_http_send_error(ms_http_request *request, const ms_error *err,
                                   const char *const *extra_headers)
{
    json_t *body = ms_api_error_body(err);
    char *text = ms_api_json_dumps(body, 0);
    json_decref(body);
    return ms_http_send_json(request, (unsigned)ms_api_http_status(err->code), text,
                             extra_headers);
}

static bool method_has_body(const char *method)
{
    return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "PATCH") == 0;
}

/* The declared Content-Length, 0 when none or not a number. */
static unsigned long long declared_length(const ms_http_request *request)
{
    const char *length = ms_http_header(request, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length == NULL)
        return 0;
    char *end = NULL;
    unsigned long long value = strtoull(length, &end, 10);
    return end != length ? value : 0;
}

/* A declared body over the limit is refused before a byte of it is read. */
static bool declared_too_large(const ms_http_request *request)
{
    return declared_length(request) > request->body_limit;
}

static enum MHD_Result refuse_too_large(ms_http_request *request)
{
    ms_error err;
    ms_error_set(&err, MS_ERR_BODY_TOO_LARGE, NULL, "request body is larger than %zu bytes",
                 request->body_limit);
    ms_error_detail_add(&err, "limit", "%zu", request->body_limit);
    return ms_http_send_error(request, &err, NULL);   /* closes, as every answer */
}

/* Room for size more bytes and a NUL: the declared length at once (a
 * pass-through body of tens of MB is not copied on every doubling), else
 * doubling. */
static bool reserve_body(ms_http_request *request, size_t size)
{
    size_t needed = request->body_size + size + 1;
    if (needed <= request->body_capacity)
        return true;
    size_t capacity = request->body_capacity > 0 ? 2 * request->body_capacity : 1024;
    unsigned long long declared = declared_length(request);
    if (declared + 1 > capacity && declared <= request->body_limit)
        capacity = (size_t)declared + 1;
    if (capacity < needed)
        capacity = needed;
    char *body = realloc(request->body, capacity);
    if (body == NULL)
        return false;
    request->body = body;
    request->body_capacity = capacity;
    return true;
}

static void collect_body(ms_http_request *request, const char *data, size_t size)
{
    if (request->body_too_large)
        return;   /* the rest is read and dropped */
    if (request->body_size + size > request->body_limit || !reserve_body(request, size)) {
        request->body_too_large = true;
        free(request->body);
        request->body = NULL;
        request->body_size = 0;
        request->body_capacity = 0;
        return;
    }
    memcpy(request->body + request->body_size, data, size);
    request->body_size += size;
    request->body[request->body_size] = '\0';
}

/* Once per libmicrohttpd thread: --http-nice (default 0: at +5, p99 of 5000
 * polls/s during a resize went past 5 ms on 2 cores) and a short slice. */
static void set_http_thread_priority(int nice)
{
    static _Thread_local bool done;
    if (done)
        return;
    done = true;
    if (nice > 0)
        ms_thread_set_nice(nice);
    ms_thread_request_short_slice();
}

static enum MHD_Result queue_ready_response(ms_http_request *request)
{
    struct MHD_Response *response = request->ready_response;
    request->ready_response = NULL;
    if (response == NULL || request->worker_result != MHD_YES) {
        if (response != NULL)
            MHD_destroy_response(response);
        return MHD_NO;   /* the handler gave up (out of memory): drop the connection */
    }
    enum MHD_Result result = MHD_queue_response(request->connection, request->ready_status,
                                                response);
    MHD_destroy_response(response);
    return result;
}

/* At the first callback, with the headers in and the body not yet read. */
static enum MHD_Result check_head(ms_http_request *request)
{
    enum MHD_Result result = MHD_YES;
    if (ms_http_refuse_bad_head(request, &result))
        return result;
    if (!ms_routes_authorized(request))
        return ms_routes_refuse_unauthorized(request);
    request->body_limit = ms_routes_body_limit(request);
    if (method_has_body(request->method) && declared_too_large(request))
        return refuse_too_large(request);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **request_slot)
{
    (void)version;
    ms_http_request *request = *request_slot;
    if (request == NULL || !request->started) {
        set_http_thread_priority(((ms_service *)cls)->options->http_nice);
        if (request == NULL)
            request = calloc(1, sizeof *request);   /* no URI callback (out of memory there) */
        if (request == NULL)
            return MHD_NO;
        request->started = true;
        request->service = cls;
        request->connection = connection;
        size_t method_length = strnlen(method, sizeof request->method - 1);
        memcpy(request->method, method, method_length);   /* calloc'ed: terminated */
        request->path = strdup(url);
        request->started_ms = ms_clock_monotonic_ms();
        *request_slot = request;
        if (request->path == NULL)
            return MHD_NO;
        enum MHD_Result result = check_head(request);
        if (request->responded)   /* the rest of the request is not read */
            ms_connection_guard_request_received(&request->service->connection_guard,
                                                 connection);
        return result;
    }
    if (request->deferred_handler != NULL || request->held) {
        /* resumed after the worker ran the handler, or with a pass-through's answer */
        request->deferred_handler = NULL;
        request->held = false;
        return queue_ready_response(request);
    }
    if (request->responded) {
        *upload_data_size = 0;   /* answered already (413): the rest is dropped */
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        collect_body(request, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    /* the whole request is in: its deadline (--request-timeout) stops */
    ms_connection_guard_request_received(&request->service->connection_guard, connection);
    if (request->body_too_large)
        return refuse_too_large(request);
    return ms_routes_handle(request);
}

/* The access log line, "http METHOD PATH STATUS 1.234ms[ job=ID][ (dropped)]",
 * built by hand: printf was a tenth of an HTTP thread's time under polling.
 * Paths are client text (already percent-decoded): no control bytes and no
 * endless lines in the log. */
typedef struct line_builder {
    char text[400];
    size_t used;
} line_builder;

static void line_append(line_builder *line, const char *text, size_t length)
{
    size_t room = sizeof line->text - line->used;
    if (length > room)
        length = room;
    memcpy(line->text + line->used, text, length);
    line->used += length;
}

static void line_puts(line_builder *line, const char *text)
{
    line_append(line, text, strlen(text));
}

static void line_put_uint(line_builder *line, unsigned long value, int min_digits)
{
    char digits[MS_UINT_DIGITS_MAX];
    line_append(line, digits, ms_format_uint(digits, value, min_digits));
}

static void line_put_printable(line_builder *line, const char *path)
{
    enum { PATH_MAX_SHOWN = 250 };
    size_t shown = 0;
    for (; path != NULL && *path != '\0' && shown < PATH_MAX_SHOWN; path++, shown++) {
        char byte = (*path >= 0x20 && *path < 0x7f) ? *path : '?';
        line_append(line, &byte, 1);
    }
    if (path != NULL && *path != '\0')
        line_puts(line, "...");
}

static void log_request(const ms_http_request *request, enum MHD_RequestTerminationCode code)
{
    double elapsed_ms = ms_clock_monotonic_ms() - request->started_ms;
    unsigned long elapsed_us = elapsed_ms > 0 ? (unsigned long)(elapsed_ms * 1000.0) : 0;
    line_builder line = {.used = 0};
    line_puts(&line, "http ");
    line_put_printable(&line, request->method);
    line_puts(&line, " ");
    line_put_printable(&line, request->path);
    line_puts(&line, " ");
    line_put_uint(&line, request->status, 1);
    line_puts(&line, " ");
    line_put_uint(&line, elapsed_us / 1000, 1);
    line_puts(&line, ".");
    line_put_uint(&line, elapsed_us % 1000, 3);
    line_puts(&line, "ms");
    if (request->job_id[0] != '\0') {
        line_puts(&line, " job=");
        line_puts(&line, request->job_id);
    }
    if (code != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        line_puts(&line, " (dropped)");
    ms_log_buffered(line.text, line.used);
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **request_slot,
                         enum MHD_RequestTerminationCode code)
{
    ms_service *service = cls;
    ms_http_request *request = *request_slot;
    if (request == NULL)
        return;
    *request_slot = NULL;
    if (!request->started) {
        /* refused by libmicrohttpd before the access handler (431) */
        free(request->raw_uri);
        free(request);
        return;
    }
    if (request->status != 0) {
        ms_metrics_count_request(&service->metrics, request->status);
        if (code == MHD_REQUEST_TERMINATED_COMPLETED_OK && request->file_bytes > 0)
            ms_metrics_add_bytes(&service->metrics, request->file_bytes);
    }
    if (service->options->access_log)
        log_request(request, code);
    /* after the log line: what it triggers is logged after it */
    if (request->on_completed != NULL)
        request->on_completed(request);
    if (request->ready_response != NULL)
        MHD_destroy_response(request->ready_response);
    if (request->worker != NULL)
        ms_http_worker_answered(request->worker);
    ms_connection_guard_request_ended(&service->connection_guard, connection);
    free(request->path);
    free(request->raw_uri);
    free(request->body);
    free(request);
}

/* Called once per request with the URI as sent, before the headers are
 * read: the request is made here, and keeps that URI when it may be passed
 * through (libmicrohttpd hands the access handler the path decoded, the
 * query split). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *connection)
{
    (void)cls, (void)connection;
    ms_http_request *request = calloc(1, sizeof *request);
    if (request != NULL && ms_routes_may_pass_through(uri))
        request->raw_uri = strdup(uri);
    return request;
}

static void on_mhd_log(void *cls, const char *format, va_list args)
{
    (void)cls;
    char message[512];
    vsnprintf(message, sizeof message, format, args);
    size_t length = strlen(message);
    while (length > 0 && message[length - 1] == '\n')
        message[--length] = '\0';
    ms_log("http server: %s", message);
}

struct MHD_Daemon *ms_http_start(ms_service *service, bool ipv6)
{
    /* ITC: MHD_add_connection from the gate's thread wakes the HTTP threads */
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_NO_LISTEN_SOCKET;
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
        flags |= MHD_USE_EPOLL;
    else
        flags |= MHD_USE_POLL;
    if (ipv6)
        flags |= MHD_USE_IPv6;
    const ms_serve_options *options = service->options;
    int http_threads = ms_serve_http_threads(options);
    struct MHD_OptionItem items[] = {
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, MS_HTTP_CONNECTION_MEMORY, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, options->connection_timeout, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, options->connection_limit, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, options->connections_per_address, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, service},
        {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, service},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)ms_connection_guard_notify,
         &service->connection_guard},
        /* last, so that one thread means no pool at all (MHD warns otherwise) */
        {http_threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
         (intptr_t)http_threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    return MHD_start_daemon(flags, 0, NULL, NULL, on_request, service,
                            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                            MHD_OPTION_ARRAY, items,
                            MHD_OPTION_END);
}
