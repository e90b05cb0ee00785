# numerics unit tests (Check): rank rules, fast low-rank SVD, LoRA module
# grouping, resize end to end, resize metadata against kohya
NUMERICS_TESTS = tests/test_rank_rule tests/test_lowrank_svd tests/test_lora tests/test_resize \
	tests/test_dtype_table tests/test_resize_metadata
check_PROGRAMS += $(NUMERICS_TESTS)
TESTS += $(NUMERICS_TESTS)

NUMERICS_TEST_UTIL = tests/numerics_testutil.c tests/numerics_testutil.h
NUMERICS_TEST_CFLAGS = $(TEST_CFLAGS) $(OPENBLAS_CFLAGS) $(LAPACKE_CFLAGS) $(CRYPTO_CFLAGS)

tests_test_rank_rule_SOURCES = tests/test_rank_rule.c $(TEST_SUPPORT_SOURCES)
tests_test_rank_rule_CFLAGS = $(TEST_CFLAGS)
tests_test_rank_rule_LDADD = $(TEST_LIBS)

tests_test_lowrank_svd_SOURCES = tests/test_lowrank_svd.c $(NUMERICS_TEST_UTIL) $(TEST_SUPPORT_SOURCES)
tests_test_lowrank_svd_CFLAGS = $(NUMERICS_TEST_CFLAGS)
tests_test_lowrank_svd_LDADD = $(TEST_LIBS)

tests_test_lora_SOURCES = tests/test_lora.c $(NUMERICS_TEST_UTIL) $(TEST_SUPPORT_SOURCES)
tests_test_lora_CFLAGS = $(NUMERICS_TEST_CFLAGS)
tests_test_lora_LDADD = $(TEST_LIBS)

tests_test_resize_SOURCES = tests/test_resize.c $(NUMERICS_TEST_UTIL) $(TEST_SUPPORT_SOURCES)
tests_test_resize_CFLAGS = $(NUMERICS_TEST_CFLAGS)
tests_test_resize_LDADD = $(TEST_LIBS)

tests_test_dtype_table_SOURCES = tests/test_dtype_table.c $(TEST_SUPPORT_SOURCES)
tests_test_dtype_table_CFLAGS = $(TEST_CFLAGS)
tests_test_dtype_table_LDADD = $(TEST_LIBS)

tests_test_resize_metadata_SOURCES = tests/test_resize_metadata.c $(NUMERICS_TEST_UTIL) $(TEST_SUPPORT_SOURCES)
tests_test_resize_metadata_CFLAGS = $(NUMERICS_TEST_CFLAGS)
tests_test_resize_metadata_LDADD = $(TEST_LIBS)
