# container tests: dtype conversions, safetensors reader, writer
check_PROGRAMS += tests/test_dtype
TESTS += tests/test_dtype
tests_test_dtype_SOURCES = tests/test_dtype.c $(TEST_SUPPORT_SOURCES)
tests_test_dtype_CFLAGS = $(TEST_CFLAGS)
tests_test_dtype_LDADD = $(TEST_LIBS)

check_PROGRAMS += tests/test_safetensors
TESTS += tests/test_safetensors
tests_test_safetensors_SOURCES = tests/test_safetensors.c $(TEST_SUPPORT_SOURCES)
tests_test_safetensors_CFLAGS = $(TEST_CFLAGS)
tests_test_safetensors_LDADD = $(TEST_LIBS)

check_PROGRAMS += tests/test_writer
TESTS += tests/test_writer
tests_test_writer_SOURCES = tests/test_writer.c $(TEST_SUPPORT_SOURCES)
tests_test_writer_CFLAGS = $(TEST_CFLAGS) $(CRYPTO_CFLAGS)
tests_test_writer_LDADD = $(TEST_LIBS)
