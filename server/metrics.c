#include "metrics.h"

#include "core/merge/rotate_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upper bounds in seconds; +Inf is implied after the last. */
static const double duration_bounds[MS_METRICS_DURATION_BUCKETS] = {
    0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600};

void ms_metrics_init(ms_metrics *metrics)
{
    memset(metrics, 0, sizeof *metrics);
    for (int i = 0; i < MS_METRICS_STATUS_MAX; i++)
        atomic_init(&metrics->requests_by_status[i], 0);
    atomic_init(&metrics->bytes_served, 0);
    atomic_init(&metrics->results_expired, 0);
    pthread_mutex_init(&metrics->mutex, NULL);
}

void ms_metrics_destroy(ms_metrics *metrics)
{
    pthread_mutex_destroy(&metrics->mutex);
}

void ms_metrics_count_request(ms_metrics *metrics, unsigned status)
{
    if (status < MS_METRICS_STATUS_MAX)
        atomic_fetch_add_explicit(&metrics->requests_by_status[status], 1, memory_order_relaxed);
}

void ms_metrics_add_bytes(ms_metrics *metrics, uint64_t bytes)
{
    atomic_fetch_add_explicit(&metrics->bytes_served, bytes, memory_order_relaxed);
}

void ms_metrics_count_result_expired(ms_metrics *metrics)
{
    atomic_fetch_add_explicit(&metrics->results_expired, 1, memory_order_relaxed);
}

void ms_metrics_set_results_source(ms_metrics *metrics, uint64_t (*kept_bytes)(void *context),
                                   void *context)
{
    metrics->results_kept_bytes = kept_bytes;
    metrics->results_context = context;
}

void ms_metrics_observe_duration(ms_metrics *metrics, ms_job_kind kind, double seconds)
{
    if ((unsigned)kind >= MS_JOB_KIND_COUNT)
        return;
    if (seconds < 0)
        seconds = 0;
    pthread_mutex_lock(&metrics->mutex);
    for (int i = 0; i < MS_METRICS_DURATION_BUCKETS; i++)
        if (seconds <= duration_bounds[i])
            metrics->duration_buckets[kind][i]++;
    metrics->duration_count[kind]++;
    metrics->duration_sum[kind] += seconds;
    pthread_mutex_unlock(&metrics->mutex);
}

static void render_jobs(FILE *out, size_t state_counts[MS_JOB_KIND_COUNT][MS_JOB_STATE_COUNT])
{
    fputs("# HELP mergesvd_jobs Jobs known to the service, by kind and state.\n"
          "# TYPE mergesvd_jobs gauge\n", out);
    for (int kind = 0; kind < MS_JOB_KIND_COUNT; kind++)
        for (int state = 0; state < MS_JOB_STATE_COUNT; state++)
            fprintf(out, "mergesvd_jobs{kind=\"%s\",state=\"%s\"} %zu\n",
                    ms_job_kind_name((ms_job_kind)kind), ms_job_state_name((ms_job_state)state),
                    state_counts[kind][state]);
}

static void render_durations(FILE *out, ms_metrics *metrics)
{
    fputs("# HELP mergesvd_job_duration_seconds Time from start to end of jobs that ran.\n"
          "# TYPE mergesvd_job_duration_seconds histogram\n", out);
    pthread_mutex_lock(&metrics->mutex);
    for (int kind = 0; kind < MS_JOB_KIND_COUNT; kind++) {
        const char *name = ms_job_kind_name((ms_job_kind)kind);
        for (int i = 0; i < MS_METRICS_DURATION_BUCKETS; i++)
            fprintf(out, "mergesvd_job_duration_seconds_bucket{kind=\"%s\",le=\"%g\"} %llu\n",
                    name, duration_bounds[i],
                    (unsigned long long)metrics->duration_buckets[kind][i]);
        fprintf(out, "mergesvd_job_duration_seconds_bucket{kind=\"%s\",le=\"+Inf\"} %llu\n",
                name, (unsigned long long)metrics->duration_count[kind]);
        fprintf(out, "mergesvd_job_duration_seconds_sum{kind=\"%s\"} %.6f\n", name,
                metrics->duration_sum[kind]);
        fprintf(out, "mergesvd_job_duration_seconds_count{kind=\"%s\"} %llu\n", name,
                (unsigned long long)metrics->duration_count[kind]);
    }
    pthread_mutex_unlock(&metrics->mutex);
}

void ms_metrics_set_rotate_cache(ms_metrics *metrics, struct ms_rotate_cache *cache)
{
    metrics->rotate_cache = cache;
}

static void render_rotate_cache(FILE *out, ms_rotate_cache *cache)
{
    ms_rotate_cache_stats stats;
    ms_rotate_cache_stats_get(cache, &stats);
    const struct {
        const char *name, *type, *help;
        uint64_t value;
    } series[] = {
        {"hits_total", "counter", "Rotate keys whose decomposition came from the cache.",
         stats.hits},
        {"misses_total", "counter", "Rotate keys whose decomposition was computed.",
         stats.misses},
        {"bytes", "gauge", "Bytes the rotate cache holds.", stats.bytes},
        {"capacity_bytes", "gauge", "The rotate cache's limit (--cache-bytes).",
         stats.capacity_bytes},
        {"entries", "gauge", "Decompositions the rotate cache holds.", stats.entries},
        {"evictions_total", "counter", "Entries removed to stay within the limit.",
         stats.evictions},
        {"corrupt_dropped_total", "counter", "Damaged cache files found and deleted.",
         stats.corrupt_dropped},
    };
    for (size_t i = 0; i < sizeof series / sizeof series[0]; i++)
        fprintf(out, "# HELP mergesvd_rotate_cache_%s %s\n# TYPE mergesvd_rotate_cache_%s %s\n"
                     "mergesvd_rotate_cache_%s %llu\n",
                series[i].name, series[i].help, series[i].name, series[i].type,
                series[i].name, (unsigned long long)series[i].value);
}

char *ms_metrics_render(ms_metrics *metrics,
                        size_t state_counts[MS_JOB_KIND_COUNT][MS_JOB_STATE_COUNT],
                        size_t queue_depth)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    if (out == NULL)
        return NULL;
    render_jobs(out, state_counts);
    render_durations(out, metrics);
    fprintf(out, "# HELP mergesvd_queue_depth Jobs waiting to run.\n"
                 "# TYPE mergesvd_queue_depth gauge\nmergesvd_queue_depth %zu\n", queue_depth);
    fputs("# HELP mergesvd_http_requests_total HTTP requests answered, by status.\n"
          "# TYPE mergesvd_http_requests_total counter\n", out);
    for (int status = 0; status < MS_METRICS_STATUS_MAX; status++) {
        uint64_t count = atomic_load_explicit(&metrics->requests_by_status[status],
                                              memory_order_relaxed);
        if (count > 0)
            fprintf(out, "mergesvd_http_requests_total{status=\"%d\"} %llu\n", status,
                    (unsigned long long)count);
    }
    fprintf(out, "# HELP mergesvd_bytes_served_total Result file bytes sent to clients.\n"
                 "# TYPE mergesvd_bytes_served_total counter\nmergesvd_bytes_served_total %llu\n",
            (unsigned long long)atomic_load(&metrics->bytes_served));
    if (metrics->results_kept_bytes != NULL)
        fprintf(out, "# HELP mergesvd_results_kept_bytes Bytes of the result files kept.\n"
                     "# TYPE mergesvd_results_kept_bytes gauge\nmergesvd_results_kept_bytes %llu\n",
                (unsigned long long)metrics->results_kept_bytes(metrics->results_context));
    fprintf(out, "# HELP mergesvd_results_expired_total Result files deleted by the retention "
                 "limits.\n# TYPE mergesvd_results_expired_total counter\n"
                 "mergesvd_results_expired_total %llu\n",
            (unsigned long long)atomic_load(&metrics->results_expired));
    if (metrics->rotate_cache != NULL)
        render_rotate_cache(out, metrics->rotate_cache);
    if (fclose(out) != 0) {
        free(text);
        return NULL;
    }
    return text;
}
