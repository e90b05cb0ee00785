#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum { LOG_LINE_MAX = 2048, LOG_BUFFER_SIZE = 64 * 1024 };

/* Two locks so that appending never waits for a slow reader of stderr:
 * buffer_mutex guards the buffer and is held only to copy bytes; write_mutex
 * serialises the writes, so lines leave in the order they were logged. */
static pthread_mutex_t buffer_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t write_mutex = PTHREAD_MUTEX_INITIALIZER;
static char buffer[LOG_BUFFER_SIZE];
static size_t buffer_used;
static char spare[LOG_BUFFER_SIZE];   /* written out under write_mutex */
static int log_fd = STDERR_FILENO;

void ms_log_set_fd(int fd)
{
    pthread_mutex_lock(&write_mutex);
    log_fd = fd;
    pthread_mutex_unlock(&write_mutex);
}

/* Best effort: a closed or broken stderr must not stop the service. */
static void write_all(const char *bytes, size_t length)
{
    while (length > 0) {
        ssize_t written = write(log_fd, bytes, length);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0)
            return;
        bytes += written;
        length -= (size_t)written;
    }
}

/* Called with write_mutex held: moves the buffered lines to the spare buffer
 * and writes them without holding buffer_mutex. */
static void write_buffered_locked(void)
{
    pthread_mutex_lock(&buffer_mutex);
    size_t length = buffer_used;
    memcpy(spare, buffer, length);
    buffer_used = 0;
    pthread_mutex_unlock(&buffer_mutex);
    write_all(spare, length);
}

static size_t format_line(char line[LOG_LINE_MAX], const char *format, va_list args)
{
    int length = vsnprintf(line, LOG_LINE_MAX - 1, format, args);
    size_t size = length < 0 ? 0 : (size_t)length;
    if (size > LOG_LINE_MAX - 2)
        size = LOG_LINE_MAX - 2;   /* truncated by vsnprintf */
    line[size++] = '\n';
    return size;
}

void ms_log(const char *format, ...)
{
    char line[LOG_LINE_MAX];
    va_list args;
    va_start(args, format);
    size_t length = format_line(line, format, args);
    va_end(args);
    pthread_mutex_lock(&write_mutex);
    write_buffered_locked();
    write_all(line, length);
    pthread_mutex_unlock(&write_mutex);
}

static void append_line(const char *line, size_t length)
{
    for (;;) {
        pthread_mutex_lock(&buffer_mutex);
        if (buffer_used + length <= sizeof buffer) {
            memcpy(buffer + buffer_used, line, length);
            buffer_used += length;
            pthread_mutex_unlock(&buffer_mutex);
            return;
        }
        pthread_mutex_unlock(&buffer_mutex);
        ms_log_flush();   /* full: this thread makes room, then appends */
    }
}

void ms_log_buffered(const char *text, size_t length)
{
    char line[LOG_LINE_MAX];
    if (length > LOG_LINE_MAX - 2)
        length = LOG_LINE_MAX - 2;
    memcpy(line, text, length);
    line[length++] = '\n';
    append_line(line, length);
}

void ms_log_flush(void)
{
    pthread_mutex_lock(&write_mutex);
    write_buffered_locked();
    pthread_mutex_unlock(&write_mutex);
}
