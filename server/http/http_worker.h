/* Slow request handlers off the HTTP threads.
 *
 * A submit reads the model's header and commits the job to SQLite with an
 * fsync: some 7 ms, up to 27 measured.  On the HTTP thread that stalled every
 * poll behind it (p99 of 5000 polls/s went from 1.7 to 6.3 ms with 10
 * submits/s).  Reading finished jobs' reports back from SQLite is the other
 * slow kind.  ms_http_defer suspends the connection and hands the handler to
 * a worker thread; the handler's response is kept in the request, the
 * connection resumed, and libmicrohttpd's next call for it queues the
 * response on the HTTP thread (only there may responses be queued).  The
 * service runs one worker for writes (submits, DELETEs) and one for reads of
 * stored reports, so a list does not wait behind a submit's fsync. */
#ifndef MS_HTTP_WORKER_H
#define MS_HTTP_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <microhttpd.h>

struct ms_http_request;

typedef enum MHD_Result ms_http_handler(struct ms_http_request *request);

typedef struct ms_http_worker {
    pthread_mutex_t mutex;
    pthread_cond_t wakeup;
    struct ms_http_request *first, *last;   /* FIFO through request->next_deferred */
    bool stopping;           /* under mutex */
    bool started;            /* set before the HTTP threads exist, cleared
                                after they are gone: they only read it */
    bool joined;             /* stop has run (shutdown's thread only) */
    pthread_t thread;
    atomic_int unanswered;   /* deferred requests whose answer has not gone out */
} ms_http_worker;

int ms_http_worker_start(ms_http_worker *worker);

/* Runs what is still queued, joins the thread, then waits up to wait_ms for
 * the HTTP threads to send those answers.  Before MHD_stop_daemon: a
 * suspended connection must be resumed before the daemon stops, and a
 * client whose submit was recorded should hear so. */
void ms_http_worker_stop(ms_http_worker *worker, int wait_ms);

/* Waits up to wait_ms for the answers of the requests deferred to it
 * (held ones included) to go out. */
void ms_http_worker_wait_answered(ms_http_worker *worker, int wait_ms);

/* After MHD_stop_daemon: HTTP threads may take the worker's mutex (to find
 * it stopping) until the daemon is gone.  Stops the worker first if need be. */
void ms_http_worker_destroy(ms_http_worker *worker);

/* From the request-completed callback of a deferred request. */
void ms_http_worker_answered(ms_http_worker *worker);

/* From a request handler on an HTTP thread: suspends the connection and
 * queues handler(request) for the worker (or, once the worker is stopping,
 * runs it here).  Either way request->deferred is true while the handler
 * runs: a handler that defers on some condition must not defer again.
 * Returns what the access handler returns now.  A handler that answers
 * later sets request->after_deferred (http.h); the connection then stays
 * suspended until someone calls ms_http_answer_held. */
enum MHD_Result ms_http_defer(struct ms_http_request *request, ms_http_worker *worker,
                              ms_http_handler *handler);

#endif
