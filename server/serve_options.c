#include "serve_options.h"

#include "core/merge/merge.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum option_id {
    OPT_LISTEN, OPT_MODELS, OPT_DATA, OPT_WORKERS, OPT_QUEUE_SIZE, OPT_JOB_THREADS,
    OPT_HTTP_THREADS, OPT_CONNECTION_LIMIT, OPT_CONNECTION_TIMEOUT, OPT_TOKEN_FILE,
    OPT_GRACE_SECONDS, OPT_OPENAPI, OPT_NO_ACCESS_LOG, OPT_JOB_NICE, OPT_HTTP_NICE, OPT_HELP,
    OPT_KEEP_RESULTS_BYTES, OPT_KEEP_RESULTS_SECONDS, OPT_CACHE_BYTES,
    OPT_WEBUI, OPT_WEBUI_CHECKPOINTS, OPT_WEBUI_KEEP, OPT_WEBUI_TIMEOUT,
    OPT_REQUEST_TIMEOUT, OPT_CONNECTIONS_PER_ADDRESS,
} option_id;

typedef struct option_spec {
    const char *name;     /* dashed spelling, without "--" */
    option_id id;
    bool takes_value;
    const char *help;
} option_spec;

static const option_spec option_specs[] = {
    {"listen", OPT_LISTEN, true, "HOST:PORT to listen on (default 127.0.0.1:7870; port 0 picks one)"},
    {"models", OPT_MODELS, true, "models root, repeatable (default ./models)"},
    {"data", OPT_DATA, true, "data directory: jobs.sqlite3 and results/ (default ./data)"},
    {"workers", OPT_WORKERS, true, "jobs running at once (default 1)"},
    {"queue-size", OPT_QUEUE_SIZE, true, "queued jobs before 429 queue_full (1 or more; default 64)"},
    {"job-threads", OPT_JOB_THREADS, true, "threads per job (default: cores / workers)"},
    {"http-threads", OPT_HTTP_THREADS, true, "HTTP threads (default: half the cores, at least 1)"},
    {"connection-limit", OPT_CONNECTION_LIMIT, true, "open connections at most (default 512)"},
    {"connection-timeout", OPT_CONNECTION_TIMEOUT, true,
     "seconds a connection may go without progress (default 30; downloads: at least 600)"},
    {"request-timeout", OPT_REQUEST_TIMEOUT, true,
     "seconds a client has to send a whole request (line, headers, body; default 10)"},
    {"connections-per-address", OPT_CONNECTIONS_PER_ADDRESS, true,
     "open connections from one client address at most (default 64; 0: no limit)"},
    {"token-file", OPT_TOKEN_FILE, true, "file whose first line is the bearer token"},
    {"grace-seconds", OPT_GRACE_SECONDS, true, "on SIGTERM, time running jobs get to finish (default 30)"},
    {"openapi", OPT_OPENAPI, true, "openapi.yaml served at GET /openapi.yaml"},
    {"no-access-log", OPT_NO_ACCESS_LOG, false, "no log line per HTTP request"},
    {"job-nice", OPT_JOB_NICE, true, "nice value (0-19) of job threads (default 0)"},
    {"http-nice", OPT_HTTP_NICE, true, "nice value (0-19) of HTTP threads (default 0)"},
    {"keep-results-bytes", OPT_KEEP_RESULTS_BYTES, true,
     "delete the oldest finished results beyond this size (K, M, G, T: 1024-based; default no limit)"},
    {"keep-results-seconds", OPT_KEEP_RESULTS_SECONDS, true,
     "delete finished results this many seconds after they finish (default never)"},
    {"cache-bytes", OPT_CACHE_BYTES, true,
     "rotate decomposition cache in DATA/rotate-cache at most this size (default 16G; 0: none kept)"},
    {"webui", OPT_WEBUI, true,
     "base URL of a web UI (http://127.0.0.1:7860): /sdapi and /bbwm pass through to it"},
    {"webui-checkpoints", OPT_WEBUI_CHECKPOINTS, true,
     "folder the web UI lists checkpoints from: merges it loads are written there"},
    {"webui-keep", OPT_WEBUI_KEEP, true, "merges for the web UI kept in that folder (default 2)"},
    {"webui-timeout", OPT_WEBUI_TIMEOUT, true,
     "seconds a call to the web UI may take (default 600)"},
    {"help", OPT_HELP, false, "show this help"},
};
enum { OPTION_SPEC_COUNT = sizeof option_specs / sizeof option_specs[0] };

void ms_serve_options_usage(FILE *stream)
{
    fprintf(stream, "usage: mergesvd serve [OPTIONS]\n\noptions (dashes or underscores):\n");
    for (size_t i = 0; i < OPTION_SPEC_COUNT; i++)
        fprintf(stream, "  --%-20s %s\n", option_specs[i].name, option_specs[i].help);
}

/* "queue_size" and "queue-size" are the same option. */
static bool option_name_equal(const char *given, size_t given_length, const char *spec)
{
    if (strlen(spec) != given_length)
        return false;
    for (size_t i = 0; i < given_length; i++) {
        char c = given[i] == '_' ? '-' : given[i];
        if (c != spec[i])
            return false;
    }
    return true;
}

static const option_spec *find_option(const char *name, size_t length)
{
    for (size_t i = 0; i < OPTION_SPEC_COUNT; i++)
        if (option_name_equal(name, length, option_specs[i].name))
            return &option_specs[i];
    return NULL;
}

static bool parse_int(const char *text, int min, int max, int *value)
{
    if (text == NULL || *text == '\0')
        return false;
    errno = 0;
    char *end = NULL;
    long parsed = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || parsed < min || parsed > max)
        return false;
    *value = (int)parsed;
    return true;
}

bool ms_serve_parse_listen(const char *text, char **host, int *port)
{
    const char *colon = strrchr(text, ':');
    if (colon == NULL)
        return false;
    const char *host_start = text;
    size_t host_length = (size_t)(colon - text);
    if (host_length >= 2 && text[0] == '[' && text[host_length - 1] == ']') {
        host_start++;
        host_length -= 2;
    } else if (memchr(text, ':', host_length) != NULL) {
        return false;   /* a bare IPv6 address needs brackets */
    }
    if (!parse_int(colon + 1, 0, 65535, port))
        return false;
    *host = host_length == 0 ? strdup("127.0.0.1") : strndup(host_start, host_length);
    return *host != NULL;
}

bool ms_serve_parse_size(const char *text, uint64_t *bytes)
{
    if (text == NULL || *text < '0' || *text > '9')
        return false;   /* no sign, no blanks: strtoull would take both */
    errno = 0;
    char *end = NULL;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0)
        return false;
    static const char units[] = "KMGT";
    const char *unit = *end != '\0' ? strchr(units, toupper((unsigned char)*end)) : NULL;
    unsigned shift = 0;
    if (unit != NULL) {
        shift = 10 * (unsigned)(unit - units + 1);
        end++;
        if (strcmp(end, "iB") == 0)
            end += 2;
    }
    if (*end != '\0' || value > (UINT64_MAX >> shift))
        return false;
    *bytes = (uint64_t)value << shift;
    return true;
}

/* Limits of 0 would mean "keep nothing": refused as the typing mistake
 * they most likely are (no limit is the default: leave the option out). */
static bool apply_retention_option(ms_serve_options *options, option_id id, const char *value,
                                   char *message, size_t message_size)
{
    if (id == OPT_KEEP_RESULTS_BYTES) {
        uint64_t bytes = 0;
        if (ms_serve_parse_size(value, &bytes) && bytes > 0) {
            options->keep_results_bytes = bytes;
            return true;
        }
        snprintf(message, message_size, "invalid value '%s' (want a size above 0 in bytes, "
                 "optionally with K, M, G or T, 1024-based, e.g. 20G)", value);
        return false;
    }
    int seconds = 0;
    if (parse_int(value, 1, INT_MAX, &seconds)) {
        options->keep_results_seconds = seconds;
        return true;
    }
    snprintf(message, message_size, "invalid value '%s' (want whole seconds, 1 to %d)", value,
             INT_MAX);
    return false;
}

static void set_string(char **slot, const char *value)
{
    free(*slot);
    *slot = strdup(value);
}

/* An http(s) URL with a host; kept without its trailing slashes, since
 * the API paths are appended to it. */
static bool apply_webui_url(ms_serve_options *options, const char *value)
{
    size_t scheme = strncmp(value, "http://", 7) == 0    ? 7
                    : strncmp(value, "https://", 8) == 0 ? 8
                                                         : 0;
    size_t length = strlen(value);
    while (length > scheme && value[length - 1] == '/')
        length--;
    if (scheme == 0 || length == scheme || strpbrk(value, " \t\r\n?#") != NULL)
        return false;
    free(options->webui_url);
    options->webui_url = strndup(value, length);
    return options->webui_url != NULL;
}

static bool apply_webui_option(ms_serve_options *options, option_id id, const char *value,
                               char *message, size_t message_size)
{
    bool ok = true;
    if (id == OPT_WEBUI) {
        ok = apply_webui_url(options, value);
        if (!ok) {
            snprintf(message, message_size, "invalid value '%s' (want http://HOST:PORT or "
                     "https://HOST:PORT, optionally with a path)", value);
            return false;
        }
    } else if (id == OPT_WEBUI_CHECKPOINTS) {
        ok = *value != '\0';
        if (ok)
            set_string(&options->webui_checkpoints, value);
    } else if (id == OPT_WEBUI_KEEP) {
        ok = parse_int(value, 1, 1000000, &options->webui_keep);
    } else {
        ok = parse_int(value, 1, 86400, &options->webui_timeout);
    }
    if (!ok)
        snprintf(message, message_size, "invalid value '%s'", value);
    return ok;
}

static bool apply_option(ms_serve_options *options, option_id id, const char *value,
                         char *message, size_t message_size)
{
    bool ok = true;
    switch (id) {
    case OPT_LISTEN: {
        char *host = NULL;
        ok = ms_serve_parse_listen(value, &host, &options->listen_port);
        if (ok) {
            free(options->listen_host);
            options->listen_host = host;
        }
        break;
    }
    case OPT_MODELS:
        if (options->model_root_count == MS_SERVE_MAX_MODEL_ROOTS) {
            snprintf(message, message_size, "at most %d --models roots", MS_SERVE_MAX_MODEL_ROOTS);
            return false;
        }
        ok = *value != '\0';
        if (ok)
            options->model_roots[options->model_root_count++] = strdup(value);
        break;
    case OPT_DATA: ok = *value != '\0'; if (ok) set_string(&options->data_dir, value); break;
    case OPT_WORKERS: ok = parse_int(value, 1, 64, &options->workers); break;
    /* 0 would answer every submit 429: a server that cannot take a job */
    case OPT_QUEUE_SIZE: ok = parse_int(value, 1, 1000000, &options->queue_size); break;
    case OPT_JOB_THREADS: ok = parse_int(value, 0, 1024, &options->job_threads); break;
    case OPT_HTTP_THREADS: ok = parse_int(value, 1, 256, &options->http_threads); break;
    case OPT_CONNECTION_LIMIT: ok = parse_int(value, 1, 100000, &options->connection_limit); break;
    case OPT_CONNECTION_TIMEOUT: ok = parse_int(value, 1, 86400, &options->connection_timeout); break;
    case OPT_TOKEN_FILE: set_string(&options->token_file, value); break;
    case OPT_GRACE_SECONDS: ok = parse_int(value, 0, 86400, &options->grace_seconds); break;
    case OPT_OPENAPI: set_string(&options->openapi_path, value); break;
    case OPT_NO_ACCESS_LOG: options->access_log = false; break;
    case OPT_JOB_NICE: ok = parse_int(value, 0, 19, &options->job_nice); break;
    case OPT_HTTP_NICE: ok = parse_int(value, 0, 19, &options->http_nice); break;
    case OPT_REQUEST_TIMEOUT: ok = parse_int(value, 1, 3600, &options->request_timeout); break;
    case OPT_CONNECTIONS_PER_ADDRESS:
        ok = parse_int(value, 0, 100000, &options->connections_per_address);
        break;
    case OPT_HELP: options->help = true; break;
    case OPT_KEEP_RESULTS_BYTES:
    case OPT_KEEP_RESULTS_SECONDS:
        return apply_retention_option(options, id, value, message, message_size);
    case OPT_CACHE_BYTES: ok = ms_serve_parse_size(value, &options->cache_bytes); break;
    case OPT_WEBUI:
    case OPT_WEBUI_CHECKPOINTS:
    case OPT_WEBUI_KEEP:
    case OPT_WEBUI_TIMEOUT:
        return apply_webui_option(options, id, value, message, message_size);
    }
    if (!ok)
        snprintf(message, message_size, "invalid value '%s'", value);
    return ok;
}

static void set_defaults(ms_serve_options *options)
{
    memset(options, 0, sizeof *options);
    options->listen_host = strdup("127.0.0.1");
    options->listen_port = 7870;
    options->data_dir = strdup("./data");
    options->workers = 1;
    options->queue_size = 64;
    options->cache_bytes = MS_ROTATE_CACHE_DEFAULT_BYTES;
    options->http_threads = 0;
    options->connection_limit = 512;
    options->connection_timeout = 30;
    options->grace_seconds = 30;
    options->access_log = true;
    options->job_nice = 0;
    options->http_nice = 0;
    options->webui_keep = 2;
    options->webui_timeout = 600;
    options->request_timeout = 10;
    options->connections_per_address = 64;
}

bool ms_serve_options_parse(int argc, char **argv, ms_serve_options *options,
                            char *message, size_t message_size)
{
    set_defaults(options);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(message, message_size, "unexpected argument '%s'", arg);
            return false;
        }
        const char *name = arg + 2;
        const char *equals = strchr(name, '=');
        size_t name_length = equals != NULL ? (size_t)(equals - name) : strlen(name);
        const option_spec *spec = find_option(name, name_length);
        if (spec == NULL) {
            snprintf(message, message_size, "unknown option '%s'", arg);
            return false;
        }
        const char *value = NULL;
        if (spec->takes_value) {
            if (equals != NULL) {
                value = equals + 1;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                snprintf(message, message_size, "option --%s needs a value", spec->name);
                return false;
            }
        } else if (equals != NULL) {
            snprintf(message, message_size, "option --%s takes no value", spec->name);
            return false;
        }
        if (!apply_option(options, spec->id, value, message, message_size)) {
            size_t used = strlen(message);
            snprintf(message + used, message_size - used, " for --%s", spec->name);
            return false;
        }
    }
    if (options->model_root_count == 0)
        options->model_roots[options->model_root_count++] = strdup("./models");
    /* one without the other cannot load a merge into the web UI */
    if ((options->webui_url == NULL) != (options->webui_checkpoints == NULL)) {
        snprintf(message, message_size, "--webui and --webui-checkpoints go together");
        return false;
    }
    return true;
}

void ms_serve_options_free(ms_serve_options *options)
{
    free(options->listen_host);
    free(options->data_dir);
    free(options->token_file);
    free(options->openapi_path);
    free(options->webui_url);
    free(options->webui_checkpoints);
    for (size_t i = 0; i < options->model_root_count; i++)
        free(options->model_roots[i]);
    memset(options, 0, sizeof *options);
}

int ms_serve_http_threads(const ms_serve_options *options)
{
    if (options->http_threads > 0)
        return options->http_threads;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores >= 4 ? (int)(cores / 2) : 1;
}
