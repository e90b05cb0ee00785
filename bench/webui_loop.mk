# bench/bench_webui_loop: /bbwm "memory" merges against tests/fake_webui.py,
# as the optimisation loop sends them.  `make bench/bench_webui_loop &&
# bench/bench_webui_loop` from the build dir, after bench/bench_merge made
# the models.
noinst_SCRIPTS += bench/bench_webui_loop
EXTRA_DIST += bench/bench_webui_loop.sh
CLEANFILES += bench/bench_webui_loop
bench/bench_webui_loop: $(srcdir)/bench/bench_webui_loop.sh Makefile
	$(AM_V_GEN)$(MKDIR_P) bench && \
	sed -e 's|__ABS_TOP_BUILDDIR__|$(abs_top_builddir)|g' \
	    -e 's|__ABS_TOP_SRCDIR__|$(abs_top_srcdir)|g' $(srcdir)/bench/bench_webui_loop.sh >$@.tmp && \
	chmod +x $@.tmp && mv $@.tmp $@
