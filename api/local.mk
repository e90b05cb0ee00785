noinst_LIBRARIES += api/libmsapi.a
api_libmsapi_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
api_libmsapi_a_SOURCES = api/api.h \
	api/json_text.c api/json_text.h \
	api/error_json.c \
	api/request_fields.c api/request_fields.h \
	api/resize_request.c \
	api/resize_report.c \
	api/model_summary.c
include api/merge.mk
api_libmsapi_a_SOURCES += api/json_load.c api/json_load.h
