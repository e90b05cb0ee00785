# Unit tests of the serve runtime's internals (owned by the server engineer).
SERVER_TEST_CFLAGS = $(TEST_CFLAGS) $(MICROHTTPD_CFLAGS) $(LIBUV_CFLAGS) $(SQLITE_CFLAGS)
SERVER_TEST_LIBS = $(SERVER_LIBS) $(TEST_LIBS)

check_PROGRAMS += tests/test_paths tests/test_range tests/test_job_store tests/test_serve_misc \
	tests/test_job_runner
TESTS += tests/test_paths tests/test_range tests/test_job_store tests/test_serve_misc \
	tests/test_job_runner
check_PROGRAMS += tests/test_retention tests/test_file_reaper
TESTS += tests/test_retention tests/test_file_reaper

tests_test_paths_SOURCES = tests/test_paths.c $(TEST_SUPPORT_SOURCES)
tests_test_paths_CFLAGS = $(SERVER_TEST_CFLAGS)
tests_test_paths_LDADD = $(SERVER_TEST_LIBS)

tests_test_range_SOURCES = tests/test_range.c $(TEST_SUPPORT_SOURCES)
tests_test_range_CFLAGS = $(SERVER_TEST_CFLAGS)
tests_test_range_LDADD = $(SERVER_TEST_LIBS)

tests_test_job_store_SOURCES = tests/test_job_store.c $(TEST_SUPPORT_SOURCES)
tests_test_job_store_CFLAGS = $(SERVER_TEST_CFLAGS)
tests_test_job_store_LDADD = $(SERVER_TEST_LIBS)

tests_test_serve_misc_SOURCES = tests/test_serve_misc.c $(TEST_SUPPORT_SOURCES)
tests_test_serve_misc_CFLAGS = $(SERVER_TEST_CFLAGS)
tests_test_serve_misc_LDADD = $(SERVER_TEST_LIBS)

tests_test_job_runner_SOURCES = tests/test_job_runner.c $(TEST_SUPPORT_SOURCES)
tests_test_job_runner_CFLAGS = $(SERVER_TEST_CFLAGS)
tests_test_job_runner_LDADD = $(SERVER_TEST_LIBS)

tests_test_retention_SOURCES = tests/test_retention.c $(TEST_SUPPORT_SOURCES)
tests_test_retention_CFLAGS = $(SERVER_TEST_CFLAGS)
tests_test_retention_LDADD = $(SERVER_TEST_LIBS)

# The models listing's walk, order, pages, cursor and cache (server/http/model_index).
check_PROGRAMS += tests/test_model_index
TESTS += tests/test_model_index
tests_test_model_index_SOURCES = tests/test_model_index.c $(TEST_SUPPORT_SOURCES)
tests_test_model_index_CFLAGS = $(SERVER_TEST_CFLAGS)
tests_test_model_index_LDADD = $(SERVER_TEST_LIBS)

# The request gate's check of a head before libmicrohttpd parses it
# (server/http/request_head).
check_PROGRAMS += tests/test_request_head
TESTS += tests/test_request_head
tests_test_request_head_SOURCES = tests/test_request_head.c $(TEST_SUPPORT_SOURCES)
tests_test_request_head_CFLAGS = $(SERVER_TEST_CFLAGS)
tests_test_request_head_LDADD = $(SERVER_TEST_LIBS)

tests_test_file_reaper_SOURCES = tests/test_file_reaper.c $(TEST_SUPPORT_SOURCES)
tests_test_file_reaper_CFLAGS = $(SERVER_TEST_CFLAGS)
tests_test_file_reaper_LDADD = $(SERVER_TEST_LIBS)
