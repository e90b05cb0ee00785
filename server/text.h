/* A growable byte string for building responses without stdio streams:
 * raw JSON pieces (params, reports) are copied with one memcpy. */
#ifndef MS_TEXT_H
#define MS_TEXT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct ms_text {
    char *data;          /* NUL-terminated while not failed */
    size_t length;
    size_t capacity;
    bool failed;         /* out of memory: every later call does nothing */
} ms_text;

void ms_text_init(ms_text *text, size_t capacity);
void ms_text_append(ms_text *text, const char *bytes, size_t length);
void ms_text_puts(ms_text *text, const char *string);
void ms_text_printf(ms_text *text, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* Numbers without printf: a job poll is answered thousands of times a
 * second and glibc's printf cost more than the rest of the answer. */
void ms_text_put_uint(ms_text *text, unsigned long long value);

/* The decimal digits of value, zero-padded to at least min_digits (at most
 * MS_UINT_DIGITS_MAX); returns their count.  No terminating NUL. */
enum { MS_UINT_DIGITS_MAX = 24 };
size_t ms_format_uint(char digits[MS_UINT_DIGITS_MAX], unsigned long long value, int min_digits);

/* value with `decimals` digits after the point (0 to 9), rounded half up,
 * trailing zeros after the point dropped: 0.25 -> "0.25", 2 -> "2".  Values
 * that are negative, not finite or 1e15 and above fall back to "%.17g". */
void ms_text_put_fixed(ms_text *text, double value, int decimals);

/* The malloced string (NULL when anything failed); the builder is reset. */
char *ms_text_take(ms_text *text);

/* Immutable, reference-counted text (a job's report can be hundreds of KB:
 * readers take a reference under the job table lock instead of a copy). */
typedef struct ms_shared_text {
    atomic_size_t references;
    size_t length;
    char data[];
} ms_shared_text;

/* Copies text; NULL text or no memory gives NULL. */
ms_shared_text *ms_shared_text_new(const char *text);
ms_shared_text *ms_shared_text_retain(ms_shared_text *text);   /* NULL allowed */
void ms_shared_text_release(ms_shared_text *text);             /* NULL allowed */

#endif
