/* `mergesvd serve`: parse options, run the service until SIGTERM/SIGINT. */
#include <stdio.h>

#include "commands.h"
#include "server/serve_options.h"
#include "server/service.h"

int ms_command_serve(int argc, char **argv)
{
    ms_serve_options options;
    char message[256] = "";
    if (!ms_serve_options_parse(argc, argv, &options, message, sizeof message)) {
        fprintf(stderr, "mergesvd serve: %s\n", message);
        ms_serve_options_usage(stderr);
        ms_serve_options_free(&options);
        return 2;
    }
    if (options.help) {
        ms_serve_options_usage(stdout);
        ms_serve_options_free(&options);
        return 0;
    }
    int status = ms_service_run(&options);
    ms_serve_options_free(&options);
    return status;
}
