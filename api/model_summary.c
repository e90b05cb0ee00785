/* ms_model_summary -> {"kind", "architecture", "lora"?} for inspect --json
 * and GET /v1/models. */
#include "api.h"

json_t *ms_api_model_summary_to_json(const ms_model_summary *summary)
{
    json_t *object = json_object();
    json_object_set_new(object, "kind", json_string(ms_model_kind_name(summary->kind)));
    json_object_set_new(object, "architecture",
                        json_string(ms_architecture_name(summary->architecture)));
    if (summary->kind != MS_MODEL_LORA)
        return object;
    json_t *lora = json_object();
    json_object_set_new(lora, "spelling", json_string(ms_lora_spelling_name(summary->spelling)));
    json_object_set_new(lora, "modules", json_integer((json_int_t)summary->module_count));
    json_object_set_new(lora, "conv_modules",
                        json_integer((json_int_t)summary->conv_module_count));
    json_object_set_new(lora, "rank_min", json_integer(summary->rank_min));
    json_object_set_new(lora, "rank_max", json_integer(summary->rank_max));
    json_object_set_new(object, "lora", lora);
    return object;
}
