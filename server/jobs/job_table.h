/* Every job in memory, for GET without touching SQLite.
 *
 * One mutex guards the table and every mutable field of its jobs.  Jobs are
 * kept in creation order (sequence ascending) for listing and in a hash
 * table by id for lookups.  All functions but init/destroy/lock/unlock expect
 * the caller to hold the lock. */
#ifndef MS_JOB_TABLE_H
#define MS_JOB_TABLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"

typedef struct ms_job_table {
    pthread_mutex_t mutex;
    ms_job **ordered;
    size_t count;
    size_t capacity;
    ms_job **buckets;
    size_t bucket_count;               /* power of two */
    int64_t next_sequence;
    size_t state_counts[MS_JOB_KIND_COUNT][MS_JOB_STATE_COUNT];
} ms_job_table;

int ms_job_table_init(ms_job_table *table);
void ms_job_table_destroy(ms_job_table *table);   /* frees every job */

void ms_job_table_lock(ms_job_table *table);
void ms_job_table_unlock(ms_job_table *table);

/* Takes ownership.  A job with sequence 0 gets the next one; jobs loaded
 * from the store keep theirs and must come in ascending order. */
int ms_job_table_insert(ms_job_table *table, ms_job *job);

ms_job *ms_job_table_find(const ms_job_table *table, const char *id);

/* Unlinks the job (the caller frees it). */
void ms_job_table_remove(ms_job_table *table, ms_job *job);

/* Changes the state and the per-state counts together. */
void ms_job_table_set_state(ms_job_table *table, ms_job *job, ms_job_state state);

size_t ms_job_table_count_state(const ms_job_table *table, ms_job_state state);

ms_job *ms_job_table_find_idempotency_key(const ms_job_table *table, const char *key);

/* Copies (ms_job_copy) of at most limit jobs, newest first, with sequence
 * < before (0: no bound), so the JSON is built after unlocking.
 * *next_cursor is the value for the next page, 0 when there is none.
 * Returns false when out of memory.  Free with ms_job_page_free. */
bool ms_job_table_page(const ms_job_table *table, int64_t before, size_t limit,
                       ms_job ***jobs, size_t *count, int64_t *next_cursor);

void ms_job_page_free(ms_job **jobs, size_t count);

/* {"jobs":[...], "next_cursor": "<sequence>"|null} as malloced text. */
char *ms_job_page_json(ms_job *const *jobs, size_t count, int64_t next_cursor, int64_t now_ms);

#endif
