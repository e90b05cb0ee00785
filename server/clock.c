#include "clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "text.h"

int64_t ms_clock_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

double ms_clock_monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec * 1e3 + (double)now.tv_nsec / 1e6;
}

void ms_clock_format(int64_t epoch_ms, char text[MS_CLOCK_TEXT_SIZE])
{
    time_t seconds = (time_t)(epoch_ms / 1000);
    int millis = (int)(epoch_ms % 1000);
    if (millis < 0) {
        millis += 1000;
        seconds -= 1;
    }
    struct tm utc;
    gmtime_r(&seconds, &utc);
    /* by hand: this runs for every job poll and snprintf costs more */
    int year = utc.tm_year + 1900;
    if (year < 0 || year > 9999) {
        snprintf(text, MS_CLOCK_TEXT_SIZE, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", year,
                 utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, millis);
        return;
    }
    const int fields[] = {year, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                          utc.tm_sec, millis};
    const int widths[] = {4, 2, 2, 2, 2, 2, 3};
    const char separators[] = "--T::.Z";
    size_t length = 0;
    for (size_t field = 0; field < sizeof widths / sizeof widths[0]; field++) {
        char digits[MS_UINT_DIGITS_MAX];   /* every field fits its width here */
        size_t count = ms_format_uint(digits, (unsigned long long)fields[field], widths[field]);
        memcpy(text + length, digits, count);
        length += count;
        text[length++] = separators[field];
    }
    text[length] = '\0';
}
