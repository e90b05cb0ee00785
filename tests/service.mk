# End-to-end tests of `mergesvd serve` (curl + jq against the real binary).
TESTS += tests/service_test.sh
dist_noinst_SCRIPTS += tests/service_test.sh
# The script runs both programs; `make check TESTS=tests/service_test.sh` builds them first.
tests/service_test.log: mergesvd$(EXEEXT) tests/gen_lora$(EXEEXT)
EXTRA_DIST += tests/openapi_check.py
# Helpers sourced by service_test.sh, merge_service_test.sh and retention_test.sh.
EXTRA_DIST += tests/service_lib.sh
# Result retention (--keep-results-bytes / --keep-results-seconds), end to end.
TESTS += tests/retention_test.sh
dist_noinst_SCRIPTS += tests/retention_test.sh
tests/retention_test.log: mergesvd$(EXEEXT) tests/gen_lora$(EXEEXT)
# GET /v1/models with thousands of files: pages, cursors, what was not reached,
# status reads answered while listings are held.
TESTS += tests/models_listing_test.sh
dist_noinst_SCRIPTS += tests/models_listing_test.sh
tests/models_listing_test.log: mergesvd$(EXEEXT) tests/gen_lora$(EXEEXT)
# The soak under SIGKILL (README, "Reliability"): run by hand from the build
# folder, not by make check.
EXTRA_DIST += tests/soak.sh
