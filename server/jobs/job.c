#include "job.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "api/json_text.h"
#include "server/clock.h"
#include "server/text.h"

static const char *const kind_names[MS_JOB_KIND_COUNT] = {"resize", "merge"};
static const char *const state_names[MS_JOB_STATE_COUNT] = {
    "queued", "running", "succeeded", "failed", "cancelled"};

const char *ms_job_kind_name(ms_job_kind kind)
{
    return (unsigned)kind < MS_JOB_KIND_COUNT ? kind_names[kind] : "unknown";
}

const char *ms_job_state_name(ms_job_state state)
{
    return (unsigned)state < MS_JOB_STATE_COUNT ? state_names[state] : "unknown";
}

bool ms_job_kind_from_name(const char *name, ms_job_kind *kind)
{
    for (int i = 0; i < MS_JOB_KIND_COUNT; i++)
        if (strcmp(name, kind_names[i]) == 0) {
            *kind = (ms_job_kind)i;
            return true;
        }
    return false;
}

bool ms_job_state_from_name(const char *name, ms_job_state *state)
{
    for (int i = 0; i < MS_JOB_STATE_COUNT; i++)
        if (strcmp(name, state_names[i]) == 0) {
            *state = (ms_job_state)i;
            return true;
        }
    return false;
}

bool ms_job_state_is_final(ms_job_state state)
{
    return state == MS_JOB_SUCCEEDED || state == MS_JOB_FAILED || state == MS_JOB_CANCELLED;
}

bool ms_job_id_valid(const char *id)
{
    size_t i = 0;
    for (; id[i] != '\0'; i++) {
        char c = id[i];
        if (i >= MS_JOB_ID_LENGTH || !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return i == MS_JOB_ID_LENGTH;
}

ms_job *ms_job_new(ms_job_kind kind)
{
    unsigned char random_bytes[MS_JOB_ID_LENGTH / 2];
    if (getrandom(random_bytes, sizeof random_bytes, 0) != (ssize_t)sizeof random_bytes)
        return NULL;
    ms_job *job = calloc(1, sizeof *job);
    if (job == NULL)
        return NULL;
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof random_bytes; i++) {
        job->id[2 * i] = hex[random_bytes[i] >> 4];
        job->id[2 * i + 1] = hex[random_bytes[i] & 15];
    }
    job->kind = kind;
    job->state = MS_JOB_QUEUED;
    atomic_init(&job->cancel, 0);
    return job;
}

static char *copy_text(const char *text)
{
    return text != NULL ? strdup(text) : NULL;
}

ms_job *ms_job_copy(const ms_job *job)
{
    ms_job *copy = malloc(sizeof *copy);
    if (copy == NULL)
        return NULL;
    memcpy(copy, job, sizeof *copy);
    atomic_init(&copy->cancel, atomic_load(&job->cancel));
    copy->hash_next = NULL;
    copy->request_text = copy_text(job->request_text);
    copy->params_text = copy_text(job->params_text);
    copy->output_name = copy_text(job->output_name);
    copy->idempotency_key = copy_text(job->idempotency_key);
    copy->current_key_text = copy_text(job->current_key_text);
    copy->error_text = copy_text(job->error_text);
    copy->report = ms_shared_text_retain(job->report);
    return copy;
}

void ms_job_free(ms_job *job)
{
    if (job == NULL)
        return;
    free(job->request_text);
    free(job->params_text);
    free(job->output_name);
    free(job->idempotency_key);
    free(job->current_key_text);
    free(job->error_text);
    ms_shared_text_release(job->report);
    free(job);
}

char *ms_job_json_text(json_t *value)
{
    char *text = NULL;
    if (value != NULL && !json_is_null(value))
        text = ms_api_json_dumps(value, JSON_ENCODE_ANY);
    json_decref(value);
    return text;
}

static void write_name(ms_text *out, const char *name)
{
    ms_text_puts(out, ",\"");
    ms_text_puts(out, name);
    ms_text_puts(out, "\":");
}

static void write_time(ms_text *out, const char *name, int64_t epoch_ms)
{
    write_name(out, name);
    if (epoch_ms == 0) {
        ms_text_puts(out, "null");
        return;
    }
    char text[MS_CLOCK_TEXT_SIZE];
    ms_clock_format(epoch_ms, text);
    ms_text_puts(out, "\"");
    ms_text_puts(out, text);
    ms_text_puts(out, "\"");
}

static void write_raw(ms_text *out, const char *name, const char *json_text)
{
    write_name(out, name);
    ms_text_puts(out, json_text != NULL ? json_text : "null");
}

static double job_fraction(const ms_job *job)
{
    if (job->state == MS_JOB_SUCCEEDED)
        return 1.0;
    if (job->progress_total == 0)
        return 0.0;
    return (double)job->progress_done / (double)job->progress_total;
}

/* Polled thousands of times a second while a job runs: no printf here. */
static void write_progress(ms_text *out, const ms_job *job, int64_t now_ms)
{
    double fraction = job_fraction(job);
    ms_text_puts(out, ",\"progress\":{\"fraction\":");
    ms_text_put_fixed(out, fraction, 6);
    ms_text_puts(out, ",\"done\":");
    ms_text_put_uint(out, (unsigned long long)job->progress_done);
    ms_text_puts(out, ",\"total\":");
    ms_text_put_uint(out, (unsigned long long)job->progress_total);
    ms_text_puts(out, ",\"current_key\":");
    ms_text_puts(out, job->current_key_text != NULL ? job->current_key_text : "null");
    ms_text_puts(out, ",\"eta_seconds\":");
    if (job->state == MS_JOB_SUCCEEDED) {
        ms_text_puts(out, "0}");
    } else if (job->state == MS_JOB_RUNNING && fraction > 0 && job->started_ms > 0) {
        double elapsed = (double)(now_ms - job->started_ms) / 1000.0;
        double eta = elapsed > 0 ? elapsed * (1.0 - fraction) / fraction : 0.0;
        ms_text_put_fixed(out, eta, 3);
        ms_text_puts(out, "}");
    } else {
        ms_text_puts(out, "null}");
    }
}

static void write_result(ms_text *out, const ms_job *job)
{
    if (!job->has_result) {
        ms_text_puts(out, ",\"result\":null");
        return;
    }
    /* output names are validated ([A-Za-z0-9._-]): nothing to escape */
    ms_text_printf(out, ",\"result\":{\"url\":\"/v1/jobs/%s/result\",\"bytes\":%llu,"
                   "\"sha256\":\"%s\",\"file\":\"%s\"}",
                   job->id, (unsigned long long)job->result_bytes, job->result_sha256,
                   job->output_name != NULL ? job->output_name : "");
}

void ms_job_write_json(ms_text *out, const ms_job *job, int64_t now_ms)
{
    ms_text_puts(out, "{\"id\":\"");
    ms_text_puts(out, job->id);
    ms_text_puts(out, "\",\"kind\":\"");
    ms_text_puts(out, ms_job_kind_name(job->kind));
    ms_text_puts(out, "\",\"state\":\"");
    ms_text_puts(out, ms_job_state_name(job->state));
    ms_text_puts(out, "\"");
    write_progress(out, job, now_ms);
    write_raw(out, "params", job->params_text);
    write_time(out, "created_at", job->created_ms);
    write_time(out, "started_at", job->started_ms);
    write_time(out, "finished_at", job->finished_ms);
    write_raw(out, "error", job->error_text);
    write_result(out, job);
    ms_text_puts(out, job->result_expired ? ",\"result_expired\":true"
                                          : ",\"result_expired\":false");
    ms_text_puts(out, ",\"report\":");
    if (job->report != NULL)
        ms_text_append(out, job->report->data, job->report->length);
    else
        ms_text_puts(out, "null");
    ms_text_puts(out, "}");
}

char *ms_job_to_json_text(const ms_job *job, int64_t now_ms)
{
    ms_text out;
    ms_text_init(&out, 1024 + (job->report != NULL ? job->report->length : 0));
    ms_job_write_json(&out, job, now_ms);
    return ms_text_take(&out);
}
