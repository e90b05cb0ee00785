/* Private to the writer: an open-addressing hash index from tensor name to
 * entry slot, so duplicate checks stay O(1) for checkpoints with thousands
 * of tensors (the check runs under the writer's mutex). */
#ifndef MS_WRITER_NAMES_H
#define MS_WRITER_NAMES_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ms_writer_names {
    size_t *slots;      /* entry index + 1; 0 is empty */
    size_t capacity;    /* power of two, or 0 */
    size_t used;
} ms_writer_names;

/* The index does not own the names: name_of(context, index) gives the name
 * stored for an index, is_live(context, index) whether that entry counts. */
typedef const char *(*ms_writer_name_of_fn)(const void *context, size_t index);
typedef bool (*ms_writer_is_live_fn)(const void *context, size_t index);

bool ms_writer_names_contains(const ms_writer_names *names, const char *name,
                              ms_writer_name_of_fn name_of, ms_writer_is_live_fn is_live,
                              const void *context);

/* Stores index under name; false when out of memory. */
bool ms_writer_names_insert(ms_writer_names *names, const char *name, size_t index,
                            ms_writer_name_of_fn name_of, const void *context);

void ms_writer_names_free(ms_writer_names *names);

#endif
