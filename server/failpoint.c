#include "failpoint.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *const variable_names[MS_FAILPOINT_COUNT] = {
    [MS_FAILPOINT_PROGRESS_SLEEP] = "MERGESVD_FAILPOINT_PROGRESS_SLEEP_MS",
    [MS_FAILPOINT_SUBMIT_SLEEP] = "MERGESVD_FAILPOINT_SUBMIT_SLEEP_MS",
    [MS_FAILPOINT_REAPER_SLEEP] = "MERGESVD_FAILPOINT_REAPER_SLEEP_MS",
};
static pthread_once_t read_once = PTHREAD_ONCE_INIT;
static int sleep_ms[MS_FAILPOINT_COUNT];
static const char *listing_gate;

static void read_environment(void)
{
    for (int i = 0; i < MS_FAILPOINT_COUNT; i++) {
        const char *text = getenv(variable_names[i]);
        long value = text != NULL ? strtol(text, NULL, 10) : 0;
        sleep_ms[i] = value > 0 && value <= 60000 ? (int)value : 0;
    }
    const char *gate = getenv("MERGESVD_FAILPOINT_LISTING_GATE");
    listing_gate = gate != NULL && gate[0] != '\0' ? gate : NULL;
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

void ms_failpoint_hold_listing(void)
{
    pthread_once(&read_once, read_environment);
    if (listing_gate == NULL || access(listing_gate, F_OK) != 0)
        return;
    ms_log("failpoint: models listing held while %s exists", listing_gate);
    const struct timespec step = {0, 10 * 1000 * 1000};
    for (int waited = 0; waited < 60000 && access(listing_gate, F_OK) == 0; waited += 10)
        nanosleep(&step, NULL);
}
