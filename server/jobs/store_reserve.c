#include "store_reserve.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/format/output_file.h"

ms_status ms_store_reserve_init(ms_store_reserve *reserve, const char *path, uint64_t bytes,
                                ms_error *err)
{
    memset(reserve, 0, sizeof *reserve);
    reserve->bytes = bytes;
    reserve->path = strdup(path);
    if (reserve->path == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    return MS_OK;
}

void ms_store_reserve_destroy(ms_store_reserve *reserve)
{
    free(reserve->path);
    memset(reserve, 0, sizeof *reserve);
}

ms_status ms_store_reserve_fill(ms_store_reserve *reserve, ms_error *err)
{
    /* Looked at every time (an open and an fstat, next to the fsync of the
     * commit it guards): a reserve someone removed by hand is no reserve. */
    reserve->present = false;
    int fd = open(reserve->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return ms_output_file_io_error(err, errno, "create", reserve->path);
    struct stat info;
    int error = fstat(fd, &info) != 0 ? errno : 0;
    /* Blocks, not a size: a sparse file (ftruncate) would give nothing
     * back when released. */
    if (error == 0 && (uint64_t)info.st_blocks * 512 < reserve->bytes)
        error = posix_fallocate(fd, 0, (off_t)reserve->bytes);
    close(fd);
    if (error != 0) {
        /* a partial reserve guarantees nothing and takes what others need */
        unlink(reserve->path);
        ms_status status = ms_output_file_io_error(err, error, "allocate", reserve->path);
        ms_error_detail_add(err, "reserve_bytes", "%llu", (unsigned long long)reserve->bytes);
        return status;
    }
    reserve->present = true;
    return MS_OK;
}

bool ms_store_reserve_release(ms_store_reserve *reserve)
{
    /* unlinked whatever we believed: a file left by an earlier process
     * counts as much as ours */
    bool released = unlink(reserve->path) == 0;
    reserve->present = false;
    return released;
}
