/* The rotate method's decomposition cache: a content-addressed blob store.
 *
 * A key is 40 opaque bytes (the caller's content hash of both inputs and
 * whatever else decides the payload); a payload is any byte string.  The
 * store is either memory-only (heap) or a folder of files, one per entry,
 * read through read-only mappings so that the page cache is the memory tier
 * and the process's own memory stays bounded whatever the payload size.
 *
 * Rules a caller can rely on:
 * - lookup-or-produce: a miss hands out a writer, and while one caller
 *   produces a key every other caller of that key waits for it, so two
 *   producers of one key never run at once;
 * - a file that is cut short, has the wrong size, magic, version, key or
 *   checksum is a miss, never a wrong answer: it is deleted and counted in
 *   corrupt_dropped, and the caller becomes the producer;
 * - an entry held by anyone is never evicted or unmapped; the least
 *   recently used entries nobody holds go first when the capacity is
 *   passed, and recency is kept in the files' mtimes across restarts;
 * - files in the folder that are not the store's own are left alone.
 *
 * One open store per folder per process: a store removes temporary files of
 * processes that no longer run, and of its own process. */
#ifndef MS_ROTATE_CACHE_H
#define MS_ROTATE_CACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct ms_rotate_cache ms_rotate_cache;
typedef struct ms_rotate_cache_entry ms_rotate_cache_entry;
typedef struct ms_rotate_cache_writer ms_rotate_cache_writer;

enum {
    MS_ROTATE_CACHE_KEY_BYTES = 40,
    /* What every entry costs besides its payload (the file header: the
     * payload starts on the next page); bytes and the capacity count it. */
    MS_ROTATE_CACHE_HEADER_BYTES = 4096,
    /* An entry's file name: the key in hex and ".entry", and the NUL. */
    MS_ROTATE_CACHE_FILE_NAME_BYTES = 2 * MS_ROTATE_CACHE_KEY_BYTES + sizeof(".entry"),
};

typedef struct ms_rotate_cache_key {
    unsigned char bytes[MS_ROTATE_CACHE_KEY_BYTES];
} ms_rotate_cache_key;   /* opaque to the store */

typedef struct ms_rotate_cache_stats {
    uint64_t hits, misses;          /* acquire calls answered with an entry / a writer */
    uint64_t entries, bytes;        /* stored now; bytes = headers + payloads */
    uint64_t capacity_bytes;
    uint64_t evictions;             /* stored entries removed to make room */
    uint64_t corrupt_dropped;       /* damaged or foreign files deleted */
} ms_rotate_cache_stats;

/* directory NULL: memory-only store (heap), for the command line without
 * --cache-dir and for tests.  Else the folder (and missing parents) is
 * created if missing (0700), existing entry files are indexed (recency =
 * file mtime), leftover temporary files removed, and entries over capacity
 * evicted oldest first.  Capacity 0 stores nothing. */
ms_status ms_rotate_cache_open(const char *directory, uint64_t capacity_bytes,
                               ms_rotate_cache **cache, ms_error *err);

/* All entries and writers must be released first.  NULL is a no-op. */
void ms_rotate_cache_close(ms_rotate_cache *cache);

/* Lookup-or-produce.  Hit: MS_OK, *entry set (held), *writer NULL; counted
 * as a hit.  Miss: MS_OK, *entry NULL, *writer set: the caller produces the
 * payload with append calls and MUST end with commit or abandon; counted as
 * a miss.  If another caller is producing the same key right now, this call
 * waits until that one commits (then it is a hit) or abandons (then this
 * caller becomes the producer).  cancel (may be NULL) is polled while
 * waiting (every <= 50 ms) and while an entry's file is checked (every
 * 8 MB hashed): MS_ERR_CANCELLED, the entry left as it was.  A disk error while reading
 * an entry (other than damage, which is a miss) is io_error. */
ms_status ms_rotate_cache_acquire(ms_rotate_cache *cache, const ms_rotate_cache_key *key,
                                  const atomic_int *cancel, ms_rotate_cache_entry **entry,
                                  ms_rotate_cache_writer **writer, ms_error *err);

/* Streams data to the entry's temporary file (never held in memory on
 * disk).  A failure (disk_full on ENOSPC/EDQUOT, io_error otherwise, with
 * details path and errno) removes the temporary at once; the writer then
 * fails every call but abandon, which the caller must still make. */
ms_status ms_rotate_cache_writer_append(ms_rotate_cache_writer *writer, const void *data,
                                        size_t size, ms_error *err);

/* Ends production: the payload becomes an entry, returned held in *entry.
 * Stored when it fits the capacity (evicting least recently used entries
 * that nobody holds); an entry larger than that is still returned but
 * private (deleted/freed on its last release; callers acquiring the key
 * while it is held share it).  On failure the writer is gone as after
 * abandon. */
ms_status ms_rotate_cache_writer_commit(ms_rotate_cache_writer *writer,
                                        ms_rotate_cache_entry **entry, ms_error *err);

/* Nothing stored, the temporary removed; waiters wake.  NULL is a no-op. */
void ms_rotate_cache_writer_abandon(ms_rotate_cache_writer *writer);

/* The payload, 64-byte aligned (page aligned on disk), valid while held. */
const unsigned char *ms_rotate_cache_entry_data(const ms_rotate_cache_entry *entry);
uint64_t ms_rotate_cache_entry_size(const ms_rotate_cache_entry *entry);

/* Tells the kernel the caller is done with payload bytes [offset, offset +
 * size) for now, so they leave the process's resident memory (the whole
 * pages inside the range; the bytes stay readable, from the page cache).
 * Use this rather than madvise: a memory-only entry's pages must not be
 * dropped, and here it is a no-op. */
void ms_rotate_cache_entry_drop_pages(const ms_rotate_cache_entry *entry, uint64_t offset,
                                      uint64_t size);

/* Copies payload bytes [offset, offset + size) into buffer: the same bytes
 * as entry_data, read with pread on disk.  Reading a large entry once this
 * way is about four times faster than through the mapping (page faults
 * dominate there) and leaves nothing resident.  A range past the payload
 * is invalid_parameter; a file cut short by someone else meanwhile,
 * io_error. */
ms_status ms_rotate_cache_entry_read(const ms_rotate_cache_entry *entry, uint64_t offset,
                                     void *buffer, size_t size, ms_error *err);

/* NULL is a no-op. */
void ms_rotate_cache_entry_release(ms_rotate_cache_entry *entry);

void ms_rotate_cache_stats_get(ms_rotate_cache *cache, ms_rotate_cache_stats *stats);

/* Whether an entry is stored under key right now (a hint for planning: it
 * may be evicted, or found damaged, before it is acquired). */
bool ms_rotate_cache_contains(ms_rotate_cache *cache, const ms_rotate_cache_key *key);

/* How many acquire calls are waiting for another caller's production or
 * check of their key right now (for tests and diagnostics). */
unsigned ms_rotate_cache_waiting(ms_rotate_cache *cache);

/* The file name of key's entry inside the folder ("<80 hex digits>.entry"). */
void ms_rotate_cache_file_name(const ms_rotate_cache_key *key,
                               char name[MS_ROTATE_CACHE_FILE_NAME_BYTES]);

#endif
