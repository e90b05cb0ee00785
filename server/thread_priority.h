/* Scheduling hints for the calling thread (Linux; best effort: a refusal
 * leaves the thread as it was and the service runs on).
 *
 * HTTP threads are light and latency-bound, job threads are CPU-bound: on a
 * machine whose cores the job keeps busy, every poll waits until the
 * scheduler lets an HTTP thread preempt a job thread. */
#ifndef MS_THREAD_PRIORITY_H
#define MS_THREAD_PRIORITY_H

/* Raises the calling thread's nice value to `nice` (0-19); never lowers it. */
void ms_thread_set_nice(int nice);

/* Asks for a short time slice (Linux 6.12+ EEVDF custom slices, no privilege
 * needed): a thread that wakes with a shorter slice than the running one may
 * preempt it at once instead of waiting out the other's slice.  Older kernels
 * ignore the request. */
void ms_thread_request_short_slice(void);

/* The slice asked for, in nanoseconds (the kernel accepts 0.1 to 100 ms). */
enum { MS_THREAD_SHORT_SLICE_NS = 100 * 1000 };

#endif
