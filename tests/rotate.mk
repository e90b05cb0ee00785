# tests/rotate: the rotate method's numerics against plain references
ROTATE_TESTS = tests/test_rotate_math
check_PROGRAMS += $(ROTATE_TESTS)
TESTS += $(ROTATE_TESTS)

tests_test_rotate_math_SOURCES = tests/test_rotate_math.c tests/rotate_reference.c tests/rotate_reference.h $(NUMERICS_TEST_UTIL) $(TEST_SUPPORT_SOURCES)
tests_test_rotate_math_CFLAGS = $(NUMERICS_TEST_CFLAGS)
tests_test_rotate_math_LDADD = $(TEST_LIBS)

# the method through the table, and the decomposition cache
ROTATE_METHOD_TESTS = tests/test_rotate
check_PROGRAMS += $(ROTATE_METHOD_TESTS)
TESTS += $(ROTATE_METHOD_TESTS)

tests_test_rotate_SOURCES = tests/test_rotate.c tests/rotate_reference.c tests/rotate_reference.h \
	tests/merge_methods_fixture.c tests/merge_methods_fixture.h tests/merge_methods_reference.c \
	$(NUMERICS_TEST_UTIL) $(TEST_SUPPORT_SOURCES)
tests_test_rotate_CFLAGS = $(NUMERICS_TEST_CFLAGS)
tests_test_rotate_LDADD = $(TEST_LIBS)

# rotate end to end: command line, /v1 and /bbwm, the cache across merges and restarts
TESTS += tests/rotate_service_test.sh
dist_noinst_SCRIPTS += tests/rotate_service_test.sh
tests/rotate_service_test.log: mergesvd$(EXEEXT) tests/gen_checkpoint$(EXEEXT)
