/* bench_common: the child run, median and fsync'd copy floor that
 * bench_resize and bench_merge share (see bench_common.h). */
#include "bench/bench_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double bench_now_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + now.tv_nsec * 1e-9;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *values, int count)
{
    qsort(values, (size_t)count, sizeof *values, compare_doubles);
    return count % 2 ? values[count / 2] : (values[count / 2 - 1] + values[count / 2]) / 2;
}

long long bench_file_size(const char *path)
{
    struct stat info;
    return stat(path, &info) == 0 ? (long long)info.st_size : -1;
}

int bench_run_child(const char *program, const char *const argv[], const char *label,
                    bench_run_result *result)
{
    return bench_run_child_to(program, argv, label, "/dev/null", result);
}

int bench_run_child_to(const char *program, const char *const argv[], const char *label,
                       const char *stdout_path, bench_run_result *result)
{
    double start = bench_now_seconds();
    pid_t child = fork();
    if (child < 0)
        return -1;
    if (child == 0) {
        int out_fd = open(stdout_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out_fd >= 0)
            dup2(out_fd, STDOUT_FILENO);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "%s: cannot run %s: %s\n", program, argv[0], strerror(errno));
        _exit(127);
    }
    int status = 0;
    struct rusage usage;
    if (wait4(child, &status, 0, &usage) < 0)
        return -1;
    result->seconds = bench_now_seconds() - start;
    result->cpu_seconds = (double)usage.ru_utime.tv_sec + (double)usage.ru_stime.tv_sec +
                          ((double)usage.ru_utime.tv_usec + (double)usage.ru_stime.tv_usec) / 1e6;
    result->peak_rss_kb = usage.ru_maxrss;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "%s: %s failed (status %d)\n", program, label, status);
        return -1;
    }
    return 0;
}

double bench_copy_with_fsync(const char *source, const char *target)
{
    enum { BUFFER_BYTES = 16 << 20 };
    char *buffer = malloc(BUFFER_BYTES);
    int in = open(source, O_RDONLY);
    unlink(target);
    int out = open(target, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    double seconds = -1;
    if (buffer == NULL || in < 0 || out < 0)
        goto done;
    double start = bench_now_seconds();
    ssize_t got;
    while ((got = read(in, buffer, BUFFER_BYTES)) > 0) {
        for (ssize_t written = 0; written < got;) {
            ssize_t put = write(out, buffer + written, (size_t)(got - written));
            if (put < 0)
                goto done;
            written += put;
        }
    }
    if (got < 0 || fsync(out) != 0)
        goto done;
    seconds = bench_now_seconds() - start;
done:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    unlink(target);
    free(buffer);
    return seconds;
}
