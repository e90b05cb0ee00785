# server/merge: `mergesvd merge`, and the Ctrl-C handling it shares with resize
mergesvd_SOURCES += server/cli_merge.c \
	server/cli_signals.c server/cli_signals.h
