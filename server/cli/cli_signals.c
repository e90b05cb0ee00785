#include "cli_signals.h"

#include <signal.h>
#include <string.h>

static atomic_int cancel_requested;

static void request_cancel(int signal_number)
{
    atomic_store(&cancel_requested, signal_number);
}

const atomic_int *ms_cli_cancel_on_signals(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = request_cancel;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    return &cancel_requested;
}

int ms_cli_failure_exit_status(ms_status status, int failed_status)
{
    int signal_number = atomic_load(&cancel_requested);
    return status == MS_ERR_CANCELLED && signal_number > 0 ? 128 + signal_number
                                                            : failed_status;
}
