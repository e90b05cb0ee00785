#include "service.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/http/auth.h"
#include "clock.h"
#include "server/http/http.h"
#include "server/http/model_index.h"
#include "server/jobs/job_runner.h"
#include "server/jobs/merge_recovery.h"
#include "log.h"
#include "paths.h"
#include "server/jobs/retention.h"
#include "core/merge/rotate_cache.h"
#include "server/webui/passthrough.h"
#include "server/webui/webui_client.h"

char *ms_service_result_dir(const ms_service *service, const char *job_id)
{
    return ms_paths_join(service->results_dir, job_id);
}

void ms_service_save_job(ms_service *service, ms_job *snapshot)
{
    if (snapshot == NULL)
        return;
    ms_error err;
    if (ms_job_store_update(service->store, snapshot, &err) != MS_OK)
        ms_log("job %s: saving the record failed: %s", snapshot->id, err.message);
    ms_job_free(snapshot);
}

void ms_service_stop_http_workers(ms_service *service)
{
    /* joined first: no submit holds a request after the waiters close */
    ms_http_worker_stop(&service->write_worker, 0);
    ms_job_waiters_release_all(service);
    ms_http_worker_wait_answered(&service->write_worker, MS_SHUTDOWN_ANSWER_WAIT_MS);
    ms_http_worker_stop(&service->read_worker, MS_SHUTDOWN_ANSWER_WAIT_MS);
    ms_http_worker_stop(&service->listing_worker, MS_SHUTDOWN_ANSWER_WAIT_MS);
    /* passed-through requests still waiting for the web UI are answered 503 */
    ms_passthrough_stop(service->passthrough, MS_SHUTDOWN_ANSWER_WAIT_MS);
}

void ms_service_close_quiesced_socket(ms_service *service)
{
    if (service->quiesced_socket >= 0)
        close(service->quiesced_socket);
    service->quiesced_socket = -1;
}

/* HTTP threads may look at the workers until MHD_stop_daemon has joined them. */
static void destroy_http_workers(ms_service *service)
{
    ms_http_worker_destroy(&service->write_worker);
    ms_http_worker_destroy(&service->read_worker);
    ms_http_worker_destroy(&service->listing_worker);
}

void ms_service_attach_report(ms_service *service, ms_job *copy)
{
    if (copy->report != NULL || !copy->report_in_store)
        return;
    ms_error err;
    if (ms_job_store_read_report(service->store, copy->id, &copy->report, &err) != MS_OK)
        ms_log("job %s: reading the report failed: %s", copy->id, err.message);
}

/* libuv sizes its pool once, at first use: it must hold every worker. */
static void size_thread_pool(int workers)
{
    const char *current = getenv("UV_THREADPOOL_SIZE");
    int size = current != NULL ? atoi(current) : 4;
    if (size < workers) {
        char text[16];
        snprintf(text, sizeof text, "%d", workers);
        setenv("UV_THREADPOOL_SIZE", text, 1);
    }
}

static bool is_loopback(const struct sockaddr *address)
{
    if (address->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)address;
        return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
    }
    if (address->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)address;
        if (IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr))
            return true;
        return IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr) && v6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

/* "http://HOST:PORT" of the bound socket (the real port when 0 was asked). */
static void set_listen_url(ms_service *service, int fd)
{
    struct sockaddr_storage bound;
    socklen_t bound_length = sizeof bound;
    memset(&bound, 0, sizeof bound);
    getsockname(fd, (struct sockaddr *)&bound, &bound_length);
    char host[INET6_ADDRSTRLEN] = "?";
    if (bound.ss_family == AF_INET6) {
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&bound;
        inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
        snprintf(service->listen_url, sizeof service->listen_url, "http://[%s]:%d", host,
                 ntohs(v6->sin6_port));
    } else {
        struct sockaddr_in *v4 = (struct sockaddr_in *)&bound;
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
        snprintf(service->listen_url, sizeof service->listen_url, "http://%s:%d", host,
                 ntohs(v4->sin_port));
    }
}

/* Binds HOST:PORT ourselves so port 0 can be reported and the loopback rule
 * checked on the address actually used.  Returns the socket or -1. */
static int open_listen_socket(ms_service *service, bool *ipv6, bool *loopback)
{
    const ms_serve_options *options = service->options;
    struct addrinfo hints = {0}, *addresses = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof port, "%d", options->listen_port);
    int error = getaddrinfo(options->listen_host, port, &hints, &addresses);
    if (error != 0) {
        fprintf(stderr, "mergesvd serve: cannot resolve %s: %s\n", options->listen_host,
                gai_strerror(error));
        return -1;
    }
    int fd = socket(addresses->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, addresses->ai_addr, addresses->ai_addrlen) != 0 ||
        listen(fd, 512) != 0) {
        fprintf(stderr, "mergesvd serve: cannot listen on %s:%d: %s\n", options->listen_host,
                options->listen_port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(addresses);
        return -1;
    }
    *ipv6 = addresses->ai_family == AF_INET6;
    *loopback = is_loopback(addresses->ai_addr);
    freeaddrinfo(addresses);

    set_listen_url(service, fd);
    return fd;
}

/* The rotate method's decomposition cache, shared by every job. */
static bool open_rotate_cache(ms_service *service)
{
    if (service->options->cache_bytes == 0)
        return true;   /* --cache-bytes 0: nothing kept between merges */
    char *path = ms_paths_join(service->data_dir, "rotate-cache");
    ms_error err;
    ms_error_clear(&err);
    ms_status status = path == NULL ? MS_ERR_OUT_OF_MEMORY
                                    : ms_rotate_cache_open(path, service->options->cache_bytes,
                                                           &service->rotate_cache, &err);
    if (status != MS_OK)
        fprintf(stderr, "mergesvd serve: cannot use the rotate cache %s: %s\n",
                path != NULL ? path : "(out of memory)", err.message);
    free(path);
    ms_metrics_set_rotate_cache(&service->metrics, service->rotate_cache);
    return status == MS_OK;
}

static bool prepare_data_dir(ms_service *service)
{
    const char *data = service->options->data_dir;
    if (!ms_paths_make_dir(data) || (service->data_dir = realpath(data, NULL)) == NULL) {
        fprintf(stderr, "mergesvd serve: cannot use data directory %s: %s\n", data,
                strerror(errno));
        return false;
    }
    service->results_dir = ms_paths_join(service->data_dir, "results");
    if (service->results_dir == NULL || !ms_paths_make_dir(service->results_dir)) {
        fprintf(stderr, "mergesvd serve: cannot create %s/results\n", service->data_dir);
        return false;
    }
    char *lock_path = ms_paths_join(service->data_dir, "jobs.lock");
    service->lock_fd = lock_path != NULL ? open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644) : -1;
    free(lock_path);
    if (service->lock_fd < 0) {
        /* read-only or not ours: not "in use" */
        fprintf(stderr, "mergesvd serve: cannot use data directory %s: %s\n", service->data_dir,
                strerror(errno));
        return false;
    }
    if (flock(service->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "mergesvd serve: data directory %s is in use by another server\n",
                service->data_dir);
        return false;
    }
    return true;
}

/* Jobs the last process left behind: running ones were interrupted; queued
 * ones run again.  Only succeeded jobs keep a result directory, and not
 * when their result expired (a stop between the record and the deletion). */
static void recover_jobs(ms_service *service)
{
    ms_job_table *table = &service->table;
    char *interrupted = ms_job_runner_error_text(
        MS_ERR_INTERRUPTED, "the service stopped while the job was running");
    int64_t now = ms_clock_now_ms();
    for (size_t i = 0; i < table->count; i++) {
        ms_job *job = table->ordered[i];
        if (job->state == MS_JOB_RUNNING) {
            ms_job_table_set_state(table, job, MS_JOB_FAILED);
            job->finished_ms = now;
            free(job->error_text);
            job->error_text = interrupted != NULL ? strdup(interrupted) : NULL;
            ms_log("job %s %s failed code=interrupted", job->id, ms_job_kind_name(job->kind));
            ms_service_save_job(service, ms_job_copy(job));
            ms_merge_recovery_remove_temporaries(service, job);
        }
        if (job->state == MS_JOB_QUEUED)
            ms_job_queue_push(&service->queue, job->id);
    }
    free(interrupted);
    DIR *dir = opendir(service->results_dir);
    struct dirent *entry;
    while (dir != NULL && (entry = readdir(dir)) != NULL) {
        if (!ms_job_id_valid(entry->d_name))
            continue;
        ms_job *job = ms_job_table_find(table, entry->d_name);
        bool unreadable_row = false;
        ms_error err;
        if (job == NULL &&
            ms_job_store_contains(service->store, entry->d_name, &unreadable_row, &err) != MS_OK)
            unreadable_row = true;   /* cannot tell: keep the files */
        if (unreadable_row)
            continue;   /* a row skipped at load: not ours to judge, its files stay */
        if (job == NULL || job->state != MS_JOB_SUCCEEDED || job->result_expired) {
            char *path = ms_paths_join(service->results_dir, entry->d_name);
            if (path != NULL)
                ms_paths_remove_dir(path, NULL);   /* before the reserve is made */
            free(path);
        }
    }
    if (dir != NULL)
        closedir(dir);
}

static bool open_store(ms_service *service)
{
    char *path = ms_paths_join(service->data_dir, "jobs.sqlite3");
    ms_error err;
    ms_status status = path != NULL ? ms_job_store_open(path, &service->store, &err)
                                    : ms_error_set(&err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    free(path);
    size_t skipped = 0;
    if (status == MS_OK)
        status = ms_job_store_load(service->store, &service->table, &skipped, &err);
    if (status != MS_OK) {
        fprintf(stderr, "mergesvd serve: %s\n", err.message);
        return false;
    }
    if (skipped > 0)
        ms_log("job store: skipped %zu unreadable record(s)", skipped);
    return true;
}

static bool load_token(ms_service *service)
{
    if (service->options->token_file == NULL)
        return true;
    char message[512];
    service->token = ms_auth_load_token(service->options->token_file, message, sizeof message);
    if (service->token == NULL)
        fprintf(stderr, "mergesvd serve: %s\n", message);
    return service->token != NULL;
}

/* A root that does not exist is almost always a typing mistake, and a
 * service that lists nothing and refuses every model is of no use: refused
 * at startup.  A root on a mount is mounted before the service starts
 * (systemd: RequiresMountsFor=). */
static bool check_model_roots(const ms_serve_options *options)
{
    for (size_t i = 0; i < options->model_root_count; i++) {
        const char *root = options->model_roots[i];
        struct stat info;
        const char *problem = stat(root, &info) != 0 ? strerror(errno)
                              : !S_ISDIR(info.st_mode) ? "not a directory"
                                                       : NULL;
        if (problem != NULL) {
            fprintf(stderr, "mergesvd serve: models root %s: %s (create it or correct "
                            "--models)\n", root, problem);
            return false;
        }
    }
    return true;
}

static int job_threads(const ms_serve_options *options)
{
    if (options->job_threads > 0)
        return options->job_threads;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long per_job = cores > 0 ? cores / options->workers : 1;
    return per_job > 0 ? (int)per_job : 1;
}

/* --webui: the client, and the thread that relays /sdapi and /bbwm. */
static int start_webui(ms_service *service)
{
    char message[512] = "";
    if (!ms_webui_open(service->options, &service->webui, message, sizeof message)) {
        fprintf(stderr, "mergesvd serve: %s\n", message);
        return 2;
    }
    if (service->webui == NULL)
        return 0;
    service->passthrough = ms_passthrough_start(service->webui, service->token);
    if (service->passthrough == NULL) {
        fprintf(stderr, "mergesvd serve: cannot start the web UI pass-through thread\n");
        return 1;
    }
    ms_log("web UI at %s; merges for it in %s (newest %d kept)", service->webui->base_url,
           service->webui->checkpoints_dir, service->webui->keep);
    return 0;
}

static int start(ms_service *service)
{
    bool ipv6 = false, loopback = false;
    if (!load_token(service) || !check_model_roots(service->options))
        return 2;
    int webui_status = start_webui(service);
    if (webui_status != 0)
        return webui_status;
    int listen_fd = open_listen_socket(service, &ipv6, &loopback);
    if (listen_fd < 0)
        return 1;
    if (!loopback && service->token == NULL) {
        fprintf(stderr, "mergesvd serve: refusing to listen on non-loopback address %s "
                        "without --token-file\n", service->options->listen_host);
        close(listen_fd);
        return 2;
    }
    if (!prepare_data_dir(service) || !open_store(service) || !open_rotate_cache(service)) {
        close(listen_fd);
        return 1;
    }
    if (ms_job_queue_init(&service->queue, service) != 0) {
        fprintf(stderr, "mergesvd serve: cannot start the event loop\n");
        close(listen_fd);
        return 1;
    }
    recover_jobs(service);
    if (ms_retention_start(&service->retention, service, &service->queue.loop) != 0) {
        fprintf(stderr, "mergesvd serve: cannot start the result retention timer\n");
        close(listen_fd);
        return 1;
    }
    ms_retention_run(&service->retention);   /* limits lowered since the last run */
    if (ms_connection_guard_start(&service->connection_guard, &service->queue.loop) != 0) {
        fprintf(stderr, "mergesvd serve: cannot start the request deadline timer\n");
        close(listen_fd);
        return 1;
    }
    service->model_index = ms_model_index_new(&ms_model_default_limits, MS_MODEL_INDEX_SETTLE_MS);
    if (service->model_index == NULL || ms_http_worker_start(&service->write_worker) != 0 ||
        ms_http_worker_start(&service->read_worker) != 0 ||
        ms_http_worker_start(&service->listing_worker) != 0) {
        fprintf(stderr, "mergesvd serve: cannot start the HTTP worker thread\n");
        close(listen_fd);
        return 1;
    }
    service->daemon = ms_http_start(service, ipv6);
    if (service->daemon == NULL || ms_request_gate_start(&service->request_gate, service,
                                                         listen_fd) != 0) {
        fprintf(stderr, "mergesvd serve: cannot start the HTTP server\n");
        close(listen_fd);
        return 1;
    }
    fprintf(stderr, "listening on %s\n", service->listen_url);
    return 0;
}

static uint64_t results_kept_bytes(void *table)
{
    return ms_retention_kept_bytes(table);
}

int ms_service_run(const ms_serve_options *options)
{
    ms_service service;
    memset(&service, 0, sizeof service);
    service.options = options;
    service.lock_fd = -1;
    service.quiesced_socket = -1;
    atomic_init(&service.shutting_down, false);
    service.job_threads = job_threads(options);
    signal(SIGPIPE, SIG_IGN);
    size_thread_pool(options->workers);
    ms_metrics_init(&service.metrics);
    ms_metrics_set_results_source(&service.metrics, results_kept_bytes, &service.table);
    pthread_mutex_init(&service.submit_mutex, NULL);
    bool queue_ready = false;
    int exit_status = ms_job_table_init(&service.table) == 0 &&
                              ms_job_waiters_init(&service.waiters) == 0 &&
                              ms_connection_guard_init(&service.connection_guard,
                                                       options->connection_limit,
                                                       options->request_timeout) == 0
                          ? 0
                          : 1;
    service.reaper = ms_file_reaper_start();
    if (service.reaper == NULL)
        ms_log("cannot start the thread that frees deleted files: deletions wait for it");
    if (exit_status == 0) {
        exit_status = start(&service);
        queue_ready = service.queue.service != NULL;
    }
    if (exit_status == 0) {
        ms_log("serving: %d worker(s), %d thread(s) per job, %d HTTP thread(s), queue %d, "
               "data %s", options->workers, service.job_threads, ms_serve_http_threads(options),
               options->queue_size, service.data_dir);
        ms_job_queue_run(&service.queue);
    }
    ms_service_stop_http_workers(&service);
    ms_request_gate_stop(&service.request_gate);   /* hands nothing more to the daemon */
    if (service.daemon != NULL)
        MHD_stop_daemon(service.daemon);
    ms_service_close_quiesced_socket(&service);
    destroy_http_workers(&service);
    ms_passthrough_free(service.passthrough);
    if (queue_ready) {
        ms_connection_guard_stop(&service.connection_guard, &service.queue.loop);
        ms_retention_stop(&service.retention, &service.queue.loop);
        ms_job_queue_destroy(&service.queue);
    }
    ms_file_reaper_stop(service.reaper);   /* every job and request that deletes is done */
    ms_log_flush();   /* lines of connections closed by the stop above */
    ms_job_store_close(service.store);
    ms_metrics_set_rotate_cache(&service.metrics, NULL);
    if (service.rotate_cache != NULL)
        ms_rotate_cache_close(service.rotate_cache);
    ms_job_table_destroy(&service.table);
    ms_job_waiters_destroy(&service.waiters);
    ms_model_index_free(service.model_index);
    ms_connection_guard_destroy(&service.connection_guard);
    ms_metrics_destroy(&service.metrics);
    pthread_mutex_destroy(&service.submit_mutex);
    if (service.lock_fd >= 0)
        close(service.lock_fd);
    ms_webui_close(service.webui);   /* the jobs that called it are gone */
    free(service.token);
    free(service.data_dir);
    free(service.results_dir);
    return exit_status;
}
