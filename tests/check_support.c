#include "check_support.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int ms_test_run_suite(Suite *suite)
{
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

char *ms_test_make_temp_dir(const char *name)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    char *path = NULL;
    if (asprintf(&path, "%s/mergesvd-%s-XXXXXX", base, name) < 0)
        return NULL;
    if (mkdtemp(path) == NULL) {
        free(path);
        return NULL;
    }
    return path;
}

/* An entry that is already gone is what we wanted, not an error. */
static int remove_entry(const char *path, const struct stat *info, int flag, struct FTW *walk)
{
    (void)info, (void)flag, (void)walk;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int ms_test_remove_tree(const char *path)
{
    struct stat info;
    if (path == NULL || (lstat(path, &info) != 0 && errno == ENOENT))
        return 0;
    /* FTW_DEPTH: a directory is visited after its contents, so it is empty
     * by the time remove() reaches it; FTW_PHYS: links are removed, never
     * followed out of the tree. */
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}
