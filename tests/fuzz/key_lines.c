#include "key_lines.h"

#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "api/json_text.h"
#include "core/format/header_build.h"

enum { TENSORS_MAX = 512, ELEMENTS_MAX = 1 << 16, DATA_MAX = 1 << 22 };

typedef struct key_line {
    char *name;
    ms_dtype dtype;
    int ndim;
    int64_t shape[MS_MAX_DIMS];
} key_line;

/* "4,320" into shape; false for anything else (or a huge tensor). */
static bool parse_dims(const char *text, key_line *line)
{
    line->ndim = 0;
    if (strcmp(text, "-") == 0)
        return true;   /* a 0-d tensor */
    uint64_t elements = 1;
    const char *at = text;
    for (;;) {
        if (line->ndim == MS_MAX_DIMS || *at < '0' || *at > '9')
            return false;
        int64_t dim = 0;
        while (*at >= '0' && *at <= '9' && dim <= ELEMENTS_MAX)
            dim = dim * 10 + (*at++ - '0');
        if (dim > ELEMENTS_MAX)
            return false;
        elements *= (uint64_t)dim;
        if (elements > ELEMENTS_MAX)
            return false;
        line->shape[line->ndim++] = dim;
        if (*at == '\0')
            return true;
        if (*at++ != ',')
            return false;
    }
}

/* Splits "NAME DTYPE DIMS" in place; a line that does not end so is a name. */
static void parse_line(char *text, key_line *line)
{
    line->name = text;
    line->dtype = MS_DTYPE_F32;
    line->ndim = 0;
    char *dims = strrchr(text, ' ');
    if (dims == NULL)
        return;
    *dims = '\0';
    char *dtype = strrchr(text, ' ');
    key_line parsed = *line;
    if (dtype != NULL && ms_dtype_from_name(dtype + 1, &parsed.dtype) &&
        parse_dims(dims + 1, &parsed)) {
        *dtype = '\0';
        *line = parsed;
        return;
    }
    *dims = ' ';
}

static bool usable(const key_line *lines, size_t count, const key_line *line)
{
    if (strcmp(line->name, "__metadata__") == 0 || !ms_api_text_is_utf8(line->name))
        return false;
    for (size_t i = 0; i < count; i++)
        if (strcmp(lines[i].name, line->name) == 0)
            return false;
    return true;
}

static uint64_t byte_count(const key_line *line)
{
    uint64_t elements = 1;
    for (int i = 0; i < line->ndim; i++)
        elements *= (uint64_t)line->shape[i];
    return elements * ms_dtype_size(line->dtype);
}

bool ms_fuzz_tensor_file_make(const uint8_t *data, size_t size, ms_fuzz_tensor_file *out)
{
    memset(out, 0, sizeof *out);
    key_line *lines = calloc(TENSORS_MAX, sizeof *lines);
    ms_header_tensor *tensors = calloc(TENSORS_MAX, sizeof *tensors);
    MS_FUZZ_CHECK(lines != NULL && tensors != NULL);
    size_t count = 0, cursor = 0;
    uint64_t data_size = 0;
    char *text;
    while (count < TENSORS_MAX && (text = ms_fuzz_next_line(data, size, &cursor)) != NULL) {
        key_line line;
        parse_line(text, &line);
        if (!usable(lines, count, &line) || data_size + byte_count(&line) > DATA_MAX) {
            free(text);
            continue;
        }
        lines[count] = line;
        tensors[count] = (ms_header_tensor){lines[count].name, line.dtype, line.ndim,
                                            lines[count].shape, byte_count(&line)};
        data_size += tensors[count].byte_count;
        count++;
    }
    bool made = false;
    if (count > 0) {
        unsigned char *header = NULL;
        size_t header_bytes = 0;
        ms_error err;
        MS_FUZZ_CHECK(ms_header_build(tensors, count, NULL, 0, &header, &header_bytes, &err) ==
                      MS_OK);
        out->size = header_bytes + (size_t)data_size;
        out->bytes = calloc(out->size, 1);
        MS_FUZZ_CHECK(out->bytes != NULL);
        memcpy(out->bytes, header, header_bytes);
        free(header);
        ms_status parsed = ms_safetensors_parse(out->bytes, out->size, &out->file, &err);
        if (parsed != MS_OK)
            fprintf(stderr, "the reader refused what the builder wrote: %s\n", err.message);
        MS_FUZZ_CHECK(parsed == MS_OK);
        MS_FUZZ_CHECK(out->file.tensor_count == count);
        made = true;
    }
    /* lines[i].name is the line's text (parse_line splits it in place) */
    for (size_t i = 0; i < count; i++)
        free(lines[i].name);
    free(lines);
    free(tensors);
    return made;
}

void ms_fuzz_tensor_file_free(ms_fuzz_tensor_file *file)
{
    ms_safetensors_close(&file->file);
    free(file->bytes);
    memset(file, 0, sizeof *file);
}
