# One folder per concept; the dependency rule: core uses nothing of ours
# but itself (error.h is shared by all of core).
noinst_LIBRARIES += core/libmscore.a
core_libmscore_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(OPENBLAS_CFLAGS) $(LAPACKE_CFLAGS) $(CRYPTO_CFLAGS) $(FFTW_CFLAGS) $(XXHASH_CFLAGS)
core_libmscore_a_SOURCES = \
	core/error.c core/error.h
# file formats: dtypes, the safetensors reader, the writers, output-file rules
include core/format/format.mk
# dense linear algebra: the fast low-rank SVD
include core/linalg/linalg.mk
# LoRA modules and the kohya resize
include core/lora/lora.mk
# what a model file is: LoRA or checkpoint, which architecture
include core/model/model.mk
# checkpoint merge: method table, block weights, streamed driver
include core/merge/merge.mk
