# What a hostile or careless client tried on the running service (issue 11):
# slow clients, SIGTERM during a download, refused configurations, HTTP edges.
TESTS += tests/http_hardening_test.sh
dist_noinst_SCRIPTS += tests/http_hardening_test.sh
EXTRA_DIST += tests/http_clients.py
tests/http_hardening_test.log: mergesvd$(EXEEXT) tests/gen_lora$(EXEEXT)
