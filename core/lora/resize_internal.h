/* Pieces of ms_resize_file shared between the numerics files (not part of
 * the resize.h contract). */
#ifndef MS_RESIZE_INTERNAL_H
#define MS_RESIZE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "lora.h"
#include "core/format/python_float.h"
#include "resize.h"
#include "core/format/safetensors.h"
#include "core/format/writer.h"

/* Sets the output metadata as kohya does: the input's entries,
 * ss_training_comment (from the largest input rank), ss_network_dim,
 * ss_network_alpha (the new alpha of the last module kohya processes) and
 * the sshs_model_hash and sshs_legacy_hash requests.  reports holds every
 * module's result, in modules' order. */
ms_status ms_resize_set_metadata(ms_writer *writer, const ms_safetensors *input,
                                 const ms_resize_params *params,
                                 const ms_lora_module_list *modules,
                                 const ms_resize_module_report *reports, ms_error *err);

/* The index of the module kohya processes last (modules->count > 0). */
size_t ms_resize_last_processed(const ms_lora_module_list *modules);

/* Resizes one module and adds its three output tensors to the writer.
 * report->name is allocated (free it with the report).  *zero_spectrum says
 * whether every singular value was exactly zero (kohya's NaN retention). */
ms_status ms_resize_module(const ms_safetensors *input, const ms_lora_module *module,
                           const ms_resize_params *params, ms_writer *writer,
                           ms_resize_module_report *report, bool *zero_spectrum,
                           ms_error *err);

/* The cap for a module: new_conv_rank (or new_rank when 0) for 4-D ones. */
int ms_resize_cap(const ms_resize_params *params, const ms_lora_module *module);

#endif
