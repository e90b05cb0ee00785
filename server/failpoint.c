#include "failpoint.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static pthread_once_t read_once = PTHREAD_ONCE_INIT;
static int progress_sleep_ms;

static void read_environment(void)
{
    const char *text = getenv("MERGESVD_FAILPOINT_PROGRESS_SLEEP_MS");
    long value = text != NULL ? strtol(text, NULL, 10) : 0;
    progress_sleep_ms = value > 0 && value <= 60000 ? (int)value : 0;
}

int ms_failpoint_progress_sleep_ms(void)
{
    pthread_once(&read_once, read_environment);
    return progress_sleep_ms;
}

void ms_failpoint_progress_pause(void)
{
    int sleep_ms = ms_failpoint_progress_sleep_ms();
    if (sleep_ms <= 0)
        return;
    struct timespec pause = {sleep_ms / 1000, (long)(sleep_ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}
