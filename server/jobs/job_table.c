#include "job_table.h"

#include <stdlib.h>
#include <string.h>

enum { INITIAL_BUCKETS = 256 };

static size_t hash_id(const char *id)
{
    /* ids are random hex: their first 16 characters are hash enough */
    size_t hash = 0;
    for (int i = 0; i < 16 && id[i] != '\0'; i++)
        hash = hash * 16 + (size_t)(id[i] <= '9' ? id[i] - '0' : id[i] - 'a' + 10);
    return hash;
}

int ms_job_table_init(ms_job_table *table)
{
    memset(table, 0, sizeof *table);
    table->bucket_count = INITIAL_BUCKETS;
    table->buckets = calloc(table->bucket_count, sizeof *table->buckets);
    table->next_sequence = 1;
    if (table->buckets == NULL)
        return -1;
    return pthread_mutex_init(&table->mutex, NULL);
}

void ms_job_table_destroy(ms_job_table *table)
{
    for (size_t i = 0; i < table->count; i++)
        ms_job_free(table->ordered[i]);
    free(table->ordered);
    free(table->buckets);
    pthread_mutex_destroy(&table->mutex);
    memset(table, 0, sizeof *table);
}

void ms_job_table_lock(ms_job_table *table)
{
    pthread_mutex_lock(&table->mutex);
}

void ms_job_table_unlock(ms_job_table *table)
{
    pthread_mutex_unlock(&table->mutex);
}

static void link_bucket(ms_job **buckets, size_t bucket_count, ms_job *job)
{
    size_t slot = hash_id(job->id) & (bucket_count - 1);
    job->hash_next = buckets[slot];
    buckets[slot] = job;
}

static int grow_buckets(ms_job_table *table)
{
    size_t bucket_count = table->bucket_count * 2;
    ms_job **buckets = calloc(bucket_count, sizeof *buckets);
    if (buckets == NULL)
        return -1;
    for (size_t i = 0; i < table->count; i++)
        link_bucket(buckets, bucket_count, table->ordered[i]);
    free(table->buckets);
    table->buckets = buckets;
    table->bucket_count = bucket_count;
    return 0;
}

int ms_job_table_insert(ms_job_table *table, ms_job *job)
{
    if (table->count == table->capacity) {
        size_t capacity = table->capacity == 0 ? 64 : table->capacity * 2;
        ms_job **ordered = realloc(table->ordered, capacity * sizeof *ordered);
        if (ordered == NULL)
            return -1;
        table->ordered = ordered;
        table->capacity = capacity;
    }
    if (table->count + 1 > table->bucket_count && grow_buckets(table) != 0)
        return -1;
    if (job->sequence == 0)
        job->sequence = table->next_sequence;
    if (job->sequence >= table->next_sequence)
        table->next_sequence = job->sequence + 1;
    table->ordered[table->count++] = job;
    link_bucket(table->buckets, table->bucket_count, job);
    table->state_counts[job->kind][job->state]++;
    return 0;
}

ms_job *ms_job_table_find(const ms_job_table *table, const char *id)
{
    if (!ms_job_id_valid(id))
        return NULL;
    ms_job *job = table->buckets[hash_id(id) & (table->bucket_count - 1)];
    while (job != NULL && strcmp(job->id, id) != 0)
        job = job->hash_next;
    return job;
}

/* Position in the ordered array by binary search on the sequence. */
static size_t ordered_position(const ms_job_table *table, int64_t sequence)
{
    size_t low = 0, high = table->count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (table->ordered[middle]->sequence < sequence)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

void ms_job_table_remove(ms_job_table *table, ms_job *job)
{
    ms_job **link = &table->buckets[hash_id(job->id) & (table->bucket_count - 1)];
    while (*link != NULL && *link != job)
        link = &(*link)->hash_next;
    if (*link == NULL)
        return;
    *link = job->hash_next;
    job->hash_next = NULL;
    size_t position = ordered_position(table, job->sequence);
    if (position < table->count && table->ordered[position] == job) {
        memmove(&table->ordered[position], &table->ordered[position + 1],
                (table->count - position - 1) * sizeof *table->ordered);
        table->count--;
    }
    table->state_counts[job->kind][job->state]--;
}

void ms_job_table_set_state(ms_job_table *table, ms_job *job, ms_job_state state)
{
    table->state_counts[job->kind][job->state]--;
    job->state = state;
    table->state_counts[job->kind][job->state]++;
}

size_t ms_job_table_count_state(const ms_job_table *table, ms_job_state state)
{
    size_t count = 0;
    for (int kind = 0; kind < MS_JOB_KIND_COUNT; kind++)
        count += table->state_counts[kind][state];
    return count;
}

ms_job *ms_job_table_find_idempotency_key(const ms_job_table *table, const char *key)
{
    for (size_t i = table->count; i-- > 0;) {
        ms_job *job = table->ordered[i];
        if (job->idempotency_key != NULL && strcmp(job->idempotency_key, key) == 0)
            return job;
    }
    return NULL;
}

bool ms_job_table_page(const ms_job_table *table, int64_t before, size_t limit,
                       ms_job ***jobs, size_t *count, int64_t *next_cursor)
{
    size_t end = before > 0 ? ordered_position(table, before) : table->count;
    size_t wanted = end < limit ? end : limit;
    *jobs = calloc(wanted + 1, sizeof **jobs);
    *count = 0;
    *next_cursor = 0;
    if (*jobs == NULL)
        return false;
    while (*count < wanted) {
        ms_job *copy = ms_job_copy(table->ordered[--end]);
        if (copy == NULL) {
            ms_job_page_free(*jobs, *count);
            *jobs = NULL;
            *count = 0;
            return false;
        }
        (*jobs)[(*count)++] = copy;
    }
    if (end > 0 && *count > 0)
        *next_cursor = table->ordered[end]->sequence;
    return true;
}

void ms_job_page_free(ms_job **jobs, size_t count)
{
    for (size_t i = 0; jobs != NULL && i < count; i++)
        ms_job_free(jobs[i]);
    free(jobs);
}

char *ms_job_page_json(ms_job *const *jobs, size_t count, int64_t next_cursor, int64_t now_ms)
{
    size_t estimate = 64;
    for (size_t i = 0; i < count; i++)
        estimate += 1024 + (jobs[i]->report != NULL ? jobs[i]->report->length : 0);
    ms_text out;
    ms_text_init(&out, estimate);
    ms_text_puts(&out, "{\"jobs\":[");
    for (size_t i = 0; i < count; i++) {
        if (i > 0)
            ms_text_puts(&out, ",");
        ms_job_write_json(&out, jobs[i], now_ms);
    }
    if (next_cursor > 0)
        ms_text_printf(&out, "],\"next_cursor\":\"%lld\"}", (long long)next_cursor);
    else
        ms_text_puts(&out, "],\"next_cursor\":null}");
    return ms_text_take(&out);
}
