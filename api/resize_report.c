/* ms_resize_report -> the job's "report" object (api.h). */
#include "api.h"
#include "json_text.h"

static json_t *module_to_json(const ms_resize_module_report *module)
{
    json_t *object = json_object();
    json_object_set_new(object, "name", ms_api_json_text(module->name));
    json_object_set_new(object, "conv", json_boolean(module->is_conv));
    json_object_set_new(object, "old_rank", json_integer(module->old_rank));
    json_object_set_new(object, "new_rank", json_integer(module->new_rank));
    json_object_set_new(object, "old_alpha", ms_api_json_number(module->old_alpha));
    json_object_set_new(object, "new_alpha", ms_api_json_number(module->new_alpha));
    json_object_set_new(object, "sum_retained", ms_api_json_number(module->sum_retained));
    json_object_set_new(object, "fro_retained", ms_api_json_number(module->fro_retained));
    json_object_set_new(object, "max_ratio", ms_api_json_number(module->max_ratio));
    return object;
}

json_t *ms_api_resize_report_to_json(const ms_resize_report *report)
{
    json_t *modules = json_array();
    for (size_t i = 0; i < report->module_count; i++)
        json_array_append_new(modules, module_to_json(&report->modules[i]));
    json_t *summary = json_object();
    json_object_set_new(summary, "module_count", json_integer((json_int_t)report->module_count));
    json_object_set_new(summary, "copied_tensor_count",
                        json_integer((json_int_t)report->copied_tensor_count));
    json_object_set_new(summary, "fro_retained_mean",
                        ms_api_json_number(report->fro_retained_mean));
    json_object_set_new(summary, "fro_retained_std",
                        ms_api_json_number(report->fro_retained_std));
    json_t *object = json_object();
    json_object_set_new(object, "modules", modules);
    json_object_set_new(object, "summary", summary);
    json_object_set_new(object, "model_hash",
                        report->model_hash[0] != '\0' ? ms_api_json_text(report->model_hash)
                                                      : json_null());
    return object;
}
