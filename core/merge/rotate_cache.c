/* The rotate decomposition cache: an index of records under one mutex.
 *
 * A record is one key's entry in one of three states: being produced (a
 * writer exists), being checked (one acquire maps and hashes its file with
 * the lock released), or ready.  Whoever finds a key producing or checking
 * waits on the condition variable, so one key is never produced or checked
 * twice at once.  Stored records are also on a recency list (newest first)
 * and counted in bytes; a private one (over the capacity) lives only while
 * held.  The ms_rotate_cache_entry handed to callers is the record itself,
 * with a count of holders: a held record is never evicted, and its file
 * mapping (one for all holders) is unmapped at the last release. */
#include "rotate_cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/format/output_file.h"
#include "rotate_cache_file.h"

enum {
    CANCEL_POLL_MS = 50,
    FIRST_BUCKET_COUNT = 64,
    TEMP_NAME_BYTES = 64,
    TEMP_NAME_ATTEMPTS = 16,
    FIRST_BUFFER_BYTES = 64u << 10,
};

typedef enum record_state {
    RECORD_PRODUCING,
    RECORD_CHECKING,
    RECORD_READY,
} record_state;

struct ms_rotate_cache_entry {
    ms_rotate_cache *cache;
    ms_rotate_cache_key key;
    record_state state;
    bool stored;                 /* on the recency list, in bytes; else private */
    unsigned holders;
    uint64_t payload_size;
    unsigned char *base;         /* disk: the file's mapping while held;
                                    memory: the payload's pages, always */
    size_t base_size;
    int fd;                      /* disk: the file, open while mapped; else -1 */
    ms_rotate_cache_entry *bucket_next;
    ms_rotate_cache_entry *newer, *older;
};

struct ms_rotate_cache {
    char *directory;             /* NULL: memory only */
    int directory_fd;
    uint64_t capacity;
    pthread_mutex_t lock;        /* guards everything below */
    pthread_cond_t changed;      /* a record left producing or checking */
    ms_rotate_cache_entry **buckets;
    size_t bucket_count;         /* a power of two */
    size_t record_count;
    ms_rotate_cache_entry *newest, *oldest;
    int64_t last_stamp_ns;       /* recency stamps only go up */
    uint64_t temp_sequence;
    unsigned waiting;
    ms_rotate_cache_stats stats;
};

struct ms_rotate_cache_writer {
    ms_rotate_cache_entry *record;
    int fd;                      /* disk: the temporary; -1 once closed */
    char temp_name[TEMP_NAME_BYTES];
    bool temp_exists;
    XXH3_state_t *hash;
    uint64_t size;
    unsigned char *buffer;       /* memory: anonymous pages grown by mremap */
    size_t buffer_capacity;
    ms_status failure;           /* set by a failed append */
    ms_error failure_error;
};

static bool on_disk(const ms_rotate_cache *cache)
{
    return cache->directory != NULL;
}

static uint64_t stored_bytes(const ms_rotate_cache_entry *record)
{
    return MS_ROTATE_CACHE_HEADER_BYTES + record->payload_size;
}

static ms_status out_of_memory(ms_error *err)
{
    return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
}

/* disk_full or io_error naming the file: "cannot ACTION rotate cache file
 * "PATH": strerror", details errno and path. */
static ms_status file_error(ms_error *err, int error_number, const char *action,
                            const ms_rotate_cache *cache, const char *name)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", cache->directory, name);
    char what[sizeof path + 32];
    snprintf(what, sizeof what, "rotate cache file \"%s\"", path);
    ms_status code = ms_output_file_io_error(err, error_number, action, what);
    ms_error_detail_add(err, "path", "%s", path);
    return code;
}

/* ---- the index: a hash table of records and the recency list ---- */

static size_t bucket_of(const ms_rotate_cache *cache, const ms_rotate_cache_key *key)
{
    return (size_t)XXH3_64bits(key->bytes, sizeof key->bytes) & (cache->bucket_count - 1);
}

static ms_rotate_cache_entry *find_record(const ms_rotate_cache *cache,
                                          const ms_rotate_cache_key *key)
{
    ms_rotate_cache_entry *record = cache->buckets[bucket_of(cache, key)];
    while (record != NULL && memcmp(record->key.bytes, key->bytes, sizeof key->bytes) != 0)
        record = record->bucket_next;
    return record;
}

/* Doubles the table when it is full; keeps the old one when out of memory
 * (chains just get longer). */
static void grow_buckets(ms_rotate_cache *cache)
{
    if (cache->record_count < cache->bucket_count)
        return;
    size_t old_count = cache->bucket_count;
    ms_rotate_cache_entry **old = cache->buckets;
    ms_rotate_cache_entry **buckets = calloc(old_count * 2, sizeof *buckets);
    if (buckets == NULL)
        return;
    cache->buckets = buckets;
    cache->bucket_count = old_count * 2;
    for (size_t i = 0; i < old_count; i++) {
        while (old[i] != NULL) {
            ms_rotate_cache_entry *record = old[i];
            old[i] = record->bucket_next;
            size_t bucket = bucket_of(cache, &record->key);
            record->bucket_next = buckets[bucket];
            buckets[bucket] = record;
        }
    }
    free(old);
}

static ms_rotate_cache_entry *add_record(ms_rotate_cache *cache, const ms_rotate_cache_key *key,
                                         record_state state)
{
    ms_rotate_cache_entry *record = calloc(1, sizeof *record);
    if (record == NULL)
        return NULL;
    record->cache = cache;
    record->key = *key;
    record->state = state;
    record->fd = -1;
    size_t bucket = bucket_of(cache, key);
    record->bucket_next = cache->buckets[bucket];
    cache->buckets[bucket] = record;
    cache->record_count++;
    grow_buckets(cache);
    return record;
}

static void unlink_recency(ms_rotate_cache *cache, ms_rotate_cache_entry *record)
{
    if (record->newer != NULL)
        record->newer->older = record->older;
    else
        cache->newest = record->older;
    if (record->older != NULL)
        record->older->newer = record->newer;
    else
        cache->oldest = record->newer;
    record->newer = record->older = NULL;
}

static void link_newest(ms_rotate_cache *cache, ms_rotate_cache_entry *record)
{
    record->older = cache->newest;
    record->newer = NULL;
    if (cache->newest != NULL)
        cache->newest->newer = record;
    else
        cache->oldest = record;
    cache->newest = record;
}

static void store_record(ms_rotate_cache *cache, ms_rotate_cache_entry *record)
{
    record->stored = true;
    link_newest(cache, record);
    cache->stats.entries++;
    cache->stats.bytes += stored_bytes(record);
}

static void unstore_record(ms_rotate_cache *cache, ms_rotate_cache_entry *record)
{
    if (!record->stored)
        return;
    unlink_recency(cache, record);
    record->stored = false;
    cache->stats.entries--;
    cache->stats.bytes -= stored_bytes(record);
}

/* Takes the record out of the table and frees it with its memory; the
 * caller has dealt with its file. */
static void remove_record(ms_rotate_cache *cache, ms_rotate_cache_entry *record)
{
    unstore_record(cache, record);
    ms_rotate_cache_entry **link = &cache->buckets[bucket_of(cache, &record->key)];
    while (*link != record)
        link = &(*link)->bucket_next;
    *link = record->bucket_next;
    cache->record_count--;
    if (record->base != NULL)
        munmap(record->base, record->base_size);
    if (record->fd >= 0)
        close(record->fd);
    free(record);
}

static void delete_file(const ms_rotate_cache *cache, const ms_rotate_cache_key *key)
{
    char name[MS_ROTATE_CACHE_FILE_NAME_BYTES];
    ms_rotate_cache_file_name(key, name);
    unlinkat(cache->directory_fd, name, 0);
}

static bool evictable(const ms_rotate_cache_entry *record)
{
    return record->holders == 0 && record->state == RECORD_READY;
}

static void evict(ms_rotate_cache *cache, ms_rotate_cache_entry *record)
{
    if (on_disk(cache))
        delete_file(cache, &record->key);
    remove_record(cache, record);
    cache->stats.evictions++;
}

/* Evicts the least recently used records nobody holds until bytes more fit
 * the capacity; false (nothing evicted) when they cannot. */
static bool make_room(ms_rotate_cache *cache, uint64_t bytes)
{
    if (bytes > cache->capacity)
        return false;
    uint64_t pinned = 0;
    for (const ms_rotate_cache_entry *record = cache->newest; record; record = record->older)
        if (!evictable(record))
            pinned += stored_bytes(record);
    if (pinned > cache->capacity - bytes)
        return false;
    ms_rotate_cache_entry *record = cache->oldest;
    while (cache->stats.bytes > cache->capacity - bytes) {
        ms_rotate_cache_entry *newer = record->newer;
        if (evictable(record))
            evict(cache, record);
        record = newer;
    }
    return true;
}

/* A recency stamp later than every earlier one (file times are coarse
 * enough for two hits to share one otherwise). */
static int64_t next_stamp(ms_rotate_cache *cache)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t stamp = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    if (stamp <= cache->last_stamp_ns)
        stamp = cache->last_stamp_ns + 1;
    cache->last_stamp_ns = stamp;
    return stamp;
}

static void stamp_times(int64_t stamp, struct timespec times[2])
{
    times[0].tv_sec = times[1].tv_sec = (time_t)(stamp / 1000000000);
    times[0].tv_nsec = times[1].tv_nsec = (long)(stamp % 1000000000);
}

/* Most recently used now, here and in the file's mtime (for the next
 * process); a file time that cannot be set only costs recency. */
static void touch(ms_rotate_cache *cache, ms_rotate_cache_entry *record)
{
    unlink_recency(cache, record);
    link_newest(cache, record);
    if (!on_disk(cache))
        return;
    struct timespec times[2];
    stamp_times(next_stamp(cache), times);
    char name[MS_ROTATE_CACHE_FILE_NAME_BYTES];
    ms_rotate_cache_file_name(&record->key, name);
    utimensat(cache->directory_fd, name, times, AT_SYMLINK_NOFOLLOW);
}

/* ---- opening: the folder and what is in it ---- */

/* mkdir -p with mode 0700 for what it creates. */
static ms_status make_directories(const char *directory, ms_error *err)
{
    char *path = strdup(directory);
    if (path == NULL)
        return out_of_memory(err);
    ms_status status = MS_OK;
    for (char *slash = path + 1;; slash++) {
        if (*slash != '/' && *slash != '\0')
            continue;
        char saved = *slash;
        *slash = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            status = ms_error_set(err, errno == ENOSPC ? MS_ERR_DISK_FULL : MS_ERR_IO, NULL,
                                  "cannot create rotate cache folder \"%s\": %s", path,
                                  strerror(errno));
            ms_error_detail_add(err, "path", "%s", path);
            break;
        }
        *slash = saved;
        if (saved == '\0')
            break;
    }
    free(path);
    return status;
}

typedef struct found_entry {
    ms_rotate_cache_entry *record;
    int64_t mtime_ns;
} found_entry;

static int oldest_first(const void *left, const void *right)
{
    const found_entry *a = left, *b = right;
    if (a->mtime_ns != b->mtime_ns)
        return a->mtime_ns < b->mtime_ns ? -1 : 1;
    return memcmp(a->record->key.bytes, b->record->key.bytes, MS_ROTATE_CACHE_KEY_BYTES);
}

/* One directory entry at open: index a valid entry file, drop a damaged
 * one or a link in an entry's place, remove a leftover temporary, leave
 * anything else alone. */
static ms_status scan_name(ms_rotate_cache *cache, const char *name, found_entry **found,
                           size_t *found_count, size_t *found_capacity, ms_error *err)
{
    ms_rotate_cache_key key;
    struct stat info;
    if (ms_rotate_cache_is_leftover_temp(name)) {
        if (fstatat(cache->directory_fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 &&
            !S_ISDIR(info.st_mode))
            unlinkat(cache->directory_fd, name, 0);
        return MS_OK;
    }
    if (!ms_rotate_cache_parse_file_name(name, &key) || find_record(cache, &key) != NULL ||
        fstatat(cache->directory_fd, name, &info, AT_SYMLINK_NOFOLLOW) != 0 ||
        !(S_ISREG(info.st_mode) || S_ISLNK(info.st_mode)))
        return MS_OK;
    uint64_t payload_size = 0;
    int64_t mtime_ns = 0;
    int error_number = 0;
    ms_rotate_cache_map_result result = ms_rotate_cache_file_check(
        cache->directory_fd, name, &key, &payload_size, &mtime_ns, &error_number);
    if (result == MS_ROTATE_CACHE_DAMAGED) {
        unlinkat(cache->directory_fd, name, 0);
        cache->stats.corrupt_dropped++;
        return MS_OK;
    }
    if (result != MS_ROTATE_CACHE_MAPPED)   /* gone meanwhile, or unreadable: not ours to use */
        return MS_OK;
    if (*found_count == *found_capacity) {
        size_t capacity = *found_capacity ? 2 * *found_capacity : 64;
        found_entry *grown = realloc(*found, capacity * sizeof *grown);
        if (grown == NULL)
            return out_of_memory(err);
        *found = grown;
        *found_capacity = capacity;
    }
    ms_rotate_cache_entry *record = add_record(cache, &key, RECORD_READY);
    if (record == NULL)
        return out_of_memory(err);
    record->payload_size = payload_size;
    (*found)[(*found_count)++] = (found_entry){record, mtime_ns};
    if (mtime_ns > cache->last_stamp_ns)
        cache->last_stamp_ns = mtime_ns;
    return MS_OK;
}

static ms_status scan_directory(ms_rotate_cache *cache, ms_error *err)
{
    int fd = dup(cache->directory_fd);
    DIR *listing = fd >= 0 ? fdopendir(fd) : NULL;
    if (listing == NULL) {
        int error_number = errno;
        if (fd >= 0)
            close(fd);
        return file_error(err, error_number, "list", cache, ".");
    }
    found_entry *found = NULL;
    size_t found_count = 0, found_capacity = 0;
    ms_status status = MS_OK;
    struct dirent *item;
    while (status == MS_OK && (item = readdir(listing)) != NULL)
        status = scan_name(cache, item->d_name, &found, &found_count, &found_capacity, err);
    closedir(listing);
    if (status == MS_OK) {
        if (found_count > 0)
            qsort(found, found_count, sizeof *found, oldest_first);
        for (size_t i = 0; i < found_count; i++)
            store_record(cache, found[i].record);
        while (cache->stats.bytes > cache->capacity)
            evict(cache, cache->oldest);
    }
    free(found);
    return status;
}

ms_status ms_rotate_cache_open(const char *directory, uint64_t capacity_bytes,
                               ms_rotate_cache **cache_out, ms_error *err)
{
    if (cache_out == NULL)
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL, "no place for the cache");
    *cache_out = NULL;
    if (directory != NULL && directory[0] == '\0')
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL,
                            "the rotate cache folder is an empty path");
    ms_rotate_cache *cache = calloc(1, sizeof *cache);
    if (cache == NULL)
        return out_of_memory(err);
    cache->directory_fd = -1;
    cache->capacity = capacity_bytes;
    cache->stats.capacity_bytes = capacity_bytes;
    cache->bucket_count = FIRST_BUCKET_COUNT;
    cache->buckets = calloc(cache->bucket_count, sizeof *cache->buckets);
    pthread_condattr_t attributes;
    pthread_condattr_init(&attributes);
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    pthread_mutex_init(&cache->lock, NULL);
    pthread_cond_init(&cache->changed, &attributes);
    pthread_condattr_destroy(&attributes);
    ms_status status = MS_OK;
    if (cache->buckets == NULL) {
        status = out_of_memory(err);
        goto done;
    }
    if (directory == NULL)
        goto done;
    cache->directory = strdup(directory);
    if (cache->directory == NULL) {
        status = out_of_memory(err);
        goto done;
    }
    status = make_directories(directory, err);
    if (status != MS_OK)
        goto done;
    cache->directory_fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cache->directory_fd < 0) {
        int error_number = errno;
        status = ms_error_set(err, MS_ERR_IO, NULL, "cannot open rotate cache folder \"%s\": %s",
                              directory, strerror(error_number));
        ms_error_detail_add(err, "path", "%s", directory);
        goto done;
    }
    status = scan_directory(cache, err);
done:
    if (status != MS_OK) {
        ms_rotate_cache_close(cache);
        return status;
    }
    *cache_out = cache;
    return MS_OK;
}

void ms_rotate_cache_close(ms_rotate_cache *cache)
{
    if (cache == NULL)
        return;
    if (cache->buckets != NULL) {
        for (size_t i = 0; i < cache->bucket_count; i++)
            while (cache->buckets[i] != NULL)
                remove_record(cache, cache->buckets[i]);
        free(cache->buckets);
    }
    if (cache->directory_fd >= 0)
        close(cache->directory_fd);
    free(cache->directory);
    pthread_cond_destroy(&cache->changed);
    pthread_mutex_destroy(&cache->lock);
    free(cache);
}

/* ---- acquire ---- */

/* Under the lock: waits up to CANCEL_POLL_MS for a record to change. */
static void wait_a_while(ms_rotate_cache *cache)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_nsec += CANCEL_POLL_MS * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    cache->waiting++;
    pthread_cond_timedwait(&cache->changed, &cache->lock, &deadline);
    cache->waiting--;
}

/* Under the lock, record checking (so nobody else touches it): maps and
 * verifies its file with the lock released.  A file that is missing or
 * damaged leaves the record producing for this caller: *produce. */
static ms_status check_record(ms_rotate_cache *cache, ms_rotate_cache_entry *record,
                              const atomic_int *cancel, bool *produce, ms_error *err)
{
    char name[MS_ROTATE_CACHE_FILE_NAME_BYTES];
    ms_rotate_cache_file_name(&record->key, name);
    unsigned char *base = NULL;
    uint64_t payload_size = 0;
    int fd = -1, error_number = 0;
    pthread_mutex_unlock(&cache->lock);
    ms_rotate_cache_map_result result = ms_rotate_cache_file_map(
        cache->directory_fd, name, &record->key, cancel, &base, &fd, &payload_size, &error_number);
    pthread_mutex_lock(&cache->lock);
    pthread_cond_broadcast(&cache->changed);
    if (result == MS_ROTATE_CACHE_MAPPED) {
        if (payload_size != record->payload_size) {   /* rewritten by another process */
            unstore_record(cache, record);
            record->payload_size = payload_size;
            store_record(cache, record);
        }
        record->base = base;
        record->base_size = (size_t)stored_bytes(record);
        record->fd = fd;
        record->state = RECORD_READY;
        return MS_OK;
    }
    if (result == MS_ROTATE_CACHE_CHECK_CANCELLED) {
        record->state = RECORD_READY;
        return ms_error_set(err, MS_ERR_CANCELLED, NULL, "cancelled");
    }
    if (result == MS_ROTATE_CACHE_MAP_FAILED) {
        record->state = RECORD_READY;
        return file_error(err, error_number, "read", cache, name);
    }
    if (result == MS_ROTATE_CACHE_DAMAGED) {
        unlinkat(cache->directory_fd, name, 0);
        cache->stats.corrupt_dropped++;
    }
    unstore_record(cache, record);
    record->payload_size = 0;
    record->state = RECORD_PRODUCING;
    *produce = true;
    return MS_OK;
}

static ms_status new_writer(ms_rotate_cache *cache, ms_rotate_cache_entry *record,
                            uint64_t sequence, ms_rotate_cache_writer **writer_out,
                            ms_error *err);

ms_status ms_rotate_cache_acquire(ms_rotate_cache *cache, const ms_rotate_cache_key *key,
                                  const atomic_int *cancel, ms_rotate_cache_entry **entry,
                                  ms_rotate_cache_writer **writer, ms_error *err)
{
    if (entry != NULL)
        *entry = NULL;
    if (writer != NULL)
        *writer = NULL;
    if (cache == NULL || key == NULL || entry == NULL || writer == NULL)
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL,
                            "rotate cache acquire without a cache, key or outputs");
    ms_status status = MS_OK;
    bool produce = false;
    ms_rotate_cache_entry *record;
    pthread_mutex_lock(&cache->lock);
    for (;;) {
        record = find_record(cache, key);
        if (record == NULL) {
            record = add_record(cache, key, RECORD_PRODUCING);
            if (record == NULL)
                status = out_of_memory(err);
            produce = record != NULL;
            break;
        }
        if (record->state == RECORD_READY && record->base == NULL) {
            record->state = RECORD_CHECKING;
            status = check_record(cache, record, cancel, &produce, err);
            if (status != MS_OK || produce)
                break;
        }
        if (record->state == RECORD_READY) {
            record->holders++;
            if (record->stored)
                touch(cache, record);
            cache->stats.hits++;
            *entry = record;
            break;
        }
        if (cancel != NULL && atomic_load(cancel)) {
            status = ms_error_set(err, MS_ERR_CANCELLED, NULL, "cancelled");
            break;
        }
        wait_a_while(cache);
    }
    uint64_t sequence = cache->temp_sequence++;
    if (produce)
        cache->stats.misses++;
    pthread_mutex_unlock(&cache->lock);
    if (produce)
        status = new_writer(cache, record, sequence, writer, err);
    return status;
}

/* ---- writers ---- */

/* Drops the writer's record (nothing was stored) and wakes its waiters. */
static void forget_record(ms_rotate_cache *cache, ms_rotate_cache_entry *record)
{
    pthread_mutex_lock(&cache->lock);
    remove_record(cache, record);
    pthread_cond_broadcast(&cache->changed);
    pthread_mutex_unlock(&cache->lock);
}

static void remove_temp(ms_rotate_cache_writer *writer)
{
    if (writer->fd >= 0)
        close(writer->fd);
    writer->fd = -1;
    if (writer->temp_exists)
        unlinkat(writer->record->cache->directory_fd, writer->temp_name, 0);
    writer->temp_exists = false;
}

static void free_writer(ms_rotate_cache_writer *writer)
{
    if (writer->buffer != NULL)
        munmap(writer->buffer, writer->buffer_capacity);
    XXH3_freeState(writer->hash);
    free(writer);
}

/* write() until done, retrying interruptions and short writes. */
static int write_all(int fd, const unsigned char *data, size_t size)
{
    while (size > 0) {
        ssize_t written = write(fd, data, size);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0)
            return written < 0 ? errno : EIO;
        data += written;
        size -= (size_t)written;
    }
    return 0;
}

/* The temporary beside the entries, with room for the header first (its
 * bytes are written now so that the header's rewrite at commit never needs
 * new space). */
static ms_status create_temp(ms_rotate_cache *cache, ms_rotate_cache_writer *writer,
                             uint64_t sequence, ms_error *err)
{
    for (int attempt = 0; writer->fd < 0; attempt++) {
        ms_rotate_cache_temp_name(writer->temp_name, sizeof writer->temp_name, sequence);
        writer->fd = openat(cache->directory_fd, writer->temp_name,
                            O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (writer->fd < 0 && (errno != EEXIST || attempt + 1 == TEMP_NAME_ATTEMPTS))
            return file_error(err, errno, "create", cache, writer->temp_name);
    }
    writer->temp_exists = true;
    static const unsigned char zeros[MS_ROTATE_CACHE_HEADER_BYTES];
    int error_number = write_all(writer->fd, zeros, sizeof zeros);
    if (error_number != 0) {
        ms_status status = file_error(err, error_number, "write", cache, writer->temp_name);
        remove_temp(writer);
        return status;
    }
    return MS_OK;
}

static ms_status new_writer(ms_rotate_cache *cache, ms_rotate_cache_entry *record,
                            uint64_t sequence, ms_rotate_cache_writer **writer_out,
                            ms_error *err)
{
    ms_status status = MS_OK;
    ms_rotate_cache_writer *writer = calloc(1, sizeof *writer);
    if (writer == NULL) {
        forget_record(cache, record);
        return out_of_memory(err);
    }
    writer->record = record;
    writer->fd = -1;
    writer->hash = XXH3_createState();
    if (writer->hash == NULL) {
        status = out_of_memory(err);
        goto done;
    }
    XXH3_64bits_reset(writer->hash);
    if (on_disk(cache))
        status = create_temp(cache, writer, sequence, err);
done:
    if (status != MS_OK) {
        free_writer(writer);
        forget_record(cache, record);
        return status;
    }
    *writer_out = writer;
    return MS_OK;
}

/* Memory only: room for size more bytes.  Anonymous pages grown with
 * mremap are page aligned and never copied. */
static ms_status reserve_buffer(ms_rotate_cache_writer *writer, size_t size, ms_error *err)
{
    if (size > SIZE_MAX / 2 - writer->size)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "rotate cache entry too large");
    size_t needed = (size_t)writer->size + size;
    if (needed <= writer->buffer_capacity)
        return MS_OK;
    size_t capacity = writer->buffer_capacity ? writer->buffer_capacity : FIRST_BUFFER_BYTES;
    while (capacity < needed)
        capacity *= 2;
    void *grown = writer->buffer == NULL
                      ? mmap(NULL, capacity, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                      : mremap(writer->buffer, writer->buffer_capacity, capacity, MREMAP_MAYMOVE);
    if (grown == MAP_FAILED)
        return out_of_memory(err);
    writer->buffer = grown;
    writer->buffer_capacity = capacity;
    return MS_OK;
}

ms_status ms_rotate_cache_writer_append(ms_rotate_cache_writer *writer, const void *data,
                                        size_t size, ms_error *err)
{
    if (writer == NULL || (data == NULL && size > 0))
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL,
                            "rotate cache append without a writer or data");
    if (writer->failure != MS_OK) {
        if (err != NULL)
            *err = writer->failure_error;
        return writer->failure;
    }
    if (size == 0)
        return MS_OK;
    ms_rotate_cache *cache = writer->record->cache;
    ms_status status = MS_OK;
    if (on_disk(cache)) {
        int error_number = write_all(writer->fd, data, size);
        if (error_number != 0) {
            status = file_error(&writer->failure_error, error_number, "write", cache,
                                writer->temp_name);
            remove_temp(writer);   /* a full disk must not stay full because of us */
        }
    } else {
        status = reserve_buffer(writer, size, &writer->failure_error);
        if (status == MS_OK)
            memcpy(writer->buffer + writer->size, data, size);
    }
    if (status != MS_OK) {
        writer->failure = status;
        if (err != NULL)
            *err = writer->failure_error;
        return status;
    }
    XXH3_64bits_update(writer->hash, data, size);
    writer->size += size;
    return MS_OK;
}

void ms_rotate_cache_writer_abandon(ms_rotate_cache_writer *writer)
{
    if (writer == NULL)
        return;
    ms_rotate_cache *cache = writer->record->cache;
    remove_temp(writer);
    forget_record(cache, writer->record);
    free_writer(writer);
}

/* Disk, under the lock: the finished temporary becomes the record's file
 * (stored: renamed into place) or its private mapping (unlinked now, alive
 * while mapped). */
static ms_status publish_file(ms_rotate_cache *cache, ms_rotate_cache_writer *writer,
                              bool store, ms_error *err)
{
    ms_rotate_cache_entry *record = writer->record;
    char name[MS_ROTATE_CACHE_FILE_NAME_BYTES];
    ms_rotate_cache_file_name(&record->key, name);
    if (store) {
        if (renameat(cache->directory_fd, writer->temp_name, cache->directory_fd, name) != 0)
            return file_error(err, errno, "rename into", cache, name);
        writer->temp_exists = false;
        struct timespec times[2];
        stamp_times(next_stamp(cache), times);
        futimens(writer->fd, times);
    }
    void *base = mmap(NULL, (size_t)stored_bytes(record), PROT_READ, MAP_SHARED, writer->fd, 0);
    if (base == MAP_FAILED) {
        ms_status status = file_error(err, errno, "map", cache, store ? name : writer->temp_name);
        if (store)
            unlinkat(cache->directory_fd, name, 0);
        return status;
    }
    (void)madvise(base, (size_t)stored_bytes(record), MADV_HUGEPAGE);   /* as inputs */
    record->base = base;
    record->base_size = (size_t)stored_bytes(record);
    record->fd = writer->fd;   /* a private file goes when this is closed and unmapped */
    writer->fd = -1;
    remove_temp(writer);
    return MS_OK;
}

ms_status ms_rotate_cache_writer_commit(ms_rotate_cache_writer *writer,
                                        ms_rotate_cache_entry **entry, ms_error *err)
{
    if (entry != NULL)
        *entry = NULL;
    if (writer == NULL || entry == NULL) {
        ms_rotate_cache_writer_abandon(writer);
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL,
                            "rotate cache commit without a writer or output");
    }
    ms_rotate_cache *cache = writer->record->cache;
    ms_rotate_cache_entry *record = writer->record;
    ms_status status = writer->failure;
    if (status != MS_OK) {
        if (err != NULL)
            *err = writer->failure_error;
        goto done;
    }
    if (writer->size > SIZE_MAX - MS_ROTATE_CACHE_HEADER_BYTES) {
        status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "rotate cache entry too large");
        goto done;
    }
    record->payload_size = writer->size;
    if (on_disk(cache)) {
        ms_rotate_cache_header header = {record->key, writer->size,
                                         XXH3_64bits_digest(writer->hash)};
        unsigned char bytes[MS_ROTATE_CACHE_HEADER_BYTES];
        ms_rotate_cache_header_encode(&header, bytes);
        ssize_t written = pwrite(writer->fd, bytes, sizeof bytes, 0);
        if (written != (ssize_t)sizeof bytes) {
            status = file_error(err, written < 0 ? errno : EIO, "write", cache,
                                writer->temp_name);
            goto done;
        }
    } else if (writer->buffer == NULL) {
        status = reserve_buffer(writer, 1, err);   /* an empty payload still has an address */
        if (status != MS_OK)
            goto done;
    }
    pthread_mutex_lock(&cache->lock);
    bool store = make_room(cache, stored_bytes(record));
    if (on_disk(cache)) {
        status = publish_file(cache, writer, store, err);
    } else {
        /* the pages past the payload were never touched: they cost no memory */
        record->base = writer->buffer;
        record->base_size = writer->buffer_capacity;
        writer->buffer = NULL;
    }
    if (status == MS_OK) {
        record->state = RECORD_READY;
        record->holders = 1;
        if (store)
            store_record(cache, record);
        pthread_cond_broadcast(&cache->changed);
        *entry = record;
    }
    pthread_mutex_unlock(&cache->lock);
done:
    if (status != MS_OK) {
        remove_temp(writer);
        forget_record(cache, record);
    }
    free_writer(writer);
    return status;
}

/* ---- entries ---- */

const unsigned char *ms_rotate_cache_entry_data(const ms_rotate_cache_entry *entry)
{
    if (entry == NULL)
        return NULL;
    return on_disk(entry->cache) ? entry->base + MS_ROTATE_CACHE_HEADER_BYTES : entry->base;
}

uint64_t ms_rotate_cache_entry_size(const ms_rotate_cache_entry *entry)
{
    return entry != NULL ? entry->payload_size : 0;
}

void ms_rotate_cache_entry_drop_pages(const ms_rotate_cache_entry *entry, uint64_t offset,
                                      uint64_t size)
{
    if (entry == NULL || !on_disk(entry->cache) || offset >= entry->payload_size)
        return;
    if (size > entry->payload_size - offset)
        size = entry->payload_size - offset;
    ms_rotate_cache_drop_range(entry->base, MS_ROTATE_CACHE_HEADER_BYTES + offset,
                               MS_ROTATE_CACHE_HEADER_BYTES + offset + size);
}

ms_status ms_rotate_cache_entry_read(const ms_rotate_cache_entry *entry, uint64_t offset,
                                     void *buffer, size_t size, ms_error *err)
{
    if (entry == NULL || (buffer == NULL && size > 0) || offset > entry->payload_size ||
        size > entry->payload_size - offset)
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL,
                            "rotate cache read outside the entry's payload");
    if (!on_disk(entry->cache)) {
        if (size > 0)
            memcpy(buffer, entry->base + offset, size);
        return MS_OK;
    }
    int error_number = ms_rotate_cache_read_all(entry->fd, buffer, size,
                                                MS_ROTATE_CACHE_HEADER_BYTES + offset);
    if (error_number == 0)
        return MS_OK;
    char name[MS_ROTATE_CACHE_FILE_NAME_BYTES];
    ms_rotate_cache_file_name(&entry->key, name);
    return file_error(err, error_number, "read", entry->cache, name);
}

void ms_rotate_cache_entry_release(ms_rotate_cache_entry *entry)
{
    if (entry == NULL)
        return;
    ms_rotate_cache *cache = entry->cache;
    unsigned char *unmap = NULL;
    size_t unmap_size = 0;
    int fd = -1;
    pthread_mutex_lock(&cache->lock);
    if (entry->holders > 0 && --entry->holders == 0) {
        if (!entry->stored) {
            remove_record(cache, entry);
        } else if (on_disk(cache)) {
            /* unmapped outside the lock: a large mapping takes a while */
            unmap = entry->base;
            unmap_size = entry->base_size;
            fd = entry->fd;
            entry->base = NULL;
            entry->fd = -1;
        }
    }
    pthread_mutex_unlock(&cache->lock);
    if (unmap != NULL)
        munmap(unmap, unmap_size);
    if (fd >= 0)
        close(fd);
}

void ms_rotate_cache_stats_get(ms_rotate_cache *cache, ms_rotate_cache_stats *stats)
{
    pthread_mutex_lock(&cache->lock);
    *stats = cache->stats;
    pthread_mutex_unlock(&cache->lock);
}

unsigned ms_rotate_cache_waiting(ms_rotate_cache *cache)
{
    pthread_mutex_lock(&cache->lock);
    unsigned waiting = cache->waiting;
    pthread_mutex_unlock(&cache->lock);
    return waiting;
}

bool ms_rotate_cache_contains(ms_rotate_cache *cache, const ms_rotate_cache_key *key)
{
    pthread_mutex_lock(&cache->lock);
    const ms_rotate_cache_entry *record = find_record(cache, key);
    bool stored = record != NULL && record->stored;
    pthread_mutex_unlock(&cache->lock);
    return stored;
}
