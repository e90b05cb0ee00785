/* server/job, job_table, job_store: the job object's JSON, the in-memory
 * table (lookup, states, paging) and the SQLite round trip. */
#include <check.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "server/jobs/job.h"
#include "server/jobs/job_store.h"
#include "server/jobs/job_table.h"
#include "check_support.h"

static char *base;

static void setup(void)
{
    base = ms_test_make_temp_dir("test_job_store");
    ck_assert_ptr_nonnull(base);
}

static void teardown(void)
{
    ck_assert_int_eq(ms_test_remove_tree(base), 0);
    free(base);
    base = NULL;
}

static ms_job *make_job(const char *model)
{
    ms_job *job = ms_job_new(MS_JOB_KIND_RESIZE);
    ck_assert_ptr_nonnull(job);
    char body[256];
    snprintf(body, sizeof body, "{\"model\":\"%s\"}", model);
    job->request_text = strdup(body);
    job->params_text = strdup(body);
    job->output_name = strdup("out.safetensors");
    snprintf(job->body_sha256, sizeof job->body_sha256, "%064d", 7);
    job->created_ms = 1796000000123;
    return job;
}

static json_t *parse(char *text)
{
    ck_assert_ptr_nonnull(text);
    json_error_t error;
    json_t *value = json_loads(text, 0, &error);
    ck_assert_msg(value != NULL, "not JSON (%s): %s", error.text, text);
    free(text);
    return value;
}

START_TEST(test_ids)
{
    ms_job *a = ms_job_new(MS_JOB_KIND_RESIZE), *b = ms_job_new(MS_JOB_KIND_RESIZE);
    ck_assert(ms_job_id_valid(a->id));
    ck_assert_str_ne(a->id, b->id);
    ck_assert(!ms_job_id_valid("0123"));
    ck_assert(!ms_job_id_valid("0123456789ABCDEF0123456789abcdef"));
    ck_assert(!ms_job_id_valid("0123456789abcdef0123456789abcdef0"));
    ck_assert(ms_job_id_valid("0123456789abcdef0123456789abcdef"));
    ms_job_free(a);
    ms_job_free(b);
}
END_TEST

START_TEST(test_job_json)
{
    ms_job *job = make_job("m.safetensors");
    json_t *object = parse(ms_job_to_json_text(job, 0));
    ck_assert_str_eq(json_string_value(json_object_get(object, "id")), job->id);
    ck_assert_str_eq(json_string_value(json_object_get(object, "state")), "queued");
    ck_assert_str_eq(json_string_value(json_object_get(object, "kind")), "resize");
    ck_assert_str_eq(json_string_value(json_object_get(object, "created_at")),
                     "2026-11-30T00:53:20.123Z");
    ck_assert(json_is_null(json_object_get(object, "started_at")));
    ck_assert(json_is_null(json_object_get(object, "result")));
    ck_assert(json_is_null(json_object_get(object, "error")));
    json_t *progress = json_object_get(object, "progress");
    ck_assert(json_is_null(json_object_get(progress, "eta_seconds")));
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(object, "params"), "model")),
                     "m.safetensors");
    json_decref(object);

    /* running, half done after 10 s: 10 s to go; a hostile key stays JSON */
    job->state = MS_JOB_RUNNING;
    job->started_ms = job->created_ms;
    job->progress_done = 5;
    job->progress_total = 10;
    job->current_key_text = strdup("\"a\\\"b\\n\"");
    object = parse(ms_job_to_json_text(job, job->started_ms + 10000));
    progress = json_object_get(object, "progress");
    ck_assert_double_eq_tol(json_number_value(json_object_get(progress, "fraction")), 0.5, 1e-9);
    ck_assert_double_eq_tol(json_number_value(json_object_get(progress, "eta_seconds")), 10, 1e-6);
    ck_assert_str_eq(json_string_value(json_object_get(progress, "current_key")), "a\"b\n");
    json_decref(object);

    job->state = MS_JOB_SUCCEEDED;
    job->has_result = true;
    job->result_bytes = 42;
    memset(job->result_sha256, 'f', 64);
    job->report = ms_shared_text_new("{\"modules\":[]}");
    object = parse(ms_job_to_json_text(job, 0));
    json_t *result = json_object_get(object, "result");
    ck_assert_int_eq(json_integer_value(json_object_get(result, "bytes")), 42);
    ck_assert_str_eq(json_string_value(json_object_get(result, "file")), "out.safetensors");
    char url[80];
    snprintf(url, sizeof url, "/v1/jobs/%s/result", job->id);
    ck_assert_str_eq(json_string_value(json_object_get(result, "url")), url);
    ck_assert(json_is_array(json_object_get(json_object_get(object, "report"), "modules")));
    json_decref(object);
    ms_job_free(job);
}
END_TEST

START_TEST(test_table)
{
    ms_job_table table;
    ck_assert_int_eq(ms_job_table_init(&table), 0);
    enum { COUNT = 700 };   /* past the initial bucket count: the table grows */
    char ids[COUNT][MS_JOB_ID_LENGTH + 1];
    for (int i = 0; i < COUNT; i++) {
        ms_job *job = make_job("m");
        memcpy(ids[i], job->id, sizeof ids[i]);
        ck_assert_int_eq(ms_job_table_insert(&table, job), 0);
        ck_assert_int_eq(job->sequence, i + 1);
    }
    for (int i = 0; i < COUNT; i++)
        ck_assert_ptr_nonnull(ms_job_table_find(&table, ids[i]));
    ck_assert_ptr_null(ms_job_table_find(&table, "0123456789abcdef0123456789abcdef"));
    ck_assert_ptr_null(ms_job_table_find(&table, "../x"));
    ck_assert_uint_eq(ms_job_table_count_state(&table, MS_JOB_QUEUED), COUNT);

    ms_job *job = ms_job_table_find(&table, ids[3]);
    ms_job_table_set_state(&table, job, MS_JOB_RUNNING);
    ck_assert_uint_eq(ms_job_table_count_state(&table, MS_JOB_RUNNING), 1);
    ms_job_table_remove(&table, job);
    ms_job_free(job);
    ck_assert_ptr_null(ms_job_table_find(&table, ids[3]));
    ck_assert_uint_eq(ms_job_table_count_state(&table, MS_JOB_RUNNING), 0);
    ck_assert_uint_eq(table.count, COUNT - 1);

    job = ms_job_table_find(&table, ids[10]);
    job->idempotency_key = strdup("key-1");
    ck_assert_ptr_eq(ms_job_table_find_idempotency_key(&table, "key-1"), job);
    ck_assert_ptr_null(ms_job_table_find_idempotency_key(&table, "key-2"));

    /* paging newest first visits every job exactly once */
    int seen = 0;
    long long cursor = 0;
    int64_t previous = INT64_MAX;
    for (int page = 0; page < 100; page++) {
        ms_job **jobs_page = NULL;
        size_t page_count = 0;
        int64_t next_cursor = 0;
        ck_assert(ms_job_table_page(&table, cursor, 64, &jobs_page, &page_count, &next_cursor));
        ck_assert_uint_le(page_count, 64);
        json_t *list = parse(ms_job_page_json(jobs_page, page_count, next_cursor, 0));
        ms_job_page_free(jobs_page, page_count);
        json_t *jobs = json_object_get(list, "jobs");
        for (size_t i = 0; i < json_array_size(jobs); i++) {
            const char *id = json_string_value(json_object_get(json_array_get(jobs, i), "id"));
            int64_t sequence = ms_job_table_find(&table, id)->sequence;
            ck_assert_int_lt(sequence, previous);
            previous = sequence;
            seen++;
        }
        json_t *next = json_object_get(list, "next_cursor");
        if (json_is_null(next)) {
            json_decref(list);
            break;
        }
        cursor = atoll(json_string_value(next));
        json_decref(list);
    }
    ck_assert_int_eq(seen, COUNT - 1);
    ms_job_table_destroy(&table);
}
END_TEST

/* A fresh store named name in the test folder; its path in path. */
static ms_job_store *open_store(const char *name, char path[PATH_MAX + 32])
{
    snprintf(path, PATH_MAX + 32, "%s/%s", base, name);
    ms_job_store *store = NULL;
    ms_error err;
    ck_assert_int_eq(ms_job_store_open(path, &store, &err), MS_OK);
    return store;
}

START_TEST(test_store_round_trip)
{
    char path[PATH_MAX + 32];
    ms_job_store *store = open_store("jobs.sqlite3", path);
    ms_error err;
    ms_job *done = make_job("done");
    done->sequence = 1;
    done->state = MS_JOB_SUCCEEDED;
    done->started_ms = done->created_ms + 5;
    done->finished_ms = done->created_ms + 9;
    done->progress_done = done->progress_total = 12;
    done->has_result = true;
    done->result_bytes = 1234;
    memset(done->result_sha256, 'a', 64);
    done->report = ms_shared_text_new("{\"modules\":[]}");
    done->idempotency_key = strdup("k");
    ms_job *failed = make_job("failed");
    failed->sequence = 2;
    failed->state = MS_JOB_FAILED;
    failed->error_text = strdup("{\"code\":\"interrupted\",\"message\":\"x\"}");
    ms_job *gone = make_job("gone");
    gone->sequence = 3;
    ck_assert_int_eq(ms_job_store_insert(store, done, &err), MS_OK);
    ck_assert_int_eq(ms_job_store_insert(store, failed, &err), MS_OK);
    ck_assert_int_eq(ms_job_store_insert(store, gone, &err), MS_OK);
    ck_assert_int_eq(ms_job_store_insert(store, gone, &err), MS_ERR_IO);   /* ids are unique */
    /* said from the result code (the shared connection's last message may be
     * another thread's) */
    ck_assert(strstr(err.message, "job store: insert: constraint failed") != NULL);
    ck_assert_str_eq(err.details[0].name, "sqlite_code");
    ck_assert_int_eq(atoi(err.details[0].value) & 0xff, SQLITE_CONSTRAINT);
    failed->finished_ms = 77;   /* an update rewrites the record */
    ck_assert_int_eq(ms_job_store_update(store, failed, &err), MS_OK);
    /* an update without the report (memory let go of it) keeps the stored one */
    ms_shared_text *report = done->report;
    done->report = NULL;
    done->report_in_store = true;
    ck_assert_int_eq(ms_job_store_update(store, done, &err), MS_OK);
    done->report = report;
    ck_assert_int_eq(ms_job_store_delete(store, gone->id, &err), MS_OK);
    gone->state = MS_JOB_SUCCEEDED;   /* a late update does not bring it back */
    ck_assert_int_eq(ms_job_store_update(store, gone, &err), MS_OK);
    ms_job_store_close(store);

    ck_assert_int_eq(ms_job_store_open(path, &store, &err), MS_OK);
    ms_job_table table;
    ck_assert_int_eq(ms_job_table_init(&table), 0);
    size_t skipped = 99;
    ck_assert_int_eq(ms_job_store_load(store, &table, &skipped, &err), MS_OK);
    ck_assert_uint_eq(skipped, 0);
    ck_assert_uint_eq(table.count, 2);
    ck_assert_ptr_null(ms_job_table_find(&table, gone->id));
    ms_job *loaded = ms_job_table_find(&table, done->id);
    ck_assert_ptr_nonnull(loaded);
    ck_assert_int_eq(loaded->state, MS_JOB_SUCCEEDED);
    ck_assert(loaded->has_result);
    ck_assert_uint_eq(loaded->result_bytes, 1234);
    ck_assert_str_eq(loaded->result_sha256, done->result_sha256);
    /* reports stay in the store until a response needs one */
    ck_assert_ptr_null(loaded->report);
    ck_assert(loaded->report_in_store);
    ms_shared_text *stored = NULL;
    ck_assert_int_eq(ms_job_store_read_report(store, done->id, &stored, &err), MS_OK);
    ck_assert_ptr_nonnull(stored);
    ck_assert_str_eq(stored->data, done->report->data);
    ck_assert_uint_eq(stored->length, strlen(done->report->data));
    ms_shared_text_release(stored);
    ck_assert_int_eq(ms_job_store_read_report(store, failed->id, &stored, &err), MS_OK);
    ck_assert_ptr_null(stored);                      /* no report */
    ck_assert(!ms_job_table_find(&table, failed->id)->report_in_store);
    ck_assert_int_eq(ms_job_store_read_report(store, gone->id, &stored, &err), MS_OK);
    ck_assert_ptr_null(stored);                      /* no record */
    ck_assert_str_eq(loaded->idempotency_key, "k");
    ck_assert_str_eq(loaded->body_sha256, done->body_sha256);
    ck_assert_int_eq(loaded->finished_ms, done->finished_ms);
    ck_assert_uint_eq(loaded->progress_total, 12);
    loaded = ms_job_table_find(&table, failed->id);
    ck_assert_int_eq(loaded->state, MS_JOB_FAILED);
    ck_assert_str_eq(loaded->error_text, failed->error_text);
    ck_assert_int_eq(loaded->finished_ms, 77);
    ck_assert(!loaded->has_result);
    ck_assert_int_eq(table.next_sequence, 3);
    ck_assert_uint_eq(table.state_counts[MS_JOB_KIND_RESIZE][MS_JOB_SUCCEEDED], 1);
    ms_job_table_destroy(&table);
    ms_job_store_close(store);
    ms_job_free(done);
    ms_job_free(failed);
    ms_job_free(gone);
}
END_TEST

START_TEST(test_store_refuses_garbage)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/not_a_db.sqlite3", base);
    FILE *file = fopen(path, "w");
    fputs("this is not an SQLite database, not even close; padding padding padding padding", file);
    fclose(file);
    ms_job_store *store = NULL;
    ms_error err;
    ck_assert_int_ne(ms_job_store_open(path, &store, &err), MS_OK);
    ck_assert_ptr_null(store);
}
END_TEST

/* A row this version cannot read (a state from a newer one) is skipped,
 * still known to exist, and its sequence is not handed out again (the
 * column is UNIQUE: the next insert would fail). */
START_TEST(test_store_skips_unreadable_rows)
{
    char path[PATH_MAX + 32];
    ms_job_store *store = open_store("skips.sqlite3", path);
    ms_error err;
    ms_job *first = ms_job_new(MS_JOB_KIND_RESIZE);
    ms_job *second = ms_job_new(MS_JOB_KIND_RESIZE);
    first->sequence = 1;
    second->sequence = 2;
    memset(first->body_sha256, 'a', 64);
    memset(second->body_sha256, 'b', 64);
    ck_assert_int_eq(ms_job_store_insert(store, first, &err), MS_OK);
    ck_assert_int_eq(ms_job_store_insert(store, second, &err), MS_OK);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    char sql[160];
    snprintf(sql, sizeof sql, "UPDATE jobs SET state = 'archived' WHERE id = '%s'", second->id);
    ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    ms_job_table table;
    ck_assert_int_eq(ms_job_table_init(&table), 0);
    size_t skipped = 0;
    ck_assert_int_eq(ms_job_store_load(store, &table, &skipped, &err), MS_OK);
    ck_assert_uint_eq(skipped, 1);
    ck_assert_uint_eq(table.count, 1);
    ck_assert_int_eq(table.next_sequence, 3);   /* past the skipped row's 2 */
    bool contains = false;
    ck_assert_int_eq(ms_job_store_contains(store, second->id, &contains, &err), MS_OK);
    ck_assert(contains);
    ck_assert_int_eq(ms_job_store_contains(store, "0123456789abcdef0123456789abcdef", &contains,
                                           &err), MS_OK);
    ck_assert(!contains);
    ms_job_table_destroy(&table);
    ms_job_free(first);
    ms_job_free(second);
    ms_job_store_close(store);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("job_store");
    TCase *tcase = tcase_create("job_store");
    tcase_add_checked_fixture(tcase, setup, teardown);
    tcase_add_test(tcase, test_ids);
    tcase_add_test(tcase, test_job_json);
    tcase_add_test(tcase, test_table);
    tcase_add_test(tcase, test_store_round_trip);
    tcase_add_test(tcase, test_store_refuses_garbage);
    tcase_add_test(tcase, test_store_skips_unreadable_rows);
    suite_add_tcase(suite, tcase);
    return ms_test_run_suite(suite);
}
