/* The web UI beside the service (serve --webui URL --webui-checkpoints DIR):
 * AUTOMATIC1111's or Forge's HTTP API, reached with libcurl.
 *
 * Two users: the hand-off of a merge (webui_load.h: blocking calls from
 * the job's own thread) and the pass-through of /sdapi and /bbwm requests
 * (passthrough.h: a curl multi loop on its own thread).  Both set up their
 * transfers here, so that timeouts, protocols and redirects are the same,
 * and both describe failures the same way:
 * - webui_unreachable (502): no connection, or no answer within
 *   --webui-timeout; details.url, details.reason (libcurl's words),
 *   details.timeout_seconds when it timed out;
 * - webui_error (502): the web UI answered with an error status;
 *   details.url, details.status, details.body_start (its first bytes).
 * Requests go to --webui only: redirects are not followed. */
#ifndef MS_WEBUI_CLIENT_H
#define MS_WEBUI_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

#include "core/error.h"
#include "server/serve_options.h"

/* A connection that does not open within this long is not coming. */
enum { MS_WEBUI_CONNECT_SECONDS = 10 };
/* Bytes of an error answer's body quoted in details.body_start. */
enum { MS_WEBUI_BODY_START = 200 };

typedef struct ms_webui {
    char *base_url;           /* --webui, no trailing slash */
    char *checkpoints_dir;    /* --webui-checkpoints, canonical */
    int keep;                 /* --webui-keep */
    long timeout_seconds;     /* --webui-timeout: the whole of one call */
} ms_webui;

/* From the options (NULL webui_url: *webui stays NULL, nothing to do).
 * The folder must exist and be writable.  libcurl's global state is set
 * up here, before any thread uses it.  False with a reason in message. */
bool ms_webui_open(const ms_serve_options *options, ms_webui **webui, char *message,
                   size_t message_size);
void ms_webui_close(ms_webui *webui);

/* base_url + path (path starts with '/'); malloced, NULL when out of memory. */
char *ms_webui_url(const ms_webui *webui, const char *path);

/* What every transfer shares: URL, timeouts, http(s) only, no redirects,
 * no signals (threads).  False when libcurl refuses one. */
bool ms_webui_setup_transfer(const ms_webui *webui, CURL *easy, const char *url);

/* err for a transfer libcurl could not complete (code != CURLE_OK):
 * webui_unreachable (details.timeout_seconds when it timed out), or
 * cancelled when the caller's cancel flag stopped it.  detail is
 * libcurl's error buffer (may be empty). */
ms_status ms_webui_transfer_error(const ms_webui *webui, ms_error *err, const char *what,
                                  const char *url, CURLcode code, const char *detail);

/* err for an answer with an error status: webui_error. */
ms_status ms_webui_status_error(ms_error *err, const char *what, const char *url, long status,
                                const char *body, size_t body_size);

typedef struct ms_webui_answer {
    long status;
    char *body;               /* NUL-terminated; NULL when empty */
    size_t body_size;
} ms_webui_answer;

/* One blocking call (a job's thread): method and path, a JSON body or
 * NULL.  A non-2xx status is webui_error; the answer's body is kept (up to
 * a few MB: these are the small API calls).  cancel (may be NULL) set
 * stops it with cancelled.  what names the step in messages. */
ms_status ms_webui_call(const ms_webui *webui, const char *what, const char *method,
                        const char *path, const char *json_body, const atomic_int *cancel,
                        ms_webui_answer *answer, ms_error *err);
void ms_webui_answer_free(ms_webui_answer *answer);

#endif
