/* Reading a file mapping that may shrink underneath.
 *
 * A mapped file that another process truncates (a model replaced while a
 * job reads it) turns every read past its new end into SIGBUS, which kills
 * the process: the service would die with all its jobs.  Reads of mapped
 * input run through ms_mapped_read: a SIGBUS inside it makes it return false
 * instead.  The handler is process-wide and installed on first use; a SIGBUS
 * anywhere else gets the disposition that was there before (by default the
 * process dies, as it should for a real bug).
 *
 * The work is abandoned midway (siglongjmp) when the mapping faults, so it
 * must not allocate, lock or hold anything: plain loads and stores only. */
#ifndef MS_MAPPED_READ_H
#define MS_MAPPED_READ_H

#include <stdbool.h>
#include <stddef.h>

typedef void ms_mapped_work(void *context);

/* Runs work(context); false when it touched mapped pages past the end of
 * their file. */
bool ms_mapped_read(ms_mapped_work *work, void *context);

/* Reads one byte of every page in [bytes, bytes + length): false as above. */
bool ms_mapped_touch(const void *bytes, size_t length);

#endif
