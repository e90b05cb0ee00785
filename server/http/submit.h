/* What every POST that creates a job shares (submit.c): the body's media
 * type, Idempotency-Key, the replay of an earlier job, the queue limit and
 * the durable insert.  Each kind validates its own body first
 * (submit.c: resize, submit_merge.c: merge). */
#ifndef MS_SUBMIT_H
#define MS_SUBMIT_H

#include <jansson.h>
#include <stdbool.h>

#include "core/error.h"
#include "http.h"
#include "server/jobs/job.h"

typedef struct ms_submit_headers {
    const char *idempotency_key;   /* NULL when none was sent (or it is ignored) */
    char body_sha256[65];
} ms_submit_headers;

/* Content-Type must be JSON; Idempotency-Key, when honoured, 1 to 200
 * printable ASCII characters. */
ms_status ms_submit_check_headers(ms_http_request *request, bool honour_idempotency_key,
                                  ms_submit_headers *headers, ms_error *err);

/* The body as JSON (any value: the parsers say what they expect);
 * invalid_json with line and column. */
ms_status ms_submit_parse_body(const ms_http_request *request, json_t **body, ms_error *err);

/* Under the submit mutex: an earlier job with this key answers (202 and
 * the job, or 409 for another body); *handled tells whether it did. */
enum MHD_Result ms_submit_replay_or_conflict(ms_http_request *request,
                                             const ms_submit_headers *headers, bool *handled);

/* A job of kind from what was validated; takes the three texts (freed on
 * failure too; 500 out_of_memory when the job cannot be made).  Under the
 * submit mutex: the replay looked for again, the queue limit (429), the
 * durable insert, the table.  Then, by default, the job is queued and 202
 * answered.  With hold set, nothing is answered and the job is not queued
 * yet: request->after_deferred is set to ms_job_waiters_hold, which does
 * both once the worker has let go of the request (job_waiters.h). */
enum MHD_Result ms_submit_job(ms_http_request *request, ms_job_kind kind, char *request_text,
                              char *params_text, char *output_name,
                              const ms_submit_headers *headers, bool hold);

enum MHD_Result ms_submit_send_code(ms_http_request *request, ms_status code,
                                    const char *message);

#endif
