/* The request gate: the listening socket is ours, not libmicrohttpd's.
 *
 * libmicrohttpd 0.9.75 answers a request head it cannot parse (a request
 * line that is not "METHOD TARGET HTTP/1.x", a header line without a
 * colon, HTTP/0.9 or 2+, a malformed Content-Length, a head past its
 * connection memory) with its own HTML body, and has no hook to change
 * that.  So one thread accepts every connection, reads its first request
 * head without consuming it (recv with MSG_PEEK; SO_RCVLOWAT makes poll
 * wait for bytes beyond those already seen) and checks it with
 * request_head.h.  A head it refuses is answered with the service's JSON
 * error and the connection closed; an acceptable one is handed to
 * libmicrohttpd (MHD_add_connection) with every byte still unread, so
 * libmicrohttpd parses the same request.
 *
 * While it waits in the gate a connection is the connection guard's like
 * any other (connection_guard.h): --request-timeout from its accept, the
 * room kept for new clients, --connections-per-address; the guard shuts a
 * socket down, the gate sees the end and closes it.
 *
 * Only the first request of a connection passes the gate: libmicrohttpd
 * would read the following requests of a keep-alive connection itself, and
 * answer a malformed one with its HTML.  So every answer closes its
 * connection (ms_http_send). */
#ifndef MS_HTTP_REQUEST_GATE_H
#define MS_HTTP_REQUEST_GATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct ms_service;
typedef struct ms_gate_pending ms_gate_pending;

typedef struct ms_request_gate {
    struct ms_service *service;
    int listen_socket;            /* -1 once closed */
    int wakeup[2];                /* pipe: quiesce and stop wake the thread */
    atomic_bool accepting;        /* cleared by quiesce */
    atomic_bool stopping;
    ms_gate_pending *pending;     /* connections waiting for their head */
    size_t pending_count, pending_capacity;
    char *peek_buffer;            /* MS_REQUEST_HEAD_MAX_BYTES */
    pthread_t thread;
    bool started;
} ms_request_gate;

/* Takes listen_socket (listening already) and starts the thread; the
 * service's daemon must run (MHD_USE_NO_LISTEN_SOCKET).  -1 on failure:
 * the socket is then still the caller's. */
int ms_request_gate_start(ms_request_gate *gate, struct ms_service *service, int listen_socket);

/* SIGTERM: no new connections (the listening socket is shut down, new
 * clients are refused at once); those waiting still pass or are answered. */
void ms_request_gate_quiesce(ms_request_gate *gate);

/* Before MHD_stop_daemon: joins the thread, closes what still waits and the
 * listening socket.  Safe to call twice, or without a start. */
void ms_request_gate_stop(ms_request_gate *gate);

#endif
