/* ms_resize_file: a LoRA file in, a resized LoRA file out (resize.h).
 *
 * The modules are shared out to a small pthread pool; each worker reads one
 * module, resizes it and hands its tensors to the (thread-safe) writer, so
 * memory stays at one module per worker.  The first error stops everyone,
 * and any failure aborts the writer so nothing is left under output_path. */
#include "resize_internal.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { max_workers = 64 };

typedef struct resize_job {
    const ms_safetensors *input;
    const ms_lora_module_list *modules;
    const ms_resize_params *params;
    ms_writer *writer;
    ms_resize_module_report *reports;   /* one per module, same order */
    bool *zero_spectrum;                /* one per module, same order */
    ms_progress_fn progress;
    void *progress_user_data;
    const atomic_int *cancel;
    pthread_mutex_t lock;               /* guards everything below */
    size_t next;
    size_t done;
    bool stop;
    ms_status status;
    ms_error error;
} resize_job;

static bool cancel_requested(const atomic_int *cancel)
{
    return cancel != NULL && atomic_load(cancel) != 0;
}

/* Called with the lock held: the first error wins. */
static void fail_locked(resize_job *job, ms_status status, const ms_error *error)
{
    if (job->status == MS_OK) {
        job->status = status;
        job->error = *error;
    }
    job->stop = true;
}

/* Takes the next module index, or returns false when there is none left or
 * the job must stop (error or cancellation). */
static bool take_module(resize_job *job, size_t *index)
{
    bool taken = false;
    pthread_mutex_lock(&job->lock);
    if (!job->stop && cancel_requested(job->cancel)) {
        ms_error error;
        ms_error_set(&error, MS_ERR_CANCELLED, NULL, "resize cancelled");
        fail_locked(job, MS_ERR_CANCELLED, &error);
    }
    if (!job->stop && job->next < job->modules->count) {
        *index = job->next++;
        taken = true;
    }
    pthread_mutex_unlock(&job->lock);
    return taken;
}

/* The progress callback runs under the lock so that done counts arrive in
 * order, whichever worker finished. */
static void finish_module(resize_job *job, size_t index, ms_status status,
                          const ms_error *error)
{
    pthread_mutex_lock(&job->lock);
    if (status != MS_OK) {
        fail_locked(job, status, error);
    } else {
        job->done++;
        if (job->progress != NULL)
            job->progress(job->progress_user_data, job->done, job->modules->count,
                          job->modules->modules[index].name);
    }
    pthread_mutex_unlock(&job->lock);
}

static void *worker_main(void *argument)
{
    resize_job *job = argument;
    size_t index;
    while (take_module(job, &index)) {
        ms_error error;
        ms_error_clear(&error);
        ms_status status = ms_resize_module(job->input, &job->modules->modules[index],
                                            job->params, job->writer, &job->reports[index],
                                            &job->zero_spectrum[index], &error);
        finish_module(job, index, status, &error);
    }
    return NULL;
}

static size_t worker_count(const ms_resize_params *params, size_t module_count)
{
    long count = params->threads;
    if (count <= 0)
        count = sysconf(_SC_NPROCESSORS_ONLN);
    if (count < 1)
        count = 1;
    if (count > max_workers)
        count = max_workers;
    if ((size_t)count > module_count)
        count = (long)module_count;
    return (size_t)count;
}

/* The calling thread is one of the workers; the others are extra threads.
 * If a thread cannot be created the remaining ones just do more. */
static void run_pool(resize_job *job)
{
    /* OpenBLAS runs single-threaded: the parallelism is across modules, and
     * concurrent calls from several user threads into a multithreaded
     * OpenBLAS are unsafe in older versions (its shared thread buffers).
     * Measured on 2 cores (SD1.5 rank-128 LoRA): 2 workers x 1 BLAS thread
     * beat 1 worker x 2 BLAS threads by about 2x in wall time, the r x r
     * problems being too small for BLAS threading (which mostly spins).
     * This setting is process-wide. */
    openblas_set_num_threads(1);
    size_t count = worker_count(job->params, job->modules->count);
    pthread_t threads[max_workers];
    size_t started = 0;
    for (size_t i = 1; i < count; i++) {
        if (pthread_create(&threads[started], NULL, worker_main, job) != 0)
            break;
        started++;
    }
    worker_main(job);
    for (size_t i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
}

static ms_status copy_passthrough(const ms_safetensors *input, const ms_lora_module_list *list,
                                  ms_writer *writer, ms_error *err)
{
    for (size_t i = 0; i < list->passthrough_count; i++) {
        const ms_tensor_info *tensor = list->passthrough[i];
        /* copied as they are, still checked like every output tensor */
        ms_status status = ms_safetensors_check_finite(input, tensor, err);
        if (status != MS_OK)
            return status;
        status = ms_writer_add_bytes(writer, tensor->name, tensor->dtype,
                                               tensor->ndim, tensor->shape,
                                               ms_safetensors_tensor_bytes(input, tensor),
                                               tensor->byte_count, err);
        if (status != MS_OK)
            return status;
    }
    return MS_OK;
}

/* Mean and population std of fro_retained, as kohya prints them: kohya
 * skips modules whose retention is NaN (0/0, an all-zero spectrum), so those
 * are left out here too although their entries say 1.0.  With nothing left
 * the mean is 1.0 and the std 0, matching the per-module convention. */
static void summarize(ms_resize_report *report, const bool *zero_spectrum)
{
    double sum = 0.0, squares = 0.0, count = 0.0;
    for (size_t i = 0; i < report->module_count; i++) {
        if (!zero_spectrum[i]) {
            sum += report->modules[i].fro_retained;
            count += 1.0;
        }
    }
    report->fro_retained_mean = count > 0 ? sum / count : 1.0;
    for (size_t i = 0; i < report->module_count; i++) {
        if (!zero_spectrum[i]) {
            double delta = report->modules[i].fro_retained - report->fro_retained_mean;
            squares += delta * delta;
        }
    }
    report->fro_retained_std = count > 0 ? sqrt(squares / count) : 0.0;
}

typedef struct resize_state {
    ms_safetensors input;
    bool input_open;
    ms_lora_module_list modules;
    ms_writer *writer;
    ms_resize_module_report *reports;
    bool *zero_spectrum;
} resize_state;

static void free_reports(ms_resize_module_report *reports, size_t count)
{
    if (reports == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        free(reports[i].name);
    free(reports);
}

static ms_status prepare(resize_state *state, const char *input_path, const char *output_path,
                         ms_error *err)
{
    ms_status status = ms_safetensors_open(input_path, &state->input, err);
    if (status != MS_OK)
        return status;
    state->input_open = true;
    status = ms_lora_find_modules(&state->input, &state->modules, err);
    if (status != MS_OK)
        return status;
    if (state->modules.count == 0)
        return ms_error_set(err, MS_ERR_NOT_A_LORA, NULL,
                            "%s has no LoRA module (no down/up tensor pair)", input_path);
    state->reports = calloc(state->modules.count, sizeof *state->reports);
    state->zero_spectrum = calloc(state->modules.count, sizeof *state->zero_spectrum);
    if (state->reports == NULL || state->zero_spectrum == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory for the report");
    return ms_writer_open(output_path, &state->writer, err);
}

static ms_status run_modules(resize_state *state, const ms_resize_params *params,
                             ms_progress_fn progress, void *progress_user_data,
                             const atomic_int *cancel, ms_error *err)
{
    resize_job job = {
        .input = &state->input,
        .modules = &state->modules,
        .params = params,
        .writer = state->writer,
        .reports = state->reports,
        .zero_spectrum = state->zero_spectrum,
        .progress = progress,
        .progress_user_data = progress_user_data,
        .cancel = cancel,
        .status = MS_OK,
    };
    if (pthread_mutex_init(&job.lock, NULL) != 0)
        return ms_error_set(err, MS_ERR_INTERNAL, NULL, "cannot create a mutex");
    /* (0, total) first, so a caller shows the module count before the
     * first (possibly slow) module is done */
    if (progress != NULL)
        progress(progress_user_data, 0, state->modules.count, NULL);
    run_pool(&job);
    pthread_mutex_destroy(&job.lock);
    if (job.status != MS_OK && err != NULL)
        *err = job.error;
    return job.status;
}

ms_status ms_resize_file(const char *input_path, const char *output_path,
                         const ms_resize_params *params,
                         ms_progress_fn progress, void *progress_user_data,
                         const atomic_int *cancel,
                         ms_resize_report *report, ms_error *err)
{
    resize_state state = {0};
    ms_writer_result result;
    if (report != NULL)
        memset(report, 0, sizeof *report);
    if (params == NULL)
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL, "no resize parameters");
    ms_status status = ms_resize_params_validate(params, err);
    if (status == MS_OK && cancel_requested(cancel))
        status = ms_error_set(err, MS_ERR_CANCELLED, NULL, "resize cancelled");
    if (status == MS_OK)
        status = prepare(&state, input_path, output_path, err);
    if (status == MS_OK)
        status = copy_passthrough(&state.input, &state.modules, state.writer, err);
    if (status == MS_OK)
        status = run_modules(&state, params, progress, progress_user_data, cancel, err);
    if (status == MS_OK) /* after the modules: ss_network_alpha is one's result */
        status = ms_resize_set_metadata(state.writer, &state.input, params, &state.modules,
                                        state.reports, err);
    /* a cancel that arrived during the last modules still wins over publishing */
    if (status == MS_OK && cancel_requested(cancel))
        status = ms_error_set(err, MS_ERR_CANCELLED, NULL, "resize cancelled");
    if (status == MS_OK) {
        /* finish frees the writer, also when it fails */
        ms_writer *writer = state.writer;
        state.writer = NULL;
        status = ms_writer_finish(writer, &result, err);
    }
    if (status == MS_OK && report != NULL) {
        report->module_count = state.modules.count;
        report->modules = state.reports;
        state.reports = NULL;
        report->copied_tensor_count = state.modules.passthrough_count;
        report->output_bytes = result.file_bytes;
        memcpy(report->output_sha256, result.file_sha256, sizeof report->output_sha256);
        memcpy(report->model_hash, result.data_sha256, sizeof report->model_hash);
        summarize(report, state.zero_spectrum);
    }
    ms_writer_abort(state.writer);
    free_reports(state.reports, state.modules.count);
    free(state.zero_spectrum);
    ms_lora_module_list_free(&state.modules);
    if (state.input_open)
        ms_safetensors_close(&state.input);
    return status;
}

void ms_resize_report_free(ms_resize_report *report)
{
    if (report == NULL)
        return;
    free_reports(report->modules, report->module_count);
    memset(report, 0, sizeof *report);
}
