/* The subcommands of the mergesvd binary; each returns the process exit
 * status (0 success, 1 failure, 2 usage error). */
#ifndef MS_COMMANDS_H
#define MS_COMMANDS_H

int ms_command_resize(int argc, char **argv);
int ms_command_merge(int argc, char **argv);
int ms_command_inspect(int argc, char **argv);
int ms_command_serve(int argc, char **argv);

#endif
