# core/model: model kind and architecture detection (mergesvd inspect, GET /v1/models)
core_libmscore_a_SOURCES += core/model/inspect.c core/model/inspect.h
