# core/lora: LoRA module discovery, kohya's rank rules and the resize driver
core_libmscore_a_SOURCES += \
	core/lora/lora.c core/lora/lora.h \
	core/lora/rank_rule.c \
	core/lora/resize.c core/lora/resize.h core/lora/resize_internal.h \
	core/lora/resize_params.c core/lora/resize_metadata.c core/lora/resize_module.c
