# tests/merge_service: merge jobs in the service, end to end (curl + jq
# against the real binary, checkpoints from tests/gen_checkpoint).
TESTS += tests/merge_service_test.sh
dist_noinst_SCRIPTS += tests/merge_service_test.sh
# The script runs both programs; `make check TESTS=tests/merge_service_test.sh` builds them first.
tests/merge_service_test.log: mergesvd$(EXEEXT) tests/gen_checkpoint$(EXEEXT)
