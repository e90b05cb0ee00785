#include "passthrough.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/api.h"
#include "api/json_text.h"
#include "server/log.h"
#include "server/service.h"

/* A body being received from the web UI, grown to its declared length at
 * once when it has one. */
typedef struct answer_buffer {
    char *data;
    size_t length;
    size_t capacity;
} answer_buffer;

typedef struct transfer {
    ms_http_request *request;
    CURL *easy;
    char *url;
    char what[112];                    /* "METHOD PATH" for messages */
    char *body;                        /* the request's, handed over */
    size_t body_size;
    struct curl_slist *request_headers;
    struct curl_slist *answer_headers; /* "Name: value" lines to relay */
    char *connection_tokens;           /* the web UI's Connection header: more hop-by-hop names */
    answer_buffer answer;
    bool too_large;
    bool out_of_memory;
    char error_buffer[CURL_ERROR_SIZE];
    struct transfer *next;
} transfer;

struct ms_passthrough {
    const ms_webui *webui;
    bool forward_authorization;
    CURLM *multi;
    pthread_mutex_t mutex;
    transfer *waiting;    /* handed over by HTTP threads, under mutex */
    bool stopping;        /* under mutex */
    bool joined;
    pthread_t thread;
    transfer *running;    /* in the multi handle: the transfer thread's own */
    atomic_int unanswered;   /* held requests whose answer has not gone out */
};

/* ---- headers ---- */

static bool name_is(const char *name, size_t length, const char *wanted)
{
    return strlen(wanted) == length && strncasecmp(name, wanted, length) == 0;
}

/* Whether name is one of the comma-separated tokens (a Connection value). */
static bool listed_in(const char *name, size_t length, const char *tokens)
{
    while (tokens != NULL && *tokens != '\0') {
        tokens += strspn(tokens, " \t,");
        size_t token_length = strcspn(tokens, " \t,");
        if (token_length == length && strncasecmp(tokens, name, length) == 0)
            return true;
        tokens += token_length;
    }
    return false;
}

/* Headers of one connection, not of the message (RFC 9110, 7.6.1). */
static bool is_hop_by_hop(const char *name, size_t length, const char *connection_tokens)
{
    static const char *const names[] = {"connection", "keep-alive", "proxy-authenticate",
                                        "proxy-authorization", "proxy-connection", "te",
                                        "trailer", "transfer-encoding", "upgrade"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (name_is(name, length, names[i]))
            return true;
    return listed_in(name, length, connection_tokens);
}

typedef struct header_walk {
    transfer *transfer;
    const char *connection_tokens;
    bool forward_authorization;
    bool has_content_type;
} header_walk;

static enum MHD_Result forward_header(void *cls, enum MHD_ValueKind kind, const char *name,
                                      const char *value)
{
    (void)kind;
    header_walk *walk = cls;
    size_t length = strlen(name);
    if (value == NULL || is_hop_by_hop(name, length, walk->connection_tokens) ||
        name_is(name, length, "host") || name_is(name, length, "content-length") ||
        name_is(name, length, "expect") ||
        (!walk->forward_authorization && name_is(name, length, "authorization")))
        return MHD_YES;
    if (name_is(name, length, "content-type"))
        walk->has_content_type = true;
    char *line = NULL;
    /* "Name;" is libcurl's way to send a header with an empty value */
    int made = value[0] != '\0' ? asprintf(&line, "%s: %s", name, value)
                                : asprintf(&line, "%s;", name);
    struct curl_slist *list = made >= 0 ? curl_slist_append(walk->transfer->request_headers, line)
                                        : NULL;
    free(made >= 0 ? line : NULL);
    if (list == NULL)
        walk->transfer->out_of_memory = true;
    else
        walk->transfer->request_headers = list;
    return MHD_YES;
}

static void add_request_header(transfer *job, const char *line)
{
    struct curl_slist *list = curl_slist_append(job->request_headers, line);
    if (list == NULL)
        job->out_of_memory = true;
    else
        job->request_headers = list;
}

static void collect_request_headers(ms_passthrough *passthrough, transfer *job,
                                    ms_http_request *request)
{
    header_walk walk = {job, ms_http_header(request, MHD_HTTP_HEADER_CONNECTION),
                        passthrough->forward_authorization, false};
    MHD_get_connection_values(request->connection, MHD_HEADER_KIND, forward_header, &walk);
    /* libcurl would add "Expect: 100-continue" to a large body (a round
     * trip), and a form Content-Type to a body sent without one */
    add_request_header(job, "Expect:");
    if (!walk.has_content_type)
        add_request_header(job, "Content-Type:");
}

/* A header line of the web UI's answer: kept unless it is the
 * connection's or one libmicrohttpd writes itself. */
static size_t on_answer_header(char *data, size_t size, size_t count, void *user_data)
{
    transfer *job = user_data;
    size_t bytes = size * count;
    size_t length = bytes;
    while (length > 0 && (data[length - 1] == '\n' || data[length - 1] == '\r'))
        length--;
    if (length >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* a new answer (after a 1xx): its headers only */
        curl_slist_free_all(job->answer_headers);
        job->answer_headers = NULL;
        free(job->connection_tokens);
        job->connection_tokens = NULL;
        return bytes;
    }
    const char *colon = memchr(data, ':', length);
    if (colon == NULL || colon == data)
        return bytes;   /* the blank line, or a malformed one */
    size_t name_length = (size_t)(colon - data);
    char *line = strndup(data, length);
    if (line == NULL) {
        job->out_of_memory = true;
        return 0;
    }
    const char *value = line + name_length + 1;
    value += strspn(value, " \t");
    if (name_is(line, name_length, "connection")) {
        free(job->connection_tokens);
        job->connection_tokens = strdup(value);
    } else if (name_is(line, name_length, "content-length")) {
        unsigned long long declared = strtoull(value, NULL, 10);
        if (declared > 0 && declared <= MS_PASSTHROUGH_MAX_BODY &&
            declared > job->answer.capacity) {
            char *data_buffer = realloc(job->answer.data, (size_t)declared);
            if (data_buffer != NULL) {
                job->answer.data = data_buffer;
                job->answer.capacity = (size_t)declared;
            }
        }
    } else if (!name_is(line, name_length, "date") && !name_is(line, name_length, "server") &&
               !is_hop_by_hop(line, name_length, NULL)) {
        struct curl_slist *list = curl_slist_append(job->answer_headers, line);
        if (list == NULL) {
            free(line);
            job->out_of_memory = true;
            return 0;
        }
        job->answer_headers = list;
    }
    free(line);
    return bytes;
}

static size_t on_answer_body(char *data, size_t size, size_t count, void *user_data)
{
    transfer *job = user_data;
    size_t bytes = size * count;
    answer_buffer *answer = &job->answer;
    if (answer->length + bytes > MS_PASSTHROUGH_MAX_BODY) {
        job->too_large = true;
        return 0;   /* stops the transfer */
    }
    if (answer->length + bytes > answer->capacity) {
        size_t capacity = answer->capacity > 0 ? 2 * answer->capacity : 64 * 1024;
        while (capacity < answer->length + bytes)
            capacity *= 2;
        if (capacity > MS_PASSTHROUGH_MAX_BODY)
            capacity = MS_PASSTHROUGH_MAX_BODY;
        char *grown = realloc(answer->data, capacity);
        if (grown == NULL) {
            job->out_of_memory = true;
            return 0;
        }
        answer->data = grown;
        answer->capacity = capacity;
    }
    memcpy(answer->data + answer->length, data, bytes);
    answer->length += bytes;
    return bytes;
}

/* ---- a transfer ---- */

static void transfer_free(transfer *job)
{
    if (job == NULL)
        return;
    if (job->easy != NULL)
        curl_easy_cleanup(job->easy);
    curl_slist_free_all(job->request_headers);
    curl_slist_free_all(job->answer_headers);
    free(job->connection_tokens);
    free(job->answer.data);
    free(job->body);
    free(job->url);
    free(job);
}

static bool set_method(transfer *job, const char *method)
{
    CURL *easy = job->easy;
    if (strcmp(method, "GET") == 0)
        return curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L) == CURLE_OK;
    if (strcmp(method, "HEAD") == 0)
        return curl_easy_setopt(easy, CURLOPT_NOBODY, 1L) == CURLE_OK;
    bool sends_body = job->body_size > 0 || strcmp(method, "POST") == 0 ||
                      strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0;
    bool ok = true;
    if (sends_body)
        ok = curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)job->body_size) ==
                 CURLE_OK &&
             curl_easy_setopt(easy, CURLOPT_POSTFIELDS, job->body != NULL ? job->body : "") ==
                 CURLE_OK;
    if (ok && strcmp(method, "POST") != 0)
        ok = curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK;
    return ok;
}

/* On the HTTP thread: everything libcurl needs, the body taken from the
 * request.  NULL when out of memory. */
static transfer *transfer_new(ms_passthrough *passthrough, ms_http_request *request)
{
    transfer *job = calloc(1, sizeof *job);
    if (job == NULL)
        return NULL;
    job->request = request;
    snprintf(job->what, sizeof job->what, "%s %.80s", request->method, request->path);
    job->url = ms_webui_url(passthrough->webui, request->raw_uri);
    job->easy = curl_easy_init();
    if (job->url == NULL || job->easy == NULL) {
        transfer_free(job);
        return NULL;
    }
    job->body = request->body;
    job->body_size = request->body_size;
    request->body = NULL;
    request->body_size = request->body_capacity = 0;
    collect_request_headers(passthrough, job, request);
    CURL *easy = job->easy;
    bool ok = !job->out_of_memory && ms_webui_setup_transfer(passthrough->webui, easy, job->url) &&
              set_method(job, request->method) &&
              curl_easy_setopt(easy, CURLOPT_HTTPHEADER, job->request_headers) == CURLE_OK &&
              curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, job->error_buffer) == CURLE_OK &&
              curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_answer_header) == CURLE_OK &&
              curl_easy_setopt(easy, CURLOPT_HEADERDATA, job) == CURLE_OK &&
              curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_answer_body) == CURLE_OK &&
              curl_easy_setopt(easy, CURLOPT_WRITEDATA, job) == CURLE_OK &&
              curl_easy_setopt(easy, CURLOPT_PRIVATE, job) == CURLE_OK;
    if (!ok) {
        transfer_free(job);
        return NULL;
    }
    return job;
}

static struct MHD_Response *error_response(const ms_error *err)
{
    json_t *body = ms_api_error_body(err);
    char *text = ms_api_json_dumps(body, 0);
    json_decref(body);
    if (text == NULL)
        return NULL;
    struct MHD_Response *response =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (response == NULL) {
        free(text);
        return NULL;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    return response;
}

/* The web UI's answer as a response; the body is handed over. */
static struct MHD_Response *relayed_response(transfer *job)
{
    struct MHD_Response *response;
    if (job->answer.length > 0) {
        response = MHD_create_response_from_buffer_with_free_callback(job->answer.length,
                                                                      job->answer.data, free);
        if (response != NULL)
            job->answer.data = NULL;
    } else {
        response = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    }
    for (struct curl_slist *line = job->answer_headers; response != NULL && line != NULL;
         line = line->next) {
        char *colon = strchr(line->data, ':');
        size_t name_length = (size_t)(colon - line->data);
        if (job->connection_tokens != NULL &&
            listed_in(line->data, name_length, job->connection_tokens))
            continue;
        *colon = '\0';
        const char *value = colon + 1 + strspn(colon + 1, " \t");
        MHD_add_response_header(response, line->data, value);
        *colon = ':';
    }
    return response;
}

/* On the transfer thread: the answer for the held request, then the
 * connection resumed (the HTTP thread sends it). */
static void finish(ms_passthrough *passthrough, transfer *job, CURLcode code)
{
    ms_error err;
    ms_error_clear(&err);
    unsigned status = 502;
    struct MHD_Response *response = NULL;
    if (job->out_of_memory) {
        ms_error_set(&err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
        status = 500;
    } else if (job->too_large) {
        ms_error_set(&err, MS_ERR_WEBUI_ERROR, NULL,
                     "%s: the web UI's answer is larger than %zu bytes", job->what,
                     MS_PASSTHROUGH_MAX_BODY);
        ms_error_detail_add(&err, "url", "%s", job->url);
        ms_error_detail_add(&err, "limit", "%zu", MS_PASSTHROUGH_MAX_BODY);
    } else if (code != CURLE_OK) {
        ms_webui_transfer_error(passthrough->webui, &err, job->what, job->url, code,
                                job->error_buffer);
    } else {
        long answered = 0;
        curl_easy_getinfo(job->easy, CURLINFO_RESPONSE_CODE, &answered);
        status = (unsigned)answered;
        response = relayed_response(job);
    }
    if (err.code != MS_OK)
        response = error_response(&err);
    if (err.code == MS_ERR_WEBUI_UNREACHABLE)
        ms_log("webui: %s", err.message);
    ms_http_answer_held_response(job->request, status, response);
    transfer_free(job);
}

static void answer_shutting_down(transfer *job)
{
    ms_error err;
    ms_error_set(&err, MS_ERR_SHUTTING_DOWN, NULL,
                 "the service is shutting down; %s was not completed", job->what);
    ms_http_answer_held_response(job->request, 503, error_response(&err));
    transfer_free(job);
}

/* ---- the transfer thread ---- */

static void unlink_running(ms_passthrough *passthrough, transfer *job)
{
    for (transfer **link = &passthrough->running; *link != NULL; link = &(*link)->next) {
        if (*link == job) {
            *link = job->next;
            return;
        }
    }
}

static void take_finished(ms_passthrough *passthrough)
{
    int left = 0;
    CURLMsg *message;
    while ((message = curl_multi_info_read(passthrough->multi, &left)) != NULL) {
        if (message->msg != CURLMSG_DONE)
            continue;
        transfer *job = NULL;
        curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, (char **)&job);
        CURLcode code = message->data.result;
        curl_multi_remove_handle(passthrough->multi, message->easy_handle);
        unlink_running(passthrough, job);
        finish(passthrough, job, code);
    }
}

/* Transfers handed over since the last turn join the multi handle. */
static bool start_waiting(ms_passthrough *passthrough)
{
    pthread_mutex_lock(&passthrough->mutex);
    transfer *waiting = passthrough->waiting;
    passthrough->waiting = NULL;
    bool stopping = passthrough->stopping;
    pthread_mutex_unlock(&passthrough->mutex);
    while (waiting != NULL) {
        transfer *job = waiting;
        waiting = job->next;
        job->next = passthrough->running;
        passthrough->running = job;
        if (!stopping && curl_multi_add_handle(passthrough->multi, job->easy) != CURLM_OK) {
            passthrough->running = job->next;
            finish(passthrough, job, CURLE_FAILED_INIT);
        }
    }
    return !stopping;
}

static void *transfer_thread(void *argument)
{
    ms_passthrough *passthrough = argument;
    while (start_waiting(passthrough)) {
        int running = 0;
        curl_multi_perform(passthrough->multi, &running);
        take_finished(passthrough);
        curl_multi_poll(passthrough->multi, NULL, 0, 1000, NULL);
    }
    while (passthrough->running != NULL) {
        transfer *job = passthrough->running;
        passthrough->running = job->next;
        curl_multi_remove_handle(passthrough->multi, job->easy);
        answer_shutting_down(job);
    }
    return NULL;
}

ms_passthrough *ms_passthrough_start(const ms_webui *webui, const char *token)
{
    ms_passthrough *passthrough = calloc(1, sizeof *passthrough);
    if (passthrough == NULL)
        return NULL;
    passthrough->webui = webui;
    passthrough->forward_authorization = token == NULL;
    atomic_init(&passthrough->unanswered, 0);
    passthrough->multi = curl_multi_init();
    if (passthrough->multi == NULL || pthread_mutex_init(&passthrough->mutex, NULL) != 0) {
        if (passthrough->multi != NULL)
            curl_multi_cleanup(passthrough->multi);
        free(passthrough);
        return NULL;
    }
    if (pthread_create(&passthrough->thread, NULL, transfer_thread, passthrough) != 0) {
        pthread_mutex_destroy(&passthrough->mutex);
        curl_multi_cleanup(passthrough->multi);
        free(passthrough);
        return NULL;
    }
    return passthrough;
}

void ms_passthrough_stop(ms_passthrough *passthrough, int wait_ms)
{
    if (passthrough == NULL || passthrough->joined)
        return;
    pthread_mutex_lock(&passthrough->mutex);
    passthrough->stopping = true;
    pthread_mutex_unlock(&passthrough->mutex);
    curl_multi_wakeup(passthrough->multi);
    pthread_join(passthrough->thread, NULL);
    passthrough->joined = true;
    /* the HTTP threads send the 503s; stopping the server first would drop them */
    const struct timespec step = {0, 10 * 1000 * 1000};
    for (int waited = 0; atomic_load(&passthrough->unanswered) > 0 && waited < wait_ms;
         waited += 10)
        nanosleep(&step, NULL);
}

void ms_passthrough_free(ms_passthrough *passthrough)
{
    if (passthrough == NULL)
        return;
    ms_passthrough_stop(passthrough, 0);
    curl_multi_cleanup(passthrough->multi);
    pthread_mutex_destroy(&passthrough->mutex);
    free(passthrough);
}

/* ---- the HTTP side ---- */

static enum MHD_Result refuse(ms_http_request *request, ms_status code, const char *message)
{
    ms_error err;
    ms_error_set(&err, code, NULL, "%s", message);
    return ms_http_send_error(request, &err, NULL);
}

/* The request's end, however it ended (its answer sent or not). */
static void answered(ms_http_request *request)
{
    atomic_fetch_sub(&request->service->passthrough->unanswered, 1);
}

enum MHD_Result ms_passthrough_handle(ms_passthrough *passthrough, ms_http_request *request)
{
    transfer *job = transfer_new(passthrough, request);
    if (job == NULL)
        return refuse(request, MS_ERR_OUT_OF_MEMORY, "out of memory");
    pthread_mutex_lock(&passthrough->mutex);
    if (passthrough->stopping) {
        pthread_mutex_unlock(&passthrough->mutex);
        transfer_free(job);
        return refuse(request, MS_ERR_SHUTTING_DOWN,
                      "the service is shutting down; retry after the restart");
    }
    /* answered from the transfer thread, queued by this connection's next callback */
    request->held = true;
    request->on_completed = answered;
    atomic_fetch_add(&passthrough->unanswered, 1);
    MHD_suspend_connection(request->connection);
    job->next = passthrough->waiting;
    passthrough->waiting = job;
    pthread_mutex_unlock(&passthrough->mutex);
    curl_multi_wakeup(passthrough->multi);
    return MHD_YES;
}
