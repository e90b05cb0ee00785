#include "fuzz.h"

#include <string.h>

#include <jansson.h>

#include "api/api.h"
#include "api/json_load.h"
#include "api/json_text.h"

char *ms_fuzz_text(const uint8_t *data, size_t size)
{
    size_t length = data != NULL ? strnlen((const char *)data, size) : 0;
    char *text = malloc(length + 1);
    if (text != NULL) {
        if (length > 0)
            memcpy(text, data, length);
        text[length] = '\0';
    }
    return text;
}

char *ms_fuzz_next_line(const uint8_t *data, size_t size, size_t *cursor)
{
    if (*cursor >= size)
        return NULL;
    const uint8_t *start = data + *cursor;
    const uint8_t *newline = memchr(start, '\n', size - *cursor);
    size_t length = newline != NULL ? (size_t)(newline - start) : size - *cursor;
    *cursor += length + (newline != NULL ? 1 : 0);
    return ms_fuzz_text(start, length);
}

void ms_fuzz_check_error(const ms_error *err)
{
    int http_status = ms_api_http_status(err->code);
    MS_FUZZ_CHECK(http_status >= 400 && http_status <= 599);
    json_t *body = ms_api_error_body(err);
    char *text = ms_api_json_dumps(body, 0);
    MS_FUZZ_CHECK(text != NULL);
    /* valid JSON may hold integers past 64 bits (a header length): read
     * them as the service's clients would, not as jansson refuses them */
    json_error_t error;
    json_t *parsed = ms_api_json_loadb(text, strlen(text), 0, &error);
    MS_FUZZ_CHECK(parsed != NULL);
    MS_FUZZ_CHECK(json_is_string(json_object_get(json_object_get(parsed, "error"), "code")));
    json_decref(parsed);
    free(text);
    json_decref(body);
}

json_t *ms_fuzz_json_body(const uint8_t *data, size_t size)
{
    return json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
}

char *ms_fuzz_json_text(const json_t *value)
{
    MS_FUZZ_CHECK(value != NULL);
    char *text = ms_api_json_dumps(value, 0);
    MS_FUZZ_CHECK(text != NULL);
    return text;
}
