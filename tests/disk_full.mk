# A full disk: the job store's reserve and disk_full (unit, on a small
# tmpfs in the test's own mount namespace), and the service end to end.
check_PROGRAMS += tests/test_disk_full
TESTS += tests/test_disk_full
tests_test_disk_full_SOURCES = tests/test_disk_full.c $(TEST_SUPPORT_SOURCES)
tests_test_disk_full_CFLAGS = $(SERVER_TEST_CFLAGS)
tests_test_disk_full_LDADD = $(SERVER_TEST_LIBS)
TESTS += tests/disk_full_test.sh
dist_noinst_SCRIPTS += tests/disk_full_test.sh
tests/disk_full_test.log: mergesvd$(EXEEXT) tests/gen_lora$(EXEEXT) tests/gen_checkpoint$(EXEEXT)
