# core/merge/methods: the method table and every sd-meh method, in bounded memory
core_libmscore_a_SOURCES += \
	core/merge/method.h core/merge/method_internal.h \
	core/merge/method_table.c core/merge/method_stream.c core/merge/operand.c \
	core/merge/method_elementwise.c core/merge/method_euclidean.c \
	core/merge/method_ties.c core/merge/method_top_k.c core/merge/method_crossover.c \
	core/merge/select.c core/merge/sort_key.c core/merge/sort_order.c core/merge/fft_real.c
