/* Options of `mergesvd serve` (service-contract.md).  Parsed into a plain
 * struct so the parser can be tested without starting anything. */
#ifndef MS_SERVE_OPTIONS_H
#define MS_SERVE_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { MS_SERVE_MAX_MODEL_ROOTS = 32 };

typedef struct ms_serve_options {
    char *listen_host;            /* "127.0.0.1" */
    int listen_port;              /* 7870; 0 picks a free port */
    size_t model_root_count;
    char *model_roots[MS_SERVE_MAX_MODEL_ROOTS];   /* as given ("./models") */
    char *data_dir;               /* "./data" */
    int workers;                  /* jobs running at once, 1 */
    int queue_size;               /* queued jobs before 429, 64 */
    int job_threads;              /* threads per job; 0 = cores / workers */
    int http_threads;             /* libmicrohttpd threads; 0 = ms_serve_http_threads */
    int connection_limit;         /* open connections, 512 */
    int connection_timeout;       /* idle seconds before a client is dropped, 30 */
    char *token_file;             /* NULL: no auth (loopback only) */
    int grace_seconds;            /* running jobs may finish this long at shutdown, 30 */
    char *openapi_path;           /* NULL: search the default places */
    int job_nice;                 /* nice value of job threads */
    int http_nice;                /* nice value of HTTP threads */
    bool access_log;              /* one line per request, true */
    uint64_t keep_results_bytes;  /* results kept at most (bytes); 0 = no limit */
    uint64_t cache_bytes;         /* rotate decomposition cache at most (bytes) */
    int64_t keep_results_seconds; /* results kept at most this long after they finish; 0 = none */
    char *webui_url;              /* --webui: the web UI's base URL, no trailing slash; NULL: none */
    char *webui_checkpoints;      /* --webui-checkpoints: where merges for it are written */
    int webui_keep;               /* --webui-keep: newest merges kept there, 2 */
    int webui_timeout;            /* --webui-timeout: seconds per call to the web UI, 600 */
    int request_timeout;           /* seconds to send a whole request (line, headers, body), 10 */
    int connections_per_address;  /* open connections from one client address, 64; 0 = any */
    bool help;
} ms_serve_options;

/* Fills defaults, then parses argv[1..argc-1] ("--name value", "--name=value",
 * dashes or underscores).  On a usage error writes a one-line reason into
 * message and returns false. */
bool ms_serve_options_parse(int argc, char **argv, ms_serve_options *options,
                            char *message, size_t message_size);

void ms_serve_options_free(ms_serve_options *options);

void ms_serve_options_usage(FILE *stream);

/* A byte size: digits, optionally followed by K, M, G or T (1024-based, either
 * case, "KiB" spellings too).  False when it is not one or overflows 64 bits. */
bool ms_serve_parse_size(const char *text, uint64_t *bytes);

/* Splits "HOST:PORT", "[v6]:PORT" or ":PORT"; host is malloced. */
bool ms_serve_parse_listen(const char *text, char **host, int *port);

/* The HTTP threads to run: --http-threads, or half the cores (at least 1).
 * Polls are light: one thread answers the requests that arrived together in
 * one wakeup, where more threads would each wake for a few.  Measured on 2
 * cores at 5000 polls/s during a resize: 1 thread 29 us of CPU per request,
 * p99 4.9 ms, job slowed 10 %; 4 threads 39 us, p99 6.5 ms, job slowed 16 %. */
int ms_serve_http_threads(const ms_serve_options *options);

#endif
