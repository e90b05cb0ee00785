/* Requests under /sdapi/ and /bbwm/ (but /bbwm/merge-models, ours) passed
 * to the web UI as they came, and its answers relayed: the optimisation
 * extension talks to one base URL, and its txt2img calls (and whatever
 * else it sends) must reach the web UI through us.
 *
 * Forwarded: the method, the path and query as sent, the body, and every
 * header but the hop-by-hop ones (Connection and those it names,
 * Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade), Host,
 * Content-Length, Expect, and Authorization when the service has a token
 * of its own (that token is ours, not the web UI's; the token is checked
 * as for every request).  Relayed: the status, the body and the headers
 * but the hop-by-hop ones, Content-Length, Date and Server.  An error
 * answer from the web UI is relayed as it is (its own error body); only
 * what the service itself cannot do is a service error:
 * 502 webui_unreachable (no connection, no answer within --webui-timeout),
 * 502 webui_error (an answer past MS_PASSTHROUGH_MAX_BODY), 413 for a
 * request body past it, 503 shutting_down.
 *
 * No HTTP thread waits: the connection is suspended, and one thread runs
 * every transfer in a curl multi loop (a slow txt2img does not hold up the
 * web UI's progress polls, nor /v1 or /healthz), then resumes the
 * connection with the answer.  Bodies are handed over, not copied: the
 * request's buffer is what libcurl sends, the buffer libcurl fills is what
 * libmicrohttpd sends. */
#ifndef MS_PASSTHROUGH_H
#define MS_PASSTHROUGH_H

#include <microhttpd.h>

#include "server/http/http.h"
#include "webui_client.h"

/* Either way (batches of base64 images are tens of MB). */
#define MS_PASSTHROUGH_MAX_BODY ((size_t)512 * 1024 * 1024)

typedef struct ms_passthrough ms_passthrough;

/* Starts the transfer thread.  token: the service's own (NULL: none), so
 * that Authorization is forwarded only when it cannot be ours.  NULL when
 * out of memory or no thread. */
ms_passthrough *ms_passthrough_start(const ms_webui *webui, const char *token);

/* Before the HTTP server stops: every transfer still running or waiting is
 * answered 503 shutting_down (libmicrohttpd must not stop with suspended
 * connections), the thread joined, then up to wait_ms for those answers to
 * go out; later requests are answered 503 at once. */
void ms_passthrough_stop(ms_passthrough *passthrough, int wait_ms);

/* After the HTTP server stopped (its threads may look at it until then). */
void ms_passthrough_free(ms_passthrough *passthrough);

/* On an HTTP thread, once the request's body is in (routes.c). */
enum MHD_Result ms_passthrough_handle(ms_passthrough *passthrough, ms_http_request *request);

#endif
