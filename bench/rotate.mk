# bench/bench_rotate: `mergesvd merge --merge_mode rotate` on bench_merge's
# full-size SD1.5 pair: once with an empty decomposition cache, once warm;
# wall time, peak RSS, cache bytes and the time in SVD, eigen, products, I/O.
# `make bench/bench_rotate mergesvd && bench/bench_rotate` from the build dir.
noinst_PROGRAMS += bench/bench_rotate
bench_bench_rotate_SOURCES = bench/bench_rotate.c $(BENCH_COMMON) $(BENCH_MODELS) $(CHECKPOINT_GENERATOR)
bench_bench_rotate_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
bench_bench_rotate_LDADD = $(CORE_LIBS)
