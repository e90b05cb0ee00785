# resize and inspect subcommands, terminal progress (owned by the cli engineer)
mergesvd_SOURCES += \
	server/cli_options.c server/cli_options.h \
	server/cli_resize.c \
	server/cli_inspect.c \
	server/progress_display.c server/progress_display.h
