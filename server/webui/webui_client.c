#include "webui_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/printable.h"
#include "server/text.h"

/* The small API calls answer a few KB (the checkpoint list: one entry per
 * model); an answer past this is not one of them. */
enum { CALL_ANSWER_LIMIT = 16 * 1024 * 1024 };

bool ms_webui_open(const ms_serve_options *options, ms_webui **webui, char *message,
                   size_t message_size)
{
    *webui = NULL;
    if (options->webui_url == NULL)
        return true;
    char *folder = realpath(options->webui_checkpoints, NULL);
    struct stat info;
    const char *reason = NULL;
    if (folder == NULL || stat(folder, &info) != 0)
        reason = strerror(errno);
    else if (!S_ISDIR(info.st_mode))
        reason = "not a folder";
    else if (access(folder, W_OK) != 0)
        reason = strerror(errno);
    if (reason != NULL) {
        snprintf(message, message_size, "--webui-checkpoints %s must be a folder the service "
                 "can write: %s", options->webui_checkpoints, reason);
        free(folder);
        return false;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(message, message_size, "libcurl cannot start");
        free(folder);
        return false;
    }
    ms_webui *created = calloc(1, sizeof *created);
    if (created == NULL || (created->base_url = strdup(options->webui_url)) == NULL) {
        free(created);
        free(folder);
        curl_global_cleanup();
        snprintf(message, message_size, "out of memory");
        return false;
    }
    created->checkpoints_dir = folder;
    created->keep = options->webui_keep;
    created->timeout_seconds = options->webui_timeout;
    *webui = created;
    return true;
}

void ms_webui_close(ms_webui *webui)
{
    if (webui == NULL)
        return;
    free(webui->base_url);
    free(webui->checkpoints_dir);
    free(webui);
    curl_global_cleanup();
}

char *ms_webui_url(const ms_webui *webui, const char *path)
{
    char *url = NULL;
    if (asprintf(&url, "%s%s", webui->base_url, path) < 0)
        return NULL;
    return url;
}

static bool limit_protocols(CURL *easy)
{
#if LIBCURL_VERSION_NUM >= 0x075500
    return curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
#else
    return curl_easy_setopt(easy, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) ==
           CURLE_OK;
#endif
}

bool ms_webui_setup_transfer(const ms_webui *webui, CURL *easy, const char *url)
{
    return curl_easy_setopt(easy, CURLOPT_URL, url) == CURLE_OK &&
           curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
           limit_protocols(easy) &&
           curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
           curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, (long)MS_WEBUI_CONNECT_SECONDS) ==
               CURLE_OK &&
           curl_easy_setopt(easy, CURLOPT_TIMEOUT, webui->timeout_seconds) == CURLE_OK;
}

ms_status ms_webui_transfer_error(const ms_webui *webui, ms_error *err, const char *what,
                                  const char *url, CURLcode code, const char *detail)
{
    if (code == CURLE_ABORTED_BY_CALLBACK)
        return ms_error_set(err, MS_ERR_CANCELLED, NULL, "%s: stopped (the job was cancelled)",
                            what);
    const char *reason = detail != NULL && detail[0] != '\0' ? detail : curl_easy_strerror(code);
    char shown[MS_PRINTABLE_SIZE(200)];
    ms_printable_copy(reason, 200, shown, sizeof shown);
    ms_error_set(err, MS_ERR_WEBUI_UNREACHABLE, NULL, "%s: the web UI at %s %s: %s", what, url,
                 code == CURLE_OPERATION_TIMEDOUT ? "did not answer in time" : "cannot be reached",
                 shown);
    ms_error_detail_add(err, "url", "%s", url);
    ms_error_detail_add(err, "reason", "%s", shown);
    if (code == CURLE_OPERATION_TIMEDOUT)
        ms_error_detail_add(err, "timeout_seconds", "%ld", webui->timeout_seconds);
    return MS_ERR_WEBUI_UNREACHABLE;
}

ms_status ms_webui_status_error(ms_error *err, const char *what, const char *url, long status,
                                const char *body, size_t body_size)
{
    char start[MS_PRINTABLE_SIZE(MS_WEBUI_BODY_START)];
    ms_printable_copy(body != NULL ? body : "", body_size < MS_WEBUI_BODY_START ? body_size
                                                                              : MS_WEBUI_BODY_START,
                      start, sizeof start);
    ms_error_set(err, MS_ERR_WEBUI_ERROR, NULL, "%s: the web UI answered %ld: %.200s", what,
                 status, start);
    ms_error_detail_add(err, "url", "%s", url);
    ms_error_detail_add(err, "status", "%ld", status);
    ms_error_detail_add(err, "body_start", "%s", start);
    return MS_ERR_WEBUI_ERROR;
}

/* ---- one blocking call ---- */

typedef struct call_state {
    ms_text body;
    bool too_large;
    const atomic_int *cancel;
} call_state;

static size_t on_body(char *data, size_t size, size_t count, void *user_data)
{
    call_state *state = user_data;
    size_t bytes = size * count;
    if (state->body.length + bytes > CALL_ANSWER_LIMIT) {
        state->too_large = true;
        return 0;   /* stops the transfer (CURLE_WRITE_ERROR) */
    }
    ms_text_append(&state->body, data, bytes);
    return state->body.failed ? 0 : bytes;
}

static int on_progress(void *user_data, curl_off_t download_total, curl_off_t downloaded,
                       curl_off_t upload_total, curl_off_t uploaded)
{
    (void)download_total, (void)downloaded, (void)upload_total, (void)uploaded;
    const call_state *state = user_data;
    return state->cancel != NULL && atomic_load(state->cancel) != 0;
}

static bool setup_call(const ms_webui *webui, CURL *easy, const char *url, const char *method,
                       const char *json_body, struct curl_slist *headers, call_state *state,
                       char *error_buffer)
{
    bool ok = ms_webui_setup_transfer(webui, easy, url) &&
              curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error_buffer) == CURLE_OK &&
              curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
              curl_easy_setopt(easy, CURLOPT_WRITEDATA, state) == CURLE_OK &&
              curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, on_progress) == CURLE_OK &&
              curl_easy_setopt(easy, CURLOPT_XFERINFODATA, state) == CURLE_OK &&
              curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L) == CURLE_OK &&
              curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers) == CURLE_OK;
    if (ok && json_body != NULL)
        ok = curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                              (curl_off_t)strlen(json_body)) == CURLE_OK &&
             curl_easy_setopt(easy, CURLOPT_POSTFIELDS, json_body) == CURLE_OK;
    if (ok && strcmp(method, "POST") == 0 && json_body == NULL)
        ok = curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0) == CURLE_OK &&
             curl_easy_setopt(easy, CURLOPT_POSTFIELDS, "") == CURLE_OK;
    if (ok && strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        ok = curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK;
    return ok;
}

ms_status ms_webui_call(const ms_webui *webui, const char *what, const char *method,
                        const char *path, const char *json_body, const atomic_int *cancel,
                        ms_webui_answer *answer, ms_error *err)
{
    memset(answer, 0, sizeof *answer);
    call_state state = {.too_large = false, .cancel = cancel};
    ms_text_init(&state.body, 0);
    char error_buffer[CURL_ERROR_SIZE] = "";
    char *url = ms_webui_url(webui, path);
    CURL *easy = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, "Accept: application/json");
    struct curl_slist *with_type =
        headers != NULL ? curl_slist_append(headers, "Content-Type: application/json") : NULL;
    ms_status status = MS_OK;
    if (url == NULL || easy == NULL || with_type == NULL) {
        status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
        goto done;
    }
    headers = with_type;
    if (!setup_call(webui, easy, url, method, json_body, headers, &state, error_buffer)) {
        status = ms_error_set(err, MS_ERR_INTERNAL, NULL, "%s: libcurl refused an option", what);
        goto done;
    }
    CURLcode code = curl_easy_perform(easy);
    if (state.body.failed) {
        status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
        goto done;
    }
    if (state.too_large) {
        status = ms_error_set(err, MS_ERR_WEBUI_ERROR, NULL,
                              "%s: the web UI's answer is larger than %d bytes", what,
                              CALL_ANSWER_LIMIT);
        ms_error_detail_add(err, "url", "%s", url);
        goto done;
    }
    if (code != CURLE_OK) {
        status = ms_webui_transfer_error(webui, err, what, url, code, error_buffer);
        goto done;
    }
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &answer->status);
    answer->body_size = state.body.length;
    answer->body = ms_text_take(&state.body);
    if (answer->status < 200 || answer->status > 299)
        status = ms_webui_status_error(err, what, url, answer->status, answer->body,
                                       answer->body_size);
done:
    free(ms_text_take(&state.body));
    curl_slist_free_all(headers);
    if (easy != NULL)
        curl_easy_cleanup(easy);
    free(url);
    return status;
}

void ms_webui_answer_free(ms_webui_answer *answer)
{
    free(answer->body);
    memset(answer, 0, sizeof *answer);
}
