# merge driver: key rules, block weights, NaN policy, streamed == in-memory
# reference, provenance, refusals, cancel, disk full
check_PROGRAMS += tests/test_merge_driver
TESTS += tests/test_merge_driver
tests_test_merge_driver_SOURCES = tests/test_merge_driver.c $(TEST_SUPPORT_SOURCES)
tests_test_merge_driver_CFLAGS = $(TEST_CFLAGS)
tests_test_merge_driver_LDADD = $(TEST_LIBS)
