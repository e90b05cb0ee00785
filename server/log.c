#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "printable.h"

/* 256 KiB: the lines of 100 ms at 30000 requests a second. */
enum { LOG_LINE_MAX = 2048, LOG_BUFFER_SIZE = 256 * 1024 };

/* Two locks so that appending never waits for a slow reader of stderr:
 * buffer_mutex guards the buffer and is held only to copy bytes; write_mutex
 * serialises the writes, so lines leave in the order they were logged. */
static pthread_mutex_t buffer_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t write_mutex = PTHREAD_MUTEX_INITIALIZER;
static char buffer[LOG_BUFFER_SIZE];
static size_t buffer_used;
static char spare[LOG_BUFFER_SIZE];   /* written out under write_mutex */
static unsigned long dropped_lines;   /* buffered lines that found it full */
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
    unsigned long dropped = dropped_lines;
    dropped_lines = 0;
    pthread_mutex_unlock(&buffer_mutex);
    write_all(spare, length);
    if (dropped > 0) {
        char note[128];
        int note_length = snprintf(note, sizeof note,
                                   "log: %lu access-log line(s) dropped: stderr is not keeping up\n",
                                   dropped);
        if (note_length > 0)
            write_all(note, (size_t)note_length < sizeof note ? (size_t)note_length : sizeof note - 1);
    }
}

/* Messages quote tensor names and paths from files and requests: their
 * control characters are escaped, so one line stays one line. */
static size_t format_line(char line[LOG_LINE_MAX], const char *format, va_list args)
{
    char raw[LOG_LINE_MAX];
    int length = vsnprintf(raw, sizeof raw, format, args);
    size_t size = length < 0 ? 0 : (size_t)length;
    if (size > sizeof raw - 1)
        size = sizeof raw - 1;   /* truncated by vsnprintf */
    size = ms_printable_copy(raw, size, line, LOG_LINE_MAX - 1);
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

/* Never writes: a full buffer means the flusher is stuck in a write (a
 * slow journald, a file system committing its journal), and an HTTP thread
 * that wrote too would stall every request behind it -- 100 ms was seen,
 * behind a job's fsync.  The line is dropped and counted instead. */
void ms_log_buffered(const char *text, size_t length)
{
    if (length > LOG_LINE_MAX - 2)
        length = LOG_LINE_MAX - 2;
    pthread_mutex_lock(&buffer_mutex);
    if (buffer_used + length + 1 <= sizeof buffer) {
        memcpy(buffer + buffer_used, text, length);
        buffer_used += length;
        buffer[buffer_used++] = '\n';
    } else {
        dropped_lines++;
    }
    pthread_mutex_unlock(&buffer_mutex);
}

void ms_log_flush(void)
{
    pthread_mutex_lock(&write_mutex);
    write_buffered_locked();
    pthread_mutex_unlock(&write_mutex);
}
