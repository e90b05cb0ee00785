/* The merge driver: open the inputs, plan every output tensor, lay out the
 * output, then let workers write tensors in file order while this thread
 * seals them (hash, write-back, progress) in the same order.
 *
 * Memory: a worker reserves its method's scratch before it starts a tensor;
 * while the reservations would pass the budget it waits (one tensor may
 * always run, whatever its size, once nothing else holds memory), and no
 * other tensor is handed out while one waits, so a large tensor is never
 * starved by a stream of small ones. */
#include "merge.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/model/inspect.h"
#include "merge_internal.h"
#include "planned_writer.h"
#include "method_internal.h"
#include "tensor.h"

enum {
    DEFAULT_MEMORY_BUDGET = 320u << 20,
    MAX_WORKERS = 64,
    CANCEL_POLL_MS = 50,
};

typedef struct merge_run {
    const ms_merge_params *params;
    merge_input inputs[MS_MERGE_MAX_MODELS];
    int model_count;
    ms_merge_architecture arch;
    merge_plan plan;
    ms_planned_tensor *planned;
    ms_planned_writer *writer;
    merge_tensor_context context;
    ms_merge_rotate_counts rotate_counts;
    /* by plan entry, rotate with a cache only; each is touched only by the
     * worker that holds its position */
    ms_merge_input_digests *rotate_digests;
    atomic_int stop;

    pthread_mutex_t lock;            /* guards everything below */
    pthread_cond_t changed;
    size_t next_position;
    bool *completed;                 /* by file position */
    bool *kept_a;                    /* by file position */
    uint64_t scratch_in_flight;
    size_t tensors_in_flight;
    int blocks_kept;                 /* workers holding a large block */
    bool someone_waits;              /* for budget: hand out nothing new */
    int cores;                       /* set before the workers start: */
    int worker_count;                /* cores, or fewer with fewer tensors */
    ms_status status;                /* the first failure */
    ms_error error;
} merge_run;

static void fail(merge_run *run, ms_status status, const ms_error *err)
{
    if (run->status == MS_OK) {
        run->status = status;
        run->error = *err;
    }
    atomic_store(&run->stop, 1);
    pthread_cond_broadcast(&run->changed);
}

/* What a worker takes on with a position. */
typedef struct worker_claim {
    size_t position;
    uint64_t scratch;      /* the method's declared scratch for it */
    uint64_t block_need;   /* bytes of that in the large block, 0: none */
    bool reused;           /* the worker's kept block serves it */
    bool provided;         /* a new block was made for it */
    uint64_t reserved;     /* what it added to scratch_in_flight */
} worker_claim;

/* The method's scratch for the entry, and the bytes of it in the large
 * block (0 for entries that are not merged). */
static void estimate_claim(const merge_run *run, const merge_entry *entry, worker_claim *claim)
{
    const ms_merge_method *method = run->params->method;
    claim->scratch = 0;
    claim->block_need = 0;
    if (entry->action != MS_MERGE_ACTION_MERGED)
        return;
    ms_merge_task task;
    ms_merge_task_init(&run->context, entry, &task);
    if (method->scratch_bytes != NULL)
        claim->scratch = method->scratch_bytes(&task);
    if (method->large_block_doubles != NULL)
        claim->block_need = method->large_block_doubles(&task) * sizeof(double);
}

/* Under the lock.  A worker's large block (crossover's spectrum) is kept
 * from one tensor to the next, so that the kernel does not zero fresh pages
 * for every tensor; while kept it is counted in scratch_in_flight like a
 * running tensor's scratch.  It goes when a tensor needs a block it does
 * not serve, when another worker waits for memory, and at the end. */
static void drop_block(merge_run *run, merge_buffers *buffers)
{
    if (buffers->large_block == NULL)
        return;
    run->blocks_kept--;
    run->scratch_in_flight -= buffers->large_block_doubles * sizeof(double);
    free(buffers->large_block);
    buffers->large_block = NULL;
    buffers->large_block_doubles = 0;
    pthread_cond_broadcast(&run->changed);
}

/* A kept block serves any need up to its size (what it holds past the need
 * is counted all the same: a worker waiting for memory has it freed). */
static bool block_serves(const merge_buffers *buffers, uint64_t need)
{
    uint64_t held = buffers->large_block_doubles * sizeof(double);
    return buffers->large_block != NULL && need > 0 && held >= need;
}

/* Under the lock: the next position this worker may start, or false. */
static bool take_position(merge_run *run, uint64_t budget, merge_buffers *buffers,
                          worker_claim *claim)
{
    if (atomic_load(&run->stop) || run->next_position >= run->plan.count)
        return false;
    claim->position = run->next_position++;
    const merge_entry *entry =
        &run->plan.entries[ms_planned_writer_tensor_at(run->writer, claim->position)];
    /* The estimate may read the tensors (rotate hashes both to ask its
     * cache whether the key is known): not under the lock, where it held
     * up every other worker finishing or starting a tensor. */
    pthread_mutex_unlock(&run->lock);
    estimate_claim(run, entry, claim);
    pthread_mutex_lock(&run->lock);
    claim->reused = block_serves(buffers, claim->block_need);
    claim->provided = false;
    if (!claim->reused && claim->block_need > 0)
        drop_block(run, buffers);
    while (run->someone_waits && !atomic_load(&run->stop)) {
        drop_block(run, buffers);
        claim->reused = false;
        pthread_cond_wait(&run->changed, &run->lock);
    }
    run->someone_waits = true;
    /* a served block is counted already */
    uint64_t covered = claim->reused ? claim->block_need : 0;
    claim->reserved = claim->scratch > covered ? claim->scratch - covered : 0;
    /* our own block, when this tensor does not use it, goes first */
    if (!claim->reused && run->scratch_in_flight + claim->reserved > budget)
        drop_block(run, buffers);
    /* the others drop theirs as they finish or come for a tensor, seeing
     * someone_waits */
    while (!atomic_load(&run->stop) &&
           !ms_merge_may_start(budget, run->scratch_in_flight, claim->reserved,
                               run->tensors_in_flight,
                               run->blocks_kept - (buffers->large_block != NULL ? 1 : 0)))
        pthread_cond_wait(&run->changed, &run->lock);
    run->someone_waits = false;
    pthread_cond_broadcast(&run->changed);
    if (atomic_load(&run->stop))
        return false;
    run->scratch_in_flight += claim->reserved;
    run->tensors_in_flight++;
    return true;
}

/* Outside the lock: a new block for a tensor that needs one its worker
 * does not hold (reserved with the tensor's scratch).  Failing, the method
 * allocates for itself, and fails as it would have. */
static void provide_block(merge_buffers *buffers, worker_claim *claim)
{
    if (claim->block_need == 0 || claim->reused)
        return;
    size_t doubles = (size_t)(claim->block_need / sizeof(double));
    buffers->large_block = ms_merge_large_doubles(doubles);
    buffers->large_block_doubles = buffers->large_block != NULL ? doubles : 0;
    claim->provided = buffers->large_block != NULL;
}

/* Under the lock, when the tensor is done: its reservation back, but for
 * a new block the worker keeps (counted from now on as kept), unless
 * another worker waits for memory. */
static void finish_claim(merge_run *run, merge_buffers *buffers, const worker_claim *claim)
{
    run->scratch_in_flight -= claim->reserved;
    if (claim->provided) {
        run->scratch_in_flight += buffers->large_block_doubles * sizeof(double);
        run->blocks_kept++;
    }
    if (run->someone_waits)
        drop_block(run, buffers);
}

/* Freed scratch of earlier tensors stays in the allocator's arenas, where
 * it would be resident beside a large tensor's (SDXL's token embedding
 * alone needs 506 MB): handed back first.  Rare (large tensors only) and
 * cheap next to the tensor's own work. */
static void release_cached_memory(void)
{
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

/* BLAS threads (process-wide; OpenBLAS), as many as a tensor's task may
 * use (ms_merge_tensor_threads): one per worker while tensors run side by
 * side, every core for a tensor that runs alone (rotate's largest
 * decompositions), which would otherwise leave the others idle.
 * Crossover's transform of SDXL's token embeddings shares out its passes
 * the same way. */
static void blas_threads_for(int threads)
{
    openblas_set_num_threads(threads);
}

static void *worker_main(void *argument)
{
    merge_run *run = argument;
    uint64_t budget = run->params->memory_budget          ? run->params->memory_budget
                      : run->params->method->memory_budget ? run->params->method->memory_budget
                                                           : DEFAULT_MEMORY_BUDGET;
    merge_buffers buffers = {0};
    ms_error err;
    ms_status status = ms_merge_buffers_init(&buffers, &err);
    pthread_mutex_lock(&run->lock);
    if (status != MS_OK)
        fail(run, status, &err);
    /* the threads of a tensor within the budget, set by write_tensors */
    int side_by_side = ms_merge_tensor_threads(run->cores, run->worker_count, false);
    worker_claim claim;
    while (take_position(run, budget, &buffers, &claim)) {
        pthread_mutex_unlock(&run->lock);
        if (claim.scratch > budget / 2)
            release_cached_memory();
        provide_block(&buffers, &claim);
        buffers.threads = ms_merge_tensor_threads(run->cores, run->worker_count,
                                                  claim.scratch > budget);
        bool alone = buffers.threads != side_by_side;
        if (alone)
            blas_threads_for(buffers.threads);
        const merge_entry *entry =
            &run->plan.entries[ms_planned_writer_tensor_at(run->writer, claim.position)];
        bool kept_a = false;
        ms_error_clear(&err);
        status = ms_merge_tensor_write(&run->context, claim.position, entry, &buffers, &kept_a,
                                       &err);
        if (alone)
            blas_threads_for(side_by_side);
        pthread_mutex_lock(&run->lock);
        finish_claim(run, &buffers, &claim);
        run->tensors_in_flight--;
        run->completed[claim.position] = true;
        run->kept_a[claim.position] = kept_a;
        if (status != MS_OK)
            fail(run, status, &err);
        pthread_cond_broadcast(&run->changed);
    }
    drop_block(run, &buffers);
    pthread_mutex_unlock(&run->lock);
    ms_merge_buffers_free(&buffers);
    return NULL;
}

/* Waits for the tensor at position, watching the caller's cancel flag. */
static bool wait_completed(merge_run *run, size_t position, const atomic_int *cancel)
{
    pthread_mutex_lock(&run->lock);
    for (;;) {
        if (cancel != NULL && atomic_load(cancel)) {
            ms_error err;
            ms_error_set(&err, MS_ERR_CANCELLED, NULL, "the merge was cancelled");
            fail(run, MS_ERR_CANCELLED, &err);
        }
        if (run->completed[position] || atomic_load(&run->stop))
            break;
        struct timespec deadline;
        ms_merge_deadline_after_ms(&deadline, CANCEL_POLL_MS);
        pthread_cond_timedwait(&run->changed, &run->lock, &deadline);
    }
    bool ready = run->completed[position] && run->status == MS_OK;
    pthread_mutex_unlock(&run->lock);
    return ready;
}

/* Progress counts bytes written, or the method's own measure of a merged
 * tensor's work where it has one. */
static uint64_t work_of(const merge_run *run, size_t position)
{
    const merge_entry *entry =
        &run->plan.entries[ms_planned_writer_tensor_at(run->writer, position)];
    if (entry->action != MS_MERGE_ACTION_MERGED || run->params->method->work_units == NULL)
        return ms_planned_writer_tensor_bytes(run->writer, position);
    ms_merge_task task;
    ms_merge_task_init(&run->context, entry, &task);
    return run->params->method->work_units(&task);
}

static void seal_all(merge_run *run, ms_progress_fn progress, void *user_data,
                     const atomic_int *cancel)
{
    uint64_t done = 0, total = 0;
    for (size_t position = 0; position < run->plan.count; position++)
        total += work_of(run, position);
    if (progress != NULL)
        progress(user_data, 0, (size_t)total, NULL);
    for (size_t position = 0; position < run->plan.count; position++) {
        if (!wait_completed(run, position, cancel))
            return;
        ms_error err;
        ms_status status = ms_planned_writer_seal(run->writer, position, &err);
        if (status != MS_OK) {
            pthread_mutex_lock(&run->lock);
            fail(run, status, &err);
            pthread_mutex_unlock(&run->lock);
            return;
        }
        done += work_of(run, position);
        if (progress != NULL)
            progress(user_data, (size_t)done, (size_t)total,
                     run->plan.entries[ms_planned_writer_tensor_at(run->writer, position)].name);
    }
}

/* The threads asked for, else the cores online. */
static int core_count(const ms_merge_params *params)
{
    long count = params->threads > 0 ? params->threads : sysconf(_SC_NPROCESSORS_ONLN);
    if (count < 1)
        count = 1;
    return count > MAX_WORKERS ? MAX_WORKERS : (int)count;
}

static int worker_count(int cores, size_t tensor_count)
{
    if ((size_t)cores > tensor_count)
        return tensor_count > 0 ? (int)tensor_count : 1;
    return cores;
}

/* Workers on threads, this thread sealing; when no thread can be started,
 * this thread writes everything first, then seals. */
static void write_tensors(merge_run *run, ms_progress_fn progress, void *user_data,
                          const atomic_int *cancel)
{
    pthread_t threads[MAX_WORKERS];
    run->cores = core_count(run->params);
    int wanted = worker_count(run->cores, run->plan.count), started = 0;
    run->worker_count = wanted;
    blas_threads_for(ms_merge_tensor_threads(run->cores, wanted, false));
    while (started < wanted && pthread_create(&threads[started], NULL, worker_main, run) == 0)
        started++;
    if (started == 0)
        worker_main(run);
    seal_all(run, progress, user_data, cancel);
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
}

/* A LoRA has no key a checkpoint has: merged with one it would only be
 * copied beside the checkpoint's keys, a file neither tool can load. */
static ms_status refuse_lora(const merge_input *input, const char *role, ms_error *err)
{
    ms_model_summary summary;
    ms_error ignored;
    if (ms_inspect_model(&input->file, &summary, &ignored) != MS_OK ||
        summary.kind != MS_MODEL_LORA)
        return MS_OK;
    ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL,
                 "%s (%s) is a LoRA with %zu modules, not a checkpoint: merge takes checkpoints",
                 role, input->path, summary.module_count);
    ms_error_detail_add(err, "field", "%s", role);
    ms_error_detail_add(err, "reason", "not_a_checkpoint");
    return MS_ERR_INVALID_PARAMETER;
}

static ms_status open_inputs(merge_run *run, const ms_merge_inputs *inputs, ms_error *err)
{
    static const char *const roles[] = {"model_a", "model_b", "model_c"};
    const char *paths[] = {inputs->model_a, inputs->model_b, inputs->model_c};
    for (int i = 0; i < run->model_count; i++) {
        if (paths[i] == NULL || paths[i][0] == '\0') {
            ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL, "%s: no model given (%s needs %d)",
                         roles[i], run->params->method->name, run->model_count);
            ms_error_detail_add(err, "field", "%s", roles[i]);
            return MS_ERR_INVALID_PARAMETER;
        }
        ms_status status = ms_merge_input_open(&run->inputs[i], paths[i], err);
        if (status == MS_OK)
            status = refuse_lora(&run->inputs[i], roles[i], err);
        if (status != MS_OK) {
            ms_error_detail_add(err, "model", "%s", roles[i]);
            return status;
        }
    }
    if (run->model_count == 2 && inputs->model_c != NULL && inputs->model_c[0] != '\0') {
        ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL,
                     "model_c: %s merges two models; a third was given",
                     run->params->method->name);
        ms_error_detail_add(err, "field", "model_c");
        return MS_ERR_INVALID_PARAMETER;
    }
    return MS_OK;
}

static ms_status check_weights(merge_run *run, ms_error *err)
{
    ms_status status = ms_block_weights_validate(&run->params->alpha, "alpha", run->arch, err);
    if (status == MS_OK)
        status = ms_block_weights_validate(&run->params->beta, "beta", run->arch, err);
    return status;
}

/* Inputs and output that together take more than half the memory would
 * push each other out of the page cache.  The inputs are the ones read
 * again (a loop merges the same pair with new weights), so then the output
 * leaves the cache once it is on disk; a smaller merge keeps both. */
static bool crowds_page_cache(const merge_run *run)
{
    long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page_size <= 0)
        return false;
    uint64_t bytes = ms_planned_writer_data_bytes(run->writer);
    for (int i = 0; i < run->model_count; i++)
        bytes += run->inputs[i].file.file_size;
    return bytes > (uint64_t)pages * (uint64_t)page_size / 2;
}

static ms_status lay_out_output(merge_run *run, const char *output_path, ms_error *err)
{
    size_t count = run->plan.count;
    run->planned = calloc(count + 1, sizeof *run->planned);
    run->completed = calloc(count + 1, sizeof *run->completed);
    run->kept_a = calloc(count + 1, sizeof *run->kept_a);
    char *recipe = ms_merge_recipe_text(run->params, run->inputs, run->model_count);
    ms_status status = MS_OK;
    if (run->planned == NULL || run->completed == NULL || run->kept_a == NULL || recipe == NULL)
        status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    for (size_t i = 0; i < count && status == MS_OK; i++) {
        const merge_entry *entry = &run->plan.entries[i];
        ms_planned_tensor *tensor = &run->planned[i];
        tensor->name = entry->name;
        tensor->dtype = entry->dtype;
        tensor->ndim = entry->ndim;
        memcpy(tensor->shape, entry->shape, sizeof tensor->shape);
    }
    /* sorted by name, as the writer requires */
    ms_metadata_entry metadata[] = {{"format", "pt"}, {MS_MERGE_RECIPE_METADATA, recipe}};
    if (status == MS_OK)
        status = ms_planned_writer_open(output_path, run->planned, count, metadata, 2,
                                        &run->writer, err);
    if (status == MS_OK)
        ms_planned_writer_drop_written_pages(run->writer, crowds_page_cache(run));
    free(recipe);
    return status;
}

static void close_run(merge_run *run)
{
    ms_planned_writer_abort(run->writer);
    ms_merge_plan_free(&run->plan);
    for (int i = 0; i < MS_MERGE_MAX_MODELS; i++)
        ms_merge_input_close(&run->inputs[i]);
    free(run->planned);
    free(run->completed);
    free(run->kept_a);
    free(run->rotate_digests);
    pthread_cond_destroy(&run->changed);
    pthread_mutex_destroy(&run->lock);
}

static ms_status prepare(merge_run *run, const ms_merge_inputs *inputs, const char *output_path,
                         ms_error *err)
{
    ms_status status = ms_merge_params_validate(run->params, err);
    if (status == MS_OK)
        status = open_inputs(run, inputs, err);
    if (status == MS_OK) {
        run->arch = ms_merge_detect_architecture(&run->inputs[0].file);
        status = check_weights(run, err);
    }
    if (status == MS_OK)
        status = ms_merge_plan_build(run->inputs, run->model_count, run->params, run->arch,
                                     &run->plan, err);
    if (status == MS_OK)
        status = lay_out_output(run, output_path, err);
    if (status == MS_OK && run->params->rotate_cache != NULL) {
        run->rotate_digests = calloc(run->plan.count + 1, sizeof *run->rotate_digests);
        if (run->rotate_digests == NULL)
            status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    }
    run->context = (merge_tensor_context){run->params,      run->inputs,
                                          run->writer,      &run->stop,
                                          &run->rotate_counts, run->plan.entries,
                                          run->rotate_digests};
    return status;
}

ms_status ms_merge_files(const ms_merge_inputs *inputs, const char *output_path,
                         const ms_merge_params *params,
                         ms_progress_fn progress, void *progress_user_data,
                         const atomic_int *cancel,
                         ms_merge_report *report, ms_error *err)
{
    struct timespec started;
    clock_gettime(CLOCK_MONOTONIC, &started);
    if (report != NULL)
        memset(report, 0, sizeof *report);
    if (params == NULL || params->method == NULL || inputs == NULL || output_path == NULL)
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL,
                            "a merge needs its inputs, a method and an output path");
    merge_run run;
    memset(&run, 0, sizeof run);
    run.params = params;
    run.model_count = params->method->model_count;
    pthread_mutex_init(&run.lock, NULL);
    pthread_cond_init(&run.changed, NULL);
    ms_status status = prepare(&run, inputs, output_path, err);
    if (status == MS_OK) {
        write_tensors(&run, progress, progress_user_data, cancel);
        status = run.status;
        if (status != MS_OK && err != NULL)
            *err = run.error;
    }
    ms_merge_report local;
    memset(&local, 0, sizeof local);
    if (status == MS_OK)
        status = ms_merge_report_fill(&local, run.arch, params, &run.plan, run.writer, run.kept_a,
                                      err);
    if (status == MS_OK) {
        ms_planned_writer *writer = run.writer;
        run.writer = NULL;   /* finish frees it, published or not */
        status = ms_planned_writer_finish(writer, &local.output_bytes, local.output_sha256, err);
    }
    struct timespec ended;
    clock_gettime(CLOCK_MONOTONIC, &ended);
    local.rotate = strcmp(params->method->name, "rotate") == 0;
    local.rotate_cache_hits = atomic_load(&run.rotate_counts.hits);
    local.rotate_cache_misses = atomic_load(&run.rotate_counts.misses);
    local.rotate_cache_bytes_stored = atomic_load(&run.rotate_counts.bytes_stored);
    local.rotate_svd_seconds = (double)atomic_load(&run.rotate_counts.svd_ns) / 1e9;
    local.rotate_eigen_seconds = (double)atomic_load(&run.rotate_counts.eigen_ns) / 1e9;
    local.rotate_product_seconds = (double)atomic_load(&run.rotate_counts.product_ns) / 1e9;
    local.rotate_io_seconds = (double)atomic_load(&run.rotate_counts.io_ns) / 1e9;
    local.seconds = (double)(ended.tv_sec - started.tv_sec) +
                    (double)(ended.tv_nsec - started.tv_nsec) / 1e9;
    if (status == MS_OK && report != NULL)
        *report = local;
    else
        ms_merge_report_free(&local);
    close_run(&run);
    return status;
}
