# api layer, kind detection, the LoRA generator and the command line end to
# end (owned by the cli engineer)
LORA_GENERATOR = tests/lora_generator.c tests/lora_generator.h

check_PROGRAMS += tests/test_api tests/test_inspect
TESTS += tests/test_api tests/test_inspect tests/cli_test.sh
dist_noinst_SCRIPTS += tests/cli_test.sh
# Helpers sourced by cli_test.sh and cli_merge_test.sh.
EXTRA_DIST += tests/cli_lib.sh

tests_test_api_SOURCES = tests/test_api.c $(TEST_SUPPORT_SOURCES)
tests_test_api_CFLAGS = $(TEST_CFLAGS)
tests_test_api_LDADD = $(TEST_LIBS)

tests_test_inspect_SOURCES = tests/test_inspect.c $(LORA_GENERATOR) $(TEST_SUPPORT_SOURCES)
tests_test_inspect_CFLAGS = $(TEST_CFLAGS)
tests_test_inspect_LDADD = $(TEST_LIBS)

# noinst, not check: deploy/start makes sample models with it from a plain
# build; `make check` builds it too (all before check).
noinst_PROGRAMS += tests/gen_lora
tests_gen_lora_SOURCES = tests/gen_lora.c $(LORA_GENERATOR)
tests_gen_lora_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_gen_lora_LDADD = $(CORE_LIBS)
