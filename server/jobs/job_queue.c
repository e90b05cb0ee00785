#include "job_queue.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "job_runner.h"
#include "server/http/download.h"
#include "server/log.h"
#include "server/service.h"
#include "server/thread_priority.h"

typedef struct job_work {
    uv_work_t request;
    ms_service *service;
    ms_job *job;
    ms_job_outcome outcome;
} job_work;

static void dispatch(ms_job_queue *queue);
static void finish_shutdown(ms_job_queue *queue);
static void finish_shutdown_when_drained(ms_job_queue *queue);

static bool pop_pending(ms_job_queue *queue, char id[MS_JOB_ID_LENGTH + 1])
{
    pthread_mutex_lock(&queue->mutex);
    bool any = queue->pending_count > 0;
    if (any) {
        memcpy(id, queue->pending[queue->pending_head], MS_JOB_ID_LENGTH + 1);
        queue->pending_head = (queue->pending_head + 1) % queue->pending_capacity;
        queue->pending_count--;
    }
    pthread_mutex_unlock(&queue->mutex);
    return any;
}

int ms_job_queue_push(ms_job_queue *queue, const char *job_id)
{
    pthread_mutex_lock(&queue->mutex);
    if (queue->pending_count == queue->pending_capacity) {
        size_t capacity = queue->pending_capacity == 0 ? 64 : queue->pending_capacity * 2;
        char(*pending)[MS_JOB_ID_LENGTH + 1] = malloc(capacity * sizeof *pending);
        if (pending == NULL) {
            pthread_mutex_unlock(&queue->mutex);
            return -1;
        }
        for (size_t i = 0; i < queue->pending_count; i++)
            memcpy(pending[i], queue->pending[(queue->pending_head + i) % queue->pending_capacity],
                   MS_JOB_ID_LENGTH + 1);
        free(queue->pending);
        queue->pending = pending;
        queue->pending_capacity = capacity;
        queue->pending_head = 0;
    }
    size_t tail = (queue->pending_head + queue->pending_count) % queue->pending_capacity;
    snprintf(queue->pending[tail], MS_JOB_ID_LENGTH + 1, "%s", job_id);
    queue->pending_count++;
    bool closed = queue->closed;
    pthread_mutex_unlock(&queue->mutex);
    if (!closed)
        uv_async_send(&queue->wakeup);
    return 0;
}

/* Linux nice values are per thread and inherited by the threads the core
 * starts for the job (--job-nice).  Default 0: measured on 2 cores, a
 * niced job is starved by a client polling at full speed (3x slower),
 * while at 5000 polls/s nice 5 gained nothing clear (p99 4.1 against
 * 4.6 ms, less than the spread between runs). */
static void work_run(uv_work_t *request)
{
    job_work *work = request->data;
    ms_thread_set_nice(work->service->options->job_nice);
    ms_job_runner_run(work->service, work->job, &work->outcome);
}

static void work_done(uv_work_t *request, int status)
{
    (void)status;   /* jobs are never uv_cancel()ed: cancellation goes through job->cancel */
    job_work *work = request->data;
    ms_job_queue *queue = &work->service->queue;
    ms_job_runner_finish(work->service, work->job, &work->outcome);
    ms_retention_run(&work->service->retention);   /* a new result may pass the limits */
    free(work);
    queue->running--;
    if (queue->stopping)
        finish_shutdown_when_drained(queue);
    else
        dispatch(queue);
}

static void dispatch(ms_job_queue *queue)
{
    ms_service *service = queue->service;
    char id[MS_JOB_ID_LENGTH + 1];
    while (!queue->stopping && queue->running < service->options->workers &&
           pop_pending(queue, id)) {
        /* allocated before the job is marked running, so that running means
         * running */
        job_work *work = calloc(1, sizeof *work);
        if (work == NULL) {
            ms_log("job %s: out of memory starting it; left queued until restart", id);
            break;
        }
        ms_job *job = NULL;
        if (!ms_job_runner_start(service, id, &job)) {
            free(work);
            continue;   /* cancelled or deleted while queued */
        }
        work->service = service;
        work->job = job;
        work->request.data = work;
        uv_queue_work(&queue->loop, &work->request, work_run, work_done);
        queue->running++;
    }
}

/* Shutdown ends when no job runs and no download is in flight, or, for the
 * downloads, when the grace period is over. */
static void finish_shutdown_when_drained(ms_job_queue *queue)
{
    if (queue->closed || queue->running > 0)
        return;
    if (!queue->grace_over && ms_download_count_in_flight(queue->service) > 0)
        return;
    finish_shutdown(queue);
}

static void on_wakeup(uv_async_t *handle)
{
    ms_job_queue *queue = handle->data;
    if (queue->stopping)
        finish_shutdown_when_drained(queue);
    else
        dispatch(queue);
}

void ms_job_queue_download_ended(ms_job_queue *queue)
{
    pthread_mutex_lock(&queue->mutex);
    bool closed = queue->closed;
    pthread_mutex_unlock(&queue->mutex);
    if (!closed)
        uv_async_send(&queue->wakeup);
}

static void close_handle(uv_handle_t *handle)
{
    if (!uv_is_closing(handle))
        uv_close(handle, NULL);
}

/* No job runs any more: stop HTTP, close every handle so uv_run returns. */
static void finish_shutdown(ms_job_queue *queue)
{
    ms_service *service = queue->service;
    /* what the worker holds is answered first (the listening socket is
     * closed already; connections still open are served) */
    ms_service_stop_http_workers(service);
    ms_request_gate_stop(&service->request_gate);
    if (service->daemon != NULL) {
        MHD_stop_daemon(service->daemon);   /* joins the HTTP threads */
        service->daemon = NULL;
        ms_service_close_quiesced_socket(service);
    }
    pthread_mutex_lock(&queue->mutex);
    queue->closed = true;                   /* no uv_async_send after close */
    pthread_mutex_unlock(&queue->mutex);
    close_handle((uv_handle_t *)&queue->wakeup);
    close_handle((uv_handle_t *)&queue->sigterm);
    close_handle((uv_handle_t *)&queue->sigint);
    close_handle((uv_handle_t *)&queue->grace_timer);
    close_handle((uv_handle_t *)&queue->log_flush_timer);
    ms_log("shutdown complete");
}

/* Grace is over: running jobs stop between modules and go back to queued. */
static void cancel_running(ms_job_queue *queue)
{
    ms_job_table *table = &queue->service->table;
    ms_job_table_lock(table);
    for (size_t i = 0; i < table->count; i++) {
        ms_job *job = table->ordered[i];
        if (job->state == MS_JOB_RUNNING) {
            job->shutdown_cancel = true;
            atomic_store(&job->cancel, 1);
        }
    }
    ms_job_table_unlock(table);
}

static void on_grace_over(uv_timer_t *timer)
{
    ms_job_queue *queue = timer->data;
    ms_log("shutdown: grace period over, cancelling %d running job(s); they stay queued",
           queue->running);
    queue->grace_over = true;
    cancel_running(queue);
    finish_shutdown_when_drained(queue);
}

static void on_signal(uv_signal_t *handle, int signal_number)
{
    ms_job_queue *queue = handle->data;
    ms_service *service = queue->service;
    if (queue->stopping) {
        ms_log("shutdown: second signal %d, cancelling running jobs now", signal_number);
        uv_timer_stop(&queue->grace_timer);
        queue->grace_over = true;
        cancel_running(queue);
        finish_shutdown_when_drained(queue);
        return;
    }
    queue->stopping = true;
    atomic_store(&service->shutting_down, true);
    if (service->daemon != NULL) {
        /* Stop accepting; connections already open are still answered.  The
         * HTTP threads may still hold the socket in their epoll set, so it is
         * not closed before MHD_stop_daemon (libmicrohttpd's rule; closing it
         * here raced with them under ThreadSanitizer): shut down, new
         * clients are refused at once. */
        MHD_socket listen_socket = MHD_quiesce_daemon(service->daemon);
        if (listen_socket != MHD_INVALID_SOCKET) {
            shutdown(listen_socket, SHUT_RDWR);
            service->quiesced_socket = listen_socket;
        }
    }
    ms_request_gate_quiesce(&service->request_gate);   /* the listening socket is the gate's */
    size_t downloads = ms_download_count_in_flight(service);
    ms_log("shutdown: signal %d, %d running job(s), %zu download(s), grace %d s", signal_number,
           queue->running, downloads, service->options->grace_seconds);
    if (queue->running == 0 && downloads == 0) {
        finish_shutdown(queue);
        return;
    }
    uv_timer_start(&queue->grace_timer, on_grace_over,
                   (uint64_t)service->options->grace_seconds * 1000, 0);
}

static void on_log_flush_timer(uv_timer_t *timer)
{
    (void)timer;
    ms_log_flush();
}

/* queue->service is set only on success: ms_service_run destroys only a
 * queue that was fully set up (a failed start exits the process anyway). */
int ms_job_queue_init(ms_job_queue *queue, ms_service *service)
{
    memset(queue, 0, sizeof *queue);
    if (pthread_mutex_init(&queue->mutex, NULL) != 0 || uv_loop_init(&queue->loop) != 0)
        return -1;
    if (uv_async_init(&queue->loop, &queue->wakeup, on_wakeup) != 0 ||
        uv_signal_init(&queue->loop, &queue->sigterm) != 0 ||
        uv_signal_init(&queue->loop, &queue->sigint) != 0 ||
        uv_timer_init(&queue->loop, &queue->grace_timer) != 0 ||
        uv_timer_init(&queue->loop, &queue->log_flush_timer) != 0)
        return -1;
    queue->wakeup.data = queue;
    queue->sigterm.data = queue;
    queue->sigint.data = queue;
    queue->grace_timer.data = queue;
    if (uv_signal_start(&queue->sigterm, on_signal, SIGTERM) != 0 ||
        uv_signal_start(&queue->sigint, on_signal, SIGINT) != 0 ||
        uv_timer_start(&queue->log_flush_timer, on_log_flush_timer, MS_LOG_FLUSH_INTERVAL_MS,
                       MS_LOG_FLUSH_INTERVAL_MS) != 0)
        return -1;
    queue->service = service;
    return 0;
}

void ms_job_queue_run(ms_job_queue *queue)
{
    dispatch(queue);
    uv_run(&queue->loop, UV_RUN_DEFAULT);
}

void ms_job_queue_destroy(ms_job_queue *queue)
{
    if (!queue->closed) {
        /* startup failed before the loop ran: close what init opened */
        queue->closed = true;
        close_handle((uv_handle_t *)&queue->wakeup);
        close_handle((uv_handle_t *)&queue->sigterm);
        close_handle((uv_handle_t *)&queue->sigint);
        close_handle((uv_handle_t *)&queue->grace_timer);
        close_handle((uv_handle_t *)&queue->log_flush_timer);
        uv_run(&queue->loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&queue->loop);
    free(queue->pending);
    pthread_mutex_destroy(&queue->mutex);
}
