/* api layer: status table, error objects, strict resize request parsing,
 * report and model summary JSON. */
#include <check.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/json_load.h"
#include "api/json_text.h"
#include "check_support.h"

/* ---- helpers ---- */

static json_t *parse(const char *text)
{
    json_error_t error;
    json_t *value = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
    ck_assert_msg(value != NULL, "test JSON does not parse: %s", text);
    return value;
}

/* Parses text as a request; expects invalid_parameter naming field. */
static void expect_refused(const char *text, const char *field)
{
    json_t *body = parse(text);
    ms_api_resize_request request;
    ms_error err;
    ms_error_clear(&err);
    ms_status status = ms_api_resize_request_from_json(body, &request, &err);
    ck_assert_msg(status == MS_ERR_INVALID_PARAMETER, "%s: status %s", text,
                  ms_status_name(status));
    ck_assert_ptr_null(request.model);
    ck_assert_ptr_null(request.output_name);
    json_t *object = ms_api_error_object(&err);
    ck_assert_str_eq(json_string_value(json_object_get(object, "code")), "invalid_parameter");
    json_t *got = json_object_get(json_object_get(object, "details"), "field");
    ck_assert_msg(json_is_string(got), "%s: no details.field", text);
    ck_assert_msg(strcmp(json_string_value(got), field) == 0, "%s: field %s, expected %s", text,
                  json_string_value(got), field);
    json_decref(object);
    json_decref(body);
}

static void accept(const char *text, ms_api_resize_request *request)
{
    json_t *body = parse(text);
    ms_error err;
    ms_error_clear(&err);
    ms_status status = ms_api_resize_request_from_json(body, request, &err);
    ck_assert_msg(status == MS_OK, "%s refused: %s %s", text, ms_status_name(status),
                  err.message);
    json_decref(body);
}

/* ---- status table ---- */

START_TEST(test_http_status_table)
{
    static const struct {
        ms_status code;
        int http;
    } table[] = {
        {MS_OK, 200},
        {MS_ERR_INVALID_JSON, 400},
        {MS_ERR_UNSUPPORTED_MEDIA_TYPE, 415},
        {MS_ERR_BODY_TOO_LARGE, 413},
        {MS_ERR_JOB_NOT_FOUND, 404},
        {MS_ERR_ROUTE_NOT_FOUND, 404},
        {MS_ERR_NOT_FOUND, 404},
        {MS_ERR_METHOD_NOT_ALLOWED, 405},
        {MS_ERR_RESULT_NOT_READY, 409},
        {MS_ERR_IDEMPOTENCY_CONFLICT, 409},
        {MS_ERR_CANCELLED, 409},
        {MS_ERR_RANGE_NOT_SATISFIABLE, 416},
        {MS_ERR_QUEUE_FULL, 429},
        {MS_ERR_UNAUTHORIZED, 401},
        {MS_ERR_SHUTTING_DOWN, 503},
        {MS_ERR_NOT_IMPLEMENTED, 501},
        {MS_ERR_FILE_TOO_SMALL, 422},
        {MS_ERR_HEADER_TOO_LARGE, 422},
        {MS_ERR_HEADER_NOT_JSON, 422},
        {MS_ERR_HEADER_NOT_OBJECT, 422},
        {MS_ERR_DUPLICATE_KEY, 422},
        {MS_ERR_BAD_TENSOR_ENTRY, 422},
        {MS_ERR_SIZE_MISMATCH, 422},
        {MS_ERR_OFFSETS_OUT_OF_RANGE, 422},
        {MS_ERR_OVERLAPPING_TENSORS, 422},
        {MS_ERR_DATA_HOLE, 422},
        {MS_ERR_BAD_METADATA, 422},
        {MS_ERR_INTEGER_OVERFLOW, 422},
        {MS_ERR_UNSUPPORTED_DTYPE, 422},
        {MS_ERR_SHAPE_MISMATCH, 422},
        {MS_ERR_RANK_MISMATCH, 422},
        {MS_ERR_NAN_DETECTED, 422},
        {MS_ERR_NOT_A_LORA, 422},
        {MS_ERR_INVALID_PARAMETER, 422},
        {MS_ERR_PATH_OUTSIDE_MODELS, 422},
        {MS_ERR_INVALID_OUTPUT_NAME, 422},
        {MS_ERR_DEGENERATE_ROTATION, 422},
        {MS_ERR_DISK_FULL, 507},
        {MS_ERR_IO, 500},
        {MS_ERR_INTERNAL, 500},
        {MS_ERR_OUT_OF_MEMORY, 500},
        {MS_ERR_LAPACK, 500},
        {MS_ERR_INTERRUPTED, 500},
        {MS_ERR_BAD_REQUEST, 400},
        {MS_ERR_URI_TOO_LONG, 414},
        {MS_ERR_HEADERS_TOO_LARGE, 431},
        {(ms_status)9999, 500},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        ck_assert_msg(ms_api_http_status(table[i].code) == table[i].http, "%s -> %d, want %d",
                      ms_status_name(table[i].code), ms_api_http_status(table[i].code),
                      table[i].http);
    /* every defined code maps to an error class */
    for (int code = 1; code < MS_STATUS_COUNT; code++) {
        int http = ms_api_http_status((ms_status)code);
        ck_assert_msg(http >= 400 && http < 600, "%s -> %d", ms_status_name(code), http);
    }
}
END_TEST

/* ---- error objects ---- */

START_TEST(test_error_object_minimal)
{
    ms_error err;
    ms_error_set(&err, MS_ERR_JOB_NOT_FOUND, NULL, "no job %s", "abc");
    json_t *object = ms_api_error_object(&err);
    ck_assert_int_eq(json_object_size(object), 2);
    ck_assert_str_eq(json_string_value(json_object_get(object, "code")), "job_not_found");
    ck_assert_str_eq(json_string_value(json_object_get(object, "message")), "no job abc");
    ck_assert_ptr_null(json_object_get(object, "key"));
    ck_assert_ptr_null(json_object_get(object, "details"));
    json_decref(object);
}
END_TEST

START_TEST(test_error_object_key_and_details)
{
    ms_error err;
    ms_error_set(&err, MS_ERR_NAN_DETECTED, "lora_te_x.lora_up.weight", "NaN");
    ms_error_detail_add(&err, "index", "%d", 42);
    ms_error_detail_add(&err, "negative", "%" PRId64, (int64_t)-7);
    ms_error_detail_add(&err, "ratio", "%g", 0.25);
    ms_error_detail_add(&err, "exponent", "%.17g", 1e-6);
    ms_error_detail_add(&err, "word", "%g", INFINITY);   /* a number, but not JSON's */
    ms_error_detail_add(&err, "hex", "%#x", 16u);
    json_t *body = ms_api_error_body(&err);
    ck_assert_int_eq(json_object_size(body), 1);
    json_t *object = json_object_get(body, "error");
    ck_assert_str_eq(json_string_value(json_object_get(object, "code")), "nan_detected");
    ck_assert_str_eq(json_string_value(json_object_get(object, "key")), "lora_te_x.lora_up.weight");
    json_t *details = json_object_get(object, "details");
    ck_assert_int_eq(json_object_size(details), 6);
    ck_assert(json_is_integer(json_object_get(details, "index")));
    ck_assert_int_eq(json_integer_value(json_object_get(details, "index")), 42);
    ck_assert_int_eq(json_integer_value(json_object_get(details, "negative")), -7);
    ck_assert(json_is_real(json_object_get(details, "ratio")));
    ck_assert_double_eq(json_real_value(json_object_get(details, "ratio")), 0.25);
    ck_assert(json_is_real(json_object_get(details, "exponent")));
    ck_assert_str_eq(json_string_value(json_object_get(details, "word")), "inf");
    ck_assert_str_eq(json_string_value(json_object_get(details, "hex")), "0x10");
    json_decref(body);

    /* text stays text, however numeric it looks: a field named "123", a
     * dtype "12", a literal */
    ms_error_set(&err, MS_ERR_INVALID_PARAMETER, NULL, "unknown field");
    ms_error_detail_add(&err, "field", "%s", "123");
    ms_error_detail_add(&err, "dtype", "%s", "1e5");
    ms_error_detail_add(&err, "literal", "12");
    ms_error_detail_add(&err, "mixed", "%d of %d", 1, 2);
    json_t *text_object = ms_api_error_object(&err);
    details = json_object_get(text_object, "details");
    ck_assert_str_eq(json_string_value(json_object_get(details, "field")), "123");
    ck_assert_str_eq(json_string_value(json_object_get(details, "dtype")), "1e5");
    ck_assert_str_eq(json_string_value(json_object_get(details, "literal")), "12");
    ck_assert_str_eq(json_string_value(json_object_get(details, "mixed")), "1 of 2");
    json_decref(text_object);
}
END_TEST

START_TEST(test_error_object_bad_safetensors)
{
    static const ms_status container[] = {
        MS_ERR_FILE_TOO_SMALL,       MS_ERR_HEADER_TOO_LARGE,   MS_ERR_HEADER_NOT_JSON,
        MS_ERR_HEADER_NOT_OBJECT,    MS_ERR_DUPLICATE_KEY,      MS_ERR_BAD_TENSOR_ENTRY,
        MS_ERR_SIZE_MISMATCH,        MS_ERR_OFFSETS_OUT_OF_RANGE, MS_ERR_OVERLAPPING_TENSORS,
        MS_ERR_DATA_HOLE,            MS_ERR_BAD_METADATA,       MS_ERR_INTEGER_OVERFLOW,
    };
    for (size_t i = 0; i < sizeof container / sizeof container[0]; i++) {
        ms_error err;
        ms_error_set(&err, container[i], "t", "broken");
        ms_error_detail_add(&err, "offset", "%d", 16);
        ms_error_detail_add(&err, "reason", "something else");
        json_t *object = ms_api_error_object(&err);
        ck_assert_str_eq(json_string_value(json_object_get(object, "code")), "bad_safetensors");
        json_t *details = json_object_get(object, "details");
        ck_assert_str_eq(json_string_value(json_object_get(details, "reason")),
                         ms_status_name(container[i]));
        ck_assert_int_eq(json_integer_value(json_object_get(details, "offset")), 16);
        json_decref(object);
    }
    ms_error err;
    ms_error_set(&err, MS_ERR_UNSUPPORTED_DTYPE, "t", "dtype Q4");
    json_t *object = ms_api_error_object(&err);
    ck_assert_str_eq(json_string_value(json_object_get(object, "code")), "unsupported_dtype");
    ck_assert_ptr_null(json_object_get(object, "details"));
    json_decref(object);
}
END_TEST

START_TEST(test_error_object_hostile_text)
{
    ms_error err;
    ms_error_set(&err, MS_ERR_SHAPE_MISMATCH, "bad\xff\xfekey", "key bad\xc3 here");
    json_t *object = ms_api_error_object(&err);
    ck_assert_str_eq(json_string_value(json_object_get(object, "key")), "bad??key");
    ck_assert_str_eq(json_string_value(json_object_get(object, "message")), "key bad? here");
    json_decref(object);
    ms_error_set(&err, MS_OK, NULL, "%s", "");
    ms_error_detail_add(&err, "sign", "-");
    object = ms_api_error_object(&err);
    ck_assert_str_eq(json_string_value(json_object_get(object, "code")), "internal_error");
    ck_assert_str_eq(json_string_value(json_object_get(object, "message")), "internal_error");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(object, "details"), "sign")), "-");
    json_decref(object);
    ms_api_resize_request_free(NULL);
    /* an OK or NULL error still yields a well-formed failure object */
    object = ms_api_error_object(NULL);
    ck_assert_str_eq(json_string_value(json_object_get(object, "code")), "internal_error");
    ck_assert(json_is_string(json_object_get(object, "message")));
    json_decref(object);
}
END_TEST

/* ---- resize request ---- */

START_TEST(test_request_defaults)
{
    ms_api_resize_request request;
    accept("{\"model\": \"a/b.safetensors\"}", &request);
    ck_assert_str_eq(request.model, "a/b.safetensors");
    ck_assert_ptr_null(request.output_name);
    ck_assert_int_eq(request.params.new_rank, 4);
    ck_assert_int_eq(request.params.new_conv_rank, 4);
    ck_assert_int_eq(request.params.dynamic_method, MS_DYNAMIC_NONE);
    ck_assert(!request.params.has_dynamic_param);
    ck_assert_int_eq(request.params.save_precision, MS_SAVE_PRECISION_INPUT);
    json_t *json = ms_api_resize_request_to_json(&request);
    ck_assert_str_eq(json_string_value(json_object_get(json, "model")), "a/b.safetensors");
    ck_assert_int_eq(json_integer_value(json_object_get(json, "new_rank")), 4);
    ck_assert_int_eq(json_integer_value(json_object_get(json, "new_conv_rank")), 4);
    ck_assert(json_is_null(json_object_get(json, "dynamic_method")));
    ck_assert(json_is_null(json_object_get(json, "dynamic_param")));
    ck_assert(json_is_null(json_object_get(json, "save_precision")));
    ck_assert(json_is_null(json_object_get(json, "output_name")));
    json_decref(json);
    ms_api_resize_request_free(&request);
    /* conv rank follows new_rank when absent */
    accept("{\"model\": \"m\", \"new_rank\": 16}", &request);
    ck_assert_int_eq(request.params.new_conv_rank, 16);
    ms_api_resize_request_free(&request);
}
END_TEST

START_TEST(test_request_full)
{
    ms_api_resize_request request;
    accept("{\"model\": \"m.safetensors\", \"new_rank\": 32, \"new_conv_rank\": 8,"
           " \"dynamic_method\": \"sv_fro\", \"dynamic_param\": 0.9,"
           " \"save_precision\": \"bf16\", \"output_name\": \"x.safetensors\"}",
           &request);
    ck_assert_int_eq(request.params.new_rank, 32);
    ck_assert_int_eq(request.params.new_conv_rank, 8);
    ck_assert_int_eq(request.params.dynamic_method, MS_DYNAMIC_SV_FRO);
    ck_assert(request.params.has_dynamic_param);
    ck_assert_double_eq(request.params.dynamic_param, 0.9);
    ck_assert_int_eq(request.params.save_precision, MS_SAVE_PRECISION_BF16);
    ck_assert_str_eq(request.output_name, "x.safetensors");
    json_t *json = ms_api_resize_request_to_json(&request);
    ck_assert_int_eq(json_integer_value(json_object_get(json, "new_conv_rank")), 8);
    ck_assert_str_eq(json_string_value(json_object_get(json, "dynamic_method")), "sv_fro");
    ck_assert_double_eq(json_number_value(json_object_get(json, "dynamic_param")), 0.9);
    ck_assert_str_eq(json_string_value(json_object_get(json, "save_precision")), "bf16");
    ck_assert_str_eq(json_string_value(json_object_get(json, "output_name")), "x.safetensors");
    json_decref(json);
    ms_api_resize_request_free(&request);

    /* integer JSON for the param, the other methods and precisions, nulls */
    accept("{\"model\": \"m\", \"dynamic_method\": \"sv_ratio\", \"dynamic_param\": 4,"
           " \"save_precision\": \"float\", \"output_name\": null}",
           &request);
    ck_assert_int_eq(request.params.dynamic_method, MS_DYNAMIC_SV_RATIO);
    ck_assert_double_eq(request.params.dynamic_param, 4.0);
    ck_assert_int_eq(request.params.save_precision, MS_SAVE_PRECISION_FLOAT);
    ck_assert_ptr_null(request.output_name);
    ms_api_resize_request_free(&request);
    accept("{\"model\": \"m\", \"dynamic_method\": \"sv_cumulative\", \"dynamic_param\": 1,"
           " \"save_precision\": \"fp16\"}",
           &request);
    ck_assert_int_eq(request.params.dynamic_method, MS_DYNAMIC_SV_CUMULATIVE);
    ck_assert_int_eq(request.params.save_precision, MS_SAVE_PRECISION_FP16);
    ms_api_resize_request_free(&request);
    accept("{\"model\": \"m\", \"dynamic_method\": null, \"dynamic_param\": null,"
           " \"save_precision\": null}",
           &request);
    ck_assert_int_eq(request.params.dynamic_method, MS_DYNAMIC_NONE);
    ck_assert(!request.params.has_dynamic_param);
    ms_api_resize_request_free(&request);
}
END_TEST

START_TEST(test_request_body_not_object)
{
    expect_refused("[]", "(body)");
    expect_refused("\"model\"", "(body)");
    expect_refused("null", "(body)");
    expect_refused("3", "(body)");
}
END_TEST

START_TEST(test_request_unknown_and_missing)
{
    expect_refused("{\"model\": \"m\", \"new_ranks\": 4}", "new_ranks");
    expect_refused("{\"model\": \"m\", \"save_to\": \"x\"}", "save_to");
    expect_refused("{}", "model");
    expect_refused("{\"new_rank\": 4}", "model");
    expect_refused("{\"model\": \"\"}", "model");
    expect_refused("{\"model\": \"a\\u0000b\"}", "model");
    expect_refused("{\"model\": null}", "model");
}
END_TEST

START_TEST(test_request_wrong_types)
{
    expect_refused("{\"model\": 3}", "model");
    expect_refused("{\"model\": [\"m\"]}", "model");
    expect_refused("{\"model\": \"m\", \"new_rank\": \"4\"}", "new_rank");
    expect_refused("{\"model\": \"m\", \"new_rank\": 4.0}", "new_rank");
    expect_refused("{\"model\": \"m\", \"new_rank\": 4.5}", "new_rank");
    expect_refused("{\"model\": \"m\", \"new_rank\": true}", "new_rank");
    expect_refused("{\"model\": \"m\", \"new_rank\": null}", "new_rank");
    expect_refused("{\"model\": \"m\", \"new_conv_rank\": \"2\"}", "new_conv_rank");
    expect_refused("{\"model\": \"m\", \"new_conv_rank\": 2.5}", "new_conv_rank");
    expect_refused("{\"model\": \"m\", \"dynamic_method\": 1}", "dynamic_method");
    expect_refused("{\"model\": \"m\", \"dynamic_method\": \"sv_fro\", \"dynamic_param\": \"0.5\"}",
                   "dynamic_param");
    expect_refused("{\"model\": \"m\", \"dynamic_method\": \"sv_fro\", \"dynamic_param\": false}",
                   "dynamic_param");
    expect_refused("{\"model\": \"m\", \"save_precision\": 16}", "save_precision");
    expect_refused("{\"model\": \"m\", \"output_name\": 5}", "output_name");
    expect_refused("{\"model\": \"m\", \"output_name\": {}}", "output_name");
}
END_TEST

START_TEST(test_request_bad_values)
{
    expect_refused("{\"model\": \"m\", \"new_rank\": 0}", "new_rank");
    expect_refused("{\"model\": \"m\", \"new_rank\": -3}", "new_rank");
    expect_refused("{\"model\": \"m\", \"new_rank\": 4294967296}", "new_rank");
    expect_refused("{\"model\": \"m\", \"new_conv_rank\": 0}", "new_conv_rank");
    expect_refused("{\"model\": \"m\", \"new_conv_rank\": -2147483649}", "new_conv_rank");
    expect_refused("{\"model\": \"m\", \"dynamic_method\": \"svd\", \"dynamic_param\": 1}",
                   "dynamic_method");
    expect_refused("{\"model\": \"m\", \"dynamic_method\": \"\", \"dynamic_param\": 1}",
                   "dynamic_method");
    expect_refused("{\"model\": \"m\", \"save_precision\": \"fp32\"}", "save_precision");
    expect_refused("{\"model\": \"m\", \"save_precision\": \"input\"}", "save_precision");
    expect_refused("{\"model\": \"m\", \"save_precision\": \"\"}", "save_precision");
    expect_refused("{\"model\": \"m\", \"output_name\": \"a\\u0000b\"}", "output_name");
}
END_TEST

/* method/param pairing and ranges are the core's validation, reached
 * through the request: the field must still be named. */
static int refused_with_any_field(const char *text)
{
    json_t *body = parse(text);
    ms_api_resize_request request;
    ms_error err;
    ms_error_clear(&err);
    ms_status status = ms_api_resize_request_from_json(body, &request, &err);
    json_decref(body);
    return status == MS_ERR_INVALID_PARAMETER && err.detail_count > 0 &&
           strcmp(err.details[0].name, "field") == 0;
}

START_TEST(test_request_core_validation)
{
    ck_assert(refused_with_any_field("{\"model\": \"m\", \"dynamic_method\": \"sv_fro\"}"));
    ck_assert(refused_with_any_field("{\"model\": \"m\", \"dynamic_param\": 0.5}"));
    ck_assert(refused_with_any_field(
        "{\"model\": \"m\", \"dynamic_method\": \"sv_ratio\", \"dynamic_param\": 1}"));
    ck_assert(refused_with_any_field(
        "{\"model\": \"m\", \"dynamic_method\": \"sv_fro\", \"dynamic_param\": 1.5}"));
    ck_assert(refused_with_any_field(
        "{\"model\": \"m\", \"dynamic_method\": \"sv_cumulative\", \"dynamic_param\": 0}"));
}
END_TEST

/* ---- report and summary ---- */

START_TEST(test_report_json)
{
    ms_resize_module_report modules[2] = {
        {.name = "lora_unet_a", .is_conv = false, .old_rank = 8, .new_rank = 2,
         .old_alpha = 4.0, .new_alpha = 1.0, .sum_retained = 0.5, .fro_retained = 0.75,
         .max_ratio = 3.5},
        {.name = "lora_unet_b", .is_conv = true, .old_rank = 8, .new_rank = 1,
         .old_alpha = 8.0, .new_alpha = 1.0, .sum_retained = NAN, .fro_retained = 0.0,
         .max_ratio = INFINITY},
    };
    ms_resize_report report = {.module_count = 2, .modules = modules,
                               .copied_tensor_count = 3, .fro_retained_mean = 0.375,
                               .fro_retained_std = -INFINITY};
    strcpy(report.model_hash, "ab12");
    json_t *json = ms_api_resize_report_to_json(&report);
    json_t *array = json_object_get(json, "modules");
    ck_assert_int_eq(json_array_size(array), 2);
    json_t *first = json_array_get(array, 0);
    ck_assert_str_eq(json_string_value(json_object_get(first, "name")), "lora_unet_a");
    ck_assert(json_is_false(json_object_get(first, "conv")));
    ck_assert_int_eq(json_integer_value(json_object_get(first, "old_rank")), 8);
    ck_assert_int_eq(json_integer_value(json_object_get(first, "new_rank")), 2);
    ck_assert_double_eq(json_real_value(json_object_get(first, "old_alpha")), 4.0);
    ck_assert_double_eq(json_real_value(json_object_get(first, "new_alpha")), 1.0);
    ck_assert_double_eq(json_real_value(json_object_get(first, "sum_retained")), 0.5);
    ck_assert_double_eq(json_real_value(json_object_get(first, "fro_retained")), 0.75);
    ck_assert_double_eq(json_real_value(json_object_get(first, "max_ratio")), 3.5);
    json_t *second = json_array_get(array, 1);
    ck_assert(json_is_true(json_object_get(second, "conv")));
    ck_assert(json_is_null(json_object_get(second, "sum_retained")));
    ck_assert(json_is_null(json_object_get(second, "max_ratio")));
    ck_assert(json_is_real(json_object_get(second, "fro_retained")));
    json_t *summary = json_object_get(json, "summary");
    ck_assert_int_eq(json_integer_value(json_object_get(summary, "module_count")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(summary, "copied_tensor_count")), 3);
    ck_assert_double_eq(json_real_value(json_object_get(summary, "fro_retained_mean")), 0.375);
    ck_assert(json_is_null(json_object_get(summary, "fro_retained_std")));
    ck_assert_str_eq(json_string_value(json_object_get(json, "model_hash")), "ab12");
    /* the whole thing serialises (no NaN sneaks through) */
    char *text = json_dumps(json, 0);
    ck_assert_ptr_nonnull(text);
    free(text);
    json_decref(json);

    ms_resize_report empty = {0};
    json = ms_api_resize_report_to_json(&empty);
    ck_assert_int_eq(json_array_size(json_object_get(json, "modules")), 0);
    ck_assert(json_is_null(json_object_get(json, "model_hash")));
    json_decref(json);
}
END_TEST

START_TEST(test_model_summary_json)
{
    ms_model_summary summary = {.kind = MS_MODEL_LORA, .architecture = MS_ARCH_SDXL,
                                .spelling = MS_LORA_SPELLING_PEFT, .module_count = 10,
                                .conv_module_count = 2, .rank_min = 4, .rank_max = 16};
    json_t *json = ms_api_model_summary_to_json(&summary);
    ck_assert_str_eq(json_string_value(json_object_get(json, "kind")), "lora");
    ck_assert_str_eq(json_string_value(json_object_get(json, "architecture")), "sdxl");
    json_t *lora = json_object_get(json, "lora");
    ck_assert_str_eq(json_string_value(json_object_get(lora, "spelling")), "peft");
    ck_assert_int_eq(json_integer_value(json_object_get(lora, "modules")), 10);
    ck_assert_int_eq(json_integer_value(json_object_get(lora, "conv_modules")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(lora, "rank_min")), 4);
    ck_assert_int_eq(json_integer_value(json_object_get(lora, "rank_max")), 16);
    json_decref(json);

    ms_model_summary checkpoint = {.kind = MS_MODEL_CHECKPOINT, .architecture = MS_ARCH_SD2};
    json = ms_api_model_summary_to_json(&checkpoint);
    ck_assert_str_eq(json_string_value(json_object_get(json, "kind")), "checkpoint");
    ck_assert_str_eq(json_string_value(json_object_get(json, "architecture")), "sd2");
    ck_assert_ptr_null(json_object_get(json, "lora"));
    json_decref(json);
    ms_model_summary unknown = {.kind = MS_MODEL_UNKNOWN, .architecture = MS_ARCH_UNKNOWN};
    json = ms_api_model_summary_to_json(&unknown);
    ck_assert_str_eq(json_string_value(json_object_get(json, "kind")), "unknown");
    ck_assert_str_eq(json_string_value(json_object_get(json, "architecture")), "unknown");
    json_decref(json);
}
END_TEST

START_TEST(test_json_text_helpers)
{
    json_t *value = ms_api_json_text("plain");
    ck_assert_str_eq(json_string_value(value), "plain");
    json_decref(value);
    value = ms_api_json_text("\xe2\x82\xac ok \xed\xa0\x80 x \xf4\x90\x80\x80");
    /* euro sign kept; a surrogate and a code point past U+10FFFF replaced */
    ck_assert_str_eq(json_string_value(value), "\xe2\x82\xac ok ??? x ????");
    json_decref(value);
    value = ms_api_json_text(NULL);
    ck_assert(json_is_null(value));
    json_decref(value);
    value = ms_api_json_number(NAN);
    ck_assert(json_is_null(value));
    json_decref(value);
    value = ms_api_json_number(2.5);
    ck_assert_double_eq(json_real_value(value), 2.5);
    json_decref(value);
}
END_TEST

/* ---- big integers (issue 11) ---- */

static json_t *load_wide(const char *text)
{
    json_error_t error;
    json_t *value = ms_api_json_loadb(text, strlen(text), JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                                      &error);
    ck_assert_msg(value != NULL, "%s: %s", text, error.text);
    return value;
}

/* Expects the resize parser to refuse the body, naming field as out of range. */
static void expect_out_of_range(const char *text, const char *field)
{
    json_t *body = load_wide(text);
    ms_api_resize_request request;
    ms_error err;
    ms_error_clear(&err);
    ck_assert_int_eq(ms_api_resize_request_from_json(body, &request, &err),
                     MS_ERR_INVALID_PARAMETER);
    ck_assert_str_eq(err.details[0].value, field);
    ck_assert_msg(strstr(err.message, "out of range") != NULL, "%s: %s", text, err.message);
    json_decref(body);
}

START_TEST(test_json_load_big_integers)
{
    /* within 64 bits: integers, exactly */
    json_t *value = load_wide("{\"a\": 9223372036854775807, \"b\": -9223372036854775808}");
    ck_assert(json_integer_value(json_object_get(value, "a")) == INT64_MAX);
    ck_assert(json_integer_value(json_object_get(value, "b")) == INT64_MIN);
    json_decref(value);
    /* past them: reals, and nothing else changes (a string holding digits, a nested list) */
    value = load_wide("{\"s\": \"99999999999999999999\", \"b\": [9223372036854775808, 1, "
                      "-99999999999999999999], \"r\": 2.5, \"e\": 1e3}");
    ck_assert_str_eq(json_string_value(json_object_get(value, "s")), "99999999999999999999");
    json_t *list = json_object_get(value, "b");
    ck_assert(json_is_real(json_array_get(list, 0)));
    ck_assert_double_eq(json_real_value(json_array_get(list, 0)), 9223372036854775808.0);
    ck_assert(json_is_integer(json_array_get(list, 1)));
    ck_assert_double_eq(json_real_value(json_array_get(list, 2)), -1e20);
    ck_assert_double_eq(json_real_value(json_object_get(value, "r")), 2.5);
    json_decref(value);
    value = load_wide("123456789012345678901234567890");   /* a bare number (JSON_DECODE_ANY) */
    ck_assert(json_is_real(value));
    json_decref(value);
    /* other errors stay errors: a real past the doubles, a syntax error after a big integer */
    json_error_t error;
    ck_assert_ptr_null(ms_api_json_loadb("[1e999]", 7, 0, &error));
    ck_assert_ptr_null(ms_api_json_loadb("[99999999999999999999,]", 23, 0, &error));
    ck_assert_ptr_null(ms_api_json_loadb("{\"a\": 1", 7, 0, &error));

    expect_out_of_range("{\"model\": \"m\", \"new_rank\": 99999999999999999999}", "new_rank");
    expect_out_of_range("{\"model\": \"m\", \"new_conv_rank\": -99999999999999999999}",
                        "new_conv_rank");
    /* an ordinary integer field still works, and 4.0 stays the wrong type */
    ms_api_resize_request request;
    json_t *body = load_wide("{\"model\": \"m\", \"new_rank\": 8}");
    ms_error err;
    ck_assert_int_eq(ms_api_resize_request_from_json(body, &request, &err), MS_OK);
    ck_assert_int_eq(request.params.new_rank, 8);
    ms_api_resize_request_free(&request);
    json_decref(body);
    expect_refused("{\"model\": \"m\", \"new_rank\": 4.0}", "new_rank");
}
END_TEST

START_TEST(test_error_detail_past_int64)
{
    ms_error err;
    ms_error_set(&err, MS_ERR_HEADER_TOO_LARGE, NULL, "header length");
    ms_error_detail_add(&err, "header_length", "%" PRIu64, (uint64_t)1 << 63);
    ms_error_detail_add(&err, "largest", "%" PRIu64, UINT64_MAX);
    ms_error_detail_add(&err, "small", "%" PRIu64, (uint64_t)12);
    ms_error_detail_add(&err, "too_big", "%s", "18446744073709551616");   /* a string stays one */
    json_t *body = ms_api_error_body(&err);
    char *text = ms_api_json_dumps(body, 0);
    ck_assert_ptr_nonnull(strstr(text, "\"header_length\":9223372036854775808,"));
    ck_assert_ptr_nonnull(strstr(text, "\"largest\":18446744073709551615,"));
    ck_assert_ptr_nonnull(strstr(text, "\"small\":12,"));
    ck_assert_ptr_nonnull(strstr(text, "\"too_big\":\"18446744073709551616\""));
    /* the text reads back: every detail where it was */
    json_t *again = json_loads(text, JSON_DECODE_INT_AS_REAL, NULL);
    ck_assert_ptr_nonnull(again);
    json_t *details = json_object_get(json_object_get(again, "error"), "details");
    ck_assert_double_eq(json_number_value(json_object_get(details, "header_length")),
                        9223372036854775808.0);
    json_decref(again);
    free(text);
    json_decref(body);
    /* within int64 it is jansson's own integer */
    json_t *value = ms_api_json_uint64(42);
    ck_assert(json_is_integer(value));
    json_decref(value);
}
END_TEST

static Suite *api_suite(void)
{
    Suite *suite = suite_create("api");
    TCase *errors = tcase_create("errors");
    tcase_add_test(errors, test_http_status_table);
    tcase_add_test(errors, test_error_object_minimal);
    tcase_add_test(errors, test_error_object_key_and_details);
    tcase_add_test(errors, test_error_object_bad_safetensors);
    tcase_add_test(errors, test_error_object_hostile_text);
    tcase_add_test(errors, test_json_text_helpers);
    suite_add_tcase(suite, errors);
    TCase *request = tcase_create("resize_request");
    tcase_add_test(request, test_request_defaults);
    tcase_add_test(request, test_request_full);
    tcase_add_test(request, test_request_body_not_object);
    tcase_add_test(request, test_request_unknown_and_missing);
    tcase_add_test(request, test_request_wrong_types);
    tcase_add_test(request, test_request_bad_values);
    tcase_add_test(request, test_request_core_validation);
    suite_add_tcase(suite, request);
    TCase *output = tcase_create("output");
    tcase_add_test(output, test_report_json);
    tcase_add_test(output, test_model_summary_json);
    suite_add_tcase(suite, output);
    TCase *integers = tcase_create("big_integers");
    tcase_add_test(integers, test_json_load_big_integers);
    tcase_add_test(integers, test_error_detail_past_int64);
    suite_add_tcase(suite, integers);
    return suite;
}

int main(void)
{
    return ms_test_run_suite(api_suite());
}
