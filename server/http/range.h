/* The Range request header (RFC 9110 section 14), single byte ranges only.
 * Hostile input: anything that is not exactly one well-formed byte range is
 * ignored (the whole file is served), as the RFC allows. */
#ifndef MS_RANGE_H
#define MS_RANGE_H

#include <stdint.h>

typedef enum ms_range_kind {
    MS_RANGE_NONE,            /* no usable Range: 200 with the whole file */
    MS_RANGE_PARTIAL,         /* 206: [start, start + length) */
    MS_RANGE_UNSATISFIABLE,   /* 416 */
} ms_range_kind;

/* header may be NULL.  "bytes=a-b", "bytes=a-", "bytes=-n". */
ms_range_kind ms_range_parse(const char *header, uint64_t size, uint64_t *start,
                             uint64_t *length);

#endif
