/* A key's decompositions (the Procrustes rotation and its spectrum) on a
 * thread of their own.  A LAPACK call cannot be interrupted, and on the
 * 2560-wide keys one takes seconds; the caller waits polling its cancel
 * flag, so a cancel is answered within CANCEL_POLL_MS.  An abandoned
 * decomposition runs to its end alone and frees what it holds: the last
 * of the two references (caller, thread) frees the job. */
#include "rotate_decompose.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "method_internal.h"

enum { CANCEL_POLL_MS = 50 };

struct ms_rotate_decomposition {
    pthread_mutex_t lock;
    pthread_cond_t finished;
    int references;
    bool done;
    size_t rows, columns;
    bool proper;
    double *a, *b;             /* subspace road: the centred inputs, freed when solved */
    double *covariance;        /* full road: a^T b, consumed */
    ms_rotation rotation;
    ms_rotation_spectrum spectrum;
    ms_status status;
    ms_error error;
    double svd_seconds, eigen_seconds;
};

static double seconds_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void release(ms_rotate_decomposition *job)
{
    pthread_mutex_lock(&job->lock);
    bool last = --job->references == 0;
    pthread_mutex_unlock(&job->lock);
    if (!last)
        return;
    free(job->a);
    free(job->b);
    free(job->covariance);
    ms_rotation_free(&job->rotation);
    ms_rotation_spectrum_free(&job->spectrum);
    pthread_mutex_destroy(&job->lock);
    pthread_cond_destroy(&job->finished);
    free(job);
}

static void compute(ms_rotate_decomposition *job)
{
    double started = seconds_now();
    ms_status status;
    if (job->covariance != NULL) {
        size_t d = job->columns;
        job->rotation.columns = job->rotation.dimension = d;
        job->rotation.matrix = malloc((d * d > 0 ? d * d : 1) * sizeof(double));
        status = job->rotation.matrix == NULL
                     ? ms_error_set(&job->error, MS_ERR_OUT_OF_MEMORY, NULL,
                                    "out of memory for a rotation")
                     : ms_rotation_from_covariance(job->rows, d, job->covariance, job->proper,
                                                   job->rotation.matrix, &job->error);
        free(job->covariance);
        job->covariance = NULL;
    } else {
        status = ms_rotation_solve(job->rows, job->columns, job->a, job->b, job->proper,
                                   &job->rotation, &job->error);
        free(job->a);
        free(job->b);
        job->a = job->b = NULL;
    }
    double solved = seconds_now();
    if (status == MS_OK)
        status = ms_rotation_spectrum_compute(job->rotation.matrix, job->rotation.dimension,
                                              &job->spectrum, &job->error);
    job->svd_seconds = solved - started;
    job->eigen_seconds = seconds_now() - solved;
    job->status = status;
}

static void *decompose_main(void *argument)
{
    ms_rotate_decomposition *job = argument;
    compute(job);
    pthread_mutex_lock(&job->lock);
    job->done = true;
    pthread_cond_broadcast(&job->finished);
    pthread_mutex_unlock(&job->lock);
    release(job);
    return NULL;
}

static ms_rotate_decomposition *job_new(size_t rows, size_t columns, bool proper)
{
    ms_rotate_decomposition *job = calloc(1, sizeof *job);
    if (job == NULL)
        return NULL;
    pthread_mutex_init(&job->lock, NULL);
    pthread_cond_init(&job->finished, NULL);
    job->references = 1;
    job->rows = rows;
    job->columns = columns;
    job->proper = proper;
    return job;
}

/* Runs the job on its thread (here when no thread can be started) and
 * waits; cancelled: the job is left to finish alone. */
static ms_status run(ms_rotate_decomposition *job, const atomic_int *cancel,
                     ms_rotate_decomposed *result, ms_error *err)
{
    pthread_t thread;
    job->references = 2;
    if (pthread_create(&thread, NULL, decompose_main, job) != 0) {
        job->references = 1;
        compute(job);
        job->done = true;
    } else {
        pthread_detach(thread);
    }
    pthread_mutex_lock(&job->lock);
    while (!job->done) {
        if (cancel != NULL && atomic_load(cancel)) {
            pthread_mutex_unlock(&job->lock);
            release(job);
            return ms_error_set(err, MS_ERR_CANCELLED, NULL,
                                "cancelled during a decomposition");
        }
        struct timespec deadline;
        ms_merge_deadline_after_ms(&deadline, CANCEL_POLL_MS);
        pthread_cond_timedwait(&job->finished, &job->lock, &deadline);
    }
    pthread_mutex_unlock(&job->lock);
    ms_status status = job->status;
    if (status != MS_OK && err != NULL)
        *err = job->error;
    if (status == MS_OK) {
        result->rotation = job->rotation;
        result->spectrum = job->spectrum;
        result->svd_seconds = job->svd_seconds;
        result->eigen_seconds = job->eigen_seconds;
        memset(&job->rotation, 0, sizeof job->rotation);
        memset(&job->spectrum, 0, sizeof job->spectrum);
    }
    release(job);
    return status;
}

ms_status ms_rotate_decompose_covariance(size_t rows, size_t columns, double *covariance,
                                         bool proper, const atomic_int *cancel,
                                         ms_rotate_decomposed *result, ms_error *err)
{
    memset(result, 0, sizeof *result);
    ms_rotate_decomposition *job = job_new(rows, columns, proper);
    if (job == NULL) {
        free(covariance);
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory for a rotation");
    }
    job->covariance = covariance;
    return run(job, cancel, result, err);
}

ms_status ms_rotate_decompose_rows(size_t rows, size_t columns, double *a, double *b,
                                   bool proper, const atomic_int *cancel,
                                   ms_rotate_decomposed *result, ms_error *err)
{
    memset(result, 0, sizeof *result);
    ms_rotate_decomposition *job = job_new(rows, columns, proper);
    if (job == NULL) {
        free(a);
        free(b);
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory for a rotation");
    }
    job->a = a;
    job->b = b;
    return run(job, cancel, result, err);
}

void ms_rotate_decomposed_free(ms_rotate_decomposed *result)
{
    ms_rotation_free(&result->rotation);
    ms_rotation_spectrum_free(&result->spectrum);
}
