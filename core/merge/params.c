/* Merge parameters: defaults (the web UI extension's) and the checks that
 * need no model. */
#include "merge.h"

#include <math.h>
#include <string.h>

static const char *const nan_policy_names[] = {
    [MS_NAN_POLICY_FAIL] = "fail",
    [MS_NAN_POLICY_KEEP_A] = "keep_a",
};

bool ms_nan_policy_from_name(const char *name, ms_nan_policy *policy)
{
    for (int i = 0; name != NULL && i <= MS_NAN_POLICY_KEEP_A; i++) {
        if (strcmp(name, nan_policy_names[i]) == 0) {
            *policy = (ms_nan_policy)i;
            return true;
        }
    }
    return false;
}

const char *ms_nan_policy_name(ms_nan_policy policy)
{
    return policy == MS_NAN_POLICY_KEEP_A ? nan_policy_names[MS_NAN_POLICY_KEEP_A]
                                          : nan_policy_names[MS_NAN_POLICY_FAIL];
}

void ms_merge_params_init(ms_merge_params *params)
{
    memset(params, 0, sizeof *params);
    params->base_alpha = 0.5;
    params->base_beta = 0.5;
    params->precision = 16;
    params->nan_policy = MS_NAN_POLICY_FAIL;
}

static ms_status field_error(ms_error *err, const char *field, const char *message)
{
    ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL, "%s: %s", field, message);
    ms_error_detail_add(err, "field", "%s", field);
    return MS_ERR_INVALID_PARAMETER;
}

ms_status ms_merge_params_validate(const ms_merge_params *params, ms_error *err)
{
    if (params->method == NULL)
        return field_error(err, "merge_method", "no merge method given");
    if (params->precision != 16 && params->precision != 32)
        return field_error(err, "precision", "must be 16 or 32");
    if (!isfinite(params->base_alpha))
        return field_error(err, "base_alpha", "must be a finite number");
    if (!isfinite(params->base_beta))
        return field_error(err, "base_beta", "must be a finite number");
    if (params->nan_policy != MS_NAN_POLICY_FAIL && params->nan_policy != MS_NAN_POLICY_KEEP_A)
        return field_error(err, "nan_policy", "must be fail or keep_a");
    if (params->threads < 0)
        return field_error(err, "threads", "must not be negative");
    return MS_OK;
}
