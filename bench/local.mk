include bench/resize.mk
include bench/load.mk
include bench/merge.mk
