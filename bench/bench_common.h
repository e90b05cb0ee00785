/* bench_common: what the benchmarks of the mergesvd binary share: timing one
 * run of the program as a child (wall time, CPU time and peak RSS), the median of the
 * runs, and the floor each result is set against: copying a file of the
 * output's size with fsync. */
#ifndef MERGESVD_BENCH_COMMON_H
#define MERGESVD_BENCH_COMMON_H

typedef struct bench_run_result {
    double seconds;
    double cpu_seconds;      /* user + system, all threads */
    long peak_rss_kb;
} bench_run_result;

/* A monotonic clock in seconds. */
double bench_now_seconds(void);

/* The median of count values (sorted in place, so afterwards values[0] is
 * the lowest and values[count - 1] the highest). */
double bench_median(double *values, int count);

/* The size of path in bytes, -1 when it cannot be read. */
long long bench_file_size(const char *path);

/* Runs argv[0] with argv, its stdout to /dev/null, and waits for it; 0 and
 * result filled when it exits 0, -1 otherwise (told on stderr, prefixed with
 * program and naming the case by label). */
int bench_run_child(const char *program, const char *const argv[], const char *label,
                    bench_run_result *result);
/* The same with the child's stdout written to stdout_path (created). */
int bench_run_child_to(const char *program, const char *const argv[], const char *label,
                       const char *stdout_path, bench_run_result *result);

/* The floor: read source and write a copy of it to target, then fsync (what
 * `dd bs=16M conv=fsync` does); the copy is removed.  Seconds, or a negative
 * value on failure. */
double bench_copy_with_fsync(const char *source, const char *target);

#endif
