# numerics: LoRA modules, resize parameters, rank rules, fast low-rank SVD,
# resize driver (owner: numerics)
core_libmscore_a_SOURCES += \
	core/lora.c core/lora.h \
	core/resize.h core/resize_internal.h core/resize_params.c \
	core/rank_rule.c \
	core/lowrank.h core/lowrank_svd.c core/lowrank_cholesky.c \
	core/python_float.c core/python_float.h core/resize_metadata.c core/resize_module.c core/resize.c
