# Fuzz targets (tests/fuzz/fuzz.h): each LLVMFuzzerTestOneInput is linked
# with replay_main.c into a test that replays its committed corpus
# (tests/fuzz/corpus/NAME) on every `make check`, and, when configured
# with --enable-fuzzers (clang; tests/fuzz/run-fuzzers does it), with
# libFuzzer into tests/fuzz/fuzz_NAME.
FUZZ_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(MICROHTTPD_CFLAGS)
FUZZ_LIBS = $(SERVER_LIBS) $(API_LIBS)
FUZZ_SUPPORT_SOURCES = tests/fuzz/fuzz.h tests/fuzz/support.c
FUZZ_REPLAY_SOURCES = tests/fuzz/replay_main.c $(FUZZ_SUPPORT_SOURCES)
FUZZ_MERGE_SOURCES = tests/fuzz/merge_body.c tests/fuzz/merge_body.h
FUZZ_KEY_SOURCES = tests/fuzz/key_lines.c tests/fuzz/key_lines.h
dist_noinst_SCRIPTS += tests/fuzz/run-fuzzers
EXTRA_DIST += tests/fuzz/corpus


# the safetensors reader on any bytes
check_PROGRAMS += tests/fuzz/replay_safetensors_header
TESTS += tests/fuzz/replay_safetensors_header
tests_fuzz_replay_safetensors_header_SOURCES = tests/fuzz/fuzz_safetensors_header.c $(FUZZ_REPLAY_SOURCES)
tests_fuzz_replay_safetensors_header_CPPFLAGS = $(AM_CPPFLAGS) -DMS_FUZZ_NAME='"safetensors_header"'
tests_fuzz_replay_safetensors_header_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_replay_safetensors_header_LDADD = $(FUZZ_LIBS)

# read, write with our writer, read again
check_PROGRAMS += tests/fuzz/replay_safetensors_roundtrip
TESTS += tests/fuzz/replay_safetensors_roundtrip
tests_fuzz_replay_safetensors_roundtrip_SOURCES = tests/fuzz/fuzz_safetensors_roundtrip.c $(FUZZ_REPLAY_SOURCES)
tests_fuzz_replay_safetensors_roundtrip_CPPFLAGS = $(AM_CPPFLAGS) -DMS_FUZZ_NAME='"safetensors_roundtrip"'
tests_fuzz_replay_safetensors_roundtrip_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_replay_safetensors_roundtrip_LDADD = $(FUZZ_LIBS)

# POST /v1/resize-lora bodies
check_PROGRAMS += tests/fuzz/replay_resize_request
TESTS += tests/fuzz/replay_resize_request
tests_fuzz_replay_resize_request_SOURCES = tests/fuzz/fuzz_resize_request.c $(FUZZ_REPLAY_SOURCES)
tests_fuzz_replay_resize_request_CPPFLAGS = $(AM_CPPFLAGS) -DMS_FUZZ_NAME='"resize_request"'
tests_fuzz_replay_resize_request_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_replay_resize_request_LDADD = $(FUZZ_LIBS)

# POST /v1/merge-models bodies
check_PROGRAMS += tests/fuzz/replay_merge_request
TESTS += tests/fuzz/replay_merge_request
tests_fuzz_replay_merge_request_SOURCES = tests/fuzz/fuzz_merge_request.c $(FUZZ_MERGE_SOURCES) $(FUZZ_REPLAY_SOURCES)
tests_fuzz_replay_merge_request_CPPFLAGS = $(AM_CPPFLAGS) -DMS_FUZZ_NAME='"merge_request"'
tests_fuzz_replay_merge_request_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_replay_merge_request_LDADD = $(FUZZ_LIBS)

# POST /bbwm/merge-models bodies
check_PROGRAMS += tests/fuzz/replay_bbwm_request
TESTS += tests/fuzz/replay_bbwm_request
tests_fuzz_replay_bbwm_request_SOURCES = tests/fuzz/fuzz_bbwm_request.c $(FUZZ_MERGE_SOURCES) $(FUZZ_REPLAY_SOURCES)
tests_fuzz_replay_bbwm_request_CPPFLAGS = $(AM_CPPFLAGS) -DMS_FUZZ_NAME='"bbwm_request"'
tests_fuzz_replay_bbwm_request_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_replay_bbwm_request_LDADD = $(FUZZ_LIBS)

# Range and If-None-Match
check_PROGRAMS += tests/fuzz/replay_http_headers
TESTS += tests/fuzz/replay_http_headers
tests_fuzz_replay_http_headers_SOURCES = tests/fuzz/fuzz_http_headers.c $(FUZZ_REPLAY_SOURCES)
tests_fuzz_replay_http_headers_CPPFLAGS = $(AM_CPPFLAGS) -DMS_FUZZ_NAME='"http_headers"'
tests_fuzz_replay_http_headers_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_replay_http_headers_LDADD = $(FUZZ_LIBS)

# the /v1/jobs query string and Idempotency-Key
check_PROGRAMS += tests/fuzz/replay_query
TESTS += tests/fuzz/replay_query
tests_fuzz_replay_query_SOURCES = tests/fuzz/fuzz_query.c $(FUZZ_REPLAY_SOURCES)
tests_fuzz_replay_query_CPPFLAGS = $(AM_CPPFLAGS) -DMS_FUZZ_NAME='"query"'
tests_fuzz_replay_query_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_replay_query_LDADD = $(FUZZ_LIBS)

# model paths from clients, resolved and matched
check_PROGRAMS += tests/fuzz/replay_model_path
TESTS += tests/fuzz/replay_model_path
tests_fuzz_replay_model_path_SOURCES = tests/fuzz/fuzz_model_path.c $(FUZZ_REPLAY_SOURCES)
tests_fuzz_replay_model_path_CPPFLAGS = $(AM_CPPFLAGS) -DMS_FUZZ_NAME='"model_path"'
tests_fuzz_replay_model_path_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_replay_model_path_LDADD = $(FUZZ_LIBS)

# LoRA module discovery on random key names
check_PROGRAMS += tests/fuzz/replay_lora_modules
TESTS += tests/fuzz/replay_lora_modules
tests_fuzz_replay_lora_modules_SOURCES = tests/fuzz/fuzz_lora_modules.c $(FUZZ_KEY_SOURCES) $(FUZZ_REPLAY_SOURCES)
tests_fuzz_replay_lora_modules_CPPFLAGS = $(AM_CPPFLAGS) -DMS_FUZZ_NAME='"lora_modules"'
tests_fuzz_replay_lora_modules_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_replay_lora_modules_LDADD = $(FUZZ_LIBS)

# block-weight mapping on random key names
check_PROGRAMS += tests/fuzz/replay_block_weights
TESTS += tests/fuzz/replay_block_weights
tests_fuzz_replay_block_weights_SOURCES = tests/fuzz/fuzz_block_weights.c $(FUZZ_REPLAY_SOURCES)
tests_fuzz_replay_block_weights_CPPFLAGS = $(AM_CPPFLAGS) -DMS_FUZZ_NAME='"block_weights"'
tests_fuzz_replay_block_weights_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_replay_block_weights_LDADD = $(FUZZ_LIBS)

# request heads before libmicrohttpd parses them (the request gate)
check_PROGRAMS += tests/fuzz/replay_request_head
TESTS += tests/fuzz/replay_request_head
tests_fuzz_replay_request_head_SOURCES = tests/fuzz/fuzz_request_head.c $(FUZZ_REPLAY_SOURCES)
tests_fuzz_replay_request_head_CPPFLAGS = $(AM_CPPFLAGS) -DMS_FUZZ_NAME='"request_head"'
tests_fuzz_replay_request_head_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_replay_request_head_LDADD = $(FUZZ_LIBS)


if MS_FUZZERS
FUZZER_LINK_FLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer

noinst_PROGRAMS += tests/fuzz/fuzz_safetensors_header
tests_fuzz_fuzz_safetensors_header_SOURCES = tests/fuzz/fuzz_safetensors_header.c $(FUZZ_SUPPORT_SOURCES)
tests_fuzz_fuzz_safetensors_header_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_safetensors_header_LDFLAGS = $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_safetensors_header_LDADD = $(FUZZ_LIBS)

noinst_PROGRAMS += tests/fuzz/fuzz_safetensors_roundtrip
tests_fuzz_fuzz_safetensors_roundtrip_SOURCES = tests/fuzz/fuzz_safetensors_roundtrip.c $(FUZZ_SUPPORT_SOURCES)
tests_fuzz_fuzz_safetensors_roundtrip_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_safetensors_roundtrip_LDFLAGS = $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_safetensors_roundtrip_LDADD = $(FUZZ_LIBS)

noinst_PROGRAMS += tests/fuzz/fuzz_resize_request
tests_fuzz_fuzz_resize_request_SOURCES = tests/fuzz/fuzz_resize_request.c $(FUZZ_SUPPORT_SOURCES)
tests_fuzz_fuzz_resize_request_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_resize_request_LDFLAGS = $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_resize_request_LDADD = $(FUZZ_LIBS)

noinst_PROGRAMS += tests/fuzz/fuzz_merge_request
tests_fuzz_fuzz_merge_request_SOURCES = tests/fuzz/fuzz_merge_request.c $(FUZZ_MERGE_SOURCES) $(FUZZ_SUPPORT_SOURCES)
tests_fuzz_fuzz_merge_request_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_merge_request_LDFLAGS = $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_merge_request_LDADD = $(FUZZ_LIBS)

noinst_PROGRAMS += tests/fuzz/fuzz_bbwm_request
tests_fuzz_fuzz_bbwm_request_SOURCES = tests/fuzz/fuzz_bbwm_request.c $(FUZZ_MERGE_SOURCES) $(FUZZ_SUPPORT_SOURCES)
tests_fuzz_fuzz_bbwm_request_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_bbwm_request_LDFLAGS = $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_bbwm_request_LDADD = $(FUZZ_LIBS)

noinst_PROGRAMS += tests/fuzz/fuzz_http_headers
tests_fuzz_fuzz_http_headers_SOURCES = tests/fuzz/fuzz_http_headers.c $(FUZZ_SUPPORT_SOURCES)
tests_fuzz_fuzz_http_headers_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_http_headers_LDFLAGS = $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_http_headers_LDADD = $(FUZZ_LIBS)

noinst_PROGRAMS += tests/fuzz/fuzz_query
tests_fuzz_fuzz_query_SOURCES = tests/fuzz/fuzz_query.c $(FUZZ_SUPPORT_SOURCES)
tests_fuzz_fuzz_query_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_query_LDFLAGS = $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_query_LDADD = $(FUZZ_LIBS)

noinst_PROGRAMS += tests/fuzz/fuzz_model_path
tests_fuzz_fuzz_model_path_SOURCES = tests/fuzz/fuzz_model_path.c $(FUZZ_SUPPORT_SOURCES)
tests_fuzz_fuzz_model_path_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_model_path_LDFLAGS = $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_model_path_LDADD = $(FUZZ_LIBS)

noinst_PROGRAMS += tests/fuzz/fuzz_lora_modules
tests_fuzz_fuzz_lora_modules_SOURCES = tests/fuzz/fuzz_lora_modules.c $(FUZZ_KEY_SOURCES) $(FUZZ_SUPPORT_SOURCES)
tests_fuzz_fuzz_lora_modules_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_lora_modules_LDFLAGS = $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_lora_modules_LDADD = $(FUZZ_LIBS)

noinst_PROGRAMS += tests/fuzz/fuzz_block_weights
tests_fuzz_fuzz_block_weights_SOURCES = tests/fuzz/fuzz_block_weights.c $(FUZZ_SUPPORT_SOURCES)
tests_fuzz_fuzz_block_weights_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_block_weights_LDFLAGS = $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_block_weights_LDADD = $(FUZZ_LIBS)

noinst_PROGRAMS += tests/fuzz/fuzz_request_head
tests_fuzz_fuzz_request_head_SOURCES = tests/fuzz/fuzz_request_head.c $(FUZZ_SUPPORT_SOURCES)
tests_fuzz_fuzz_request_head_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_request_head_LDFLAGS = $(FUZZER_LINK_FLAGS)
tests_fuzz_fuzz_request_head_LDADD = $(FUZZ_LIBS)
endif
