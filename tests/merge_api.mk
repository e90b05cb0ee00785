# tests/merge_api: the merge request bodies, params and report JSON, the
# shortest-form JSON text (Check), and `mergesvd merge` end to end
check_PROGRAMS += tests/test_merge_api
TESTS += tests/test_merge_api tests/cli_merge_test.sh
dist_noinst_SCRIPTS += tests/cli_merge_test.sh

tests_test_merge_api_SOURCES = tests/test_merge_api.c $(TEST_SUPPORT_SOURCES)
tests_test_merge_api_CFLAGS = $(TEST_CFLAGS)
tests_test_merge_api_LDADD = $(TEST_LIBS)
