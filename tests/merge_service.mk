# tests/merge_service: merge jobs in the service, end to end (curl + jq
# against the real binary, checkpoints from tests/gen_checkpoint).
TESTS += tests/merge_service_test.sh
dist_noinst_SCRIPTS += tests/merge_service_test.sh
# The script runs both programs; `make check TESTS=tests/merge_service_test.sh` builds them first.
tests/merge_service_test.log: mergesvd$(EXEEXT) tests/gen_checkpoint$(EXEEXT)

# Unit test of the requests held until their job ends.
check_PROGRAMS += tests/test_job_waiters
TESTS += tests/test_job_waiters
tests_test_job_waiters_SOURCES = tests/test_job_waiters.c $(TEST_SUPPORT_SOURCES)
tests_test_job_waiters_CFLAGS = $(SERVER_TEST_CFLAGS)
tests_test_job_waiters_LDADD = $(SERVER_TEST_LIBS)
