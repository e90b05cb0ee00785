include bench/resize.mk
include bench/load.mk
