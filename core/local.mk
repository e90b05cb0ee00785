noinst_LIBRARIES += core/libmscore.a
core_libmscore_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(OPENBLAS_CFLAGS) $(LAPACKE_CFLAGS) $(CRYPTO_CFLAGS) $(FFTW_CFLAGS)
core_libmscore_a_SOURCES = \
	core/error.c core/error.h
# container: dtype, safetensors reader, writer
include core/format.mk
# numerics: lora modules, rank rules, fast low-rank SVD, resize driver
include core/numerics.mk
# model kind and architecture detection
include core/inspect.mk
# checkpoint merge: method table, block weights, streamed driver
include core/merge/merge.mk
