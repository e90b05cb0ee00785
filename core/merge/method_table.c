/* The method table: sd-meh's names, how many models each takes, whether it
 * reads beta, and how much scratch it holds (algorithms.md section 3). */
#include "method_internal.h"

#include <string.h>

static const ms_merge_method methods[] = {
    {"weighted_sum", 2, false, ms_merge_weighted_sum, ms_merge_elementwise_scratch, NULL, 0, NULL},
    {"weighted_subtraction", 2, true, ms_merge_weighted_subtraction,
     ms_merge_elementwise_scratch, NULL, 0, NULL},
    {"tensor_sum", 2, true, ms_merge_tensor_sum, ms_merge_tensor_sum_scratch, NULL, 0, NULL},
    {"add_difference", 3, false, ms_merge_add_difference, ms_merge_elementwise_scratch, NULL, 0,
     NULL},
    {"sum_twice", 3, true, ms_merge_sum_twice, ms_merge_elementwise_scratch, NULL, 0, NULL},
    {"triple_sum", 3, true, ms_merge_triple_sum, ms_merge_elementwise_scratch, NULL, 0, NULL},
    {"euclidean_add_difference", 3, false, ms_merge_euclidean_add_difference,
     ms_merge_euclidean_scratch, NULL, 0, NULL},
    {"multiply_difference", 3, true, ms_merge_multiply_difference,
     ms_merge_elementwise_scratch, NULL, 0, NULL},
    {"top_k_tensor_sum", 2, true, ms_merge_top_k_tensor_sum, ms_merge_top_k_scratch, NULL, 0, NULL},
    {"similarity_add_difference", 3, true, ms_merge_similarity_add_difference,
     ms_merge_elementwise_scratch, NULL, 0, NULL},
    /* a spectrum is 8 bytes per element: SD1.5's 29.5 M-element convs take
     * 236 MB each, and the default budget ran them beside nothing larger
     * than 84 MB, one core idle for a third of the merge; with 400 MiB the
     * largest pair (29.5 M and 22.1 M elements, 413 MB) runs side by side.
     * 470 MiB: SDXL's 29.5 M-element convs (240 MB) also run beside its
     * 14.7 M ones (180 MB with their kept pages), which waited before.
     * Still under 600 MB in all (measured peaks: see the commits). */
    {"distribution_crossover", 3, true, ms_merge_distribution_crossover,
     ms_merge_crossover_scratch, NULL, UINT64_C(470) << 20, ms_merge_crossover_spectrum_doubles},
    {"ties_add_difference", 3, true, ms_merge_ties_add_difference, ms_merge_ties_scratch, NULL,
     0, NULL},
    /* rotate's decompositions are d x d (1280: about 200 MB each); two at
     * once keep both cores busy within its 2 GB */
    {"rotate", 2, true, ms_merge_rotate, ms_merge_rotate_scratch, ms_merge_rotate_work,
     UINT64_C(1536) << 20, NULL},
};

const ms_merge_method *ms_merge_methods(size_t *count)
{
    if (count != NULL)
        *count = sizeof methods / sizeof methods[0];
    return methods;
}

const ms_merge_method *ms_merge_method_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(methods[i].name, name) == 0)
            return &methods[i];
    return NULL;
}
