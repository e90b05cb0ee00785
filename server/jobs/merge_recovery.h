/* After a crash: what a merge the last process was running left outside
 * DATA/results (whose folders recover_jobs removes whole).  A /bbwm merge
 * writes its destination in a models root and a merge for the web UI writes
 * into --webui-checkpoints, each through a temporary beside the file; a
 * SIGKILL mid-write leaves that temporary, which nothing else would ever
 * remove (tests/soak.sh found them). */
#ifndef MS_MERGE_RECOVERY_H
#define MS_MERGE_RECOVERY_H

#include "job.h"

struct ms_service;

/* Removes the temporaries of the interrupted merge job (any other job:
 * nothing); called at startup, before any job runs.  Each removal is logged;
 * a request that no longer resolves (a model gone) leaves its folder alone. */
void ms_merge_recovery_remove_temporaries(const struct ms_service *service, const ms_job *job);

#endif
