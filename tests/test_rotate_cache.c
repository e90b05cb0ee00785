/* The rotate decomposition cache (core/merge/rotate_cache): lookup-or-
 * produce counting, memory-only and on-disk stores, reopening, damaged
 * files as misses, LRU eviction (also across a restart), held and private
 * entries, concurrent callers of one key, cancel, failed appends and
 * hostile folder contents.  Loop tests run with _i 0 in memory, 1 on disk. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check_support.h"
#include "core/merge/rotate_cache.h"

enum { SMALL = 100, ENTRY_BYTES = MS_ROTATE_CACHE_HEADER_BYTES + SMALL };

static char *temp_dir;
static char cache_dir[4200];

static void setup(void)
{
    temp_dir = ms_test_make_temp_dir("rotate-cache");
    ck_assert_ptr_nonnull(temp_dir);
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", temp_dir);
}

static void teardown(void)
{
    ms_test_remove_tree(temp_dir);
    free(temp_dir);
    temp_dir = NULL;
}

static ms_rotate_cache_key key_of(int number)
{
    ms_rotate_cache_key key;
    for (int i = 0; i < MS_ROTATE_CACHE_KEY_BYTES; i++)
        key.bytes[i] = (unsigned char)(number * 31 + i * 7 + (i == 0 ? number >> 8 : 0));
    return key;
}

static unsigned char payload_byte(int seed, uint64_t index)
{
    uint64_t x = (index + 1) * 0x9e3779b97f4a7c15u ^ (uint64_t)seed * 0xbf58476d1ce4e5b9u;
    return (unsigned char)(x >> 29 ^ x >> 47);
}

static ms_rotate_cache *open_cache(const char *directory, uint64_t capacity)
{
    ms_rotate_cache *cache;
    ms_error err;
    ck_assert_int_eq(ms_rotate_cache_open(directory, capacity, &cache, &err), MS_OK);
    return cache;
}

static ms_rotate_cache *open_mode(int on_disk, uint64_t capacity)
{
    return open_cache(on_disk ? cache_dir : NULL, capacity);
}

/* Appends size payload bytes of seed in chunks of chunk bytes. */
static void append_payload(ms_rotate_cache_writer *writer, uint64_t size, int seed, size_t chunk)
{
    unsigned char *bytes = malloc(chunk);
    ck_assert_ptr_nonnull(bytes);
    ms_error err;
    for (uint64_t done = 0; done < size; done += chunk) {
        size_t length = size - done < chunk ? (size_t)(size - done) : chunk;
        for (size_t i = 0; i < length; i++)
            bytes[i] = payload_byte(seed, done + i);
        ck_assert_int_eq(ms_rotate_cache_writer_append(writer, bytes, length, &err), MS_OK);
    }
    free(bytes);
}

static void check_payload(const ms_rotate_cache_entry *entry, uint64_t size, int seed)
{
    ck_assert_uint_eq(ms_rotate_cache_entry_size(entry), size);
    const unsigned char *data = ms_rotate_cache_entry_data(entry);
    ck_assert_ptr_nonnull(data);
    ck_assert_uint_eq((uintptr_t)data % 64, 0);
    for (uint64_t i = 0; i < size; i++)
        if (data[i] != payload_byte(seed, i))
            ck_abort_msg("payload byte %llu differs", (unsigned long long)i);
    /* the same bytes by copy, in two uneven parts */
    unsigned char *copy = malloc(size + 1);
    ck_assert_ptr_nonnull(copy);
    ms_error err;
    ck_assert_int_eq(ms_rotate_cache_entry_read(entry, 0, copy, size / 3, &err), MS_OK);
    ck_assert_int_eq(ms_rotate_cache_entry_read(entry, size / 3, copy + size / 3,
                                                size - size / 3, &err), MS_OK);
    ck_assert(memcmp(copy, data, size) == 0);
    ck_assert_int_eq(ms_rotate_cache_entry_read(entry, size, copy, 1, &err),
                     MS_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(ms_rotate_cache_entry_read(entry, 1, copy, size, &err),
                     MS_ERR_INVALID_PARAMETER);
    free(copy);
}

/* A miss, produced and committed: the entry, held. */
static ms_rotate_cache_entry *produce(ms_rotate_cache *cache, int number, uint64_t size, int seed)
{
    ms_rotate_cache_key key = key_of(number);
    ms_rotate_cache_entry *entry;
    ms_rotate_cache_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_rotate_cache_acquire(cache, &key, NULL, &entry, &writer, &err), MS_OK);
    ck_assert_ptr_null(entry);
    ck_assert_ptr_nonnull(writer);
    append_payload(writer, size, seed, 61);
    ck_assert_int_eq(ms_rotate_cache_writer_commit(writer, &entry, &err), MS_OK);
    ck_assert_ptr_nonnull(entry);
    check_payload(entry, size, seed);
    return entry;
}

static void produce_and_release(ms_rotate_cache *cache, int number, uint64_t size, int seed)
{
    ms_rotate_cache_entry_release(produce(cache, number, size, seed));
}

/* A hit with the payload of seed, released again. */
static void expect_hit(ms_rotate_cache *cache, int number, uint64_t size, int seed)
{
    ms_rotate_cache_key key = key_of(number);
    ms_rotate_cache_entry *entry;
    ms_rotate_cache_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_rotate_cache_acquire(cache, &key, NULL, &entry, &writer, &err), MS_OK);
    ck_assert_ptr_null(writer);
    ck_assert_ptr_nonnull(entry);
    check_payload(entry, size, seed);
    ms_rotate_cache_entry_release(entry);
}

/* A miss; the writer is abandoned, so nothing changes but the count. */
static void expect_miss(ms_rotate_cache *cache, int number)
{
    ms_rotate_cache_key key = key_of(number);
    ms_rotate_cache_entry *entry;
    ms_rotate_cache_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_rotate_cache_acquire(cache, &key, NULL, &entry, &writer, &err), MS_OK);
    ck_assert_ptr_null(entry);
    ck_assert_ptr_nonnull(writer);
    ms_rotate_cache_writer_abandon(writer);
}

static ms_rotate_cache_stats stats_of(ms_rotate_cache *cache)
{
    ms_rotate_cache_stats stats;
    ms_rotate_cache_stats_get(cache, &stats);
    return stats;
}

static void entry_path(int number, char *path, size_t size)
{
    ms_rotate_cache_key key = key_of(number);
    char name[MS_ROTATE_CACHE_FILE_NAME_BYTES];
    ms_rotate_cache_file_name(&key, name);
    snprintf(path, size, "%s/%s", cache_dir, name);
}

static int exists(const char *path)
{
    struct stat info;
    return lstat(path, &info) == 0;
}

/* Names in directory starting with prefix ("" counts every one). */
static int count_names(const char *directory, const char *prefix)
{
    DIR *listing = opendir(directory);
    if (listing == NULL)
        return 0;
    int count = 0;
    struct dirent *item;
    while ((item = readdir(listing)) != NULL)
        if (strcmp(item->d_name, ".") != 0 && strcmp(item->d_name, "..") != 0 &&
            strncmp(item->d_name, prefix, strlen(prefix)) == 0)
            count++;
    closedir(listing);
    return count;
}

static const char *detail_of(const ms_error *err, const char *name)
{
    for (int i = 0; i < err->detail_count; i++)
        if (strcmp(err->details[i].name, name) == 0)
            return err->details[i].value;
    return NULL;
}

START_TEST(test_hit_miss_counting)
{
    ms_rotate_cache *cache = open_mode(_i, 1 << 20);
    ms_rotate_cache_stats stats = stats_of(cache);
    ck_assert_uint_eq(stats.capacity_bytes, 1 << 20);
    ck_assert_uint_eq(stats.entries + stats.bytes + stats.hits + stats.misses, 0);
    produce_and_release(cache, 1, SMALL, 1);
    expect_hit(cache, 1, SMALL, 1);
    expect_hit(cache, 1, SMALL, 1);
    produce_and_release(cache, 2, 3 * SMALL, 2);
    produce_and_release(cache, 3, 0, 3);   /* an empty payload is an entry too */
    expect_hit(cache, 3, 0, 3);
    stats = stats_of(cache);
    ck_assert_uint_eq(stats.hits, 3);
    ck_assert_uint_eq(stats.misses, 3);
    ck_assert_uint_eq(stats.entries, 3);
    ck_assert_uint_eq(stats.bytes, 3 * MS_ROTATE_CACHE_HEADER_BYTES + 4 * SMALL);
    ck_assert_uint_eq(stats.evictions + stats.corrupt_dropped, 0);
    /* memory only: no folder; on disk: one file per entry, no temporaries */
    ck_assert_int_eq(exists(cache_dir), _i);
    ck_assert_int_eq(count_names(cache_dir, ""), _i ? 3 : 0);
    ms_rotate_cache_close(cache);
}
END_TEST

/* A few MB in odd chunks, found again by a new store on the same folder;
 * dropped pages read back the same. */
START_TEST(test_reopen_finds_entries)
{
    const uint64_t large = (4u << 20) + 123;
    ms_rotate_cache *cache = open_cache(cache_dir, 64u << 20);
    ms_rotate_cache_key key = key_of(7);
    ms_rotate_cache_entry *entry;
    ms_rotate_cache_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_rotate_cache_acquire(cache, &key, NULL, &entry, &writer, &err), MS_OK);
    append_payload(writer, large, 7, 7919);
    ck_assert_int_eq(ms_rotate_cache_writer_commit(writer, &entry, &err), MS_OK);
    ms_rotate_cache_entry_release(entry);
    produce_and_release(cache, 8, SMALL, 8);
    ms_rotate_cache_close(cache);

    struct stat info;
    char path[4400];
    entry_path(7, path, sizeof path);
    ck_assert_int_eq(stat(path, &info), 0);
    ck_assert_uint_eq(info.st_size, MS_ROTATE_CACHE_HEADER_BYTES + large);
    ck_assert_uint_eq(info.st_mode & 0777, 0600);
    ck_assert_int_eq(stat(cache_dir, &info), 0);
    ck_assert_uint_eq(info.st_mode & 0777, 0700);

    cache = open_cache(cache_dir, 64u << 20);
    ms_rotate_cache_stats stats = stats_of(cache);
    ck_assert_uint_eq(stats.entries, 2);
    ck_assert_uint_eq(stats.bytes, 2 * MS_ROTATE_CACHE_HEADER_BYTES + large + SMALL);
    ck_assert_int_eq(ms_rotate_cache_acquire(cache, &key, NULL, &entry, &writer, &err), MS_OK);
    ck_assert_ptr_null(writer);
    check_payload(entry, large, 7);
    ms_rotate_cache_entry_drop_pages(entry, 0, large / 2);
    ms_rotate_cache_entry_drop_pages(entry, large - 10, 1000);   /* past the end: clamped */
    ms_rotate_cache_entry_drop_pages(entry, large + 10, 10);
    check_payload(entry, large, 7);
    ms_rotate_cache_entry_release(entry);
    /* cut short by someone else while held: a read by copy says so */
    entry = NULL;
    ck_assert_int_eq(ms_rotate_cache_acquire(cache, &key, NULL, &entry, &writer, &err), MS_OK);
    ck_assert_int_eq(truncate(path, MS_ROTATE_CACHE_HEADER_BYTES + 10), 0);
    unsigned char bytes[100];
    ck_assert_int_eq(ms_rotate_cache_entry_read(entry, 0, bytes, sizeof bytes, &err), MS_ERR_IO);
    ck_assert_ptr_nonnull(detail_of(&err, "path"));
    ck_assert_int_eq(ms_rotate_cache_entry_read(entry, 0, bytes, 10, &err), MS_OK);
    ck_assert_int_eq(bytes[9], payload_byte(7, 9));
    ms_rotate_cache_entry_release(entry);
    expect_hit(cache, 8, SMALL, 8);
    stats = stats_of(cache);
    ck_assert_uint_eq(stats.hits, 3);
    ck_assert_uint_eq(stats.misses, 0);
    expect_miss(cache, 7);   /* the short file is found out at the next check */
    ck_assert_uint_eq(stats_of(cache).corrupt_dropped, 1);
    ms_rotate_cache_close(cache);
}
END_TEST

/* Dropping pages of a memory-only entry must keep its bytes. */
START_TEST(test_memory_drop_pages_keeps_bytes)
{
    ms_rotate_cache *cache = open_cache(NULL, 64u << 20);
    ms_rotate_cache_entry *entry = produce(cache, 1, 1u << 20, 5);
    ms_rotate_cache_entry_drop_pages(entry, 0, 1u << 20);
    check_payload(entry, 1u << 20, 5);
    ms_rotate_cache_entry_release(entry);
    ms_rotate_cache_close(cache);
}
END_TEST

/* Each way of damaging a file, with the store open (found when the entry
 * is mapped) and across a reopen (found by the index or the mapping): a
 * miss, the file deleted and counted, and the caller produces. */
enum { DAMAGE_TRUNCATED, DAMAGE_EMPTY, DAMAGE_PAYLOAD_BYTE, DAMAGE_MAGIC, DAMAGE_WRONG_KEY,
       DAMAGE_GROWN, DAMAGE_KINDS };

static void damage(int kind)
{
    char path[4400], other[4400];
    entry_path(1, path, sizeof path);
    struct stat info;
    ck_assert_int_eq(stat(path, &info), 0);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    unsigned char byte;
    off_t offset = kind == DAMAGE_PAYLOAD_BYTE ? MS_ROTATE_CACHE_HEADER_BYTES + SMALL / 2 : 0;
    switch (kind) {
    case DAMAGE_TRUNCATED:
        ck_assert_int_eq(ftruncate(fd, info.st_size - 1), 0);
        break;
    case DAMAGE_EMPTY:
        ck_assert_int_eq(ftruncate(fd, 0), 0);
        break;
    case DAMAGE_GROWN:
        ck_assert_int_eq(ftruncate(fd, info.st_size + 1), 0);
        break;
    case DAMAGE_PAYLOAD_BYTE:
    case DAMAGE_MAGIC:
        ck_assert_int_eq(pread(fd, &byte, 1, offset), 1);
        byte ^= 0x10;
        ck_assert_int_eq(pwrite(fd, &byte, 1, offset), 1);
        break;
    case DAMAGE_WRONG_KEY:   /* key 2's file (same size) under key 1's name */
        entry_path(2, other, sizeof other);
        ck_assert_int_eq(rename(other, path), 0);
        break;
    default:
        ck_abort();
    }
    close(fd);
}

START_TEST(test_damaged_file_is_a_miss)
{
    int kind = _i % DAMAGE_KINDS, reopen = _i / DAMAGE_KINDS;
    ms_rotate_cache *cache = open_cache(cache_dir, 1 << 20);
    produce_and_release(cache, 1, SMALL, 1);
    produce_and_release(cache, 2, SMALL, 2);
    if (reopen)
        ms_rotate_cache_close(cache);
    damage(kind);
    if (reopen)
        cache = open_cache(cache_dir, 1 << 20);
    ms_rotate_cache_key key = key_of(1);
    ms_rotate_cache_entry *entry;
    ms_rotate_cache_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_rotate_cache_acquire(cache, &key, NULL, &entry, &writer, &err), MS_OK);
    ck_assert_ptr_null(entry);
    ck_assert_ptr_nonnull(writer);
    ms_rotate_cache_stats stats = stats_of(cache);
    ck_assert_uint_eq(stats.corrupt_dropped, 1);
    ck_assert_uint_eq(stats.hits, 0);
    char path[4400];
    entry_path(1, path, sizeof path);
    ck_assert(!exists(path));
    append_payload(writer, SMALL, 3, SMALL);
    ck_assert_int_eq(ms_rotate_cache_writer_commit(writer, &entry, &err), MS_OK);
    ms_rotate_cache_entry_release(entry);
    expect_hit(cache, 1, SMALL, 3);
    /* key 2's file is the one moved: a miss, but not a damaged file */
    if (kind == DAMAGE_WRONG_KEY)
        expect_miss(cache, 2);
    else
        expect_hit(cache, 2, SMALL, 2);
    ck_assert_uint_eq(stats_of(cache).corrupt_dropped, 1);
    ck_assert_uint_eq(stats_of(cache).entries, kind == DAMAGE_WRONG_KEY ? 1 : 2);
    ms_rotate_cache_close(cache);
}
END_TEST

/* Capacity for three entries: the fourth evicts the least recently used. */
START_TEST(test_lru_eviction)
{
    ms_rotate_cache *cache = open_mode(_i, 3 * ENTRY_BYTES);
    produce_and_release(cache, 1, SMALL, 1);
    produce_and_release(cache, 2, SMALL, 2);
    produce_and_release(cache, 3, SMALL, 3);
    expect_hit(cache, 1, SMALL, 1);   /* now 2 is the oldest */
    produce_and_release(cache, 4, SMALL, 4);
    ms_rotate_cache_stats stats = stats_of(cache);
    ck_assert_uint_eq(stats.evictions, 1);
    ck_assert_uint_eq(stats.entries, 3);
    ck_assert_uint_eq(stats.bytes, 3 * ENTRY_BYTES);
    expect_hit(cache, 1, SMALL, 1);
    expect_hit(cache, 3, SMALL, 3);
    expect_hit(cache, 4, SMALL, 4);
    expect_miss(cache, 2);
    if (_i) {
        char path[4400];
        entry_path(2, path, sizeof path);
        ck_assert(!exists(path));
        ck_assert_int_eq(count_names(cache_dir, ""), 3);
    }
    /* a larger entry evicts as many as it needs, oldest first (1, then 3) */
    produce_and_release(cache, 5, SMALL + ENTRY_BYTES, 5);
    stats = stats_of(cache);
    ck_assert_uint_eq(stats.evictions, 3);
    ck_assert_uint_eq(stats.entries, 2);
    expect_hit(cache, 4, SMALL, 4);
    expect_miss(cache, 1);
    expect_miss(cache, 3);
    ms_rotate_cache_close(cache);
}
END_TEST

/* Recency survives a restart through the files' mtimes: hits made by the
 * last process, and times set from outside. */
START_TEST(test_lru_after_reopen)
{
    ms_rotate_cache *cache = open_cache(cache_dir, 1 << 20);
    produce_and_release(cache, 1, SMALL, 1);
    produce_and_release(cache, 2, SMALL, 2);
    produce_and_release(cache, 3, SMALL, 3);
    expect_hit(cache, 1, SMALL, 1);   /* oldest first: 2, 3, 1 */
    ms_rotate_cache_close(cache);
    cache = open_cache(cache_dir, 2 * ENTRY_BYTES);
    ms_rotate_cache_stats stats = stats_of(cache);
    ck_assert_uint_eq(stats.evictions, 1);
    ck_assert_uint_eq(stats.entries, 2);
    char path[4400];
    entry_path(2, path, sizeof path);
    ck_assert(!exists(path));
    expect_hit(cache, 3, SMALL, 3);   /* oldest first: 1, 3 */
    ms_rotate_cache_close(cache);

    /* times set by hand: 3 older than 1 */
    struct timespec times[2] = {{1000, 0}, {1000, 0}};
    entry_path(3, path, sizeof path);
    ck_assert_int_eq(utimensat(AT_FDCWD, path, times, 0), 0);
    times[0].tv_sec = times[1].tv_sec = 2000;
    entry_path(1, path, sizeof path);
    ck_assert_int_eq(utimensat(AT_FDCWD, path, times, 0), 0);
    cache = open_cache(cache_dir, ENTRY_BYTES);
    ck_assert_uint_eq(stats_of(cache).evictions, 1);
    expect_hit(cache, 1, SMALL, 1);
    expect_miss(cache, 3);
    ms_rotate_cache_close(cache);

    /* capacity 0: the folder is emptied of entries at open */
    cache = open_cache(cache_dir, 0);
    ck_assert_uint_eq(stats_of(cache).entries, 0);
    ck_assert_int_eq(count_names(cache_dir, ""), 0);
    ms_rotate_cache_close(cache);
}
END_TEST

/* A hit, held: the caller releases it. */
static ms_rotate_cache_entry *hold(ms_rotate_cache *cache, int number)
{
    ms_rotate_cache_key key = key_of(number);
    ms_rotate_cache_entry *entry;
    ms_rotate_cache_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_rotate_cache_acquire(cache, &key, NULL, &entry, &writer, &err), MS_OK);
    ck_assert_ptr_nonnull(entry);
    return entry;
}

START_TEST(test_held_entry_survives)
{
    ms_rotate_cache *cache = open_mode(_i, 2 * ENTRY_BYTES);
    ms_rotate_cache_entry *held = produce(cache, 1, SMALL, 1);
    produce_and_release(cache, 2, SMALL, 2);
    produce_and_release(cache, 3, SMALL, 3);
    produce_and_release(cache, 4, SMALL, 4);
    ms_rotate_cache_stats stats = stats_of(cache);
    ck_assert_uint_eq(stats.evictions, 2);   /* 2 and 3, never the held 1 */
    ck_assert_uint_eq(stats.entries, 2);
    check_payload(held, SMALL, 1);
    expect_hit(cache, 1, SMALL, 1);   /* a second holder shares it */
    check_payload(held, SMALL, 1);
    /* 1 and 4 held: a new entry cannot fit, so it is private */
    ms_rotate_cache_entry *held_4 = hold(cache, 4);
    ms_rotate_cache_entry *private_5 = produce(cache, 5, SMALL, 5);
    stats = stats_of(cache);
    ck_assert_uint_eq(stats.entries, 2);
    ck_assert_uint_eq(stats.evictions, 2);
    ms_rotate_cache_entry_release(private_5);
    ms_rotate_cache_entry_release(held_4);
    ms_rotate_cache_entry_release(held);
    /* 1 is the least recently used once released */
    produce_and_release(cache, 6, SMALL, 6);
    ck_assert_uint_eq(stats_of(cache).evictions, 3);
    expect_hit(cache, 4, SMALL, 4);
    expect_hit(cache, 6, SMALL, 6);
    expect_miss(cache, 1);
    expect_miss(cache, 5);
    ms_rotate_cache_close(cache);
}
END_TEST

/* Larger than the capacity: returned, shared while held, gone after. */
START_TEST(test_private_entry)
{
    ms_rotate_cache *cache = open_mode(_i, 10000);
    ms_rotate_cache_entry *entry = produce(cache, 1, 20000, 1);
    ms_rotate_cache_stats stats = stats_of(cache);
    ck_assert_uint_eq(stats.entries, 0);
    ck_assert_uint_eq(stats.bytes, 0);
    ck_assert_int_eq(count_names(cache_dir, ""), 0);   /* not even a temporary */
    expect_hit(cache, 1, 20000, 1);
    check_payload(entry, 20000, 1);
    ms_rotate_cache_entry_release(entry);
    expect_miss(cache, 1);
    ck_assert_uint_eq(stats_of(cache).hits, 1);
    ck_assert_uint_eq(stats_of(cache).misses, 2);
    ms_rotate_cache_close(cache);
    /* capacity 0 stores nothing */
    cache = open_mode(_i, 0);
    produce_and_release(cache, 2, 1, 2);
    expect_miss(cache, 2);
    ck_assert_uint_eq(stats_of(cache).entries, 0);
    ck_assert_int_eq(count_names(cache_dir, ""), 0);
    ms_rotate_cache_close(cache);
}
END_TEST

typedef struct caller {
    ms_rotate_cache *cache;
    int number, seed;
    const atomic_int *cancel;
    atomic_int *producers;
    ms_status status;
    int produced, hit;
} caller;

/* Acquires; a producer writes its seed's payload; a hit checks it. */
static void *call(void *argument)
{
    caller *self = argument;
    ms_rotate_cache_key key = key_of(self->number);
    ms_rotate_cache_entry *entry;
    ms_rotate_cache_writer *writer;
    ms_error err;
    self->status = ms_rotate_cache_acquire(self->cache, &key, self->cancel, &entry, &writer, &err);
    if (self->status != MS_OK)
        return NULL;
    if (writer != NULL) {
        if (self->producers != NULL)
            atomic_fetch_add(self->producers, 1);
        append_payload(writer, 5000, self->seed, 999);
        self->status = ms_rotate_cache_writer_commit(writer, &entry, &err);
        self->produced = 1;
    } else {
        self->hit = 1;
    }
    if (entry != NULL) {
        check_payload(entry, 5000, self->seed);
        ms_rotate_cache_entry_release(entry);
    }
    return NULL;
}

static void wait_for_waiters(ms_rotate_cache *cache, unsigned count)
{
    struct timespec pause = {0, 1000000};
    while (ms_rotate_cache_waiting(cache) < count)
        nanosleep(&pause, NULL);
}

/* Many callers at once: exactly one produces, the others get its bytes. */
START_TEST(test_concurrent_callers)
{
    enum { CALLERS = 4 };
    ms_rotate_cache *cache = open_mode(_i, 1 << 20);
    atomic_int producers = 0;
    caller callers[CALLERS];
    pthread_t threads[CALLERS];
    for (int i = 0; i < CALLERS; i++) {
        callers[i] = (caller){.cache = cache, .number = 1, .seed = 9, .producers = &producers};
        ck_assert_int_eq(pthread_create(&threads[i], NULL, call, &callers[i]), 0);
    }
    for (int i = 0; i < CALLERS; i++) {
        pthread_join(threads[i], NULL);
        ck_assert_int_eq(callers[i].status, MS_OK);
    }
    ck_assert_int_eq(atomic_load(&producers), 1);
    ck_assert_uint_eq(stats_of(cache).misses, 1);
    ck_assert_uint_eq(stats_of(cache).hits, CALLERS - 1);
    ms_rotate_cache_close(cache);
}
END_TEST

/* A caller that comes while the key is produced waits, then hits. */
START_TEST(test_waiter_gets_the_entry)
{
    ms_rotate_cache *cache = open_mode(_i, 1 << 20);
    ms_rotate_cache_key key = key_of(1);
    ms_rotate_cache_entry *entry;
    ms_rotate_cache_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_rotate_cache_acquire(cache, &key, NULL, &entry, &writer, &err), MS_OK);
    ck_assert_ptr_nonnull(writer);
    caller waiter = {.cache = cache, .number = 1, .seed = 4};
    pthread_t thread;
    ck_assert_int_eq(pthread_create(&thread, NULL, call, &waiter), 0);
    wait_for_waiters(cache, 1);
    append_payload(writer, 5000, 4, 1000);
    ck_assert_int_eq(ms_rotate_cache_writer_commit(writer, &entry, &err), MS_OK);
    pthread_join(thread, NULL);
    ck_assert_int_eq(waiter.status, MS_OK);
    ck_assert_int_eq(waiter.hit, 1);
    ms_rotate_cache_entry_release(entry);
    ck_assert_uint_eq(stats_of(cache).misses, 1);
    ck_assert_uint_eq(stats_of(cache).hits, 1);
    ms_rotate_cache_close(cache);
}
END_TEST

/* The producer abandons: the waiter becomes the producer. */
START_TEST(test_abandon_hands_over)
{
    ms_rotate_cache *cache = open_mode(_i, 1 << 20);
    ms_rotate_cache_key key = key_of(1);
    ms_rotate_cache_entry *entry;
    ms_rotate_cache_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_rotate_cache_acquire(cache, &key, NULL, &entry, &writer, &err), MS_OK);
    append_payload(writer, 100, 1, 100);
    caller waiter = {.cache = cache, .number = 1, .seed = 6};
    pthread_t thread;
    ck_assert_int_eq(pthread_create(&thread, NULL, call, &waiter), 0);
    wait_for_waiters(cache, 1);
    ms_rotate_cache_writer_abandon(writer);
    pthread_join(thread, NULL);
    ck_assert_int_eq(waiter.status, MS_OK);
    ck_assert_int_eq(waiter.produced, 1);
    expect_hit(cache, 1, 5000, 6);
    ck_assert_uint_eq(stats_of(cache).misses, 2);
    ck_assert_uint_eq(stats_of(cache).hits, 1);
    if (_i)
        ck_assert_int_eq(count_names(cache_dir, "tmp-"), 0);
    ms_rotate_cache_close(cache);
}
END_TEST

START_TEST(test_cancel_while_waiting)
{
    ms_rotate_cache *cache = open_mode(_i, 1 << 20);
    ms_rotate_cache_key key = key_of(1);
    ms_rotate_cache_entry *entry;
    ms_rotate_cache_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_rotate_cache_acquire(cache, &key, NULL, &entry, &writer, &err), MS_OK);
    atomic_int cancel = 0;
    caller waiter = {.cache = cache, .number = 1, .seed = 1, .cancel = &cancel};
    pthread_t thread;
    ck_assert_int_eq(pthread_create(&thread, NULL, call, &waiter), 0);
    wait_for_waiters(cache, 1);
    atomic_store(&cancel, 1);
    pthread_join(thread, NULL);
    ck_assert_int_eq(waiter.status, MS_ERR_CANCELLED);
    ck_assert_int_eq(waiter.produced + waiter.hit, 0);
    append_payload(writer, 5000, 1, 5000);
    ck_assert_int_eq(ms_rotate_cache_writer_commit(writer, &entry, &err), MS_OK);
    ms_rotate_cache_entry_release(entry);
    ck_assert_uint_eq(stats_of(cache).misses, 1);
    ck_assert_uint_eq(stats_of(cache).hits, 0);
    /* with cancel set: in memory a hit is a hit; on disk the file's check
     * is cancelled and the entry stays */
    ck_assert_int_eq(ms_rotate_cache_acquire(cache, &key, &cancel, &entry, &writer, &err),
                     _i ? MS_ERR_CANCELLED : MS_OK);
    ck_assert_ptr_null(writer);
    ms_rotate_cache_entry_release(entry);
    ck_assert_uint_eq(stats_of(cache).entries, 1);
    expect_hit(cache, 1, 5000, 1);
    ms_rotate_cache_close(cache);
}
END_TEST

/* In a child with a file size limit (the writes fail with EFBIG): the
 * failed append is a structured io_error naming the file, the temporary is
 * gone at once, later calls fail the same way, and nothing is stored.
 * Exit status: 0 when all held, else the number of the first check that
 * failed. */
static int append_over_file_size_limit(void)
{
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit limit = {64 << 10, 64 << 10};
    if (setrlimit(RLIMIT_FSIZE, &limit) != 0)
        return 1;
    ms_rotate_cache *cache;
    ms_error err;
    if (ms_rotate_cache_open(cache_dir, 1 << 20, &cache, &err) != MS_OK)
        return 2;
    ms_rotate_cache_key key = key_of(1);
    ms_rotate_cache_entry *entry;
    ms_rotate_cache_writer *writer;
    if (ms_rotate_cache_acquire(cache, &key, NULL, &entry, &writer, &err) != MS_OK || !writer)
        return 3;
    static unsigned char bytes[32 << 10];
    if (ms_rotate_cache_writer_append(writer, bytes, sizeof bytes, &err) != MS_OK)
        return 4;
    if (count_names(cache_dir, "tmp-") != 1)
        return 5;
    if (ms_rotate_cache_writer_append(writer, bytes, sizeof bytes, &err) != MS_ERR_IO)
        return 6;
    const char *path = detail_of(&err, "path");
    if (path == NULL || strncmp(path, cache_dir, strlen(cache_dir)) != 0 ||
        detail_of(&err, "errno") == NULL || strstr(err.message, strerror(EFBIG)) == NULL)
        return 7;
    if (count_names(cache_dir, "") != 0)
        return 8;
    if (ms_rotate_cache_writer_append(writer, bytes, 1, &err) != MS_ERR_IO ||
        ms_rotate_cache_writer_commit(writer, &entry, &err) != MS_ERR_IO || entry != NULL)
        return 9;
    if (ms_rotate_cache_acquire(cache, &key, NULL, &entry, &writer, &err) != MS_OK || !writer)
        return 10;
    ms_rotate_cache_writer_abandon(writer);
    ms_rotate_cache_stats stats;
    ms_rotate_cache_stats_get(cache, &stats);
    ms_rotate_cache_close(cache);
    return stats.entries == 0 && stats.misses == 2 && count_names(cache_dir, "") == 0 ? 0 : 11;
}

START_TEST(test_append_failure_leaves_nothing)
{
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0)
        _exit(append_over_file_size_limit());
    int status;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert_msg(WIFEXITED(status), "child died");
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

/* A real full disk (a 64 KB tmpfs, when the tests may mount one):
 * disk_full, the temporary removed. */
START_TEST(test_disk_full)
{
    char command[4400];
    ck_assert_int_eq(mkdir(cache_dir, 0700), 0);
    snprintf(command, sizeof command, "mount -t tmpfs -o size=64k tmpfs '%s' 2>/dev/null",
             cache_dir);
    if (system(command) != 0) {
        fprintf(stderr, "test_disk_full: cannot mount a tmpfs (not root?): skipped\n");
        return;
    }
    ms_rotate_cache *cache;
    ms_error err;
    ms_status open_status = ms_rotate_cache_open(cache_dir, 1 << 30, &cache, &err);
    ms_status append_status = MS_ERR_INTERNAL, commit_status = MS_ERR_INTERNAL;
    int left = -1;
    const char *path = NULL;
    if (open_status == MS_OK) {
        ms_rotate_cache_key key = key_of(1);
        ms_rotate_cache_entry *entry;
        ms_rotate_cache_writer *writer;
        static unsigned char bytes[256 << 10];
        if (ms_rotate_cache_acquire(cache, &key, NULL, &entry, &writer, &err) == MS_OK) {
            append_status = ms_rotate_cache_writer_append(writer, bytes, sizeof bytes, &err);
            path = detail_of(&err, "path");
            left = count_names(cache_dir, "");
            commit_status = ms_rotate_cache_writer_commit(writer, &entry, &err);
        }
        ms_rotate_cache_close(cache);
    }
    snprintf(command, sizeof command, "umount '%s'", cache_dir);
    ck_assert_int_eq(system(command), 0);
    ck_assert_int_eq(open_status, MS_OK);
    ck_assert_int_eq(append_status, MS_ERR_DISK_FULL);
    ck_assert_int_eq(commit_status, MS_ERR_DISK_FULL);
    ck_assert_ptr_nonnull(path);
    ck_assert_int_eq(left, 0);
}
END_TEST

static void write_file(const char *path, const void *bytes, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, bytes, size), (ssize_t)size);
    close(fd);
}

/* Whatever else is in the folder: no crash; links, sparse giants and
 * leftovers of dead writers go, others' files stay. */
START_TEST(test_hostile_folder)
{
    ms_rotate_cache *cache = open_cache(cache_dir, 1 << 20);
    produce_and_release(cache, 1, SMALL, 1);
    ms_rotate_cache_close(cache);
    char path[4400], other[4400], elsewhere[4400];
    /* key 1's valid file moved out, a link to it in key 2's place */
    entry_path(1, path, sizeof path);
    snprintf(elsewhere, sizeof elsewhere, "%s/valid", temp_dir);
    ck_assert_int_eq(rename(path, elsewhere), 0);
    entry_path(2, path, sizeof path);
    ck_assert_int_eq(symlink(elsewhere, path), 0);
    /* a sparse 1 TB file in key 3's place */
    entry_path(3, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)1 << 40), 0);
    close(fd);
    /* a directory in key 4's place, a FIFO in key 5's */
    entry_path(4, path, sizeof path);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    entry_path(5, path, sizeof path);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    /* unrelated names, an entry name in capitals, temporaries */
    snprintf(path, sizeof path, "%s/notes.txt", cache_dir);
    write_file(path, "hello", 5);
    entry_path(6, other, sizeof other);
    for (char *c = strrchr(other, '/'); *c; c++)
        *c = (char)(*c >= 'a' && *c <= 'f' ? *c - 32 : *c);
    write_file(other, "x", 1);
    snprintf(path, sizeof path, "%s/tmp-%d-abc", cache_dir, (int)getpid());
    write_file(path, "x", 1);
    snprintf(path, sizeof path, "%s/tmp-999999999-abc", cache_dir);
    write_file(path, "x", 1);
    snprintf(path, sizeof path, "%s/tmp-1-abc", cache_dir);   /* init lives */
    write_file(path, "x", 1);
    snprintf(path, sizeof path, "%s/tmp-x", cache_dir);
    write_file(path, "x", 1);

    cache = open_cache(cache_dir, 1 << 20);
    ms_rotate_cache_stats stats = stats_of(cache);
    ck_assert_uint_eq(stats.entries, 0);
    ck_assert_uint_eq(stats.corrupt_dropped, 2);   /* the link and the giant */
    ck_assert_int_eq(count_names(cache_dir, "tmp-"), 2);   /* tmp-1-abc, tmp-x */
    ck_assert_int_eq(count_names(cache_dir, ""), 6);
    ck_assert(exists(elsewhere));
    expect_miss(cache, 2);
    /* the directory is in the way of key 4's file: a structured error */
    ms_rotate_cache_key key = key_of(4);
    ms_rotate_cache_entry *entry;
    ms_rotate_cache_writer *writer;
    ms_error err;
    ck_assert_int_eq(ms_rotate_cache_acquire(cache, &key, NULL, &entry, &writer, &err), MS_OK);
    append_payload(writer, SMALL, 4, SMALL);
    ck_assert_int_eq(ms_rotate_cache_writer_commit(writer, &entry, &err), MS_ERR_IO);
    ck_assert_ptr_null(entry);
    ck_assert_ptr_nonnull(detail_of(&err, "path"));
    ck_assert_int_eq(count_names(cache_dir, "tmp-"), 2);
    /* the FIFO's key: the name is taken over by the new entry */
    produce_and_release(cache, 5, SMALL, 5);
    expect_hit(cache, 5, SMALL, 5);
    ms_rotate_cache_close(cache);
}
END_TEST

START_TEST(test_refusals)
{
    ms_rotate_cache *cache;
    ms_error err;
    ck_assert_int_eq(ms_rotate_cache_open("", 1, &cache, &err), MS_ERR_INVALID_PARAMETER);
    ck_assert_ptr_null(cache);
    char path[4400];
    snprintf(path, sizeof path, "%s/file", temp_dir);
    write_file(path, "x", 1);
    ck_assert_int_eq(ms_rotate_cache_open(path, 1, &cache, &err), MS_ERR_IO);
    ck_assert_str_eq(detail_of(&err, "path"), path);
    snprintf(path, sizeof path, "%s/file/below", temp_dir);
    ck_assert_int_eq(ms_rotate_cache_open(path, 1, &cache, &err), MS_ERR_IO);
    /* missing parents are made */
    snprintf(path, sizeof path, "%s/a/b/c", temp_dir);
    ck_assert_int_eq(ms_rotate_cache_open(path, 1, &cache, &err), MS_OK);
    ms_rotate_cache_key key = key_of(1);
    ms_rotate_cache_entry *entry;
    ms_rotate_cache_writer *writer;
    ck_assert_int_eq(ms_rotate_cache_acquire(cache, NULL, NULL, &entry, &writer, &err),
                     MS_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(ms_rotate_cache_acquire(cache, &key, NULL, NULL, &writer, &err),
                     MS_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(ms_rotate_cache_acquire(cache, &key, NULL, &entry, &writer, &err), MS_OK);
    ck_assert_int_eq(ms_rotate_cache_writer_append(writer, NULL, 1, &err),
                     MS_ERR_INVALID_PARAMETER);
    ck_assert_int_eq(ms_rotate_cache_writer_commit(writer, NULL, &err), MS_ERR_INVALID_PARAMETER);
    expect_miss(cache, 1);   /* the failed commit ended the production */
    ms_rotate_cache_writer_abandon(NULL);
    ms_rotate_cache_entry_release(NULL);
    ms_rotate_cache_close(cache);
    ms_rotate_cache_close(NULL);
}
END_TEST

/* File names are the key in hex; anything else is no entry name. */
START_TEST(test_file_names)
{
    ms_rotate_cache_key key;
    memset(key.bytes, 0xab, sizeof key.bytes);
    key.bytes[0] = 0x01;
    char name[MS_ROTATE_CACHE_FILE_NAME_BYTES];
    ms_rotate_cache_file_name(&key, name);
    ck_assert_uint_eq(strlen(name), 86);
    ck_assert(strncmp(name, "01abab", 6) == 0);
    ck_assert_str_eq(name + 80, ".entry");
}
END_TEST

static Suite *rotate_cache_suite(void)
{
    Suite *suite = suite_create("rotate_cache");
    TCase *tcase = tcase_create("cache");
    tcase_add_checked_fixture(tcase, setup, teardown);
    tcase_set_timeout(tcase, 60);
    tcase_add_loop_test(tcase, test_hit_miss_counting, 0, 2);
    tcase_add_test(tcase, test_reopen_finds_entries);
    tcase_add_test(tcase, test_memory_drop_pages_keeps_bytes);
    tcase_add_loop_test(tcase, test_damaged_file_is_a_miss, 0, 2 * DAMAGE_KINDS);
    tcase_add_loop_test(tcase, test_lru_eviction, 0, 2);
    tcase_add_test(tcase, test_lru_after_reopen);
    tcase_add_loop_test(tcase, test_held_entry_survives, 0, 2);
    tcase_add_loop_test(tcase, test_private_entry, 0, 2);
    tcase_add_loop_test(tcase, test_concurrent_callers, 0, 2);
    tcase_add_loop_test(tcase, test_waiter_gets_the_entry, 0, 2);
    tcase_add_loop_test(tcase, test_abandon_hands_over, 0, 2);
    tcase_add_loop_test(tcase, test_cancel_while_waiting, 0, 2);
    tcase_add_test(tcase, test_append_failure_leaves_nothing);
    tcase_add_test(tcase, test_disk_full);
    tcase_add_test(tcase, test_hostile_folder);
    tcase_add_test(tcase, test_refusals);
    tcase_add_test(tcase, test_file_names);
    suite_add_tcase(suite, tcase);
    return suite;
}

int main(void)
{
    return ms_test_run_suite(rotate_cache_suite());
}
