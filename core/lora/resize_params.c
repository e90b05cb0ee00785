/* Names and validation of the resize parameters (resize.h). */
#include "resize.h"

#include <math.h>
#include <string.h>

static const char *const method_names[] = {
    [MS_DYNAMIC_NONE] = NULL,
    [MS_DYNAMIC_SV_RATIO] = "sv_ratio",
    [MS_DYNAMIC_SV_CUMULATIVE] = "sv_cumulative",
    [MS_DYNAMIC_SV_FRO] = "sv_fro",
};

static const char *const precision_names[] = {
    [MS_SAVE_PRECISION_INPUT] = NULL,
    [MS_SAVE_PRECISION_FLOAT] = "float",
    [MS_SAVE_PRECISION_FP16] = "fp16",
    [MS_SAVE_PRECISION_BF16] = "bf16",
};

#define COUNT_OF(array) (sizeof(array) / sizeof((array)[0]))

bool ms_dynamic_method_from_name(const char *name, ms_dynamic_method *method)
{
    if (name == NULL || name[0] == '\0') {
        *method = MS_DYNAMIC_NONE;
        return true;
    }
    for (size_t i = 0; i < COUNT_OF(method_names); i++) {
        if (method_names[i] != NULL && strcmp(method_names[i], name) == 0) {
            *method = (ms_dynamic_method)i;
            return true;
        }
    }
    return false;
}

const char *ms_dynamic_method_name(ms_dynamic_method method)
{
    if ((unsigned)method >= COUNT_OF(method_names))
        return NULL;
    return method_names[method];
}

/* "input" is accepted as the explicit spelling of the default, since the API
 * documents it as one of the choices; NULL/"" mean the default as well. */
bool ms_save_precision_from_name(const char *name, ms_save_precision *precision)
{
    if (name == NULL || name[0] == '\0' || strcmp(name, "input") == 0) {
        *precision = MS_SAVE_PRECISION_INPUT;
        return true;
    }
    for (size_t i = 0; i < COUNT_OF(precision_names); i++) {
        if (precision_names[i] != NULL && strcmp(precision_names[i], name) == 0) {
            *precision = (ms_save_precision)i;
            return true;
        }
    }
    return false;
}

const char *ms_save_precision_name(ms_save_precision precision)
{
    if ((unsigned)precision >= COUNT_OF(precision_names))
        return NULL;
    return precision_names[precision];
}

void ms_resize_params_init(ms_resize_params *params)
{
    memset(params, 0, sizeof *params);
    params->new_rank = 4;
    params->new_conv_rank = 0;
    params->dynamic_method = MS_DYNAMIC_NONE;
    params->has_dynamic_param = false;
    params->dynamic_param = 0.0;
    params->save_precision = MS_SAVE_PRECISION_INPUT;
    params->threads = 0;
}

static ms_status invalid(ms_error *err, const char *field, const char *message)
{
    ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL, "%s: %s", field, message);
    ms_error_detail_add(err, "field", "%s", field);
    return MS_ERR_INVALID_PARAMETER;
}

static ms_status validate_dynamic(const ms_resize_params *params, ms_error *err)
{
    bool has_method = params->dynamic_method != MS_DYNAMIC_NONE;
    if (has_method && !params->has_dynamic_param)
        return invalid(err, "dynamic_param", "a dynamic method needs dynamic_param");
    if (!has_method && params->has_dynamic_param)
        return invalid(err, "dynamic_method", "dynamic_param needs a dynamic_method");
    if (!has_method)
        return MS_OK;
    double p = params->dynamic_param;
    if (!isfinite(p))
        return invalid(err, "dynamic_param", "must be finite");
    switch (params->dynamic_method) {
    case MS_DYNAMIC_SV_RATIO:
        if (!(p > 1.0))
            return invalid(err, "dynamic_param", "sv_ratio needs a ratio greater than 1");
        break;
    case MS_DYNAMIC_SV_CUMULATIVE:
    case MS_DYNAMIC_SV_FRO:
        if (!(p > 0.0 && p <= 1.0))
            return invalid(err, "dynamic_param", "sv_cumulative and sv_fro need a value in (0, 1]");
        break;
    default:
        return invalid(err, "dynamic_method", "unknown method");
    }
    return MS_OK;
}

ms_status ms_resize_params_validate(const ms_resize_params *params, ms_error *err)
{
    if (params->new_rank < 1)
        return invalid(err, "new_rank", "must be at least 1");
    if (params->new_conv_rank < 0)
        return invalid(err, "new_conv_rank", "must be at least 0 (0 means new_rank)");
    if ((unsigned)params->save_precision >= COUNT_OF(precision_names))
        return invalid(err, "save_precision", "unknown precision");
    if (params->threads < 0)
        return invalid(err, "threads", "must be at least 0 (0 means online cores)");
    return validate_dynamic(params, err);
}
