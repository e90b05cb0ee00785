# core/linalg: the SVD of up @ down without forming it (thin QR, r x r core)
core_libmscore_a_SOURCES += \
	core/linalg/lowrank.h core/linalg/lowrank_svd.c core/linalg/lowrank_cholesky.c
