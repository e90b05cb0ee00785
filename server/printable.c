#include "printable.h"

#include <string.h>

static size_t escape(unsigned char byte, char code[4])
{
    static const char hex[] = "0123456789abcdef";
    if (byte >= 0x20 && byte != 0x7f) {
        code[0] = (char)byte;
        return 1;
    }
    code[0] = '\\';
    switch (byte) {
    case '\n': code[1] = 'n'; return 2;
    case '\r': code[1] = 'r'; return 2;
    case '\t': code[1] = 't'; return 2;
    default:
        code[1] = 'x';
        code[2] = hex[byte >> 4];
        code[3] = hex[byte & 0xf];
        return 4;
    }
}

size_t ms_printable_copy(const char *text, size_t length, char *out, size_t capacity)
{
    size_t used = 0;
    for (size_t i = 0; text != NULL && i < length && text[i] != '\0'; i++) {
        char code[4];
        size_t code_length = escape((unsigned char)text[i], code);
        if (used + code_length + 1 > capacity)
            break;
        memcpy(out + used, code, code_length);
        used += code_length;
    }
    out[used] = '\0';
    return used;
}

const char *ms_printable(const char *text, char *out, size_t capacity)
{
    ms_printable_copy(text, (size_t)-1, out, capacity);
    return out;
}
