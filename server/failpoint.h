/* Test hook, the same for `mergesvd serve` and the command line:
 * MERGESVD_FAILPOINT_PROGRESS_SLEEP_MS=N makes every progress report sleep
 * N ms, so tests can cancel, interrupt or kill a job mid-run.  Unset or 0 in
 * production: then it costs one load per report. */
#ifndef MS_FAILPOINT_H
#define MS_FAILPOINT_H

/* The configured pause (read from the environment once). */
int ms_failpoint_progress_sleep_ms(void);

/* Sleeps the configured pause, if any. */
void ms_failpoint_progress_pause(void);

#endif
