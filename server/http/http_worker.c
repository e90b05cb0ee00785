#include "http_worker.h"

#include <time.h>

#include "http.h"

static ms_http_request *pop(ms_http_worker *worker)
{
    ms_http_request *request = worker->first;
    if (request != NULL) {
        worker->first = request->next_deferred;
        if (worker->first == NULL)
            worker->last = NULL;
        request->next_deferred = NULL;
    }
    return request;
}

static void run_deferred(ms_http_request *request)
{
    request->in_worker = true;
    request->deferred = true;
    request->worker_result = request->deferred_handler(request);
    request->deferred = false;
    request->in_worker = false;
    void (*after)(ms_http_request *) = request->after_deferred;
    if (after != NULL) {
        /* answered later, from another thread: the request is no longer ours */
        request->after_deferred = NULL;
        after(request);
        return;
    }
    /* the response waits in the request; the HTTP thread queues it */
    MHD_resume_connection(request->connection);
}

static void *worker_main(void *argument)
{
    ms_http_worker *worker = argument;
    pthread_mutex_lock(&worker->mutex);
    for (;;) {
        ms_http_request *request = pop(worker);
        if (request == NULL) {
            if (worker->stopping)
                break;
            pthread_cond_wait(&worker->wakeup, &worker->mutex);
            continue;
        }
        pthread_mutex_unlock(&worker->mutex);
        run_deferred(request);
        pthread_mutex_lock(&worker->mutex);
    }
    pthread_mutex_unlock(&worker->mutex);
    return NULL;
}

int ms_http_worker_start(ms_http_worker *worker)
{
    worker->first = worker->last = NULL;
    worker->stopping = false;
    worker->started = false;
    worker->joined = false;
    atomic_init(&worker->unanswered, 0);
    if (pthread_mutex_init(&worker->mutex, NULL) != 0)
        return -1;
    if (pthread_cond_init(&worker->wakeup, NULL) != 0) {
        pthread_mutex_destroy(&worker->mutex);
        return -1;
    }
    if (pthread_create(&worker->thread, NULL, worker_main, worker) != 0) {
        pthread_cond_destroy(&worker->wakeup);
        pthread_mutex_destroy(&worker->mutex);
        return -1;
    }
    worker->started = true;
    return 0;
}

void ms_http_worker_stop(ms_http_worker *worker, int wait_ms)
{
    if (!worker->started || worker->joined)
        return;
    pthread_mutex_lock(&worker->mutex);
    worker->stopping = true;
    pthread_cond_signal(&worker->wakeup);
    pthread_mutex_unlock(&worker->mutex);
    pthread_join(worker->thread, NULL);
    worker->joined = true;
    ms_http_worker_wait_answered(worker, wait_ms);
}

void ms_http_worker_wait_answered(ms_http_worker *worker, int wait_ms)
{
    const struct timespec step = {0, 10 * 1000 * 1000};
    for (int waited = 0; atomic_load(&worker->unanswered) > 0 && waited < wait_ms; waited += 10)
        nanosleep(&step, NULL);
}

void ms_http_worker_destroy(ms_http_worker *worker)
{
    if (!worker->started)
        return;
    ms_http_worker_stop(worker, 0);
    pthread_cond_destroy(&worker->wakeup);
    pthread_mutex_destroy(&worker->mutex);
    worker->started = false;
}

void ms_http_worker_answered(ms_http_worker *worker)
{
    atomic_fetch_sub(&worker->unanswered, 1);
}

/* On the HTTP thread, still as a deferred handler (see the header). */
static enum MHD_Result run_here(ms_http_request *request, ms_http_handler *handler)
{
    request->deferred = true;
    enum MHD_Result result = handler(request);
    request->deferred = false;
    return result;
}

enum MHD_Result ms_http_defer(ms_http_request *request, ms_http_worker *worker,
                              ms_http_handler *handler)
{
    if (!worker->started)
        return run_here(request, handler);
    pthread_mutex_lock(&worker->mutex);
    if (worker->stopping) {
        /* shutting down: nothing will run the queue any more; answer here */
        pthread_mutex_unlock(&worker->mutex);
        return run_here(request, handler);
    }
    request->deferred_handler = handler;
    request->worker = worker;
    atomic_fetch_add(&worker->unanswered, 1);
    MHD_suspend_connection(request->connection);
    if (worker->last != NULL)
        worker->last->next_deferred = request;
    else
        worker->first = request;
    worker->last = request;
    pthread_cond_signal(&worker->wakeup);
    pthread_mutex_unlock(&worker->mutex);
    return MHD_YES;
}
