# tests/rotate: the rotate method's numerics against plain references
ROTATE_TESTS = tests/test_rotate_math
check_PROGRAMS += $(ROTATE_TESTS)
TESTS += $(ROTATE_TESTS)

tests_test_rotate_math_SOURCES = tests/test_rotate_math.c $(NUMERICS_TEST_UTIL) $(TEST_SUPPORT_SOURCES)
tests_test_rotate_math_CFLAGS = $(NUMERICS_TEST_CFLAGS)
tests_test_rotate_math_LDADD = $(TEST_LIBS)
