/* Running jobs on libuv's worker pool.
 *
 * Queued job ids wait in a FIFO; the loop thread starts at most --workers of
 * them at once (uv_queue_work) and gets their completions back on the loop
 * thread.  Shutdown: stop accepting, give running jobs and downloads in
 * flight --grace-seconds, then cancel the jobs back to queued, stop the
 * loop (which cuts the downloads still going). */
#ifndef MS_JOB_QUEUE_H
#define MS_JOB_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "job.h"

struct ms_service;

typedef struct ms_job_queue {
    uv_loop_t loop;
    uv_async_t wakeup;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_timer_t grace_timer;
    uv_timer_t log_flush_timer;          /* writes the buffered access log */
    pthread_mutex_t mutex;               /* guards the FIFO below */
    char (*pending)[MS_JOB_ID_LENGTH + 1];
    size_t pending_head, pending_count, pending_capacity;
    int running;                         /* loop thread only */
    bool stopping;                       /* loop thread only */
    bool grace_over;                     /* loop thread only: downloads are no longer waited for */
    bool closed;
    struct ms_service *service;
} ms_job_queue;

int ms_job_queue_init(ms_job_queue *queue, struct ms_service *service);

/* Any thread: appends the id and wakes the loop. */
int ms_job_queue_push(ms_job_queue *queue, const char *job_id);

/* Any thread: during shutdown, a download ended; the loop looks whether
 * anything is left to wait for. */
void ms_job_queue_download_ended(ms_job_queue *queue);

/* Runs the loop until shutdown has finished. */
void ms_job_queue_run(ms_job_queue *queue);

void ms_job_queue_destroy(ms_job_queue *queue);

#endif
