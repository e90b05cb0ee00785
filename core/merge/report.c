/* What a merge did, for the job's report and `mergesvd merge --json`. */
#include "merge_internal.h"

#include <stdlib.h>
#include <string.h>

static int compare_uses(const void *left, const void *right)
{
    const ms_merge_block_use *x = left, *y = right;
    return (x->block > y->block) - (x->block < y->block);
}

/* Merged keys grouped by the block that set their weights: the block of
 * alpha's form, or beta's when alpha has none. */
static ms_status collect_block_uses(ms_merge_report *report, const ms_merge_params *params,
                                    const merge_plan *plan, ms_error *err)
{
    bool by_alpha = params->alpha.form != MS_BLOCKS_NONE || params->beta.form == MS_BLOCKS_NONE;
    report->block_form = by_alpha ? params->alpha.form : params->beta.form;
    report->block_uses = calloc(MS_BLOCK_NAMED_COUNT + 1, sizeof *report->block_uses);
    if (report->block_uses == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    for (size_t i = 0; i < plan->count; i++) {
        const merge_entry *entry = &plan->entries[i];
        if (entry->action != MS_MERGE_ACTION_MERGED)
            continue;
        int block = by_alpha ? entry->alpha_block : entry->beta_block;
        size_t slot = 0;
        while (slot < report->block_use_count && report->block_uses[slot].block != block)
            slot++;
        if (slot == report->block_use_count) {
            report->block_uses[slot] = (ms_merge_block_use){block, entry->alpha, entry->beta, 0};
            report->block_use_count++;
        }
        report->block_uses[slot].key_count++;
    }
    qsort(report->block_uses, report->block_use_count, sizeof *report->block_uses, compare_uses);
    return MS_OK;
}

static ms_status collect_nan_keys(ms_merge_report *report, const merge_plan *plan,
                                  const ms_planned_writer *writer, const bool *kept_a,
                                  ms_error *err)
{
    report->nan_keys = calloc(plan->count + 1, sizeof *report->nan_keys);
    if (report->nan_keys == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    for (size_t position = 0; position < plan->count; position++) {
        if (!kept_a[position])
            continue;
        const merge_entry *entry = &plan->entries[ms_planned_writer_tensor_at(writer, position)];
        char *name = strdup(entry->name);
        if (name == NULL)
            return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
        report->nan_keys[report->nan_key_count++] = name;
    }
    return MS_OK;
}

ms_status ms_merge_report_fill(ms_merge_report *report, ms_merge_architecture arch,
                               const ms_merge_params *params, const merge_plan *plan,
                               const ms_planned_writer *writer, const bool *kept_a,
                               ms_error *err)
{
    report->architecture = arch;
    for (size_t i = 0; i < plan->count; i++) {
        switch (plan->entries[i].action) {
        case MS_MERGE_ACTION_MERGED: report->merged_count++; break;
        case MS_MERGE_ACTION_TAKEN_FROM_B: report->taken_from_b_count++; break;
        default: report->copied_from_a_count++; break;
        }
    }
    ms_status status = collect_nan_keys(report, plan, writer, kept_a, err);
    if (status == MS_OK)
        status = collect_block_uses(report, params, plan, err);
    /* a key kept from A was planned as merged; the NaN list says which */
    report->merged_count -= report->nan_key_count;
    return status;
}

void ms_merge_report_free(ms_merge_report *report)
{
    if (report == NULL)
        return;
    for (size_t i = 0; i < report->nan_key_count; i++)
        free(report->nan_keys[i]);
    free(report->nan_keys);
    free(report->block_uses);
    memset(report, 0, sizeof *report);
}
