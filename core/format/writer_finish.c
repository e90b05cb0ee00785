/* Writer, second half: ordering, header, hashing and atomic publication.
 *
 * Order and header follow the reference (Rust/Python) safetensors library:
 * tensors sorted by dtype enum descending then name bytes; header is compact
 * JSON with "__metadata__" first (keys sorted) and the tensors in data order,
 * padded with spaces to a multiple of 8.
 *
 * The data hash goes into the header, and the file hash covers the header,
 * so when the data hash is stored the data is hashed twice: once while it is
 * copied (header written later; its size is known because a hex digest has a
 * fixed length) and once more from the spool's page cache for the file hash,
 * while the data is flushed to disk.  Without it, one pass does both.  The
 * hashing runs on a helper thread beside the copy. */
#include "writer_internal.h"

#include "header_build.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct finish_state {
    ms_writer *writer;
    writer_entry **order;      /* ready entries in reference order */
    size_t count;
    uint64_t data_size;
    const unsigned char *spool_map;
    int temp_fd;               /* the output's temporary (writer->output.temp_fd) */
    unsigned char *header;     /* 8-byte length + padded JSON */
    size_t header_bytes;
    EVP_MD_CTX *data_hash;
    EVP_MD_CTX *file_hash;
} finish_state;

static int compare_reference_order(const void *a, const void *b)
{
    const writer_entry *x = *(const writer_entry *const *)a;
    const writer_entry *y = *(const writer_entry *const *)b;
    if (x->dtype != y->dtype)
        return x->dtype > y->dtype ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int compare_metadata_names(const void *a, const void *b)
{
    return strcmp(((const ms_metadata_entry *)a)->name, ((const ms_metadata_entry *)b)->name);
}

static ms_status collect_entries_locked(finish_state *state, ms_error *err)
{
    ms_writer *writer = state->writer;
    state->order = malloc((writer->entry_count + 1) * sizeof *state->order);
    if (state->order == NULL)
        return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    for (size_t i = 0; i < writer->entry_count; i++) {
        writer_entry *entry = &writer->entries[i];
        if (entry->state == WRITER_ENTRY_PENDING)
            return ms_error_set(err, MS_ERR_INTERNAL, entry->name,
                                "finish called while tensor \"%s\" is still being added",
                                entry->name);
        if (entry->state == WRITER_ENTRY_READY)
            state->order[state->count++] = entry;
    }
    qsort(state->order, state->count, sizeof *state->order, compare_reference_order);
    for (size_t i = 0; i < state->count; i++)
        state->data_size += state->order[i]->byte_count; /* each add checked the spool sum */
    return MS_OK;
}

static ms_status collect_entries(finish_state *state, ms_error *err)
{
    pthread_mutex_lock(&state->writer->lock);
    ms_status status = collect_entries_locked(state, err);
    pthread_mutex_unlock(&state->writer->lock);
    return status;
}

ms_header_tensor *ms_writer_header_tensors(writer_entry *const *order, size_t count)
{
    ms_header_tensor *tensors = malloc((count + 1) * sizeof *tensors);
    for (size_t i = 0; i < count && tensors != NULL; i++)
        tensors[i] = (ms_header_tensor){order[i]->name, order[i]->dtype, order[i]->ndim,
                                        order[i]->shape, order[i]->byte_count};
    return tensors;
}

/* Known before the header is sized (the data is in the spool), so it goes
 * in as an ordinary metadata entry. */
static ms_status store_legacy_hash(finish_state *state, ms_error *err)
{
    char hex[9];
    ms_status status = ms_writer_legacy_hash(state->writer, state->order, state->count,
                                             state->spool_map, hex, err);
    if (status == MS_OK)
        status = ms_writer_set_metadata(state->writer, state->writer->legacy_hash_name, hex,
                                        err);
    return status;
}

/* The metadata, names sorted, with the data hash (or a same-length
 * placeholder) under its name when one was asked for. */
static ms_metadata_entry *metadata_pairs(const ms_writer *writer, const char *data_hash_hex,
                                         size_t *count)
{
    *count = 0;
    ms_metadata_entry *pairs = malloc((writer->metadata_count + 1) * sizeof *pairs);
    if (pairs == NULL)
        return NULL;
    for (size_t i = 0; i < writer->metadata_count; i++) {
        if (writer->data_hash_name == NULL ||
            strcmp(writer->metadata[i].name, writer->data_hash_name) != 0)
            pairs[(*count)++] = writer->metadata[i];
    }
    if (writer->data_hash_name != NULL)
        pairs[(*count)++] = (ms_metadata_entry){writer->data_hash_name, (char *)data_hash_hex};
    qsort(pairs, *count, sizeof *pairs, compare_metadata_names);
    return pairs;
}

static ms_status build_header(finish_state *state, const char *data_hash_hex, ms_error *err)
{
    size_t metadata_count = 0;
    ms_metadata_entry *metadata = metadata_pairs(state->writer, data_hash_hex, &metadata_count);
    ms_header_tensor *tensors = ms_writer_header_tensors(state->order, state->count);
    ms_status status = MS_OK;
    if (metadata == NULL || tensors == NULL)
        status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
    free(state->header);
    state->header = NULL;
    if (status == MS_OK)
        status = ms_header_build(tensors, state->count, metadata, metadata_count, &state->header,
                                 &state->header_bytes, err);
    free(metadata);
    free(tensors);
    return status;
}

/* The temporary beside the target, with the target's mode rules. */
static ms_status create_temp(finish_state *state, ms_error *err)
{
    ms_status status = ms_output_file_create_temp(&state->writer->output, err);
    if (status == MS_OK)
        state->temp_fd = state->writer->output.temp_fd;
    return status;
}

/* Feeds the data section, in order, to up to two hashes and optionally
 * writes it to the temp file after the header. */
static ms_status stream_data(finish_state *state, EVP_MD_CTX *first, EVP_MD_CTX *second,
                             bool write, ms_error *err)
{
    uint64_t out_offset = state->header_bytes;
    for (size_t i = 0; i < state->count; i++) {
        const writer_entry *entry = state->order[i];
        if (entry->byte_count == 0)
            continue; /* the map may be NULL when every tensor is empty */
        const unsigned char *source = state->spool_map + entry->spool_offset;
        for (uint64_t done = 0; done < entry->byte_count;) {
            uint64_t left = entry->byte_count - done;
            size_t length = left < MS_WRITER_CHUNK_BYTES ? (size_t)left : MS_WRITER_CHUNK_BYTES;
            if ((first != NULL && EVP_DigestUpdate(first, source + done, length) != 1) ||
                (second != NULL && EVP_DigestUpdate(second, source + done, length) != 1))
                return ms_error_set(err, MS_ERR_INTERNAL, NULL, "sha256 update failed");
            if (write) {
                ms_status status = ms_writer_pwrite_all(state->temp_fd, source + done, length,
                                                        out_offset, "the output file", err);
                if (status != MS_OK)
                    return status;
            }
            done += length;
            out_offset += length;
        }
    }
    return MS_OK;
}

static ms_status digest_hex(EVP_MD_CTX *context, char hex[65], ms_error *err)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(context, digest, &length) != 1 || length != 32)
        return ms_error_set(err, MS_ERR_INTERNAL, NULL, "sha256 finalisation failed");
    for (unsigned int i = 0; i < length; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    return MS_OK;
}

static ms_status start_hashes(finish_state *state, ms_error *err)
{
    state->data_hash = EVP_MD_CTX_new();
    state->file_hash = EVP_MD_CTX_new();
    if (state->data_hash == NULL || state->file_hash == NULL ||
        EVP_DigestInit_ex(state->data_hash, EVP_sha256(), NULL) != 1 ||
        EVP_DigestInit_ex(state->file_hash, EVP_sha256(), NULL) != 1)
        return ms_error_set(err, MS_ERR_INTERNAL, NULL, "cannot start sha256");
    return MS_OK;
}

static ms_status map_spool(finish_state *state, ms_error *err)
{
    const ms_writer *writer = state->writer;
    if (writer->spool_size == 0)
        return MS_OK;
    void *map = mmap(NULL, (size_t)writer->spool_size, PROT_READ, MAP_SHARED, writer->spool_fd, 0);
    if (map == MAP_FAILED)
        return ms_writer_io_error(err, errno, "map", "the spool");
    madvise(map, (size_t)writer->spool_size, MADV_SEQUENTIAL);
    state->spool_map = map;
    return MS_OK;
}

/* Hashing runs beside the main thread's I/O: on a helper thread when one
 * can be started (the writes and the hashes then overlap on two cores),
 * inline after the I/O otherwise. */
typedef struct hash_job {
    finish_state *state;
    EVP_MD_CTX *first;
    EVP_MD_CTX *second;
    ms_status status;
    ms_error err;
    pthread_t thread;
    bool threaded;
} hash_job;

static void *hash_job_run(void *argument)
{
    hash_job *job = argument;
    job->status = stream_data(job->state, job->first, job->second, false, &job->err);
    return NULL;
}

static void hash_job_start(hash_job *job, finish_state *state, EVP_MD_CTX *first,
                           EVP_MD_CTX *second)
{
    memset(job, 0, sizeof *job);
    job->state = state;
    job->first = first;
    job->second = second;
    job->threaded = pthread_create(&job->thread, NULL, hash_job_run, job) == 0;
}

/* Waits for (or runs) the job; the first failure wins. */
static ms_status hash_job_finish(hash_job *job, ms_status status, ms_error *err)
{
    if (job->threaded)
        pthread_join(job->thread, NULL);
    else if (status == MS_OK)
        hash_job_run(job);
    if (status == MS_OK && job->status != MS_OK) {
        if (err != NULL)
            *err = job->err;
        status = job->status;
    }
    return status;
}

static ms_status sync_data(int fd, ms_error *err)
{
    while (fdatasync(fd) != 0) {
        if (errno != EINTR)
            return ms_writer_io_error(err, errno, "fsync", "the output file");
    }
    return MS_OK;
}

/* With the data hash stored in the header, the file hash can only start
 * once the data hash is known: hash the data again (from the spool's page
 * cache) while the data already written goes to disk. */
static ms_status hash_file_after_data(finish_state *state, ms_writer_result *result,
                                      ms_error *err)
{
    size_t expected_bytes = state->header_bytes;
    ms_status status = build_header(state, result->data_sha256, err);
    if (status == MS_OK && state->header_bytes != expected_bytes)
        status = ms_error_set(err, MS_ERR_INTERNAL, NULL, "header size changed with the hash");
    if (status == MS_OK &&
        EVP_DigestUpdate(state->file_hash, state->header, state->header_bytes) != 1)
        status = ms_error_set(err, MS_ERR_INTERNAL, NULL, "sha256 update failed");
    if (status != MS_OK)
        return status;
    hash_job job;
    hash_job_start(&job, state, state->file_hash, NULL);
    status = sync_data(state->temp_fd, err);
    return hash_job_finish(&job, status, err);
}

/* Header and data into the temp file, both hashes into result.  The header
 * is sized first with a placeholder digest (hex digests have a fixed
 * length), the data is written after it, and the header last. */
static ms_status write_contents(finish_state *state, ms_writer_result *result, ms_error *err)
{
    static const char placeholder[65] =
        "0000000000000000000000000000000000000000000000000000000000000000";
    const bool store_hash = state->writer->data_hash_name != NULL;
    ms_status status = MS_OK;
    if (state->writer->legacy_hash_name != NULL)
        status = store_legacy_hash(state, err);
    if (status == MS_OK)
        status = build_header(state, placeholder, err);
    if (status == MS_OK)
        status = start_hashes(state, err);
    if (status == MS_OK && !store_hash &&
        EVP_DigestUpdate(state->file_hash, state->header, state->header_bytes) != 1)
        status = ms_error_set(err, MS_ERR_INTERNAL, NULL, "sha256 update failed");
    if (status != MS_OK)
        return status;

    hash_job job;
    hash_job_start(&job, state, state->data_hash, store_hash ? NULL : state->file_hash);
    status = stream_data(state, NULL, NULL, true, err);
    status = hash_job_finish(&job, status, err);
    if (status == MS_OK)
        status = digest_hex(state->data_hash, result->data_sha256, err);
    if (status == MS_OK && store_hash)
        status = hash_file_after_data(state, result, err);
    if (status == MS_OK)
        status = ms_writer_pwrite_all(state->temp_fd, state->header, state->header_bytes, 0,
                                      "the output file", err);
    if (status == MS_OK)
        status = digest_hex(state->file_hash, result->file_sha256, err);
    result->file_bytes = state->header_bytes + state->data_size;
    return status;
}

static void finish_cleanup(finish_state *state)
{
    if (state->spool_map != NULL)
        munmap((void *)state->spool_map, (size_t)state->writer->spool_size);
    EVP_MD_CTX_free(state->data_hash);
    EVP_MD_CTX_free(state->file_hash);
    free(state->header);
    free(state->order);
    ms_writer_free(state->writer); /* removes the temporary unless it was published */
}

ms_status ms_writer_finish(ms_writer *writer, ms_writer_result *result, ms_error *err)
{
    if (writer == NULL)
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL, "no writer");
    finish_state state = {.writer = writer, .temp_fd = -1};
    ms_writer_result local;
    memset(&local, 0, sizeof local);
    ms_status status = collect_entries(&state, err);
    if (status == MS_OK)
        status = map_spool(&state, err);
    if (status == MS_OK)
        status = create_temp(&state, err);
    if (status == MS_OK)
        status = write_contents(&state, &local, err);
    if (status == MS_OK)
        status = ms_output_file_publish(&state.writer->output, err);
    if (status == MS_OK && result != NULL)
        *result = local;
    finish_cleanup(&state);
    return status;
}
