/* server/file_reaper: a deletion through the reaper answers as unlinkat(2)
 * does, removes the name before it returns, and leaves no descriptor open
 * once the reaper stops (the blocks are freed then at the latest). */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/file_reaper.h"
#include "server/paths.h"
#include "check_support.h"

static char *base;

static void setup(void)
{
    base = ms_test_make_temp_dir("test_file_reaper");
    ck_assert_ptr_nonnull(base);
}

static void teardown(void)
{
    ms_test_remove_tree(base);
    free(base);
}

static int open_descriptors(void)
{
    DIR *dir = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(dir);
    int count = 0;
    while (readdir(dir) != NULL)
        count++;
    closedir(dir);
    return count;
}

static void write_file(const char *dir, const char *name, size_t bytes)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *file = fopen(path, "w");
    ck_assert_ptr_nonnull(file);
    for (size_t i = 0; i < bytes; i++)
        fputc('x', file);
    ck_assert_int_eq(fclose(file), 0);
}

static bool exists(const char *dir, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat info;
    return lstat(path, &info) == 0;
}

static int open_dir(void)
{
    int fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    return fd;
}

START_TEST(test_name_gone_when_it_returns)
{
    int before = open_descriptors();
    ms_file_reaper *reaper = ms_file_reaper_start();
    ck_assert_ptr_nonnull(reaper);
    int dir_fd = open_dir();
    write_file(base, "merge.safetensors", 1 << 20);
    ck_assert_int_eq(ms_file_reaper_unlinkat(reaper, dir_fd, "merge.safetensors"), 0);
    ck_assert(!exists(base, "merge.safetensors"));
    close(dir_fd);
    ms_file_reaper_stop(reaper);
    ck_assert_int_eq(open_descriptors(), before);
}
END_TEST

/* More than the reaper holds at once: the rest are freed by the caller. */
START_TEST(test_many_then_stop_closes_everything)
{
    int before = open_descriptors();
    ms_file_reaper *reaper = ms_file_reaper_start();
    ck_assert_ptr_nonnull(reaper);
    int dir_fd = open_dir();
    char name[32];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "file%d", i);
        write_file(base, name, 4096);
    }
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "file%d", i);
        ck_assert_int_eq(ms_file_reaper_unlinkat(reaper, dir_fd, name), 0);
        ck_assert(!exists(base, name));
    }
    close(dir_fd);
    ms_file_reaper_stop(reaper);
    ck_assert_int_eq(open_descriptors(), before);
}
END_TEST

/* With each close slowed (the failpoint; each test runs in a process of
 * its own), the deletions return while the thread still holds the files
 * (their descriptors show in /proc/self/fd), and wait_idle returns once it
 * holds none. */
START_TEST(test_wait_idle_waits_for_every_close)
{
    setenv("MERGESVD_FAILPOINT_REAPER_SLEEP_MS", "50", 1);
    int before = open_descriptors();
    ms_file_reaper *reaper = ms_file_reaper_start();
    ck_assert_ptr_nonnull(reaper);
    int dir_fd = open_dir();
    char name[32];
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "held%d", i);
        write_file(base, name, 1 << 16);
        ck_assert_int_eq(ms_file_reaper_unlinkat(reaper, dir_fd, name), 0);
        ck_assert(!exists(base, name));
    }
    close(dir_fd);
    ck_assert_int_gt(open_descriptors(), before);   /* 250 ms of closes ahead */
    ms_file_reaper_wait_idle(reaper);
    ck_assert_int_eq(open_descriptors(), before);
    ms_file_reaper_wait_idle(reaper);   /* idle already: returns */
    ms_file_reaper_wait_idle(NULL);
    ms_file_reaper_stop(reaper);
}
END_TEST

START_TEST(test_errors_as_unlinkat)
{
    int before = open_descriptors();
    ms_file_reaper *reaper = ms_file_reaper_start();
    ck_assert_ptr_nonnull(reaper);
    int dir_fd = open_dir();
    errno = 0;
    ck_assert_int_eq(ms_file_reaper_unlinkat(reaper, dir_fd, "missing"), -1);
    ck_assert_int_eq(errno, ENOENT);
    char sub[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/folder", base);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    errno = 0;
    ck_assert_int_eq(ms_file_reaper_unlinkat(reaper, dir_fd, "folder"), -1);
    ck_assert_int_eq(errno, EISDIR);
    ck_assert(exists(base, "folder"));
    close(dir_fd);
    /* neither failure left a descriptor, with the reaper or here */
    ck_assert_int_eq(open_descriptors(), before);
    ms_file_reaper_stop(reaper);
    ck_assert_int_eq(open_descriptors(), before);
}
END_TEST

START_TEST(test_link_removed_not_its_target)
{
    ms_file_reaper *reaper = ms_file_reaper_start();
    ck_assert_ptr_nonnull(reaper);
    int dir_fd = open_dir();
    write_file(base, "target", 10);
    ck_assert_int_eq(symlinkat("target", dir_fd, "link"), 0);
    ck_assert_int_eq(ms_file_reaper_unlinkat(reaper, dir_fd, "link"), 0);
    ck_assert(!exists(base, "link"));
    ck_assert(exists(base, "target"));
    close(dir_fd);
    ms_file_reaper_stop(reaper);
}
END_TEST

START_TEST(test_without_reaper)
{
    int before = open_descriptors();
    write_file(base, "plain", 10);
    ck_assert_int_eq(ms_file_reaper_unlinkat(NULL, AT_FDCWD, "missing/nowhere"), -1);
    ck_assert_int_eq(errno, ENOENT);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/plain", base);
    ck_assert_int_eq(ms_file_reaper_unlinkat(NULL, AT_FDCWD, path), 0);
    ck_assert(!exists(base, "plain"));
    ms_file_reaper_stop(NULL);
    ck_assert_int_eq(open_descriptors(), before);
}
END_TEST

START_TEST(test_remove_dir_through_reaper)
{
    int before = open_descriptors();
    ms_file_reaper *reaper = ms_file_reaper_start();
    ck_assert_ptr_nonnull(reaper);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/result", base);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    write_file(dir, "a.safetensors", 1 << 16);
    write_file(dir, "b.safetensors", 1 << 16);
    ms_paths_remove_dir(dir, reaper);
    ck_assert(!exists(base, "result"));
    ms_paths_remove_dir(dir, reaper);   /* missing is fine */
    ms_file_reaper_stop(reaper);
    ck_assert_int_eq(open_descriptors(), before);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("file_reaper");
    TCase *tcase = tcase_create("file_reaper");
    tcase_add_checked_fixture(tcase, setup, teardown);
    tcase_add_test(tcase, test_name_gone_when_it_returns);
    tcase_add_test(tcase, test_many_then_stop_closes_everything);
    tcase_add_test(tcase, test_wait_idle_waits_for_every_close);
    tcase_add_test(tcase, test_errors_as_unlinkat);
    tcase_add_test(tcase, test_link_removed_not_its_target);
    tcase_add_test(tcase, test_without_reaper);
    tcase_add_test(tcase, test_remove_dir_through_reaper);
    suite_add_tcase(suite, tcase);
    return ms_test_run_suite(suite);
}
