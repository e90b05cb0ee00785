#include "job_waiters.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api/api.h"
#include "server/http/http.h"
#include "server/log.h"
#include "server/service.h"

int ms_job_waiters_init(ms_job_waiters *waiters)
{
    memset(waiters, 0, sizeof *waiters);
    if (pthread_mutex_init(&waiters->mutex, NULL) != 0)
        return -1;
    waiters->ready = true;
    return 0;
}

void ms_job_waiters_destroy(ms_job_waiters *waiters)
{
    if (!waiters->ready)
        return;
    while (waiters->first != NULL) {
        ms_job_waiter *waiter = waiters->first;
        waiters->first = waiter->next;
        free(waiter);
    }
    pthread_mutex_destroy(&waiters->mutex);
    waiters->ready = false;
}

static ms_status status_named(const char *name)
{
    for (int code = MS_OK + 1; name != NULL && code < MS_STATUS_COUNT; code++)
        if (strcmp(ms_status_name((ms_status)code), name) == 0)
            return (ms_status)code;
    return MS_ERR_INTERNAL;
}

static char *error_answer(ms_status code, const char *message, unsigned *status)
{
    ms_error err;
    ms_error_set(&err, code, NULL, "%s", message);
    *status = (unsigned)ms_api_http_status(code);
    json_t *body = ms_api_error_body(&err);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return text;
}

char *ms_job_waiters_answer(ms_job_state state, const char *error_text, unsigned *status)
{
    if (state == MS_JOB_SUCCEEDED) {
        *status = 200;
        return strdup("null");   /* what the web UI's own endpoint answers */
    }
    json_t *error = error_text != NULL ? json_loads(error_text, 0, NULL) : NULL;
    if (!json_is_object(error)) {
        json_decref(error);
        return error_answer(MS_ERR_INTERNAL, "the job ended without an error record", status);
    }
    *status = (unsigned)ms_api_http_status(
        status_named(json_string_value(json_object_get(error, "code"))));
    json_t *body = json_pack("{so}", "error", error);
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return text;
}

static void answer(ms_http_request *request, unsigned status, char *text)
{
    if (text == NULL) {
        /* out of memory: a bare 500 still ends the wait */
        text = strdup("{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\"}}");
        status = 500;
    }
    ms_http_answer_held(request, status, text);
}

static void answer_shutting_down(ms_http_request *request)
{
    unsigned status = 503;
    char *text = error_answer(MS_ERR_SHUTTING_DOWN,
                              "the service is shutting down; the merge stays queued and runs "
                              "after the restart (GET /v1/jobs/{id})", &status);
    answer(request, status, text);
}

void ms_job_waiters_hold(ms_http_request *request)
{
    ms_service *service = request->service;
    ms_job_waiters *waiters = &service->waiters;
    /* the request is not ours once answered: its job id is kept here */
    char job_id[MS_JOB_ID_LENGTH + 1];
    memcpy(job_id, request->job_id, sizeof job_id);
    ms_job_waiter *waiter = calloc(1, sizeof *waiter);
    bool closed = !waiters->ready;
    if (!closed) {
        pthread_mutex_lock(&waiters->mutex);
        closed = waiters->closed;
        if (!closed && waiter != NULL) {
            memcpy(waiter->job_id, job_id, sizeof waiter->job_id);
            waiter->request = request;
            waiter->next = waiters->first;
            waiters->first = waiter;
        }
        pthread_mutex_unlock(&waiters->mutex);
    }
    if (closed) {
        /* the loop is stopping: the job runs after the restart */
        free(waiter);
        answer_shutting_down(request);
        return;
    }
    if (waiter == NULL) {
        /* the job is recorded and runs; only its answer cannot wait */
        unsigned status = 500;
        answer(request, status, error_answer(MS_ERR_OUT_OF_MEMORY, "out of memory", &status));
    }
    /* held before queued: the job cannot end before someone waits for it */
    ms_job_queue_push(&service->queue, job_id);
}

/* Unlinks the held requests for job_id (all of them when job_id is NULL). */
static ms_job_waiter *take(ms_job_waiters *waiters, const char *job_id, bool close)
{
    ms_job_waiter *taken = NULL;
    pthread_mutex_lock(&waiters->mutex);
    ms_job_waiter **link = &waiters->first;
    while (*link != NULL) {
        ms_job_waiter *waiter = *link;
        if (job_id == NULL || strcmp(waiter->job_id, job_id) == 0) {
            *link = waiter->next;
            waiter->next = taken;
            taken = waiter;
        } else {
            link = &waiter->next;
        }
    }
    if (close)
        waiters->closed = true;
    pthread_mutex_unlock(&waiters->mutex);
    return taken;
}

void ms_job_waiters_job_ended(ms_service *service, const char *job_id, ms_job_state state,
                              const char *error_text)
{
    ms_job_waiters *waiters = &service->waiters;
    if (!waiters->ready || !ms_job_state_is_final(state))
        return;
    ms_job_waiter *taken = take(waiters, job_id, false);
    while (taken != NULL) {
        ms_job_waiter *waiter = taken;
        taken = waiter->next;
        unsigned status = 500;
        char *text = ms_job_waiters_answer(state, error_text, &status);
        answer(waiter->request, status, text);
        free(waiter);
    }
}

void ms_job_waiters_release_all(ms_service *service)
{
    ms_job_waiters *waiters = &service->waiters;
    if (!waiters->ready)
        return;
    ms_job_waiter *taken = take(waiters, NULL, true);
    size_t count = 0;
    while (taken != NULL) {
        ms_job_waiter *waiter = taken;
        taken = waiter->next;
        answer_shutting_down(waiter->request);
        free(waiter);
        count++;
    }
    if (count > 0)
        ms_log("shutdown: answered %zu waiting merge request(s) 503; their jobs stay queued",
               count);
}
