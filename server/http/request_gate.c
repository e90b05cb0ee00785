#include "request_gate.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api/api.h"
#include "api/json_text.h"
#include "connection_guard.h"
#include "request_head.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/service.h"

enum {
    ACCEPTS_PER_WAKEUP = 64,
    /* what a refused client may have sent beyond its head, read and dropped
     * so that closing does not reset the connection before the answer is read */
    DRAIN_MAX_BYTES = 1024 * 1024,
};

struct ms_gate_pending {
    int socket;
    struct sockaddr_storage address;
    socklen_t address_length;
    ms_connection_record *record;
};

static void wake(ms_request_gate *gate)
{
    char byte = 1;
    ssize_t written = write(gate->wakeup[1], &byte, 1);
    (void)written;   /* full pipe: the thread wakes anyway */
}

/* The connection ends here: the guard lets go of it before the socket is
 * closed (it shuts sockets down by number). */
static void close_pending(ms_request_gate *gate, size_t index)
{
    ms_gate_pending *pending = &gate->pending[index];
    ms_connection_guard_forget(&gate->service->connection_guard, pending->record);
    close(pending->socket);
    gate->pending[index] = gate->pending[--gate->pending_count];
}

/* libmicrohttpd takes it from here, every byte unread. */
static void pass_on(ms_request_gate *gate, size_t index)
{
    ms_gate_pending pending = gate->pending[index];
    gate->pending[index] = gate->pending[--gate->pending_count];
    int one = 1;
    setsockopt(pending.socket, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
    ms_connection_guard *guard = &gate->service->connection_guard;
    ms_connection_guard_hand_off(guard, pending.record);
    if (MHD_add_connection(gate->service->daemon, pending.socket,
                           (const struct sockaddr *)&pending.address,
                           pending.address_length) != MHD_YES)
        ms_connection_guard_forget(guard, pending.record);   /* it closed the socket */
}

static void drain(int socket, char *buffer)
{
    size_t drained = 0;
    while (drained < DRAIN_MAX_BYTES) {
        ssize_t got = recv(socket, buffer, MS_REQUEST_HEAD_MAX_BYTES, MSG_DONTWAIT);
        if (got <= 0)
            break;
        drained += (size_t)got;
    }
}

/* The same error body as every other answer (ms_api_error_body), written
 * by hand: libmicrohttpd never saw this connection. */
static void answer(ms_request_gate *gate, size_t index, const ms_error *err)
{
    int socket = gate->pending[index].socket;
    json_t *body = ms_api_error_body(err);
    char *text = ms_api_json_dumps(body, 0);
    json_decref(body);
    unsigned status = (unsigned)ms_api_http_status(err->code);
    drain(socket, gate->peek_buffer);
    if (text != NULL) {
        const char *reason = MHD_get_reason_phrase_for(status);
        char head[256];
        int head_length = snprintf(head, sizeof head,
                                   "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\n"
                                   "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                                   status, reason, strlen(text));
        /* a few hundred bytes into an empty socket buffer: sent whole or
         * the client is gone */
        if (send(socket, head, (size_t)head_length, MSG_NOSIGNAL | MSG_DONTWAIT | MSG_MORE) ==
            head_length)
            send(socket, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT);
        shutdown(socket, SHUT_WR);
        free(text);
    }
    ms_metrics_count_request(&gate->service->metrics, status);
    if (gate->service->options->access_log)
        ms_log("http - - %u refused before parsing: %s", status, err->message);
    close_pending(gate, index);
}

/* Bytes arrived (or the end): judge what the client has sent so far. */
static void examine(ms_request_gate *gate, size_t index, short events)
{
    int socket = gate->pending[index].socket;
    ssize_t got = recv(socket, gate->peek_buffer, MS_REQUEST_HEAD_MAX_BYTES,
                       MSG_PEEK | MSG_DONTWAIT);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (got <= 0) {
        close_pending(gate, index);   /* the client left, or the guard shut it down */
        return;
    }
    ms_error err;
    ms_error_clear(&err);
    switch (ms_request_head_check(gate->peek_buffer, (size_t)got, &err)) {
    case MS_REQUEST_HEAD_ACCEPTED:
        pass_on(gate, index);
        return;
    case MS_REQUEST_HEAD_REFUSED:
        answer(gate, index, &err);
        return;
    case MS_REQUEST_HEAD_INCOMPLETE:
        break;
    }
    /* Ended mid-head: nothing to answer.  Otherwise poll wakes again only
     * once a byte beyond these has come (without it, the bytes already
     * seen would keep the socket readable and the thread spinning). */
    int low_water = (int)got + 1;
    if ((events & (POLLRDHUP | POLLHUP | POLLERR)) != 0 ||
        setsockopt(socket, SOL_SOCKET, SO_RCVLOWAT, &low_water, sizeof low_water) != 0)
        close_pending(gate, index);
}

static bool accept_one(ms_request_gate *gate)
{
    ms_gate_pending pending;
    pending.address_length = sizeof pending.address;
    pending.socket = accept4(gate->listen_socket, (struct sockaddr *)&pending.address,
                             &pending.address_length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (pending.socket < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* out of descriptors: the next poll would report the same client at once */
            const struct timespec pause = {0, 50 * 1000 * 1000};
            nanosleep(&pause, NULL);
        }
        return errno == EINTR || errno == ECONNABORTED;
    }
    ms_service *service = gate->service;
    if (gate->pending_count == gate->pending_capacity) {
        close(pending.socket);   /* --connection-limit connections wait here already */
        return true;
    }
    pending.record = ms_connection_guard_admit(
        &service->connection_guard, pending.socket, (const struct sockaddr *)&pending.address,
        pending.address_length, service->options->connections_per_address);
    if (pending.record == NULL) {
        close(pending.socket);   /* over --connections-per-address, as libmicrohttpd would */
        return true;
    }
    gate->pending[gate->pending_count++] = pending;
    return true;
}

static void drain_wakeup(ms_request_gate *gate)
{
    char bytes[64];
    while (read(gate->wakeup[0], bytes, sizeof bytes) > 0)
        continue;
}

static void *gate_main(void *argument)
{
    ms_request_gate *gate = argument;
    size_t capacity = gate->pending_capacity + 2;
    struct pollfd *polled = calloc(capacity, sizeof *polled);
    while (polled != NULL && !atomic_load(&gate->stopping)) {
        size_t count = 0;
        polled[count++] = (struct pollfd){.fd = gate->wakeup[0], .events = POLLIN};
        bool accepting = atomic_load(&gate->accepting);
        if (accepting)
            polled[count++] = (struct pollfd){.fd = gate->listen_socket, .events = POLLIN};
        size_t first_pending = count, waiting = gate->pending_count;
        for (size_t i = 0; i < waiting; i++)
            polled[count++] =
                (struct pollfd){.fd = gate->pending[i].socket, .events = POLLIN | POLLRDHUP};
        if (poll(polled, (nfds_t)count, -1) < 0)
            continue;   /* EINTR */
        if (polled[0].revents != 0)
            drain_wakeup(gate);
        /* backwards: closing one moves the last into its place */
        for (size_t i = waiting; i-- > 0;)
            if (polled[first_pending + i].revents != 0)
                examine(gate, i, polled[first_pending + i].revents);
        if (accepting && polled[1].revents != 0 && atomic_load(&gate->accepting))
            for (int i = 0; i < ACCEPTS_PER_WAKEUP && accept_one(gate); i++)
                continue;
    }
    free(polled);
    return NULL;
}

/* The wakeup pipe and the buffers: what start made before the thread. */
static void release_resources(ms_request_gate *gate)
{
    if (gate->wakeup[0] >= 0) {
        close(gate->wakeup[0]);
        close(gate->wakeup[1]);
        gate->wakeup[0] = gate->wakeup[1] = -1;
    }
    free(gate->pending);
    free(gate->peek_buffer);
    gate->pending = NULL;
    gate->peek_buffer = NULL;
}

int ms_request_gate_start(ms_request_gate *gate, struct ms_service *service, int listen_socket)
{
    memset(gate, 0, sizeof *gate);
    gate->service = service;
    gate->listen_socket = -1;
    gate->wakeup[0] = gate->wakeup[1] = -1;
    atomic_init(&gate->accepting, true);
    atomic_init(&gate->stopping, false);
    int limit = service->options->connection_limit;
    gate->pending_capacity = limit > 0 ? (size_t)limit : 1;
    gate->pending = calloc(gate->pending_capacity, sizeof *gate->pending);
    gate->peek_buffer = malloc(MS_REQUEST_HEAD_MAX_BYTES);
    int flags = fcntl(listen_socket, F_GETFL);
    if (gate->pending == NULL || gate->peek_buffer == NULL || flags < 0 ||
        fcntl(listen_socket, F_SETFL, flags | O_NONBLOCK) != 0 ||
        pipe2(gate->wakeup, O_NONBLOCK | O_CLOEXEC) != 0)
        goto fail;
    gate->listen_socket = listen_socket;
    if (pthread_create(&gate->thread, NULL, gate_main, gate) != 0) {
        gate->listen_socket = -1;
        goto fail;
    }
    gate->started = true;
    return 0;
fail:
    release_resources(gate);
    return -1;
}

void ms_request_gate_quiesce(ms_request_gate *gate)
{
    if (!gate->started || !atomic_exchange(&gate->accepting, false))
        return;
    shutdown(gate->listen_socket, SHUT_RDWR);
    wake(gate);
}

void ms_request_gate_stop(ms_request_gate *gate)
{
    if (!gate->started)
        return;
    atomic_store(&gate->stopping, true);
    wake(gate);
    pthread_join(gate->thread, NULL);
    gate->started = false;
    while (gate->pending_count > 0)
        close_pending(gate, gate->pending_count - 1);
    close(gate->listen_socket);
    gate->listen_socket = -1;
    release_resources(gate);
}
