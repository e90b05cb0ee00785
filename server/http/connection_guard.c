#include "connection_guard.h"

#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "server/clock.h"
#include "server/log.h"

enum { SWEEP_INTERVAL_MS = 500 };

struct ms_connection_record {
    ms_connection_record *previous, *next;
    MHD_socket socket;
    double sending_since_ms;   /* monotonic; 0 while its request is handled or answered */
    bool shut;                 /* shut down by the guard; closed by libmicrohttpd soon */
    /* passed from the request gate to libmicrohttpd, not yet adopted: not
     * shut down meanwhile (libmicrohttpd may have closed the socket) */
    bool handing_off;
    struct sockaddr_storage address;   /* from the gate; family 0 otherwise */
};

int ms_connection_guard_init(ms_connection_guard *guard, int connection_limit,
                             int request_timeout)
{
    memset(guard, 0, sizeof *guard);
    size_t limit = connection_limit > 0 ? (size_t)connection_limit : 1;
    size_t reserve = limit / 8 > 0 ? limit / 8 : 1;
    guard->room = limit > reserve ? limit - reserve : 0;
    guard->request_timeout_ms = request_timeout * 1000.0;
    return pthread_mutex_init(&guard->mutex, NULL);
}

/* libmicrohttpd closes the socket only after its "closed" notification,
 * which takes the guard's mutex: a socket shut down under the mutex is
 * still this connection's. */
static void shut(ms_connection_guard *guard, ms_connection_record *record)
{
    shutdown(record->socket, SHUT_RDWR);
    record->shut = true;
    guard->open--;
}

/* The connection that has been sending its request the longest, other than
 * except; NULL when none is sending. */
static ms_connection_record *slowest_sender(ms_connection_guard *guard,
                                            const ms_connection_record *except)
{
    ms_connection_record *slowest = NULL;
    for (ms_connection_record *record = guard->head; record != NULL; record = record->next) {
        if (record == except || record->shut || record->handing_off ||
            record->sending_since_ms == 0)
            continue;
        if (slowest == NULL || record->sending_since_ms < slowest->sending_since_ms)
            slowest = record;
    }
    return slowest;
}

static void insert_record(ms_connection_guard *guard, ms_connection_record *record);

static void add_record(ms_connection_guard *guard, struct MHD_Connection *connection,
                       void **socket_context)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    ms_connection_record *record = calloc(1, sizeof *record);
    if (record == NULL || info == NULL) {
        free(record);   /* not followed: libmicrohttpd's own timeout still applies */
        return;
    }
    record->socket = info->connect_fd;
    record->sending_since_ms = ms_clock_monotonic_ms();
    pthread_mutex_lock(&guard->mutex);
    insert_record(guard, record);
    pthread_mutex_unlock(&guard->mutex);
    *socket_context = record;
}

/* Under the mutex. */
static void insert_record(ms_connection_guard *guard, ms_connection_record *record)
{
    record->next = guard->head;
    if (guard->head != NULL)
        guard->head->previous = record;
    guard->head = record;
    guard->open++;
    if (guard->open > guard->room) {
        ms_connection_record *slowest = slowest_sender(guard, record);
        if (slowest != NULL) {
            shut(guard, slowest);
            guard->closed_for_room++;
        }
    }
}

static void remove_record(ms_connection_guard *guard, ms_connection_record *record)
{
    pthread_mutex_lock(&guard->mutex);
    if (record->previous != NULL)
        record->previous->next = record->next;
    else
        guard->head = record->next;
    if (record->next != NULL)
        record->next->previous = record->previous;
    if (!record->shut)
        guard->open--;
    pthread_mutex_unlock(&guard->mutex);
    free(record);
}

static bool same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
    return false;
}

/* Under the mutex: connections from address still open, shut or not (the
 * client holds them until they are closed). */
static size_t count_from(const ms_connection_guard *guard, const struct sockaddr_storage *address)
{
    size_t count = 0;
    for (const ms_connection_record *record = guard->head; record != NULL; record = record->next)
        count += same_address(&record->address, address);
    return count;
}

ms_connection_record *ms_connection_guard_admit(ms_connection_guard *guard, int socket,
                                                const struct sockaddr *address,
                                                socklen_t address_length,
                                                int per_address_limit)
{
    ms_connection_record *record = calloc(1, sizeof *record);
    if (record == NULL)
        return NULL;
    record->socket = socket;
    record->sending_since_ms = ms_clock_monotonic_ms();
    if (address_length <= sizeof record->address)
        memcpy(&record->address, address, address_length);
    pthread_mutex_lock(&guard->mutex);
    if (per_address_limit > 0 && record->address.ss_family != 0 &&
        count_from(guard, &record->address) >= (size_t)per_address_limit) {
        pthread_mutex_unlock(&guard->mutex);
        free(record);
        return NULL;
    }
    insert_record(guard, record);
    pthread_mutex_unlock(&guard->mutex);
    return record;
}

void ms_connection_guard_hand_off(ms_connection_guard *guard, ms_connection_record *record)
{
    pthread_mutex_lock(&guard->mutex);
    record->handing_off = true;
    pthread_mutex_unlock(&guard->mutex);
}

void ms_connection_guard_forget(ms_connection_guard *guard, ms_connection_record *record)
{
    remove_record(guard, record);
}

/* libmicrohttpd's start of a connection the gate handed over: its record
 * goes on (its deadline counts from the accept), found by the socket. */
static bool adopt_record(ms_connection_guard *guard, struct MHD_Connection *connection,
                         void **socket_context)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (info == NULL)
        return false;
    ms_connection_record *found = NULL;
    pthread_mutex_lock(&guard->mutex);
    for (ms_connection_record *record = guard->head; record != NULL; record = record->next)
        if (record->handing_off && record->socket == info->connect_fd) {
            record->handing_off = false;
            found = record;
            break;
        }
    pthread_mutex_unlock(&guard->mutex);
    *socket_context = found;
    return found != NULL;
}

void ms_connection_guard_notify(void *cls, struct MHD_Connection *connection,
                                void **socket_context, enum MHD_ConnectionNotificationCode code)
{
    ms_connection_guard *guard = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        if (!adopt_record(guard, connection, socket_context))
            add_record(guard, connection, socket_context);
    } else if (*socket_context != NULL) {
        remove_record(guard, *socket_context);
        *socket_context = NULL;
    }
}

static void set_sending_since(ms_connection_guard *guard, struct MHD_Connection *connection,
                              double since_ms)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    ms_connection_record *record = info != NULL ? info->socket_context : NULL;
    if (record == NULL)
        return;
    pthread_mutex_lock(&guard->mutex);
    record->sending_since_ms = since_ms;
    pthread_mutex_unlock(&guard->mutex);
}

void ms_connection_guard_request_received(ms_connection_guard *guard,
                                          struct MHD_Connection *connection)
{
    set_sending_since(guard, connection, 0);
}

void ms_connection_guard_request_ended(ms_connection_guard *guard,
                                       struct MHD_Connection *connection)
{
    set_sending_since(guard, connection, ms_clock_monotonic_ms());
}

size_t ms_connection_guard_sweep(ms_connection_guard *guard, double now_ms)
{
    size_t closed = 0;
    pthread_mutex_lock(&guard->mutex);
    for (ms_connection_record *record = guard->head; record != NULL; record = record->next) {
        if (record->shut || record->handing_off || record->sending_since_ms == 0 ||
            now_ms - record->sending_since_ms < guard->request_timeout_ms)
            continue;
        shut(guard, record);
        closed++;
    }
    pthread_mutex_unlock(&guard->mutex);
    return closed;
}

static void on_sweep(uv_timer_t *timer)
{
    ms_connection_guard *guard = timer->data;
    size_t late = ms_connection_guard_sweep(guard, ms_clock_monotonic_ms());
    pthread_mutex_lock(&guard->mutex);
    uint64_t for_room = guard->closed_for_room;
    guard->closed_for_room = 0;
    pthread_mutex_unlock(&guard->mutex);
    /* one line per sweep at most: a flood of slow clients must not flood the log too */
    if (late > 0 || for_room > 0)
        ms_log("http: closed %zu connection(s) past --request-timeout (%.0f s) and %llu "
               "slow sender(s) to keep room for others", late,
               guard->request_timeout_ms / 1000.0, (unsigned long long)for_room);
}

int ms_connection_guard_start(ms_connection_guard *guard, uv_loop_t *loop)
{
    if (uv_timer_init(loop, &guard->sweep_timer) != 0)
        return -1;
    guard->sweep_timer.data = guard;
    guard->started = true;
    uv_unref((uv_handle_t *)&guard->sweep_timer);
    return uv_timer_start(&guard->sweep_timer, on_sweep, SWEEP_INTERVAL_MS, SWEEP_INTERVAL_MS);
}

void ms_connection_guard_stop(ms_connection_guard *guard, uv_loop_t *loop)
{
    if (!guard->started)
        return;
    guard->started = false;
    uv_close((uv_handle_t *)&guard->sweep_timer, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
}

void ms_connection_guard_destroy(ms_connection_guard *guard)
{
    pthread_mutex_destroy(&guard->mutex);
}
