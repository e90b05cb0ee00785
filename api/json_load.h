/* Request bodies read with jansson, integers too big for it included. */
#ifndef MS_API_JSON_LOAD_H
#define MS_API_JSON_LOAD_H

#include <jansson.h>
#include <stddef.h>

/* json_loadb(text, length, flags, error), except that an integer past
 * jansson's 64 bits, which would refuse the whole text ("too big integer"),
 * is read as a real: the request parser then names the field it sits in
 * (an integer field says it is out of range; a number field takes it as
 * the number it is).  Integers within 64 bits stay integers.  A text that
 * fails for another reason fails with that reason. */
json_t *ms_api_json_loadb(const char *text, size_t length, size_t flags, json_error_t *error);

#endif
