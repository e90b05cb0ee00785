/* Space set aside beside the job store (DATA/jobs.reserve) so that the
 * store can still record on a full disk what must be recorded: a job's
 * deletion, which is how a client frees space, and a job's final state.
 *
 * SQLite needs room to commit even a DELETE (WAL frames for the pages it
 * changes), and a disk filled by results, by another program or by a
 * job's own output has none.  The reserve is a plain file with its blocks
 * allocated (posix_fallocate): released (unlinked) when a write that must
 * not fail finds the disk full, made again once there is room.  A new job
 * is accepted only while the reserve is in place (job_store.c): a store
 * that accepted a job can then always say how it ended and forget it.
 *
 * Not thread safe by itself: the job store serialises the calls. */
#ifndef MS_STORE_RESERVE_H
#define MS_STORE_RESERVE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

/* Enough for a deletion (a few pages with secure_delete=FAST) and for a
 * final state with a large report (an SDXL resize's is a few hundred KB). */
enum { MS_STORE_RESERVE_BYTES = 1024 * 1024 };

typedef struct ms_store_reserve {
    char *path;
    uint64_t bytes;
    bool present;        /* the last fill made it whole and nothing released it since */
} ms_store_reserve;

/* Names the file (path is copied); nothing on disk changes.  Out of memory
 * gives MS_ERR_OUT_OF_MEMORY. */
ms_status ms_store_reserve_init(ms_store_reserve *reserve, const char *path, uint64_t bytes,
                                ms_error *err);

void ms_store_reserve_destroy(ms_store_reserve *reserve);

/* Makes sure the file holds its bytes (allocates the blocks it lacks;
 * nothing is written when it is whole).  disk_full when the
 * file system has no room for it, io_error otherwise; on failure no
 * partial reserve is left taking space. */
ms_status ms_store_reserve_fill(ms_store_reserve *reserve, ms_error *err);

/* Gives the space back (removes the file).  True when there was a reserve
 * to release: a write that failed for lack of space may then try again. */
bool ms_store_reserve_release(ms_store_reserve *reserve);

#endif
