/* Test hooks, the same for `mergesvd serve` and the command line; unset or
 * 0 in production, where each costs one load per call.
 * - MERGESVD_FAILPOINT_PROGRESS_SLEEP_MS=N: every progress report sleeps N ms,
 *   so tests can cancel, interrupt or kill a job mid-run;
 * - MERGESVD_FAILPOINT_SUBMIT_SLEEP_MS=N: every submit sleeps N ms on the HTTP
 *   worker, so tests can see polls answered meanwhile;
 * - MERGESVD_FAILPOINT_REAPER_SLEEP_MS=N: the file reaper sleeps N ms before
 *   each close, so tests can see a deletion return before its blocks are
 *   freed, and a waiter wait for them. */
#ifndef MS_FAILPOINT_H
#define MS_FAILPOINT_H

typedef enum ms_failpoint {
    MS_FAILPOINT_PROGRESS_SLEEP,
    MS_FAILPOINT_SUBMIT_SLEEP,
    MS_FAILPOINT_REAPER_SLEEP,
    MS_FAILPOINT_COUNT
} ms_failpoint;

/* The configured pause in ms (read from the environment once). */
int ms_failpoint_sleep_ms(ms_failpoint failpoint);

/* Sleeps the configured pause, if any. */
void ms_failpoint_pause(ms_failpoint failpoint);

/* Waits while MERGESVD_FAILPOINT_LISTING_GATE's file exists, if it is set. */
void ms_failpoint_hold_listing(void);

#endif
