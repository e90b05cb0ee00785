/* Counters for GET /metrics (Prometheus text format 0.0.4).  Request and
 * byte counters are atomics (bumped from HTTP threads); the duration
 * histogram has its own small mutex. */
#ifndef MS_METRICS_H
#define MS_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "server/jobs/job.h"

enum { MS_METRICS_STATUS_MAX = 600, MS_METRICS_DURATION_BUCKETS = 13 };

typedef struct ms_metrics {
    atomic_uint_fast64_t requests_by_status[MS_METRICS_STATUS_MAX];
    atomic_uint_fast64_t bytes_served;
    pthread_mutex_t mutex;
    uint64_t duration_buckets[MS_JOB_KIND_COUNT][MS_METRICS_DURATION_BUCKETS];
    uint64_t duration_count[MS_JOB_KIND_COUNT];
    double duration_sum[MS_JOB_KIND_COUNT];
    atomic_uint_fast64_t results_expired;   /* result files deleted by the retention limits */
    /* Bytes of the result files kept, summed when rendered (NULL: not shown):
     * DELETEs, finished jobs and expiries all change it. */
    uint64_t (*results_kept_bytes)(void *context);
    void *results_context;
    struct ms_rotate_cache *rotate_cache;   /* its counters, when set */
} ms_metrics;

void ms_metrics_init(ms_metrics *metrics);
void ms_metrics_destroy(ms_metrics *metrics);

void ms_metrics_count_request(ms_metrics *metrics, unsigned status);
void ms_metrics_add_bytes(ms_metrics *metrics, uint64_t bytes);
void ms_metrics_count_result_expired(ms_metrics *metrics);
void ms_metrics_set_results_source(ms_metrics *metrics, uint64_t (*kept_bytes)(void *context),
                                   void *context);
/* The rotate decomposition cache whose hits, misses and bytes are shown
 * (NULL: none).  Set before serving and cleared before the cache closes. */
void ms_metrics_set_rotate_cache(ms_metrics *metrics, struct ms_rotate_cache *cache);
/* A job that ran (succeeded, failed or cancelled) took seconds. */
void ms_metrics_observe_duration(ms_metrics *metrics, ms_job_kind kind, double seconds);

/* The whole exposition as malloced text. */
char *ms_metrics_render(ms_metrics *metrics,
                        size_t state_counts[MS_JOB_KIND_COUNT][MS_JOB_STATE_COUNT],
                        size_t queue_depth);

#endif
