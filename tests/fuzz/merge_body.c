/* Merge bodies as the service reads them (submit_merge.c, merge_job.h):
 * parsed with the submit's flags and validated, the output name made, the
 * block weights checked against both architectures.  An accepted body is
 * stored (wrapped for /bbwm) and parsed again when its job runs: that must
 * give the same request, and the params echo must read back through the
 * same parser as the same request. */
#include "merge_body.h"

#include <string.h>

#include "fuzz.h"
#include "core/merge/blocks.h"
#include "server/jobs/merge_job.h"
#include "server/paths.h"

static const char *const sample_keys[] = {
    "model.diffusion_model.time_embed.0.weight",
    "model.diffusion_model.input_blocks.4.1.proj_in.weight",
    "model.diffusion_model.middle_block.1.norm.bias",
    "model.diffusion_model.output_blocks.11.1.proj_out.weight",
    "model.diffusion_model.out.2.weight",
    "first_stage_model.decoder.conv_in.weight",
    "cond_stage_model.transformer.text_model.final_layer_norm.weight",
};

static char *params_of(ms_merge_job *job)
{
    char *text = ms_merge_job_params_text(job, job->request.output_name);
    MS_FUZZ_CHECK(text != NULL);
    return text;
}

/* A parsed job's params text; aborts when body is refused. */
static char *reparsed_params(const json_t *body, bool from_bbwm)
{
    ms_merge_job job;
    ms_error err;
    MS_FUZZ_CHECK(ms_merge_job_parse(body, from_bbwm, &job, &err) == MS_OK);
    char *text = params_of(&job);
    ms_merge_job_free(&job);
    return text;
}

static void check_weights(const ms_merge_params *params)
{
    for (int arch = MS_MERGE_ARCH_SD1; arch <= MS_MERGE_ARCH_SDXL; arch++) {
        ms_error err;
        if (ms_block_weights_validate(&params->alpha, "alpha", arch, &err) != MS_OK) {
            ms_fuzz_check_error(&err);
            continue;
        }
        for (size_t i = 0; i < sizeof sample_keys / sizeof sample_keys[0]; i++) {
            int block = 0;
            ms_block_weight_for_key(&params->alpha, arch, sample_keys[i], params->base_alpha,
                                    &block);
            MS_FUZZ_CHECK(block >= -1 && block < MS_BLOCK_NAMED_COUNT);
        }
    }
}

static void check_accepted(const json_t *body, bool from_bbwm, ms_merge_job *job)
{
    const ms_api_merge_request *request = &job->request;
    const ms_merge_method *method = request->params.method;
    MS_FUZZ_CHECK(request->model_a != NULL && request->model_a[0] != '\0');
    MS_FUZZ_CHECK(request->model_b != NULL && request->model_b[0] != '\0');
    MS_FUZZ_CHECK(method != NULL);
    MS_FUZZ_CHECK((request->model_c != NULL) == (method->model_count == 3));
    char *name = ms_merge_job_output_name(job);
    MS_FUZZ_CHECK(name != NULL);
    if (request->output_name == NULL)
        MS_FUZZ_CHECK(ms_paths_output_name_valid(name));
    free(name);
    check_weights(&request->params);

    char *params = params_of(job);
    /* what the job runs from after a restart */
    char *stored = ms_merge_job_stored_text(body, from_bbwm);
    MS_FUZZ_CHECK(stored != NULL);
    ms_merge_job rerun;
    ms_error err;
    MS_FUZZ_CHECK(ms_merge_job_parse_stored(stored, &rerun, &err) == MS_OK);
    MS_FUZZ_CHECK(rerun.from_bbwm == from_bbwm);
    char *rerun_params = params_of(&rerun);
    MS_FUZZ_CHECK(strcmp(params, rerun_params) == 0);
    /* the echo as a body of the same kind */
    json_t *echo = json_loads(params, 0, NULL);
    MS_FUZZ_CHECK(echo != NULL);
    char *echoed = reparsed_params(echo, from_bbwm);
    MS_FUZZ_CHECK(strcmp(params, echoed) == 0);
    free(echoed);
    json_decref(echo);
    free(rerun_params);
    ms_merge_job_free(&rerun);
    free(stored);
    free(params);
}

void ms_fuzz_merge_body(const uint8_t *data, size_t size, bool from_bbwm)
{
    json_t *body = ms_fuzz_json_body(data, size);
    if (body == NULL)
        return;
    ms_merge_job job;
    ms_error err;
    if (ms_merge_job_parse(body, from_bbwm, &job, &err) == MS_OK)
        check_accepted(body, from_bbwm, &job);
    else
        ms_fuzz_check_error(&err);
    ms_merge_job_free(&job);
    json_decref(body);
}
