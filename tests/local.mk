# Unit tests (Check) and end-to-end tests; `make check` runs them all.
TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(JANSSON_CFLAGS)
TEST_LIBS = $(API_LIBS) $(CHECK_LIBS)
# Every Check program runs its suite and makes its temp dirs through these.
TEST_SUPPORT_SOURCES = tests/check_support.c tests/check_support.h
# Scripts run through bash so they need no exec bit.
TEST_EXTENSIONS = .sh
SH_LOG_COMPILER = bash
AM_TESTS_ENVIRONMENT = MERGESVD=$(abs_top_builddir)/mergesvd; TESTS_DIR=$(abs_top_srcdir)/tests; BUILD_DIR=$(abs_top_builddir); export MERGESVD TESTS_DIR BUILD_DIR;
include tests/format.mk
include tests/numerics.mk
include tests/cli.mk
include tests/service.mk
include tests/server_unit.mk
include tests/merge.mk
include tests/disk_full.mk
include tests/webui.mk
include tests/http_hardening.mk
include tests/fuzz/fuzz.mk
