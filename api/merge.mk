# api/merge: merge request bodies (/v1 and the web UI extension's), params
# and report JSON
api_libmsapi_a_SOURCES += api/merge_request.c api/merge_request.h
