#include "file_reaper.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "failpoint.h"

/* Descriptors waiting at most: each counts against the process's limit. */
enum { HELD_MAX = 64 };

struct ms_file_reaper {
    pthread_mutex_t mutex;
    pthread_cond_t wakeup;   /* something to close, or stopping */
    pthread_cond_t idle;     /* nothing held and nothing being closed */
    int held[HELD_MAX];      /* a FIFO of descriptors to close */
    size_t first, count;
    bool closing;            /* the thread is closing one, outside the mutex */
    bool stopping;           /* under mutex */
    pthread_t thread;
};

static void *reap(void *argument)
{
    ms_file_reaper *reaper = argument;
    pthread_mutex_lock(&reaper->mutex);
    for (;;) {
        while (reaper->count == 0 && !reaper->stopping)
            pthread_cond_wait(&reaper->wakeup, &reaper->mutex);
        if (reaper->count == 0)
            break;   /* stopping, and nothing left */
        int fd = reaper->held[reaper->first];
        reaper->first = (reaper->first + 1) % HELD_MAX;
        reaper->count--;
        reaper->closing = true;
        pthread_mutex_unlock(&reaper->mutex);
        ms_failpoint_pause(MS_FAILPOINT_REAPER_SLEEP);
        close(fd);   /* the slow part: the last reference, blocks freed */
        pthread_mutex_lock(&reaper->mutex);
        reaper->closing = false;
        if (reaper->count == 0)
            pthread_cond_broadcast(&reaper->idle);
    }
    pthread_mutex_unlock(&reaper->mutex);
    return NULL;
}

ms_file_reaper *ms_file_reaper_start(void)
{
    ms_file_reaper *reaper = calloc(1, sizeof *reaper);
    if (reaper == NULL)
        return NULL;
    pthread_mutex_init(&reaper->mutex, NULL);
    pthread_cond_init(&reaper->wakeup, NULL);
    pthread_cond_init(&reaper->idle, NULL);
    if (pthread_create(&reaper->thread, NULL, reap, reaper) == 0)
        return reaper;
    pthread_cond_destroy(&reaper->idle);
    pthread_cond_destroy(&reaper->wakeup);
    pthread_mutex_destroy(&reaper->mutex);
    free(reaper);
    return NULL;
}

void ms_file_reaper_stop(ms_file_reaper *reaper)
{
    if (reaper == NULL)
        return;
    pthread_mutex_lock(&reaper->mutex);
    reaper->stopping = true;
    pthread_cond_signal(&reaper->wakeup);
    pthread_mutex_unlock(&reaper->mutex);
    pthread_join(reaper->thread, NULL);
    pthread_cond_destroy(&reaper->idle);
    pthread_cond_destroy(&reaper->wakeup);
    pthread_mutex_destroy(&reaper->mutex);
    free(reaper);
}

void ms_file_reaper_wait_idle(ms_file_reaper *reaper)
{
    if (reaper == NULL)
        return;
    pthread_mutex_lock(&reaper->mutex);
    while (reaper->count > 0 || reaper->closing)
        pthread_cond_wait(&reaper->idle, &reaper->mutex);
    pthread_mutex_unlock(&reaper->mutex);
}

/* Takes fd when there is room. */
static bool hand_over(ms_file_reaper *reaper, int fd)
{
    pthread_mutex_lock(&reaper->mutex);
    bool taken = !reaper->stopping && reaper->count < HELD_MAX;
    if (taken) {
        reaper->held[(reaper->first + reaper->count) % HELD_MAX] = fd;
        reaper->count++;
        pthread_cond_signal(&reaper->wakeup);
    }
    pthread_mutex_unlock(&reaper->mutex);
    return taken;
}

int ms_file_reaper_unlinkat(ms_file_reaper *reaper, int directory_fd, const char *name)
{
    /* O_NOFOLLOW: a symbolic link is held (and removed) itself, as unlinkat
     * removes the link and not its target */
    int fd = reaper != NULL
                 ? openat(directory_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC)
                 : -1;
    int result = unlinkat(directory_fd, name, 0);
    int unlink_error = errno;
    if (fd >= 0 && (result != 0 || !hand_over(reaper, fd)))
        close(fd);   /* not removed (the name stays), or no room: freed here */
    errno = unlink_error;
    return result;
}
