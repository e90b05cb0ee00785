#include "cli_options.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/json_text.h"
#include "server/printable.h"

int ms_cli_usage_error(const char *command, const char *format, ...)
{
    fprintf(stderr, "mergesvd %s: ", command);
    va_list args;
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fprintf(stderr, "\n(see `mergesvd %s --help`)\n", command);
    return 2;
}

/* Finds the option whose name equals text[0..length) with '-' read as '_'. */
static const ms_cli_option *find_option(const ms_cli_spec *spec, const char *text,
                                        size_t length)
{
    for (size_t i = 0; i < spec->option_count; i++) {
        const char *name = spec->options[i].name;
        if (strlen(name) != length)
            continue;
        size_t j = 0;
        while (j < length && (text[j] == name[j] || (text[j] == '-' && name[j] == '_')))
            j++;
        if (j == length)
            return &spec->options[i];
    }
    return NULL;
}

static int add_positional(const ms_cli_spec *spec, const char *argument, int *count)
{
    if (*count >= spec->max_positionals)
        return ms_cli_usage_error(spec->command, "unexpected argument '%s'", argument);
    spec->positionals[(*count)++] = argument;
    return 0;
}

/* One "--name[=value]" argument; *index advances past a separate value. */
static int parse_long_option(const ms_cli_spec *spec, int argc, char **argv, int *index)
{
    const char *argument = argv[*index] + 2;
    const char *equals = strchr(argument, '=');
    size_t length = equals != NULL ? (size_t)(equals - argument) : strlen(argument);
    const ms_cli_option *option = find_option(spec, argument, length);
    if (option == NULL)
        return ms_cli_usage_error(spec->command, "unknown option '--%.*s'", (int)length,
                                  argument);
    if (option->flag != NULL) {
        if (equals != NULL)
            return ms_cli_usage_error(spec->command, "option '--%s' takes no value",
                                      option->name);
        *option->flag = true;
        return 0;
    }
    if (equals != NULL) {
        *option->value = equals + 1;
        return 0;
    }
    if (*index + 1 >= argc)
        return ms_cli_usage_error(spec->command, "option '--%s' needs a value", option->name);
    *option->value = argv[++*index];
    return 0;
}

int ms_cli_parse(const ms_cli_spec *spec, int argc, char **argv, int *positional_count)
{
    *positional_count = 0;
    bool options_ended = false;
    for (int i = 1; i < argc; i++) {
        const char *argument = argv[i];
        int status = 0;
        if (options_ended || argument[0] != '-' || strcmp(argument, "-") == 0) {
            status = add_positional(spec, argument, positional_count);
        } else if (strcmp(argument, "--") == 0) {
            options_ended = true;
        } else if (strcmp(argument, "-h") == 0 && find_option(spec, "help", 4) != NULL) {
            *find_option(spec, "help", 4)->flag = true;
        } else if (argument[1] == '-') {
            status = parse_long_option(spec, argc, argv, &i);
        } else {
            status = ms_cli_usage_error(spec->command, "unknown option '%s'", argument);
        }
        if (status != 0)
            return status;
    }
    return 0;
}

int ms_cli_parse_int(const char *command, const char *name, const char *text, int minimum,
                     int *value)
{
    char *end = NULL;
    errno = 0;
    long number = strtol(text, &end, 10);
    if (text[0] == '\0' || *end != '\0' || errno != 0 || number < minimum || number > INT_MAX)
        return ms_cli_usage_error(command, "--%s must be an integer >= %d, not '%s'", name,
                                  minimum, text);
    *value = (int)number;
    return 0;
}

int ms_cli_parse_double(const char *command, const char *name, const char *text,
                        double *value)
{
    char *end = NULL;
    errno = 0;
    double number = strtod(text, &end);
    if (text[0] == '\0' || *end != '\0' || errno != 0 || !isfinite(number))
        return ms_cli_usage_error(command, "--%s must be a finite number, not '%s'", name,
                                  text);
    *value = number;
    return 0;
}

/* Messages and details quote names from files: shown with their control
 * characters escaped (printable.h), as --json shows them exactly. */
enum { SHOWN_TEXT_LIMIT = 4096 };

static void print_detail(const char *name, const json_t *value)
{
    char shown[MS_PRINTABLE_SIZE(SHOWN_TEXT_LIMIT)];
    if (json_is_string(value)) {
        ms_printable_copy(json_string_value(value), SHOWN_TEXT_LIMIT, shown, sizeof shown);
        fprintf(stderr, "  %s: %s\n", name, shown);
        return;
    }
    char *text = ms_api_json_dumps(value, JSON_ENCODE_ANY);
    fprintf(stderr, "  %s: %s\n", name, text != NULL ? text : "?");
    free(text);
}

int ms_cli_report_error(const ms_error *err, bool json)
{
    json_t *body = ms_api_error_body(err);
    if (json) {
        ms_api_json_dumpf(body, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        fflush(stdout);
        json_decref(body);
        return 1;
    }
    json_t *object = json_object_get(body, "error");
    const char *key = json_string_value(json_object_get(object, "key"));
    char shown[MS_PRINTABLE_SIZE(SHOWN_TEXT_LIMIT)];
    ms_printable_copy(json_string_value(json_object_get(object, "message")), SHOWN_TEXT_LIMIT,
                      shown, sizeof shown);
    fprintf(stderr, "mergesvd: error: %s: %s", json_string_value(json_object_get(object, "code")),
            shown);
    if (key != NULL) {
        ms_printable_copy(key, SHOWN_TEXT_LIMIT, shown, sizeof shown);
        fprintf(stderr, " (key: %s)", shown);
    }
    fputc('\n', stderr);
    const char *name;
    json_t *value;
    json_object_foreach(json_object_get(object, "details"), name, value)
        print_detail(name, value);
    json_decref(body);
    return 1;
}
