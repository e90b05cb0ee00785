/* Bearer tokens: loaded from --token-file, compared in constant time. */
#ifndef MS_AUTH_H
#define MS_AUTH_H

#include <stdbool.h>
#include <stddef.h>

/* First line of the file, surrounding blanks trimmed; NULL with a reason in
 * message when the file is unreadable or the token empty. Malloced. */
char *ms_auth_load_token(const char *path, char *message, size_t message_size);

/* True when header is "Bearer <token>" (scheme case-insensitive).  Takes
 * the same time whatever the header holds, for a given token. */
bool ms_auth_check(const char *token, const char *authorization_header);

#endif
