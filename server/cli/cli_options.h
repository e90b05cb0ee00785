/* Command-line options of the mergesvd subcommands.
 *
 * Every option is accepted as --name value and --name=value, with
 * underscores or dashes (--new_rank, --new-rank), since users paste
 * kohya's and sd-meh's spellings. */
#ifndef MS_CLI_OPTIONS_H
#define MS_CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

typedef struct ms_cli_option {
    const char *name;        /* underscore spelling, without "--" */
    const char **value;      /* options that take a value: where it goes */
    bool *flag;              /* flags: set to true when present */
} ms_cli_option;

typedef struct ms_cli_spec {
    const char *command;             /* "resize", for messages */
    const ms_cli_option *options;
    size_t option_count;
    const char **positionals;        /* receives the non-option arguments */
    int max_positionals;
} ms_cli_spec;

/* Parses argv[1..argc-1] (argv[0] is the command name).  Returns 0, or 2
 * after printing a usage message to stderr. "-h" is --help when the spec
 * has a "help" flag; "--" ends the options. */
int ms_cli_parse(const ms_cli_spec *spec, int argc, char **argv, int *positional_count);

/* Value checks for option text; print "mergesvd COMMAND: ..." and return 2
 * on bad input, 0 otherwise. */
int ms_cli_parse_int(const char *command, const char *name, const char *text, int minimum,
                     int *value);
int ms_cli_parse_double(const char *command, const char *name, const char *text,
                        double *value);

/* Prints a usage error ("mergesvd COMMAND: message") and returns 2. */
int ms_cli_usage_error(const char *command, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* A failed operation: with json, the {"error": ...} body on stdout; else
 * "mergesvd: error: CODE: MESSAGE (key: KEY)" and one line per detail on
 * stderr.  Returns 1, the exit status of a failed operation. */
int ms_cli_report_error(const ms_error *err, bool json);

#endif
