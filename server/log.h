/* One line per event on stderr, no timestamp (journald and friends add
 * their own).
 *
 * Two kinds of lines.  ms_log writes at once: job transitions, startup and
 * shutdown are rare and must not wait.  ms_log_buffered (the access log)
 * only appends to a buffer that ms_log_flush writes out; the serve loop
 * flushes it every MS_LOG_FLUSH_INTERVAL_MS.  A write per request cost the
 * HTTP thread a system call and, with stderr on a pipe (journald), a wakeup
 * of the reader: a fifth of its time under a polling load.  Request threads
 * never write: a line that finds the buffer full (stderr not keeping up) is
 * dropped, and the next flush says how many were.  Order is kept: ms_log
 * writes the buffered lines before its own, and every write is of whole
 * lines. */
#ifndef MS_LOG_H
#define MS_LOG_H

#include <stddef.h>

enum { MS_LOG_FLUSH_INTERVAL_MS = 100 };

void ms_log(const char *format, ...) __attribute__((format(printf, 1, 2)));
/* A line without its newline, cut at the line limit (the access log builds
 * its lines without printf). */
void ms_log_buffered(const char *line, size_t length);

/* Writes the buffered lines now. */
void ms_log_flush(void);

/* Where lines go (stderr by default); for tests. */
void ms_log_set_fd(int fd);

#endif
