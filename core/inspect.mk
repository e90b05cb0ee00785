# model kind and architecture detection (inspect.h), owned by the cli engineer
core_libmscore_a_SOURCES += core/inspect.c core/inspect.h
