#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"

void ms_log(const char *format, ...)
{
    char line[2048];
    char now[MS_CLOCK_TEXT_SIZE];
    ms_clock_format(ms_clock_now_ms(), now);
    int used = snprintf(line, sizeof line, "%s ", now);
    va_list args;
    va_start(args, format);
    vsnprintf(line + used, sizeof line - (size_t)used - 1, format, args);
    va_end(args);
    size_t length = strlen(line);
    line[length++] = '\n';
    /* Best effort: a closed stderr must not stop the service. */
    ssize_t written = write(STDERR_FILENO, line, length);
    (void)written;
}
