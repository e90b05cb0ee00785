/* The two merge bodies share one check (merge_body.c). */
#ifndef MS_FUZZ_MERGE_BODY_H
#define MS_FUZZ_MERGE_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* POST /v1/merge-models (from_bbwm false) or /bbwm/merge-models bodies. */
void ms_fuzz_merge_body(const uint8_t *data, size_t size, bool from_bbwm);

#endif
