/* Python's str(float), for the kohya metadata strings ("sv_fro: 0.9",
 * ss_network_alpha "4.0"), which tools compare as text. */
#include "core/lora/resize_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Shortest %.Ne form that reads back as value: digits (no dot) and the
 * decimal exponent of the first digit. */
static void shortest_digits(double value, char digits[24], int *exponent)
{
    char text[40];
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(text, sizeof text, "%.*e", precision - 1, value);
        if (strtod(text, NULL) == value)
            break;
    }
    char *mark = strchr(text, 'e');
    *exponent = atoi(mark + 1);
    size_t count = 0;
    for (const char *p = text; p < mark; p++)
        if (*p >= '0' && *p <= '9')
            digits[count++] = *p;
    while (count > 1 && digits[count - 1] == '0')
        count--;
    digits[count] = '\0';
}

/* Appends digits with the decimal point after `point` of them (point may
 * be <= 0 or past the digits: zeros fill in), always with a fraction. */
static void fixed_notation(const char *digits, int point, char *text, size_t size)
{
    char buffer[64];
    size_t used = 0;
    int count = (int)strlen(digits);
    if (point <= 0) {
        buffer[used++] = '0';
        buffer[used++] = '.';
        for (int i = point; i < 0; i++)
            buffer[used++] = '0';
        for (int i = 0; i < count; i++)
            buffer[used++] = digits[i];
    } else {
        for (int i = 0; i < point; i++)
            buffer[used++] = i < count ? digits[i] : '0';
        buffer[used++] = '.';
        if (point >= count)
            buffer[used++] = '0';
        for (int i = point; i < count; i++)
            buffer[used++] = digits[i];
    }
    buffer[used] = '\0';
    size_t length = strlen(text);
    snprintf(text + length, size - length, "%s", buffer);
}

void ms_python_float_str(double value, char *text, size_t size)
{
    if (isnan(value)) {
        snprintf(text, size, "nan");
        return;
    }
    if (isinf(value)) {
        snprintf(text, size, value < 0 ? "-inf" : "inf");
        return;
    }
    if (value == 0.0) {
        snprintf(text, size, signbit(value) ? "-0.0" : "0.0");
        return;
    }
    char digits[24];
    int exponent;
    shortest_digits(fabs(value), digits, &exponent);
    snprintf(text, size, "%s", value < 0 ? "-" : "");
    int point = exponent + 1; /* digits before the decimal point */
    if (point > -4 && point <= 16) {
        fixed_notation(digits, point, text, size);
        return;
    }
    size_t used = strlen(text);
    snprintf(text + used, size - used, "%c%s%se%c%02d", digits[0], digits[1] ? "." : "",
             digits + 1, exponent < 0 ? '-' : '+', abs(exponent));
}
