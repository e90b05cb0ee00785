/* The rotate cache's entry files (layout in rotate_cache_file.h).
 *
 * Everything read from a file is checked before use: a cache folder is
 * writable by whoever runs the service and may hold anything, and a damaged
 * file must be a miss, never a wrong answer or a crash. */
#include "rotate_cache_file.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

enum {
    FORMAT_VERSION = 1,
    MAGIC_BYTES = 8,
    OFFSET_VERSION = 8,
    OFFSET_HEADER_BYTES = 12,
    OFFSET_KEY = 16,
    OFFSET_PAYLOAD_SIZE = OFFSET_KEY + MS_ROTATE_CACHE_KEY_BYTES,
    OFFSET_CHECKSUM = OFFSET_PAYLOAD_SIZE + 8,
    HEADER_USED_BYTES = OFFSET_CHECKSUM + 8,
    /* read and hashed at a time when checking a payload */
    CHECK_CHUNK_BYTES = 1u << 20,
};

static const char magic[MAGIC_BYTES] = {'M', 'S', 'R', 'O', 'T', 'C', 'C', 'H'};
static const char entry_suffix[] = ".entry";
static const char temp_prefix[] = "tmp-";

static void put_le(unsigned char *bytes, uint64_t value, int count)
{
    for (int i = 0; i < count; i++)
        bytes[i] = (unsigned char)(value >> (8 * i));
}

static uint64_t get_le(const unsigned char *bytes, int count)
{
    uint64_t value = 0;
    for (int i = count - 1; i >= 0; i--)
        value = value << 8 | bytes[i];
    return value;
}

void ms_rotate_cache_header_encode(const ms_rotate_cache_header *header,
                                   unsigned char bytes[MS_ROTATE_CACHE_HEADER_BYTES])
{
    memset(bytes, 0, MS_ROTATE_CACHE_HEADER_BYTES);
    memcpy(bytes, magic, MAGIC_BYTES);
    put_le(bytes + OFFSET_VERSION, FORMAT_VERSION, 4);
    put_le(bytes + OFFSET_HEADER_BYTES, MS_ROTATE_CACHE_HEADER_BYTES, 4);
    memcpy(bytes + OFFSET_KEY, header->key.bytes, MS_ROTATE_CACHE_KEY_BYTES);
    put_le(bytes + OFFSET_PAYLOAD_SIZE, header->payload_size, 8);
    put_le(bytes + OFFSET_CHECKSUM, header->checksum, 8);
}

bool ms_rotate_cache_header_decode(const unsigned char *bytes, size_t length,
                                   ms_rotate_cache_header *header)
{
    if (length < HEADER_USED_BYTES || memcmp(bytes, magic, MAGIC_BYTES) != 0 ||
        get_le(bytes + OFFSET_VERSION, 4) != FORMAT_VERSION ||
        get_le(bytes + OFFSET_HEADER_BYTES, 4) != MS_ROTATE_CACHE_HEADER_BYTES)
        return false;
    memcpy(header->key.bytes, bytes + OFFSET_KEY, MS_ROTATE_CACHE_KEY_BYTES);
    header->payload_size = get_le(bytes + OFFSET_PAYLOAD_SIZE, 8);
    header->checksum = get_le(bytes + OFFSET_CHECKSUM, 8);
    return true;
}

static int hex_value(char digit)
{
    if (digit >= '0' && digit <= '9')
        return digit - '0';
    if (digit >= 'a' && digit <= 'f')
        return digit - 'a' + 10;
    return -1;
}

void ms_rotate_cache_file_name(const ms_rotate_cache_key *key,
                               char name[MS_ROTATE_CACHE_FILE_NAME_BYTES])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < MS_ROTATE_CACHE_KEY_BYTES; i++) {
        name[2 * i] = digits[key->bytes[i] >> 4];
        name[2 * i + 1] = digits[key->bytes[i] & 15];
    }
    memcpy(name + 2 * MS_ROTATE_CACHE_KEY_BYTES, entry_suffix, sizeof entry_suffix);
}

bool ms_rotate_cache_parse_file_name(const char *name, ms_rotate_cache_key *key)
{
    if (strlen(name) != MS_ROTATE_CACHE_FILE_NAME_BYTES - 1 ||
        strcmp(name + 2 * MS_ROTATE_CACHE_KEY_BYTES, entry_suffix) != 0)
        return false;
    for (int i = 0; i < MS_ROTATE_CACHE_KEY_BYTES; i++) {
        int high = hex_value(name[2 * i]), low = hex_value(name[2 * i + 1]);
        if (high < 0 || low < 0)
            return false;
        key->bytes[i] = (unsigned char)(high << 4 | low);
    }
    return true;
}

void ms_rotate_cache_temp_name(char *name, size_t size, uint64_t sequence)
{
    uint64_t random = 0;
    if (getrandom(&random, sizeof random, GRND_NONBLOCK) != (ssize_t)sizeof random)
        random = 0;   /* the pid and sequence alone are unique within a store */
    snprintf(name, size, "%s%ld-%016" PRIx64 "%08" PRIx64, temp_prefix, (long)getpid(), random,
             sequence & 0xffffffffu);
}

bool ms_rotate_cache_is_leftover_temp(const char *name)
{
    size_t prefix = sizeof temp_prefix - 1;
    if (strncmp(name, temp_prefix, prefix) != 0)
        return false;
    char *end;
    errno = 0;
    long pid = strtol(name + prefix, &end, 10);
    if (errno != 0 || end == name + prefix || *end != '-' || pid <= 0 || pid != (pid_t)pid)
        return false;
    /* A process started in a fresh container may well have the pid the
     * writer had, so the store's own pid counts as gone too. */
    return pid == (long)getpid() || (kill((pid_t)pid, 0) != 0 && errno == ESRCH);
}

void ms_rotate_cache_drop_range(unsigned char *base, uint64_t start, uint64_t end)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    start = (start + page - 1) / page * page;
    end = end / page * page;
    if (end > start)
        madvise(base + start, (size_t)(end - start), MADV_DONTNEED);
}

/* Opens name for reading, never through a link, and checks it is a regular
 * file of a size a header could describe. */
static ms_rotate_cache_map_result open_entry(int directory_fd, const char *name, int *fd,
                                             struct stat *info, int *error_number)
{
    *fd = openat(directory_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (*fd < 0) {
        *error_number = errno;
        if (errno == ENOENT)
            return MS_ROTATE_CACHE_MISSING;
        /* ELOOP: a symbolic link where an entry belongs */
        return errno == ELOOP ? MS_ROTATE_CACHE_DAMAGED : MS_ROTATE_CACHE_MAP_FAILED;
    }
    if (fstat(*fd, info) != 0) {
        *error_number = errno;
        return MS_ROTATE_CACHE_MAP_FAILED;
    }
    if (!S_ISREG(info->st_mode) || info->st_size < MS_ROTATE_CACHE_HEADER_BYTES)
        return MS_ROTATE_CACHE_DAMAGED;
    return MS_ROTATE_CACHE_MAPPED;
}

/* The header belongs to key and describes exactly the file's size. */
static bool header_fits(const ms_rotate_cache_header *header, const ms_rotate_cache_key *key,
                        const struct stat *info)
{
    uint64_t file_size = (uint64_t)info->st_size;
    return memcmp(header->key.bytes, key->bytes, MS_ROTATE_CACHE_KEY_BYTES) == 0 &&
           header->payload_size == file_size - MS_ROTATE_CACHE_HEADER_BYTES;
}

/* The header, checked against key and the file's size. */
static ms_rotate_cache_map_result read_header(int fd, const ms_rotate_cache_key *key,
                                              const struct stat *info,
                                              ms_rotate_cache_header *header, int *error_number)
{
    unsigned char bytes[HEADER_USED_BYTES];
    *error_number = ms_rotate_cache_read_all(fd, bytes, sizeof bytes, 0);
    if (*error_number == EIO)   /* shorter than a header: checked before, so changed since */
        return MS_ROTATE_CACHE_DAMAGED;
    if (*error_number != 0)
        return MS_ROTATE_CACHE_MAP_FAILED;
    if (!ms_rotate_cache_header_decode(bytes, sizeof bytes, header) ||
        !header_fits(header, key, info))
        return MS_ROTATE_CACHE_DAMAGED;
    return MS_ROTATE_CACHE_MAPPED;
}

ms_rotate_cache_map_result ms_rotate_cache_file_check(int directory_fd, const char *name,
                                                      const ms_rotate_cache_key *key,
                                                      uint64_t *payload_size, int64_t *mtime_ns,
                                                      int *error_number)
{
    int fd;
    struct stat info;
    ms_rotate_cache_header header;
    ms_rotate_cache_map_result result = open_entry(directory_fd, name, &fd, &info, error_number);
    if (result == MS_ROTATE_CACHE_MAPPED)
        result = read_header(fd, key, &info, &header, error_number);
    if (result == MS_ROTATE_CACHE_MAPPED) {
        *payload_size = header.payload_size;
        *mtime_ns = (int64_t)info.st_mtim.tv_sec * 1000000000 + info.st_mtim.tv_nsec;
    }
    if (fd >= 0)
        close(fd);
    return result;
}

int ms_rotate_cache_read_all(int fd, void *buffer, size_t size, uint64_t offset)
{
    unsigned char *bytes = buffer;
    while (size > 0) {
        ssize_t got = pread(fd, bytes, size, (off_t)offset);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return got < 0 ? errno : EIO;   /* EIO: the file became shorter */
        bytes += got;
        size -= (size_t)got;
        offset += (uint64_t)got;
    }
    return 0;
}

/* The payload's XXH3-64, read with pread: on this kind of machine that is
 * four times faster than faulting the pages of a mapping in, and it keeps
 * nothing resident. */
static ms_rotate_cache_map_result payload_checksum(int fd, uint64_t payload_size,
                                                   const atomic_int *cancel, uint64_t *checksum,
                                                   int *error_number)
{
    unsigned char *buffer = malloc(CHECK_CHUNK_BYTES);
    XXH3_state_t *state = XXH3_createState();
    ms_rotate_cache_map_result result = MS_ROTATE_CACHE_MAPPED;
    if (buffer == NULL || state == NULL) {
        *error_number = ENOMEM;
        result = MS_ROTATE_CACHE_MAP_FAILED;
        goto done;
    }
    XXH3_64bits_reset(state);
    for (uint64_t done = 0; done < payload_size; done += CHECK_CHUNK_BYTES) {
        if (cancel != NULL && atomic_load(cancel)) {
            result = MS_ROTATE_CACHE_CHECK_CANCELLED;
            goto done;
        }
        size_t length = payload_size - done < CHECK_CHUNK_BYTES ? (size_t)(payload_size - done)
                                                                : CHECK_CHUNK_BYTES;
        *error_number = ms_rotate_cache_read_all(fd, buffer, length,
                                                 MS_ROTATE_CACHE_HEADER_BYTES + done);
        if (*error_number != 0) {
            result = MS_ROTATE_CACHE_MAP_FAILED;
            goto done;
        }
        XXH3_64bits_update(state, buffer, length);
    }
    *checksum = XXH3_64bits_digest(state);
done:
    XXH3_freeState(state);
    free(buffer);
    return result;
}

ms_rotate_cache_map_result ms_rotate_cache_file_map(int directory_fd, const char *name,
                                                    const ms_rotate_cache_key *key,
                                                    const atomic_int *cancel,
                                                    unsigned char **base, int *fd_out,
                                                    uint64_t *payload_size, int *error_number)
{
    int fd;
    struct stat info;
    ms_rotate_cache_header header;
    uint64_t checksum = 0;
    ms_rotate_cache_map_result result = open_entry(directory_fd, name, &fd, &info, error_number);
    if (result == MS_ROTATE_CACHE_MAPPED)
        result = read_header(fd, key, &info, &header, error_number);
    if (result == MS_ROTATE_CACHE_MAPPED && (uint64_t)info.st_size > SIZE_MAX) {
        *error_number = EFBIG;
        result = MS_ROTATE_CACHE_MAP_FAILED;
    }
    if (result == MS_ROTATE_CACHE_MAPPED)
        result = payload_checksum(fd, header.payload_size, cancel, &checksum, error_number);
    if (result == MS_ROTATE_CACHE_MAPPED && checksum != header.checksum)
        result = MS_ROTATE_CACHE_DAMAGED;
    if (result == MS_ROTATE_CACHE_MAPPED) {
        void *mapping = mmap(NULL, (size_t)info.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (mapping == MAP_FAILED) {
            *error_number = errno;
            result = MS_ROTATE_CACHE_MAP_FAILED;
        } else {
            (void)madvise(mapping, (size_t)info.st_size, MADV_HUGEPAGE);   /* as inputs */
            *base = mapping;
            *fd_out = fd;
            *payload_size = header.payload_size;
            return MS_ROTATE_CACHE_MAPPED;
        }
    }
    if (fd >= 0)
        close(fd);
    return result;
}
