/* libmicrohttpd glue: per-request context, body collection, responses,
 * one log line and the metrics per request. */
#ifndef MS_HTTP_H
#define MS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "core/error.h"
#include "server/jobs/job.h"

struct ms_service;

enum { MS_HTTP_MAX_BODY = 1024 * 1024 };

typedef struct ms_http_request {
    struct ms_service *service;
    struct MHD_Connection *connection;
    char method[16];
    char *path;
    char *raw_uri;                /* path and query as sent, for a pass-through only */
    char *body;
    size_t body_size;
    size_t body_capacity;
    size_t body_limit;            /* MS_HTTP_MAX_BODY, or a pass-through's (routes.h) */
    bool started;                 /* the access handler has seen it */
    /* suspended, its answer coming from another thread (a pass-through):
     * the HTTP thread queues request->ready_response once resumed */
    bool held;
    bool body_too_large;
    bool responded;
    double started_ms;            /* monotonic */
    unsigned status;
    uint64_t file_bytes;          /* bytes of a file response, for bytes_served */
    char job_id[MS_JOB_ID_LENGTH + 1];   /* for the log line, when one is involved */
    /* called once when the request ends, however it ends (a download's count) */
    void (*on_completed)(struct ms_http_request *request);
    /* deferred to the worker (http_worker.h) */
    enum MHD_Result (*deferred_handler)(struct ms_http_request *request);
    struct ms_http_request *next_deferred;
    struct ms_http_worker *worker;       /* deferred there: counted in its unanswered */
    bool in_worker;                      /* responses are kept, not queued */
    bool deferred;                       /* runs as a deferred handler (ms_http_defer) */
    enum MHD_Result worker_result;
    /* set by a deferred handler whose answer comes later (a /bbwm merge):
     * the worker calls it instead of resuming the connection, once it no
     * longer touches the request (job_waiters.h) */
    void (*after_deferred)(struct ms_http_request *request);
    struct MHD_Response *ready_response; /* queued at the next callback */
    unsigned ready_status;
} ms_http_request;

/* Starts libmicrohttpd without a listening socket: the request gate
 * (request_gate.h) accepts and hands connections over. */
struct MHD_Daemon *ms_http_start(struct ms_service *service, bool ipv6);

/* Names the job in the request's log line (ignored unless a valid id). */
void ms_http_set_job_id(ms_http_request *request, const char *job_id);

/* Request header value or NULL. */
const char *ms_http_header(const ms_http_request *request, const char *name);
const char *ms_http_query(const ms_http_request *request, const char *name);

/* Responses; all take ownership of text and return the MHD result to give
 * back to libmicrohttpd.  extra_headers: NULL-terminated name, value pairs. */
enum MHD_Result ms_http_send_text(ms_http_request *request, unsigned status,
                                  const char *content_type, char *text,
                                  const char *const *extra_headers);
enum MHD_Result ms_http_send_json(ms_http_request *request, unsigned status, char *text,
                                  const char *const *extra_headers);
enum MHD_Result ms_http_send_error(ms_http_request *request, const ms_error *err,
                                   const char *const *extra_headers);
/* From any thread, for a request held suspended past its deferred handler
 * (http_worker.h): keeps the answer for the HTTP thread and resumes the
 * connection.  Takes text. */
void ms_http_answer_held(ms_http_request *request, unsigned status, char *text);
/* The same with a prepared response (owned from here on; NULL drops the
 * connection), for a request suspended with request->held set. */
void ms_http_answer_held_response(ms_http_request *request, unsigned status,
                                  struct MHD_Response *response);

/* Queues a prepared response (destroyed here). */
enum MHD_Result ms_http_send(ms_http_request *request, unsigned status,
                             struct MHD_Response *response);

#endif
