/* server/job_runner: the state transitions a job goes through when it
 * starts and when its worker reports back (success, failure, cancel by a
 * client, cancel by shutdown), in memory, in the store and on disk. */
#include <check.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "server/clock.h"
#include "server/jobs/job_runner.h"
#include "server/paths.h"
#include "server/service.h"
#include "check_support.h"

static char *base;
static ms_serve_options options;
static ms_service service;

static void setup(void)
{
    base = ms_test_make_temp_dir("test_job_runner");
    ck_assert_ptr_nonnull(base);
    char *argv[] = {(char *)"serve", NULL};
    char message[128];
    ck_assert(ms_serve_options_parse(1, argv, &options, message, sizeof message));
    memset(&service, 0, sizeof service);
    service.options = &options;
    service.data_dir = strdup(base);
    service.results_dir = ms_paths_join(base, "results");
    ck_assert(ms_paths_make_dir(service.results_dir));
    ck_assert_int_eq(ms_job_table_init(&service.table), 0);
    ms_metrics_init(&service.metrics);
    char *store_path = ms_paths_join(base, "jobs.sqlite3");
    ms_error err;
    ck_assert_int_eq(ms_job_store_open(store_path, &service.store, &err), MS_OK);
    free(store_path);
}

static void teardown(void)
{
    ms_job_store_close(service.store);
    ms_job_table_destroy(&service.table);
    ms_metrics_destroy(&service.metrics);
    free(service.data_dir);
    free(service.results_dir);
    ms_serve_options_free(&options);
    ck_assert_int_eq(ms_test_remove_tree(base), 0);
    free(base);
    base = NULL;
}

/* A queued job in the table and the store, with a result directory holding
 * a partial file (as a worker would leave it). */
static ms_job *add_job(void)
{
    ms_job *job = ms_job_new(MS_JOB_KIND_RESIZE);
    job->request_text = strdup("{\"model\":\"missing.safetensors\"}");
    job->params_text = strdup("{}");
    job->output_name = strdup("out.safetensors");
    job->created_ms = 1000;
    ms_error err;
    ck_assert_int_eq(ms_job_table_insert(&service.table, job), 0);
    ck_assert_int_eq(ms_job_store_insert(service.store, job, &err), MS_OK);
    char *dir = ms_service_result_dir(&service, job->id);
    ck_assert(ms_paths_make_dir(dir));
    char *file = ms_paths_join(dir, ".partial");
    FILE *stream = fopen(file, "w");
    fputs("x", stream);
    fclose(stream);
    free(file);
    free(dir);
    return job;
}

static bool result_dir_exists(const ms_job *job)
{
    char *dir = ms_service_result_dir(&service, job->id);
    struct stat info;
    bool exists = stat(dir, &info) == 0;
    free(dir);
    return exists;
}

/* The job as the store has it, loaded into a fresh table. */
static ms_job_state stored_state(const char *id, char **error_text)
{
    ms_job_table table;
    ck_assert_int_eq(ms_job_table_init(&table), 0);
    size_t skipped = 0;
    ms_error err;
    ck_assert_int_eq(ms_job_store_load(service.store, &table, &skipped, &err), MS_OK);
    ms_job *job = ms_job_table_find(&table, id);
    ck_assert_ptr_nonnull(job);
    ms_job_state state = job->state;
    if (error_text != NULL)
        *error_text = job->error_text != NULL ? strdup(job->error_text) : NULL;
    ms_job_table_destroy(&table);
    return state;
}

static ms_job *start(void)
{
    ms_job *job = add_job();
    ms_job *started = NULL;
    ck_assert(ms_job_runner_start(&service, job->id, &started));
    ck_assert_ptr_eq(started, job);
    ck_assert_int_eq(job->state, MS_JOB_RUNNING);
    ck_assert_int_gt(job->started_ms, 0);
    ck_assert_int_eq(stored_state(job->id, NULL), MS_JOB_RUNNING);
    ck_assert_uint_eq(service.table.state_counts[MS_JOB_KIND_RESIZE][MS_JOB_RUNNING], 1);
    return job;
}

static const char *error_code(const char *error_text, json_t **holder)
{
    *holder = json_loads(error_text, 0, NULL);
    ck_assert_ptr_nonnull(*holder);
    return json_string_value(json_object_get(*holder, "code"));
}

START_TEST(test_start_only_queued)
{
    ms_job *job = add_job();
    job->state = MS_JOB_CANCELLED;   /* cancelled while waiting */
    ms_job *started = NULL;
    ck_assert(!ms_job_runner_start(&service, job->id, &started));
    ck_assert(!ms_job_runner_start(&service, "0123456789abcdef0123456789abcdef", &started));
    ck_assert_ptr_null(started);
}
END_TEST

/* What a worker reports for a resize that succeeded. */
static void success_outcome(ms_job_outcome *outcome)
{
    memset(outcome, 0, sizeof *outcome);
    outcome->status = MS_OK;
    outcome->has_result = true;
    outcome->result_bytes = 4321;
    memset(outcome->result_sha256, 'b', 64);
    outcome->report_text = strdup("{\"modules\":[]}");
}

START_TEST(test_success)
{
    ms_job *job = start();
    ms_job_outcome outcome;
    success_outcome(&outcome);
    ck_assert_int_eq(ms_job_runner_finish(&service, job, &outcome), MS_JOB_SUCCEEDED);
    ck_assert(job->has_result);
    ck_assert_uint_eq(job->result_bytes, 4321);
    ck_assert_uint_eq(strlen(job->result_sha256), 64);
    /* the store has the report: the job in memory let go of it */
    ck_assert_ptr_null(job->report);
    ck_assert(job->report_in_store);
    ms_job *copy = ms_job_copy(job);
    ms_service_attach_report(&service, copy);
    ck_assert_ptr_nonnull(copy->report);
    json_error_t json_error;
    json_t *report = json_loads(copy->report->data, 0, &json_error);
    ck_assert_ptr_nonnull(report);
    ck_assert(json_is_object(report));
    json_decref(report);
    ms_job_free(copy);
    ck_assert_int_gt(job->finished_ms, 0);
    ck_assert(result_dir_exists(job));   /* the result stays */
    ck_assert_int_eq(stored_state(job->id, NULL), MS_JOB_SUCCEEDED);
    ck_assert_uint_eq(service.metrics.duration_count[MS_JOB_KIND_RESIZE], 1);
}
END_TEST

/* Runs sql on a second connection to the job store (as another process
 * could): used to make the service's own statements fail. */
static void store_exec(const char *sql)
{
    char *path = ms_paths_join(base, "jobs.sqlite3");
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    free(path);
}

/* A success the store does not take (disk full, here a missing table) is
 * not shown: the job fails with io_error, its result goes, and memory and
 * store agree that it did not succeed ("interrupted" after a restart). */
START_TEST(test_success_not_recorded)
{
    ms_job *job = start();
    ms_job_outcome outcome;
    success_outcome(&outcome);
    store_exec("ALTER TABLE jobs RENAME TO jobs_elsewhere");
    ck_assert_int_eq(ms_job_runner_finish(&service, job, &outcome), MS_JOB_FAILED);
    ck_assert_int_eq(job->state, MS_JOB_FAILED);
    ck_assert(!job->has_result);
    ck_assert_ptr_null(job->report);
    ck_assert(!job->report_in_store);
    json_t *holder;
    ck_assert_str_eq(error_code(job->error_text, &holder), "io_error");
    json_decref(holder);
    ck_assert(strstr(job->error_text, "could not be recorded") != NULL);
    ck_assert(!result_dir_exists(job));
    store_exec("ALTER TABLE jobs_elsewhere RENAME TO jobs");
    ck_assert_int_eq(stored_state(job->id, NULL), MS_JOB_RUNNING);
    ck_assert_uint_eq(service.table.state_counts[MS_JOB_KIND_RESIZE][MS_JOB_FAILED], 1);
    ck_assert_uint_eq(service.table.state_counts[MS_JOB_KIND_RESIZE][MS_JOB_RUNNING], 0);
}
END_TEST

START_TEST(test_failure)
{
    ms_job *job = start();
    ms_job_outcome outcome;
    memset(&outcome, 0, sizeof outcome);
    outcome.status = ms_error_set(&outcome.error, MS_ERR_NAN_DETECTED, "lora_x.lora_up.weight",
                                  "NaN in the product");
    ck_assert_int_eq(ms_job_runner_finish(&service, job, &outcome), MS_JOB_FAILED);
    json_t *holder;
    ck_assert_str_eq(error_code(job->error_text, &holder), "nan_detected");
    ck_assert_str_eq(json_string_value(json_object_get(holder, "key")), "lora_x.lora_up.weight");
    json_decref(holder);
    ck_assert(!job->has_result);
    ck_assert(!result_dir_exists(job));
    char *stored_error = NULL;
    ck_assert_int_eq(stored_state(job->id, &stored_error), MS_JOB_FAILED);
    ck_assert_str_eq(stored_error, job->error_text);
    free(stored_error);
}
END_TEST

START_TEST(test_cancelled_by_client)
{
    ms_job *job = start();
    job->cancel_requested = true;
    job->shutdown_cancel = true;   /* shutdown too, but the client's wish wins */
    ms_job_outcome outcome;
    memset(&outcome, 0, sizeof outcome);
    outcome.status = ms_error_set(&outcome.error, MS_ERR_CANCELLED, NULL, "resize cancelled");
    ck_assert_int_eq(ms_job_runner_finish(&service, job, &outcome), MS_JOB_CANCELLED);
    json_t *holder;
    ck_assert_str_eq(error_code(job->error_text, &holder), "cancelled");
    json_decref(holder);
    ck_assert(!result_dir_exists(job));
    ck_assert_int_eq(stored_state(job->id, NULL), MS_JOB_CANCELLED);
}
END_TEST

START_TEST(test_cancelled_by_shutdown)
{
    ms_job *job = start();
    job->progress_done = 3;
    job->progress_total = 9;
    job->shutdown_cancel = true;
    ms_job_outcome outcome;
    memset(&outcome, 0, sizeof outcome);
    outcome.status = ms_error_set(&outcome.error, MS_ERR_CANCELLED, NULL, "resize cancelled");
    ck_assert_int_eq(ms_job_runner_finish(&service, job, &outcome), MS_JOB_QUEUED);
    ck_assert_int_eq(job->started_ms, 0);
    ck_assert_int_eq(job->finished_ms, 0);
    ck_assert_uint_eq(job->progress_done, 0);
    ck_assert_ptr_null(job->error_text);
    ck_assert(!result_dir_exists(job));
    ck_assert_int_eq(stored_state(job->id, NULL), MS_JOB_QUEUED);
    ck_assert_uint_eq(service.table.state_counts[MS_JOB_KIND_RESIZE][MS_JOB_QUEUED], 1);
    ck_assert_uint_eq(service.metrics.duration_count[MS_JOB_KIND_RESIZE], 0);
}
END_TEST

/* The store's progress figures of a job, loaded into a fresh table. */
static void stored_progress(const char *id, uint64_t *done, uint64_t *total)
{
    ms_job_table table;
    ck_assert_int_eq(ms_job_table_init(&table), 0);
    size_t skipped = 0;
    ms_error err;
    ck_assert_int_eq(ms_job_store_load(service.store, &table, &skipped, &err), MS_OK);
    ms_job *job = ms_job_table_find(&table, id);
    ck_assert_ptr_nonnull(job);
    *done = job->progress_done;
    *total = job->progress_total;
    ms_job_table_destroy(&table);
}

/* A running job's progress reaches the store, the first report at once and
 * then at most once per interval (the interval's clock is set by hand:
 * the test does not depend on how fast it runs), so that a job a crash
 * interrupts keeps its last saved figures (service.c: recover_jobs keeps
 * them).  A finished job's record is not touched by a late report. */
START_TEST(test_progress_saved_at_a_bounded_rate)
{
    ms_job *job = start();
    uint64_t done = 99, total = 99;
    stored_progress(job->id, &done, &total);
    ck_assert_uint_eq(done, 0);
    ck_assert_uint_eq(total, 0);

    ms_job_progress context = {.service = &service, .job = job};
    ms_job_runner_progress(&context, 0, 10, NULL);
    stored_progress(job->id, &done, &total);
    ck_assert_uint_eq(done, 0);
    ck_assert_uint_eq(total, 10);

    /* within the interval: memory only */
    context.saved_at_ms = ms_clock_monotonic_ms() + 1e9;
    ms_job_runner_progress(&context, 3, 10, "lora_unet_a");
    ck_assert_uint_eq(job->progress_done, 3);
    stored_progress(job->id, &done, &total);
    ck_assert_uint_eq(done, 0);

    /* the interval over: saved */
    context.saved_at_ms = ms_clock_monotonic_ms() - MS_JOB_PROGRESS_SAVE_INTERVAL_MS;
    ms_job_runner_progress(&context, 4, 10, "lora_unet_b");
    stored_progress(job->id, &done, &total);
    ck_assert_uint_eq(done, 4);
    ck_assert_uint_eq(total, 10);

    /* finished: its record keeps the final figures */
    ms_job_outcome outcome;
    memset(&outcome, 0, sizeof outcome);
    outcome.status = ms_error_set(&outcome.error, MS_ERR_IO, NULL, "read failed");
    ck_assert_int_eq(ms_job_runner_finish(&service, job, &outcome), MS_JOB_FAILED);
    ms_error err;
    ck_assert_int_eq(ms_job_store_save_progress(service.store, job->id, 7, 10, &err), MS_OK);
    stored_progress(job->id, &done, &total);
    ck_assert_uint_eq(done, 4);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("job_runner");
    TCase *tcase = tcase_create("job_runner");
    tcase_add_checked_fixture(tcase, setup, teardown);
    tcase_add_test(tcase, test_start_only_queued);
    tcase_add_test(tcase, test_success);
    tcase_add_test(tcase, test_success_not_recorded);
    tcase_add_test(tcase, test_failure);
    tcase_add_test(tcase, test_cancelled_by_client);
    tcase_add_test(tcase, test_cancelled_by_shutdown);
    tcase_add_test(tcase, test_progress_saved_at_a_bounded_rate);
    suite_add_tcase(suite, tcase);
    return ms_test_run_suite(suite);
}
