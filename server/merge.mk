# server/merge: the Ctrl-C handling of the long subcommands
mergesvd_SOURCES += server/cli_signals.c server/cli_signals.h
