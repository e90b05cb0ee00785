/* mergesvd inspect FILE: tensors, dtypes, shapes, metadata and the detected
 * kind of a safetensors file, as text or one JSON object. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/json_text.h"
#include "cli_options.h"
#include "commands.h"
#include "core/model/inspect.h"
#include "core/format/safetensors.h"
#include "server/printable.h"

static const char inspect_usage[] =
    "usage: mergesvd inspect FILE [--json]\n"
    "\n"
    "Shows a safetensors file's tensors (name, dtype, shape, bytes), its\n"
    "metadata and what it is (LoRA or checkpoint, SD1/SD2/SDXL).\n"
    "  --json   one JSON object on stdout\n";

/* Long metadata values (ss_tag_frequency, ...) are cut in text output. */
enum { METADATA_TEXT_LIMIT = 160 };
/* Names longer than this are cut in text output (whole in --json). */
enum { NAME_TEXT_LIMIT = 512 };

static void format_shape(const ms_tensor_info *tensor, char *text, size_t size)
{
    size_t used = (size_t)snprintf(text, size, "[");
    for (int i = 0; i < tensor->ndim && used < size; i++)
        used += (size_t)snprintf(text + used, size - used, "%s%" PRId64, i > 0 ? ", " : "",
                                 tensor->shape[i]);
    if (used < size)
        snprintf(text + used, size - used, "]");
}

static void print_summary_text(const ms_model_summary *summary)
{
    printf("kind: %s\narchitecture: %s\n", ms_model_kind_name(summary->kind),
           ms_architecture_name(summary->architecture));
    if (summary->kind == MS_MODEL_LORA)
        printf("lora: %s spelling, %zu modules (%zu conv), rank %d..%d, %zu other tensors\n",
               ms_lora_spelling_name(summary->spelling), summary->module_count,
               summary->conv_module_count, summary->rank_min, summary->rank_max,
               summary->passthrough_count);
}

static void print_text(const char *path, const ms_safetensors *file)
{
    printf("file: %s\nbytes: %" PRIu64 " (header %" PRIu64 ", data %" PRIu64 ")\n", path,
           file->file_size, file->header_length, file->data_size);
    printf("metadata: %zu entries\n", file->metadata_count);
    for (size_t i = 0; i < file->metadata_count; i++) {
        const char *value = file->metadata[i].value;
        size_t length = strlen(value);
        char name[MS_PRINTABLE_SIZE(NAME_TEXT_LIMIT)];
        char shown[MS_PRINTABLE_SIZE(METADATA_TEXT_LIMIT)];
        ms_printable_copy(value, METADATA_TEXT_LIMIT, shown, sizeof shown);
        printf("  %s: %s%s\n", ms_printable(file->metadata[i].name, name, sizeof name), shown,
               length > METADATA_TEXT_LIMIT ? "..." : "");
    }
    printf("tensors: %zu\n", file->tensor_count);
    for (size_t i = 0; i < file->tensor_count; i++) {
        const ms_tensor_info *tensor = &file->tensors[i];
        char shape[160];
        format_shape(tensor, shape, sizeof shape);
        char name[MS_PRINTABLE_SIZE(NAME_TEXT_LIMIT)];
        printf("  %-90s %-5s %-22s %" PRIu64 "\n", ms_printable(tensor->name, name, sizeof name),
               ms_dtype_name(tensor->dtype), shape, tensor->byte_count);
    }
}

static json_t *tensors_to_json(const ms_safetensors *file)
{
    json_t *tensors = json_array();
    for (size_t i = 0; i < file->tensor_count; i++) {
        const ms_tensor_info *tensor = &file->tensors[i];
        json_t *shape = json_array();
        for (int d = 0; d < tensor->ndim; d++)
            json_array_append_new(shape, json_integer((json_int_t)tensor->shape[d]));
        json_t *entry = json_object();
        json_object_set_new(entry, "name", ms_api_json_text(tensor->name));
        json_object_set_new(entry, "dtype", json_string(ms_dtype_name(tensor->dtype)));
        json_object_set_new(entry, "shape", shape);
        json_object_set_new(entry, "offset", json_integer((json_int_t)tensor->offset));
        json_object_set_new(entry, "bytes", json_integer((json_int_t)tensor->byte_count));
        json_array_append_new(tensors, entry);
    }
    return tensors;
}

static void print_json(const char *path, const ms_safetensors *file,
                       const ms_model_summary *summary)
{
    json_t *root = json_object();
    json_object_set_new(root, "file", ms_api_json_text(path));
    json_object_set_new(root, "bytes", json_integer((json_int_t)file->file_size));
    json_object_set_new(root, "header_bytes", json_integer((json_int_t)file->header_length));
    json_t *summary_json = ms_api_model_summary_to_json(summary);
    json_object_update(root, summary_json);
    json_decref(summary_json);
    json_t *metadata = json_object();
    for (size_t i = 0; i < file->metadata_count; i++)
        json_object_set_new(metadata, file->metadata[i].name,
                            ms_api_json_text(file->metadata[i].value));
    json_object_set_new(root, "metadata", metadata);
    json_object_set_new(root, "tensor_count", json_integer((json_int_t)file->tensor_count));
    json_object_set_new(root, "tensors", tensors_to_json(file));
    ms_api_json_dumpf(root, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(root);
}

int ms_command_inspect(int argc, char **argv)
{
    bool json = false;
    bool help = false;
    const char *path = NULL;
    const ms_cli_option options[] = {
        {"json", NULL, &json},
        {"help", NULL, &help},
    };
    ms_cli_spec spec = {"inspect", options, sizeof options / sizeof options[0], &path, 1};
    int positional_count = 0;
    if (ms_cli_parse(&spec, argc, argv, &positional_count) != 0)
        return 2;
    if (help) {
        fputs(inspect_usage, stdout);
        return 0;
    }
    if (positional_count != 1 || path[0] == '\0')
        return ms_cli_usage_error("inspect", "exactly one FILE is required");

    ms_safetensors file;
    ms_error err;
    ms_error_clear(&err);
    if (ms_safetensors_open(path, &file, &err) != MS_OK)
        return ms_cli_report_error(&err, json);
    ms_model_summary summary;
    ms_status status = ms_inspect_model(&file, &summary, &err);
    if (status == MS_OK && json)
        print_json(path, &file, &summary);
    else if (!json) {
        /* a malformed LoRA still gets its listing: it shows what is wrong */
        print_text(path, &file);
        if (status == MS_OK)
            print_summary_text(&summary);
    }
    ms_safetensors_close(&file);
    return status == MS_OK ? 0 : ms_cli_report_error(&err, json);
}
