/* Text from files and requests (tensor names, metadata, messages that quote
 * them) on a terminal or in the log: control characters (below 0x20, and
 * 0x7f) become C escapes, so that a tensor name can neither forge a log line
 * nor move a terminal's cursor.  Other bytes, UTF-8 included, pass as they
 * are.  Exact text stays available in JSON output. */
#ifndef MS_PRINTABLE_H
#define MS_PRINTABLE_H

#include <stddef.h>

/* Room for length bytes of text, each escaped, and the NUL. */
#define MS_PRINTABLE_SIZE(length) (4 * (length) + 1)

/* Copies the first length bytes of text (fewer at a NUL) into out with
 * control characters escaped (\n, \r, \t, else \xNN), stopping before an
 * escape that would not fit; out is always NUL-terminated.  Returns the
 * bytes written, without the NUL.  capacity must be at least 1; a NULL text
 * is empty. */
size_t ms_printable_copy(const char *text, size_t length, char *out, size_t capacity);

/* The same for a whole string: out, for use as a printf argument. */
const char *ms_printable(const char *text, char *out, size_t capacity);

#endif
