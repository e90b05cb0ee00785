/* server: serve options, bearer token checks, metrics exposition, text and
 * number formatting, the buffered log. */
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "server/http/auth.h"
#include "server/clock.h"
#include "server/http/http.h"
#include "server/http/http_worker.h"
#include "server/log.h"
#include "server/http/routes.h"
#include "server/metrics.h"
#include "server/printable.h"
#include "server/serve_options.h"
#include "server/text.h"
#include "server/thread_priority.h"
#include "check_support.h"

static bool parse(ms_serve_options *options, const char *const *args)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"serve";
    for (; args[argc - 1] != NULL; argc++)
        argv[argc] = (char *)args[argc - 1];
    char message[256];
    return ms_serve_options_parse(argc, argv, options, message, sizeof message);
}

START_TEST(test_options_defaults)
{
    ms_serve_options options;
    const char *args[] = {NULL};
    ck_assert(parse(&options, args));
    ck_assert_str_eq(options.listen_host, "127.0.0.1");
    ck_assert_int_eq(options.listen_port, 7870);
    ck_assert_uint_eq(options.model_root_count, 1);
    ck_assert_str_eq(options.model_roots[0], "./models");
    ck_assert_str_eq(options.data_dir, "./data");
    ck_assert_int_eq(options.workers, 1);
    ck_assert_int_eq(options.queue_size, 64);
    ck_assert_int_eq(options.grace_seconds, 30);
    ck_assert_ptr_null(options.token_file);
    ck_assert_int_eq(options.job_nice, 0);
    ck_assert_int_eq(options.http_nice, 0);
    /* HTTP threads: half the cores, at least one, unless given */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    ck_assert_int_eq(ms_serve_http_threads(&options), cores >= 4 ? (int)(cores / 2) : 1);
    ms_serve_options_free(&options);
    const char *given[] = {"--http-threads", "3", NULL};
    ck_assert(parse(&options, given));
    ck_assert_int_eq(ms_serve_http_threads(&options), 3);
    ms_serve_options_free(&options);
}
END_TEST

START_TEST(test_options_spellings)
{
    ms_serve_options options;
    const char *args[] = {"--listen=0.0.0.0:0", "--models", "/a", "--models=/b", "--queue_size",
                          "3", "--queue-size=4", "--token_file", "t", "--grace-seconds", "0",
                          "--workers=2", "--no_access_log", "--openapi", "o.yaml", NULL};
    ck_assert(parse(&options, args));
    ck_assert_str_eq(options.listen_host, "0.0.0.0");
    ck_assert_int_eq(options.listen_port, 0);
    ck_assert_uint_eq(options.model_root_count, 2);
    ck_assert_str_eq(options.model_roots[1], "/b");
    ck_assert_int_eq(options.queue_size, 4);
    ck_assert_str_eq(options.token_file, "t");
    ck_assert_int_eq(options.grace_seconds, 0);
    ck_assert_int_eq(options.workers, 2);
    ck_assert(!options.access_log);
    ck_assert_str_eq(options.openapi_path, "o.yaml");
    ms_serve_options_free(&options);
    const char *v6[] = {"--listen", "[::1]:8080", NULL};
    ck_assert(parse(&options, v6));
    ck_assert_str_eq(options.listen_host, "::1");
    ck_assert_int_eq(options.listen_port, 8080);
    ms_serve_options_free(&options);
}
END_TEST

START_TEST(test_options_refused)
{
    const char *const bad[][4] = {
        {"--workers", "0", NULL}, {"--workers", "x", NULL}, {"--listen", "nohost", NULL},
        {"--listen", "h:70000", NULL}, {"--listen", "::1:80", NULL}, {"--bogus", NULL},
        {"--models", NULL}, {"--help=1", NULL}, {"positional", NULL},
        {"--queue-size", "-1", NULL}, {"--workers", "1x", NULL}, {"--job-nice", "20", NULL},
        {"--http-nice", "-1", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms_serve_options options;
        ck_assert_msg(!parse(&options, bad[i]), "accepted %s %s", bad[i][0],
                      bad[i][1] ? bad[i][1] : "");
        ms_serve_options_free(&options);
    }
}
END_TEST

START_TEST(test_options_webui)
{
    ms_serve_options options;
    const char *none[] = {NULL};
    ck_assert(parse(&options, none));
    ck_assert_ptr_null(options.webui_url);
    ck_assert_ptr_null(options.webui_checkpoints);
    ck_assert_int_eq(options.webui_keep, 2);
    ck_assert_int_eq(options.webui_timeout, 600);
    ms_serve_options_free(&options);
    const char *given[] = {"--webui", "http://127.0.0.1:7860//", "--webui_checkpoints", "/m/sd",
                           "--webui-keep=5", "--webui-timeout", "30", NULL};
    ck_assert(parse(&options, given));
    ck_assert_str_eq(options.webui_url, "http://127.0.0.1:7860");
    ck_assert_str_eq(options.webui_checkpoints, "/m/sd");
    ck_assert_int_eq(options.webui_keep, 5);
    ck_assert_int_eq(options.webui_timeout, 30);
    ms_serve_options_free(&options);
    const char *with_path[] = {"--webui", "https://h/webui/", "--webui-checkpoints", "d", NULL};
    ck_assert(parse(&options, with_path));
    ck_assert_str_eq(options.webui_url, "https://h/webui");
    ms_serve_options_free(&options);
    const char *const bad[][5] = {
        {"--webui", "http://h:7860", NULL},             /* without the folder */
        {"--webui-checkpoints", "d", NULL},             /* without the URL */
        {"--webui", "ftp://h", "--webui-checkpoints", "d", NULL},
        {"--webui", "http://", "--webui-checkpoints", "d", NULL},
        {"--webui", "h:7860", "--webui-checkpoints", "d", NULL},
        {"--webui", "http://h/?x=1", "--webui-checkpoints", "d", NULL},
        {"--webui-keep", "0", NULL},
        {"--webui-timeout", "0", NULL},
        {"--webui-checkpoints", "", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(!parse(&options, bad[i]), "accepted %s %s", bad[i][0],
                      bad[i][1] ? bad[i][1] : "");
        ms_serve_options_free(&options);
    }
}
END_TEST

START_TEST(test_pass_through_paths)
{
    const char *const passed[] = {"/sdapi/v1/txt2img", "/sdapi/v1/progress?skip_current_image=1",
                                  "/bbwm/other", "/bbwm/merge-models/more", "/sdapi/"};
    for (size_t i = 0; i < sizeof passed / sizeof passed[0]; i++)
        ck_assert_msg(ms_routes_may_pass_through(passed[i]), "%s", passed[i]);
    const char *const kept[] = {"/bbwm/merge-models", "/bbwm/merge-models?x=1", "/v1/jobs",
                                "/sdapi", "/sdapix/v1", "http://elsewhere/sdapi/v1/txt2img",
                                "//elsewhere/sdapi/", "", "/healthz"};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        ck_assert_msg(!ms_routes_may_pass_through(kept[i]), "%s", kept[i]);
}
END_TEST

START_TEST(test_auth)
{
    ck_assert(ms_auth_check("s3cret", "Bearer s3cret"));
    ck_assert(ms_auth_check("s3cret", "bearer s3cret"));
    ck_assert(ms_auth_check("s3cret", "Bearer   s3cret  "));
    ck_assert(!ms_auth_check("s3cret", "Bearer s3cre"));
    ck_assert(!ms_auth_check("s3cret", "Bearer s3cret2"));
    ck_assert(!ms_auth_check("s3cret", "Basic s3cret"));
    ck_assert(!ms_auth_check("s3cret", "s3cret"));
    ck_assert(!ms_auth_check("s3cret", "Bearer "));
    ck_assert(!ms_auth_check("s3cret", NULL));
    ck_assert(!ms_auth_check("s3cret", ""));
}
END_TEST

START_TEST(test_token_file)
{
    const char *tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/test_token_XXXXXX", tmp);
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "  tok en\t\nsecond line\n", 22), 22);
    close(fd);
    char message[256];
    char *token = ms_auth_load_token(path, message, sizeof message);
    ck_assert_str_eq(token, "tok en");
    free(token);
    FILE *file = fopen(path, "w");
    fputs("   \n", file);
    fclose(file);
    ck_assert_ptr_null(ms_auth_load_token(path, message, sizeof message));
    unlink(path);
    ck_assert_ptr_null(ms_auth_load_token(path, message, sizeof message));
}
END_TEST

START_TEST(test_metrics)
{
    ms_metrics metrics;
    ms_metrics_init(&metrics);
    ms_metrics_count_request(&metrics, 200);
    ms_metrics_count_request(&metrics, 200);
    ms_metrics_count_request(&metrics, 404);
    ms_metrics_count_request(&metrics, 9999);   /* ignored, no crash */
    ms_metrics_add_bytes(&metrics, 1000);
    ms_metrics_add_bytes(&metrics, 24);
    ms_metrics_observe_duration(&metrics, MS_JOB_KIND_RESIZE, 0.3);
    ms_metrics_observe_duration(&metrics, MS_JOB_KIND_RESIZE, 7);
    size_t counts[MS_JOB_KIND_COUNT][MS_JOB_STATE_COUNT] = {{0}};
    counts[MS_JOB_KIND_RESIZE][MS_JOB_SUCCEEDED] = 5;
    char *text = ms_metrics_render(&metrics, counts, 3);
    ck_assert_ptr_nonnull(text);
    const char *expected[] = {
        "mergesvd_jobs{kind=\"resize\",state=\"succeeded\"} 5\n",
        "mergesvd_jobs{kind=\"merge\",state=\"queued\"} 0\n",
        "mergesvd_queue_depth 3\n",
        "mergesvd_http_requests_total{status=\"200\"} 2\n",
        "mergesvd_http_requests_total{status=\"404\"} 1\n",
        "mergesvd_bytes_served_total 1024\n",
        "mergesvd_job_duration_seconds_bucket{kind=\"resize\",le=\"0.25\"} 0\n",
        "mergesvd_job_duration_seconds_bucket{kind=\"resize\",le=\"0.5\"} 1\n",
        "mergesvd_job_duration_seconds_bucket{kind=\"resize\",le=\"10\"} 2\n",
        "mergesvd_job_duration_seconds_bucket{kind=\"resize\",le=\"+Inf\"} 2\n",
        "mergesvd_job_duration_seconds_count{kind=\"resize\"} 2\n",
        "# TYPE mergesvd_job_duration_seconds histogram\n",
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        ck_assert_msg(strstr(text, expected[i]) != NULL, "missing: %s", expected[i]);
    ck_assert_ptr_null(strstr(text, "status=\"9999\""));
    /* every line is a comment or "name{labels} value" */
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n"))
        ck_assert_msg(line[0] == '#' || strncmp(line, "mergesvd_", 9) == 0, "line: %s", line);
    free(text);
    ms_metrics_destroy(&metrics);
}
END_TEST

START_TEST(test_text_builder)
{
    ms_text text;
    ms_text_init(&text, 0);
    char expected[5000] = "";
    for (int i = 0; i < 300; i++) {
        char piece[32];
        snprintf(piece, sizeof piece, "%d,", i);
        strcat(expected, piece);
        if (i % 2 == 0)
            ms_text_printf(&text, "%d,", i);
        else
            ms_text_puts(&text, piece);
    }
    char long_piece[300];
    memset(long_piece, 'z', sizeof long_piece - 1);
    long_piece[sizeof long_piece - 1] = '\0';
    ms_text_printf(&text, "[%s]", long_piece);   /* longer than the spare room */
    strcat(expected, "[");
    strcat(expected, long_piece);
    strcat(expected, "]");
    ck_assert_uint_eq(text.length, strlen(expected));
    char *result = ms_text_take(&text);
    ck_assert_str_eq(result, expected);
    free(result);
    ck_assert_ptr_null(text.data);
}
END_TEST

START_TEST(test_shared_text)
{
    ck_assert_ptr_null(ms_shared_text_new(NULL));
    ms_shared_text *text = ms_shared_text_new("{\"a\":1}");
    ck_assert_uint_eq(text->length, 7);
    ms_shared_text *other = ms_shared_text_retain(text);
    ck_assert_ptr_eq(other, text);
    ms_shared_text_release(text);
    ck_assert_str_eq(other->data, "{\"a\":1}");   /* still alive: one reference left */
    ms_shared_text_release(other);
    ms_shared_text_release(NULL);
}
END_TEST


typedef struct fixed_case {
    double value;
    int decimals;
    const char *expected;
} fixed_case;

static const fixed_case fixed_cases[] = {
    {0.0, 6, "0"},
    {1.0, 6, "1"},
    {0.5, 6, "0.5"},
    {0.25, 3, "0.25"},
    {1.0 / 3.0, 6, "0.333333"},
    {2.0 / 3.0, 6, "0.666667"},
    {0.0000004, 6, "0"},
    {0.0000006, 6, "0.000001"},
    {0.00001, 6, "0.00001"},
    {0.9999996, 6, "1"},
    {12.3456, 3, "12.346"},
    {12.0004, 3, "12"},
    {123456789.0, 0, "123456789"},
    {3.7, 0, "4"},
    {1.5, -2, "2"},
    {0.123456789123, 12, "0.123456789"},
    {1e15, 3, "1000000000000000"},
    {-1.5, 3, "-1.5"},
};

START_TEST(test_fixed_numbers)
{
    const fixed_case *item = &fixed_cases[_i];
    ms_text text;
    ms_text_init(&text, 0);
    ms_text_put_fixed(&text, item->value, item->decimals);
    char *result = ms_text_take(&text);
    ck_assert_str_eq(result, item->expected);
    free(result);
}
END_TEST

START_TEST(test_fixed_not_finite)
{
    ms_text text;
    ms_text_init(&text, 0);
    ms_text_put_fixed(&text, NAN, 3);
    ms_text_puts(&text, " ");
    ms_text_put_fixed(&text, INFINITY, 3);
    char *result = ms_text_take(&text);
    ck_assert_str_eq(result, "nan inf");   /* callers never pass these; no crash */
    free(result);
}
END_TEST

START_TEST(test_unsigned_numbers)
{
    ms_text text;
    ms_text_init(&text, 0);
    ms_text_put_uint(&text, 0);
    ms_text_puts(&text, ",");
    ms_text_put_uint(&text, 7);
    ms_text_puts(&text, ",");
    ms_text_put_uint(&text, 1234567890ULL);
    ms_text_puts(&text, ",");
    ms_text_put_uint(&text, 18446744073709551615ULL);
    char *result = ms_text_take(&text);
    ck_assert_str_eq(result, "0,7,1234567890,18446744073709551615");
    free(result);
}
END_TEST

START_TEST(test_clock_format)
{
    char text[MS_CLOCK_TEXT_SIZE];
    ms_clock_format(0, text);
    ck_assert_str_eq(text, "1970-01-01T00:00:00.000Z");
    ms_clock_format(1796040000123LL, text);
    ck_assert_str_eq(text, "2026-11-30T12:00:00.123Z");
    ms_clock_format(951782400999LL, text);          /* a leap day */
    ck_assert_str_eq(text, "2000-02-29T00:00:00.999Z");
    ms_clock_format(-1, text);                      /* before the epoch */
    ck_assert_str_eq(text, "1969-12-31T23:59:59.999Z");
    ms_clock_format(253402300800000LL, text);       /* year 10000: the printf path */
    ck_assert_str_eq(text, "10000-01-01T00:00:00.000Z");
}
END_TEST

/* Everything the log wrote to the pipe so far. */
static char *drain(int fd)
{
    static char bytes[512 * 1024];
    size_t used = 0;
    ssize_t got;
    while (used < sizeof bytes - 1 && (got = read(fd, bytes + used, sizeof bytes - 1 - used)) > 0)
        used += (size_t)got;
    bytes[used] = '\0';
    return bytes;
}

/* The log goes to a pipe (1 MiB, non-blocking) that drain() reads. */
static void capture_log(int pipe_fds[2])
{
    ck_assert_int_eq(pipe2(pipe_fds, O_NONBLOCK), 0);
    fcntl(pipe_fds[1], F_SETPIPE_SZ, 1024 * 1024);
    ms_log_set_fd(pipe_fds[1]);
}

static void release_log(int pipe_fds[2])
{
    ms_log_set_fd(STDERR_FILENO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}

START_TEST(test_log_order)
{
    int pipe_fds[2];
    capture_log(pipe_fds);
    ms_log_buffered("request 1", 9);
    ms_log_buffered("request 2", 9);
    ck_assert_str_eq(drain(pipe_fds[0]), "");          /* buffered: nothing yet */
    ms_log("job %s", "done");                           /* writes the buffered lines first */
    ck_assert_str_eq(drain(pipe_fds[0]), "request 1\nrequest 2\njob done\n");
    ms_log_buffered("request 3", 9);
    ms_log_flush();
    ck_assert_str_eq(drain(pipe_fds[0]), "request 3\n");
    ms_log_flush();                                     /* nothing buffered: writes nothing */
    ck_assert_str_eq(drain(pipe_fds[0]), "");
    release_log(pipe_fds);
}
END_TEST

START_TEST(test_log_full_buffer)
{
    int pipe_fds[2];
    capture_log(pipe_fds);
    /* 100-byte lines: 2621 fit the 256 KiB buffer; the callers never write,
     * the lines past that are dropped, and the flush says how many */
    char line[99];
    memset(line, 'x', sizeof line);
    for (int i = 0; i < 3000; i++)
        ms_log_buffered(line, sizeof line);
    ck_assert_str_eq(drain(pipe_fds[0]), "");
    ms_log_flush();
    char *written = drain(pipe_fds[0]);
    const char *note = written + 2621 * 100;
    ck_assert_uint_eq(strlen(written), 2621 * 100 + strlen(note));
    ck_assert_int_eq(written[2621 * 100 - 1], '\n');
    ck_assert_str_eq(note, "log: 379 access-log line(s) dropped: stderr is not keeping up\n");
    ms_log_buffered(line, sizeof line);                 /* room again, count reset */
    ms_log_flush();
    ck_assert_uint_eq(strlen(drain(pipe_fds[0])), 100);
    /* a line longer than the limit is cut, still one line, either way */
    char long_line[5000];
    memset(long_line, 'y', sizeof long_line - 1);
    long_line[sizeof long_line - 1] = '\0';
    ms_log("%s", long_line);
    char *cut = drain(pipe_fds[0]);
    ck_assert_uint_eq(strlen(cut), 2047);
    ck_assert_int_eq(cut[2046], '\n');
    ms_log_buffered(long_line, sizeof long_line - 1);
    ms_log_flush();
    cut = drain(pipe_fds[0]);
    ck_assert_uint_eq(strlen(cut), 2047);
    ck_assert_int_eq(cut[2046], '\n');
    release_log(pipe_fds);
}
END_TEST

/* Control characters become escapes; an escape is never cut in two, and the
 * result always ends in a NUL. */
START_TEST(test_printable)
{
    char out[64];
    ck_assert_str_eq(ms_printable("plain \xc3\xa9 utf-8", out, sizeof out), "plain \xc3\xa9 utf-8");
    ck_assert_str_eq(ms_printable("a\nb\rc\td\x1b[2J\x7f\x01", out, sizeof out),
                     "a\\nb\\rc\\td\\x1b[2J\\x7f\\x01");
    ck_assert_str_eq(ms_printable(NULL, out, sizeof out), "");
    ck_assert_uint_eq(ms_printable_copy("abcdef", 3, out, sizeof out), 3);   /* length bound */
    ck_assert_str_eq(out, "abc");
    ck_assert_uint_eq(ms_printable_copy("ab\ncd", 10, out, 4), 2);           /* "\n" does not fit */
    ck_assert_str_eq(out, "ab");
    ck_assert_uint_eq(ms_printable_copy("ab\ncd", 10, out, 5), 4);
    ck_assert_str_eq(out, "ab\\n");
    ck_assert_uint_eq(ms_printable_copy("\x02", 1, out, 4), 0);              /* \x02 needs 5 */
    ck_assert_str_eq(out, "");
    ck_assert_uint_eq(ms_printable_copy("xyz", 3, out, 1), 0);
    char wide[MS_PRINTABLE_SIZE(3)];
    ck_assert_uint_eq(ms_printable_copy("\x01\x02\x03", 3, wide, sizeof wide), 12);
    ck_assert_str_eq(wide, "\\x01\\x02\\x03");
}
END_TEST

/* A message that quotes a name from a file cannot forge a second log line. */
START_TEST(test_log_escapes_controls)
{
    int pipe_fds[2];
    capture_log(pipe_fds);
    ms_log("job %s failed: tensor \"%s\"", "abc",
           "x\njob 00000000 resize succeeded\n\x1b[2J.lora_up.weight");
    ck_assert_str_eq(drain(pipe_fds[0]),
                     "job abc failed: tensor \"x\\njob 00000000 resize succeeded\\n\\x1b[2J"
                     ".lora_up.weight\"\n");
    release_log(pipe_fds);
}
END_TEST

/* A handler that defers on a condition (a finished job's GET: "read the
 * report on the worker") must see, when ms_http_defer runs it on the HTTP
 * thread because the worker is stopping, that it already runs deferred:
 * otherwise it defers again, forever (a shutdown once hung so). */
static int handler_calls;

static enum MHD_Result defer_unless_deferred(ms_http_request *request)
{
    handler_calls++;
    if (!request->deferred && handler_calls < 3)
        return ms_http_defer(request, request->worker, defer_unless_deferred);
    return MHD_YES;
}

START_TEST(test_defer_while_stopping)
{
    ms_http_worker worker;
    memset(&worker, 0, sizeof worker);
    ms_http_request request;
    memset(&request, 0, sizeof request);
    request.worker = &worker;   /* where the handler defers to */

    handler_calls = 0;           /* never started: runs here, deferred */
    ck_assert_int_eq(ms_http_defer(&request, &worker, defer_unless_deferred), MHD_YES);
    ck_assert_int_eq(handler_calls, 1);
    ck_assert(!request.deferred);

    ck_assert_int_eq(ms_http_worker_start(&worker), 0);
    ms_http_worker_stop(&worker, 0);
    handler_calls = 0;           /* stopping: runs here, deferred */
    ck_assert_int_eq(ms_http_defer(&request, &worker, defer_unless_deferred), MHD_YES);
    ck_assert_int_eq(handler_calls, 1);
    ck_assert(!request.deferred);
    ck_assert(request.deferred_handler == NULL);          /* not queued */
    ms_http_worker_stop(&worker, 0);                     /* again: nothing */
    ms_http_worker_destroy(&worker);
    ms_http_worker_destroy(&worker);                     /* again: nothing */
}
END_TEST

/* Nice values only go up; the short slice is taken where the kernel has
 * custom slices (6.12 and later) and read back with sched_getattr. */
START_TEST(test_thread_priority)
{
    pid_t thread = (pid_t)syscall(SYS_gettid);
    int before = getpriority(PRIO_PROCESS, (id_t)thread);
    ms_thread_set_nice(before + 3 > 19 ? 19 : before + 3);
    int raised = getpriority(PRIO_PROCESS, (id_t)thread);
    ck_assert_int_eq(raised, before + 3 > 19 ? 19 : before + 3);
    ms_thread_set_nice(0);                       /* never lowered */
    ck_assert_int_eq(getpriority(PRIO_PROCESS, (id_t)thread), raised);

    ms_thread_request_short_slice();
    ck_assert_int_eq(getpriority(PRIO_PROCESS, (id_t)thread), raised);   /* nice kept */
    struct utsname system;
    ck_assert_int_eq(uname(&system), 0);
    int major = 0, minor = 0;
    sscanf(system.release, "%d.%d", &major, &minor);
    if (major > 6 || (major == 6 && minor >= 12)) {
        uint64_t attributes[7];                  /* struct sched_attr, version 0 */
        memset(attributes, 0, sizeof attributes);
        ck_assert_int_eq(syscall(SYS_sched_getattr, thread, attributes, sizeof attributes, 0), 0);
        ck_assert_uint_eq(attributes[3], MS_THREAD_SHORT_SLICE_NS);   /* sched_runtime */
    }
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("serve_misc");
    TCase *tcase = tcase_create("serve_misc");
    tcase_add_test(tcase, test_options_defaults);
    tcase_add_test(tcase, test_options_spellings);
    tcase_add_test(tcase, test_options_refused);
    tcase_add_test(tcase, test_options_webui);
    tcase_add_test(tcase, test_pass_through_paths);
    tcase_add_test(tcase, test_auth);
    tcase_add_test(tcase, test_token_file);
    tcase_add_test(tcase, test_metrics);
    tcase_add_test(tcase, test_text_builder);
    tcase_add_test(tcase, test_shared_text);
    tcase_add_loop_test(tcase, test_fixed_numbers, 0,
                        (int)(sizeof fixed_cases / sizeof fixed_cases[0]));
    tcase_add_test(tcase, test_fixed_not_finite);
    tcase_add_test(tcase, test_unsigned_numbers);
    tcase_add_test(tcase, test_clock_format);
    tcase_add_test(tcase, test_log_order);
    tcase_add_test(tcase, test_log_full_buffer);
    tcase_add_test(tcase, test_log_escapes_controls);
    tcase_add_test(tcase, test_printable);
    tcase_add_test(tcase, test_defer_while_stopping);
    tcase_add_test(tcase, test_thread_priority);
    suite_add_tcase(suite, tcase);
    return ms_test_run_suite(suite);
}
