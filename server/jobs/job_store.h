/* Durable job records in SQLite (DATA/jobs.sqlite3, WAL, synchronous=FULL).
 *
 * Written on job creation, on every state transition and on deletion, and
 * a running job's progress at most about once a second (job_runner.c), so
 * that a job interrupted by a crash shows how far it got.  Read once, at
 * start, and for a finished job's report.  The connection is serialized
 * (SQLite's own mutex), so HTTP threads, the loop and job workers may all
 * write.
 *
 * A full disk: SQLITE_FULL is disk_full (507), not io_error.  Deletions
 * and state changes still go through, on the space of a reserve kept
 * beside the database (DATA/jobs.sqlite3-reserve, store_reserve.h), and a
 * new job is refused (disk_full) while that reserve cannot be made. */
#ifndef MS_JOB_STORE_H
#define MS_JOB_STORE_H

#include "core/error.h"
#include "job.h"
#include "job_table.h"

typedef struct ms_job_store ms_job_store;

ms_status ms_job_store_open(const char *path, ms_job_store **store, ms_error *err);
void ms_job_store_close(ms_job_store *store);

/* A new record (creation); disk_full, and nothing stored, when the reserve
 * is not in place and cannot be made. */
ms_status ms_job_store_insert(ms_job_store *store, const ms_job *job, ms_error *err);

/* Rewrites an existing record (transitions).  A record deleted meanwhile
 * stays deleted: a late update never brings a removed job back. */
ms_status ms_job_store_update(ms_job_store *store, const ms_job *job, ms_error *err);

ms_status ms_job_store_delete(ms_job_store *store, const char *id, ms_error *err);

/* A running job's progress (a record in another state is left alone).
 * Never uses the reserve: losing a progress figure to a full disk is fine. */
ms_status ms_job_store_save_progress(ms_job_store *store, const char *id, uint64_t done,
                                     uint64_t total, ms_error *err);

/* Makes the reserve again if it was released (or never made); call after
 * space was freed.  disk_full when there is still no room for it. */
ms_status ms_job_store_restore_reserve(ms_job_store *store, ms_error *err);

/* The stored report of a job (*report NULL when it has none or the record is
 * gone). */
/* Whether a row with this id exists, readable or not. */
ms_status ms_job_store_contains(ms_job_store *store, const char *id, bool *contains,
                                ms_error *err);

ms_status ms_job_store_read_report(ms_job_store *store, const char *id, ms_shared_text **report,
                                   ms_error *err);

/* Loads every record into the (empty) table in creation order; reports stay
 * in the store (report_in_store).  Rows that
 * cannot be understood are skipped and counted in *skipped. */
ms_status ms_job_store_load(ms_job_store *store, ms_job_table *table, size_t *skipped,
                            ms_error *err);

#endif
