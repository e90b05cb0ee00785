/* One output tensor, from its plan entry to its bytes in the output file.
 *
 * Every float tensor, merged or copied, passes through the same sink: clip
 * (merged only), the NaN/Inf check, conversion to the output dtype (round to
 * nearest even), and a write at its final offset.  Copies of float tensors
 * go through it too (the round trip through double is exact for every float
 * dtype), so no output tensor escapes the check. */
#include "tensor.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/format/mapped_read.h"

ms_status ms_merge_buffers_init(merge_buffers *buffers, ms_error *err)
{
    size_t chunk = MS_MERGE_CHUNK_ELEMENTS;
    buffers->values = malloc(chunk * sizeof(double));
    buffers->clip_a = malloc(chunk * sizeof(double));
    buffers->clip_b = malloc(chunk * sizeof(double));
    buffers->bytes = malloc(chunk * sizeof(double));
    bool allocated = buffers->values != NULL && buffers->clip_a != NULL &&
                     buffers->clip_b != NULL && buffers->bytes != NULL;
    for (int i = 0; i < 4; i++) {
        buffers->method_chunks[i] = malloc(chunk * sizeof(double));
        allocated = allocated && buffers->method_chunks[i] != NULL;
    }
    if (!allocated)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    return MS_OK;
}

void ms_merge_buffers_free(merge_buffers *buffers)
{
    free(buffers->values);
    free(buffers->clip_a);
    free(buffers->clip_b);
    free(buffers->bytes);
    for (int i = 0; i < 4; i++)
        free(buffers->method_chunks[i]);
    free(buffers->large_block);
    memset(buffers, 0, sizeof *buffers);
}

static ms_merge_operand operand_of(const merge_input *input, const ms_tensor_info *tensor)
{
    return (ms_merge_operand){ms_safetensors_tensor_bytes(&input->file, tensor), tensor->dtype,
                              .release_pages = true};
}

typedef struct tensor_sink {
    const merge_tensor_context *context;
    size_t position;
    const merge_entry *entry;
    const ms_merge_operand *a, *b;    /* non-NULL: clip into [min(a, b), max(a, b)] */
    merge_buffers *buffers;
} tensor_sink;

static void clip(tensor_sink *sink, const double *values, double *target, uint64_t start,
                 size_t count, ms_error *err, ms_status *status)
{
    *status = ms_merge_operand_read(sink->a, start, count, sink->buffers->clip_a, err);
    if (*status == MS_OK)
        *status = ms_merge_operand_read(sink->b, start, count, sink->buffers->clip_b, err);
    for (size_t i = 0; i < count && *status == MS_OK; i++) {
        double a = sink->buffers->clip_a[i], b = sink->buffers->clip_b[i];
        double low = a < b ? a : b, high = a < b ? b : a;
        double value = values[i];
        target[i] = value < low ? low : value > high ? high : value;
    }
}

/* Index of the first stored value that is NaN or infinite (a finite double
 * past the dtype's range is stored as infinity: refused like one); count
 * when there is none.  Checking the stored bits, not the doubles, is the
 * check that matters and reads a quarter of the memory for fp16. */
static size_t first_unwritable(const unsigned char *bytes, size_t count, ms_dtype dtype)
{
    size_t size = ms_dtype_size(dtype);
    uint64_t exponent = dtype == MS_DTYPE_F16    ? 0x7c00u
                        : dtype == MS_DTYPE_BF16 ? 0x7f80u
                        : dtype == MS_DTYPE_F32  ? 0x7f800000u
                                                 : 0x7ff0000000000000u;
    size_t i = 0;
    if (size == 2) {
        /* four values per 64-bit word: a lane of (word & E) ^ E is zero
         * exactly when its exponent is all ones, and the classic zero-lane
         * test finds whether any lane is (the compiler at -O2 left the
         * per-value loop scalar: 9 % of an SDXL weighted_sum) */
        const uint64_t lanes = UINT64_C(0x0001000100010001), exponents = exponent * lanes;
        for (; i + 16 <= count; i += 16) {
            uint64_t words[4], any = 0;
            memcpy(words, bytes + 2 * i, sizeof words);
            for (int w = 0; w < 4; w++) {
                uint64_t cleared = (words[w] & exponents) ^ exponents;
                any |= (cleared - lanes) & ~cleared & (lanes << 15);
            }
            if (any != 0)
                break;   /* the loop below finds which one */
        }
    }
    for (; i < count; i++) {
        uint64_t bits = 0;
        memcpy(&bits, bytes + size * i, size);   /* little-endian host */
        if ((bits & exponent) == exponent)
            return i;
    }
    return count;
}

static ms_status unwritable(const char *key, ms_dtype dtype, uint64_t index, double value,
                            ms_error *err)
{
    if (isfinite(value))
        ms_error_set(err, MS_ERR_NAN_DETECTED, key,
                     "output tensor \"%s\" would hold %g at element %" PRIu64
                     ", past the largest %s", key, value, index, ms_dtype_name(dtype));
    else
        ms_error_set(err, MS_ERR_NAN_DETECTED, key,
                     "output tensor \"%s\" would hold %g at element %" PRIu64, key, value, index);
    ms_error_detail_add(err, "index", "%" PRIu64, index);
    ms_error_detail_add(err, "value", "%g", value);
    if (isfinite(value))
        ms_error_detail_add(err, "reason", "overflow");
    return MS_ERR_NAN_DETECTED;
}

static ms_status sink_part(tensor_sink *sink, uint64_t start, const double *values,
                           size_t count, ms_error *err)
{
    ms_status status = MS_OK;
    if (sink->a != NULL) {
        clip(sink, values, sink->buffers->values, start, count, err, &status);
        values = sink->buffers->values;
    }
    if (status != MS_OK)
        return status;
    ms_dtype dtype = sink->entry->dtype;
    size_t element_size = ms_dtype_size(dtype);
    ms_dtype_from_double(dtype, values, sink->buffers->bytes, count);
    size_t bad = first_unwritable(sink->buffers->bytes, count, dtype);
    if (bad < count)
        return unwritable(sink->entry->name, dtype, start + bad, values[bad], err);
    return ms_planned_writer_write(sink->context->writer, sink->position, start * element_size,
                                   sink->buffers->bytes, (uint64_t)count * element_size, err);
}

/* Methods may hand over any number of elements: they go out in chunks the
 * buffers hold. */
static ms_status sink_write(void *context, uint64_t start, const double *values, size_t count,
                            ms_error *err)
{
    tensor_sink *sink = context;
    for (size_t done = 0; done < count;) {
        size_t part = count - done < MS_MERGE_CHUNK_ELEMENTS ? count - done
                                                             : MS_MERGE_CHUNK_ELEMENTS;
        ms_status status = sink_part(sink, start + done, values + done, part, err);
        if (status != MS_OK)
            return status;
        done += part;
    }
    return MS_OK;
}

/* A float tensor as it is, in the entry's dtype, through the sink. */
static ms_status write_converted(const merge_tensor_context *context, size_t position,
                                 const merge_entry *entry, const ms_merge_operand *source,
                                 uint64_t count, merge_buffers *buffers, ms_error *err)
{
    tensor_sink sink = {context, position, entry, NULL, NULL, buffers};
    for (uint64_t start = 0; start < count;) {
        if (context->stop != NULL && atomic_load(context->stop))
            return ms_error_set(err, MS_ERR_CANCELLED, entry->name, "cancelled");
        size_t part = count - start < MS_MERGE_CHUNK_ELEMENTS ? (size_t)(count - start)
                                                              : MS_MERGE_CHUNK_ELEMENTS;
        ms_status status = ms_merge_operand_read(source, start, part, buffers->clip_a, err);
        if (status == MS_OK)
            status = sink_part(&sink, start, buffers->clip_a, part, err);
        if (status != MS_OK)
            return status;
        start += part;
    }
    return MS_OK;
}

/* Integer tensors are not checked or converted; the page-cache copy goes
 * straight from the mapping (a file cut short is EFAULT, reported). */
static ms_status write_raw(const merge_tensor_context *context, size_t position,
                           const merge_input *input, const ms_tensor_info *tensor, ms_error *err)
{
    const unsigned char *bytes = ms_safetensors_tensor_bytes(&input->file, tensor);
    ms_status status = ms_planned_writer_write(context->writer, position, 0, bytes,
                                               tensor->byte_count, err);
    ms_merge_release_pages(bytes, tensor->byte_count);
    return status;
}

static ms_status write_position_ids(const merge_tensor_context *context, size_t position,
                                    ms_error *err)
{
    unsigned char bytes[77 * 8];
    for (uint64_t i = 0; i < 77; i++)
        for (int b = 0; b < 8; b++)
            bytes[8 * i + (uint64_t)b] = (unsigned char)(i >> (8 * b));
    return ms_planned_writer_write(context->writer, position, 0, bytes, sizeof bytes, err);
}

void ms_merge_task_init(const merge_tensor_context *context, const merge_entry *entry,
                        ms_merge_task *task)
{
    const merge_input *inputs = context->inputs;
    memset(task, 0, sizeof *task);
    task->key = entry->name;
    task->a = operand_of(&inputs[0], entry->source);
    task->b = operand_of(&inputs[1], entry->b);
    if (entry->c != NULL)
        task->c = operand_of(&inputs[2], entry->c);
    task->count = entry->source->element_count;
    task->ndim = entry->ndim;
    task->shape = entry->shape;
    task->alpha = entry->alpha;
    task->beta = entry->beta;
    task->cancel = context->stop;
    task->rotate_cache = context->params->rotate_cache;
    task->rotate_counts = context->rotate_counts;
    if (context->rotate_digests != NULL)
        task->rotate_digests = &context->rotate_digests[entry - context->entries];
}

/* The rest of a tensor's pages the operand reads left mapped. */
static void release_operand(const ms_merge_operand *operand, uint64_t count)
{
    ms_merge_release_pages(operand->bytes, count * ms_dtype_size(operand->dtype));
}

static ms_status write_merged(const merge_tensor_context *context, size_t position,
                              const merge_entry *entry, merge_buffers *buffers,
                              bool *kept_a, ms_error *err)
{
    ms_merge_task task;
    ms_merge_task_init(context, entry, &task);
    tensor_sink sink = {context, position, entry, NULL, NULL, buffers};
    if (context->params->weights_clip) {
        sink.a = &task.a;
        sink.b = &task.b;
    }
    task.sink = (ms_merge_sink){sink_write, &sink};
    memcpy(task.chunk_buffers, buffers->method_chunks, sizeof task.chunk_buffers);
    task.large_block = buffers->large_block;
    task.large_block_doubles = buffers->large_block_doubles;
    task.threads = buffers->threads;
    ms_status status = context->params->method->merge(&task, err);
    release_operand(&task.a, task.count);
    release_operand(&task.b, task.count);
    if (task.c.bytes != NULL)
        release_operand(&task.c, task.count);
    if (status != MS_ERR_NAN_DETECTED || context->params->nan_policy != MS_NAN_POLICY_KEEP_A)
        return status;
    /* keep A's tensor in place of the whole merged one (what was written
     * of it is overwritten) */
    *kept_a = true;
    ms_error_clear(err);
    return write_converted(context, position, entry, &task.a, task.count, buffers, err);
}

ms_status ms_merge_tensor_write(const merge_tensor_context *context, size_t position,
                               const merge_entry *entry, merge_buffers *buffers, bool *kept_a,
                               ms_error *err)
{
    *kept_a = false;
    if (entry->action == MS_MERGE_ACTION_POSITION_IDS)
        return write_position_ids(context, position, err);
    if (entry->action == MS_MERGE_ACTION_MERGED)
        return write_merged(context, position, entry, buffers, kept_a, err);
    const merge_input *input = &context->inputs[entry->source_model];
    if (!ms_dtype_is_float(entry->source->dtype))
        return write_raw(context, position, input, entry->source, err);
    ms_merge_operand source = operand_of(input, entry->source);
    ms_status status = write_converted(context, position, entry, &source,
                                       entry->source->element_count, buffers, err);
    release_operand(&source, entry->source->element_count);
    return status;
}
