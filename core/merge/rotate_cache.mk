# core/merge/rotate_cache: the rotate method's decomposition cache, a
# content-addressed blob store in memory or in a folder of mapped files
core_libmscore_a_SOURCES += \
	core/merge/rotate_cache.c core/merge/rotate_cache.h \
	core/merge/rotate_cache_file.c core/merge/rotate_cache_file.h
