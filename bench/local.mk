# The child run, median and fsync'd copy floor bench_resize and bench_merge share.
BENCH_COMMON = bench/bench_common.c bench/bench_common.h
# The full-size checkpoints bench_merge and bench_rotate time.
BENCH_MODELS = bench/bench_models.c bench/bench_models.h
include bench/resize.mk
include bench/load.mk
include bench/merge.mk
include bench/rotate.mk
include bench/webui_loop.mk
