/* The safetensors files under the models roots, remembered between
 * listings (GET /v1/models).
 *
 * Walking 9000 files opened every header again on every listing, about a
 * second each time.  The index keeps each folder's sorted entries keyed by
 * the folder's device, inode, mtime and ctime: an unchanged folder is not
 * read again, a changed one is.  A file can change inside an unchanged
 * folder (rewritten in place), so every file is stat'ed on each listing and
 * its header opened again when its device, inode, size, mtime or ctime
 * differ.  Headers are opened only for the files of the page asked for.
 * File system timestamps tick coarsely: a change in the same tick as a read
 * would keep the old time, so a folder or file whose mtime or ctime lies
 * within settle_ms of the moment it was read is not trusted and is read
 * again next time.
 *
 * Order: by root, then path compared folder by folder (names bytewise),
 * which is the walk's own order, so a walk cut by a limit is a prefix of
 * the full listing.  What a walk did not reach (a limit, a missing root, an
 * unreadable folder) is reported, never dropped silently.
 *
 * Not thread-safe by itself: ms_model_index_page takes the index's mutex. */
#ifndef MS_MODEL_INDEX_H
#define MS_MODEL_INDEX_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct ms_model_index ms_model_index;

typedef struct ms_model_limits {
    int max_depth;        /* folders below a root that are entered */
    size_t max_folders;   /* folders entered per walk, all roots together */
    size_t max_files;     /* files listed per walk, all roots together */
} ms_model_limits;

/* The service's limits: 8 folders deep, 10000 folders, 100000 files. */
extern const ms_model_limits ms_model_default_limits;

/* How long a change must be past before the index trusts what it read. */
enum { MS_MODEL_INDEX_SETTLE_MS = 2000 };

/* What the index did since it was made: tests see the cache at work. */
typedef struct ms_model_index_counts {
    uint64_t folders_read;     /* opendir + readdir */
    uint64_t headers_opened;   /* safetensors headers opened and inspected */
} ms_model_index_counts;

/* NULL when out of memory. */
ms_model_index *ms_model_index_new(const ms_model_limits *limits, int settle_ms);
void ms_model_index_free(ms_model_index *index);
ms_model_index_counts ms_model_index_get_counts(ms_model_index *index);

/* A position in the listing order: the last model of a page. */
typedef struct ms_model_position {
    size_t root;
    char *path;
} ms_model_position;

typedef struct ms_model_page {
    json_t *models;          /* Model objects (openapi.yaml), in listing order */
    bool more;               /* models follow the last one: next is set */
    ms_model_position next;  /* the last model's position when more */
    json_t *not_reached;     /* {root, path, reason} objects, at most MS_MODEL_GAPS_SHOWN */
    size_t not_reached_count;   /* all of them (0: the walk reached everything) */
} ms_model_page;

enum { MS_MODEL_GAPS_SHOWN = 100 };

/* Walks roots (as given to --models, in order) and fills page with at most
 * limit models after position after (NULL: from the start).  Out of memory
 * is the only failure.  Free the page with ms_model_page_clear. */
ms_status ms_model_index_page(ms_model_index *index, char *const *roots, size_t root_count,
                              const ms_model_position *after, size_t limit,
                              ms_model_page *page, ms_error *err);
void ms_model_page_clear(ms_model_page *page);

/* < 0, 0, > 0 as a sorts before, with or after b in the listing order. */
int ms_model_position_compare(const ms_model_position *a, const ms_model_position *b);

/* The opaque cursor of a position: "<root>-<path in lowercase hex>".  NULL
 * when out of memory. */
char *ms_model_cursor_format(const ms_model_position *position);

/* False when text is not a cursor this service could have made for
 * root_count roots; else *position holds a malloced path. */
bool ms_model_cursor_parse(const char *text, size_t root_count, ms_model_position *position);

#endif
