#include "thread_priority.h"

#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* glibc 2.36 has no wrapper or header for sched_setattr: the kernel's layout
 * (include/uapi/linux/sched/types.h, SCHED_ATTR_SIZE_VER0). */
typedef struct kernel_sched_attr {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;
    uint64_t sched_deadline;
    uint64_t sched_period;
} kernel_sched_attr;

static pid_t current_thread(void)
{
    return (pid_t)syscall(SYS_gettid);
}

void ms_thread_set_nice(int nice)
{
    pid_t thread = current_thread();
    if (getpriority(PRIO_PROCESS, (id_t)thread) < nice)
        setpriority(PRIO_PROCESS, (id_t)thread, nice);
}

void ms_thread_request_short_slice(void)
{
#ifdef SYS_sched_setattr
    pid_t thread = current_thread();
    kernel_sched_attr attributes;
    memset(&attributes, 0, sizeof attributes);
    attributes.size = sizeof attributes;
    attributes.sched_policy = SCHED_OTHER;
    /* sched_setattr sets the nice value too: keep the current one */
    attributes.sched_nice = getpriority(PRIO_PROCESS, (id_t)thread);
    attributes.sched_runtime = MS_THREAD_SHORT_SLICE_NS;
    long refused = syscall(SYS_sched_setattr, thread, &attributes, 0);
    (void)refused;   /* a hint: an older kernel or a seccomp filter may say no */
#endif
}
