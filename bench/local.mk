# The child run, median and fsync'd copy floor bench_resize and bench_merge share.
BENCH_COMMON = bench/bench_common.c bench/bench_common.h
include bench/resize.mk
include bench/load.mk
include bench/merge.mk
