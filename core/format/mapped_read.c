#include "mapped_read.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static struct sigaction previous_action;
static bool installed;
/* Set while this thread runs guarded work: where a fault jumps back to. */
static _Thread_local sigjmp_buf *active_guard;

static void on_sigbus(int signal_number, siginfo_t *info, void *context)
{
    (void)info;
    (void)context;
    if (active_guard != NULL)
        siglongjmp(*active_guard, 1);
    /* Not a guarded read: put the old disposition back; returning re-runs
     * the faulting access, which then meets it (default: the process dies). */
    sigaction(signal_number, &previous_action, NULL);
}

static void install_handler(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigbus;
    /* SA_NODEFER: the jump leaves the handler without sigreturn, so SIGBUS
     * must not stay blocked; the mask is then not saved per read either. */
    action.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    installed = sigaction(SIGBUS, &action, &previous_action) == 0;
}

bool ms_mapped_read(ms_mapped_work *work, void *context)
{
    pthread_once(&install_once, install_handler);
    if (!installed) {
        work(context);   /* unguarded, as before: still correct on an intact file */
        return true;
    }
    sigjmp_buf guard;
    if (sigsetjmp(guard, 0) != 0) {
        active_guard = NULL;
        return false;
    }
    active_guard = &guard;
    work(context);
    active_guard = NULL;
    return true;
}

typedef struct touch_range {
    const volatile unsigned char *bytes;
    size_t length;
    size_t page;
} touch_range;

static void touch_pages(void *context)
{
    const touch_range *range = context;
    unsigned char sink = 0;
    for (size_t at = 0; at < range->length; at += range->page)
        sink ^= range->bytes[at];
    if (range->length > 0)
        sink ^= range->bytes[range->length - 1];
    (void)sink;
}

bool ms_mapped_touch(const void *bytes, size_t length)
{
    long page = sysconf(_SC_PAGESIZE);
    touch_range range = {bytes, length, page > 0 ? (size_t)page : 4096};
    return ms_mapped_read(touch_pages, &range);
}
