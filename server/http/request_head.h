/* The request head as bytes, before libmicrohttpd sees it.
 *
 * libmicrohttpd 0.9.75 answers a head it cannot parse or hold with its own
 * short HTML body, before any callback of ours runs, and offers no hook to
 * change that.  The request gate (request_gate.h) reads each connection's
 * first head without consuming it and asks this checker whether
 * libmicrohttpd may have it.  What it refuses gets the service's JSON error
 * instead; what it accepts libmicrohttpd parses again and request_limits.h
 * checks against the service's own limits.
 *
 * Accepted: optional empty lines, then "METHOD SP TARGET SP HTTP/1.d"
 * (one space each, a token method, a target of visible bytes), header
 * lines "name:value" (a token name right before the colon; a value of
 * visible bytes, spaces, tabs and bytes past 0x7f), each ended by CRLF or
 * a bare LF (libmicrohttpd takes both), then an empty line.  Every
 * Content-Length is plain digits below 2^64 - 1 between optional blanks.
 * Pure: no I/O, no allocation. */
#ifndef MS_HTTP_REQUEST_HEAD_H
#define MS_HTTP_REQUEST_HEAD_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

typedef enum ms_request_head_verdict {
    MS_REQUEST_HEAD_INCOMPLETE,   /* nothing wrong so far: more bytes are needed */
    MS_REQUEST_HEAD_ACCEPTED,     /* whole and parseable: hand it to libmicrohttpd */
    MS_REQUEST_HEAD_REFUSED,      /* err holds the answer */
} ms_request_head_verdict;

enum {
    /* bytes read for one head at most: libmicrohttpd's connection memory
     * could not hold more; reaching it without the empty line is 431 */
    MS_REQUEST_HEAD_MAX_BYTES = 32 * 1024,
    /* what libmicrohttpd 0.9.75 takes from the connection's memory per
     * header field and query argument besides the text (measured: 16 KiB
     * in 255 fields fit in 32 KiB, 256 do not) */
    MS_REQUEST_HEAD_FIELD_COST = 64,
    /* memory left over for the rest of the request (the URI callback's
     * copy, the start of a body) */
    MS_REQUEST_HEAD_MEMORY_SPARE = 2 * 1024,
};

/* Checks bytes[0..size), what a client has sent so far.  A line that is
 * complete is judged at once, so a bad request line is refused before the
 * client sends more.  size past MS_REQUEST_HEAD_MAX_BYTES counts as that.
 * On MS_REQUEST_HEAD_REFUSED err is set: 400 bad_request (details.reason:
 * request_line, header_line, line_folding, line_ending, content_length),
 * 505 http_version_not_supported, 414 uri_too_long (a request line longer
 * than the head may be) or 431 headers_too_large. */
ms_request_head_verdict ms_request_head_check(const char *bytes, size_t size, ms_error *err);

#endif
