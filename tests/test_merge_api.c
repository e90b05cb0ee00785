/* api layer for merges: both request bodies (strict /v1, lenient web UI
 * extension), the params echo, the report JSON, and the shortest-form JSON
 * text every client-visible JSON goes through. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/json_load.h"
#include "api/json_text.h"
#include "api/merge_request.h"
#include "check_support.h"

/* ---- helpers ---- */

static json_t *parse(const char *text)
{
    json_error_t error;
    json_t *value = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
    ck_assert_msg(value != NULL, "test JSON does not parse: %s (%s)", text, error.text);
    return value;
}

typedef ms_status (*request_parser)(const json_t *, ms_api_merge_request *, ms_error *);

/* Parses text with parser; expects code, details.field == field and no
 * strings left in the request. Leaves the error in *err for more checks. */
static void expect_refused_by(request_parser parser, const char *text, ms_status code,
                              const char *field, ms_error *err)
{
    json_t *body = parse(text);
    ms_api_merge_request request;
    ms_error_clear(err);
    ms_status status = parser(body, &request, err);
    json_decref(body);
    ck_assert_msg(status == code, "%s: status %s, want %s (%s)", text, ms_status_name(status),
                  ms_status_name(code), err->message);
    ck_assert_ptr_null(request.model_a);
    ck_assert_ptr_null(request.model_b);
    ck_assert_ptr_null(request.model_c);
    ck_assert_ptr_null(request.output_name);
    ck_assert_ptr_null(request.destination);
    json_t *object = ms_api_error_object(err);
    ck_assert_int_eq(ms_api_http_status(err->code), 422);
    json_t *got = json_object_get(json_object_get(object, "details"), "field");
    ck_assert_msg(json_is_string(got), "%s: no details.field", text);
    ck_assert_msg(strcmp(json_string_value(got), field) == 0, "%s: field %s, want %s", text,
                  json_string_value(got), field);
    json_decref(object);
}

static void expect_refused(const char *text, const char *field)
{
    ms_error err;
    expect_refused_by(ms_api_merge_request_from_json, text, MS_ERR_INVALID_PARAMETER, field,
                      &err);
}

static void expect_bbwm_refused(const char *text, const char *field)
{
    ms_error err;
    expect_refused_by(ms_api_bbwm_request_from_json, text, MS_ERR_INVALID_PARAMETER, field,
                      &err);
}

static void accept_by(request_parser parser, const char *text, ms_api_merge_request *request)
{
    json_t *body = parse(text);
    ms_error err;
    ms_error_clear(&err);
    ms_status status = parser(body, request, &err);
    json_decref(body);
    ck_assert_msg(status == MS_OK, "%s refused: %s %s", text, ms_status_name(status),
                  err.message);
}

static void accept(const char *text, ms_api_merge_request *request)
{
    accept_by(ms_api_merge_request_from_json, text, request);
}

static void accept_bbwm(const char *text, ms_api_merge_request *request)
{
    accept_by(ms_api_bbwm_request_from_json, text, request);
}

/* The detail called name, as JSON (borrowed from object). */
static json_t *detail(json_t *object, const char *name)
{
    return json_object_get(json_object_get(object, "details"), name);
}

#define AB "\"model_a\": \"a.safetensors\", \"model_b\": \"b.safetensors\""
#define WS AB ", \"merge_method\": \"weighted_sum\""
#define ADD AB ", \"merge_method\": \"add_difference\", \"model_c\": \"c.safetensors\""

static const char list24[] = "[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]";
static const char list19[] = "[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18]";
static const char list25[] = "[0.9,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,"
                             "24]";

/* ---- shortest reals ---- */

static void expect_real_text(double value, const char *want)
{
    json_t *real = json_real(value);
    char *text = ms_api_json_dumps(real, JSON_ENCODE_ANY);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(strcmp(text, want) == 0, "%.17g printed %s, want %s", value, text, want);
    free(text);
    json_decref(real);
}

START_TEST(test_shortest_known_values)
{
    expect_real_text(0.9, "0.9");
    expect_real_text(0.1 + 0.2, "0.30000000000000004");
    expect_real_text(1e-10, "1e-10");
    expect_real_text(5e-324, "5e-324");
    expect_real_text(1.0, "1.0");
    expect_real_text(-0.0, "-0.0");
    expect_real_text(1e300, "1e+300");
    expect_real_text(-2.5, "-2.5");
    expect_real_text(100.0, "100.0");
    expect_real_text(1e16, "1e+16");
    expect_real_text(0.0001, "0.0001");
    expect_real_text(DBL_MAX, "1.7976931348623157e+308");
}
END_TEST

/* Reads text back the way a client does (jansson's parser) and checks it
 * is a real equal to value, bit for bit. */
static void expect_round_trip(double value)
{
    json_t *real = json_real(value);
    char *text = ms_api_json_dumps(real, JSON_ENCODE_ANY);
    json_decref(real);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(strpbrk(text, ".e") != NULL, "%s has neither '.' nor an exponent", text);
    char *end = NULL;
    double back = strtod(text, &end);
    ck_assert_msg(*end == '\0' && memcmp(&back, &value, sizeof back) == 0,
                  "%.17g -> %s -> %.17g", value, text, back);
    json_t *parsed = parse(text);
    ck_assert(json_is_real(parsed));
    ck_assert(json_real_value(parsed) == value);
    /* shortest: one significant digit fewer does not read back */
    char mantissa[64];
    int digits = 0;
    for (const char *c = text; *c != '\0' && *c != 'e'; c++)
        if ((*c >= '1' && *c <= '9') || (*c == '0' && digits > 0))
            mantissa[digits++] = *c;
    while (digits > 0 && mantissa[digits - 1] == '0')
        digits--;
    if (digits > 1) {
        char shorter[64];
        snprintf(shorter, sizeof shorter, "%.*e", digits - 2, value);
        ck_assert_msg(strtod(shorter, NULL) != value, "%s is not the shortest: %s", text,
                      shorter);
    }
    json_decref(parsed);
    free(text);
}

START_TEST(test_shortest_round_trips)
{
    const double values[] = {0.9, 0.1 + 0.2, 1e-10, 5e-324, 1.0, -0.0, 1e300, 123.456,
                             -2.5e-7, DBL_MAX, DBL_MIN, 2.2250738585072009e-308,
                             9007199254740993.0, 1e15, 1e17, 0.5, 1.0 / 3.0};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        expect_round_trip(values[i]);
    /* and a spread of bit patterns (a fixed generator: reproducible) */
    uint64_t state = 0x9E3779B97F4A7C15u;
    for (int i = 0; i < 2000; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        double value;
        memcpy(&value, &state, sizeof value);
        if (isfinite(value))
            expect_round_trip(value);
    }
    /* -0.0 keeps its sign */
    json_t *real = json_real(-0.0);
    char *text = ms_api_json_dumps(real, JSON_ENCODE_ANY);
    ck_assert(signbit(strtod(text, NULL)));
    free(text);
    json_decref(real);
}
END_TEST

/* Values with no reals print exactly as jansson prints them. */
START_TEST(test_dumps_matches_jansson_without_reals)
{
    const char *texts[] = {
        "{\"a\": 1, \"b\": [true, false, null, -9223372036854775808, 9223372036854775807]}",
        "[\"quote \\\" backslash \\\\ newline \\n tab \\t control \\u0001 slash /\"]",
        "{\"caf\\u00e9 \\u20ac \\ud83d\\ude00\": \"\\u00e9\\u20ac\\ud83d\\ude00\"}",
        "{\"0.9\": \"1.5e3 -2.0\", \"nested\": {\"deeper\": [[], {}, [1, [2, [3]]]]}}",
        "\"digits 0.25 inside a string\"",
        "[]",
        "{}",
        "-17",
    };
    const size_t flag_sets[] = {0, JSON_SORT_KEYS, JSON_ENSURE_ASCII, JSON_ESCAPE_SLASH,
                                JSON_ENCODE_ANY};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        json_t *value = parse(texts[i]);
        for (size_t f = 0; f < sizeof flag_sets / sizeof flag_sets[0]; f++) {
            size_t flags = flag_sets[f] | JSON_ENCODE_ANY;
            char *want = json_dumps(value, JSON_COMPACT | flags);
            char *got = ms_api_json_dumps(value, flags);
            ck_assert_ptr_nonnull(want);
            ck_assert_ptr_nonnull(got);
            ck_assert_msg(strcmp(want, got) == 0, "flags %zx: got %s, want %s", flags, got,
                          want);
            free(want);
            free(got);
        }
        json_decref(value);
    }
}
END_TEST

/* Reals among everything else: the text reads back equal (reals exactly),
 * and only the reals' spelling differs from jansson's. */
START_TEST(test_dumps_mixed)
{
    json_t *value = parse("{\"alpha\": [0.9, 1, -0.0, 1e-10], \"name\": \"x\\\"0.5\\\"\","
                          " \"n\": {\"r\": 0.30000000000000004, \"i\": 12345678901234},"
                          " \"e\": 1e300, \"ok\": true}");
    char *text = ms_api_json_dumps(value, 0);
    ck_assert_str_eq(text, "{\"alpha\":[0.9,1,-0.0,1e-10],\"name\":\"x\\\"0.5\\\"\","
                           "\"n\":{\"r\":0.30000000000000004,\"i\":12345678901234},"
                           "\"e\":1e+300,\"ok\":true}");
    json_t *back = parse(text);
    ck_assert(json_equal(value, back));
    json_decref(back);
    free(text);

    /* a bare real needs JSON_ENCODE_ANY, as with jansson */
    json_t *real = json_real(0.9);
    ck_assert_ptr_null(ms_api_json_dumps(real, 0));
    json_decref(real);

    /* dumpf: the command line's indented layout, reals shortest */
    FILE *stream = tmpfile();
    ck_assert_ptr_nonnull(stream);
    ck_assert_int_eq(ms_api_json_dumpf(value, stream, JSON_INDENT(2)), 0);
    long size = ftell(stream);
    rewind(stream);
    char buffer[1024] = "";
    ck_assert_int_eq(fread(buffer, 1, sizeof buffer - 1, stream), (size_t)size);
    fclose(stream);
    ck_assert_ptr_nonnull(strstr(buffer, "\n  \"alpha\": [\n    0.9,\n"));
    ck_assert_ptr_nonnull(strstr(buffer, "\"e\": 1e+300"));
    back = parse(buffer);
    ck_assert(json_equal(value, back));
    json_decref(back);
    /* the same layout as jansson when there are no reals */
    json_object_del(value, "alpha");
    json_object_del(value, "e");
    json_object_del(json_object_get(value, "n"), "r");
    char *want = json_dumps(value, JSON_INDENT(2));
    stream = tmpfile();
    ck_assert_int_eq(ms_api_json_dumpf(value, stream, JSON_INDENT(2)), 0);
    rewind(stream);
    memset(buffer, 0, sizeof buffer);
    ck_assert_uint_eq(fread(buffer, 1, sizeof buffer - 1, stream), strlen(want));
    fclose(stream);
    ck_assert_str_eq(buffer, want);
    free(want);
    /* and a value jansson refuses (a bare real without JSON_ENCODE_ANY) is -1 */
    real = json_real(1.5);
    ck_assert_int_eq(ms_api_json_dumpf(real, stdout, 0), -1);
    json_decref(real);
    json_decref(value);
}
END_TEST

/* ---- /v1 body ---- */

START_TEST(test_v1_defaults)
{
    ms_api_merge_request request;
    accept("{" WS "}", &request);
    ck_assert_str_eq(request.model_a, "a.safetensors");
    ck_assert_str_eq(request.model_b, "b.safetensors");
    ck_assert_ptr_null(request.model_c);
    ck_assert_ptr_null(request.output_name);
    ck_assert_ptr_null(request.destination);
    ck_assert_str_eq(request.params.method->name, "weighted_sum");
    ck_assert_double_eq(request.params.base_alpha, 0.5);
    ck_assert_double_eq(request.params.base_beta, 0.5);
    ck_assert_int_eq(request.params.alpha.form, MS_BLOCKS_NONE);
    ck_assert_int_eq(request.params.beta.form, MS_BLOCKS_NONE);
    ck_assert_int_eq(request.params.precision, 16);
    ck_assert(!request.params.weights_clip);
    ck_assert(!request.params.prune);
    ck_assert_int_eq(request.params.nan_policy, MS_NAN_POLICY_FAIL);
    ck_assert(!request.load_into_webui);
    json_t *params = ms_api_merge_request_to_json(&request);
    char *text = ms_api_json_dumps(params, JSON_SORT_KEYS);
    ck_assert_str_eq(text, "{\"alpha\":null,\"base_alpha\":0.5,\"base_beta\":0.5,\"beta\":null,"
                           "\"load_into_webui\":false,\"merge_method\":\"weighted_sum\","
                           "\"model_a\":\"a.safetensors\",\"model_b\":\"b.safetensors\","
                           "\"model_c\":null,\"nan_policy\":\"fail\",\"output_name\":null,"
                           "\"precision\":16,\"prune\":false,\"weights_clip\":false}");
    free(text);
    json_decref(params);
    ms_api_merge_request_free(&request);
    ms_api_merge_request_free(&request);   /* twice is safe */
    ms_api_merge_request_free(NULL);
    /* null is absent for the optional fields */
    accept("{" WS ", \"model_c\": null, \"base_alpha\": null, \"base_beta\": null,"
           " \"alpha\": null, \"beta\": [], \"precision\": null, \"weights_clip\": null,"
           " \"prune\": null, \"nan_policy\": null, \"output_name\": null,"
           " \"load_into_webui\": null}",
           &request);
    ck_assert_ptr_null(request.model_c);
    ck_assert_double_eq(request.params.base_alpha, 0.5);
    ck_assert_int_eq(request.params.beta.form, MS_BLOCKS_NONE);
    ck_assert_int_eq(request.params.precision, 16);
    ms_api_merge_request_free(&request);
}
END_TEST

START_TEST(test_v1_full)
{
    ms_api_merge_request request;
    accept("{" ADD ", \"base_alpha\": 0.9, \"base_beta\": 1, \"alpha\": [0.9,1,2,3,4,5,6,7,8,"
           "9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24], \"beta\": {\"BASE\": 0.1,"
           " \"in00\": 0.3, \"OUT11\": 1, \"VAE\": 0.25}, \"precision\": 32,"
           " \"weights_clip\": true, \"prune\": true, \"nan_policy\": \"keep_a\","
           " \"output_name\": \"out.safetensors\", \"load_into_webui\": true}",
           &request);
    ck_assert_str_eq(request.model_c, "c.safetensors");
    ck_assert_str_eq(request.params.method->name, "add_difference");
    ck_assert_double_eq(request.params.base_alpha, 0.9);
    ck_assert_double_eq(request.params.base_beta, 1.0);
    ck_assert_int_eq(request.params.alpha.form, MS_BLOCKS_LIST);
    ck_assert_uint_eq(request.params.alpha.count, 25);
    ck_assert_double_eq(request.params.alpha.values[0], 0.9);
    ck_assert_double_eq(request.params.alpha.values[24], 24.0);
    const ms_block_weights *beta = &request.params.beta;
    ck_assert_int_eq(beta->form, MS_BLOCKS_NAMED);
    int index;
    ck_assert(ms_block_name_index("IN00", &index));
    ck_assert(beta->present[index]);
    ck_assert_double_eq(beta->values[index], 0.3);
    ck_assert(ms_block_name_index("IN01", &index));
    ck_assert(!beta->present[index]);
    ck_assert_int_eq(request.params.precision, 32);
    ck_assert(request.params.weights_clip);
    ck_assert(request.params.prune);
    ck_assert_int_eq(request.params.nan_policy, MS_NAN_POLICY_KEEP_A);
    ck_assert_str_eq(request.output_name, "out.safetensors");
    ck_assert(request.load_into_webui);

    /* the echo: 0.9 as 0.9, integers given for reals as reals, the forms as given */
    json_t *params = ms_api_merge_request_to_json(&request);
    char *text = ms_api_json_dumps(params, 0);
    ck_assert_ptr_nonnull(strstr(text, "\"base_alpha\":0.9,"));
    ck_assert_ptr_nonnull(strstr(text, "\"base_beta\":1.0,"));
    ck_assert_ptr_nonnull(strstr(text, "\"alpha\":[0.9,1.0,2.0,"));
    ck_assert_ptr_nonnull(
        strstr(text, "\"beta\":{\"BASE\":0.1,\"IN00\":0.3,\"OUT11\":1.0,\"VAE\":0.25}"));
    ck_assert_ptr_nonnull(strstr(text, "\"model_c\":\"c.safetensors\""));
    ck_assert_ptr_nonnull(strstr(text, "\"merge_method\":\"add_difference\""));
    ck_assert_ptr_nonnull(strstr(text, "\"precision\":32"));
    ck_assert_ptr_nonnull(strstr(text, "\"nan_policy\":\"keep_a\""));
    ck_assert_ptr_nonnull(strstr(text, "\"output_name\":\"out.safetensors\""));
    ck_assert_ptr_nonnull(strstr(text, "\"load_into_webui\":true"));
    ck_assert_ptr_null(strstr(text, "destination"));
    free(text);

    /* the echo is itself an accepted body giving the same request */
    ms_api_merge_request again;
    ms_error err;
    ms_error_clear(&err);
    ck_assert_int_eq(ms_api_merge_request_from_json(params, &again, &err), MS_OK);
    json_t *params_again = ms_api_merge_request_to_json(&again);
    ck_assert(json_equal(params, params_again));
    json_decref(params_again);
    ms_api_merge_request_free(&again);
    json_decref(params);
    ms_api_merge_request_free(&request);

    /* a 19-value list (SDXL) is accepted here; the core checks it against A */
    accept("{" WS ", \"alpha\": [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18]}", &request);
    ck_assert_int_eq(request.params.alpha.form, MS_BLOCKS_LIST);
    ck_assert_uint_eq(request.params.alpha.count, 19);
    ck_assert_double_eq(request.params.alpha.values[18], 18.0);
    params = ms_api_merge_request_to_json(&request);
    ck_assert_uint_eq(json_array_size(json_object_get(params, "alpha")), 19);
    json_decref(params);
    ms_api_merge_request_free(&request);

    /* an empty object names no block: the base everywhere */
    accept("{" WS ", \"alpha\": {}}", &request);
    ck_assert_int_eq(request.params.alpha.form, MS_BLOCKS_NONE);
    ms_api_merge_request_free(&request);
}
END_TEST

START_TEST(test_v1_body_and_required)
{
    expect_refused("[]", "(body)");
    expect_refused("null", "(body)");
    expect_refused("{\"model_b\": \"b\", \"merge_method\": \"weighted_sum\"}", "model_a");
    expect_refused("{\"model_a\": \"a\", \"merge_method\": \"weighted_sum\"}", "model_b");
    expect_refused("{" AB "}", "merge_method");
    expect_refused("{\"model_a\": \"\", \"model_b\": \"b\", \"merge_method\": \"weighted_sum\"}",
                   "model_a");
    expect_refused("{\"model_a\": \"a\", \"model_b\": \"\", \"merge_method\": \"weighted_sum\"}",
                   "model_b");
    expect_refused("{" WS ", \"model_c\": \"\"}", "model_c");
    expect_refused("{\"model_a\": \"a\\u0000b\", \"model_b\": \"b\", \"merge_method\": \"weighted_sum\"}",
                   "model_a");
}
END_TEST

START_TEST(test_v1_unknown_fields)
{
    ms_error err;
    expect_refused_by(ms_api_merge_request_from_json, "{" WS ", \"alpah\": 0.3}",
                      MS_ERR_INVALID_PARAMETER, "alpah", &err);
    ck_assert_ptr_nonnull(strstr(err.message, "unknown field 'alpah'"));
    /* the extension's fields are not ours */
    expect_refused("{" WS ", \"destination\": \"out.safetensors\"}", "destination");
    expect_refused("{" WS ", \"re_basin\": false}", "re_basin");
    expect_refused("{" WS ", \"threads\": 1}", "threads");
    expect_refused("{" WS ", \"device\": \"cpu\"}", "device");
    expect_refused("{" WS ", \"cache\": true}", "cache");
}
END_TEST

START_TEST(test_v1_wrong_types)
{
    static const struct {
        const char *text;
        const char *field;
    } cases[] = {
        {"{\"model_a\": 1, \"model_b\": \"b\", \"merge_method\": \"weighted_sum\"}", "model_a"},
        {"{\"model_a\": \"a\", \"model_b\": null, \"merge_method\": \"weighted_sum\"}",
         "model_b"},
        {"{" WS ", \"model_c\": []}", "model_c"},
        {"{" AB ", \"merge_method\": 3}", "merge_method"},
        {"{" AB ", \"merge_method\": null}", "merge_method"},
        {"{" WS ", \"base_alpha\": \"0.5\"}", "base_alpha"},
        {"{" WS ", \"base_beta\": true}", "base_beta"},
        {"{" WS ", \"alpha\": 0.5}", "alpha"},
        {"{" WS ", \"beta\": \"0.5\"}", "beta"},
        {"{" WS ", \"precision\": \"16\"}", "precision"},
        {"{" WS ", \"precision\": 16.0}", "precision"},
        {"{" WS ", \"precision\": 24}", "precision"},
        {"{" WS ", \"weights_clip\": 1}", "weights_clip"},
        {"{" WS ", \"prune\": \"yes\"}", "prune"},
        {"{" WS ", \"nan_policy\": 0}", "nan_policy"},
        {"{" WS ", \"nan_policy\": \"skip\"}", "nan_policy"},
        {"{" WS ", \"output_name\": 7}", "output_name"},
        {"{" WS ", \"load_into_webui\": 0}", "load_into_webui"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_refused(cases[i].text, cases[i].field);
}
END_TEST

START_TEST(test_v1_integers_for_numbers)
{
    ms_api_merge_request request;
    accept("{" WS ", \"base_alpha\": 1, \"base_beta\": 0, \"alpha\": {\"M00\": 1}}", &request);
    ck_assert_double_eq(request.params.base_alpha, 1.0);
    ck_assert_double_eq(request.params.base_beta, 0.0);
    int index;
    ck_assert(ms_block_name_index("M00", &index));
    ck_assert_double_eq(request.params.alpha.values[index], 1.0);
    ms_api_merge_request_free(&request);
    /* numbers past double's range never reach us: the parser refuses them */
    json_error_t error;
    ck_assert_ptr_null(json_loads("{\"base_alpha\": 1e400}", 0, &error));
}
END_TEST

START_TEST(test_v1_block_lists)
{
    char text[512];
    ms_error err;
    snprintf(text, sizeof text, "{" WS ", \"alpha\": %s}", list24);
    expect_refused_by(ms_api_merge_request_from_json, text, MS_ERR_INVALID_PARAMETER, "alpha",
                      &err);
    json_t *object = ms_api_error_object(&err);
    ck_assert_int_eq(json_integer_value(detail(object, "length")), 24);
    ck_assert_str_eq(json_string_value(detail(object, "accepted")), "25 or 19");
    json_decref(object);
    snprintf(text, sizeof text, "{" WS ", \"beta\": [0.5]}");
    expect_refused_by(ms_api_merge_request_from_json, text, MS_ERR_INVALID_PARAMETER, "beta",
                      &err);
    object = ms_api_error_object(&err);
    ck_assert_int_eq(json_integer_value(detail(object, "length")), 1);
    json_decref(object);
    /* non-numbers inside a list of the right length */
    snprintf(text, sizeof text, "{" WS ", \"alpha\": %.*s\"x\"]}",
             (int)(strrchr(list25, ',') - list25 + 1), list25);
    expect_refused_by(ms_api_merge_request_from_json, text, MS_ERR_INVALID_PARAMETER, "alpha",
                      &err);
    object = ms_api_error_object(&err);
    ck_assert_int_eq(json_integer_value(detail(object, "position")), 24);
    json_decref(object);
    snprintf(text, sizeof text, "{" WS ", \"beta\": [null%s}", strchr(list19, ','));
    expect_refused_by(ms_api_merge_request_from_json, text, MS_ERR_INVALID_PARAMETER, "beta",
                      &err);
    object = ms_api_error_object(&err);
    ck_assert_int_eq(json_integer_value(detail(object, "position")), 0);
    json_decref(object);
}
END_TEST

START_TEST(test_v1_named_blocks)
{
    ms_error err;
    expect_refused_by(ms_api_merge_request_from_json, "{" WS ", \"alpha\": {\"IN99\": 0.5}}",
                      MS_ERR_INVALID_PARAMETER, "alpha", &err);
    json_t *object = ms_api_error_object(&err);
    ck_assert_str_eq(json_string_value(detail(object, "block")), "IN99");
    ck_assert_ptr_nonnull(strstr(err.message, "IN99"));
    json_decref(object);
    expect_refused_by(ms_api_merge_request_from_json,
                      "{" WS ", \"beta\": {\"IN00\": 0.5, \"in00\": 0.25}}",
                      MS_ERR_INVALID_PARAMETER, "beta", &err);
    object = ms_api_error_object(&err);
    ck_assert_str_eq(json_string_value(detail(object, "block")), "in00");
    json_decref(object);
    expect_refused_by(ms_api_merge_request_from_json, "{" WS ", \"beta\": {\"VAE\": \"x\"}}",
                      MS_ERR_INVALID_PARAMETER, "beta", &err);
    object = ms_api_error_object(&err);
    ck_assert_str_eq(json_string_value(detail(object, "block")), "VAE");
    json_decref(object);
}
END_TEST

START_TEST(test_v1_methods)
{
    ms_error err;
    expect_refused_by(ms_api_merge_request_from_json, "{" AB ", \"merge_method\": \"blend\"}",
                      MS_ERR_INVALID_PARAMETER, "merge_method", &err);
    json_t *object = ms_api_error_object(&err);
    const char *accepted = json_string_value(detail(object, "accepted"));
    ck_assert_ptr_nonnull(accepted);
    size_t count = 0;
    const ms_merge_method *methods = ms_merge_methods(&count);
    ck_assert_uint_gt(count, 1);
    for (size_t i = 0; i < count; i++)
        ck_assert_msg(strstr(accepted, methods[i].name) != NULL, "%s not in %s",
                      methods[i].name, accepted);
    json_decref(object);
    expect_refused("{" AB ", \"merge_method\": \"\"}", "merge_method");

    /* rotate is one more method of the table */
    ms_api_merge_request rotate_request;
    accept("{" AB ", \"merge_method\": \"rotate\"}", &rotate_request);
    ck_assert_str_eq(rotate_request.params.method->name, "rotate");
    ms_api_merge_request_free(&rotate_request);

    /* three-model methods need model_c; two-model ones refuse it */
    expect_refused_by(ms_api_merge_request_from_json,
                      "{" AB ", \"merge_method\": \"add_difference\"}", MS_ERR_INVALID_PARAMETER,
                      "model_c", &err);
    ck_assert_ptr_nonnull(strstr(err.message, "add_difference"));
    expect_refused_by(ms_api_merge_request_from_json,
                      "{" AB ", \"merge_method\": \"add_difference\", \"model_c\": null}",
                      MS_ERR_INVALID_PARAMETER, "model_c", &err);
    expect_refused_by(ms_api_merge_request_from_json, "{" WS ", \"model_c\": \"c\"}",
                      MS_ERR_INVALID_PARAMETER, "model_c", &err);
    ck_assert_ptr_nonnull(strstr(err.message, "weighted_sum"));
    /* every method of the table is accepted by its name */
    for (size_t i = 0; i < count; i++) {
        char text[256];
        snprintf(text, sizeof text, "{" AB ", \"merge_method\": \"%s\"%s}", methods[i].name,
                 methods[i].model_count == 3 ? ", \"model_c\": \"c\"" : "");
        ms_api_merge_request request;
        accept(text, &request);
        ck_assert_ptr_eq(request.params.method, &methods[i]);
        ck_assert(methods[i].model_count == 3 ? request.model_c != NULL
                                              : request.model_c == NULL);
        ms_api_merge_request_free(&request);
    }
}
END_TEST

/* ---- the web UI extension's body ---- */

/* What sd-webui-bayesian-merger sends (its merger posts these fields). */
#define BBWM_BODY                                                                          \
    "{\"destination\": \"/models/out.safetensors\", \"unload_before\": false,"             \
    " \"merge_method\": \"weighted_sum\", \"model_a\": \"/models/a.safetensors\","         \
    " \"model_b\": \"/models/b.safetensors\", \"model_c\": null, \"base_alpha\": 0.9,"     \
    " \"base_beta\": 0.5, \"alpha\": [0.9,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19," \
    "20,21,22,23,24], \"beta\": [], \"precision\": 16, \"weights_clip\": false,"          \
    " \"re_basin\": false, \"re_basin_iterations\": 1, \"device\": \"cpu\","               \
    " \"work_device\": null, \"prune\": false, \"threads\": 1"

START_TEST(test_bbwm_full)
{
    ms_api_merge_request request;
    accept_bbwm(BBWM_BODY "}", &request);
    ck_assert_str_eq(request.model_a, "/models/a.safetensors");
    ck_assert_ptr_null(request.model_c);
    ck_assert_str_eq(request.destination, "/models/out.safetensors");
    ck_assert_double_eq(request.params.base_alpha, 0.9);
    ck_assert_int_eq(request.params.alpha.form, MS_BLOCKS_LIST);
    ck_assert_int_eq(request.params.beta.form, MS_BLOCKS_NONE);
    ck_assert(!request.unload_before);
    ck_assert_int_eq(request.params.precision, 16);
    json_t *params = ms_api_merge_request_to_json(&request);
    ck_assert_str_eq(json_string_value(json_object_get(params, "destination")),
                     "/models/out.safetensors");
    char *text = ms_api_json_dumps(params, 0);
    ck_assert_ptr_nonnull(strstr(text, "\"base_alpha\":0.9,"));
    free(text);
    json_decref(params);
    ms_api_merge_request_free(&request);

    /* forks' extra fields are ignored, so are our own /v1-only fields */
    accept_bbwm(BBWM_BODY ", \"cache\": {}, \"sdxl\": true, \"save_iterations\": 3,"
                " \"nan_policy\": 5, \"output_name\": 1}",
                &request);
    ck_assert_ptr_null(request.output_name);
    ck_assert_int_eq(request.params.nan_policy, MS_NAN_POLICY_FAIL);
    ms_api_merge_request_free(&request);

    /* the older extension: no destination, no threads; base_beta defaults */
    accept_bbwm("{\"merge_method\": \"add_difference\", \"model_a\": \"a\", \"model_b\": \"b\","
                " \"model_c\": \"c\", \"base_alpha\": 0.25, \"precision\": 32,"
                " \"device\": \"cuda\"}",
                &request);
    ck_assert_ptr_null(request.destination);
    ck_assert_str_eq(request.model_c, "c");
    ck_assert_double_eq(request.params.base_beta, 0.5);
    ck_assert_int_eq(request.params.precision, 32);
    ms_api_merge_request_free(&request);
}
END_TEST

START_TEST(test_bbwm_lenient_values)
{
    ms_api_merge_request request;
    /* 0/1 for bools, integral reals for integers, ints for numbers */
    accept_bbwm("{" WS ", \"weights_clip\": 1, \"prune\": 0, \"unload_before\": 1,"
                " \"re_basin\": 0, \"precision\": 32.0, \"threads\": 4.0,"
                " \"re_basin_iterations\": 2, \"base_alpha\": 1, \"work_device\": \"cpu\"}",
                &request);
    ck_assert(request.params.weights_clip);
    ck_assert(!request.params.prune);
    ck_assert(request.unload_before);
    ck_assert_int_eq(request.params.precision, 32);
    ck_assert_double_eq(request.params.base_alpha, 1.0);
    ms_api_merge_request_free(&request);
    /* model_c "" (sd-meh: `if model_c`) and model_c for a two-model method: unused */
    accept_bbwm("{" WS ", \"model_c\": \"\"}", &request);
    ck_assert_ptr_null(request.model_c);
    ms_api_merge_request_free(&request);
    accept_bbwm("{" WS ", \"model_c\": \"c\"}", &request);
    ck_assert_ptr_null(request.model_c);
    ms_api_merge_request_free(&request);
}
END_TEST

START_TEST(test_bbwm_refusals)
{
    static const struct {
        const char *text;
        const char *field;
    } cases[] = {
        {"{" WS ", \"weights_clip\": 2}", "weights_clip"},
        {"{" WS ", \"prune\": \"true\"}", "prune"},
        {"{" WS ", \"unload_before\": 0.5}", "unload_before"},
        {"{" WS ", \"precision\": 16.5}", "precision"},
        {"{" WS ", \"precision\": 8}", "precision"},
        {"{" WS ", \"threads\": \"4\"}", "threads"},
        {"{" WS ", \"threads\": 1e300}", "threads"},
        {"{" WS ", \"re_basin_iterations\": true}", "re_basin_iterations"},
        {"{" WS ", \"device\": 0}", "device"},
        {"{" WS ", \"work_device\": []}", "work_device"},
        {"{" WS ", \"re_basin\": \"no\"}", "re_basin"},
        {"{" WS ", \"destination\": 3}", "destination"},
        {"{" WS ", \"destination\": \"\"}", "destination"},
        {"{" WS ", \"destination\": \"out.ckpt\"}", "destination"},
        {"{" WS ", \"destination\": \"/m/OUT.CKPT\"}", "destination"},
        {"{" WS ", \"destination\": \"out.pt\"}", "destination"},
        {"{" WS ", \"destination\": \"out.pth\"}", "destination"},
        {"{" WS ", \"alpha\": [1, 2]}", "alpha"},
        {"{" WS ", \"base_alpha\": \"0.5\"}", "base_alpha"},
        {"{" AB ", \"merge_method\": \"add_difference\"}", "model_c"},
        {"{" AB ", \"merge_method\": \"nope\"}", "merge_method"},
        {"{\"model_a\": \"a\", \"merge_method\": \"weighted_sum\"}", "model_b"},
        {"[1]", "(body)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_bbwm_refused(cases[i].text, cases[i].field);

    ms_error err;
    expect_refused_by(ms_api_bbwm_request_from_json, "{" WS ", \"re_basin\": true}",
                      MS_ERR_UNSUPPORTED_OPTION, "re_basin", &err);
    expect_refused_by(ms_api_bbwm_request_from_json, "{" WS ", \"re_basin\": 1}",
                      MS_ERR_UNSUPPORTED_OPTION, "re_basin", &err);
    /* rotate, with the forks' cache field (the cache is always on) */
    ms_api_merge_request rotate_request;
    accept_bbwm("{" AB ", \"merge_method\": \"rotate\", \"cache\": true}", &rotate_request);
    ck_assert_str_eq(rotate_request.params.method->name, "rotate");
    ms_api_merge_request_free(&rotate_request);
    /* null is absent */
    ms_api_merge_request request;
    accept_bbwm("{" WS ", \"destination\": null, \"re_basin\": null, \"threads\": null,"
                " \"device\": null, \"unload_before\": null}",
                &request);
    ck_assert_ptr_null(request.destination);
    ck_assert(!request.load_into_webui);
    ms_api_merge_request_free(&request);
    /* "memory": handed to the web UI, no file destination */
    accept_bbwm("{" WS ", \"destination\": \"memory\", \"unload_before\": true}", &request);
    ck_assert_ptr_null(request.destination);
    ck_assert(request.load_into_webui);
    ck_assert(request.unload_before);
    ms_api_merge_request_free(&request);
}
END_TEST

/* ---- report ---- */

START_TEST(test_report_json)
{
    char *nan_keys[] = {"model.diffusion_model.out.2.weight", "bad\xff key"};
    ms_merge_block_use uses[] = {
        {.block = -1, .alpha = 0.9, .beta = 0.5, .key_count = 10},
        {.block = 3, .alpha = 0.1 + 0.2, .beta = 0.5, .key_count = 4},
    };
    ms_merge_report report = {.architecture = MS_MERGE_ARCH_SD1, .merged_count = 14,
                              .copied_from_a_count = 2, .taken_from_b_count = 1,
                              .nan_key_count = 2, .nan_keys = nan_keys,
                              .block_form = MS_BLOCKS_LIST, .block_use_count = 2,
                              .block_uses = uses, .seconds = 1.5};
    json_t *json = ms_api_merge_report_to_json(&report);
    char *text = ms_api_json_dumps(json, 0);
    ck_assert_str_eq(text,
                     "{\"architecture\":\"sd1\",\"keys\":{\"merged\":14,\"copied_from_a\":2,"
                     "\"taken_from_b\":1},\"nan_keys\":[\"model.diffusion_model.out.2.weight\","
                     "\"bad? key\"],\"blocks\":[{\"block\":\"base\",\"alpha\":0.9,\"beta\":0.5,"
                     "\"keys\":10},{\"block\":3,\"alpha\":0.30000000000000004,\"beta\":0.5,"
                     "\"keys\":4}],\"seconds\":1.5}");
    free(text);
    json_decref(json);

    /* named blocks are named; SDXL; no NaN keys; a NaN time is null */
    int in03;
    ck_assert(ms_block_name_index("IN03", &in03));
    uses[1].block = in03;
    report.block_form = MS_BLOCKS_NAMED;
    report.architecture = MS_MERGE_ARCH_SDXL;
    report.nan_key_count = 0;
    report.nan_keys = NULL;
    report.seconds = NAN;
    json = ms_api_merge_report_to_json(&report);
    ck_assert_str_eq(json_string_value(json_object_get(json, "architecture")), "sdxl");
    json_t *blocks = json_object_get(json, "blocks");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(blocks, 1), "block")),
                     "IN03");
    ck_assert_uint_eq(json_array_size(json_object_get(json, "nan_keys")), 0);
    ck_assert(json_is_null(json_object_get(json, "seconds")));
    json_decref(json);

    ms_merge_report empty = {0};
    json = ms_api_merge_report_to_json(&empty);
    ck_assert_uint_eq(json_array_size(json_object_get(json, "blocks")), 0);
    json_decref(json);
}
END_TEST

/* An integer past 64 bits (read as a real by ms_api_json_loadb) is out of
 * range for an integer field, in both bodies; a number field takes it. */
START_TEST(test_big_integers)
{
    static const struct {
        request_parser parser;
        const char *text;
        const char *field;
    } cases[] = {
        {ms_api_merge_request_from_json, "{" WS ", \"precision\": 99999999999999999999}",
         "precision"},
        {ms_api_bbwm_request_from_json, "{" WS ", \"precision\": -99999999999999999999}",
         "precision"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_error_t error;
        json_t *body = ms_api_json_loadb(cases[i].text, strlen(cases[i].text), 0, &error);
        ck_assert_ptr_nonnull(body);
        ms_api_merge_request request;
        ms_error err;
        ck_assert_int_eq(cases[i].parser(body, &request, &err), MS_ERR_INVALID_PARAMETER);
        ck_assert_str_eq(err.details[0].value, cases[i].field);
        ck_assert_msg(strstr(err.message, "out of range") != NULL, "%s", err.message);
        json_decref(body);
    }
    const char *text = "{" WS ", \"base_alpha\": 99999999999999999999}";
    json_error_t error;
    json_t *body = ms_api_json_loadb(text, strlen(text), 0, &error);
    ms_api_merge_request request;
    ms_error err;
    ck_assert_int_eq(ms_api_merge_request_from_json(body, &request, &err), MS_OK);
    ck_assert_double_eq(request.params.base_alpha, 1e20);
    ms_api_merge_request_free(&request);
    json_decref(body);
}
END_TEST

static Suite *merge_api_suite(void)
{
    Suite *suite = suite_create("merge_api");
    TCase *json_text = tcase_create("json_text");
    tcase_add_test(json_text, test_shortest_known_values);
    tcase_add_test(json_text, test_shortest_round_trips);
    tcase_add_test(json_text, test_dumps_matches_jansson_without_reals);
    tcase_add_test(json_text, test_dumps_mixed);
    suite_add_tcase(suite, json_text);
    TCase *v1 = tcase_create("v1_request");
    tcase_add_test(v1, test_v1_defaults);
    tcase_add_test(v1, test_v1_full);
    tcase_add_test(v1, test_v1_body_and_required);
    tcase_add_test(v1, test_v1_unknown_fields);
    tcase_add_test(v1, test_v1_wrong_types);
    tcase_add_test(v1, test_v1_integers_for_numbers);
    tcase_add_test(v1, test_v1_block_lists);
    tcase_add_test(v1, test_v1_named_blocks);
    tcase_add_test(v1, test_v1_methods);
    suite_add_tcase(suite, v1);
    TCase *bbwm = tcase_create("bbwm_request");
    tcase_add_test(bbwm, test_bbwm_full);
    tcase_add_test(bbwm, test_bbwm_lenient_values);
    tcase_add_test(bbwm, test_bbwm_refusals);
    suite_add_tcase(suite, bbwm);
    TCase *integers = tcase_create("big_integers");
    tcase_add_test(integers, test_big_integers);
    suite_add_tcase(suite, integers);
    TCase *report = tcase_create("report");
    tcase_add_test(report, test_report_json);
    suite_add_tcase(suite, report);
    return suite;
}

int main(void)
{
    return ms_test_run_suite(merge_api_suite());
}
