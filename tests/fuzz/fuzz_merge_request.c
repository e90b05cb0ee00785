/* POST /v1/merge-models bodies (strict): merge_body.c. */
#include "fuzz.h"
#include "merge_body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ms_fuzz_merge_body(data, size, false);
    return 0;
}
