/* GET /v1/jobs/{id}/result: the file streamed from disk (sendfile through
 * libmicrohttpd), never read into memory; ETag is the file's sha256;
 * single byte ranges. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "download.h"
#include "server/paths.h"
#include "range.h"
#include "request_values.h"
#include "routes.h"
#include "server/service.h"

typedef struct result_file {
    char name[256];
    char etag[70];
    uint64_t expected_bytes;   /* as the job wrote it: a file of another size is refused */
} result_file;

static enum MHD_Result send_code(ms_http_request *request, ms_status code, const char *message,
                                 const char *const *headers)
{
    ms_error err;
    ms_error_set(&err, code, NULL, "%s", message);
    return ms_http_send_error(request, &err, headers);
}

/* The request's end (ms_http_request.on_completed): the file is no longer
 * held for it.  Retention skipped the result for this download: when the
 * last one ends, it looks again. */
static void download_ended(ms_http_request *request)
{
    ms_service *service = request->service;
    bool wake_retention = false;
    ms_job_table_lock(&service->table);
    ms_job *job = ms_job_table_find(&service->table, request->job_id);
    if (job != NULL && job->downloads_in_flight > 0) {
        job->downloads_in_flight--;
        wake_retention = job->downloads_in_flight == 0 && job->eviction_deferred;
    }
    ms_job_table_unlock(&service->table);
    if (wake_retention)
        ms_retention_wake(&service->retention);
    if (atomic_load(&service->shutting_down))
        ms_job_queue_download_ended(&service->queue);   /* the last one may end the shutdown */
}

size_t ms_download_count_in_flight(ms_service *service)
{
    size_t count = 0;
    ms_job_table_lock(&service->table);
    for (size_t i = 0; i < service->table.count; i++)
        count += (size_t)service->table.ordered[i]->downloads_in_flight;
    ms_job_table_unlock(&service->table);
    return count;
}

/* Copies what the response needs under the table lock.  With counted set,
 * a result found is counted as downloading, under the same lock as the
 * look-up, so that retention cannot delete it between here and the open;
 * the count ends with the request (download_ended). */
static ms_status find_result(ms_http_request *request, const char *id, result_file *file,
                             bool counted)
{
    ms_service *service = request->service;
    ms_job_table_lock(&service->table);
    ms_job *job = ms_job_table_find(&service->table, id);
    ms_status status = MS_OK;
    if (job == NULL)
        status = MS_ERR_JOB_NOT_FOUND;
    else if (job->state != MS_JOB_SUCCEEDED || !job->has_result)
        status = MS_ERR_RESULT_NOT_READY;
    else if (job->result_expired || job->result_evicting)
        status = MS_ERR_RESULT_EXPIRED;
    else {
        snprintf(file->name, sizeof file->name, "%s", job->output_name);
        snprintf(file->etag, sizeof file->etag, "\"%s\"", job->result_sha256);
        file->expected_bytes = job->result_bytes;
        if (counted) {
            job->downloads_in_flight++;
            ms_http_set_job_id(request, id);
            request->on_completed = download_ended;
        }
    }
    ms_job_table_unlock(&service->table);
    return status;
}

static void add_file_headers(struct MHD_Response *response, const result_file *file)
{
    char disposition[320];
    snprintf(disposition, sizeof disposition, "attachment; filename=\"%s\"", file->name);
    MHD_add_response_header(response, MHD_HTTP_HEADER_ETAG, file->etag);
    MHD_add_response_header(response, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition);
}

/* Never called: libmicrohttpd sends no body with a 304. */
static ssize_t no_body(void *cls, uint64_t position, char *buffer, size_t size)
{
    (void)cls, (void)position, (void)buffer, (void)size;
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* libmicrohttpd writes Content-Length on a 304 from the response's size.
 * RFC 9110 8.6: it must then be the size a 200 would have sent (the file's),
 * not 0, or a cache may take the entity for an empty one. */
static enum MHD_Result send_not_modified(ms_http_request *request, const result_file *file)
{
    struct MHD_Response *response =
        MHD_create_response_from_callback(file->expected_bytes, 4096, no_body, NULL, NULL);
    if (response == NULL)
        return MHD_NO;
    add_file_headers(response, file);
    return ms_http_send(request, 304, response);
}

static enum MHD_Result send_unsatisfiable(ms_http_request *request, uint64_t size)
{
    char content_range[64];
    snprintf(content_range, sizeof content_range, "bytes */%llu", (unsigned long long)size);
    const char *headers[] = {MHD_HTTP_HEADER_CONTENT_RANGE, content_range,
                             MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes", NULL};
    ms_error err;
    ms_error_set(&err, MS_ERR_RANGE_NOT_SATISFIABLE, NULL,
                 "the range lies outside the file (%llu bytes)", (unsigned long long)size);
    ms_error_detail_add(&err, "size", "%llu", (unsigned long long)size);
    return ms_http_send_error(request, &err, headers);
}

/* libmicrohttpd's timeout counts time without progress.  A download fills
 * the socket buffers (megabytes on loopback) and then moves only as fast as
 * the client reads: one reading 100 kB/s showed no progress for 30 s and
 * was cut.  Its connection gets MS_DOWNLOAD_TIMEOUT_SECONDS instead, if
 * longer; a client that reads nothing at all is still dropped then. */
enum { MS_DOWNLOAD_TIMEOUT_SECONDS = 600 };

static void allow_slow_reader(ms_http_request *request)
{
    unsigned configured = (unsigned)request->service->options->connection_timeout;
    if (configured < MS_DOWNLOAD_TIMEOUT_SECONDS)
        MHD_set_connection_option(request->connection, MHD_CONNECTION_OPTION_TIMEOUT,
                                  (unsigned)MS_DOWNLOAD_TIMEOUT_SECONDS);
}

static enum MHD_Result send_file(ms_http_request *request, const result_file *file, int fd,
                                 uint64_t size)
{
    uint64_t start = 0, length = size;
    /* If-Range with another validator means: send the whole (new) file */
    const char *if_range = ms_http_header(request, "If-Range");
    const char *range_header = ms_http_header(request, MHD_HTTP_HEADER_RANGE);
    if (if_range != NULL && strcmp(if_range, file->etag) != 0)
        range_header = NULL;
    ms_range_kind kind = ms_range_parse(range_header, size, &start, &length);
    if (kind == MS_RANGE_UNSATISFIABLE) {
        close(fd);
        return send_unsatisfiable(request, size);
    }
    struct MHD_Response *response = MHD_create_response_from_fd_at_offset64(length, fd, start);
    if (response == NULL) {
        close(fd);
        return MHD_NO;
    }
    add_file_headers(response, file);
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    unsigned status = 200;
    if (kind == MS_RANGE_PARTIAL) {
        char content_range[96];
        snprintf(content_range, sizeof content_range, "bytes %llu-%llu/%llu",
                 (unsigned long long)start, (unsigned long long)(start + length - 1),
                 (unsigned long long)size);
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_RANGE, content_range);
        status = 206;
    }
    if (strcmp(request->method, "HEAD") != 0) {
        request->file_bytes = length;
        allow_slow_reader(request);
    }
    return ms_http_send(request, status, response);
}

enum MHD_Result ms_download_result(ms_http_request *request, const char *job_id)
{
    ms_service *service = request->service;
    result_file file;
    ms_status status = find_result(request, job_id, &file, true);
    if (status == MS_ERR_JOB_NOT_FOUND)
        return send_code(request, status, "no such job", NULL);
    ms_http_set_job_id(request, job_id);
    if (status == MS_ERR_RESULT_NOT_READY)
        return send_code(request, status, "the job has not succeeded (yet)", NULL);
    if (status == MS_ERR_RESULT_EXPIRED)
        return send_code(request, status, "the result file was deleted by the service's "
                         "retention limits (--keep-results-bytes, --keep-results-seconds); "
                         "the job's record stays", NULL);
    if (ms_http_etag_matches(ms_http_header(request, MHD_HTTP_HEADER_IF_NONE_MATCH), file.etag))
        return send_not_modified(request, &file);
    char *dir = ms_service_result_dir(service, job_id);
    char *path = dir != NULL ? ms_paths_join(dir, file.name) : NULL;
    int fd = path != NULL ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
    free(dir);
    free(path);
    struct stat info;
    if (fd < 0 || fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
        if (fd >= 0)
            close(fd);
        /* a DELETE between the lookup and the open: the job is gone */
        if (find_result(request, job_id, &file, false) == MS_ERR_JOB_NOT_FOUND)
            return send_code(request, MS_ERR_JOB_NOT_FOUND, "no such job", NULL);
        return send_code(request, MS_ERR_IO, "the result file is missing on the server", NULL);
    }
    if ((uint64_t)info.st_size != file.expected_bytes) {
        /* changed behind the service's back: its sha256 (the ETag) would lie,
         * and a client resuming with If-Range would splice two files */
        close(fd);
        ms_error err;
        ms_error_set(&err, MS_ERR_IO, NULL,
                     "the result file on the server has %llu bytes, the job wrote %llu",
                     (unsigned long long)info.st_size, (unsigned long long)file.expected_bytes);
        ms_error_detail_add(&err, "reason", "result_changed");
        return ms_http_send_error(request, &err, NULL);
    }
    return send_file(request, &file, fd, (uint64_t)info.st_size);
}
