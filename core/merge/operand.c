/* Reading a merge operand: conversion under the SIGBUS guard, then the pages
 * done with go back to the page cache (see method.h for which ones). */
#include "method_internal.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/format/mapped_read.h"

typedef struct operand_work {
    const ms_merge_operand *operand;
    const unsigned char *source;
    size_t count;
    void *target;
    bool raw16;              /* copy the 16-bit patterns, do not convert */
} operand_work;

/* Page-cache pages read through the mapping in 4 KiB pages come in at a
 * quarter of the speed of 2 MiB ones on this project's virtual machines
 * (2.1 against 9.2 GB/s converted, the pages populated first: the first
 * access to each 4 KiB page costs about 1.5 us under the PVM hypervisor;
 * a second pass runs at 9.5).  Which one a file gets is the page cache's
 * doing (safetensors.c asks for 2 MiB folios).  The elements are converted
 * two pages' worth at a time, the next two pages' lines asked for first
 * (prefetches never fault, and these stay inside the read): measured
 * 6% less user time on SDXL weighted_sum over 4 KiB pages.  Two pages, not
 * one: a slice of 4096 fp16 values still takes dtype.c's table path where
 * there is no F16C. */
enum { SLICE_BYTES = 8192, LINE_BYTES = 64 };

static void prefetch_lines(const unsigned char *begin, size_t length)
{
    for (size_t offset = 0; offset < length; offset += LINE_BYTES)
        __builtin_prefetch(begin + offset);
}

static void convert_slice(const operand_work *work, size_t first, size_t count)
{
    if (work->raw16)
        memcpy((uint16_t *)work->target + first, work->source + first * sizeof(uint16_t),
               count * sizeof(uint16_t));
    else
        ms_dtype_to_double(work->operand->dtype,
                           work->source + first * ms_dtype_size(work->operand->dtype),
                           (double *)work->target + first, count);
}

static void read_work(void *context)
{
    const operand_work *work = context;
    size_t element_size = work->raw16 ? sizeof(uint16_t) : ms_dtype_size(work->operand->dtype);
    size_t slice = SLICE_BYTES / element_size;
    for (size_t done = 0; done < work->count; done += slice) {
        size_t part = work->count - done < slice ? work->count - done : slice;
        size_t after = work->count - done - part;
        prefetch_lines(work->source + (done + part) * element_size,
                       (after < slice ? after : slice) * element_size);
        convert_slice(work, done, part);
    }
}

/* Pages are handed back in windows, not after every chunk: each release
 * is a TLB shootdown on every core the process runs on, and a window of
 * 2 MiB keeps them rare while the resident set stays small.  A read that
 * crosses a window boundary releases the windows it completes (pages of a
 * neighbouring tensor at the edge are only refetched from the page cache);
 * what is left of the last window goes when the driver releases the whole
 * tensor after merging it. */
enum { RELEASE_WINDOW_BYTES = 2u << 20 };

static uintptr_t page_size(void)
{
    long size = sysconf(_SC_PAGESIZE);
    return size > 0 ? (uintptr_t)size : 4096;
}

void ms_merge_release_pages(const void *bytes, uint64_t length)
{
    uintptr_t page = page_size();
    uintptr_t begin = ((uintptr_t)bytes + page - 1) & ~(page - 1);
    uintptr_t end = ((uintptr_t)bytes + (uintptr_t)length) & ~(page - 1);
    if (end > begin)
        madvise((void *)begin, end - begin, MADV_DONTNEED);
}

/* Windows count from the operand's first byte, so a release never reaches
 * outside the operand (only whole pages inside it). */
static void release_read_windows(const ms_merge_operand *operand, uint64_t begin_offset,
                                 uint64_t end_offset)
{
    uint64_t first = begin_offset / RELEASE_WINDOW_BYTES * RELEASE_WINDOW_BYTES;
    uint64_t last = end_offset / RELEASE_WINDOW_BYTES * RELEASE_WINDOW_BYTES;
    if (last > first)
        ms_merge_release_pages(operand->bytes + first, last - first);
}

/* One call maps the pages about to be read, where the page faults of the
 * conversion loop would each cost an exception (dear on a virtual
 * machine).  Advice only: a failure leaves the faults to do the work. */
static void populate_pages(const unsigned char *begin, const unsigned char *end)
{
#ifdef MADV_POPULATE_READ
    uintptr_t page = page_size();
    uintptr_t first = (uintptr_t)begin & ~(page - 1);
    if ((uintptr_t)end > first)
        madvise((void *)first, (uintptr_t)end - first, MADV_POPULATE_READ);
#else
    (void)begin;
    (void)end;
#endif
}

static ms_status shrank(ms_error *err)
{
    ms_error_set(err, MS_ERR_IO, NULL,
                 "an input file became shorter while a tensor was merged "
                 "(was it replaced or truncated?)");
    ms_error_detail_add(err, "reason", "file_shrank");
    return MS_ERR_IO;
}

static ms_status read_elements(const ms_merge_operand *operand, uint64_t start, size_t count,
                               void *target, bool raw16, ms_error *err)
{
    if (count == 0)
        return MS_OK;
    size_t element_size = ms_dtype_size(operand->dtype);
    operand_work work = {operand, operand->bytes + start * element_size, count, target, raw16};
    if (operand->release_pages)
        populate_pages(work.source, work.source + count * element_size);
    if (!ms_mapped_read(read_work, &work))
        return shrank(err);
    if (operand->release_pages)
        release_read_windows(operand, start * element_size, (start + count) * element_size);
    return MS_OK;
}

ms_status ms_merge_operand_read(const ms_merge_operand *operand, uint64_t start, size_t count,
                                double *target, ms_error *err)
{
    if (!ms_dtype_is_float(operand->dtype))
        return ms_error_set(err, MS_ERR_UNSUPPORTED_DTYPE, NULL,
                            "a merge operand has dtype %s, not a float type",
                            ms_dtype_name(operand->dtype));
    return read_elements(operand, start, count, target, false, err);
}

ms_status ms_merge_read_bits16(const ms_merge_task *task, const ms_merge_operand *operand,
                               uint64_t start, size_t count, uint16_t *target, ms_error *err)
{
    ms_status status = MS_OK;
    if (!ms_merge_dtype_is_narrow(operand->dtype))
        status = ms_error_set(err, MS_ERR_INTERNAL, NULL, "16-bit read of a %s operand",
                              ms_dtype_name(operand->dtype));
    else
        status = read_elements(operand, start, count, target, true, err);
    return ms_merge_with_key(task, status, err);
}
