/* A single updating progress line on a terminal: percent, done/total,
 * current item, ETA.  Silent when the stream is not a terminal, so logs
 * and pipes stay clean. */
#ifndef MS_PROGRESS_DISPLAY_H
#define MS_PROGRESS_DISPLAY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct ms_progress_display {
    FILE *stream;
    bool enabled;
    bool drawn;
    double start_seconds;
    double last_draw_seconds;
    pthread_mutex_t lock;    /* the core calls back from worker threads */
} ms_progress_display;

void ms_progress_display_init(ms_progress_display *display, FILE *stream);

/* An ms_progress_fn: user_data is the display. */
void ms_progress_display_update(void *user_data, size_t done, size_t total,
                                const char *current_key);

/* Erases the line (if one was drawn) and releases the display. */
void ms_progress_display_finish(ms_progress_display *display);

#endif
