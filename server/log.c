#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void ms_log(const char *format, ...)
{
    char line[2048];
    va_list args;
    va_start(args, format);
    vsnprintf(line, sizeof line - 1, format, args);
    va_end(args);
    size_t length = strlen(line);
    line[length++] = '\n';
    /* Best effort: a closed stderr must not stop the service. */
    ssize_t written = write(STDERR_FILENO, line, length);
    (void)written;
}
