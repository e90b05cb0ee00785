/* What every fuzz target shares.
 *
 * A target is one LLVMFuzzerTestOneInput.  It is linked twice: with
 * libFuzzer (clang -fsanitize=fuzzer, tests/fuzz/run-fuzzers) to search for
 * inputs, and with replay_main.c (any compiler, `make check`) to run every
 * committed corpus file through it again.  A target refuses nothing: the
 * input is hostile and the code under test must answer it; a target only
 * aborts (through MS_FUZZ_CHECK) when an answer breaks a promise the code
 * makes, such as "what the writer wrote reads back the same". */
#ifndef MS_FUZZ_H
#define MS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "core/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Optional, once before the first input (a target's fixed files). */
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A broken promise: say which and abort, so both libFuzzer and the replay
 * report the input. */
#define MS_FUZZ_CHECK(condition)                                                     \
    do {                                                                             \
        if (!(condition)) {                                                          \
            fprintf(stderr, "%s:%d: promise broken: %s\n", __FILE__, __LINE__,       \
                    #condition);                                                     \
            abort();                                                                 \
        }                                                                            \
    } while (0)

/* data[0..size) as a malloced C string (cut at the first NUL, as a C string
 * from a client would be); NULL when out of memory. */
char *ms_fuzz_text(const uint8_t *data, size_t size);

/* The next line of text (cut at '\n') into a malloced string, *cursor
 * moved past it; NULL at the end of the input or when out of memory. */
char *ms_fuzz_next_line(const uint8_t *data, size_t size, size_t *cursor);

/* data as a request body, parsed as the service parses one
 * (ms_submit_parse_body's flags); NULL when it is not JSON. */
json_t *ms_fuzz_json_body(const uint8_t *data, size_t size);

/* value as the text a job stores (ms_api_json_dumps); aborts when it cannot
 * be made. Malloced. */
char *ms_fuzz_json_text(const json_t *value);

/* A refusal must reach the client: its error body (api.h) dumps to JSON
 * that reads back with the code as a string, and its HTTP status is an
 * error status.  Aborts otherwise. */
void ms_fuzz_check_error(const ms_error *err);

#endif
