#include "job_store.h"

#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

struct ms_job_store {
    sqlite3 *db;
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS jobs ("
    " id TEXT PRIMARY KEY,"
    " sequence INTEGER NOT NULL UNIQUE,"
    " kind TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " request TEXT NOT NULL,"
    " params TEXT NOT NULL,"
    " output_name TEXT NOT NULL,"
    " idempotency_key TEXT,"
    " body_sha256 TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " started_ms INTEGER NOT NULL DEFAULT 0,"
    " finished_ms INTEGER NOT NULL DEFAULT 0,"
    " progress_done INTEGER NOT NULL DEFAULT 0,"
    " progress_total INTEGER NOT NULL DEFAULT 0,"
    " error TEXT,"
    " result_bytes INTEGER,"
    " result_sha256 TEXT,"
    " report TEXT,"
    " result_expired INTEGER NOT NULL DEFAULT 0);";

/* From the result code, not sqlite3_errmsg: the connection is shared by
 * the loop and the HTTP workers, and its last message may already be
 * another thread's.  ENOSPC and friends are what the code says anyway. */
static ms_status db_error(ms_error *err, int result, const char *what)
{
    ms_error_set(err, MS_ERR_IO, NULL, "job store: %s: %s", what, sqlite3_errstr(result));
    ms_error_detail_add(err, "sqlite_code", "%d", result);
    return MS_ERR_IO;
}

static ms_status exec(sqlite3 *db, const char *sql, ms_error *err)
{
    char *message = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &message) != SQLITE_OK) {
        ms_error_set(err, MS_ERR_IO, NULL, "job store: %s", message != NULL ? message : sql);
        sqlite3_free(message);
        return MS_ERR_IO;
    }
    return MS_OK;
}

/* Whether jobs has the column (databases of older versions lack the later
 * ones). */
static ms_status has_column(sqlite3 *db, const char *column, bool *present, ms_error *err)
{
    *present = false;
    sqlite3_stmt *statement = NULL;
    int result = sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info('jobs')", -1,
                                    &statement, NULL);
    if (result != SQLITE_OK)
        return db_error(err, result, "prepare table_info");
    while ((result = sqlite3_step(statement)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(statement, 0);
        if (name != NULL && strcmp(name, column) == 0)
            *present = true;
    }
    sqlite3_finalize(statement);
    return result == SQLITE_DONE ? MS_OK : db_error(err, result, "table_info");
}

/* Columns added after the first version, added to a database that predates
 * them (their defaults describe the old rows). */
static ms_status upgrade_schema(sqlite3 *db, ms_error *err)
{
    bool present = false;
    ms_status status = has_column(db, "result_expired", &present, err);
    if (status == MS_OK && !present)
        status = exec(db, "ALTER TABLE jobs ADD COLUMN result_expired INTEGER NOT NULL DEFAULT 0;",
                      err);
    return status;
}

ms_status ms_job_store_open(const char *path, ms_job_store **store, ms_error *err)
{
    *store = NULL;
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
    int opened = sqlite3_open_v2(path, &db, flags, NULL);
    if (opened != SQLITE_OK) {
        /* the connection is not shared yet: its message is ours */
        ms_error_set(err, MS_ERR_IO, NULL, "job store: %s: %s", path,
                     db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(opened));
        sqlite3_close(db);
        return MS_ERR_IO;
    }
    sqlite3_busy_timeout(db, 5000);
    /* SQLite opens a write-protected file read-only without a word: every
     * submit would then fail.  Said at startup instead. */
    if (sqlite3_db_readonly(db, "main") == 1) {
        ms_error_set(err, MS_ERR_IO, NULL, "job store: %s can only be read (its permissions, "
                     "or a read-only file system)", path);
        sqlite3_close(db);
        return MS_ERR_IO;
    }
    ms_status status = exec(db, "PRAGMA journal_mode=WAL;", err);
    if (status == MS_OK)
        status = exec(db, "PRAGMA synchronous=FULL;", err);
    if (status == MS_OK)
        status = exec(db, schema_sql, err);
    if (status == MS_OK)
        status = upgrade_schema(db, err);
    if (status != MS_OK) {
        sqlite3_close(db);
        return status;
    }
    *store = malloc(sizeof **store);
    if (*store == NULL) {
        sqlite3_close(db);
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    }
    (*store)->db = db;
    return MS_OK;
}

void ms_job_store_close(ms_job_store *store)
{
    if (store == NULL)
        return;
    sqlite3_close(store->db);
    free(store);
}

static void bind_text(sqlite3_stmt *statement, int index, const char *text)
{
    if (text != NULL)
        sqlite3_bind_text(statement, index, text, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(statement, index);
}

static void bind_job(sqlite3_stmt *statement, const ms_job *job)
{
    bind_text(statement, 1, job->id);
    sqlite3_bind_int64(statement, 2, job->sequence);
    bind_text(statement, 3, ms_job_kind_name(job->kind));
    bind_text(statement, 4, ms_job_state_name(job->state));
    bind_text(statement, 5, job->request_text != NULL ? job->request_text : "{}");
    bind_text(statement, 6, job->params_text != NULL ? job->params_text : "{}");
    bind_text(statement, 7, job->output_name != NULL ? job->output_name : "");
    bind_text(statement, 8, job->idempotency_key);
    bind_text(statement, 9, job->body_sha256);
    sqlite3_bind_int64(statement, 10, job->created_ms);
    sqlite3_bind_int64(statement, 11, job->started_ms);
    sqlite3_bind_int64(statement, 12, job->finished_ms);
    sqlite3_bind_int64(statement, 13, (sqlite3_int64)job->progress_done);
    sqlite3_bind_int64(statement, 14, (sqlite3_int64)job->progress_total);
    bind_text(statement, 15, job->error_text);
    if (job->has_result) {
        sqlite3_bind_int64(statement, 16, (sqlite3_int64)job->result_bytes);
        bind_text(statement, 17, job->result_sha256);
    } else {
        sqlite3_bind_null(statement, 16);
        sqlite3_bind_null(statement, 17);
    }
    bind_text(statement, 18, job->report != NULL ? job->report->data : NULL);
    sqlite3_bind_int(statement, 19, job->result_expired ? 1 : 0);
}

static ms_status run_job_statement(ms_job_store *store, const char *sql, const ms_job *job,
                                   const char *what, ms_error *err)
{
    sqlite3_stmt *statement = NULL;
    int result = sqlite3_prepare_v2(store->db, sql, -1, &statement, NULL);
    if (result != SQLITE_OK)
        return db_error(err, result, what);
    bind_job(statement, job);
    ms_status status = MS_OK;
    result = sqlite3_step(statement);
    if (result != SQLITE_DONE)
        status = db_error(err, result, what);
    sqlite3_finalize(statement);
    return status;
}

ms_status ms_job_store_insert(ms_job_store *store, const ms_job *job, ms_error *err)
{
    static const char sql[] =
        "INSERT INTO jobs (id, sequence, kind, state, request, params,"
        " output_name, idempotency_key, body_sha256, created_ms, started_ms, finished_ms,"
        " progress_done, progress_total, error, result_bytes, result_sha256, report,"
        " result_expired)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,"
        " ?19)";
    return run_job_statement(store, sql, job, "insert", err);
}

ms_status ms_job_store_update(ms_job_store *store, const ms_job *job, ms_error *err)
{
    static const char sql[] =
        "UPDATE jobs SET sequence = ?2, kind = ?3, state = ?4, request = ?5, params = ?6,"
        " output_name = ?7, idempotency_key = ?8, body_sha256 = ?9, created_ms = ?10,"
        " started_ms = ?11, finished_ms = ?12, progress_done = ?13, progress_total = ?14,"
        " error = ?15, result_bytes = ?16, result_sha256 = ?17, result_expired = ?19,"
        /* a report, once written, stays: memory may have let go of it */
        " report = COALESCE(?18, report) WHERE id = ?1";
    return run_job_statement(store, sql, job, "update", err);
}

ms_status ms_job_store_delete(ms_job_store *store, const char *id, ms_error *err)
{
    sqlite3_stmt *statement = NULL;
    int result = sqlite3_prepare_v2(store->db, "DELETE FROM jobs WHERE id = ?1", -1, &statement,
                                    NULL);
    if (result != SQLITE_OK)
        return db_error(err, result, "prepare delete");
    bind_text(statement, 1, id);
    ms_status status = MS_OK;
    result = sqlite3_step(statement);
    if (result != SQLITE_DONE)
        status = db_error(err, result, "delete");
    sqlite3_finalize(statement);
    return status;
}

static char *column_text(sqlite3_stmt *statement, int column)
{
    const unsigned char *text = sqlite3_column_text(statement, column);
    return text != NULL ? strdup((const char *)text) : NULL;
}

static bool is_hex64(const char *text)
{
    if (text == NULL || strlen(text) != 64)
        return false;
    for (int i = 0; i < 64; i++)
        if (!((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f')))
            return false;
    return true;
}

/* One row into a job, or NULL when the row makes no sense. */
static ms_job *job_from_row(sqlite3_stmt *statement)
{
    const char *id = (const char *)sqlite3_column_text(statement, 0);
    const char *kind_name = (const char *)sqlite3_column_text(statement, 2);
    const char *state_name = (const char *)sqlite3_column_text(statement, 3);
    ms_job_kind kind;
    ms_job_state state;
    if (id == NULL || !ms_job_id_valid(id) || kind_name == NULL || state_name == NULL ||
        !ms_job_kind_from_name(kind_name, &kind) || !ms_job_state_from_name(state_name, &state))
        return NULL;
    ms_job *job = calloc(1, sizeof *job);
    if (job == NULL)
        return NULL;
    memcpy(job->id, id, MS_JOB_ID_LENGTH + 1);
    job->kind = kind;
    job->state = state;
    atomic_init(&job->cancel, 0);
    job->sequence = sqlite3_column_int64(statement, 1);
    job->request_text = column_text(statement, 4);
    job->params_text = column_text(statement, 5);
    job->output_name = column_text(statement, 6);
    job->idempotency_key = column_text(statement, 7);
    const char *body_sha = (const char *)sqlite3_column_text(statement, 8);
    snprintf(job->body_sha256, sizeof job->body_sha256, "%s", body_sha != NULL ? body_sha : "");
    job->created_ms = sqlite3_column_int64(statement, 9);
    job->started_ms = sqlite3_column_int64(statement, 10);
    job->finished_ms = sqlite3_column_int64(statement, 11);
    job->progress_done = (uint64_t)sqlite3_column_int64(statement, 12);
    job->progress_total = (uint64_t)sqlite3_column_int64(statement, 13);
    job->error_text = column_text(statement, 14);
    const char *result_sha = (const char *)sqlite3_column_text(statement, 16);
    if (sqlite3_column_type(statement, 15) != SQLITE_NULL && is_hex64(result_sha)) {
        job->has_result = true;
        job->result_bytes = (uint64_t)sqlite3_column_int64(statement, 15);
        memcpy(job->result_sha256, result_sha, 65);
    }
    job->report_in_store = sqlite3_column_int(statement, 17) != 0;
    job->result_expired = job->has_result && sqlite3_column_int(statement, 18) != 0;
    if (job->request_text == NULL || job->params_text == NULL || job->output_name == NULL ||
        job->sequence <= 0) {
        ms_job_free(job);
        return NULL;
    }
    return job;
}

ms_status ms_job_store_load(ms_job_store *store, ms_job_table *table, size_t *skipped,
                            ms_error *err)
{
    static const char sql[] =
        "SELECT id, sequence, kind, state, request, params, output_name, idempotency_key,"
        " body_sha256, created_ms, started_ms, finished_ms, progress_done, progress_total,"
        " error, result_bytes, result_sha256, report IS NOT NULL, result_expired"
        " FROM jobs ORDER BY sequence";
    *skipped = 0;
    sqlite3_stmt *statement = NULL;
    int result = sqlite3_prepare_v2(store->db, sql, -1, &statement, NULL);
    if (result != SQLITE_OK)
        return db_error(err, result, "prepare load");
    ms_status status = MS_OK;
    int step;
    while ((step = sqlite3_step(statement)) == SQLITE_ROW) {
        ms_job *job = job_from_row(statement);
        if (job == NULL) {
            /* a row of a newer version, say: left alone, and its sequence
             * not given to a new job (the column is UNIQUE) */
            sqlite3_int64 sequence = sqlite3_column_int64(statement, 1);
            if (sequence >= table->next_sequence)
                table->next_sequence = sequence + 1;
            (*skipped)++;
            continue;
        }
        if (ms_job_table_insert(table, job) != 0) {
            ms_job_free(job);
            status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory loading jobs");
            break;
        }
    }
    if (status == MS_OK && step != SQLITE_DONE)
        status = db_error(err, step, "load");
    sqlite3_finalize(statement);
    return status;
}

ms_status ms_job_store_contains(ms_job_store *store, const char *id, bool *contains,
                                ms_error *err)
{
    *contains = false;
    sqlite3_stmt *statement = NULL;
    int result = sqlite3_prepare_v2(store->db, "SELECT 1 FROM jobs WHERE id = ?1", -1,
                                    &statement, NULL);
    if (result != SQLITE_OK)
        return db_error(err, result, "prepare contains");
    sqlite3_bind_text(statement, 1, id, -1, SQLITE_TRANSIENT);
    result = sqlite3_step(statement);
    ms_status status = MS_OK;
    if (result == SQLITE_ROW)
        *contains = true;
    else if (result != SQLITE_DONE)
        status = db_error(err, result, "contains");
    sqlite3_finalize(statement);
    return status;
}

ms_status ms_job_store_read_report(ms_job_store *store, const char *id, ms_shared_text **report,
                                   ms_error *err)
{
    *report = NULL;
    sqlite3_stmt *statement = NULL;
    int result = sqlite3_prepare_v2(store->db, "SELECT report FROM jobs WHERE id = ?1", -1,
                                    &statement, NULL);
    if (result != SQLITE_OK)
        return db_error(err, result, "prepare report");
    sqlite3_bind_text(statement, 1, id, -1, SQLITE_TRANSIENT);
    ms_status status = MS_OK;
    int step = sqlite3_step(statement);
    if (step == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(statement, 0);
        *report = ms_shared_text_new(text);
        if (text != NULL && *report == NULL)
            status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory reading a report");
    } else if (step != SQLITE_DONE) {
        status = db_error(err, step, "report");
    }
    sqlite3_finalize(statement);
    return status;
}
