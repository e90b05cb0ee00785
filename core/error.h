/* One error convention for the whole project.
 *
 * Every function that can fail returns an ms_status (MS_OK == 0) and, when it
 * fails, fills the caller's ms_error.  The code is a stable machine word (see
 * ms_status_name); message is for people; key names the tensor at fault, when
 * there is one; details carry a few name/value pairs (numbers are written as
 * decimal text and marked as numbers, the api layer turns them into JSON). */
#ifndef MS_ERROR_H
#define MS_ERROR_H

#include <stddef.h>

typedef enum ms_status {
    MS_OK = 0,
    /* generic */
    MS_ERR_INVALID_PARAMETER,   /* invalid_parameter */
    MS_ERR_OUT_OF_MEMORY,       /* out_of_memory */
    MS_ERR_IO,                  /* io_error */
    MS_ERR_DISK_FULL,           /* disk_full */
    MS_ERR_NOT_FOUND,           /* model_not_found */
    MS_ERR_CANCELLED,           /* cancelled */
    MS_ERR_INTERNAL,            /* internal_error */
    /* safetensors container, each malformation its own code */
    MS_ERR_FILE_TOO_SMALL,          /* file_too_small: fewer than 8 bytes */
    MS_ERR_HEADER_TOO_LARGE,        /* header_too_large: past the file or past 100 MB */
    MS_ERR_HEADER_NOT_JSON,         /* header_not_json */
    MS_ERR_HEADER_NOT_OBJECT,       /* header_not_object */
    MS_ERR_DUPLICATE_KEY,           /* duplicate_key */
    MS_ERR_BAD_TENSOR_ENTRY,        /* bad_tensor_entry: missing/ill-typed dtype, shape, data_offsets */
    MS_ERR_UNSUPPORTED_DTYPE,       /* unsupported_dtype: a dtype string safetensors does not define */
    MS_ERR_SIZE_MISMATCH,           /* size_mismatch: elements * dtype size != byte range */
    MS_ERR_OFFSETS_OUT_OF_RANGE,    /* offsets_out_of_range */
    MS_ERR_OVERLAPPING_TENSORS,     /* overlapping_tensors */
    MS_ERR_DATA_HOLE,               /* data_hole: bytes of the data section no tensor covers */
    MS_ERR_BAD_METADATA,            /* bad_metadata: __metadata__ not an object of strings */
    MS_ERR_INTEGER_OVERFLOW,        /* integer_overflow */
    /* numerics and model content */
    MS_ERR_SHAPE_MISMATCH,          /* shape_mismatch */
    MS_ERR_RANK_MISMATCH,           /* rank_mismatch */
    MS_ERR_NAN_DETECTED,            /* nan_detected */
    MS_ERR_LAPACK,                  /* lapack_failure */
    MS_ERR_NOT_A_LORA,              /* not_a_lora */
    MS_ERR_DEGENERATE_ROTATION,     /* degenerate_rotation (merge issue) */
    /* service level: requests, jobs, files */
    MS_ERR_INVALID_JSON,            /* invalid_json: 400 */
    MS_ERR_UNSUPPORTED_MEDIA_TYPE,  /* unsupported_media_type: 415 */
    MS_ERR_BODY_TOO_LARGE,          /* body_too_large: 413 */
    MS_ERR_PATH_OUTSIDE_MODELS,     /* path_outside_models: 422 */
    MS_ERR_INVALID_OUTPUT_NAME,     /* invalid_output_name: 422 */
    MS_ERR_JOB_NOT_FOUND,           /* job_not_found: 404 */
    MS_ERR_ROUTE_NOT_FOUND,         /* not_found: 404 */
    MS_ERR_METHOD_NOT_ALLOWED,      /* method_not_allowed: 405 */
    MS_ERR_RESULT_NOT_READY,        /* result_not_ready: 409 */
    MS_ERR_IDEMPOTENCY_CONFLICT,    /* idempotency_conflict: 409 */
    MS_ERR_RANGE_NOT_SATISFIABLE,   /* range_not_satisfiable: 416 */
    MS_ERR_QUEUE_FULL,              /* queue_full: 429 */
    MS_ERR_UNAUTHORIZED,            /* unauthorized: 401 */
    MS_ERR_INTERRUPTED,             /* interrupted: job was running when the process died */
    MS_ERR_SHUTTING_DOWN,           /* shutting_down: 503 */
    MS_ERR_NOT_IMPLEMENTED,         /* not_implemented: 501 */
    MS_ERR_UNSUPPORTED_OPTION,      /* unsupported_option: 422, valid but not offered here */
    MS_ERR_RESULT_EXPIRED,          /* result_expired: 410, deleted by the retention limits */
    MS_ERR_WEBUI_UNREACHABLE,       /* webui_unreachable: 502, the web UI did not answer in time */
    MS_ERR_WEBUI_ERROR,             /* webui_error: 502, the web UI answered with an error */
    MS_ERR_BAD_REQUEST,             /* bad_request: 400, framing (two Content-Lengths ...) */
    MS_ERR_URI_TOO_LONG,            /* uri_too_long: 414 */
    MS_ERR_HEADERS_TOO_LARGE,       /* headers_too_large: 431 */
    MS_ERR_HTTP_VERSION_NOT_SUPPORTED, /* http_version_not_supported: 505 */
    MS_STATUS_COUNT
} ms_status;

enum { MS_ERROR_MAX_DETAILS = 6 };

typedef struct ms_error_detail {
    char name[32];
    char value[256];        /* room for a list such as the merge methods' names */
    int is_number;          /* value was formatted from a number (not from %s) */
} ms_error_detail;

typedef struct ms_error {
    ms_status code;
    char message[512];
    char key[256];          /* tensor key, "" when none */
    int detail_count;
    ms_error_detail details[MS_ERROR_MAX_DETAILS];
} ms_error;

/* Stable snake_case word for a status, as listed in openapi.yaml. */
const char *ms_status_name(ms_status code);

/* Clears err (err may be NULL everywhere in this API). */
void ms_error_clear(ms_error *err);

/* Sets code, key (may be NULL) and a printf-style message; returns code so a
 * caller can write `return ms_error_set(err, ...)`. */
ms_status ms_error_set(ms_error *err, ms_status code, const char *key,
                       const char *format, ...)
    __attribute__((format(printf, 4, 5)));

/* Appends a detail; silently drops it when the table is full.  A format that
 * is one numeric conversion ("%d", "%" PRIu64, "%.17g") makes a number;
 * anything else a string, whatever the text looks like (a field named "123"
 * stays a string). */
void ms_error_detail_add(ms_error *err, const char *name, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* Progress and cancellation, shared by every long core operation.
 * The callback is called from the thread doing the work, between tensors. */
typedef void (*ms_progress_fn)(void *user_data, size_t done, size_t total,
                               const char *current_key);

#endif
