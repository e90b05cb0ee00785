/* kohya's sshs_legacy_hash (train_util.precalculate_safetensors_hashes):
 * sd-webui-additional-networks' old model hash, the sha256 of bytes
 * [1 MiB, 1 MiB + 64 KiB) of the file Python's safetensors.torch.save
 * would make from the same tensors and only the "ss_" metadata.
 *
 * That file and ours share the data section (same tensor order, no gaps);
 * only the header differs.  So the header is built (not written) to learn
 * its length, and the window is read from the header for the part it covers
 * (only when the header passes 1 MiB) and from the spool for the rest.
 *
 * The reference keeps metadata in a hash map, so its key order inside
 * "__metadata__" is not fixed; we use the sorted order every header of ours
 * has.  Only a header over 1 MiB lets the order reach the window. */
#include "writer_internal.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    LEGACY_WINDOW_START = 0x100000,  /* 1 MiB */
    LEGACY_WINDOW_BYTES = 0x10000,   /* 64 KiB */
};

static bool kept_by_legacy_header(const ms_writer *writer, const char *name)
{
    if (strncmp(name, writer->legacy_hash_prefix, strlen(writer->legacy_hash_prefix)) != 0)
        return false;
    /* kohya computes both hashes before it stores them */
    return strcmp(name, writer->legacy_hash_name) != 0 &&
           (writer->data_hash_name == NULL || strcmp(name, writer->data_hash_name) != 0);
}

/* The 8-byte length and JSON of the header with only the kept metadata
 * (already sorted: writer->metadata is). */
static ms_status legacy_header(const ms_writer *writer, writer_entry *const *order,
                               size_t count, unsigned char **header, size_t *header_bytes,
                               ms_error *err)
{
    ms_metadata_entry *kept = malloc((writer->metadata_count + 1) * sizeof *kept);
    ms_header_tensor *tensors = ms_writer_header_tensors(order, count);
    ms_status status = MS_OK;
    size_t kept_count = 0;
    if (kept == NULL || tensors == NULL) {
        status = ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < writer->metadata_count; i++)
        if (kept_by_legacy_header(writer, writer->metadata[i].name))
            kept[kept_count++] = writer->metadata[i];
    /* kohya passes a dict, so "__metadata__" is there even when empty */
    status = ms_header_build_with_metadata_object(tensors, count, kept, kept_count, header,
                                                  header_bytes, err);
done:
    free(kept);
    free(tensors);
    return status;
}

/* Feeds bytes [begin, end) of the data section to the hash. */
static bool hash_data_range(EVP_MD_CTX *hash, writer_entry *const *order, size_t count,
                            const unsigned char *spool_map, uint64_t begin, uint64_t end)
{
    uint64_t entry_begin = 0;
    for (size_t i = 0; i < count && entry_begin < end; i++) {
        uint64_t entry_end = entry_begin + order[i]->byte_count;
        uint64_t from = begin > entry_begin ? begin : entry_begin;
        uint64_t to = end < entry_end ? end : entry_end;
        if (from < to &&
            EVP_DigestUpdate(hash, spool_map + order[i]->spool_offset + (from - entry_begin),
                             (size_t)(to - from)) != 1)
            return false;
        entry_begin = entry_end;
    }
    return true;
}

static bool hash_window(EVP_MD_CTX *hash, const unsigned char *header, uint64_t header_bytes,
                        writer_entry *const *order, size_t count,
                        const unsigned char *spool_map, uint64_t data_size)
{
    uint64_t file_bytes = header_bytes + data_size;
    uint64_t start = LEGACY_WINDOW_START;
    uint64_t end = start + LEGACY_WINDOW_BYTES;
    if (end > file_bytes)
        end = file_bytes;
    if (start >= end)
        return true; /* a read past the end: nothing, sha256 of no bytes */
    if (start < header_bytes) {
        uint64_t header_end = end < header_bytes ? end : header_bytes;
        if (EVP_DigestUpdate(hash, header + start, (size_t)(header_end - start)) != 1)
            return false;
        start = header_end;
    }
    if (start >= end)
        return true;
    return hash_data_range(hash, order, count, spool_map, start - header_bytes,
                           end - header_bytes);
}

ms_status ms_writer_legacy_hash(const ms_writer *writer, writer_entry *const *order,
                                size_t count, const unsigned char *spool_map, char hex[9],
                                ms_error *err)
{
    unsigned char *header = NULL;
    size_t header_bytes = 0;
    EVP_MD_CTX *hash = NULL;
    uint64_t data_size = 0;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    ms_status status = legacy_header(writer, order, count, &header, &header_bytes, err);
    if (status != MS_OK)
        goto done;
    for (size_t i = 0; i < count; i++)
        data_size += order[i]->byte_count;
    hash = EVP_MD_CTX_new();
    if (hash == NULL || EVP_DigestInit_ex(hash, EVP_sha256(), NULL) != 1 ||
        !hash_window(hash, header, header_bytes, order, count, spool_map, data_size) ||
        EVP_DigestFinal_ex(hash, digest, &length) != 1 || length != 32) {
        status = ms_error_set(err, MS_ERR_INTERNAL, NULL, "sha256 of the legacy hash failed");
        goto done;
    }
    for (int i = 0; i < 4; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
done:
    EVP_MD_CTX_free(hash);
    free(header);
    return status;
}
