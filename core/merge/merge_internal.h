/* Private to the merge driver: the inputs, the plan of every output tensor,
 * and the pieces that build them. */
#ifndef MS_MERGE_INTERNAL_H
#define MS_MERGE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/format/safetensors.h"
#include "merge.h"
#include "planned_writer.h"

enum { MS_MERGE_MAX_MODELS = 3 };

/* One key of an input under its canonical name (old text-encoder names
 * renamed, algorithms.md section 3). */
typedef struct merge_key {
    char *name;                       /* canonical; owned */
    const ms_tensor_info *tensor;     /* in the input's file */
} merge_key;

typedef struct merge_input {
    const char *path;
    ms_safetensors file;
    bool open;
    size_t key_count;
    merge_key *keys;                  /* sorted by canonical name */
} merge_input;

/* What the output holds under one name, and where it comes from. */
typedef struct merge_entry {
    const char *name;                 /* canonical name (the input's merge_key owns it) */
    ms_merge_action action;
    const ms_tensor_info *source;     /* copied or taken tensor; A's when merged */
    const ms_tensor_info *b, *c;      /* merged: B's and C's (c NULL for two models) */
    int source_model;                 /* 0 = A, 1 = B: the file source lies in */
    ms_dtype dtype;                   /* in the output */
    int ndim;
    int64_t shape[MS_MAX_DIMS];
    double alpha, beta;
    int alpha_block, beta_block;      /* -1: the base value */
} merge_entry;

typedef struct merge_plan {
    size_t count;
    merge_entry *entries;
} merge_plan;

/* Opens path and lists its keys under canonical names; duplicate_key when a
 * file spells one text-encoder key both ways. */
ms_status ms_merge_input_open(merge_input *input, const char *path, ms_error *err);
void ms_merge_input_close(merge_input *input);
const merge_key *ms_merge_input_find(const merge_input *input, const char *canonical_name);

/* The key rules of algorithms.md section 3, in their order, over A's keys
 * then the keys only B has.  model_count is the method's. */
ms_status ms_merge_plan_build(const merge_input *inputs, int model_count,
                              const ms_merge_params *params, ms_merge_architecture arch,
                              merge_plan *plan, ms_error *err);
void ms_merge_plan_free(merge_plan *plan);

/* The provenance string stored under "merge_recipe" (malloced JSON). */
char *ms_merge_recipe_text(const ms_merge_params *params, const merge_input *inputs,
                           int model_count);

/* Counts, NaN keys (kept_a by file position) and block uses of a
 * completed plan. */
ms_status ms_merge_report_fill(ms_merge_report *report, ms_merge_architecture arch,
                               const ms_merge_params *params, const merge_plan *plan,
                               const ms_planned_writer *writer, const bool *kept_a,
                               ms_error *err);

/* The driver's rule for starting a tensor that reserves `reserved` bytes
 * of scratch (merge.c): within the budget, or, whatever its size, when
 * nothing else holds memory: no tensor running and no other worker
 * keeping a large block.  (The blocks once escaped it: a worker between
 * two tensors still held its 303 MB block while SDXL's 506 MB token
 * embedding started, a peak of 816 MB.) */
static inline bool ms_merge_may_start(uint64_t budget, uint64_t in_flight, uint64_t reserved,
                                      size_t tensors_running, int blocks_kept_by_others)
{
    if (in_flight + reserved <= budget)
        return true;
    return tensors_running == 0 && blocks_kept_by_others == 0;
}

/* The cores a tensor's task may use (ms_merge_task.threads, and OpenBLAS's
 * threads while it runs): every core for a tensor past the budget, which
 * runs alone; else an equal share of the cores among the workers, more
 * than one only when the file has fewer tensors than there are cores (a
 * file of one tensor: one worker, and every core for it). */
static inline int ms_merge_tensor_threads(int cores, int workers, bool past_budget)
{
    int share = past_budget || workers < 1 ? cores : cores / workers;
    return share > 1 ? share : 1;
}

#define MS_MERGE_POSITION_IDS_KEY "cond_stage_model.transformer.text_model.embeddings.position_ids"
#define MS_MERGE_RECIPE_METADATA "merge_recipe"

#endif
