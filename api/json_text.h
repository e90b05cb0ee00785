/* JSON strings from text that may come from hostile files. */
#ifndef MS_API_JSON_TEXT_H
#define MS_API_JSON_TEXT_H

#include <jansson.h>
#include <stdbool.h>

/* json_string() refuses invalid UTF-8 (returns NULL); this one replaces
 * each bad byte with '?' instead, so an error naming a strange tensor key
 * still reaches the client. NULL text gives JSON null. */
json_t *ms_api_json_text(const char *text);

/* Whether text is valid UTF-8 (what json_string() takes). */
bool ms_api_text_is_utf8(const char *text);

/* A double as a JSON number, or null when NaN or infinite (JSON has no
 * spelling for them). */
json_t *ms_api_json_number(double value);

#endif
