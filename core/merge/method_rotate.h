/* Private to the rotate method: its terms, produced or read back from the
 * decomposition cache (method_rotate.c describes the formulas). */
#ifndef MS_MERGE_METHOD_ROTATE_H
#define MS_MERGE_METHOD_ROTATE_H

#include <stdbool.h>
#include <stddef.h>

#include "method_internal.h"
#include "rotate_cache.h"

/* Neurons are processed in blocks of about this many elements (4 MiB of
 * doubles): products large enough to run near the machine's peak. */
enum { ROTATE_ROW_BLOCK_ELEMENTS = 1u << 19 };

typedef enum ms_rotate_outcome {
    MS_ROTATE_TURN,            /* rotate with the terms */
    MS_ROTATE_EQUAL_IN_HALF,   /* A and B are equal in fp16: weighted_sum(a, b, beta) */
    MS_ROTATE_ONE_ROW,         /* one neuron: the blended centroid */
} ms_rotate_outcome;

typedef struct ms_rotate_terms {
    ms_rotate_outcome outcome;
    size_t rows, columns, dimension;
    bool subspace;                     /* at most half as many neurons as inputs */
    size_t row_length;                 /* 2 dimension (3 in a subspace) */
    const double *centroid_a, *centroid_b;   /* columns */
    const double *angles, *half_turn;        /* dimension; half_turn 0 or 1 */
    /* E, G: dimension x columns (dimension x dimension in a subspace) */
    const double *eigen_rows, *generator_rows;
    const double *basis;               /* subspace: P, columns x dimension */
    const double *stored_rows;         /* from the cache: rows x row_length; else NULL */
    /* while producing: the maps to the rows (full: W, R^T W, columns
     * square; subspace: W, S^T W, S^T - I, dimension square) and the
     * subspace's QR triangle */
    double *a_map, *b_map, *z_map, *triangle;
    double *owned;                     /* the fixed terms when produced here */
    size_t owned_length;
    ms_rotate_cache_writer *writer;    /* producing into the cache */
    ms_rotate_cache_entry *entry;      /* read from the cache */
} ms_rotate_terms;

/* How the task's tensor is seen as neurons (algorithms.md section 4). */
void ms_rotate_shape(const ms_merge_task *task, size_t *rows, size_t *columns);
/* false for the early returns that need no rows at all. */
bool ms_rotate_is_rotated(const ms_merge_task *task);
size_t ms_rotate_block_rows(size_t columns);

/* Centroids, the NaN/Inf check (nan_detected naming the key and model) and
 * the fp16 equality test, in one pass over both inputs. */
ms_status ms_rotate_scan(const ms_merge_task *task, size_t rows, size_t columns,
                         double *centroid_a, double *centroid_b, bool *equal_in_half,
                         ms_error *err);

/* The terms of the task's key: read from the task's cache when it holds
 * them (content hash of both inputs, never the key name), else produced
 * (and then stored while ms_rotate_terms_apply writes the rows). */
ms_status ms_rotate_terms_acquire(const ms_merge_task *task, size_t rows, size_t columns,
                                  ms_rotate_terms *terms, ms_error *err);
/* Whether the task's cache holds its terms now (hashes both inputs): what
 * a key will cost is planned on it. */
bool ms_rotate_terms_cached(const ms_merge_task *task, size_t rows, size_t columns);
/* Emits the merged tensor; stores the cache entry when producing. */
ms_status ms_rotate_terms_apply(const ms_merge_task *task, ms_rotate_terms *terms,
                                ms_error *err);
void ms_rotate_terms_release(ms_rotate_terms *terms);

/* Scratch bytes the method holds for a key: applying terms, and producing
 * them when producing. */
uint64_t ms_rotate_scratch_bytes(size_t rows, size_t columns, bool producing);

#endif
