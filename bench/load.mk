# bench/bench_load: polling load against GET /v1/jobs/{id} while a resize
# runs: wrk at full speed, and bench/paced_get at a fixed offered rate.
# `make bench/bench_load bench/paced_get && bench/bench_load` from the build dir.
noinst_PROGRAMS += bench/paced_get
bench_paced_get_SOURCES = bench/paced_get.c
# only server/thread_priority.o is taken from the archive
bench_paced_get_LDADD = server/libmsserver.a -lm
noinst_SCRIPTS += bench/bench_load
EXTRA_DIST += bench/bench_load.sh
CLEANFILES += bench/bench_load
bench/bench_load: $(srcdir)/bench/bench_load.sh Makefile
	$(AM_V_GEN)$(MKDIR_P) bench && \
	sed -e 's|__ABS_TOP_BUILDDIR__|$(abs_top_builddir)|g' $(srcdir)/bench/bench_load.sh >$@.tmp && \
	chmod +x $@.tmp && mv $@.tmp $@
