noinst_LIBRARIES += api/libmsapi.a
api_libmsapi_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
api_libmsapi_a_SOURCES = api/api.h
