#include "range.h"

#include <stdbool.h>
#include <stddef.h>
#include <strings.h>

static const char *skip_blanks(const char *text)
{
    while (*text == ' ' || *text == '\t')
        text++;
    return text;
}

/* Decimal digits, saturating at UINT64_MAX so a 40-digit number is just
 * "very large" instead of wrapping.  False when there is no digit. */
static bool parse_number(const char **cursor, uint64_t *value)
{
    const char *text = *cursor;
    uint64_t number = 0;
    bool any = false;
    while (*text >= '0' && *text <= '9') {
        unsigned digit = (unsigned)(*text - '0');
        if (number > (UINT64_MAX - digit) / 10)
            number = UINT64_MAX;
        else
            number = number * 10 + digit;
        any = true;
        text++;
    }
    *cursor = text;
    *value = number;
    return any;
}

ms_range_kind ms_range_parse(const char *header, uint64_t size, uint64_t *start,
                             uint64_t *length)
{
    if (header == NULL)
        return MS_RANGE_NONE;
    const char *text = skip_blanks(header);
    if (strncasecmp(text, "bytes=", 6) != 0)
        return MS_RANGE_NONE;
    text = skip_blanks(text + 6);
    uint64_t first = 0, last = 0;
    bool has_first = parse_number(&text, &first);
    if (*text != '-')
        return MS_RANGE_NONE;
    text++;
    bool has_last = parse_number(&text, &last);
    text = skip_blanks(text);
    if (*text != '\0' || (!has_first && !has_last))
        return MS_RANGE_NONE;   /* several ranges, junk, or a bare "-" */
    if (!has_first) {
        /* suffix range: the last `last` bytes */
        if (last == 0 || size == 0)
            return MS_RANGE_UNSATISFIABLE;
        *length = last < size ? last : size;
        *start = size - *length;
        return MS_RANGE_PARTIAL;
    }
    if (has_last && last < first)
        return MS_RANGE_NONE;       /* invalid: ignored */
    if (first >= size)
        return MS_RANGE_UNSATISFIABLE;
    if (!has_last || last >= size)
        last = size - 1;
    *start = first;
    *length = last - first + 1;
    return MS_RANGE_PARTIAL;
}
