/* Name index of the writer: linear probing over a power-of-two table kept
 * at most half full.  Entries are never removed: a failed add stays indexed
 * and its slot is skipped by is_live, so the name can be added again. */
#include "writer_names.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_name(const char *name)
{
    uint64_t hash = UINT64_C(14695981039346656037); /* FNV-1a */
    for (const unsigned char *cursor = (const unsigned char *)name; *cursor; cursor++)
        hash = (hash ^ *cursor) * UINT64_C(1099511628211);
    return hash;
}

bool ms_writer_names_contains(const ms_writer_names *names, const char *name,
                              ms_writer_name_of_fn name_of, ms_writer_is_live_fn is_live,
                              const void *context)
{
    if (names->capacity == 0)
        return false;
    size_t mask = names->capacity - 1;
    for (size_t at = (size_t)hash_name(name) & mask; names->slots[at] != 0; at = (at + 1) & mask) {
        size_t index = names->slots[at] - 1;
        if (strcmp(name_of(context, index), name) == 0 && is_live(context, index))
            return true;
    }
    return false;
}

static void place(size_t *slots, size_t capacity, const char *name, size_t index)
{
    size_t mask = capacity - 1;
    size_t at = (size_t)hash_name(name) & mask;
    while (slots[at] != 0)
        at = (at + 1) & mask;
    slots[at] = index + 1;
}

static bool grow(ms_writer_names *names, ms_writer_name_of_fn name_of, const void *context)
{
    size_t capacity = names->capacity ? 2 * names->capacity : 256;
    size_t *slots = calloc(capacity, sizeof *slots);
    if (slots == NULL)
        return false;
    for (size_t i = 0; i < names->capacity; i++) {
        if (names->slots[i] != 0) {
            size_t index = names->slots[i] - 1;
            place(slots, capacity, name_of(context, index), index);
        }
    }
    free(names->slots);
    names->slots = slots;
    names->capacity = capacity;
    return true;
}

bool ms_writer_names_insert(ms_writer_names *names, const char *name, size_t index,
                            ms_writer_name_of_fn name_of, const void *context)
{
    if (2 * (names->used + 1) > names->capacity && !grow(names, name_of, context))
        return false;
    place(names->slots, names->capacity, name, index);
    names->used++;
    return true;
}

void ms_writer_names_free(ms_writer_names *names)
{
    free(names->slots);
    memset(names, 0, sizeof *names);
}
