# tests/merge_methods: every merge method against hand answers and plain references
MERGE_METHODS_TESTS = tests/test_merge_methods
check_PROGRAMS += $(MERGE_METHODS_TESTS)
TESTS += $(MERGE_METHODS_TESTS)

tests_test_merge_methods_SOURCES = tests/test_merge_methods.c \
	tests/merge_methods_fixture.c tests/merge_methods_fixture.h \
	tests/merge_methods_reference.c $(TEST_SUPPORT_SOURCES)
tests_test_merge_methods_CFLAGS = $(TEST_CFLAGS)
tests_test_merge_methods_LDADD = $(TEST_LIBS)
