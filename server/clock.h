/* Wall-clock time as milliseconds since the epoch, and its RFC 3339 form. */
#ifndef MS_CLOCK_H
#define MS_CLOCK_H

#include <stdint.h>

enum { MS_CLOCK_TEXT_SIZE = 64 };

int64_t ms_clock_now_ms(void);

/* Monotonic milliseconds, for durations. */
double ms_clock_monotonic_ms(void);

/* "2026-11-30T10:20:00.123Z" (UTC, milliseconds). */
void ms_clock_format(int64_t epoch_ms, char text[MS_CLOCK_TEXT_SIZE]);

#endif
