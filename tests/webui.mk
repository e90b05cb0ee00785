# tests/webui_test: merges handed to a web UI and the /sdapi, /bbwm
# pass-through, end to end against tests/fake_webui.py (python3).
TESTS += tests/webui_test.sh
dist_noinst_SCRIPTS += tests/webui_test.sh
EXTRA_DIST += tests/fake_webui.py
# The script runs both programs; `make check TESTS=tests/webui_test.sh` builds them first.
tests/webui_test.log: mergesvd$(EXEEXT) tests/gen_checkpoint$(EXEEXT)
