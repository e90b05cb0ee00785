# tests/rotate_cache: the rotate decomposition cache (hits and misses in
# memory and on disk, damaged files, LRU eviction, concurrent callers,
# cancel, failed appends, hostile folders)
check_PROGRAMS += tests/test_rotate_cache
TESTS += tests/test_rotate_cache
tests_test_rotate_cache_SOURCES = tests/test_rotate_cache.c $(TEST_SUPPORT_SOURCES)
tests_test_rotate_cache_CFLAGS = $(TEST_CFLAGS)
tests_test_rotate_cache_LDADD = $(TEST_LIBS)
