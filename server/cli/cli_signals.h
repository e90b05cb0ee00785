/* Ctrl-C and SIGTERM for the long subcommands (resize, merge): the signal
 * asks the core to stop at its next check, so the temporary output is
 * removed instead of left behind, and the exit status is 128 + the signal's
 * number (130 after Ctrl-C), as a shell reports a program the signal killed,
 * so scripts can tell "interrupted" from "failed". */
#ifndef MS_CLI_SIGNALS_H
#define MS_CLI_SIGNALS_H

#include <stdatomic.h>

#include "core/error.h"

/* Installs the SIGINT and SIGTERM handlers; returns the cancel flag to hand
 * to the core (0 until a signal arrives, then the signal's number). */
const atomic_int *ms_cli_cancel_on_signals(void);

/* The exit status of a failed operation: 128 + the signal when a signal
 * cancelled it, else failed_status. */
int ms_cli_failure_exit_status(ms_status status, int failed_status);

#endif
