#include "auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

enum { TOKEN_MAX = 4096 };

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

char *ms_auth_load_token(const char *path, char *message, size_t message_size)
{
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        snprintf(message, message_size, "cannot read token file %s: %s", path, strerror(errno));
        return NULL;
    }
    char line[TOKEN_MAX];
    char *read = fgets(line, sizeof line, file);
    fclose(file);
    char *start = line;
    size_t length = 0;
    if (read != NULL) {
        while (is_blank(*start))
            start++;
        length = strlen(start);
        while (length > 0 && is_blank(start[length - 1]))
            length--;
    }
    if (length == 0) {
        snprintf(message, message_size, "token file %s has an empty first line", path);
        return NULL;
    }
    return strndup(start, length);
}

/* Digests make the comparison independent of both lengths. */
static void digest(const char *text, size_t length, unsigned char out[32])
{
    unsigned int size = 32;
    EVP_Digest(text, length, out, &size, EVP_sha256(), NULL);
}

bool ms_auth_check(const char *token, const char *authorization_header)
{
    const char *given = "";
    bool scheme_ok = false;
    if (authorization_header != NULL && strncasecmp(authorization_header, "Bearer ", 7) == 0) {
        scheme_ok = true;
        given = authorization_header + 7;
        while (*given == ' ')
            given++;
    }
    size_t given_length = strlen(given);
    while (given_length > 0 && is_blank(given[given_length - 1]))
        given_length--;
    unsigned char expected_digest[32], given_digest[32];
    digest(token, strlen(token), expected_digest);
    digest(given, given_length, given_digest);
    volatile unsigned char difference = 0;
    for (int i = 0; i < 32; i++)
        difference |= (unsigned char)(expected_digest[i] ^ given_digest[i]);
    return scheme_ok && given_length > 0 && difference == 0;
}
