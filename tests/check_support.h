/* What every Check test program shares: running its suite and a temp
 * directory fixture. */
#ifndef MS_CHECK_SUPPORT_H
#define MS_CHECK_SUPPORT_H

#include <check.h>

/* Runs every test of suite (CK_NORMAL output), frees the runner and returns
 * main()'s exit status: EXIT_SUCCESS when no test failed. */
int ms_test_run_suite(Suite *suite);

/* Makes $TMPDIR/mergesvd-NAME-XXXXXX (/tmp when TMPDIR is unset or empty).
 * Returns the malloc'ed path, or NULL when it could not be made. */
char *ms_test_make_temp_dir(const char *name);

/* Removes path and everything below it without following symbolic links.
 * Returns 0 when it is gone (NULL or already missing count as gone), -1 when
 * something could not be removed. */
int ms_test_remove_tree(const char *path);

#endif
