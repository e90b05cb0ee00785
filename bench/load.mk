# bench/bench_load: polling load (wrk) against GET /v1/jobs/{id} while a
# resize runs; `make bench/bench_load && bench/bench_load` from the build dir.
noinst_SCRIPTS = bench/bench_load
EXTRA_DIST += bench/bench_load.sh
CLEANFILES += bench/bench_load
bench/bench_load: $(srcdir)/bench/bench_load.sh Makefile
	$(AM_V_GEN)$(MKDIR_P) bench && \
	sed -e 's|__ABS_TOP_BUILDDIR__|$(abs_top_builddir)|g' $(srcdir)/bench/bench_load.sh >$@.tmp && \
	chmod +x $@.tmp && mv $@.tmp $@
