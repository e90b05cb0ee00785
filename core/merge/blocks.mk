# core/merge/blocks
core_libmscore_a_SOURCES += core/merge/blocks.c core/merge/blocks.h
