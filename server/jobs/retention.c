#include "retention.h"

#include <stdlib.h>
#include <string.h>

#include "server/clock.h"
#include "job_table.h"
#include "server/log.h"
#include "server/paths.h"
#include "server/service.h"

/* The age limit's pass: a quarter of the limit (a result lives at most 25 %
 * past it), and at least once a minute for long limits. */
enum { MAX_TIMER_INTERVAL_MS = 60 * 1000 };

/* ---------------------------------------------------------------- choice */

typedef struct order_entry {
    int64_t finished_ms;
    int64_t sequence;
    size_t index;
} order_entry;

static int compare_age(const void *a, const void *b)
{
    const order_entry *left = a, *right = b;
    if (left->finished_ms != right->finished_ms)
        return left->finished_ms < right->finished_ms ? -1 : 1;
    if (left->sequence != right->sequence)
        return left->sequence < right->sequence ? -1 : 1;
    return 0;
}

static uint64_t add_saturated(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

ms_status ms_retention_choose(const ms_retention_limits *limits, int64_t now_ms,
                              const ms_retention_candidate *candidates, size_t count,
                              ms_retention_verdict *verdicts, ms_error *err)
{
    order_entry *order = malloc((count > 0 ? count : 1) * sizeof *order);
    if (order == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory choosing results "
                            "to expire");
    size_t finished = 0;
    uint64_t kept_bytes = 0;
    for (size_t i = 0; i < count; i++) {
        verdicts[i] = MS_RETENTION_KEEP;
        if (candidates[i].running)
            continue;
        order[finished++] = (order_entry){candidates[i].finished_ms, candidates[i].sequence, i};
        kept_bytes = add_saturated(kept_bytes, candidates[i].bytes);
    }
    qsort(order, finished, sizeof *order, compare_age);
    /* Oldest first: once one is young enough and the bytes fit, so are all
     * the later ones (younger still, and the bytes only went down). */
    for (size_t k = 0; k < finished; k++) {
        const ms_retention_candidate *candidate = &candidates[order[k].index];
        bool over_bytes = limits->max_bytes > 0 && kept_bytes > limits->max_bytes;
        bool too_old = limits->max_age_ms > 0 &&
                       now_ms - candidate->finished_ms > limits->max_age_ms;
        if (!over_bytes && !too_old)
            break;
        if (candidate->downloading) {
            verdicts[order[k].index] = MS_RETENTION_DEFER;
            continue;
        }
        verdicts[order[k].index] = MS_RETENTION_EVICT;
        kept_bytes -= candidate->bytes;
    }
    free(order);
    return MS_OK;
}

/* ---------------------------------------------------------------- the pass */

static bool has_kept_result(const ms_job *job)
{
    return job->state == MS_JOB_SUCCEEDED && job->has_result && !job->result_expired;
}

uint64_t ms_retention_kept_bytes(ms_job_table *table)
{
    uint64_t bytes = 0;
    ms_job_table_lock(table);
    for (size_t i = 0; i < table->count; i++)
        if (has_kept_result(table->ordered[i]))
            bytes = add_saturated(bytes, table->ordered[i]->result_bytes);
    ms_job_table_unlock(table);
    return bytes;
}

static bool limits_set(const ms_retention_limits *limits)
{
    return limits->max_bytes > 0 || limits->max_age_ms > 0;
}

/* Called with the table locked.  The jobs with files in results/: running
 * ones and kept results (one being expired already is not offered twice). */
static size_t gather(ms_job_table *table, ms_job **jobs, ms_retention_candidate *candidates)
{
    size_t count = 0;
    for (size_t i = 0; i < table->count; i++) {
        ms_job *job = table->ordered[i];
        bool running = job->state == MS_JOB_RUNNING;
        if (!running && (!has_kept_result(job) || job->result_evicting))
            continue;
        jobs[count] = job;
        candidates[count] = (ms_retention_candidate){
            .finished_ms = job->finished_ms,
            .sequence = job->sequence,
            .bytes = running ? 0 : job->result_bytes,
            .running = running,
            .downloading = job->downloads_in_flight > 0,
        };
        count++;
    }
    return count;
}

/* Called with the table locked: copies of the jobs to expire, marked
 * evicting (downloads refused from now on), and the deferred ones noted for
 * their last download's end.  Returns how many copies. */
static size_t mark_victims(ms_job **jobs, const ms_retention_verdict *verdicts, size_t count,
                           ms_job **victims)
{
    size_t victim_count = 0;
    for (size_t i = 0; i < count; i++) {
        if (verdicts[i] == MS_RETENTION_DEFER)
            jobs[i]->eviction_deferred = true;
        if (verdicts[i] != MS_RETENTION_EVICT)
            continue;
        ms_job *copy = ms_job_copy(jobs[i]);
        if (copy == NULL)
            continue;   /* out of memory: kept, tried again at the next pass */
        copy->result_expired = true;
        copy->result_evicting = false;
        jobs[i]->result_evicting = true;
        victims[victim_count++] = copy;
    }
    return victim_count;
}

/* The record first: a flag the store did not take (disk full) would come
 * back after a restart as a result without its file.  The job may have
 * been DELETEd meanwhile (looked up again by id; its record stays
 * deleted). */
static void expire(ms_service *service, ms_job *snapshot)
{
    ms_error err;
    bool committed = ms_job_store_update(service->store, snapshot, &err) == MS_OK;
    ms_job_table_lock(&service->table);
    ms_job *job = ms_job_table_find(&service->table, snapshot->id);
    if (job != NULL) {
        job->result_evicting = false;
        if (committed) {
            job->result_expired = true;
            job->eviction_deferred = false;
        }
    }
    ms_job_table_unlock(&service->table);
    if (!committed) {
        ms_log("job %s: recording its result as expired failed, the file stays: %s",
               snapshot->id, err.message);
        return;
    }
    char *result_dir = ms_service_result_dir(service, snapshot->id);
    if (result_dir != NULL)
        ms_paths_remove_dir(result_dir, service->reaper);
    free(result_dir);
    ms_metrics_count_result_expired(&service->metrics);
    ms_log("job %s %s result expired (%llu bytes)", snapshot->id,
           ms_job_kind_name(snapshot->kind), (unsigned long long)snapshot->result_bytes);
}

void ms_retention_run(ms_retention *retention)
{
    if (retention->service == NULL || !limits_set(&retention->limits))
        return;
    ms_service *service = retention->service;
    ms_job_table *table = &service->table;
    ms_job **jobs = NULL, **victims = NULL;
    ms_retention_candidate *candidates = NULL;
    ms_retention_verdict *verdicts = NULL;
    size_t victim_count = 0;
    ms_error err;
    int64_t now = ms_clock_now_ms();

    ms_job_table_lock(table);
    size_t capacity = table->count > 0 ? table->count : 1;
    jobs = calloc(capacity, sizeof *jobs);
    victims = calloc(capacity, sizeof *victims);
    candidates = calloc(capacity, sizeof *candidates);
    verdicts = calloc(capacity, sizeof *verdicts);
    if (jobs == NULL || victims == NULL || candidates == NULL || verdicts == NULL) {
        ms_job_table_unlock(table);
        ms_log("retention: out of memory; results are looked at again later");
        goto done;
    }
    size_t count = gather(table, jobs, candidates);
    if (ms_retention_choose(&retention->limits, now, candidates, count, verdicts, &err) != MS_OK) {
        ms_job_table_unlock(table);
        ms_log("retention: %s", err.message);
        goto done;
    }
    victim_count = mark_victims(jobs, verdicts, count, victims);
    ms_job_table_unlock(table);

    for (size_t i = 0; i < victim_count; i++) {
        expire(service, victims[i]);
        ms_job_free(victims[i]);
    }
done:
    free(jobs);
    free(victims);
    free(candidates);
    free(verdicts);
}

/* ---------------------------------------------------------------- handles */

static void on_timer(uv_timer_t *timer)
{
    ms_retention_run(timer->data);
}

static void on_wakeup(uv_async_t *handle)
{
    ms_retention_run(handle->data);
}

static uint64_t timer_interval_ms(int64_t max_age_ms)
{
    int64_t interval = max_age_ms / 4;
    if (interval > MAX_TIMER_INTERVAL_MS)
        interval = MAX_TIMER_INTERVAL_MS;
    return interval > 0 ? (uint64_t)interval : 1;
}

int ms_retention_start(ms_retention *retention, ms_service *service, uv_loop_t *loop)
{
    memset(retention, 0, sizeof *retention);
    retention->service = service;
    retention->limits.max_bytes = service->options->keep_results_bytes;
    retention->limits.max_age_ms = service->options->keep_results_seconds * 1000;
    if (!limits_set(&retention->limits))
        return 0;
    if (uv_timer_init(loop, &retention->timer) != 0)
        return -1;
    if (uv_async_init(loop, &retention->wakeup, on_wakeup) != 0) {
        uv_close((uv_handle_t *)&retention->timer, NULL);
        uv_run(loop, UV_RUN_NOWAIT);
        return -1;
    }
    retention->started = true;
    retention->timer.data = retention;
    retention->wakeup.data = retention;
    /* the job queue's shutdown ends the loop by closing its own handles */
    uv_unref((uv_handle_t *)&retention->timer);
    uv_unref((uv_handle_t *)&retention->wakeup);
    if (retention->limits.max_age_ms > 0) {
        uint64_t interval = timer_interval_ms(retention->limits.max_age_ms);
        if (uv_timer_start(&retention->timer, on_timer, interval, interval) != 0)
            return -1;
    }
    return 0;
}

void ms_retention_wake(ms_retention *retention)
{
    if (retention->started)
        uv_async_send(&retention->wakeup);
}

void ms_retention_stop(ms_retention *retention, uv_loop_t *loop)
{
    if (!retention->started)
        return;
    retention->started = false;
    uv_close((uv_handle_t *)&retention->timer, NULL);
    uv_close((uv_handle_t *)&retention->wakeup, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
}
