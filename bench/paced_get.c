/* paced_get: GET one URL at a fixed offered rate and report latency
 * percentiles, for bench_load.
 *
 * wrk sends as fast as the server answers, so on a small machine it measures
 * CPU sharing, not the service.  Here every keep-alive connection has its own
 * schedule (rate / connections requests per second), and a request's latency
 * counts from its scheduled send time, not from when it was actually sent: a
 * slow answer that delays the next sends shows up in their latencies too (no
 * "coordinated omission").
 *
 * Cheap on purpose: the load generator shares the cores with the server and
 * with the job whose slowdown is measured.  A client that sleeps until each
 * answer arrives costs about as much CPU as the server (some 35 us per request
 * on the 2-core VMs here, most of it going to sleep and waking up).  So a
 * sender thread wakes once per tick (--tick-us, default 1000): it reads the
 * answers that have arrived, then sends every request due by then.  An
 * answer's arrival time is the kernel's receive timestamp of its last bytes
 * (SO_TIMESTAMPNS), not the time it was read, so reading at the tick adds
 * nothing to latencies.  Scheduled send times lie on the sender's tick grid
 * (each connection's n-th send at the first tick at or after start + n x
 * interval), so waiting for the tick adds nothing either, while a late
 * wake-up of the sender still counts: with times between ticks every latency
 * carried up to a tick of the client's own making (p50 0.6 ms at 1 ms ticks).
 * The price is burstier arrivals: rate x tick / threads requests at once.
 * Sender threads ask for a short scheduler slice, as the server's HTTP
 * threads do, so their ticks are not held up behind CPU-bound work.
 *
 * usage: paced_get --url http://127.0.0.1:PORT/PATH --rate R [--connections C]
 *                  [--duration SECONDS] [--tick-us T] [--threads T] [--latencies FILE]
 *                  [--until-job-over]
 * Stops after the duration, at SIGINT/SIGTERM or, with --until-job-over, at
 * the first answer saying that the polled job has ended (that answer and any
 * later are not counted: they are not polls of a running job, and a finished
 * job's answer holds its whole report), then prints one line:
 *   offered R/s achieved A/s requests N errors E p50 X ms p90 X ms p99 X ms
 *   p99.9 X ms max X ms client_cpu X us/request machine_stalls N max X ms
 * (client_cpu: this program's user + system time per answered request.
 * machine_stalls: a probe thread that only sleeps 5 ms at a time (cheap: 200
 * wakeups a second) counts the sleeps that overran by more than 3 ms.  On a shared VM the whole machine
 * stops now and then; a burst of slow answers at such a moment is the
 * machine's, not the server's, and a handful of them decide a p99.) 
 * Loopback or any IPv4 host given as a dotted address; HTTP/1.1 only. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
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
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/thread_priority.h"

enum { PACED_MAX_CONNECTIONS = 256, PACED_BUFFER = 65536 };
enum { PACED_DEFAULT_TICK_US = 1000 };

/* A stuck server must not hang the benchmark: a request unanswered this long
 * counts as an error and its connection is reopened. */
static const double PACED_REQUEST_TIMEOUT = 5.0;

typedef struct paced_target {
    struct sockaddr_in address;
    char request[1024];         /* the whole GET, sent as is */
    size_t request_length;
} paced_target;

typedef struct paced_connection {
    const paced_target *target;
    double interval;            /* seconds between this connection's sends */
    double start;               /* first scheduled send, CLOCK_MONOTONIC seconds */
    const struct paced_sender *sender;   /* whose tick grid its sends lie on */
    double end;
    size_t next;                /* index of the next scheduled send */
    int socket;                 /* -1: opened at the next send */
    bool busy;                  /* a request sent (or being sent), answer pending */
    double scheduled;           /* the in-flight request's scheduled send time */
    double sent_at;             /* when it went out (for the timeout) */
    size_t request_sent;        /* bytes of the request sent */
    char *buffer;               /* response headers (and whatever body came with them) */
    size_t filled;
    bool have_headers;
    int status;
    bool job_over;              /* the answer says the job has ended */
    long long body_remaining;
    size_t count;               /* latencies recorded */
    size_t capacity;
    double *latencies;          /* seconds */
    double *scheduled_times;    /* of the same requests, CLOCK_MONOTONIC seconds */
    size_t errors;
} paced_connection;

/* One sender thread: connections first, first + stride, ... below count. */
typedef struct paced_sender {
    paced_connection *connections;
    int first;
    int stride;
    int count;
    double tick;
    double grid;                /* its ticks are grid + k x tick */
    double realtime_offset;     /* CLOCK_REALTIME - CLOCK_MONOTONIC at start */
} paced_sender;

static atomic_int stop_requested;

static void on_signal(int signal_number)
{
    (void)signal_number;
    atomic_store(&stop_requested, 1);
}

static double seconds_of(clockid_t clock)
{
    struct timespec time;
    clock_gettime(clock, &time);
    return (double)time.tv_sec + (double)time.tv_nsec / 1e9;
}

static double now_seconds(void)
{
    return seconds_of(CLOCK_MONOTONIC);
}

/* The probe: sleeps that overran by more than PROBE_STALL seconds. */
static const double PROBE_STALL = 0.003;
static size_t probe_stalls;
static double probe_worst;

static void *probe_machine(void *argument)
{
    (void)argument;
    const struct timespec pause = {0, 5 * 1000 * 1000};
    while (!atomic_load(&stop_requested)) {
        double before = now_seconds();
        nanosleep(&pause, NULL);
        double overrun = now_seconds() - before - 5e-3;
        if (overrun > PROBE_STALL)
            probe_stalls++;
        if (overrun > probe_worst)
            probe_worst = overrun;
    }
    return NULL;
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

/* The first tick of the connection's sender at or after its n-th nominal
 * send time (the interval is longer than a tick, so no two sends share one). */
static double scheduled_at(const paced_connection *connection, size_t index)
{
    double nominal = connection->start + (double)index * connection->interval;
    const struct paced_sender *sender = connection->sender;
    double ticks = ceil((nominal - sender->grid) / sender->tick - 1e-9);
    return sender->grid + ticks * sender->tick;
}

/* No more sends: the schedule has reached the end and nothing is in flight. */
static bool finished(const paced_connection *connection)
{
    return !connection->busy && scheduled_at(connection, connection->next) >= connection->end;
}

static bool record(paced_connection *connection, double latency)
{
    if (connection->count == connection->capacity) {
        size_t capacity = connection->capacity ? connection->capacity * 2 : 4096;
        double *latencies = realloc(connection->latencies, capacity * sizeof *latencies);
        if (latencies != NULL)
            connection->latencies = latencies;
        double *times = realloc(connection->scheduled_times, capacity * sizeof *times);
        if (times != NULL)
            connection->scheduled_times = times;
        if (latencies == NULL || times == NULL)
            return false;
        connection->capacity = capacity;
    }
    connection->scheduled_times[connection->count] = connection->scheduled;
    connection->latencies[connection->count++] = latency;
    return true;
}

static void close_connection(paced_connection *connection)
{
    if (connection->socket >= 0)
        close(connection->socket);
    connection->socket = -1;
    connection->busy = false;
}

/* The request in flight failed (or the connection did): one error. */
static void fail_request(paced_connection *connection)
{
    connection->errors++;
    close_connection(connection);
}

/* Blocking connect: on loopback it returns at once, and connections are
 * opened only at the start and after a failure. */
static bool open_connection(paced_connection *connection)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&connection->target->address,
                sizeof connection->target->address) != 0) {
        close(fd);
        return false;
    }
    connection->socket = fd;
    return true;
}

/* Sends what is left of the request; the rest (practically never, for a
 * small GET) goes at the next tick. */
static void send_request(paced_connection *connection)
{
    const paced_target *target = connection->target;
    while (connection->request_sent < target->request_length) {
        ssize_t sent = send(connection->socket, target->request + connection->request_sent,
                            target->request_length - connection->request_sent,
                            MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (sent <= 0) {
            fail_request(connection);
            return;
        }
        connection->request_sent += (size_t)sent;
    }
}

/* The next scheduled request of this connection is due: send it. */
static void start_request(paced_connection *connection, double now)
{
    connection->scheduled = scheduled_at(connection, connection->next++);
    connection->sent_at = now;
    connection->request_sent = 0;
    connection->filled = 0;
    connection->have_headers = false;
    if (connection->socket < 0 && !open_connection(connection)) {
        connection->errors++;
        return;
    }
    connection->busy = true;
    send_request(connection);
}

/* --until-job-over: whether the start of a job's JSON says it is no longer
 * queued or running.  The service writes the state near the top of a job
 * object, so it comes with the headers in the first segment. */
static bool until_job_over;

static bool job_over(const char *body)
{
    static const char *const final_states[] = {"\"state\":\"succeeded\"",
                                               "\"state\":\"failed\"",
                                               "\"state\":\"cancelled\""};
    if (!until_job_over)
        return false;
    for (size_t i = 0; i < sizeof final_states / sizeof final_states[0]; i++) {
        if (strstr(body, final_states[i]) != NULL)
            return true;
    }
    return false;
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
    connection->job_over = job_over(header_end + 4);
    return true;
}

static void complete_request(paced_connection *connection, double arrived)
{
    if (connection->body_remaining != 0) {
        fail_request(connection);   /* more than announced */
        return;
    }
    connection->busy = false;
    if (connection->job_over) {
        /* not an answer about a running job: not counted, and the run is over */
        atomic_store(&stop_requested, 1);
        return;
    }
    if (connection->status < 200 || connection->status >= 400)
        connection->errors++;
    else if (!record(connection, arrived - connection->scheduled))
        atomic_store(&stop_requested, 1);   /* out of memory: report what we have */
}

/* One non-blocking read; its receive timestamp (monotonic seconds) goes to
 * *arrived.  Returns what recvmsg returned. */
static ssize_t receive(paced_connection *connection, char *into, size_t room,
                       double realtime_offset, double *arrived)
{
    struct iovec part = {.iov_base = into, .iov_len = room};
    union {
        char bytes[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } control;
    struct msghdr message = {.msg_iov = &part, .msg_iovlen = 1,
                             .msg_control = control.bytes, .msg_controllen = sizeof control};
    ssize_t got = recvmsg(connection->socket, &message, MSG_DONTWAIT);
    *arrived = now_seconds();   /* without a timestamp: when it was read */
    for (struct cmsghdr *item = CMSG_FIRSTHDR(&message); got > 0 && item != NULL;
         item = CMSG_NXTHDR(&message, item)) {
        if (item->cmsg_level == SOL_SOCKET && item->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec stamp;
            memcpy(&stamp, CMSG_DATA(item), sizeof stamp);
            *arrived = (double)stamp.tv_sec + (double)stamp.tv_nsec / 1e9 - realtime_offset;
        }
    }
    return got;
}

/* Reads whatever of the answer has arrived. */
static void read_answer(paced_connection *connection, double realtime_offset)
{
    for (;;) {
        double arrived;
        ssize_t got;
        if (!connection->have_headers) {
            if (connection->filled + 1 >= PACED_BUFFER) {
                fail_request(connection);   /* headers this large are not an answer */
                return;
            }
            got = receive(connection, connection->buffer + connection->filled,
                          PACED_BUFFER - 1 - connection->filled, realtime_offset, &arrived);
        } else {
            got = receive(connection, connection->buffer, PACED_BUFFER, realtime_offset,
                          &arrived);
        }
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (got <= 0) {
            fail_request(connection);
            return;
        }
        if (connection->have_headers) {
            connection->body_remaining -= got;
        } else {
            connection->filled += (size_t)got;
            connection->buffer[connection->filled] = '\0';
            const char *header_end = strstr(connection->buffer, "\r\n\r\n");
            if (header_end == NULL)
                continue;
            if (!parse_headers(connection, header_end)) {
                fail_request(connection);
                return;
            }
        }
        if (connection->body_remaining <= 0) {
            complete_request(connection, arrived);
            return;
        }
    }
}

/* One tick of one connection: collect its answer, send what is due.
 * Returns false once the connection is done. */
static bool service_connection(paced_connection *connection, double now, double realtime_offset)
{
    if (finished(connection))
        return false;
    if (connection->busy && connection->request_sent < connection->target->request_length)
        send_request(connection);
    if (connection->busy)
        read_answer(connection, realtime_offset);
    if (connection->busy && now - connection->sent_at > PACED_REQUEST_TIMEOUT)
        fail_request(connection);
    if (connection->busy)
        return true;   /* the next send waits for the answer */
    double due = scheduled_at(connection, connection->next);
    if (due < connection->end && due <= now)
        start_request(connection, now);
    return !finished(connection);
}

static void *run(void *argument)
{
    paced_sender *sender = argument;
    ms_thread_request_short_slice();   /* as the server's HTTP threads */
    /* on the grid that scheduled_at aligns sends to: one tick before its
     * origin, as the loop steps at least one tick ahead */
    double origin = sender->grid - sender->tick;
    struct timespec wake = {.tv_sec = (time_t)origin,
                            .tv_nsec = (long)((origin - floor(origin)) * 1e9)};
    long tick_ns = (long)(sender->tick * 1e9);
    while (!atomic_load(&stop_requested)) {
        double now = now_seconds();
        bool active = false;
        for (int i = sender->first; i < sender->count; i += sender->stride)
            active |= service_connection(&sender->connections[i], now, sender->realtime_offset);
        if (!active)
            break;
        /* the next tick after now (ticks missed while busy are skipped) */
        struct timespec current;
        clock_gettime(CLOCK_MONOTONIC, &current);
        do {
            wake.tv_nsec += tick_ns;
            while (wake.tv_nsec >= 1000000000L) {
                wake.tv_nsec -= 1000000000L;
                wake.tv_sec++;
            }
        } while (wake.tv_sec < current.tv_sec ||
                 (wake.tv_sec == current.tv_sec && wake.tv_nsec <= current.tv_nsec));
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &wake, NULL) == EINTR &&
               !atomic_load(&stop_requested)) {
        }
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
                    "[--connections C] [--duration SECONDS] [--tick-us T] [--threads T] "
                    "[--latencies FILE] [--until-job-over]\n");
    return 2;
}

/* --latencies: one line per answered request, "SCHEDULED LATENCY" (wall-clock
 * seconds since the epoch, milliseconds), to line slow answers up with the
 * server's log and the job's timestamps. */
static bool write_latencies(const char *path, const paced_connection *connections, int count,
                            double realtime_offset)
{
    FILE *file = fopen(path, "w");
    if (file == NULL)
        return false;
    for (int i = 0; i < count; i++) {
        for (size_t k = 0; k < connections[i].count; k++)
            fprintf(file, "%.6f %.3f\n", connections[i].scheduled_times[k] + realtime_offset,
                    connections[i].latencies[k] * 1e3);
    }
    return fclose(file) == 0;
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
           "p99 %.3f ms p99.9 %.3f ms max %.3f ms client_cpu %.1f us/request "
           "machine_stalls %zu max %.1f ms\n",
           rate, elapsed > 0 ? (double)total / elapsed : 0.0, total, errors,
           1e3 * percentile(all, total, 0.50), 1e3 * percentile(all, total, 0.90),
           1e3 * percentile(all, total, 0.99), 1e3 * percentile(all, total, 0.999),
           1e3 * (total ? all[total - 1] : 0.0), total ? 1e6 * cpu_seconds / (double)total : 0.0,
           probe_stalls, 1e3 * probe_worst);
    free(all);
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"url", required_argument, NULL, 'u'},      {"rate", required_argument, NULL, 'r'},
        {"connections", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'}, {"tick-us", required_argument, NULL, 't'},
        {"threads", required_argument, NULL, 'T'},
        {"latencies", required_argument, NULL, 'L'},
        {"until-job-over", no_argument, NULL, 'J'},
        {NULL, 0, NULL, 0},
    };
    const char *url = NULL, *latencies_path = NULL;
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
        else if (option == 'L')
            latencies_path = optarg;
        else if (option == 'J')
            until_job_over = true;
        else
            return usage();
    }
    paced_target target;
    if (url == NULL || !parse_url(url, &target) || !(rate > 0 && rate <= 1e6) ||
        connection_count < 1 || connection_count > PACED_MAX_CONNECTIONS ||
        !(duration > 0 && duration <= 86400) || !(tick_us >= 10 && tick_us <= 100000) ||
        thread_count < 1 || thread_count > connection_count)
        return usage();

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    /* ticks on time: the default 50 us timer slack would blur them */
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);

    int status = 1, started = 0;
    paced_connection *connections = calloc((size_t)connection_count, sizeof *connections);
    paced_sender *senders = calloc((size_t)thread_count, sizeof *senders);
    pthread_t *threads = calloc((size_t)thread_count, sizeof *threads);
    if (connections == NULL || senders == NULL || threads == NULL) {
        fprintf(stderr, "paced_get: out of memory\n");
        goto done;
    }
    double interval = (double)connection_count / rate;
    double tick = tick_us / 1e6;
    if (interval <= tick) {
        fprintf(stderr, "paced_get: a connection's interval (%g us) must be longer than a tick"
                        " (more connections or a shorter --tick-us)\n", interval * 1e6);
        return 2;
    }
    double start = now_seconds() + 0.05;
    double realtime_offset = seconds_of(CLOCK_REALTIME) - now_seconds();
    for (int i = 0; i < connection_count; i++) {
        paced_connection *connection = &connections[i];
        connection->target = &target;
        connection->interval = interval;
        /* Spread the connections' schedules evenly over one interval. */
        connection->start = start + interval * (double)i / (double)connection_count;
        connection->sender = &senders[i % thread_count];
        connection->end = start + duration;
        connection->socket = -1;
        connection->buffer = malloc(PACED_BUFFER);
        if (connection->buffer == NULL) {
            fprintf(stderr, "paced_get: out of memory\n");
            goto done;
        }
        /* before the first tick, so that no latency holds a connect; one that
         * fails here is tried again at its first send */
        open_connection(connection);
    }
    /* Sender t drives connections t, t + threads, ...: each thread's sends
     * stay spread over the interval.  It ticks a t / threads part of a tick
     * after sender 0. */
    for (int t = 0; t < thread_count; t++)
        senders[t] = (paced_sender){.connections = connections, .first = t,
                                    .stride = thread_count, .count = connection_count,
                                    .tick = tick, .grid = start + tick * (double)t / (double)thread_count,
                                    .realtime_offset = realtime_offset};
    pthread_t probe;
    bool probing = pthread_create(&probe, NULL, probe_machine, NULL) == 0;
    for (; started < thread_count; started++) {
        if (pthread_create(&threads[started], NULL, run, &senders[started]) != 0)
            break;
    }
    if (started < thread_count)
        atomic_store(&stop_requested, 1);
    for (int t = 0; t < started; t++)
        pthread_join(threads[t], NULL);
    atomic_store(&stop_requested, 1);   /* the senders are done: so is the probe */
    if (probing)
        pthread_join(probe, NULL);
    if (started == thread_count) {
        report(connections, connection_count, rate, now_seconds() - start);
        status = 0;
        if (latencies_path != NULL &&
            !write_latencies(latencies_path, connections, connection_count, realtime_offset)) {
            fprintf(stderr, "paced_get: cannot write %s\n", latencies_path);
            status = 1;
        }
    }
done:
    for (int i = 0; connections != NULL && i < connection_count; i++) {
        if (connections[i].socket >= 0)
            close(connections[i].socket);
        free(connections[i].buffer);
        free(connections[i].latencies);
        free(connections[i].scheduled_times);
    }
    free(connections);
    free(senders);
    free(threads);
    return status;
}
