# core/merge driver: inputs under canonical names, the key-rule plan, the
# planned writer (header first, tensors at their offsets), per-tensor work,
# the provenance recipe, the report, and the threads that run it all.
core_libmscore_a_SOURCES += \
	core/merge/merge.h core/merge/merge_internal.h \
	core/merge/params.c core/merge/input.c core/merge/plan.c core/merge/recipe.c \
	core/merge/planned_writer.c core/merge/planned_writer.h \
	core/merge/tensor.c core/merge/tensor.h \
	core/merge/report.c core/merge/merge.c
