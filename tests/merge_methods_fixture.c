/* Fixture and sink for the merge method tests (see the header). */
#include "merge_methods_fixture.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void tensor_alloc(mm_tensor *t, ms_dtype dtype, uint64_t count)
{
    t->dtype = dtype;
    t->bytes = calloc(count ? count : 1, ms_dtype_size(dtype));
    t->values = calloc(count ? count : 1, sizeof *t->values);
    ck_assert(t->bytes != NULL && t->values != NULL);
}

void mm_case_init(mm_case *k, uint64_t count, ms_dtype dtype_a, ms_dtype dtype_b, int dtype_c)
{
    memset(k, 0, sizeof *k);
    k->count = count;
    k->ndim = 1;
    k->shape[0] = (int64_t)count;
    k->alpha = 0.5;
    k->beta = 0.5;
    atomic_init(&k->cancel, 0);
    tensor_alloc(&k->a, dtype_a, count);
    tensor_alloc(&k->b, dtype_b, count);
    if (dtype_c >= 0)
        tensor_alloc(&k->c, (ms_dtype)dtype_c, count);
    k->out = calloc(count ? count : 1, sizeof *k->out);
    ck_assert(k->out != NULL);
}

static void tensor_free(mm_tensor *t)
{
    free(t->bytes);
    free(t->values);
    memset(t, 0, sizeof *t);
}

void mm_case_free(mm_case *k)
{
    tensor_free(&k->a);
    tensor_free(&k->b);
    tensor_free(&k->c);
    free(k->out);
    k->out = NULL;
}

void mm_tensor_set(mm_tensor *t, const double *values, uint64_t count)
{
    ms_dtype_from_double(t->dtype, values, t->bytes, (size_t)count);
    ms_dtype_to_double(t->dtype, t->bytes, t->values, (size_t)count);
}

/* xorshift64*: reproducible, no libc state */
static double next_uniform(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    uint64_t bits = *state * UINT64_C(2685821657736338717);
    return (double)(bits >> 11) * 0x1p-52 - 1.0;
}

static void random_tensor(mm_tensor *t, uint64_t count, uint64_t *state, unsigned zero_every,
                          unsigned repeat_every)
{
    double *values = malloc((count ? count : 1) * sizeof *values);
    ck_assert(values != NULL);
    for (uint64_t i = 0; i < count; i++) {
        double u = next_uniform(state);
        if (zero_every != 0 && i % zero_every == zero_every - 1)
            values[i] = u < 0 ? -0.0 : 0.0;
        else if (repeat_every != 0 && i > 0 && i % repeat_every == 0)
            values[i] = values[i - 1];
        else
            values[i] = u;
    }
    mm_tensor_set(t, values, count);
    free(values);
}

void mm_case_random(mm_case *k, uint64_t seed, unsigned zero_every, unsigned repeat_every)
{
    uint64_t state = seed * UINT64_C(0x9e3779b97f4a7c15) + 1;
    random_tensor(&k->a, k->count, &state, zero_every, repeat_every);
    random_tensor(&k->b, k->count, &state, zero_every, repeat_every);
    if (k->c.bytes != NULL)
        random_tensor(&k->c, k->count, &state, zero_every, repeat_every);
}

static ms_status record(void *context, uint64_t start, const double *values, size_t count,
                        ms_error *err)
{
    mm_case *k = context;
    k->calls++;
    if (k->fail_at_call != 0 && k->calls == k->fail_at_call)
        return ms_error_set(err, MS_ERR_IO, NULL, "test sink refuses write %zu", k->calls);
    if (k->cancel_at_call != 0 && k->calls == k->cancel_at_call)
        atomic_store(&k->cancel, 1);
    if (start != k->next || count == 0 || start + count > k->count)
        k->disorder++;
    else
        memcpy(k->out + start, values, count * sizeof *values);
    k->next = start + count;
    return MS_OK;
}

static ms_merge_operand operand_of(const mm_tensor *t)
{
    return (ms_merge_operand){t->bytes, t->dtype, false};
}

ms_status mm_run(mm_case *k, const char *method, ms_error *err)
{
    const ms_merge_method *entry = ms_merge_method_find(method);
    ck_assert_msg(entry != NULL, "no method %s", method);
    ms_merge_task task;
    memset(&task, 0, sizeof task);
    task.key = "model.test.weight";
    task.a = operand_of(&k->a);
    task.b = operand_of(&k->b);
    if (k->c.bytes != NULL)
        task.c = operand_of(&k->c);
    task.count = k->count;
    task.ndim = k->ndim;
    task.shape = k->shape;
    task.alpha = k->alpha;
    task.beta = k->beta;
    task.cancel = &k->cancel;
    task.rotate_cache = k->rotate_cache;
    task.rotate_counts = k->rotate_counts;
    task.sink = (ms_merge_sink){record, k};
    k->next = 0;
    k->calls = 0;
    k->disorder = 0;
    ms_error_clear(err);
    ms_status status = entry->merge(&task, err);
    if (status == MS_OK) {
        ck_assert_msg(k->disorder == 0, "%s: %zu chunks out of order", method, k->disorder);
        ck_assert_msg(k->next == k->count, "%s: output ends at %llu of %llu", method,
                      (unsigned long long)k->next, (unsigned long long)k->count);
    } else {
        ck_assert_str_eq(err->key, "model.test.weight");
    }
    return status;
}

double mm_scale(const mm_case *k)
{
    double scale = 0;
    const mm_tensor *tensors[3] = {&k->a, &k->b, &k->c};
    for (int t = 0; t < 3; t++)
        for (uint64_t i = 0; tensors[t]->values != NULL && i < k->count; i++)
            if (fabs(tensors[t]->values[i]) > scale)
                scale = fabs(tensors[t]->values[i]);
    return scale;
}
