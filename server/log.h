/* One line per event on stderr, no timestamp (journald and friends add
 * their own).  Each line is written with a single write(2) so lines from
 * several threads never mix. */
#ifndef MS_LOG_H
#define MS_LOG_H

void ms_log(const char *format, ...) __attribute__((format(printf, 1, 2)));

#endif
