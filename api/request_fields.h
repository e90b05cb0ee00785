/* The refusals every request parser shares: invalid_parameter naming the
 * field (details.field), so a client knows which of its fields to fix. */
#ifndef MS_API_REQUEST_FIELDS_H
#define MS_API_REQUEST_FIELDS_H

#include <jansson.h>

#include "core/error.h"

/* format has two %s: the field, then text. */
ms_status ms_api_field_error(ms_error *err, const char *field, const char *format,
                             const char *text);

/* "field 'F' must be EXPECTED" */
ms_status ms_api_wrong_type(ms_error *err, const char *field, const char *expected);

/* The refusal of a value that is not an integer, for an integer field.  An
 * integer past 64 bits arrives as a whole real (ms_api_json_loadb): that one
 * is out of range, not of the wrong type. */
ms_status ms_api_not_an_integer(ms_error *err, const char *field, const json_t *value);

/* A JSON string that is a valid C string ("a\u0000b" would be cut short
 * silently, so it is refused); *out points into value. */
ms_status ms_api_read_string(const json_t *value, const char *field, const char **out,
                             ms_error *err);

#endif
