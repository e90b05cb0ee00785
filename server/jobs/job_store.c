#include "job_store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "server/log.h"
#include "store_reserve.h"

struct ms_job_store {
    sqlite3 *db;
    pthread_mutex_t reserve_lock;   /* the connection has SQLite's mutex; this guards
                                       the reserve (HTTP workers, loop and job workers) */
    ms_store_reserve reserve;
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

/* Extended codes (the connection asks for them): a WAL index that cannot
 * grow (SHMSIZE, its one byte per page written on ENOSPC) is a full disk
 * too; it is what opening the store on a full disk meets first. */
static bool is_full(int result)
{
    return (result & 0xff) == SQLITE_FULL || result == SQLITE_IOERR_SHMSIZE;
}

/* From the result code, not sqlite3_errmsg: the connection is shared by
 * the loop and the HTTP workers, and its last message may already be
 * another thread's.  ENOSPC and friends are what the code says anyway:
 * SQLITE_FULL is the contract's disk_full (507), not an io_error. */
static ms_status db_error(ms_error *err, int result, const char *what)
{
    ms_status code = is_full(result) ? MS_ERR_DISK_FULL : MS_ERR_IO;
    ms_error_set(err, code, NULL, "job store: %s: %s", what, sqlite3_errstr(result));
    ms_error_detail_add(err, "sqlite_code", "%d", result);
    return code;
}

/* For a write that must not fail for lack of space (a deletion, a state
 * change): on SQLITE_FULL the reserve goes and the statement runs once
 * more.  A new job's insert never comes here: it needs the reserve in
 * place instead (ms_job_store_insert). */
static int step_with_reserve(ms_job_store *store, sqlite3_stmt *statement)
{
    int result = sqlite3_step(statement);
    if (!is_full(result))
        return result;
    sqlite3_reset(statement);   /* the bindings stay */
    pthread_mutex_lock(&store->reserve_lock);
    bool released = ms_store_reserve_release(&store->reserve);
    pthread_mutex_unlock(&store->reserve_lock);
    if (!released)
        return result;
    ms_log("job store: the disk is full; its reserve released to record a change "
           "(new jobs are refused until it can be made again)");
    return sqlite3_step(statement);
}

ms_status ms_job_store_restore_reserve(ms_job_store *store, ms_error *err)
{
    pthread_mutex_lock(&store->reserve_lock);
    bool was_present = store->reserve.present;
    ms_status status = ms_store_reserve_fill(&store->reserve, err);
    pthread_mutex_unlock(&store->reserve_lock);
    if (status == MS_OK && !was_present)
        ms_log("job store: reserve of %d bytes in place", MS_STORE_RESERVE_BYTES);
    return status;
}

static ms_status exec(sqlite3 *db, const char *sql, ms_error *err)
{
    char *message = NULL;
    int result = sqlite3_exec(db, sql, NULL, NULL, &message);
    if (result != SQLITE_OK) {
        ms_status code = is_full(result) ? MS_ERR_DISK_FULL : MS_ERR_IO;
        ms_error_set(err, code, NULL, "job store: %s", message != NULL ? message : sql);
        sqlite3_free(message);
        return code;
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

/* The connection, in WAL mode, with the schema. */
static ms_status open_database(const char *path, sqlite3 **database, ms_error *err)
{
    *database = NULL;
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
    sqlite3_extended_result_codes(db, 1);
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
    /* Debian's SQLite zeroes every freed page (secure_delete=1): deleting a
     * job would write its whole report again, into the WAL, on the full
     * disk the deletion is meant to relieve.  FAST zeroes only what it
     * writes anyway. */
    if (status == MS_OK)
        status = exec(db, "PRAGMA secure_delete=FAST;", err);
    if (status == MS_OK)
        status = exec(db, schema_sql, err);
    if (status == MS_OK)
        status = upgrade_schema(db, err);
    if (status != MS_OK) {
        sqlite3_close(db);
        return status;
    }
    *database = db;
    return MS_OK;
}

static char *reserve_path_of(const char *path)
{
    size_t length = strlen(path);
    char *reserve_path = malloc(length + sizeof "-reserve");
    if (reserve_path != NULL) {
        memcpy(reserve_path, path, length);
        memcpy(reserve_path + length, "-reserve", sizeof "-reserve");
    }
    return reserve_path;
}

ms_status ms_job_store_open(const char *path, ms_job_store **store, ms_error *err)
{
    *store = NULL;
    ms_job_store *opened = calloc(1, sizeof *opened);
    char *reserve_path = reserve_path_of(path);
    ms_status status = opened != NULL && reserve_path != NULL
                           ? ms_store_reserve_init(&opened->reserve, reserve_path,
                                                   MS_STORE_RESERVE_BYTES, err)
                           : ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    free(reserve_path);
    if (status == MS_OK)
        status = open_database(path, &opened->db, err);
    /* A restart on a full disk: the WAL and its index need room before
     * anything can be read.  The last process's reserve is that room. */
    if (status == MS_ERR_DISK_FULL && ms_store_reserve_release(&opened->reserve)) {
        ms_log("job store: the disk is full; the reserve released to open the store");
        status = open_database(path, &opened->db, err);
    }
    if (status != MS_OK) {
        if (opened != NULL)
            ms_store_reserve_destroy(&opened->reserve);
        free(opened);
        return status;
    }
    pthread_mutex_init(&opened->reserve_lock, NULL);
    *store = opened;
    /* Not fatal: a server started on a full disk still lists, downloads
     * and deletes; it accepts jobs once there is room again. */
    ms_error reserve_error;
    if (ms_job_store_restore_reserve(opened, &reserve_error) != MS_OK)
        ms_log("job store: %s; new jobs are refused until there is room", reserve_error.message);
    return MS_OK;
}

void ms_job_store_close(ms_job_store *store)
{
    if (store == NULL)
        return;
    sqlite3_close(store->db);
    ms_store_reserve_destroy(&store->reserve);
    pthread_mutex_destroy(&store->reserve_lock);
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
    result = step_with_reserve(store, statement);
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
    /* Accepted only with the reserve in place: then the job's end and its
     * deletion can be recorded however full the disk gets meanwhile. */
    ms_error reserve_error;
    if (ms_job_store_restore_reserve(store, &reserve_error) != MS_OK) {
        ms_status code = reserve_error.code == MS_ERR_DISK_FULL ? MS_ERR_DISK_FULL : MS_ERR_IO;
        ms_error_set(err, code, NULL, "no room for the job store's reserve (%s): no new job "
                     "until space is freed, for example by deleting finished jobs",
                     reserve_error.message);
        ms_error_detail_add(err, "reserve_bytes", "%d", MS_STORE_RESERVE_BYTES);
        return code;
    }
    sqlite3_stmt *statement = NULL;
    int result = sqlite3_prepare_v2(store->db, sql, -1, &statement, NULL);
    if (result != SQLITE_OK)
        return db_error(err, result, "insert");
    bind_job(statement, job);
    /* no second try: a new job does not get the reserve's space */
    result = sqlite3_step(statement);
    ms_status status = result == SQLITE_DONE ? MS_OK : db_error(err, result, "insert");
    sqlite3_finalize(statement);
    return status;
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
    result = step_with_reserve(store, statement);
    if (result != SQLITE_DONE)
        status = db_error(err, result, "delete");
    sqlite3_finalize(statement);
    return status;
}

ms_status ms_job_store_save_progress(ms_job_store *store, const char *id, uint64_t done,
                                     uint64_t total, ms_error *err)
{
    static const char sql[] = "UPDATE jobs SET progress_done = ?2, progress_total = ?3"
                              " WHERE id = ?1 AND state = 'running'";
    sqlite3_stmt *statement = NULL;
    int result = sqlite3_prepare_v2(store->db, sql, -1, &statement, NULL);
    if (result != SQLITE_OK)
        return db_error(err, result, "prepare progress");
    bind_text(statement, 1, id);
    sqlite3_bind_int64(statement, 2, (sqlite3_int64)done);
    sqlite3_bind_int64(statement, 3, (sqlite3_int64)total);
    /* plain step: a progress figure is not worth the reserve */
    result = sqlite3_step(statement);
    ms_status status = result == SQLITE_DONE ? MS_OK : db_error(err, result, "progress");
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
