/* POST /v1/resize-lora bodies, as the service reads them: parsed with the
 * submit's flags, validated (api.h), the output name checked or made.  An
 * accepted body is stored compact and parsed again when its job runs
 * (job_runner.c): that must give the same request, and the job's params
 * echo must read back as the same request too. */
#include "fuzz.h"

#include <string.h>

#include "api/api.h"
#include "server/paths.h"

/* The params text of a request taken from body; aborts when body is refused. */
static char *params_of(const json_t *body)
{
    ms_api_resize_request request;
    ms_error err;
    MS_FUZZ_CHECK(ms_api_resize_request_from_json(body, &request, &err) == MS_OK);
    json_t *params = ms_api_resize_request_to_json(&request);
    char *text = ms_fuzz_json_text(params);
    json_decref(params);
    ms_api_resize_request_free(&request);
    return text;
}

static void check_accepted(const json_t *body, const ms_api_resize_request *request)
{
    MS_FUZZ_CHECK(request->model != NULL && request->model[0] != '\0');
    MS_FUZZ_CHECK(request->params.new_rank >= 1);
    char *name = ms_paths_default_output_name(request->model);
    MS_FUZZ_CHECK(name != NULL && ms_paths_output_name_valid(name));
    free(name);
    if (request->output_name != NULL)
        (void)ms_paths_output_name_valid(request->output_name);

    json_t *echo = ms_api_resize_request_to_json(request);
    char *params = ms_fuzz_json_text(echo);
    /* what the job runs from after a restart */
    char *stored = json_dumps(body, JSON_COMPACT);
    MS_FUZZ_CHECK(stored != NULL);
    json_t *reloaded = json_loads(stored, 0, NULL);
    MS_FUZZ_CHECK(reloaded != NULL);
    char *rerun = params_of(reloaded);
    MS_FUZZ_CHECK(strcmp(params, rerun) == 0);
    char *echoed = params_of(echo);
    MS_FUZZ_CHECK(strcmp(params, echoed) == 0);
    free(echoed);
    free(rerun);
    json_decref(reloaded);
    free(stored);
    free(params);
    json_decref(echo);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *body = ms_fuzz_json_body(data, size);
    if (body == NULL)
        return 0;
    ms_api_resize_request request;
    ms_error err;
    if (ms_api_resize_request_from_json(body, &request, &err) == MS_OK) {
        check_accepted(body, &request);
        ms_api_resize_request_free(&request);
    } else {
        MS_FUZZ_CHECK(request.model == NULL && request.output_name == NULL);
        ms_fuzz_check_error(&err);
    }
    json_decref(body);
    return 0;
}
