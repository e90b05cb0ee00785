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
 * Connections start in the request gate (request_gate.h), which admits
 * them here, so the deadline, the room and --connections-per-address
 * cover a connection from its accept, also while the gate waits for its
 * first head; libmicrohttpd's start notification adopts the record.
 * libmicrohttpd's own per-address limit (MHD_OPTION_PER_IP_CONNECTION_LIMIT)
 * stays as a second line. */
#ifndef MS_HTTP_CONNECTION_GUARD_H
#define MS_HTTP_CONNECTION_GUARD_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
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

/* From the request gate, for a socket just accepted: follows it from now
 * on (a shut down socket reads as the client's end).  NULL when address
 * already holds per_address_limit connections (0: no limit) or out of
 * memory: the caller closes the socket. */
ms_connection_record *ms_connection_guard_admit(ms_connection_guard *guard, int socket,
                                                const struct sockaddr *address,
                                                socklen_t address_length,
                                                int per_address_limit);

/* Before MHD_add_connection: from here until libmicrohttpd's start
 * notification adopts it the socket is left alone (libmicrohttpd closes
 * it when it refuses it). */
void ms_connection_guard_hand_off(ms_connection_guard *guard, ms_connection_record *record);

/* Stops following a connection the gate closes itself (before closing the
 * socket), or one libmicrohttpd refused. */
void ms_connection_guard_forget(ms_connection_guard *guard, ms_connection_record *record);

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
