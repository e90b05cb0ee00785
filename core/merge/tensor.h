/* Private to the merge driver: writing one planned output tensor. */
#ifndef MS_MERGE_TENSOR_H
#define MS_MERGE_TENSOR_H

#include <stdatomic.h>
#include <stdbool.h>

#include "merge_internal.h"
#include "planned_writer.h"

/* What every worker shares, read-only while tensors are written. */
typedef struct merge_tensor_context {
    const ms_merge_params *params;
    const merge_input *inputs;
    ms_planned_writer *writer;
    const atomic_int *stop;           /* cancel or another tensor's failure */
    ms_merge_rotate_counts *rotate_counts;
    const merge_entry *entries;       /* the plan's, which rotate_digests parallels */
    ms_merge_input_digests *rotate_digests;   /* one per plan entry; NULL: none kept */
} merge_tensor_context;

/* A worker's chunk buffers, reused for every tensor it writes. */
typedef struct merge_buffers {
    double *values;
    double *clip_a, *clip_b;
    unsigned char *bytes;
    double *method_chunks[4];         /* lent to the methods (ms_merge_task) */
    /* the worker's large block (ms_merge_task), kept and freed by the driver */
    double *large_block;
    size_t large_block_doubles;
    int threads;                      /* for the tensor at hand (ms_merge_task) */
} merge_buffers;

ms_status ms_merge_buffers_init(merge_buffers *buffers, ms_error *err);
void ms_merge_buffers_free(merge_buffers *buffers);

/* The method's task for a merged entry (sink and all but the sink set). */
void ms_merge_task_init(const merge_tensor_context *context, const merge_entry *entry,
                        ms_merge_task *task);

/* Writes the entry at its file position.  *kept_a: nan_policy keep_a put
 * A's tensor in place of a merged one that held NaN or Inf. */
ms_status ms_merge_tensor_write(const merge_tensor_context *context, size_t position,
                                const merge_entry *entry, merge_buffers *buffers, bool *kept_a,
                                ms_error *err);

#endif
