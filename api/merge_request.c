/* POST /v1/merge-models and POST /bbwm/merge-models bodies ->
 * ms_api_merge_request (merge_request.h).  One table of fields serves both
 * bodies; each field says which bodies know it, and the lenient body (the
 * web UI extension's) ignores the fields it does not know. */
#include "merge_request.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json_text.h"
#include "request_fields.h"

enum { BODY_V1 = 1, BODY_BBWM = 2, BODY_BOTH = BODY_V1 | BODY_BBWM };

typedef struct body_reader {
    ms_api_merge_request *request;
    unsigned body;      /* BODY_V1 or BODY_BBWM */
    bool lenient;       /* BODY_BBWM: 0/1 for bools, integral reals for integers */
} body_reader;

static ms_status out_of_memory(ms_error *err)
{
    return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
}

/* ---- value readers ---- */

/* A non-empty string, copied into *out (which must be NULL). */
static ms_status read_path(const json_t *value, const char *field, char **out, ms_error *err)
{
    const char *text = NULL;
    ms_status status = ms_api_read_string(value, field, &text, err);
    if (status != MS_OK)
        return status;
    if (text[0] == '\0')
        return ms_api_field_error(err, field, "field '%s' %s", "must not be empty");
    *out = strdup(text);
    return *out != NULL ? MS_OK : out_of_memory(err);
}

/* jansson holds no NaN or infinity (json_real refuses them and the parser
 * refuses 1e999), so every number read here is finite. */
static ms_status read_number(const json_t *value, const char *field, double *out,
                             ms_error *err)
{
    if (!json_is_number(value))
        return ms_api_wrong_type(err, field, "a number");
    *out = json_number_value(value);
    return MS_OK;
}

static ms_status read_bool(const body_reader *reader, const json_t *value, const char *field,
                           bool *out, ms_error *err)
{
    if (json_is_boolean(value)) {
        *out = json_is_true(value);
        return MS_OK;
    }
    if (reader->lenient && json_is_integer(value) &&
        (json_integer_value(value) == 0 || json_integer_value(value) == 1)) {
        *out = json_integer_value(value) == 1;
        return MS_OK;
    }
    return ms_api_wrong_type(err, field, reader->lenient ? "true, false, 0 or 1" : "true or false");
}

/* An integer; the lenient body also takes an integral real (16.0). */
static ms_status read_integer(const body_reader *reader, const json_t *value,
                              const char *field, json_int_t *out, ms_error *err)
{
    if (json_is_integer(value)) {
        *out = json_integer_value(value);
        return MS_OK;
    }
    if (reader->lenient && json_is_real(value)) {
        double number = json_real_value(value);
        if (number == floor(number) && fabs(number) < 1e15) {
            *out = (json_int_t)number;
            return MS_OK;
        }
    }
    return ms_api_not_an_integer(err, field, value);
}

/* ---- block weights: null, [], a list of 25 or 19, or {name: value} ---- */

static ms_status read_block_list(const json_t *value, const char *field,
                                 ms_block_weights *weights, ms_error *err)
{
    size_t length = json_array_size(value);
    if (length == 0)
        return MS_OK;
    if (length != 25 && length != 19) {
        ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL,
                     "field '%s' must list 25 block values (19 for SDXL), not %zu", field,
                     length);
        ms_error_detail_add(err, "field", "%s", field);
        ms_error_detail_add(err, "length", "%zu", length);
        ms_error_detail_add(err, "accepted", "%s", "25 or 19");
        return MS_ERR_INVALID_PARAMETER;
    }
    for (size_t i = 0; i < length; i++) {
        json_t *item = json_array_get(value, i);
        if (!json_is_number(item)) {
            ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL,
                         "field '%s' must hold numbers only; position %zu is not one", field, i);
            ms_error_detail_add(err, "field", "%s", field);
            ms_error_detail_add(err, "position", "%zu", i);
            return MS_ERR_INVALID_PARAMETER;
        }
        weights->values[i] = json_number_value(item);
    }
    weights->form = MS_BLOCKS_LIST;
    weights->count = length;
    return MS_OK;
}

static ms_status named_block_error(ms_error *err, const char *field, const char *name,
                                   const char *problem)
{
    ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL, "field '%s': block '%s' %s", field, name,
                 problem);
    ms_error_detail_add(err, "field", "%s", field);
    ms_error_detail_add(err, "block", "%s", name);
    return MS_ERR_INVALID_PARAMETER;
}

static ms_status read_block_object(const json_t *value, const char *field,
                                   ms_block_weights *weights, ms_error *err)
{
    if (json_object_size(value) == 0)
        return MS_OK;
    const char *name;
    json_t *item;
    json_object_foreach((json_t *)value, name, item) {
        int index;
        if (!ms_block_name_index(name, &index))
            return named_block_error(err, field, name,
                                     "is not a block name (BASE, IN00.., M00, OUT00.., VAE)");
        if (weights->present[index])   /* "IN00" and "in00" */
            return named_block_error(err, field, name, "is given twice");
        if (!json_is_number(item))
            return named_block_error(err, field, name, "must have a number");
        weights->values[index] = json_number_value(item);
        weights->present[index] = true;
    }
    weights->form = MS_BLOCKS_NAMED;
    return MS_OK;
}

static ms_status read_blocks(const json_t *value, const char *field, ms_block_weights *weights,
                             ms_error *err)
{
    memset(weights, 0, sizeof *weights);
    weights->form = MS_BLOCKS_NONE;
    if (json_is_null(value))
        return MS_OK;
    if (json_is_array(value))
        return read_block_list(value, field, weights, err);
    if (json_is_object(value))
        return read_block_object(value, field, weights, err);
    return ms_api_wrong_type(err, field,
                      "a list of 25 (or 19) numbers or an object keyed by block name");
}

/* ---- fields ---- */

static ms_status read_method(body_reader *reader, const char *field, const json_t *value,
                             ms_error *err)
{
    const char *name = NULL;
    ms_status status = ms_api_read_string(value, field, &name, err);
    if (status != MS_OK)
        return status;
    reader->request->params.method = ms_merge_method_find(name);
    if (reader->request->params.method != NULL)
        return MS_OK;
    size_t count = 0;
    const ms_merge_method *methods = ms_merge_methods(&count);
    char accepted[256] = "";
    for (size_t i = 0; i < count; i++) {
        size_t used = strlen(accepted);
        snprintf(accepted + used, sizeof accepted - used, "%s%s", i > 0 ? ", " : "",
                 methods[i].name);
    }
    ms_api_field_error(err, field, "field '%s' names no known merge method (one of %s)", accepted);
    ms_error_detail_add(err, "accepted", "%s", accepted);
    return MS_ERR_INVALID_PARAMETER;
}

static ms_status read_model(body_reader *reader, const char *field, const json_t *value,
                            ms_error *err)
{
    ms_api_merge_request *request = reader->request;
    char **target = strcmp(field, "model_a") == 0   ? &request->model_a
                    : strcmp(field, "model_b") == 0 ? &request->model_b
                                                    : &request->model_c;
    if (target == &request->model_c && json_is_null(value))
        return MS_OK;
    /* the extension leaves model_c "" when it has none (sd-meh: `if model_c`) */
    if (target == &request->model_c && reader->lenient && json_is_string(value) &&
        json_string_length(value) == 0)
        return MS_OK;
    return read_path(value, field, target, err);
}

static ms_status read_base(body_reader *reader, const char *field, const json_t *value,
                           ms_error *err)
{
    ms_merge_params *params = &reader->request->params;
    if (json_is_null(value))
        return MS_OK;
    return read_number(value, field,
                       strcmp(field, "base_alpha") == 0 ? &params->base_alpha
                                                        : &params->base_beta,
                       err);
}

static ms_status read_weights(body_reader *reader, const char *field, const json_t *value,
                              ms_error *err)
{
    ms_merge_params *params = &reader->request->params;
    return read_blocks(value, field, strcmp(field, "alpha") == 0 ? &params->alpha : &params->beta,
                       err);
}

static ms_status read_precision(body_reader *reader, const char *field, const json_t *value,
                                ms_error *err)
{
    if (json_is_null(value))
        return MS_OK;
    json_int_t precision = 0;
    ms_status status = read_integer(reader, value, field, &precision, err);
    if (status != MS_OK)
        return status;
    if (precision != 16 && precision != 32)
        return ms_api_field_error(err, field, "field '%s' must be %s", "16 or 32");
    reader->request->params.precision = (int)precision;
    return MS_OK;
}

static ms_status read_flag(body_reader *reader, const char *field, const json_t *value,
                           ms_error *err)
{
    ms_api_merge_request *request = reader->request;
    bool *target = strcmp(field, "weights_clip") == 0      ? &request->params.weights_clip
                   : strcmp(field, "prune") == 0           ? &request->params.prune
                   : strcmp(field, "load_into_webui") == 0 ? &request->load_into_webui
                                                           : &request->unload_before;
    if (json_is_null(value))
        return MS_OK;
    return read_bool(reader, value, field, target, err);
}

static ms_status read_nan_policy(body_reader *reader, const char *field, const json_t *value,
                                 ms_error *err)
{
    if (json_is_null(value))
        return MS_OK;
    const char *name = NULL;
    ms_status status = ms_api_read_string(value, field, &name, err);
    if (status != MS_OK)
        return status;
    if (!ms_nan_policy_from_name(name, &reader->request->params.nan_policy))
        return ms_api_field_error(err, field, "field '%s' must be %s", "fail or keep_a");
    return MS_OK;
}

static ms_status read_output_name(body_reader *reader, const char *field,
                                  const json_t *value, ms_error *err)
{
    if (json_is_null(value))
        return MS_OK;
    const char *text = NULL;
    ms_status status = ms_api_read_string(value, field, &text, err);
    if (status != MS_OK)
        return status;
    reader->request->output_name = strdup(text);
    return reader->request->output_name != NULL ? MS_OK : out_of_memory(err);
}

static bool has_suffix(const char *text, const char *suffix)
{
    size_t length = strlen(text), suffix_length = strlen(suffix);
    return length >= suffix_length &&
           strcasecmp(text + length - suffix_length, suffix) == 0;
}

static ms_status read_destination(body_reader *reader, const char *field,
                                  const json_t *value, ms_error *err)
{
    if (json_is_null(value))
        return MS_OK;
    const char *text = NULL;
    ms_status status = ms_api_read_string(value, field, &text, err);
    if (status != MS_OK)
        return status;
    if (strcmp(text, "memory") == 0) {
        /* the web UI's "make it the loaded model": the service hands the
         * merge to a web UI, when one is attached (merge_job.c checks) */
        reader->request->load_into_webui = true;
        return MS_OK;
    }
    /* the extension saves any other suffix with torch.save (a pickle) */
    if (has_suffix(text, ".ckpt") || has_suffix(text, ".pt") || has_suffix(text, ".pth"))
        return ms_api_field_error(err, field, "field '%s' %s", "must name a .safetensors file: "
                                                        "this service writes safetensors only");
    return read_path(value, field, &reader->request->destination, err);
}

static ms_status read_re_basin(body_reader *reader, const char *field, const json_t *value,
                               ms_error *err)
{
    bool re_basin = false;
    if (json_is_null(value))
        return MS_OK;
    ms_status status = read_bool(reader, value, field, &re_basin, err);
    if (status != MS_OK || !re_basin)
        return status;
    ms_error_set(err, MS_ERR_UNSUPPORTED_OPTION, NULL,
                 "re_basin (git re-basin) is not offered by this service");
    ms_error_detail_add(err, "field", "%s", field);
    return MS_ERR_UNSUPPORTED_OPTION;
}

/* Fields the extension sends for its own runtime (devices, threads per
 * merge, re-basin iterations): checked for type, not used. */
static ms_status read_ignored_integer(body_reader *reader, const char *field,
                                      const json_t *value, ms_error *err)
{
    json_int_t unused;
    return json_is_null(value) ? MS_OK : read_integer(reader, value, field, &unused, err);
}

static ms_status read_ignored_string(body_reader *reader, const char *field,
                                     const json_t *value, ms_error *err)
{
    (void)reader;
    const char *unused;
    return json_is_null(value) ? MS_OK : ms_api_read_string(value, field, &unused, err);
}

typedef ms_status (*field_fn)(body_reader *reader, const char *field, const json_t *value,
                              ms_error *err);

static const struct {
    const char *name;
    field_fn read;
    unsigned bodies;
} merge_fields[] = {
    {"model_a", read_model, BODY_BOTH},
    {"model_b", read_model, BODY_BOTH},
    {"model_c", read_model, BODY_BOTH},
    {"merge_method", read_method, BODY_BOTH},
    {"base_alpha", read_base, BODY_BOTH},
    {"base_beta", read_base, BODY_BOTH},
    {"alpha", read_weights, BODY_BOTH},
    {"beta", read_weights, BODY_BOTH},
    {"precision", read_precision, BODY_BOTH},
    {"weights_clip", read_flag, BODY_BOTH},
    {"prune", read_flag, BODY_BOTH},
    {"nan_policy", read_nan_policy, BODY_V1},
    {"output_name", read_output_name, BODY_V1},
    {"load_into_webui", read_flag, BODY_V1},
    {"destination", read_destination, BODY_BBWM},
    {"unload_before", read_flag, BODY_BBWM},
    {"re_basin", read_re_basin, BODY_BBWM},
    {"re_basin_iterations", read_ignored_integer, BODY_BBWM},
    {"threads", read_ignored_integer, BODY_BBWM},
    {"device", read_ignored_string, BODY_BBWM},
    {"work_device", read_ignored_string, BODY_BBWM},
};

static ms_status read_field(body_reader *reader, const char *field, const json_t *value,
                            ms_error *err)
{
    for (size_t i = 0; i < sizeof merge_fields / sizeof merge_fields[0]; i++) {
        if (strcmp(field, merge_fields[i].name) == 0 && (merge_fields[i].bodies & reader->body))
            return merge_fields[i].read(reader, field, value, err);
    }
    if (reader->lenient)
        return MS_OK;   /* forks send cache, sdxl, save_iterations... */
    return ms_api_field_error(err, field, "unknown field '%s'%s", "");
}

/* What only the whole body can tell: required fields, and model_c against
 * the method's model count. */
static ms_status check_complete(const body_reader *reader, ms_error *err)
{
    ms_api_merge_request *request = reader->request;
    if (request->model_a == NULL)
        return ms_api_field_error(err, "model_a", "field '%s' %s", "is required");
    if (request->model_b == NULL)
        return ms_api_field_error(err, "model_b", "field '%s' %s", "is required");
    const ms_merge_method *method = request->params.method;
    if (method == NULL)
        return ms_api_field_error(err, "merge_method", "field '%s' %s", "is required");
    if (method->model_count == 3 && request->model_c == NULL)
        return ms_api_field_error(err, "model_c", "field '%s' is required by merge_method '%s'",
                           method->name);
    if (method->model_count != 3 && request->model_c != NULL) {
        if (reader->lenient) {   /* sd-meh loads it and leaves it unused */
            free(request->model_c);
            request->model_c = NULL;
            return MS_OK;
        }
        return ms_api_field_error(err, "model_c", "field '%s' is not used by merge_method '%s'",
                           method->name);
    }
    return MS_OK;
}

static ms_status read_body(const json_t *body, unsigned which, ms_api_merge_request *request,
                           ms_error *err)
{
    memset(request, 0, sizeof *request);
    ms_merge_params_init(&request->params);
    body_reader reader = {request, which, which == BODY_BBWM};
    ms_status status = MS_OK;
    if (!json_is_object(body)) {
        status = ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL,
                              "the request body must be a JSON object");
        ms_error_detail_add(err, "field", "(body)");
        goto done;
    }
    const char *field;
    json_t *value;
    json_object_foreach((json_t *)body, field, value) {
        status = read_field(&reader, field, value, err);
        if (status != MS_OK)
            goto done;
    }
    status = check_complete(&reader, err);
    if (status != MS_OK)
        goto done;
    status = ms_merge_params_validate(&request->params, err);
done:
    if (status != MS_OK)
        ms_api_merge_request_free(request);
    return status;
}

ms_status ms_api_merge_request_from_json(const json_t *body, ms_api_merge_request *request,
                                         ms_error *err)
{
    return read_body(body, BODY_V1, request, err);
}

ms_status ms_api_bbwm_request_from_json(const json_t *body, ms_api_merge_request *request,
                                        ms_error *err)
{
    return read_body(body, BODY_BBWM, request, err);
}

void ms_api_merge_request_free(ms_api_merge_request *request)
{
    if (request == NULL)
        return;
    free(request->model_a);
    free(request->model_b);
    free(request->model_c);
    free(request->output_name);
    free(request->destination);
    request->model_a = request->model_b = request->model_c = NULL;
    request->output_name = request->destination = NULL;
}

/* ---- params echo ---- */

static json_t *blocks_to_json(const ms_block_weights *weights)
{
    if (weights->form == MS_BLOCKS_LIST) {
        json_t *list = json_array();
        for (size_t i = 0; i < weights->count && i < MS_BLOCK_NAMED_COUNT; i++)
            json_array_append_new(list, ms_api_json_number(weights->values[i]));
        return list;
    }
    if (weights->form == MS_BLOCKS_NAMED) {
        json_t *object = json_object();
        for (int i = 0; i < MS_BLOCK_NAMED_COUNT; i++)
            if (weights->present[i])
                json_object_set_new(object, ms_block_name(i),
                                    ms_api_json_number(weights->values[i]));
        return object;
    }
    return json_null();
}

json_t *ms_api_merge_request_to_json(const ms_api_merge_request *request)
{
    const ms_merge_params *params = &request->params;
    json_t *object = json_object();
    json_object_set_new(object, "model_a", ms_api_json_text(request->model_a));
    json_object_set_new(object, "model_b", ms_api_json_text(request->model_b));
    json_object_set_new(object, "model_c", ms_api_json_text(request->model_c));
    json_object_set_new(object, "merge_method",
                        ms_api_json_text(params->method != NULL ? params->method->name : NULL));
    json_object_set_new(object, "base_alpha", ms_api_json_number(params->base_alpha));
    json_object_set_new(object, "base_beta", ms_api_json_number(params->base_beta));
    json_object_set_new(object, "alpha", blocks_to_json(&params->alpha));
    json_object_set_new(object, "beta", blocks_to_json(&params->beta));
    json_object_set_new(object, "precision", json_integer(params->precision));
    json_object_set_new(object, "weights_clip", json_boolean(params->weights_clip));
    json_object_set_new(object, "prune", json_boolean(params->prune));
    json_object_set_new(object, "nan_policy",
                        ms_api_json_text(ms_nan_policy_name(params->nan_policy)));
    json_object_set_new(object, "output_name", ms_api_json_text(request->output_name));
    json_object_set_new(object, "load_into_webui", json_boolean(request->load_into_webui));
    if (request->destination != NULL)
        json_object_set_new(object, "destination", ms_api_json_text(request->destination));
    return object;
}

/* ---- report ---- */

static json_t *block_label(ms_block_form form, int block)
{
    if (block < 0)
        return json_string("base");
    if (form == MS_BLOCKS_NAMED && ms_block_name(block) != NULL)
        return json_string(ms_block_name(block));
    return json_integer(block);
}

json_t *ms_api_merge_report_to_json(const ms_merge_report *report)
{
    json_t *keys = json_object();
    json_object_set_new(keys, "merged", json_integer((json_int_t)report->merged_count));
    json_object_set_new(keys, "copied_from_a",
                        json_integer((json_int_t)report->copied_from_a_count));
    json_object_set_new(keys, "taken_from_b", json_integer((json_int_t)report->taken_from_b_count));
    json_t *nan_keys = json_array();
    for (size_t i = 0; i < report->nan_key_count && report->nan_keys != NULL; i++)
        json_array_append_new(nan_keys, ms_api_json_text(report->nan_keys[i]));
    json_t *blocks = json_array();
    for (size_t i = 0; i < report->block_use_count && report->block_uses != NULL; i++) {
        const ms_merge_block_use *use = &report->block_uses[i];
        json_t *entry = json_object();
        json_object_set_new(entry, "block", block_label(report->block_form, use->block));
        json_object_set_new(entry, "alpha", ms_api_json_number(use->alpha));
        json_object_set_new(entry, "beta", ms_api_json_number(use->beta));
        json_object_set_new(entry, "keys", json_integer((json_int_t)use->key_count));
        json_array_append_new(blocks, entry);
    }
    json_t *object = json_object();
    json_object_set_new(object, "architecture",
                        ms_api_json_text(ms_merge_architecture_name(report->architecture)));
    json_object_set_new(object, "keys", keys);
    json_object_set_new(object, "nan_keys", nan_keys);
    json_object_set_new(object, "blocks", blocks);
    if (report->rotate) {
        json_t *cache = json_object();
        json_object_set_new(cache, "hits", json_integer((json_int_t)report->rotate_cache_hits));
        json_object_set_new(cache, "misses",
                            json_integer((json_int_t)report->rotate_cache_misses));
        json_object_set_new(cache, "bytes_stored",
                            json_integer((json_int_t)report->rotate_cache_bytes_stored));
        json_object_set_new(object, "rotate_cache", cache);
        json_t *seconds = json_object();
        json_object_set_new(seconds, "svd", ms_api_json_number(report->rotate_svd_seconds));
        json_object_set_new(seconds, "eigen", ms_api_json_number(report->rotate_eigen_seconds));
        json_object_set_new(seconds, "products",
                            ms_api_json_number(report->rotate_product_seconds));
        json_object_set_new(seconds, "io", ms_api_json_number(report->rotate_io_seconds));
        json_object_set_new(object, "rotate_seconds", seconds);
    }
    json_object_set_new(object, "seconds", ms_api_json_number(report->seconds));
    return object;
}
