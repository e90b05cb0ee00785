# bench/bench_merge: `mergesvd merge` on full-size SD1.5- and SDXL-shaped
# fp16 checkpoints (generated once into bench-data/, reused), weighted_sum,
# add_difference, ties_add_difference and distribution_crossover: median of
# 3+ runs, peak RSS, fsync'd copy floor.
# `make bench/bench_merge mergesvd && bench/bench_merge` from the build dir.
noinst_PROGRAMS += bench/bench_merge
bench_bench_merge_SOURCES = bench/bench_merge.c $(BENCH_COMMON) $(BENCH_MODELS) $(CHECKPOINT_GENERATOR)
bench_bench_merge_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
bench_bench_merge_LDADD = $(CORE_LIBS)
