# bench/bench_resize: `mergesvd resize` on a full-size SD1.5 rank-128 fp16
# LoRA, median of 3+ runs, peak RSS, fsync'd copy floor.
# `make bench/bench_resize mergesvd && bench/bench_resize` from the build dir.
noinst_PROGRAMS += bench/bench_resize
bench_bench_resize_SOURCES = bench/bench_resize.c $(BENCH_COMMON) tests/lora_generator.c tests/lora_generator.h
bench_bench_resize_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
bench_bench_resize_LDADD = $(CORE_LIBS)
EXTRA_DIST += bench/parity_full_svd.py
