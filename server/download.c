/* GET /v1/jobs/{id}/result: the file streamed from disk (sendfile through
 * libmicrohttpd), never read into memory; ETag is the file's sha256;
 * single byte ranges. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "paths.h"
#include "range.h"
#include "routes.h"
#include "service.h"

typedef struct result_file {
    char name[256];
    char etag[70];
    uint64_t expected_bytes;
} result_file;

static enum MHD_Result send_code(ms_http_request *request, ms_status code, const char *message,
                                 const char *const *headers)
{
    ms_error err;
    ms_error_set(&err, code, NULL, "%s", message);
    return ms_http_send_error(request, &err, headers);
}

/* Copies what the response needs under the table lock. */
static ms_status find_result(ms_service *service, const char *id, result_file *file)
{
    ms_job_table_lock(&service->table);
    ms_job *job = ms_job_table_find(&service->table, id);
    ms_status status = MS_OK;
    if (job == NULL)
        status = MS_ERR_JOB_NOT_FOUND;
    else if (job->state != MS_JOB_SUCCEEDED || !job->has_result)
        status = MS_ERR_RESULT_NOT_READY;
    else {
        snprintf(file->name, sizeof file->name, "%s", job->output_name);
        snprintf(file->etag, sizeof file->etag, "\"%s\"", job->result_sha256);
        file->expected_bytes = job->result_bytes;
    }
    ms_job_table_unlock(&service->table);
    return status;
}

/* If-None-Match: "*" or a list of entity tags (weak ones compared weakly). */
static bool etag_matches(const char *header, const char *etag)
{
    if (header == NULL)
        return false;
    if (strcmp(header, "*") == 0)
        return true;
    size_t etag_length = strlen(etag);
    for (const char *at = header; (at = strstr(at, etag)) != NULL; at += etag_length) {
        char after = at[etag_length];
        if (after == '\0' || after == ',' || after == ' ')
            return true;
    }
    return false;
}

static void add_file_headers(struct MHD_Response *response, const result_file *file)
{
    char disposition[320];
    snprintf(disposition, sizeof disposition, "attachment; filename=\"%s\"", file->name);
    MHD_add_response_header(response, MHD_HTTP_HEADER_ETAG, file->etag);
    MHD_add_response_header(response, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition);
}

static enum MHD_Result send_not_modified(ms_http_request *request, const result_file *file)
{
    struct MHD_Response *response = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
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
    if (strcmp(request->method, "HEAD") != 0)
        request->file_bytes = length;
    return ms_http_send(request, status, response);
}

enum MHD_Result ms_download_result(ms_http_request *request, const char *job_id)
{
    ms_service *service = request->service;
    result_file file;
    ms_status status = find_result(service, job_id, &file);
    if (status == MS_ERR_JOB_NOT_FOUND)
        return send_code(request, status, "no such job", NULL);
    ms_http_set_job_id(request, job_id);
    if (status == MS_ERR_RESULT_NOT_READY)
        return send_code(request, status, "the job has not succeeded (yet)", NULL);
    if (etag_matches(ms_http_header(request, MHD_HTTP_HEADER_IF_NONE_MATCH), file.etag))
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
        return send_code(request, MS_ERR_IO, "the result file is missing on the server", NULL);
    }
    return send_file(request, &file, fd, (uint64_t)info.st_size);
}
