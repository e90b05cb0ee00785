/* Slow clients must not lock everyone out.
 *
 * libmicrohttpd's own timeout counts time without progress, so a client
 * sending one header line every few seconds keeps its connection forever,
 * and a few hundred such connections fill --connection-limit (the token
 * check comes after the headers: --token-file does not help).  The guard
 * follows every connection (MHD_OPTION_NOTIFY_CONNECTION) and:
 *
 * - gives each request a total deadline, --request-timeout, from the
 *   connection's start or the previous request's end until the request
 *   (line, headers and body) is in; past it the socket is shut down, which
 *   libmicrohttpd sees as the client leaving.  An idle keep-alive
 *   connection is a request that has not started: it ends then too;
 * - keeps room for well-behaved clients: when the open connections reach
 *   --connection-limit less an eighth, each new one closes the connection
 *   that has been sending its request the longest (a client that sends its
 *   request at once is never that one).
 *
 * Connections per client address are libmicrohttpd's own limit
 * (MHD_OPTION_PER_IP_CONNECTION_LIMIT, --connections-per-address). */
#ifndef MS_HTTP_CONNECTION_GUARD_H
#define MS_HTTP_CONNECTION_GUARD_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct ms_connection_record ms_connection_record;

typedef struct ms_connection_guard {
    pthread_mutex_t mutex;
    ms_connection_record *head;    /* every open connection, oldest first */
    size_t open;                   /* not shut down by the guard */
    size_t room;                   /* open connections before the slowest sender is closed */
    double request_timeout_ms;
    uint64_t closed_for_room;      /* since the last sweep, which logs them */
    uv_timer_t sweep_timer;
    bool started;
} ms_connection_guard;

/* connection_limit as given to libmicrohttpd; request_timeout in seconds. */
int ms_connection_guard_init(ms_connection_guard *guard, int connection_limit,
                             int request_timeout);

/* MHD_OPTION_NOTIFY_CONNECTION's callback; cls is the guard. */
void ms_connection_guard_notify(void *cls, struct MHD_Connection *connection,
                                void **socket_context, enum MHD_ConnectionNotificationCode code);

/* From the access handler: the request is in (its deadline no longer runs). */
void ms_connection_guard_request_received(ms_connection_guard *guard,
                                          struct MHD_Connection *connection);

/* From the completion callback: the next request's deadline starts now. */
void ms_connection_guard_request_ended(ms_connection_guard *guard,
                                       struct MHD_Connection *connection);

/* Shuts down every connection whose request is past its deadline; returns
 * how many.  The sweep timer calls it. */
size_t ms_connection_guard_sweep(ms_connection_guard *guard, double now_ms);

/* Sweeps on the loop twice a second (the timer is unreferenced: it does not
 * keep the loop running).  Stop after the loop has ended, then destroy once
 * libmicrohttpd has stopped (every connection closed). */
int ms_connection_guard_start(ms_connection_guard *guard, uv_loop_t *loop);
void ms_connection_guard_stop(ms_connection_guard *guard, uv_loop_t *loop);
void ms_connection_guard_destroy(ms_connection_guard *guard);

#endif
