/* A job: what a client asked for, where it stands, what came out.
 *
 * Fields that change while a job exists (state, progress, error, result,
 * report) are guarded by the job table's mutex; the JSON pieces are kept as
 * ready-made text so GET /v1/jobs/{id} only copies bytes under the lock.  A
 * finished job's report (hundreds of KB for an SDXL resize) stays in memory
 * only until the store has it. */
#ifndef MS_JOB_H
#define MS_JOB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "server/text.h"

typedef enum ms_job_kind {
    MS_JOB_KIND_RESIZE,
    MS_JOB_KIND_MERGE,
    MS_JOB_KIND_COUNT
} ms_job_kind;

typedef enum ms_job_state {
    MS_JOB_QUEUED,
    MS_JOB_RUNNING,
    MS_JOB_SUCCEEDED,
    MS_JOB_FAILED,
    MS_JOB_CANCELLED,
    MS_JOB_STATE_COUNT
} ms_job_state;

enum { MS_JOB_ID_LENGTH = 32 };

typedef struct ms_job {
    char id[MS_JOB_ID_LENGTH + 1];     /* 32 lowercase hex */
    ms_job_kind kind;
    ms_job_state state;
    int64_t sequence;                  /* creation order, never reused */
    char *request_text;                /* the accepted body, re-parsed when the job runs */
    char *params_text;                 /* JSON of "params" */
    char *output_name;                 /* file name in DATA/results/<id>/ */
    char *idempotency_key;             /* NULL when the client sent none */
    char body_sha256[65];
    int64_t created_ms, started_ms, finished_ms;   /* epoch ms; 0 = unset */
    uint64_t progress_done, progress_total;
    char *current_key_text;            /* JSON string text, NULL = null */
    char *error_text;                  /* JSON error object, NULL = null */
    ms_shared_text *report;            /* JSON report, NULL = null; never changes once set */
    bool report_in_store;              /* the report is in the job store only (see
                                          ms_service_attach_report): memory does not
                                          grow with every finished job */
    bool has_result;
    uint64_t result_bytes;
    char result_sha256[65];
    bool result_expired;               /* the retention limits deleted the file; the record
                                          (url, bytes, sha256) stays, downloads get 410 */
    bool result_evicting;              /* being expired (store, then file): downloads get
                                          410 from now on */
    bool eviction_deferred;            /* retention wanted it gone during a download: it
                                          tries again when the last download ends */
    int downloads_in_flight;           /* result requests holding (or about to open) the
                                          file: retention never deletes under them */
    atomic_int cancel;                 /* polled by the core between modules */
    bool cancel_requested;             /* DELETE while running */
    bool shutdown_cancel;              /* stopped by shutdown: goes back to queued */
    struct ms_job *hash_next;          /* job table bucket chain */
} ms_job;

const char *ms_job_kind_name(ms_job_kind kind);
const char *ms_job_state_name(ms_job_state state);
bool ms_job_kind_from_name(const char *name, ms_job_kind *kind);
bool ms_job_state_from_name(const char *name, ms_job_state *state);
bool ms_job_state_is_final(ms_job_state state);

/* 32 lowercase hex characters, nothing else. */
bool ms_job_id_valid(const char *id);

/* Zeroed job with a fresh random id; NULL when out of memory. */
ms_job *ms_job_new(ms_job_kind kind);

/* Copy (without the table links) for the store or a response, made under
 * the table lock and used after it: strings are duplicated, the report is
 * shared. */
ms_job *ms_job_copy(const ms_job *job);

void ms_job_free(ms_job *job);

/* Compact JSON text of value (NULL or json null give NULL).  Steals value. */
char *ms_job_json_text(json_t *value);

/* The job object of the contract as JSON text (malloced); the caller holds
 * the table lock.  now_ms feeds eta_seconds. */
char *ms_job_to_json_text(const ms_job *job, int64_t now_ms);

/* Appends the same text to a builder. */
void ms_job_write_json(ms_text *out, const ms_job *job, int64_t now_ms);

#endif
