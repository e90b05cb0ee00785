/* paced_get: GET one URL at a fixed offered rate and report latency
 * percentiles, for bench_load.
 *
 * wrk sends as fast as the server answers, so on a small machine it measures
 * CPU sharing, not the service.  Here every keep-alive connection has its own
 * schedule (rate / connections requests per second).  A request's latency
 * counts from its scheduled send time, not from when it was actually sent: a
 * slow answer that delays the next sends shows up in their latencies too (no
 * "coordinated omission").
 *
 * One thread drives all connections (non-blocking sockets, epoll): the load
 * generator shares the cores with the server and the job it measures, and a
 * thread per connection cost a thread wakeup (and its scheduler work) per
 * request on top of the socket calls.  The epoll wait sleeps until the next
 * due send, rounded up to a tick (--tick-us, default 1000; 0: wake for every
 * send): the sends due within a tick go out together.  On a 2-core machine
 * that halves the client's CPU per request (a wakeup costs more than the
 * socket calls); the wait for the tick counts in the latencies.
 * --threads T (default 1) splits the connections over T such loops.  Beside
 * CPU-bound work, one busy thread waits for the scheduler more often than many
 * light ones: p99 under a resize read about 7-8 ms with 1 thread where 16
 * threads read 2-3 ms (`--threads 16 --tick-us 0` is the old client's
 * pattern: thread per connection, a wakeup per send).
 *
 * usage: paced_get --url http://127.0.0.1:PORT/PATH --rate R [--connections C]
 *                  [--duration SECONDS] [--tick-us T] [--threads T]
 * Stops after the duration or at SIGINT/SIGTERM, then prints one line:
 *   offered R/s achieved A/s requests N errors E p50 X ms p90 X ms p99 X ms
 *   p99.9 X ms max X ms client_cpu X us/request
 * (client_cpu: this program's user + system time per answered request; on a
 * machine shared with the server it slows the measured work as much as the
 * server's own time does.)
 * Loopback or any IPv4 host given as a dotted address; HTTP/1.1 only. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>   /* INFINITY */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { PACED_MAX_CONNECTIONS = 256, PACED_BUFFER = 65536 };

/* --tick-us default: sends are grouped per millisecond (see wake_time). */
enum { PACED_DEFAULT_TICK_US = 1000 };

/* A stuck server must not hang the benchmark: a request unanswered this long
 * counts as an error and its connection is reopened. */
static const double PACED_REQUEST_TIMEOUT = 5.0;

typedef struct paced_target {
    struct sockaddr_in address;
    char request[1024];         /* the whole GET, sent as is */
    size_t request_length;
} paced_target;

typedef enum paced_state {
    PACED_CLOSED,               /* no socket; opened at the next due send */
    PACED_CONNECTING,           /* non-blocking connect, a request waiting */
    PACED_IDLE,                 /* keep-alive, nothing in flight */
    PACED_BUSY,                 /* a request sent (or being sent), answer pending */
} paced_state;

typedef struct paced_connection {
    const paced_target *target;
    double interval;            /* seconds between this connection's sends */
    double start;               /* first scheduled send, CLOCK_MONOTONIC seconds */
    double end;
    size_t next;                /* index of the next scheduled send */
    paced_state state;
    int socket;
    bool watching_output;       /* EPOLLOUT registered (connect or partial send) */
    double scheduled;           /* the in-flight request's scheduled send time */
    double sent_at;             /* when it went out (for the timeout) */
    size_t request_sent;        /* bytes of the request sent */
    char *buffer;               /* response headers (and whatever body came with them) */
    size_t filled;
    bool have_headers;
    int status;
    long long body_remaining;
    size_t count;               /* latencies recorded */
    size_t capacity;
    double *latencies;          /* seconds */
    size_t errors;
} paced_connection;

static atomic_int stop_requested;

static void on_signal(int signal_number)
{
    (void)signal_number;
    atomic_store(&stop_requested, 1);
}

static double now_seconds(void)
{
    struct timespec time;
    clock_gettime(CLOCK_MONOTONIC, &time);
    return (double)time.tv_sec + (double)time.tv_nsec / 1e9;
}

/* "http://A.B.C.D:PORT/PATH" -> address and the request text. */
static bool parse_url(const char *url, paced_target *target)
{
    char host[64];
    unsigned port = 0;
    int consumed = 0;
    if (strncmp(url, "http://", 7) != 0 ||
        sscanf(url + 7, "%63[0-9.]:%u%n", host, &port, &consumed) != 2 || port == 0 ||
        port > 65535)
        return false;
    const char *path = url + 7 + consumed;
    if (*path == '\0')
        path = "/";
    if (*path != '/')
        return false;
    memset(&target->address, 0, sizeof target->address);
    target->address.sin_family = AF_INET;
    target->address.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &target->address.sin_addr) != 1)
        return false;
    int length = snprintf(target->request, sizeof target->request,
                          "GET %s HTTP/1.1\r\nHost: %s:%u\r\nAccept: */*\r\n\r\n", path, host,
                          port);
    if (length < 0 || (size_t)length >= sizeof target->request)
        return false;
    target->request_length = (size_t)length;
    return true;
}

static double scheduled_at(const paced_connection *connection, size_t index)
{
    return connection->start + (double)index * connection->interval;
}

/* No more sends: the schedule has reached the end and nothing is in flight. */
static bool finished(const paced_connection *connection)
{
    return (connection->state == PACED_IDLE || connection->state == PACED_CLOSED) &&
           scheduled_at(connection, connection->next) >= connection->end;
}

static bool record(paced_connection *connection, double latency)
{
    if (connection->count == connection->capacity) {
        size_t capacity = connection->capacity ? connection->capacity * 2 : 4096;
        double *grown = realloc(connection->latencies, capacity * sizeof *grown);
        if (grown == NULL)
            return false;
        connection->latencies = grown;
        connection->capacity = capacity;
    }
    connection->latencies[connection->count++] = latency;
    return true;
}

static void watch(int epoll_fd, paced_connection *connection, bool output)
{
    struct epoll_event event = {.events = EPOLLIN | (output ? EPOLLOUT : 0u),
                                .data.ptr = connection};
    epoll_ctl(epoll_fd, EPOLL_CTL_MOD, connection->socket, &event);
    connection->watching_output = output;
}

static void close_connection(int epoll_fd, paced_connection *connection)
{
    if (connection->socket >= 0) {
        epoll_ctl(epoll_fd, EPOLL_CTL_DEL, connection->socket, NULL);
        close(connection->socket);
    }
    connection->socket = -1;
    connection->state = PACED_CLOSED;
    connection->watching_output = false;
}

/* The request in flight failed (or the connection did): one error. */
static void fail_request(int epoll_fd, paced_connection *connection)
{
    connection->errors++;
    close_connection(epoll_fd, connection);
}

/* Non-blocking connect; the request goes out once it completes. */
static bool open_connection(int epoll_fd, paced_connection *connection)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&connection->target->address,
                sizeof connection->target->address) != 0 &&
        errno != EINPROGRESS) {
        close(fd);
        return false;
    }
    struct epoll_event event = {.events = EPOLLIN | EPOLLOUT, .data.ptr = connection};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
        close(fd);
        return false;
    }
    connection->socket = fd;
    connection->watching_output = true;
    connection->state = PACED_CONNECTING;
    return true;
}

/* Sends what is left of the request; waits for room only when the socket
 * buffer is full (practically never for a small GET). */
static void send_request(int epoll_fd, paced_connection *connection)
{
    const paced_target *target = connection->target;
    while (connection->request_sent < target->request_length) {
        ssize_t sent = send(connection->socket, target->request + connection->request_sent,
                            target->request_length - connection->request_sent,
                            MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!connection->watching_output)
                watch(epoll_fd, connection, true);
            return;
        }
        if (sent <= 0) {
            fail_request(epoll_fd, connection);
            return;
        }
        connection->request_sent += (size_t)sent;
    }
    if (connection->watching_output)
        watch(epoll_fd, connection, false);
}

/* The next scheduled request of this connection is due: send it. */
static void start_request(int epoll_fd, paced_connection *connection, double now)
{
    connection->scheduled = scheduled_at(connection, connection->next++);
    connection->sent_at = now;
    connection->request_sent = 0;
    connection->filled = 0;
    connection->have_headers = false;
    if (connection->state == PACED_CLOSED) {
        if (!open_connection(epoll_fd, connection))
            connection->errors++;
        return;   /* sent once connected */
    }
    connection->state = PACED_BUSY;
    send_request(epoll_fd, connection);
}

static void on_connected(int epoll_fd, paced_connection *connection)
{
    int error = 0;
    socklen_t length = sizeof error;
    if (getsockopt(connection->socket, SOL_SOCKET, SO_ERROR, &error, &length) != 0 ||
        error != 0) {
        fail_request(epoll_fd, connection);
        return;
    }
    connection->state = PACED_BUSY;
    send_request(epoll_fd, connection);
}

/* Status and Content-Length once the headers are in; false when they are not
 * a usable answer. */
static bool parse_headers(paced_connection *connection, const char *header_end)
{
    char *buffer = connection->buffer;
    if (sscanf(buffer, "HTTP/1.%*d %d", &connection->status) != 1)
        return false;
    long long content_length = -1;
    for (const char *line = strstr(buffer, "\r\n"); line != NULL && line < header_end;
         line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Content-Length:", 15) == 0)
            content_length = strtoll(line + 17, NULL, 10);
    }
    if (content_length < 0)
        return false;   /* the service always sends Content-Length */
    size_t body_here = connection->filled - (size_t)(header_end + 4 - buffer);
    connection->body_remaining = content_length - (long long)body_here;
    connection->have_headers = true;
    return true;
}

static void complete_request(int epoll_fd, paced_connection *connection, double now)
{
    if (connection->body_remaining != 0) {
        fail_request(epoll_fd, connection);   /* more than announced */
        return;
    }
    connection->state = PACED_IDLE;
    if (connection->status < 200 || connection->status >= 400)
        connection->errors++;
    else if (!record(connection, now - connection->scheduled))
        atomic_store(&stop_requested, 1);   /* out of memory: report what we have */
}

/* Readable: part of the answer (or, when idle, the server closing). */
static void on_readable(int epoll_fd, paced_connection *connection)
{
    if (connection->state != PACED_BUSY) {
        /* Nothing asked: the server closed an idle keep-alive connection (or
         * sent junk).  Not a failed request; reopened at the next send. */
        close_connection(epoll_fd, connection);
        return;
    }
    ssize_t got;
    if (!connection->have_headers) {
        if (connection->filled + 1 >= PACED_BUFFER) {
            fail_request(epoll_fd, connection);   /* headers this large are not an answer */
            return;
        }
        got = recv(connection->socket, connection->buffer + connection->filled,
                   PACED_BUFFER - 1 - connection->filled, MSG_DONTWAIT);
    } else {
        got = recv(connection->socket, connection->buffer, PACED_BUFFER, MSG_DONTWAIT);
    }
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (got <= 0) {
        fail_request(epoll_fd, connection);
        return;
    }
    if (connection->have_headers) {
        connection->body_remaining -= got;
    } else {
        connection->filled += (size_t)got;
        connection->buffer[connection->filled] = '\0';
        const char *header_end = strstr(connection->buffer, "\r\n\r\n");
        if (header_end == NULL)
            return;
        if (!parse_headers(connection, header_end)) {
            fail_request(epoll_fd, connection);
            return;
        }
    }
    if (connection->body_remaining <= 0)
        complete_request(epoll_fd, connection, now_seconds());
}

static void on_event(int epoll_fd, paced_connection *connection, uint32_t events)
{
    if (connection->state == PACED_CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            on_connected(epoll_fd, connection);
        return;
    }
    if ((events & EPOLLOUT) && connection->state == PACED_BUSY &&
        connection->request_sent < connection->target->request_length)
        send_request(epoll_fd, connection);
    if (connection->socket >= 0 && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        on_readable(epoll_fd, connection);
}

/* Sends every due request, fails the stuck ones; returns the time of the
 * next due send (INFINITY when none is waiting for its time), or -1 when
 * every connection is done. */
static double service_schedules(int epoll_fd, paced_connection *connections, int count,
                                int stride, double now)
{
    double next_due = INFINITY;
    bool all_finished = true;
    for (int i = 0; i < count; i += stride) {
        paced_connection *connection = &connections[i];
        if (finished(connection))
            continue;
        all_finished = false;
        if (connection->state == PACED_BUSY || connection->state == PACED_CONNECTING) {
            if (now - connection->sent_at > PACED_REQUEST_TIMEOUT)
                fail_request(epoll_fd, connection);
            else
                continue;   /* the next send waits for the answer */
        }
        double due = scheduled_at(connection, connection->next);
        if (due >= connection->end)
            continue;
        if (due <= now)
            start_request(epoll_fd, connection, now);
        else if (due < next_due)
            next_due = due;
    }
    return all_finished ? -1.0 : next_due;
}

/* The next due send rounded up to the tick: the sends due within one tick go
 * out together, one wakeup (of this thread, and mostly of the server) for
 * several requests.  Their latencies still count from their own scheduled
 * times, so the wait for the tick is in the figures (at most one tick). */
static double wake_time(double next_due, double tick)
{
    if (tick <= 0 || next_due == INFINITY)
        return next_due;
    double ticks = next_due / tick;
    double whole = (double)(long long)ticks;
    return (whole < ticks ? whole + 1 : whole) * tick;
}

/* One sender thread: connections first, first + stride, ... below count. */
typedef struct paced_sender {
    paced_connection *connections;
    int first;
    int stride;
    int count;
    double tick;
    int epoll_fd;
} paced_sender;

static void *run(void *argument)
{
    paced_sender *sender = argument;
    int epoll_fd = sender->epoll_fd, count = sender->count;
    double tick = sender->tick;
    struct epoll_event events[PACED_MAX_CONNECTIONS];
    while (!atomic_load(&stop_requested)) {
        double now = now_seconds();
        double next_due = service_schedules(epoll_fd, sender->connections + sender->first,
                                            count - sender->first, sender->stride, now);
        if (next_due < 0)
            break;
        /* Wake at the next due send, and at least every 100 ms to look for
         * stuck requests. */
        double wait = wake_time(next_due, tick) - now_seconds();
        if (wait > 0.1)
            wait = 0.1;
        if (wait < 0)
            wait = 0;
        struct timespec timeout = {.tv_sec = 0, .tv_nsec = (long)(wait * 1e9)};
        int ready = epoll_pwait2(epoll_fd, events, count, &timeout, NULL);
        if (ready < 0 && errno == ENOSYS) {
            /* Kernel before 5.11: millisecond timeouts, rounded up (sends
             * bunch a little; latencies still count from the schedule). */
            ready = epoll_wait(epoll_fd, events, count, (int)(wait * 1e3) + 1);
        }
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            perror("paced_get: epoll_wait");
            break;
        }
        for (int i = 0; i < ready; i++)
            on_event(epoll_fd, events[i].data.ptr, events[i].events);
    }
    return NULL;
}

static int compare_doubles(const void *left, const void *right)
{
    double a = *(const double *)left, b = *(const double *)right;
    return (a > b) - (a < b);
}

static double percentile(const double *sorted, size_t count, double fraction)
{
    if (count == 0)
        return 0.0;
    size_t index = (size_t)(fraction * (double)(count - 1) + 0.5);
    return sorted[index < count ? index : count - 1];
}

static int usage(void)
{
    fprintf(stderr, "usage: paced_get --url http://A.B.C.D:PORT/PATH --rate R "
                    "[--connections C] [--duration SECONDS] [--tick-us T] [--threads T]\n");
    return 2;
}

static void report(paced_connection *connections, int count, double rate, double elapsed)
{
    size_t total = 0, errors = 0;
    for (int i = 0; i < count; i++) {
        total += connections[i].count;
        errors += connections[i].errors;
    }
    double *all = malloc((total ? total : 1) * sizeof *all);
    if (all == NULL) {
        fprintf(stderr, "paced_get: out of memory\n");
        return;
    }
    size_t filled = 0;
    for (int i = 0; i < count; i++) {
        if (connections[i].count == 0)
            continue;   /* latencies is NULL then */
        memcpy(all + filled, connections[i].latencies, connections[i].count * sizeof *all);
        filled += connections[i].count;
    }
    qsort(all, total, sizeof *all, compare_doubles);
    struct rusage usage;
    double cpu_seconds = 0;
    if (getrusage(RUSAGE_SELF, &usage) == 0)
        cpu_seconds = (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 +
                      (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
    printf("offered %.0f/s achieved %.0f/s requests %zu errors %zu p50 %.3f ms p90 %.3f ms "
           "p99 %.3f ms p99.9 %.3f ms max %.3f ms client_cpu %.1f us/request\n",
           rate, elapsed > 0 ? (double)total / elapsed : 0.0, total, errors,
           1e3 * percentile(all, total, 0.50), 1e3 * percentile(all, total, 0.90),
           1e3 * percentile(all, total, 0.99), 1e3 * percentile(all, total, 0.999),
           1e3 * (total ? all[total - 1] : 0.0), total ? 1e6 * cpu_seconds / (double)total : 0.0);
    free(all);
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"url", required_argument, NULL, 'u'},      {"rate", required_argument, NULL, 'r'},
        {"connections", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'}, {"tick-us", required_argument, NULL, 't'},
        {"threads", required_argument, NULL, 'T'},
        {NULL, 0, NULL, 0},
    };
    const char *url = NULL;
    double rate = 0, duration = 3600, tick_us = PACED_DEFAULT_TICK_US;
    int connection_count = 16, thread_count = 1, option;
    while ((option = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (option == 'u')
            url = optarg;
        else if (option == 'r')
            rate = strtod(optarg, NULL);
        else if (option == 'c')
            connection_count = atoi(optarg);
        else if (option == 'd')
            duration = strtod(optarg, NULL);
        else if (option == 't')
            tick_us = strtod(optarg, NULL);
        else if (option == 'T')
            thread_count = atoi(optarg);
        else
            return usage();
    }
    paced_target target;
    if (url == NULL || !parse_url(url, &target) || !(rate > 0 && rate <= 1e6) ||
        connection_count < 1 || connection_count > PACED_MAX_CONNECTIONS ||
        !(duration > 0 && duration <= 86400) || !(tick_us >= 0 && tick_us <= 100000) ||
        thread_count < 1 || thread_count > connection_count)
        return usage();

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);

    int status = 1, started = 0;
    paced_connection *connections = calloc((size_t)connection_count, sizeof *connections);
    paced_sender *senders = calloc((size_t)thread_count, sizeof *senders);
    pthread_t *threads = calloc((size_t)thread_count, sizeof *threads);
    if (connections == NULL || senders == NULL || threads == NULL) {
        fprintf(stderr, "paced_get: out of memory\n");
        goto done;
    }
    for (int t = 0; t < thread_count; t++)
        senders[t].epoll_fd = -1;
    double interval = (double)connection_count / rate;
    double start = now_seconds() + 0.05;
    for (int i = 0; i < connection_count; i++) {
        paced_connection *connection = &connections[i];
        connection->target = &target;
        connection->interval = interval;
        /* Spread the connections' schedules evenly over one interval. */
        connection->start = start + interval * (double)i / (double)connection_count;
        connection->end = start + duration;
        connection->socket = -1;
        connection->state = PACED_CLOSED;
        connection->buffer = malloc(PACED_BUFFER);
        if (connection->buffer == NULL) {
            fprintf(stderr, "paced_get: out of memory\n");
            goto done;
        }
    }
    /* Sender t drives connections t, t + threads, ...: each thread's sends
     * stay spread over the interval. */
    for (int t = 0; t < thread_count; t++) {
        senders[t] = (paced_sender){.connections = connections, .first = t,
                                    .stride = thread_count, .count = connection_count,
                                    .tick = tick_us / 1e6,
                                    .epoll_fd = epoll_create1(EPOLL_CLOEXEC)};
        if (senders[t].epoll_fd < 0) {
            fprintf(stderr, "paced_get: epoll: %s\n", strerror(errno));
            break;
        }
    }
    for (; started < thread_count && senders[started].epoll_fd >= 0; started++) {
        if (pthread_create(&threads[started], NULL, run, &senders[started]) != 0)
            break;
    }
    if (started < thread_count)
        atomic_store(&stop_requested, 1);
    for (int t = 0; t < started; t++)
        pthread_join(threads[t], NULL);
    if (started == thread_count) {
        report(connections, connection_count, rate, now_seconds() - start);
        status = 0;
    }
done:
    for (int i = 0; connections != NULL && i < connection_count; i++) {
        if (connections[i].socket >= 0)
            close(connections[i].socket);
        free(connections[i].buffer);
        free(connections[i].latencies);
    }
    for (int t = 0; senders != NULL && t < thread_count; t++) {
        if (senders[t].connections != NULL && senders[t].epoll_fd >= 0)
            close(senders[t].epoll_fd);
    }
    free(connections);
    free(senders);
    free(threads);
    return status;
}
