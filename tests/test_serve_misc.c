/* server: serve options, bearer token checks, metrics exposition. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/auth.h"
#include "server/metrics.h"
#include "server/serve_options.h"
#include "server/text.h"
#include "tests/check_support.h"

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

int main(void)
{
    Suite *suite = suite_create("serve_misc");
    TCase *tcase = tcase_create("serve_misc");
    tcase_add_test(tcase, test_options_defaults);
    tcase_add_test(tcase, test_options_spellings);
    tcase_add_test(tcase, test_options_refused);
    tcase_add_test(tcase, test_auth);
    tcase_add_test(tcase, test_token_file);
    tcase_add_test(tcase, test_metrics);
    tcase_add_test(tcase, test_text_builder);
    tcase_add_test(tcase, test_shared_text);
    suite_add_tcase(suite, tcase);
    return ms_test_run_suite(suite);
}
