#include "progress_display.h"

#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "server/printable.h"

/* Redraw at most this often: a terminal is slower than the work. */
static const double redraw_interval_seconds = 0.1;

static double now_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + now.tv_nsec * 1e-9;
}

static int terminal_width(FILE *stream)
{
    struct winsize size;
    if (ioctl(fileno(stream), TIOCGWINSZ, &size) == 0 && size.ws_col >= 40)
        return size.ws_col;
    return 80;
}

void ms_progress_display_init(ms_progress_display *display, FILE *stream)
{
    memset(display, 0, sizeof *display);
    display->stream = stream;
    display->enabled = isatty(fileno(stream)) == 1;
    display->start_seconds = now_seconds();
    pthread_mutex_init(&display->lock, NULL);
}

static void format_eta(char *text, size_t size, double seconds)
{
    if (seconds < 0)
        snprintf(text, size, "--");
    else if (seconds < 60)
        snprintf(text, size, "%.0fs", seconds);
    else
        snprintf(text, size, "%dm%02ds", (int)(seconds / 60), (int)seconds % 60);
}

static void draw(ms_progress_display *display, size_t done, size_t total, const char *key,
                 double now)
{
    double fraction = total > 0 ? (double)done / (double)total : 0.0;
    double elapsed = now - display->start_seconds;
    char eta[32];
    format_eta(eta, sizeof eta, done > 0 ? elapsed * (double)(total - done) / (double)done : -1);
    char head[96];
    int head_length = snprintf(head, sizeof head, "%3.0f%% %zu/%zu ETA %s ", fraction * 100,
                               done, total, eta);
    /* the key gets what is left of the line; keep its tail, the informative end */
    int room = terminal_width(display->stream) - head_length - 1;
    char printable[MS_PRINTABLE_SIZE(512)];
    const char *shown = ms_printable(key, printable, sizeof printable);
    int key_length = (int)strlen(shown);
    if (room < 0)
        room = 0;
    if (key_length > room)
        shown += key_length - room;
    fprintf(display->stream, "\r\033[K%s%s", head, shown);
    fflush(display->stream);
    display->drawn = true;
    display->last_draw_seconds = now;
}

void ms_progress_display_update(void *user_data, size_t done, size_t total,
                                const char *current_key)
{
    ms_progress_display *display = user_data;
    if (display == NULL || !display->enabled)
        return;
    pthread_mutex_lock(&display->lock);
    double now = now_seconds();
    if (!display->drawn || done >= total ||
        now - display->last_draw_seconds >= redraw_interval_seconds)
        draw(display, done, total, current_key, now);
    pthread_mutex_unlock(&display->lock);
}

void ms_progress_display_finish(ms_progress_display *display)
{
    if (display->drawn) {
        fprintf(display->stream, "\r\033[K");
        fflush(display->stream);
    }
    display->drawn = false;
    pthread_mutex_destroy(&display->lock);
}
