# core/merge/rotate: neuron rotation (algorithms.md section 4)
core_libmscore_a_SOURCES += \
	core/merge/rotate_math.h core/merge/rotate_math.c \
	core/merge/method_rotate.h core/merge/method_rotate.c core/merge/rotate_terms.c \
	core/merge/rotate_decompose.h core/merge/rotate_decompose.c
