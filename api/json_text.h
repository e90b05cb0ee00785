/* JSON strings from text that may come from hostile files. */
#ifndef MS_API_JSON_TEXT_H
#define MS_API_JSON_TEXT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* json_string() refuses invalid UTF-8 (returns NULL); this one replaces
 * each bad byte with '?' instead, so an error naming a strange tensor key
 * still reaches the client. NULL text gives JSON null. */
json_t *ms_api_json_text(const char *text);

/* Whether text is valid UTF-8 (what json_string() takes). */
bool ms_api_text_is_utf8(const char *text);

/* A double as a JSON number, or null when NaN or infinite (JSON has no
 * spelling for them). */
json_t *ms_api_json_number(double value);

/* An unsigned integer as a JSON integer.  jansson's integers stop at
 * INT64_MAX; a larger value (a file's 8-byte header length, say) is carried
 * as a marked string (an escaped NUL, which no other string here holds,
 * then '#' and the digits) that ms_api_json_dumps prints as the bare
 * digits.  Only print it with ms_api_json_dumps. */
json_t *ms_api_json_uint64(uint64_t value);

/* json_dumps(value, JSON_COMPACT | flags), except that each real is printed
 * in the shortest form that reads back as the same double, always with a
 * ".0" or an exponent so it stays a real: a client that sent 0.9 sees 0.9,
 * not jansson's 0.90000000000000002.  JSON_REAL_PRECISION in flags is
 * ignored.  Free the text with free(); NULL when out of memory or when
 * jansson refuses the value. */
char *ms_api_json_dumps(const json_t *value, size_t flags);

/* The same text written to stream (json_dumpf's flags are used as given,
 * so pass JSON_INDENT(2) for the command line's indented output).  Returns
 * 0, or -1 when the text could not be made or written. */
int ms_api_json_dumpf(const json_t *value, FILE *stream, size_t flags);

#endif
