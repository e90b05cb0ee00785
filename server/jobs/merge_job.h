/* A merge job's request, shared by its submit (submit_merge.c) and its run
 * (merge_runner.c): the body parsed, the models and the destination found
 * on disk.  Both check the same things, the run again because the tree may
 * have changed since the job was queued.
 *
 * A job keeps the body it was sent.  A /bbwm body is kept wrapped as
 * {"bbwm": BODY}: the strict /v1 parser refuses a field named "bbwm", so
 * the two cannot be confused when the job runs. */
#ifndef MS_MERGE_JOB_H
#define MS_MERGE_JOB_H

#include <jansson.h>
#include <stdbool.h>

#include "api/merge_request.h"
#include "core/error.h"

struct ms_service;

typedef struct ms_merge_job {
    bool from_bbwm;                 /* the web UI extension's body */
    bool have_request;
    ms_api_merge_request request;
    char *model_paths[3];           /* canonical paths inside the roots; [2] NULL without C */
    char *destination;              /* /bbwm with a destination: the file to write (its
                                       folder canonical); NULL: DATA/results/<id>/ */
} ms_merge_job;

/* Parses body (/v1 strict, /bbwm lenient). */
ms_status ms_merge_job_parse(const json_t *body, bool from_bbwm, ms_merge_job *job,
                             ms_error *err);

/* Parses a job's stored request text. */
ms_status ms_merge_job_parse_stored(const char *request_text, ms_merge_job *job, ms_error *err);

/* The text to store for body (compact; wrapped for /bbwm).  NULL when out
 * of memory. */
char *ms_merge_job_stored_text(const json_t *body, bool from_bbwm);

/* Finds the models (/v1: paths under a root; /bbwm: the web UI's names,
 * model_match.h), checks that each is a safetensors file and the block
 * weights fit model A's architecture, and finds the destination. */
ms_status ms_merge_job_resolve(const struct ms_service *service, ms_merge_job *job,
                               ms_error *err);

/* Checks that the destination's folder can be written now (a read-only
 * models root: invalid_parameter, not a failed write later). */
ms_status ms_merge_job_check_writable(const ms_merge_job *job, ms_error *err);

/* The output's file name: /v1 output_name or the default
 * "<A>_<B>_<method>.safetensors"; /bbwm: the destination's name.
 * Malloced (NULL when out of memory). */
char *ms_merge_job_output_name(const ms_merge_job *job);

/* JSON text of the job's "params" (floats in their shortest form), with
 * output_name as used. */
char *ms_merge_job_params_text(ms_merge_job *job, const char *output_name);

void ms_merge_job_free(ms_merge_job *job);

#endif
