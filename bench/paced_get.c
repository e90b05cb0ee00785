/* paced_get: GET one URL at a fixed offered rate and report latency
 * percentiles, for bench_load.
 *
 * wrk sends as fast as the server answers, so on a small machine it measures
 * CPU sharing, not the service.  Here every keep-alive connection has its own
 * thread and its own schedule (rate / connections requests per second).  A
 * request's latency counts from its scheduled send time, not from when it was
 * actually sent: a slow answer that delays the next sends shows up in their
 * latencies too (no "coordinated omission").
 *
 * usage: paced_get --url http://127.0.0.1:PORT/PATH --rate R [--connections C]
 *                  [--duration SECONDS]
 * Stops after the duration or at SIGINT/SIGTERM, then prints one line:
 *   offered R/s achieved A/s requests N errors E p50 X ms p90 X ms p99 X ms
 *   p99.9 X ms max X ms
 * Loopback or any IPv4 host given as a dotted address; HTTP/1.1 only. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum { PACED_MAX_CONNECTIONS = 256, PACED_BUFFER = 65536 };

typedef struct paced_target {
    struct sockaddr_in address;
    char request[1024];         /* the whole GET, sent as is */
    size_t request_length;
} paced_target;

typedef struct paced_connection {
    const paced_target *target;
    double interval;            /* seconds between this connection's sends */
    double start;               /* first scheduled send, CLOCK_MONOTONIC seconds */
    double end;
    int socket;
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

static void sleep_until(double when)
{
    struct timespec time;
    time.tv_sec = (time_t)when;
    time.tv_nsec = (long)((when - (double)time.tv_sec) * 1e9);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &time, NULL) == EINTR &&
           !atomic_load(&stop_requested)) {
    }
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

static int open_connection(const paced_target *target)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* A stuck server must not hang the benchmark. */
    struct timeval timeout = {.tv_sec = 5, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    if (connect(fd, (const struct sockaddr *)&target->address, sizeof target->address) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const char *data, size_t length)
{
    while (length > 0) {
        ssize_t sent = send(fd, data, length, MSG_NOSIGNAL);
        if (sent <= 0) {
            if (sent < 0 && errno == EINTR)
                continue;
            return false;
        }
        data += sent;
        length -= (size_t)sent;
    }
    return true;
}

/* Reads one response (headers, then Content-Length bytes of body).
 * Returns the status code, or -1 when the connection failed. */
static int read_response(int fd, char *buffer)
{
    size_t filled = 0;
    char *header_end = NULL;
    while (header_end == NULL) {
        if (filled + 1 >= PACED_BUFFER)
            return -1;   /* headers this large are not a service answer */
        ssize_t got = recv(fd, buffer + filled, PACED_BUFFER - 1 - filled, 0);
        if (got <= 0) {
            if (got < 0 && errno == EINTR)
                continue;
            return -1;
        }
        filled += (size_t)got;
        buffer[filled] = '\0';
        header_end = strstr(buffer, "\r\n\r\n");
    }
    int status = 0;
    if (sscanf(buffer, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    long long content_length = -1;
    for (char *line = strstr(buffer, "\r\n"); line != NULL && line < header_end;
         line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Content-Length:", 15) == 0)
            content_length = strtoll(line + 17, NULL, 10);
    }
    if (content_length < 0)
        return -1;   /* the service always sends Content-Length */
    long long remaining = content_length - (long long)(filled - (size_t)(header_end + 4 - buffer));
    while (remaining > 0) {
        ssize_t got = recv(fd, buffer, PACED_BUFFER, 0);
        if (got <= 0) {
            if (got < 0 && errno == EINTR)
                continue;
            return -1;
        }
        remaining -= got;
    }
    return remaining == 0 ? status : -1;
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

static void *run_connection(void *argument)
{
    paced_connection *connection = argument;
    char *buffer = malloc(PACED_BUFFER);
    if (buffer == NULL)
        return NULL;
    for (size_t k = 0; !atomic_load(&stop_requested); k++) {
        double scheduled = connection->start + (double)k * connection->interval;
        if (scheduled >= connection->end)
            break;
        sleep_until(scheduled);
        if (atomic_load(&stop_requested))
            break;
        if (connection->socket < 0)
            connection->socket = open_connection(connection->target);
        int status = -1;
        if (connection->socket >= 0 &&
            send_all(connection->socket, connection->target->request,
                     connection->target->request_length))
            status = read_response(connection->socket, buffer);
        if (status < 0 && connection->socket >= 0) {
            close(connection->socket);
            connection->socket = -1;
        }
        if (status < 200 || status >= 400)
            connection->errors++;
        else if (!record(connection, now_seconds() - scheduled))
            break;
    }
    free(buffer);
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
                    "[--connections C] [--duration SECONDS]\n");
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
    printf("offered %.0f/s achieved %.0f/s requests %zu errors %zu p50 %.3f ms p90 %.3f ms "
           "p99 %.3f ms p99.9 %.3f ms max %.3f ms\n",
           rate, elapsed > 0 ? (double)total / elapsed : 0.0, total, errors,
           1e3 * percentile(all, total, 0.50), 1e3 * percentile(all, total, 0.90),
           1e3 * percentile(all, total, 0.99), 1e3 * percentile(all, total, 0.999),
           1e3 * (total ? all[total - 1] : 0.0));
    free(all);
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"url", required_argument, NULL, 'u'},      {"rate", required_argument, NULL, 'r'},
        {"connections", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'}, {NULL, 0, NULL, 0},
    };
    const char *url = NULL;
    double rate = 0, duration = 3600;
    int connection_count = 16, option;
    while ((option = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (option == 'u')
            url = optarg;
        else if (option == 'r')
            rate = strtod(optarg, NULL);
        else if (option == 'c')
            connection_count = atoi(optarg);
        else if (option == 'd')
            duration = strtod(optarg, NULL);
        else
            return usage();
    }
    paced_target target;
    if (url == NULL || !parse_url(url, &target) || !(rate > 0 && rate <= 1e6) ||
        connection_count < 1 || connection_count > PACED_MAX_CONNECTIONS ||
        !(duration > 0 && duration <= 86400))
        return usage();

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);

    paced_connection *connections = calloc((size_t)connection_count, sizeof *connections);
    pthread_t *threads = calloc((size_t)connection_count, sizeof *threads);
    if (connections == NULL || threads == NULL) {
        fprintf(stderr, "paced_get: out of memory\n");
        return 1;
    }
    double interval = (double)connection_count / rate;
    double start = now_seconds() + 0.05;
    int started = 0;
    for (int i = 0; i < connection_count; i++) {
        connections[i].target = &target;
        connections[i].interval = interval;
        /* Spread the connections' schedules evenly over one interval. */
        connections[i].start = start + interval * (double)i / (double)connection_count;
        connections[i].end = start + duration;
        connections[i].socket = -1;
        if (pthread_create(&threads[i], NULL, run_connection, &connections[i]) != 0)
            break;
        started++;
    }
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    double elapsed = now_seconds() - start;
    report(connections, started, rate, elapsed);
    int status = started == connection_count ? 0 : 1;
    for (int i = 0; i < connection_count; i++) {
        if (connections[i].socket >= 0)
            close(connections[i].socket);
        free(connections[i].latencies);
    }
    free(connections);
    free(threads);
    return status;
}
