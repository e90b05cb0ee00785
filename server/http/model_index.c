/* The models walk with its per-folder cache (see model_index.h). */
#include "model_index.h"

#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "api/api.h"
#include "api/json_text.h"
#include "core/format/safetensors.h"
#include "core/model/inspect.h"
#include "server/paths.h"

const ms_model_limits ms_model_default_limits = {8, 10000, 100000};

/* What says a folder or file is the one read before. */
typedef struct file_key {
    dev_t device;
    ino_t inode;
    off_t size;       /* files only */
    struct timespec modified, changed;
} file_key;

typedef struct folder_entry {
    char *name;
    char *real;             /* folder + name; NULL for a symlink, resolved at every walk */
    file_key key;           /* the file's when summary was taken */
    json_t *summary;        /* kind, architecture, lora or error; NULL until asked for */
    bool summary_settled;   /* the file was older than the settle time when opened */
} folder_entry;

typedef struct folder_record {
    char *real;             /* canonical path: the table's key */
    file_key key;
    bool settled;           /* no change near the read: reusable while key holds */
    bool readable;
    folder_entry *entries;  /* sorted by name; hidden and non-UTF-8 names left out */
    size_t entry_count;
    uint64_t walk;          /* the last walk that reached it */
    struct folder_record *next;   /* in its bucket */
} folder_record;

struct ms_model_index {
    pthread_mutex_t mutex;
    ms_model_limits limits;
    int64_t settle_ns;
    folder_record **buckets;
    size_t bucket_count;    /* a power of two */
    size_t record_count;
    uint64_t walk;
    ms_model_index_counts counts;
};

/* ---------------------------------------------------------------- keys */

static int64_t nanoseconds(struct timespec time)
{
    return (int64_t)time.tv_sec * 1000000000 + time.tv_nsec;
}

static int64_t now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return nanoseconds(now);
}

static file_key key_of(const struct stat *info, bool with_size)
{
    return (file_key){info->st_dev, info->st_ino, with_size ? info->st_size : 0, info->st_mtim,
                      info->st_ctim};
}

static bool same_key(const file_key *a, const file_key *b)
{
    return a->device == b->device && a->inode == b->inode && a->size == b->size &&
           nanoseconds(a->modified) == nanoseconds(b->modified) &&
           nanoseconds(a->changed) == nanoseconds(b->changed);
}

/* A change after read_ns gets a later time than this key's (the clock has
 * moved on by more than a tick), so the key tells it apart. */
static bool settled(const ms_model_index *index, const file_key *key, int64_t read_ns)
{
    int64_t before = read_ns - index->settle_ns;
    return nanoseconds(key->modified) < before && nanoseconds(key->changed) < before;
}

/* ---------------------------------------------------------------- records */

static uint64_t hash_path(const char *path)
{
    uint64_t hash = 14695981039346656037ULL;   /* FNV-1a */
    for (; *path != '\0'; path++)
        hash = (hash ^ (unsigned char)*path) * 1099511628211ULL;
    return hash;
}

static void free_entries(folder_entry *entries, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(entries[i].name);
        free(entries[i].real);
        json_decref(entries[i].summary);
    }
    free(entries);
}

static void free_record(folder_record *record)
{
    free_entries(record->entries, record->entry_count);
    free(record->real);
    free(record);
}

static folder_record *find_record(const ms_model_index *index, const char *real)
{
    folder_record *record = index->buckets[hash_path(real) & (index->bucket_count - 1)];
    while (record != NULL && strcmp(record->real, real) != 0)
        record = record->next;
    return record;
}

static void grow_table(ms_model_index *index)
{
    size_t count = index->bucket_count * 2;
    folder_record **buckets = calloc(count, sizeof *buckets);
    if (buckets == NULL)
        return;   /* longer chains, still correct */
    for (size_t i = 0; i < index->bucket_count; i++) {
        folder_record *record = index->buckets[i];
        while (record != NULL) {
            folder_record *next = record->next;
            size_t bucket = hash_path(record->real) & (count - 1);
            record->next = buckets[bucket];
            buckets[bucket] = record;
            record = next;
        }
    }
    free(index->buckets);
    index->buckets = buckets;
    index->bucket_count = count;
}

static folder_record *add_record(ms_model_index *index, const char *real)
{
    folder_record *record = calloc(1, sizeof *record);
    if (record == NULL || (record->real = strdup(real)) == NULL) {
        free(record);
        return NULL;
    }
    if (index->record_count >= index->bucket_count)
        grow_table(index);
    size_t bucket = hash_path(real) & (index->bucket_count - 1);
    record->next = index->buckets[bucket];
    index->buckets[bucket] = record;
    index->record_count++;
    return record;
}

/* Folders no longer reached (removed, renamed, out of the roots) go. */
static void prune_records(ms_model_index *index)
{
    for (size_t i = 0; i < index->bucket_count; i++) {
        folder_record **link = &index->buckets[i];
        while (*link != NULL) {
            folder_record *record = *link;
            if (record->walk == index->walk) {
                link = &record->next;
                continue;
            }
            *link = record->next;
            free_record(record);
            index->record_count--;
        }
    }
}

ms_model_index *ms_model_index_new(const ms_model_limits *limits, int settle_ms)
{
    ms_model_index *index = calloc(1, sizeof *index);
    if (index == NULL)
        return NULL;
    index->bucket_count = 256;
    index->buckets = calloc(index->bucket_count, sizeof *index->buckets);
    if (index->buckets == NULL || pthread_mutex_init(&index->mutex, NULL) != 0) {
        free(index->buckets);
        free(index);
        return NULL;
    }
    index->limits = *limits;
    index->settle_ns = (int64_t)settle_ms * 1000000;
    return index;
}

void ms_model_index_free(ms_model_index *index)
{
    if (index == NULL)
        return;
    index->walk++;
    prune_records(index);   /* every record: none is from this walk */
    free(index->buckets);
    pthread_mutex_destroy(&index->mutex);
    free(index);
}

ms_model_index_counts ms_model_index_get_counts(ms_model_index *index)
{
    pthread_mutex_lock(&index->mutex);
    ms_model_index_counts counts = index->counts;
    pthread_mutex_unlock(&index->mutex);
    return counts;
}

/* ---------------------------------------------------------------- reading a folder */

static int compare_entries(const void *a, const void *b)
{
    return strcmp(((const folder_entry *)a)->name, ((const folder_entry *)b)->name);
}

static bool is_symlink(const char *folder, const struct dirent *dirent)
{
    if (dirent->d_type != DT_UNKNOWN)
        return dirent->d_type == DT_LNK;
    char *path = ms_paths_join(folder, dirent->d_name);
    struct stat info;
    bool link = path != NULL && lstat(path, &info) == 0 && S_ISLNK(info.st_mode);
    free(path);
    return link;
}

/* The names a listing can show: not hidden (".", "..", temporaries) and
 * UTF-8 (a JSON request could not name the others). */
static bool listable(const char *name)
{
    return name[0] != '.' && ms_api_text_is_utf8(name);
}

static bool append_entry(folder_entry **entries, size_t *count, size_t *capacity,
                         const char *folder, const struct dirent *dirent)
{
    if (*count == *capacity) {
        size_t grown = *capacity != 0 ? *capacity * 2 : 16;
        folder_entry *bigger = realloc(*entries, grown * sizeof *bigger);
        if (bigger == NULL)
            return false;
        *entries = bigger;
        *capacity = grown;
    }
    folder_entry *entry = &(*entries)[*count];
    memset(entry, 0, sizeof *entry);
    entry->name = strdup(dirent->d_name);
    if (entry->name == NULL)
        return false;
    if (!is_symlink(folder, dirent) && (entry->real = ms_paths_join(folder, entry->name)) == NULL) {
        free(entry->name);
        return false;
    }
    (*count)++;
    return true;
}

/* A file added to a folder of a thousand: the others' summaries stay (each
 * is still checked against its file's key before use).  Both sorted. */
static void keep_summaries(folder_entry *entries, size_t count, folder_entry *old,
                           size_t old_count)
{
    size_t j = 0;
    for (size_t i = 0; i < count && j < old_count; i++) {
        while (j < old_count && strcmp(old[j].name, entries[i].name) < 0)
            j++;
        if (j < old_count && strcmp(old[j].name, entries[i].name) == 0) {
            entries[i].summary = old[j].summary;
            entries[i].key = old[j].key;
            entries[i].summary_settled = old[j].summary_settled;
            old[j].summary = NULL;
        }
    }
}

/* Replaces record's entries with the folder's.  False when out of memory. */
static bool read_folder(ms_model_index *index, folder_record *record, const struct stat *info)
{
    int64_t read_ns = now_ns();
    folder_entry *old = record->entries;
    size_t old_count = record->entry_count;
    record->entries = NULL;
    record->entry_count = 0;
    record->key = key_of(info, false);
    record->settled = settled(index, &record->key, read_ns);
    index->counts.folders_read++;
    DIR *dir = opendir(record->real);
    record->readable = dir != NULL;
    if (dir == NULL) {
        free_entries(old, old_count);
        return true;
    }
    folder_entry *entries = NULL;
    size_t count = 0, capacity = 0;
    bool ok = true;
    struct dirent *dirent;
    while (ok && (dirent = readdir(dir)) != NULL) {
        if (listable(dirent->d_name))
            ok = append_entry(&entries, &count, &capacity, record->real, dirent);
    }
    closedir(dir);
    if (!ok) {
        free_entries(entries, count);
        free_entries(old, old_count);
        record->settled = false;
        return false;
    }
    if (count > 1)
        qsort(entries, count, sizeof *entries, compare_entries);
    keep_summaries(entries, count, old, old_count);
    free_entries(old, old_count);
    record->entries = entries;
    record->entry_count = count;
    return true;
}

/* ---------------------------------------------------------------- the walk */

typedef struct walk_item {
    ms_model_position position;   /* path owned */
    folder_entry *entry;          /* in its folder's record: the summary cache */
    char *resolved;               /* the target of a symlink; else NULL (entry->real) */
    file_key key;
} walk_item;

typedef struct folder_id {
    dev_t device;
    ino_t inode;
} folder_id;

typedef struct walk {
    ms_model_index *index;
    size_t root;
    const char *root_real;
    folder_id *entered;
    size_t entered_count;
    walk_item *items;
    size_t item_count, item_capacity;
    json_t *gaps;
    size_t gap_count;
    const char *stop_reason;      /* a limit ended the walk */
    bool out_of_memory;
} walk;

static void add_gap(walk *state, size_t root, const char *path, const char *reason)
{
    state->gap_count++;
    if (json_array_size(state->gaps) >= MS_MODEL_GAPS_SHOWN)
        return;
    json_t *gap = json_object();
    json_object_set_new(gap, "root", json_integer((json_int_t)root));
    json_object_set_new(gap, "path", ms_api_json_text(path));
    json_object_set_new(gap, "reason", json_string(reason));
    json_array_append_new(state->gaps, gap);
}

static void stop_walk(walk *state, const char *relative, const char *reason)
{
    add_gap(state, state->root, relative, reason);
    state->stop_reason = reason;
}

static bool was_entered(const walk *state, const struct stat *info)
{
    for (size_t i = 0; i < state->entered_count; i++) {
        if (state->entered[i].device == info->st_dev && state->entered[i].inode == info->st_ino)
            return true;
    }
    return false;
}

static bool has_safetensors_suffix(const char *name)
{
    size_t length = strlen(name);
    return length > 12 && strcmp(name + length - 12, ".safetensors") == 0;
}

/* Takes relative and resolved (freed on failure). */
static void add_item(walk *state, char *relative, folder_entry *entry, char *resolved,
                     const struct stat *info)
{
    if (state->item_count == state->index->limits.max_files) {
        free(resolved);
        stop_walk(state, relative, "file_limit");
        free(relative);
        return;
    }
    if (state->item_count == state->item_capacity) {
        size_t grown = state->item_capacity != 0 ? state->item_capacity * 2 : 256;
        walk_item *bigger = realloc(state->items, grown * sizeof *bigger);
        if (bigger == NULL) {
            free(relative);
            free(resolved);
            state->out_of_memory = true;
            return;
        }
        state->items = bigger;
        state->item_capacity = grown;
    }
    state->items[state->item_count++] =
        (walk_item){{state->root, relative}, entry, resolved, key_of(info, true)};
}

/* The record for a folder about to be entered, read again unless the one
 * kept is still true. */
static folder_record *current_record(walk *state, const char *real, const struct stat *info)
{
    ms_model_index *index = state->index;
    folder_record *record = find_record(index, real);
    if (record != NULL && record->walk == index->walk)
        return record;   /* reached twice in one walk (bind mount): its items point into it */
    if (record == NULL && (record = add_record(index, real)) == NULL)
        return NULL;
    file_key key = key_of(info, false);
    bool reusable = record->walk != 0 && record->settled && same_key(&record->key, &key);
    record->walk = index->walk;
    if (!reusable && !read_folder(index, record, info))
        return NULL;
    return record;
}

static void walk_folder(walk *state, const char *real, const struct stat *info,
                        const char *relative, int depth);

/* One entry of a folder being walked: a file to list, a folder to enter. */
static void walk_entry(walk *state, const folder_record *record, folder_entry *entry,
                       const char *relative, int depth)
{
    char *resolved = NULL;
    if (entry->real == NULL) {
        /* a symlink: counts only while it resolves inside the root */
        char *link = ms_paths_join(record->real, entry->name);
        resolved = link != NULL ? realpath(link, NULL) : NULL;
        free(link);
        if (resolved == NULL)
            return;
    }
    const char *target = resolved != NULL ? resolved : entry->real;
    struct stat info;
    if (!ms_paths_is_inside(state->root_real, target) || stat(target, &info) != 0 ||
        !(S_ISDIR(info.st_mode) || (S_ISREG(info.st_mode) && has_safetensors_suffix(entry->name)))) {
        free(resolved);
        return;
    }
    char *child = relative[0] != '\0' ? ms_paths_join(relative, entry->name) : strdup(entry->name);
    if (child == NULL) {
        free(resolved);
        state->out_of_memory = true;
        return;
    }
    if (S_ISDIR(info.st_mode)) {
        walk_folder(state, target, &info, child, depth + 1);
        free(child);
        free(resolved);
    } else {
        add_item(state, child, entry, resolved, &info);
    }
}

/* own: real's stat, as its caller took it. */
static void walk_folder(walk *state, const char *real, const struct stat *own,
                        const char *relative, int depth)
{
    if (was_entered(state, own))
        return;   /* listed once, under the first path that reached it */
    if (depth > state->index->limits.max_depth) {
        add_gap(state, state->root, relative, "too_deep");
        return;
    }
    if (state->entered_count == state->index->limits.max_folders) {
        stop_walk(state, relative, "folder_limit");
        return;
    }
    state->entered[state->entered_count++] = (folder_id){own->st_dev, own->st_ino};
    folder_record *record = current_record(state, real, own);
    if (record == NULL) {
        state->out_of_memory = true;
        return;
    }
    if (!record->readable) {
        add_gap(state, state->root, relative, "unreadable");
        return;
    }
    for (size_t i = 0; i < record->entry_count; i++) {
        if (state->stop_reason != NULL || state->out_of_memory)
            return;
        walk_entry(state, record, &record->entries[i], relative, depth);
    }
}

static void walk_root(walk *state, const char *root)
{
    char *root_real = realpath(root, NULL);
    struct stat info;
    if (root_real == NULL || stat(root_real, &info) != 0 || !S_ISDIR(info.st_mode)) {
        add_gap(state, state->root, "", "missing");
        free(root_real);
        return;
    }
    state->root_real = root_real;
    walk_folder(state, root_real, &info, "", 0);
    state->root_real = NULL;
    free(root_real);
}

static void free_items(walk *state)
{
    for (size_t i = 0; i < state->item_count; i++) {
        free(state->items[i].position.path);
        free(state->items[i].resolved);
    }
    free(state->items);
    free(state->entered);
}

/* ---------------------------------------------------------------- the page */

/* The summary of a listed file, opened again unless the one kept still
 * describes it. */
static json_t *summary_of(ms_model_index *index, const walk_item *item)
{
    folder_entry *entry = item->entry;
    if (entry->summary != NULL && entry->summary_settled && same_key(&entry->key, &item->key))
        return entry->summary;
    int64_t read_ns = now_ns();
    index->counts.headers_opened++;
    json_t *summary = NULL;
    ms_safetensors file;
    ms_model_summary model;
    ms_error err;
    ms_error_clear(&err);
    const char *path = item->resolved != NULL ? item->resolved : entry->real;
    ms_status status = ms_safetensors_open(path, &file, &err);
    if (status == MS_OK) {
        status = ms_inspect_model(&file, &model, &err);
        ms_safetensors_close(&file);
    }
    if (status == MS_OK) {
        summary = ms_api_model_summary_to_json(&model);
    } else {
        summary = json_object();
        json_object_set_new(summary, "kind", json_string("unknown"));
        json_object_set_new(summary, "architecture", json_string("unknown"));
        json_object_set_new(summary, "error", ms_api_error_object(&err));
    }
    json_decref(entry->summary);
    entry->summary = summary;
    entry->key = item->key;
    entry->summary_settled = settled(index, &item->key, read_ns);
    return summary;
}

static json_t *describe(ms_model_index *index, const walk_item *item)
{
    json_t *model = json_object();
    json_object_set_new(model, "path", ms_api_json_text(item->position.path));
    json_object_set_new(model, "root", json_integer((json_int_t)item->position.root));
    json_object_set_new(model, "bytes", json_integer((json_int_t)item->key.size));
    json_t *summary = summary_of(index, item);
    if (summary != NULL)
        json_object_update(model, summary);
    return model;
}

static ms_status fill_page(ms_model_index *index, const walk *state,
                           const ms_model_position *after, size_t limit, ms_model_page *page,
                           ms_error *err)
{
    size_t first = 0;
    while (after != NULL && first < state->item_count &&
           ms_model_position_compare(&state->items[first].position, after) <= 0)
        first++;
    size_t end = first + limit < state->item_count ? first + limit : state->item_count;
    for (size_t i = first; i < end; i++) {
        if (json_array_append_new(page->models, describe(index, &state->items[i])) != 0)
            return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    }
    page->more = end < state->item_count;
    if (page->more) {
        page->next.root = state->items[end - 1].position.root;
        page->next.path = strdup(state->items[end - 1].position.path);
        if (page->next.path == NULL)
            return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    }
    return MS_OK;
}

ms_status ms_model_index_page(ms_model_index *index, char *const *roots, size_t root_count,
                              const ms_model_position *after, size_t limit,
                              ms_model_page *page, ms_error *err)
{
    memset(page, 0, sizeof *page);
    page->models = json_array();
    walk state = {.index = index, .gaps = json_array()};
    state.entered = malloc((index->limits.max_folders + 1) * sizeof *state.entered);
    if (page->models == NULL || state.gaps == NULL || state.entered == NULL) {
        json_decref(state.gaps);
        free(state.entered);
        ms_model_page_clear(page);
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    }
    pthread_mutex_lock(&index->mutex);
    index->walk++;
    for (size_t i = 0; i < root_count && !state.out_of_memory; i++) {
        state.root = i;
        if (state.stop_reason != NULL)
            add_gap(&state, i, "", state.stop_reason);   /* later roots: not reached */
        else
            walk_root(&state, roots[i]);
    }
    ms_status status = state.out_of_memory
                           ? ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory")
                           : fill_page(index, &state, after, limit, page, err);
    if (!state.out_of_memory)
        prune_records(index);   /* a walk out of memory missed folders that still exist */
    pthread_mutex_unlock(&index->mutex);
    free_items(&state);
    page->not_reached = state.gaps;
    page->not_reached_count = state.gap_count;
    if (status != MS_OK)
        ms_model_page_clear(page);
    return status;
}

void ms_model_page_clear(ms_model_page *page)
{
    json_decref(page->models);
    json_decref(page->not_reached);
    free(page->next.path);
    memset(page, 0, sizeof *page);
}
