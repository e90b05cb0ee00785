/* The rotate cache's files: the entry header, names, and checked mappings.
 * Internal to rotate_cache.c; no locking here, every call works on one
 * file relative to the folder's descriptor.
 *
 * An entry file is a MS_ROTATE_CACHE_HEADER_BYTES header, then the payload:
 *   0   magic "MSROTCCH"
 *   8   format version, u32 little-endian
 *   12  header bytes, u32 little-endian (the payload's offset)
 *   16  the key, 40 bytes
 *   56  payload bytes, u64 little-endian
 *   64  XXH3-64 of the payload, u64 little-endian
 *   72  zeros up to the payload
 * The file's size must be exactly header + payload. */
#ifndef MS_ROTATE_CACHE_FILE_H
#define MS_ROTATE_CACHE_FILE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rotate_cache.h"

typedef struct ms_rotate_cache_header {
    ms_rotate_cache_key key;
    uint64_t payload_size;
    uint64_t checksum;
} ms_rotate_cache_header;

void ms_rotate_cache_header_encode(const ms_rotate_cache_header *header,
                                   unsigned char bytes[MS_ROTATE_CACHE_HEADER_BYTES]);

/* False when length is short or magic, version or header size are wrong. */
bool ms_rotate_cache_header_decode(const unsigned char *bytes, size_t length,
                                   ms_rotate_cache_header *header);

/* True when name is an entry's file name; *key is then the key it names. */
bool ms_rotate_cache_parse_file_name(const char *name, ms_rotate_cache_key *key);

/* Temporary files are "tmp-PID-RANDOM": a store can tell whose they are. */
void ms_rotate_cache_temp_name(char *name, size_t size, uint64_t sequence);
/* True when name is a temporary whose process is gone (or is this one). */
bool ms_rotate_cache_is_leftover_temp(const char *name);

typedef enum ms_rotate_cache_map_result {
    MS_ROTATE_CACHE_MAPPED,
    MS_ROTATE_CACHE_MISSING,    /* no such file (removed by someone else) */
    MS_ROTATE_CACHE_DAMAGED,    /* not a valid entry of this key: delete it */
    MS_ROTATE_CACHE_MAP_FAILED, /* could not be read: *error_number says why */
    MS_ROTATE_CACHE_CHECK_CANCELLED,
} ms_rotate_cache_map_result;

/* Opens name (never through a symbolic link), checks the header against
 * key and the file's size and the payload against its checksum, and maps
 * the whole file read-only: *base, and *fd open for reading (the caller
 * closes both).  *payload_size is what the header says.  cancel (may be
 * NULL) is polled for every MB hashed: a large entry on a slow disk takes
 * seconds. */
ms_rotate_cache_map_result ms_rotate_cache_file_map(int directory_fd, const char *name,
                                                    const ms_rotate_cache_key *key,
                                                    const atomic_int *cancel,
                                                    unsigned char **base, int *fd,
                                                    uint64_t *payload_size, int *error_number);

/* pread until size bytes are read: 0, or the errno (EIO when the file
 * ends first). */
int ms_rotate_cache_read_all(int fd, void *buffer, size_t size, uint64_t offset);

/* The header of name checked against key and the file's size, without
 * mapping or hashing (for indexing a folder at open).  *mtime_ns is the
 * file's modification time. */
ms_rotate_cache_map_result ms_rotate_cache_file_check(int directory_fd, const char *name,
                                                      const ms_rotate_cache_key *key,
                                                      uint64_t *payload_size, int64_t *mtime_ns,
                                                      int *error_number);

/* madvise(MADV_DONTNEED) on the whole pages inside [start, end) of a
 * page-aligned mapping. */
void ms_rotate_cache_drop_range(unsigned char *base, uint64_t start, uint64_t end);

#endif
