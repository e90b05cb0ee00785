/* server/jobs/store_reserve and the job store on a full disk: a new job is
 * refused with disk_full (not io_error), and a deletion or a final state
 * is still recorded, on the reserve's space.
 *
 * The full disk is real: a 4 MiB tmpfs mounted in a private mount
 * namespace of the test's own process (Check forks one per test), filled
 * with a file until write(2) says ENOSPC.  Mounting needs root or an
 * unprivileged user namespace; where neither is allowed, the tests that
 * need it say so on stderr and check nothing else (the end-to-end
 * tests/disk_full_test.sh says the same). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/jobs/job.h"
#include "server/jobs/job_store.h"
#include "server/jobs/job_table.h"
#include "server/jobs/store_reserve.h"
#include "server/paths.h"
#include "check_support.h"

static char *base;          /* a temp dir on the ordinary disk */
static char *small;         /* base/small: the tmpfs, when mounted */
static bool mounted;

static bool write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool written = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    close(fd);
    return written;
}

/* A namespace of our own: root needs only the mount namespace; anyone else
 * a user namespace mapping their uid to root inside it. */
static bool enter_private_namespace(void)
{
    if (unshare(CLONE_NEWNS) != 0) {
        uid_t uid = getuid();
        gid_t gid = getgid();
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
            return false;
        char map[64];
        write_text("/proc/self/setgroups", "deny");
        snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
        if (!write_text("/proc/self/uid_map", map))
            return false;
        snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
        if (!write_text("/proc/self/gid_map", map))
            return false;
    }
    /* mounts made here never reach the parent's namespace */
    return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
}

static void setup(void)
{
    base = ms_test_make_temp_dir("test_disk_full");
    ck_assert_ptr_nonnull(base);
    small = ms_paths_join(base, "small");
    ck_assert(ms_paths_make_dir(small));
    mounted = enter_private_namespace() &&
              mount("tmpfs", small, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0700") == 0;
    if (!mounted)
        fprintf(stderr, "test_disk_full: cannot mount a 4 MiB tmpfs here (%s): not root and no "
                "user namespaces; the full-disk checks of this test did not run\n",
                strerror(errno));
}

static void teardown(void)
{
    if (mounted)
        umount2(small, MNT_DETACH);
    mounted = false;
    free(small);
    small = NULL;
    ck_assert_int_eq(ms_test_remove_tree(base), 0);
    free(base);
    base = NULL;
}

/* Writes path until the file system has no block left.  Returns its size. */
static off_t fill_disk(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    static char chunk[64 * 1024];
    memset(chunk, 0x5a, sizeof chunk);
    for (;;) {
        ssize_t written = write(fd, chunk, sizeof chunk);
        if (written < 0) {
            ck_assert_int_eq(errno, ENOSPC);
            break;
        }
    }
    /* tmpfs counts pages: the last partial one is filled by now, but a
     * byte at a time makes sure for file systems with smaller blocks */
    while (write(fd, chunk, 1) == 1)
        ;
    struct stat info;
    ck_assert_int_eq(fstat(fd, &info), 0);
    close(fd);
    return info.st_size;
}

/* Frees bytes of the filler (the space a client's DELETE would free). */
static void free_space(const char *path, off_t bytes)
{
    struct stat info;
    ck_assert_int_eq(stat(path, &info), 0);
    ck_assert_int_eq(truncate(path, info.st_size > bytes ? info.st_size - bytes : 0), 0);
}

static bool exists(const char *path)
{
    struct stat info;
    return stat(path, &info) == 0;
}

static ms_job *make_job(void)
{
    ms_job *job = ms_job_new(MS_JOB_KIND_RESIZE);
    ck_assert_ptr_nonnull(job);
    job->request_text = strdup("{\"model\":\"m.safetensors\"}");
    job->params_text = strdup("{\"model\":\"m.safetensors\"}");
    job->output_name = strdup("out.safetensors");
    snprintf(job->body_sha256, sizeof job->body_sha256, "%064d", 1);
    job->created_ms = 1796000000000;
    return job;
}

/* A store under small/, with jobs 1..count inserted (sequence i). */
static ms_job_store *open_store(ms_job **jobs, size_t count)
{
    char *path = ms_paths_join(small, "jobs.sqlite3");
    ms_job_store *store = NULL;
    ms_error err;
    ck_assert_int_eq(ms_job_store_open(path, &store, &err), MS_OK);
    free(path);
    for (size_t i = 0; i < count; i++) {
        jobs[i] = make_job();
        jobs[i]->sequence = (int64_t)i + 1;
        ck_assert_int_eq(ms_job_store_insert(store, jobs[i], &err), MS_OK);
    }
    return store;
}

static size_t stored_count(ms_job_store *store)
{
    ms_job_table table;
    ck_assert_int_eq(ms_job_table_init(&table), 0);
    size_t skipped = 0;
    ms_error err;
    ck_assert_int_eq(ms_job_store_load(store, &table, &skipped, &err), MS_OK);
    size_t count = table.count;
    ms_job_table_destroy(&table);
    return count;
}

START_TEST(test_reserve_fill_and_release)
{
    if (!mounted)
        return;
    char *path = ms_paths_join(small, "reserve");
    ms_store_reserve reserve;
    ms_error err;
    ck_assert_int_eq(ms_store_reserve_init(&reserve, path, 1024 * 1024, &err), MS_OK);
    ck_assert(!ms_store_reserve_release(&reserve));   /* nothing to release yet */
    ck_assert_int_eq(ms_store_reserve_fill(&reserve, &err), MS_OK);
    struct stat info;
    ck_assert_int_eq(stat(path, &info), 0);
    /* blocks, not a hole: the space is really taken */
    ck_assert_int_ge((long long)info.st_blocks * 512, 1024 * 1024);
    ck_assert_int_eq(ms_store_reserve_fill(&reserve, &err), MS_OK);   /* whole: no change */
    ck_assert(ms_store_reserve_release(&reserve));
    ck_assert(!exists(path));

    /* no room: disk_full, and no partial reserve left taking space */
    char *filler = ms_paths_join(small, "filler");
    fill_disk(filler);
    ck_assert_int_eq(ms_store_reserve_fill(&reserve, &err), MS_ERR_DISK_FULL);
    ck_assert(!exists(path));
    ck_assert(!reserve.present);
    free_space(filler, 2 * 1024 * 1024);
    ck_assert_int_eq(ms_store_reserve_fill(&reserve, &err), MS_OK);
    ck_assert(reserve.present);
    ms_store_reserve_destroy(&reserve);
    free(filler);
    free(path);
}
END_TEST

/* Was io_error "database or disk is full" (500); the contract says 507. */
START_TEST(test_insert_on_full_disk_is_disk_full)
{
    if (!mounted)
        return;
    ms_job *jobs[1];
    ms_job_store *store = open_store(jobs, 1);
    char *filler = ms_paths_join(small, "filler");
    fill_disk(filler);
    ms_job *job = make_job();
    job->sequence = 2;
    ms_error err;
    ck_assert_int_eq(ms_job_store_insert(store, job, &err), MS_ERR_DISK_FULL);
    ck_assert_int_eq(err.code, MS_ERR_DISK_FULL);
    ck_assert_uint_eq(stored_count(store), 1);
    ms_job_free(job);
    ms_job_free(jobs[0]);
    ms_job_store_close(store);
    free(filler);
}
END_TEST

/* Was io_error: a client could not free space through the API. */
START_TEST(test_delete_on_full_disk)
{
    if (!mounted)
        return;
    ms_job *jobs[3];
    ms_job_store *store = open_store(jobs, 3);
    char *reserve = ms_paths_join(small, "jobs.sqlite3-reserve");
    ck_assert(exists(reserve));
    char *filler = ms_paths_join(small, "filler");
    fill_disk(filler);
    ms_error err;
    ck_assert_int_eq(ms_job_store_delete(store, jobs[0]->id, &err), MS_OK);
    /* it took the reserve to get there */
    ck_assert(!exists(reserve));
    ck_assert_uint_eq(stored_count(store), 2);

    /* a final state is recorded too: the reserve's space is there now */
    jobs[1]->state = MS_JOB_FAILED;
    jobs[1]->error_text = strdup("{\"code\":\"disk_full\",\"message\":\"x\"}");
    ck_assert_int_eq(ms_job_store_update(store, jobs[1], &err), MS_OK);

    /* without a reserve, no new job: its end could not be recorded */
    fill_disk(filler);
    ms_job *job = make_job();
    job->sequence = 4;
    ck_assert_int_eq(ms_job_store_insert(store, job, &err), MS_ERR_DISK_FULL);
    ck_assert_ptr_nonnull(strstr(err.message, "reserve"));
    ck_assert_int_eq(ms_job_store_restore_reserve(store, &err), MS_ERR_DISK_FULL);
    ck_assert(!exists(reserve));

    /* space freed (as a DELETE's file does): the reserve, then new jobs */
    free_space(filler, 2 * 1024 * 1024);
    ck_assert_int_eq(ms_job_store_insert(store, job, &err), MS_OK);
    ck_assert(exists(reserve));
    ck_assert_uint_eq(stored_count(store), 3);

    for (size_t i = 0; i < 3; i++)
        ms_job_free(jobs[i]);
    ms_job_free(job);
    ms_job_store_close(store);
    free(filler);
    free(reserve);
}
END_TEST

/* The control: with the reserve gone (spent by an earlier write), the same
 * deletion on the same full disk fails, and says disk_full. */
START_TEST(test_delete_without_reserve_is_disk_full)
{
    if (!mounted)
        return;
    ms_job *jobs[2];
    ms_job_store *store = open_store(jobs, 2);
    char *reserve = ms_paths_join(small, "jobs.sqlite3-reserve");
    ck_assert_int_eq(unlink(reserve), 0);
    char *filler = ms_paths_join(small, "filler");
    fill_disk(filler);
    ms_error err;
    ck_assert_int_eq(ms_job_store_delete(store, jobs[0]->id, &err), MS_ERR_DISK_FULL);
    ck_assert_uint_eq(stored_count(store), 2);
    free_space(filler, 64 * 1024);
    ck_assert_int_eq(ms_job_store_delete(store, jobs[0]->id, &err), MS_OK);
    ck_assert_uint_eq(stored_count(store), 1);
    for (size_t i = 0; i < 2; i++)
        ms_job_free(jobs[i]);
    ms_job_store_close(store);
    free(filler);
    free(reserve);
}
END_TEST

/* A restart on a full disk: the store needs room for its WAL before it
 * can read anything; the last process's reserve gives it.  It deletes, and
 * accepts jobs once there is room again. */
START_TEST(test_open_on_full_disk)
{
    if (!mounted)
        return;
    ms_job *jobs[2];
    ms_job_store *store = open_store(jobs, 2);
    ms_job_store_close(store);
    char *reserve = ms_paths_join(small, "jobs.sqlite3-reserve");
    char *filler = ms_paths_join(small, "filler");
    char *path = ms_paths_join(small, "jobs.sqlite3");
    ms_error err;

    /* the control: no reserve left, and the store cannot even open */
    ck_assert_int_eq(rename(reserve, filler), 0);
    fill_disk(filler);
    ck_assert_int_eq(ms_job_store_open(path, &store, &err), MS_ERR_DISK_FULL);
    ck_assert_ptr_null(store);
    /* the reserve as the last process left it, the disk as full */
    ck_assert_int_eq(ms_store_reserve_fill(&(ms_store_reserve){.path = reserve,
                                                               .bytes = 1024 * 1024}, &err),
                     MS_ERR_DISK_FULL);
    free_space(filler, 1024 * 1024);
    ms_store_reserve left = {.path = reserve, .bytes = 1024 * 1024};
    ck_assert_int_eq(ms_store_reserve_fill(&left, &err), MS_OK);
    fill_disk(filler);

    ck_assert_int_eq(ms_job_store_open(path, &store, &err), MS_OK);
    ck_assert(!exists(reserve));
    ck_assert_uint_eq(stored_count(store), 2);
    ms_job *job = make_job();
    job->sequence = 3;
    ck_assert_int_eq(ms_job_store_insert(store, job, &err), MS_ERR_DISK_FULL);
    free_space(filler, 2 * 1024 * 1024);
    ck_assert_int_eq(ms_job_store_insert(store, job, &err), MS_OK);
    ck_assert(exists(reserve));
    for (size_t i = 0; i < 2; i++)
        ms_job_free(jobs[i]);
    ms_job_free(job);
    ms_job_store_close(store);
    free(path);
    free(filler);
    free(reserve);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("disk_full");
    TCase *tcase = tcase_create("disk_full");
    tcase_add_checked_fixture(tcase, setup, teardown);
    tcase_add_test(tcase, test_reserve_fill_and_release);
    tcase_add_test(tcase, test_insert_on_full_disk_is_disk_full);
    tcase_add_test(tcase, test_delete_on_full_disk);
    tcase_add_test(tcase, test_delete_without_reserve_is_disk_full);
    tcase_add_test(tcase, test_open_on_full_disk);
    suite_add_tcase(suite, tcase);
    return ms_test_run_suite(suite);
}
