/* Result retention: --keep-results-bytes and --keep-results-seconds.
 *
 * Optimisation loops write gigabytes of results per iteration.  When the
 * results kept exceed either limit, the oldest finished ones (by finish
 * time) are deleted until both hold; the job records stay, marked
 * result_expired (persisted), and their downloads answer 410.  Never a
 * running job's files, never a result being downloaded (skipped, and looked
 * at again when its last download ends).
 *
 * Passes run on the loop thread (file deletions are slow on big files and
 * the HTTP threads must keep answering polls): at startup, after every job
 * finishes, on a timer for the age limit, and when a download that held
 * back an eviction ends. */
#ifndef MS_RETENTION_H
#define MS_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/error.h"

struct ms_service;
struct ms_job_table;

typedef struct ms_retention_limits {
    uint64_t max_bytes;       /* 0: no limit */
    int64_t max_age_ms;       /* 0: no limit */
} ms_retention_limits;

/* What the choice needs to know of a job with files in results/. */
typedef struct ms_retention_candidate {
    int64_t finished_ms;
    int64_t sequence;         /* equal finish times: the job created first goes first */
    uint64_t bytes;
    bool running;             /* files being written: never deleted, not counted */
    bool downloading;         /* a download holds the file: skipped, retried later */
} ms_retention_candidate;

typedef enum ms_retention_verdict {
    MS_RETENTION_KEEP,
    MS_RETENTION_EVICT,
    MS_RETENTION_DEFER        /* would be evicted, but a download holds it */
} ms_retention_verdict;

/* The eviction choice: verdicts[i] for candidates[i].  Oldest first, each
 * result evicted while the kept bytes exceed max_bytes or it is older than
 * max_age_ms (now_ms - finished_ms > max_age_ms); deferred results still
 * count as kept.  Fails only when out of memory. */
ms_status ms_retention_choose(const ms_retention_limits *limits, int64_t now_ms,
                              const ms_retention_candidate *candidates, size_t count,
                              ms_retention_verdict *verdicts, ms_error *err);

/* Bytes of the results kept (succeeded, not expired); takes the table lock.
 * The /metrics gauge. */
uint64_t ms_retention_kept_bytes(struct ms_job_table *table);

typedef struct ms_retention {
    struct ms_service *service;
    ms_retention_limits limits;
    bool started;             /* the handles below are open */
    uv_timer_t timer;         /* the age limit's pass, every min(limit / 4, 60 s) */
    uv_async_t wakeup;        /* a download that held back an eviction ended */
} ms_retention;

/* Loop thread, before the loop runs: the limits from the options, and the
 * handles when there are limits.  The handles do not keep the loop alive.
 * Returns 0, or -1 when libuv refuses. */
int ms_retention_start(ms_retention *retention, struct ms_service *service, uv_loop_t *loop);

/* Loop thread: one pass (nothing without limits). */
void ms_retention_run(ms_retention *retention);

/* Any thread: a pass soon, on the loop thread. */
void ms_retention_wake(ms_retention *retention);

/* After the loop has stopped and the HTTP threads are gone: closes the
 * handles (running the loop until they are). */
void ms_retention_stop(ms_retention *retention, uv_loop_t *loop);

#endif
