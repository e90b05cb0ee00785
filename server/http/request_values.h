/* Values the service reads from request headers and the query string, each
 * hostile: If-None-Match, Idempotency-Key, the positive integers of
 * /v1/jobs?limit=&cursor=.  Kept apart from libmicrohttpd's request so
 * that they can be tested and fuzzed alone (tests/fuzz). */
#ifndef MS_REQUEST_VALUES_H
#define MS_REQUEST_VALUES_H

#include <stdbool.h>

enum { MS_IDEMPOTENCY_KEY_MAX = 200 };

/* If-None-Match (header may be NULL): "*" or a list of entity tags that
 * holds etag (a quoted tag; weak ones, W/"...", compared weakly). */
bool ms_http_etag_matches(const char *header, const char *etag);

/* 1 to MS_IDEMPOTENCY_KEY_MAX printable ASCII characters. */
bool ms_http_idempotency_key_valid(const char *key);

/* Decimal digits only, 1 to max (text may be NULL: false). */
bool ms_http_parse_positive(const char *text, long long max, long long *value);

#endif
