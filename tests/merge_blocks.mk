# tests/merge_blocks: block weights (every generated UNet key, the three
# forms, validation) and the checkpoint generator's key sets and files
check_PROGRAMS += tests/test_merge_blocks
TESTS += tests/test_merge_blocks
tests_test_merge_blocks_SOURCES = tests/test_merge_blocks.c $(CHECKPOINT_GENERATOR) $(TEST_SUPPORT_SOURCES)
tests_test_merge_blocks_CFLAGS = $(TEST_CFLAGS)
tests_test_merge_blocks_LDADD = $(TEST_LIBS)
