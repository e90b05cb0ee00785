# server/cli: the subcommands (resize, merge, inspect, serve), their options,
# Ctrl-C handling and the terminal progress display
mergesvd_SOURCES += \
	server/cli/main.c server/cli/commands.h \
	server/cli/cli_options.c server/cli/cli_options.h \
	server/cli/cli_signals.c server/cli/cli_signals.h \
	server/cli/cli_resize.c \
	server/cli/cli_merge.c \
	server/cli/cli_inspect.c \
	server/cli/serve.c \
	server/cli/progress_display.c server/cli/progress_display.h
