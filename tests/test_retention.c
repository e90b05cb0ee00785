/* server/retention: the eviction choice (oldest first, running and
 * downloading jobs skipped, both limits, ties), one pass over a real table,
 * store and results folder, the options that set the limits, the
 * result_expired flag in the job object, the store (and its upgrade of an
 * older database) and /metrics. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "server/clock.h"
#include "server/jobs/job.h"
#include "server/jobs/job_store.h"
#include "server/jobs/job_table.h"
#include "server/metrics.h"
#include "server/paths.h"
#include "server/jobs/retention.h"
#include "server/serve_options.h"
#include "server/service.h"
#include "check_support.h"

enum { MAX_CANDIDATES = 16 };

static char *base;

static void setup(void)
{
    base = ms_test_make_temp_dir("test_retention");
    ck_assert_ptr_nonnull(base);
}

static void teardown(void)
{
    ck_assert_int_eq(ms_test_remove_tree(base), 0);
    free(base);
    base = NULL;
}

/* ---------------------------------------------------------------- the choice */

static ms_retention_candidate finished(int64_t finished_ms, int64_t sequence, uint64_t bytes)
{
    return (ms_retention_candidate){.finished_ms = finished_ms, .sequence = sequence,
                                    .bytes = bytes};
}

/* The verdicts as a string, one letter per candidate: K keep, E evict, D defer. */
static void choose(uint64_t max_bytes, int64_t max_age_ms, int64_t now_ms,
                   const ms_retention_candidate *candidates, size_t count, char *letters)
{
    ms_retention_limits limits = {max_bytes, max_age_ms};
    ms_retention_verdict verdicts[MAX_CANDIDATES];
    ms_error err;
    ck_assert_int_eq(ms_retention_choose(&limits, now_ms, candidates, count, verdicts, &err),
                     MS_OK);
    for (size_t i = 0; i < count; i++)
        letters[i] = verdicts[i] == MS_RETENTION_EVICT ? 'E'
                     : verdicts[i] == MS_RETENTION_DEFER ? 'D' : 'K';
    letters[count] = '\0';
}

START_TEST(test_choose_under_the_limits)
{
    ms_retention_candidate list[] = {finished(100, 1, 10), finished(200, 2, 10),
                                     finished(300, 3, 10)};
    char letters[MAX_CANDIDATES + 1];
    choose(30, 0, 1000, list, 3, letters);          /* exactly at the limit holds */
    ck_assert_str_eq(letters, "KKK");
    choose(0, 900, 1000, list, 3, letters);         /* the oldest is 900 ms old: not past */
    ck_assert_str_eq(letters, "KKK");
    choose(0, 0, 1000000, list, 3, letters);        /* no limits at all */
    ck_assert_str_eq(letters, "KKK");
    choose(1, 1, 1000, list, 0, letters);           /* nothing to choose from */
    ck_assert_str_eq(letters, "");
}
END_TEST

START_TEST(test_choose_oldest_first)
{
    /* listed out of finish order (a restart loads by creation, jobs finish
     * in any order) */
    ms_retention_candidate list[] = {finished(300, 1, 10), finished(100, 2, 10),
                                     finished(400, 3, 10), finished(200, 4, 10)};
    char letters[MAX_CANDIDATES + 1];
    choose(25, 0, 1000, list, 4, letters);
    ck_assert_str_eq(letters, "KEKE");               /* 40 -> 20: the two finished first */
    choose(39, 0, 1000, list, 4, letters);
    ck_assert_str_eq(letters, "KEKK");
    choose(5, 0, 1000, list, 4, letters);            /* even the newest, alone over the limit */
    ck_assert_str_eq(letters, "EEEE");
    /* sizes matter, not counts: one big old result makes room for many */
    ms_retention_candidate sized[] = {finished(100, 1, 100), finished(200, 2, 1),
                                      finished(300, 3, 1)};
    choose(50, 0, 1000, sized, 3, letters);
    ck_assert_str_eq(letters, "EKK");
}
END_TEST

START_TEST(test_choose_skips_running_jobs)
{
    ms_retention_candidate list[] = {finished(0, 1, 0), finished(100, 2, 10),
                                     finished(200, 3, 10)};
    list[0].running = true;   /* no finish time: would look oldest of all */
    list[0].bytes = 1000;     /* and is not counted: its size is not known yet */
    char letters[MAX_CANDIDATES + 1];
    choose(15, 0, 1000, list, 3, letters);
    ck_assert_str_eq(letters, "KEK");
    choose(0, 1, 1000000, list, 3, letters);         /* every finished one is too old */
    ck_assert_str_eq(letters, "KEE");
}
END_TEST

START_TEST(test_choose_defers_downloads)
{
    ms_retention_candidate list[] = {finished(100, 1, 10), finished(200, 2, 10),
                                     finished(300, 3, 10)};
    list[0].downloading = true;
    char letters[MAX_CANDIDATES + 1];
    /* the oldest is held: the next goes instead, the held one still counts */
    choose(25, 0, 1000, list, 3, letters);
    ck_assert_str_eq(letters, "DEK");
    choose(5, 0, 1000, list, 3, letters);
    ck_assert_str_eq(letters, "DEE");
    /* too old and held: deferred; the others are young enough */
    choose(0, 850, 1000, list, 3, letters);
    ck_assert_str_eq(letters, "DKK");
    /* under the limits it is not even deferred */
    choose(30, 0, 1000, list, 3, letters);
    ck_assert_str_eq(letters, "KKK");
}
END_TEST

START_TEST(test_choose_both_limits)
{
    ms_retention_candidate list[] = {finished(100, 1, 10), finished(200, 2, 10),
                                     finished(300, 3, 10), finished(400, 4, 10)};
    char letters[MAX_CANDIDATES + 1];
    /* age alone: only the first is past 850 ms; bytes alone would take two */
    choose(0, 850, 1000, list, 4, letters);
    ck_assert_str_eq(letters, "EKKK");
    choose(20, 850, 1000, list, 4, letters);
    ck_assert_str_eq(letters, "EEKK");
    /* the age limit takes more than the bytes one */
    choose(30, 650, 1000, list, 4, letters);
    ck_assert_str_eq(letters, "EEEK");
}
END_TEST

START_TEST(test_choose_ties)
{
    /* equal finish times: the job created first goes first, whatever the
     * order in the list */
    ms_retention_candidate list[] = {finished(100, 3, 10), finished(100, 1, 10),
                                     finished(100, 2, 10)};
    char letters[MAX_CANDIDATES + 1];
    choose(20, 0, 1000, list, 3, letters);
    ck_assert_str_eq(letters, "KEK");
    choose(10, 0, 1000, list, 3, letters);
    ck_assert_str_eq(letters, "KEE");
    /* a result exactly as old as the limit is not past it */
    choose(0, 900, 1000, list, 3, letters);
    ck_assert_str_eq(letters, "KKK");
    choose(0, 899, 1000, list, 3, letters);
    ck_assert_str_eq(letters, "EEE");
}
END_TEST

START_TEST(test_choose_huge_sizes)
{
    /* sums past 64 bits saturate instead of wrapping to "fits" */
    ms_retention_candidate list[] = {finished(100, 1, UINT64_MAX), finished(200, 2, 10)};
    char letters[MAX_CANDIDATES + 1];
    choose(UINT64_MAX - 1, 0, 1000, list, 2, letters);
    ck_assert_str_eq(letters, "EK");
}
END_TEST

/* ---------------------------------------------------------------- options */

static bool parse(ms_serve_options *options, const char *const *args, char *message,
                  size_t message_size)
{
    char *argv[16];
    int argc = 0;
    argv[argc++] = (char *)"serve";
    for (; args[argc - 1] != NULL; argc++)
        argv[argc] = (char *)args[argc - 1];
    return ms_serve_options_parse(argc, argv, options, message, message_size);
}

START_TEST(test_parse_size)
{
    static const struct {
        const char *text;
        uint64_t bytes;
    } good[] = {
        {"1", 1}, {"1000", 1000}, {"0", 0}, {"2K", 2048}, {"2k", 2048}, {"2KiB", 2048},
        {"3M", 3ull << 20}, {"3m", 3ull << 20}, {"20G", 20ull << 30}, {"1T", 1ull << 40},
        {"18446744073709551615", UINT64_MAX}, {"16777215T", 16777215ull << 40},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t bytes = 7;
        ck_assert_msg(ms_serve_parse_size(good[i].text, &bytes), "%s refused", good[i].text);
        ck_assert_msg(bytes == good[i].bytes, "%s gave %llu", good[i].text,
                      (unsigned long long)bytes);
    }
    static const char *const bad[] = {
        "", "K", "-1", "+1", " 1", "1 ", "1.5G", "1X", "1KB", "1Ki", "1kib", "1GG",
        "18446744073709551616", "16777216T", "0x10", NULL,
    };
    for (size_t i = 0; bad[i] != NULL; i++) {
        uint64_t bytes = 7;
        ck_assert_msg(!ms_serve_parse_size(bad[i], &bytes), "'%s' taken", bad[i]);
        ck_assert_int_eq(bytes, 7);
    }
    uint64_t bytes = 0;
    ck_assert(!ms_serve_parse_size(NULL, &bytes));
}
END_TEST

START_TEST(test_options)
{
    ms_serve_options options;
    char message[256] = "";
    const char *none[] = {NULL};
    ck_assert(parse(&options, none, message, sizeof message));
    ck_assert_uint_eq(options.keep_results_bytes, 0);   /* default: no limits */
    ck_assert_int_eq(options.keep_results_seconds, 0);
    ms_serve_options_free(&options);

    const char *given[] = {"--keep-results-bytes", "20G", "--keep_results_seconds=3600", NULL};
    ck_assert(parse(&options, given, message, sizeof message));
    ck_assert_uint_eq(options.keep_results_bytes, 20ull << 30);
    ck_assert_int_eq(options.keep_results_seconds, 3600);
    ms_serve_options_free(&options);

    static const char *const refused[][3] = {
        {"--keep-results-bytes", "0", "keep-results-bytes"},
        {"--keep-results-bytes", "10X", "keep-results-bytes"},
        {"--keep-results-bytes", "-5", "keep-results-bytes"},
        {"--keep-results-seconds", "0", "keep-results-seconds"},
        {"--keep-results-seconds", "1.5", "keep-results-seconds"},
        {"--keep-results-seconds", "-1", "keep-results-seconds"},
        {"--keep-results-seconds", "99999999999", "keep-results-seconds"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        const char *args[] = {refused[i][0], refused[i][1], NULL};
        message[0] = '\0';
        ck_assert_msg(!parse(&options, args, message, sizeof message), "%s %s taken",
                      refused[i][0], refused[i][1]);
        /* says which option, which value and what it wants */
        ck_assert_msg(strstr(message, refused[i][2]) != NULL && strstr(message, refused[i][1]) &&
                          strstr(message, "want") != NULL, "message: %s", message);
        ms_serve_options_free(&options);
    }
    const char *missing[] = {"--keep-results-bytes", NULL};
    ck_assert(!parse(&options, missing, message, sizeof message));
    ck_assert(strstr(message, "needs a value") != NULL);
    ms_serve_options_free(&options);
}
END_TEST

/* ---------------------------------------------------------------- jobs */

static ms_job *make_job(int64_t sequence, ms_job_state state, int64_t finished_ms,
                        uint64_t bytes)
{
    ms_job *job = ms_job_new(MS_JOB_KIND_RESIZE);
    ck_assert_ptr_nonnull(job);
    job->request_text = strdup("{\"model\":\"m.safetensors\"}");
    job->params_text = strdup("{\"model\":\"m.safetensors\"}");
    job->output_name = strdup("out.safetensors");
    snprintf(job->body_sha256, sizeof job->body_sha256, "%064d", 7);
    job->sequence = sequence;
    job->state = state;
    job->created_ms = 1796000000000 + sequence;
    job->finished_ms = finished_ms;
    if (state == MS_JOB_SUCCEEDED) {
        job->has_result = true;
        job->result_bytes = bytes;
        memset(job->result_sha256, 'c', 64);
    }
    return job;
}

static json_t *job_json(const ms_job *job)
{
    char *text = ms_job_to_json_text(job, 0);
    ck_assert_ptr_nonnull(text);
    json_t *object = json_loads(text, 0, NULL);
    ck_assert_msg(object != NULL, "not JSON: %s", text);
    free(text);
    return object;
}

START_TEST(test_job_json_flag)
{
    ms_job *job = make_job(1, MS_JOB_SUCCEEDED, 5, 42);
    json_t *object = job_json(job);
    ck_assert(json_is_false(json_object_get(object, "result_expired")));
    json_decref(object);
    job->result_expired = true;
    object = job_json(job);
    ck_assert(json_is_true(json_object_get(object, "result_expired")));
    /* the record stays: url, bytes and sha256 still say what it was */
    json_t *result = json_object_get(object, "result");
    ck_assert_int_eq(json_integer_value(json_object_get(result, "bytes")), 42);
    ck_assert_uint_eq(strlen(json_string_value(json_object_get(result, "sha256"))), 64);
    json_decref(object);
    ms_job_free(job);
}
END_TEST

/* A database of the version before result_expired: its rows load (not
 * expired), the column is added, and the flag then survives a reopen. */
START_TEST(test_store_upgrade_and_round_trip)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/old.sqlite3", base);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    static const char old_schema[] =
        "CREATE TABLE jobs (id TEXT PRIMARY KEY, sequence INTEGER NOT NULL UNIQUE,"
        " kind TEXT NOT NULL, state TEXT NOT NULL, request TEXT NOT NULL, params TEXT NOT NULL,"
        " output_name TEXT NOT NULL, idempotency_key TEXT, body_sha256 TEXT NOT NULL,"
        " created_ms INTEGER NOT NULL, started_ms INTEGER NOT NULL DEFAULT 0,"
        " finished_ms INTEGER NOT NULL DEFAULT 0, progress_done INTEGER NOT NULL DEFAULT 0,"
        " progress_total INTEGER NOT NULL DEFAULT 0, error TEXT, result_bytes INTEGER,"
        " result_sha256 TEXT, report TEXT);"
        "INSERT INTO jobs VALUES ('0123456789abcdef0123456789abcdef', 1, 'resize', 'succeeded',"
        " '{}', '{}', 'out.safetensors', NULL, 'x', 1, 2, 3, 4, 4, NULL, 99,"
        " 'cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc', NULL);";
    ck_assert_int_eq(sqlite3_exec(db, old_schema, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    ms_job_store *store = NULL;
    ms_error err;
    ck_assert_int_eq(ms_job_store_open(path, &store, &err), MS_OK);
    ms_job_table table;
    ck_assert_int_eq(ms_job_table_init(&table), 0);
    size_t skipped = 0;
    ck_assert_int_eq(ms_job_store_load(store, &table, &skipped, &err), MS_OK);
    ck_assert_uint_eq(skipped, 0);
    ck_assert_uint_eq(table.count, 1);
    ms_job *old = table.ordered[0];
    ck_assert(old->has_result && !old->result_expired);
    old->result_expired = true;
    ck_assert_int_eq(ms_job_store_update(store, old, &err), MS_OK);
    ms_job *fresh = make_job(2, MS_JOB_SUCCEEDED, 10, 5);
    fresh->result_expired = true;   /* inserted with the flag: it is kept too */
    ck_assert_int_eq(ms_job_store_insert(store, fresh, &err), MS_OK);
    ms_job *kept = make_job(3, MS_JOB_SUCCEEDED, 11, 5);
    ck_assert_int_eq(ms_job_store_insert(store, kept, &err), MS_OK);
    ms_job_table_destroy(&table);
    ms_job_store_close(store);

    /* opened again: the column is there, no second ALTER */
    ck_assert_int_eq(ms_job_store_open(path, &store, &err), MS_OK);
    ck_assert_int_eq(ms_job_table_init(&table), 0);
    ck_assert_int_eq(ms_job_store_load(store, &table, &skipped, &err), MS_OK);
    ck_assert_uint_eq(table.count, 3);
    ck_assert(table.ordered[0]->result_expired);
    ck_assert(table.ordered[1]->result_expired);
    ck_assert(!table.ordered[2]->result_expired);
    ms_job_table_destroy(&table);
    ms_job_store_close(store);
    ms_job_free(fresh);
    ms_job_free(kept);
}
END_TEST

/* ---------------------------------------------------------------- a pass */

typedef struct fixture {
    ms_serve_options options;
    ms_service service;
    uv_loop_t loop;
    char store_path[PATH_MAX];
} fixture;

static void fixture_start(fixture *f, uint64_t max_bytes, int64_t max_seconds)
{
    memset(f, 0, sizeof *f);
    f->options.keep_results_bytes = max_bytes;
    f->options.keep_results_seconds = max_seconds;
    f->service.options = &f->options;
    f->service.results_dir = ms_paths_join(base, "results");
    ck_assert(ms_paths_make_dir(f->service.results_dir));
    ck_assert_int_eq(ms_job_table_init(&f->service.table), 0);
    ms_metrics_init(&f->service.metrics);
    snprintf(f->store_path, sizeof f->store_path, "%s/jobs.sqlite3", base);
    ms_error err;
    ck_assert_int_eq(ms_job_store_open(f->store_path, &f->service.store, &err), MS_OK);
    ck_assert_int_eq(uv_loop_init(&f->loop), 0);
    ck_assert_int_eq(ms_retention_start(&f->service.retention, &f->service, &f->loop), 0);
}

static void fixture_stop(fixture *f)
{
    ms_retention_stop(&f->service.retention, &f->loop);
    ck_assert_int_eq(uv_loop_close(&f->loop), 0);   /* every handle closed */
    ms_job_store_close(f->service.store);
    ms_job_table_destroy(&f->service.table);
    ms_metrics_destroy(&f->service.metrics);
    free(f->service.results_dir);
}

static char *result_path(fixture *f, const ms_job *job)
{
    char *dir = ms_service_result_dir(&f->service, job->id);
    char *path = ms_paths_join(dir, job->output_name);
    free(dir);
    return path;
}

/* A job in the table, the store and (with a result, or running) on disk. */
static ms_job *add_job(fixture *f, int64_t sequence, ms_job_state state, int64_t finished_ms,
                       uint64_t bytes)
{
    ms_job *job = make_job(sequence, state, finished_ms, bytes);
    ms_error err;
    ck_assert_int_eq(ms_job_store_insert(f->service.store, job, &err), MS_OK);
    ck_assert_int_eq(ms_job_table_insert(&f->service.table, job), 0);
    char *dir = ms_service_result_dir(&f->service, job->id);
    ck_assert(ms_paths_make_dir(dir));
    free(dir);
    char *path = result_path(f, job);
    FILE *file = fopen(path, "wb");
    ck_assert_ptr_nonnull(file);
    for (uint64_t i = 0; i < bytes; i++)
        fputc('x', file);
    fclose(file);
    free(path);
    return job;
}

static bool result_on_disk(fixture *f, const ms_job *job)
{
    char *path = result_path(f, job);
    bool exists = access(path, F_OK) == 0;
    free(path);
    return exists;
}

static bool stored_expired(fixture *f, const char *id)
{
    ms_job_table table;
    ck_assert_int_eq(ms_job_table_init(&table), 0);
    size_t skipped = 0;
    ms_error err;
    ck_assert_int_eq(ms_job_store_load(f->service.store, &table, &skipped, &err), MS_OK);
    ms_job *job = ms_job_table_find(&table, id);
    ck_assert_ptr_nonnull(job);
    bool expired = job->result_expired;
    ms_job_table_destroy(&table);
    return expired;
}

static uint64_t kept_bytes_source(void *table)
{
    return ms_retention_kept_bytes(table);
}

START_TEST(test_pass_expires_oldest_and_spares_held_ones)
{
    fixture f;
    fixture_start(&f, 25, 0);
    int64_t now = 1796000000000;
    ms_job *running = add_job(&f, 1, MS_JOB_RUNNING, 0, 0);
    ms_job *held = add_job(&f, 2, MS_JOB_SUCCEEDED, now - 5000, 10);
    ms_job *oldest_free = add_job(&f, 3, MS_JOB_SUCCEEDED, now - 4000, 10);
    ms_job *newer = add_job(&f, 4, MS_JOB_SUCCEEDED, now - 3000, 10);
    ms_job *failed = add_job(&f, 5, MS_JOB_FAILED, now - 9000, 0);
    held->downloads_in_flight = 1;
    ck_assert_uint_eq(ms_retention_kept_bytes(&f.service.table), 30);

    ms_retention_run(&f.service.retention);
    ck_assert(oldest_free->result_expired && !oldest_free->result_evicting);
    ck_assert(!result_on_disk(&f, oldest_free));
    ck_assert(stored_expired(&f, oldest_free->id));
    /* the held one is noted for its download's end, and stays */
    ck_assert(!held->result_expired && held->eviction_deferred && result_on_disk(&f, held));
    ck_assert(!newer->result_expired && result_on_disk(&f, newer));
    ck_assert(!running->result_expired && result_on_disk(&f, running));
    ck_assert(!failed->result_expired);
    ck_assert_uint_eq(ms_retention_kept_bytes(&f.service.table), 20);
    ck_assert_uint_eq(atomic_load(&f.service.metrics.results_expired), 1);

    /* under the limit now: a second pass changes nothing */
    ms_retention_run(&f.service.retention);
    ck_assert(!held->result_expired && result_on_disk(&f, held));
    ck_assert_uint_eq(atomic_load(&f.service.metrics.results_expired), 1);

    /* the download ends, a new result arrives: the held one goes now */
    held->downloads_in_flight = 0;
    ms_job *latest = add_job(&f, 6, MS_JOB_SUCCEEDED, now - 1000, 10);
    ms_retention_run(&f.service.retention);
    ck_assert(held->result_expired && !held->eviction_deferred && !result_on_disk(&f, held));
    ck_assert(stored_expired(&f, held->id));
    ck_assert(!newer->result_expired && !latest->result_expired);
    ck_assert_uint_eq(atomic_load(&f.service.metrics.results_expired), 2);

    /* /metrics shows both figures */
    ms_metrics_set_results_source(&f.service.metrics, kept_bytes_source, &f.service.table);
    size_t counts[MS_JOB_KIND_COUNT][MS_JOB_STATE_COUNT] = {{0}};
    char *text = ms_metrics_render(&f.service.metrics, counts, 0);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(strstr(text, "\nmergesvd_results_kept_bytes 20\n") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "\nmergesvd_results_expired_total 2\n") != NULL, "%s", text);
    ck_assert(strstr(text, "# TYPE mergesvd_results_kept_bytes gauge\n") != NULL);
    ck_assert(strstr(text, "# TYPE mergesvd_results_expired_total counter\n") != NULL);
    free(text);
    fixture_stop(&f);
}
END_TEST

START_TEST(test_pass_age_limit)
{
    fixture f;
    fixture_start(&f, 0, 60);
    int64_t now = ms_clock_now_ms();
    ms_job *old = add_job(&f, 1, MS_JOB_SUCCEEDED, now - 61000, 3);
    ms_job *young = add_job(&f, 2, MS_JOB_SUCCEEDED, now - 30000, 3);
    ms_retention_run(&f.service.retention);
    ck_assert(old->result_expired && !result_on_disk(&f, old));
    ck_assert(!young->result_expired && result_on_disk(&f, young));
    fixture_stop(&f);
}
END_TEST

/* Without limits nothing is touched, and nothing is started. */
START_TEST(test_pass_without_limits)
{
    fixture f;
    fixture_start(&f, 0, 0);
    ck_assert(!f.service.retention.started);
    ms_job *old = add_job(&f, 1, MS_JOB_SUCCEEDED, 1, 1000);
    ms_retention_run(&f.service.retention);
    ms_retention_wake(&f.service.retention);   /* a no-op, not a crash */
    ck_assert(!old->result_expired && result_on_disk(&f, old));
    fixture_stop(&f);
}
END_TEST

static void never_called(uv_timer_t *timer)
{
    (void)timer;
    ck_abort_msg("the keep-alive timer fired");
}

/* A deferred eviction is retried by a wake-up from another thread (the
 * download's end), run on the loop. */
START_TEST(test_wake_runs_a_pass_on_the_loop)
{
    fixture f;
    fixture_start(&f, 1, 0);
    ck_assert(f.service.retention.started);
    ms_job *job = add_job(&f, 1, MS_JOB_SUCCEEDED, 100, 5);
    job->downloads_in_flight = 1;
    ms_retention_run(&f.service.retention);
    ck_assert(!job->result_expired && job->eviction_deferred);
    job->downloads_in_flight = 0;
    ms_retention_wake(&f.service.retention);
    /* retention's handles do not keep a loop alive (the job queue's do in
     * the service): a timer stands in for them */
    uv_timer_t keep_alive;
    ck_assert_int_eq(uv_timer_init(&f.loop, &keep_alive), 0);
    ck_assert_int_eq(uv_timer_start(&keep_alive, never_called, 60000, 0), 0);
    for (int round = 0; round < 100 && !job->result_expired; round++)
        uv_run(&f.loop, UV_RUN_ONCE);
    ck_assert(job->result_expired && !result_on_disk(&f, job));
    uv_close((uv_handle_t *)&keep_alive, NULL);
    fixture_stop(&f);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("retention");
    TCase *choice = tcase_create("choice");
    tcase_add_test(choice, test_choose_under_the_limits);
    tcase_add_test(choice, test_choose_oldest_first);
    tcase_add_test(choice, test_choose_skips_running_jobs);
    tcase_add_test(choice, test_choose_defers_downloads);
    tcase_add_test(choice, test_choose_both_limits);
    tcase_add_test(choice, test_choose_ties);
    tcase_add_test(choice, test_choose_huge_sizes);
    tcase_add_test(choice, test_parse_size);
    tcase_add_test(choice, test_options);
    tcase_add_test(choice, test_job_json_flag);
    suite_add_tcase(suite, choice);
    TCase *pass = tcase_create("pass");
    tcase_add_checked_fixture(pass, setup, teardown);
    tcase_add_test(pass, test_store_upgrade_and_round_trip);
    tcase_add_test(pass, test_pass_expires_oldest_and_spares_held_ones);
    tcase_add_test(pass, test_pass_age_limit);
    tcase_add_test(pass, test_pass_without_limits);
    tcase_add_test(pass, test_wake_runs_a_pass_on_the_loop);
    suite_add_tcase(suite, pass);
    return ms_test_run_suite(suite);
}
