/* POST /v1/resize-lora body <-> ms_api_resize_request.  Strict: a typo in a
 * field name must not silently fall back to a default. */
#include "api.h"
#include "json_text.h"
#include "request_fields.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static ms_status read_int(const json_t *value, const char *field, int *out, ms_error *err)
{
    if (!json_is_integer(value))
        return ms_api_not_an_integer(err, field, value);
    json_int_t number = json_integer_value(value);
    if (number < INT_MIN || number > INT_MAX)
        return ms_api_field_error(err, field, "field '%s' is out of range (%s)", "does not fit an int");
    *out = (int)number;
    return MS_OK;
}

static ms_status read_model(const json_t *value, ms_api_resize_request *request,
                            ms_error *err)
{
    const char *text = NULL;
    ms_status status = ms_api_read_string(value, "model", &text, err);
    if (status != MS_OK)
        return status;
    if (text[0] == '\0')
        return ms_api_field_error(err, "model", "field '%s' %s", "must not be empty");
    request->model = strdup(text);
    return request->model != NULL ? MS_OK
                                  : ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
}

static ms_status read_output_name(const json_t *value, ms_api_resize_request *request,
                                  ms_error *err)
{
    if (json_is_null(value))
        return MS_OK;
    const char *text = NULL;
    ms_status status = ms_api_read_string(value, "output_name", &text, err);
    if (status != MS_OK)
        return status;
    request->output_name = strdup(text);
    return request->output_name != NULL
               ? MS_OK
               : ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
}

static ms_status read_method(const json_t *value, ms_resize_params *params, ms_error *err)
{
    if (json_is_null(value))
        return MS_OK;
    const char *text = NULL;
    ms_status status = ms_api_read_string(value, "dynamic_method", &text, err);
    if (status != MS_OK)
        return status;
    if (text[0] == '\0' || !ms_dynamic_method_from_name(text, &params->dynamic_method))
        return ms_api_field_error(err, "dynamic_method", "field '%s' must be %s",
                           "one of sv_ratio, sv_fro, sv_cumulative");
    return MS_OK;
}

static ms_status read_param(const json_t *value, ms_resize_params *params, ms_error *err)
{
    if (json_is_null(value))
        return MS_OK;
    if (!json_is_number(value))
        return ms_api_wrong_type(err, "dynamic_param", "a number");
    double number = json_number_value(value);
    if (!isfinite(number))
        return ms_api_field_error(err, "dynamic_param", "field '%s' %s", "must be finite");
    params->has_dynamic_param = true;
    params->dynamic_param = number;
    return MS_OK;
}

static ms_status read_precision(const json_t *value, ms_resize_params *params, ms_error *err)
{
    if (json_is_null(value))
        return MS_OK;
    const char *text = NULL;
    ms_status status = ms_api_read_string(value, "save_precision", &text, err);
    if (status != MS_OK)
        return status;
    if (!ms_save_precision_from_name(text, &params->save_precision) ||
        params->save_precision == MS_SAVE_PRECISION_INPUT)
        return ms_api_field_error(err, "save_precision", "field '%s' must be %s",
                           "one of float, fp16, bf16");
    return MS_OK;
}

static ms_status read_field(const char *field, const json_t *value,
                            ms_api_resize_request *request, bool *has_conv_rank,
                            ms_error *err)
{
    ms_resize_params *params = &request->params;
    if (strcmp(field, "model") == 0)
        return read_model(value, request, err);
    if (strcmp(field, "output_name") == 0)
        return read_output_name(value, request, err);
    if (strcmp(field, "new_rank") == 0)
        return read_int(value, field, &params->new_rank, err);
    if (strcmp(field, "new_conv_rank") == 0) {
        *has_conv_rank = true;
        return read_int(value, field, &params->new_conv_rank, err);
    }
    if (strcmp(field, "dynamic_method") == 0)
        return read_method(value, params, err);
    if (strcmp(field, "dynamic_param") == 0)
        return read_param(value, params, err);
    if (strcmp(field, "save_precision") == 0)
        return read_precision(value, params, err);
    return ms_api_field_error(err, field, "unknown field '%s'%s", "");
}

/* Ranges the core does not check: both caps are at least 1 when sent. */
static ms_status check_ranks(const ms_resize_params *params, bool has_conv_rank, ms_error *err)
{
    if (params->new_rank < 1)
        return ms_api_field_error(err, "new_rank", "field '%s' %s", "must be at least 1");
    if (has_conv_rank && params->new_conv_rank < 1)
        return ms_api_field_error(err, "new_conv_rank", "field '%s' %s", "must be at least 1");
    return MS_OK;
}

ms_status ms_api_resize_request_from_json(const json_t *body, ms_api_resize_request *request,
                                          ms_error *err)
{
    memset(request, 0, sizeof *request);
    ms_resize_params_init(&request->params);
    ms_status status = MS_OK;
    bool has_conv_rank = false;
    if (!json_is_object(body)) {
        status = ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL,
                              "the request body must be a JSON object");
        ms_error_detail_add(err, "field", "(body)");
        goto done;
    }
    const char *field;
    json_t *value;
    json_object_foreach((json_t *)body, field, value) {
        status = read_field(field, value, request, &has_conv_rank, err);
        if (status != MS_OK)
            goto done;
    }
    if (request->model == NULL) {
        status = ms_api_field_error(err, "model", "field '%s' %s", "is required");
        goto done;
    }
    status = check_ranks(&request->params, has_conv_rank, err);
    if (status != MS_OK)
        goto done;
    if (!has_conv_rank)
        request->params.new_conv_rank = request->params.new_rank;
    status = ms_resize_params_validate(&request->params, err);
done:
    if (status != MS_OK)
        ms_api_resize_request_free(request);
    return status;
}

void ms_api_resize_request_free(ms_api_resize_request *request)
{
    if (request == NULL)
        return;
    free(request->model);
    free(request->output_name);
    request->model = NULL;
    request->output_name = NULL;
}

json_t *ms_api_resize_request_to_json(const ms_api_resize_request *request)
{
    const ms_resize_params *params = &request->params;
    int conv_rank = params->new_conv_rank > 0 ? params->new_conv_rank : params->new_rank;
    const char *method = ms_dynamic_method_name(params->dynamic_method);
    const char *precision = ms_save_precision_name(params->save_precision);
    json_t *object = json_object();
    json_object_set_new(object, "model", ms_api_json_text(request->model));
    json_object_set_new(object, "new_rank", json_integer(params->new_rank));
    json_object_set_new(object, "new_conv_rank", json_integer(conv_rank));
    json_object_set_new(object, "dynamic_method", method ? json_string(method) : json_null());
    json_object_set_new(object, "dynamic_param",
                        params->has_dynamic_param ? ms_api_json_number(params->dynamic_param)
                                                  : json_null());
    json_object_set_new(object, "save_precision",
                        precision ? json_string(precision) : json_null());
    json_object_set_new(object, "output_name", ms_api_json_text(request->output_name));
    return object;
}
