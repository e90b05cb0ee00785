/* Private to writer.c (spooling adds) and writer_finish.c (publishing). */
#ifndef MS_WRITER_INTERNAL_H
#define MS_WRITER_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "header_build.h"
#include "output_file.h"
#include "safetensors.h"
#include "writer_names.h"
#include "writer.h"

typedef enum writer_entry_state {
    WRITER_ENTRY_PENDING, /* spool range reserved, bytes still being written */
    WRITER_ENTRY_READY,
    WRITER_ENTRY_FAILED,  /* its spool range is an unused gap; the name is free again */
} writer_entry_state;

typedef struct writer_entry {
    char *name;
    ms_dtype dtype;
    int ndim;
    int64_t shape[MS_MAX_DIMS];
    uint64_t spool_offset;
    uint64_t byte_count;
    writer_entry_state state;
} writer_entry;

struct ms_writer {
    pthread_mutex_t lock;     /* guards everything below except the fds' contents */
    ms_output_file output;    /* the resolved target, its folder and the temporary */
    int spool_fd;             /* anonymous: never visible under any name */
    uint64_t spool_size;      /* bytes reserved so far */
    writer_entry *entries;
    size_t entry_count;
    size_t entry_capacity;
    ms_writer_names names;    /* name -> entry index, for duplicate checks */
    size_t metadata_count;
    size_t metadata_capacity;
    ms_metadata_entry *metadata;  /* sorted by name: copied input metadata
                                     (sorted already) appends, and a lookup is
                                     a binary search, so 10^6 keys stay cheap */
    char *data_hash_name;     /* NULL unless set_data_hash_metadata was called */
    char *legacy_hash_name;   /* NULL unless set_legacy_hash_metadata was called */
    char *legacy_hash_prefix; /* the metadata the legacy hash's header keeps */
};

/* Bounded copy/convert chunk: big enough for full-speed I/O, small enough
 * that memory stays independent of the tensor size. */
enum { MS_WRITER_CHUNK_BYTES = 4u << 20 };

/* pwrite until done, retrying EINTR and short writes; errno-derived status
 * (ENOSPC/EDQUOT -> disk_full) with what as the message subject. */
ms_status ms_writer_pwrite_all(int fd, const void *bytes, uint64_t length, uint64_t offset,
                               const char *what, ms_error *err);

/* Maps an errno to disk_full or io_error and fills err (as
 * ms_output_file_io_error). */
ms_status ms_writer_io_error(ms_error *err, int error_number, const char *action,
                             const char *what);

/* The header's view of tensors in data order (malloced; NULL when out of
 * memory). */
ms_header_tensor *ms_writer_header_tensors(writer_entry *const *order, size_t count);

/* The hex legacy hash (see ms_writer_set_legacy_hash_metadata) of the data
 * section made of order's entries, read from the mapped spool. */
ms_status ms_writer_legacy_hash(const ms_writer *writer, writer_entry *const *order,
                                size_t count, const unsigned char *spool_map, char hex[9],
                                ms_error *err);

/* Frees everything, closing (and so discarding) the spool and removing the
 * output's temporary, if any. */
void ms_writer_free(ms_writer *writer);

#endif
