#include "failpoint.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static const char *const variable_names[MS_FAILPOINT_COUNT] = {
    [MS_FAILPOINT_PROGRESS_SLEEP] = "MERGESVD_FAILPOINT_PROGRESS_SLEEP_MS",
    [MS_FAILPOINT_SUBMIT_SLEEP] = "MERGESVD_FAILPOINT_SUBMIT_SLEEP_MS",
};
static pthread_once_t read_once = PTHREAD_ONCE_INIT;
static int sleep_ms[MS_FAILPOINT_COUNT];

static void read_environment(void)
{
    for (int i = 0; i < MS_FAILPOINT_COUNT; i++) {
        const char *text = getenv(variable_names[i]);
        long value = text != NULL ? strtol(text, NULL, 10) : 0;
        sleep_ms[i] = value > 0 && value <= 60000 ? (int)value : 0;
    }
}

int ms_failpoint_sleep_ms(ms_failpoint failpoint)
{
    pthread_once(&read_once, read_environment);
    return failpoint >= 0 && failpoint < MS_FAILPOINT_COUNT ? sleep_ms[failpoint] : 0;
}

void ms_failpoint_pause(ms_failpoint failpoint)
{
    int pause_ms = ms_failpoint_sleep_ms(failpoint);
    if (pause_ms <= 0)
        return;
    struct timespec pause = {pause_ms / 1000, (long)(pause_ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}
