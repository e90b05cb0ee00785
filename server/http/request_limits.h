/* The request's head, checked once its headers are complete and before
 * authentication or routing: what libmicrohttpd lets through but the
 * service refuses, in the one JSON error shape.
 *
 * What libmicrohttpd 0.9.75 cannot parse or hold it would answer itself,
 * with a short HTML body; the request gate (request_gate.h) refuses those
 * heads first.  The pool is sized so that a head within the limits below
 * always reaches us, and a head somewhat beyond them still does. */
#ifndef MS_HTTP_REQUEST_LIMITS_H
#define MS_HTTP_REQUEST_LIMITS_H

#include <stdbool.h>

#include "http.h"

enum {
    /* request line and header fields together; more is 431 headers_too_large */
    MS_HTTP_MAX_HEAD_BYTES = 12 * 1024,
    /* header fields; more is 431 headers_too_large */
    MS_HTTP_MAX_HEADER_FIELDS = 256,
    /* the request target (path and query) as sent; more is 414 uri_too_long */
    MS_HTTP_MAX_URI_BYTES = 8 * 1024,
    /* libmicrohttpd's memory per connection (MHD_OPTION_CONNECTION_MEMORY_LIMIT):
     * holds the head's text plus about 64 bytes per header field and per
     * query argument (measured: 16 KiB in 255 fields fit, 256 do not), so a
     * head within the limits above fits with 4 KiB to spare and one a little
     * past them still gets the JSON answer.  libmicrohttpd zeroes it between
     * requests: at 32 KiB that memset was measured earlier at 6 % of an HTTP
     * thread's time under polling, the price of the 250 headers promised. */
    MS_HTTP_CONNECTION_MEMORY = 32 * 1024,
};

/* The answer to queue instead of routing the request, or false when the head
 * is acceptable:
 * - 400 bad_request: Content-Length given twice with different values, or
 *   beside Transfer-Encoding (which one frames the body is what request
 *   smuggling through a proxy plays on; RFC 9112 6.3);
 * - 414 uri_too_long, 431 headers_too_large: past the limits above.
 * The connection is closed after such an answer. */
bool ms_http_refuse_bad_head(ms_http_request *request, enum MHD_Result *result);

/* The 431 headers_too_large error for a head of head_bytes in fields, the
 * same wherever the head is measured (here or in request_head.h). */
void ms_http_head_too_large(ms_error *err, size_t head_bytes, size_t fields);

#endif
