/* Where a writer's output goes, shared by every writer (resize's spooling
 * writer and merge's planned writer).
 *
 * The rules a user of a serious tool expects:
 * - a target that exists and is not a regular file after following symbolic
 *   links (a FIFO, a device such as /dev/null, a socket, a directory) is
 *   refused with invalid_parameter, and nothing is touched;
 * - a symbolic link is followed: its target is replaced, the link stays;
 * - a new file gets the mode open(2) gives 0666 under the process umask; a
 *   replaced file keeps its own mode (permission bits);
 * - a dangling symbolic link is followed too, as the shell's `>` does: the
 *   file it names is created when that file's directory exists (io_error
 *   otherwise), and the link stays;
 * - the data goes to a temporary file in the target's directory, is fsynced,
 *   then renamed over the target and the directory is fsynced: a crash never
 *   leaves a half-written file under the final name.  The temporary is never
 *   more permissive than the file it replaces;
 * - a target that stops being a regular file after prepare (replaced by a
 *   FIFO or a directory while the output was computed) fails the later call
 *   with io_error (reason target_changed), and is left as it is. */
#ifndef MS_OUTPUT_FILE_H
#define MS_OUTPUT_FILE_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "core/error.h"

typedef struct ms_output_file {
    char *requested_path;   /* as the caller named it: for messages */
    char *directory;        /* of the resolved target: an absolute path */
    char *base_name;        /* the resolved target's name inside directory */
    int directory_fd;
    char *temp_name;        /* inside directory; NULL when there is none */
    int temp_fd;            /* -1 when there is none */
} ms_output_file;

/* Initialises file (no temporary, fds -1), resolves final_path (following
 * symbolic links), refuses a target that is not a regular file (details
 * reason not_a_regular_file, file_type), opens its directory.  An empty
 * path, or a name with no room left for the temporary's (detail
 * max_name_bytes), is invalid_parameter; a folder that cannot be opened and
 * a link loop are io_error.  ms_output_file_discard is safe afterwards,
 * failed or not. */
ms_status ms_output_file_prepare(ms_output_file *file, const char *final_path, ms_error *err);

/* Creates the temporary file beside the target (".NAME.tmp-" and random
 * characters, O_EXCL), with the mode the rules above give.  file->temp_fd is
 * open for reading and writing. */
ms_status ms_output_file_create_temp(ms_output_file *file, ms_error *err);

/* Bytes free for an unprivileged writer on the target's file system
 * (statvfs f_bavail * f_frsize). */
ms_status ms_output_file_free_bytes(const ms_output_file *file, uint64_t *free_bytes,
                                    ms_error *err);

/* fsync, close, rename over the target, fsync the directory.  After success
 * there is no temporary left to remove. */
ms_status ms_output_file_publish(ms_output_file *file, ms_error *err);

/* Closes and removes the temporary (if any), closes the directory, frees
 * the names.  Safe on any struct prepare has
 * initialised, and again after discard. */
void ms_output_file_discard(ms_output_file *file);

/* Removes what a writer of this target left when its process was killed:
 * regular files named as create_temp names its temporaries, in the target's
 * directory.  Returns how many were removed.  Only for a target nothing is
 * writing now (a recovery at startup): the name does not say which process
 * made a temporary. */
int ms_output_file_remove_leftovers(const ms_output_file *file);

/* What a file of this st_mode is, for messages: "a FIFO", "a character
 * device", "a directory", ...; *word (may be NULL) gets the same as a
 * snake_case detail value ("fifo", "character_device", ...). */
const char *ms_output_file_type_name(mode_t mode, const char **word);

/* Maps an errno to disk_full (ENOSPC, EDQUOT) or io_error and fills err:
 * "cannot ACTION WHAT: strerror", detail errno. */
ms_status ms_output_file_io_error(ms_error *err, int error_number, const char *action,
                                  const char *what);

#endif
