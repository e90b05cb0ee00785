/* Where a writer's output goes: resolving the target, the temporary beside
 * it, and publication (rules in output_file.h).
 *
 * The target is resolved once, in prepare, to an absolute directory and a
 * name inside it; every later step works relative to the directory's fd, so
 * a symbolic link swapped in a parent meanwhile cannot redirect the output.
 * The target's type and mode are looked at again when the temporary is made
 * and just before the rename, because a resize may run for minutes between
 * the two and a user expects the file's state at that moment to count. */
#include "output_file.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* ".NAME.tmp-" and the random part must still fit in one directory entry. */
enum {
    TEMP_RANDOM_CHARS = 12,
    TEMP_SUFFIX_BYTES = sizeof(".") - 1 + sizeof(".tmp-") - 1 + TEMP_RANDOM_CHARS,
    TEMP_NAME_ATTEMPTS = 64,
    /* as Linux's own limit on links followed in one lookup */
    LINK_DEPTH_MAX = 40,
};

ms_status ms_output_file_io_error(ms_error *err, int error_number, const char *action,
                                  const char *what)
{
    ms_status code = (error_number == ENOSPC || error_number == EDQUOT) ? MS_ERR_DISK_FULL
                                                                         : MS_ERR_IO;
    ms_error_set(err, code, NULL, "cannot %s %s: %s", action, what, strerror(error_number));
    ms_error_detail_add(err, "errno", "%d", error_number);
    return code;
}

static ms_status out_of_memory(ms_error *err)
{
    return ms_error_set(err, MS_ERR_OUT_OF_MEMORY, NULL, "out of memory");
}

const char *ms_output_file_type_name(mode_t mode, const char **word)
{
    const char *name = "not a regular file", *short_name = "other";
    if (S_ISREG(mode))
        name = "a regular file", short_name = "regular_file";
    else if (S_ISDIR(mode))
        name = "a directory", short_name = "directory";
    else if (S_ISFIFO(mode))
        name = "a FIFO", short_name = "fifo";
    else if (S_ISCHR(mode))
        name = "a character device", short_name = "character_device";
    else if (S_ISBLK(mode))
        name = "a block device", short_name = "block_device";
    else if (S_ISSOCK(mode))
        name = "a socket", short_name = "socket";
    else if (S_ISLNK(mode))
        name = "a symbolic link", short_name = "symbolic_link";
    if (word != NULL)
        *word = short_name;
    return name;
}

/* The user's path names something that is not a regular file: refused,
 * untouched.  resolved (may be NULL) is where a symbolic link led. */
static ms_status refuse_not_regular(const char *requested, const char *resolved, mode_t mode,
                                    ms_error *err)
{
    const char *word;
    const char *what = ms_output_file_type_name(mode, &word);
    if (resolved != NULL && strcmp(resolved, requested) != 0)
        ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL,
                     "output path \"%s\" leads to \"%s\", %s, not a regular file", requested,
                     resolved, what);
    else
        ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL,
                     "output path \"%s\" is %s, not a regular file", requested, what);
    ms_error_detail_add(err, "reason", "not_a_regular_file");
    ms_error_detail_add(err, "file_type", "%s", word);
    return MS_ERR_INVALID_PARAMETER;
}

/* name is the last component of requested (or of what it led to). */
static ms_status check_name(const char *requested, const char *name, ms_error *err)
{
    if (name[0] != '\0' && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
        strlen(name) + TEMP_SUFFIX_BYTES <= NAME_MAX)
        return MS_OK;
    ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL,
                 "output path \"%s\" does not end in a usable file name", requested);
    ms_error_detail_add(err, "max_name_bytes", "%d", NAME_MAX - (int)TEMP_SUFFIX_BYTES);
    return MS_ERR_INVALID_PARAMETER;
}

static const char *last_component(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

/* The folder part of path ("." when it has none, "/" for "/name"). */
static char *directory_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static char *join_path(const char *directory, const char *name)
{
    size_t directory_length = strlen(directory);
    size_t size = directory_length + 1 + strlen(name) + 1;
    char *joined = malloc(size);
    bool has_slash = directory_length > 0 && directory[directory_length - 1] == '/';
    if (joined != NULL)
        snprintf(joined, size, "%s%s%s", directory, has_slash ? "" : "/", name);
    return joined;
}

/* Where the symbolic link at link_path points, as a path usable from here
 * (a relative target is relative to the link's folder). */
static ms_status read_link(const char *requested, const char *link_path, char **target,
                           ms_error *err)
{
    char text[PATH_MAX];
    ssize_t length = readlink(link_path, text, sizeof text);
    if (length < 0)
        return ms_output_file_io_error(err, errno, "read the symbolic link", requested);
    if ((size_t)length >= sizeof text)
        return ms_output_file_io_error(err, ENAMETOOLONG, "read the symbolic link", requested);
    text[length] = '\0';
    if (text[0] == '/') {
        *target = strdup(text);
    } else {
        char *folder = directory_of(link_path);
        *target = folder != NULL ? join_path(folder, text) : NULL;
        free(folder);
    }
    return *target != NULL ? MS_OK : out_of_memory(err);
}

/* A target that does not exist yet: its folder resolved, its name kept. */
static ms_status resolve_new_file(const char *requested, const char *path, char **resolved,
                                  ms_error *err)
{
    ms_status status = check_name(requested, last_component(path), err);
    if (status != MS_OK)
        return status;
    char *folder = directory_of(path);
    if (folder == NULL)
        return out_of_memory(err);
    char *real_folder = realpath(folder, NULL);
    if (real_folder == NULL && strcmp(path, requested) != 0) {
        int error_number = errno;
        ms_error_set(err, MS_ERR_IO, NULL,
                     "output path \"%s\" is a symbolic link to \"%s\", whose folder cannot be "
                     "opened: %s", requested, path, strerror(error_number));
        ms_error_detail_add(err, "errno", "%d", error_number);
        status = MS_ERR_IO;
    } else if (real_folder == NULL) {
        status = ms_output_file_io_error(err, errno, "open the output directory", folder);
    } else {
        *resolved = join_path(real_folder, last_component(path));
        if (*resolved == NULL)
            status = out_of_memory(err);
    }
    free(real_folder);
    free(folder);
    return status;
}

/* Follows symbolic links from requested to an absolute path naming a
 * regular file or nothing yet; refuses anything else. */
static ms_status resolve_target(const char *requested, char **resolved, ms_error *err)
{
    ms_status status = MS_OK;
    char *path = strdup(requested);
    if (path == NULL)
        return out_of_memory(err);
    for (int depth = 0;; depth++) {
        struct stat info;
        if (stat(path, &info) == 0) {
            char *real = realpath(path, NULL);
            int real_errno = errno;
            struct stat link_info;
            bool through_link = depth > 0 ||
                                (lstat(path, &link_info) == 0 && S_ISLNK(link_info.st_mode));
            if (!S_ISREG(info.st_mode)) {
                status = refuse_not_regular(requested, through_link ? real : NULL,
                                            info.st_mode, err);
                free(real);
            } else if (real == NULL) {
                status = ms_output_file_io_error(err, real_errno, "resolve the output path",
                                                 requested);
            } else {
                *resolved = real;
            }
            break;
        }
        if (errno != ENOENT) {
            status = ms_output_file_io_error(err, errno, "examine the output path", requested);
            break;
        }
        if (lstat(path, &info) != 0 || !S_ISLNK(info.st_mode)) {
            status = resolve_new_file(requested, path, resolved, err);
            break;
        }
        /* a dangling link: the file it names is the one to create */
        if (depth == LINK_DEPTH_MAX) {
            status = ms_output_file_io_error(err, ELOOP, "resolve the output path", requested);
            break;
        }
        char *target = NULL;
        status = read_link(requested, path, &target, err);
        free(path);
        path = target;
        if (status != MS_OK)
            break;
    }
    free(path);
    return status;
}

/* The resolved target now: *exists, and its mode when it does.  Anything
 * but a regular file (or nothing) means it changed since prepare. */
static ms_status examine_target(const ms_output_file *file, bool *exists, mode_t *mode,
                                ms_error *err)
{
    struct stat info;
    *exists = false;
    if (fstatat(file->directory_fd, file->base_name, &info, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT)
            return MS_OK;
        return ms_output_file_io_error(err, errno, "examine the output path",
                                       file->requested_path);
    }
    if (!S_ISREG(info.st_mode)) {
        const char *word;
        const char *what = ms_output_file_type_name(info.st_mode, &word);
        ms_error_set(err, MS_ERR_IO, NULL,
                     "cannot replace output path \"%s\": it became %s while the output was "
                     "written, and is left as it is", file->requested_path, what);
        ms_error_detail_add(err, "reason", "target_changed");
        ms_error_detail_add(err, "file_type", "%s", word);
        return MS_ERR_IO;
    }
    *exists = true;
    *mode = info.st_mode & 07777;
    return MS_OK;
}

ms_status ms_output_file_prepare(ms_output_file *file, const char *final_path, ms_error *err)
{
    *file = (ms_output_file){.directory_fd = -1, .temp_fd = -1};
    if (final_path == NULL || final_path[0] == '\0')
        return ms_error_set(err, MS_ERR_INVALID_PARAMETER, NULL, "empty output path");
    file->requested_path = strdup(final_path);
    if (file->requested_path == NULL)
        return out_of_memory(err);
    ms_status status = check_name(final_path, last_component(final_path), err);
    char *resolved = NULL;
    if (status == MS_OK)
        status = resolve_target(final_path, &resolved, err);
    if (status == MS_OK)
        status = check_name(final_path, last_component(resolved), err);
    if (status != MS_OK)
        goto done;
    file->directory = directory_of(resolved);
    file->base_name = strdup(last_component(resolved));
    if (file->directory == NULL || file->base_name == NULL) {
        status = out_of_memory(err);
        goto done;
    }
    file->directory_fd = open(file->directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (file->directory_fd < 0) {
        status = ms_output_file_io_error(err, errno, "open the output directory",
                                         file->directory);
        goto done;
    }
    bool exists;
    mode_t mode;
    status = examine_target(file, &exists, &mode, err);
done:
    free(resolved);
    return status;
}

/* A name no other writer picks: ".NAME.tmp-" and random letters and digits. */
static ms_status random_temp_name(const ms_output_file *file, char **name, ms_error *err)
{
    static const char alphabet[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned char random_bytes[TEMP_RANDOM_CHARS];
    ssize_t got;
    while ((got = getrandom(random_bytes, sizeof random_bytes, 0)) < 0 && errno == EINTR)
        ;
    if (got != (ssize_t)sizeof random_bytes)
        return ms_output_file_io_error(err, got < 0 ? errno : EIO, "draw random bytes for",
                                       "a temporary file name");
    size_t size = strlen(file->base_name) + TEMP_SUFFIX_BYTES + 1;
    *name = malloc(size);
    if (*name == NULL)
        return out_of_memory(err);
    int length = snprintf(*name, size, ".%s.tmp-", file->base_name);
    for (int i = 0; i < TEMP_RANDOM_CHARS; i++)
        (*name)[length + i] = alphabet[random_bytes[i] % (sizeof alphabet - 1)];
    (*name)[length + TEMP_RANDOM_CHARS] = '\0';
    return MS_OK;
}

ms_status ms_output_file_create_temp(ms_output_file *file, ms_error *err)
{
    if (file->directory_fd < 0 || file->temp_fd >= 0)
        return ms_error_set(err, MS_ERR_INTERNAL, NULL,
                            "output file not prepared, or its temporary already made");
    bool exists;
    mode_t old_mode = 0;
    ms_status status = examine_target(file, &exists, &old_mode, err);
    if (status != MS_OK)
        return status;
    /* The kernel applies the umask to a new file's 0666; over an existing
     * file, its own bits are also a ceiling, so the data is never more
     * readable while it is written than it will be once published. */
    mode_t create_mode = exists ? (old_mode & 0666) : 0666;
    for (int attempt = 0; attempt < TEMP_NAME_ATTEMPTS; attempt++) {
        char *name = NULL;
        status = random_temp_name(file, &name, err);
        if (status != MS_OK)
            return status;
        int fd = openat(file->directory_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
                        create_mode);
        if (fd >= 0) {
            file->temp_fd = fd;
            file->temp_name = name;
            if (exists && fchmod(fd, old_mode) != 0)
                return ms_output_file_io_error(err, errno, "set the mode of the temporary in",
                                               file->directory);
            return MS_OK;
        }
        int error_number = errno;
        free(name);
        if (error_number != EEXIST)
            return ms_output_file_io_error(err, error_number, "create a temporary file in",
                                           file->directory);
    }
    return ms_output_file_io_error(err, EEXIST, "create a temporary file in", file->directory);
}

ms_status ms_output_file_free_bytes(const ms_output_file *file, uint64_t *free_bytes,
                                    ms_error *err)
{
    *free_bytes = 0;
    struct statvfs info;
    if (file->directory_fd < 0 || fstatvfs(file->directory_fd, &info) != 0)
        return ms_output_file_io_error(err, file->directory_fd < 0 ? EBADF : errno,
                                       "measure the free space of", "the output's file system");
    uint64_t bytes;
    if (__builtin_mul_overflow((uint64_t)info.f_bavail, (uint64_t)info.f_frsize, &bytes))
        bytes = UINT64_MAX;
    *free_bytes = bytes;
    return MS_OK;
}

ms_status ms_output_file_publish(ms_output_file *file, ms_error *err)
{
    if (file->temp_fd < 0 || file->temp_name == NULL)
        return ms_error_set(err, MS_ERR_INTERNAL, NULL, "no temporary output file to publish");
    bool exists;
    mode_t old_mode = 0;
    ms_status status = examine_target(file, &exists, &old_mode, err);
    if (status != MS_OK)
        return status;
    /* a file that appeared (or changed mode) since the temporary was made */
    if (exists && fchmod(file->temp_fd, old_mode) != 0)
        return ms_output_file_io_error(err, errno, "set the mode of", "the output file");
    while (fsync(file->temp_fd) != 0) {
        if (errno != EINTR)
            return ms_output_file_io_error(err, errno, "fsync", "the output file");
    }
    int fd = file->temp_fd;
    file->temp_fd = -1;
    if (close(fd) != 0 && errno != EINTR)
        return ms_output_file_io_error(err, errno, "close", "the output file");
    if (renameat(file->directory_fd, file->temp_name, file->directory_fd, file->base_name) != 0)
        return ms_output_file_io_error(err, errno, "rename the output into", file->base_name);
    free(file->temp_name);
    file->temp_name = NULL; /* published: nothing left to remove */
    /* Some filesystems refuse fsync on directories (EINVAL); nothing to do then. */
    if (fsync(file->directory_fd) != 0 && errno != EINVAL)
        return ms_output_file_io_error(err, errno, "fsync the directory", file->directory);
    return MS_OK;
}

/* ".NAME.tmp-" and TEMP_RANDOM_CHARS letters or digits, as random_temp_name makes. */
static bool is_temp_of(const char *entry, const char *base_name)
{
    size_t base_length = strlen(base_name);
    if (entry[0] != '.' || strncmp(entry + 1, base_name, base_length) != 0 ||
        strncmp(entry + 1 + base_length, ".tmp-", 5) != 0)
        return false;
    const char *random_part = entry + 1 + base_length + 5;
    for (int i = 0; i < TEMP_RANDOM_CHARS; i++)
        if (!isalnum((unsigned char)random_part[i]))
            return false;
    return random_part[TEMP_RANDOM_CHARS] == '\0';
}

int ms_output_file_remove_leftovers(const ms_output_file *file)
{
    if (file->directory_fd < 0 || file->base_name == NULL)
        return 0;
    int listing_fd = openat(file->directory_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *directory = listing_fd >= 0 ? fdopendir(listing_fd) : NULL;
    if (directory == NULL) {
        if (listing_fd >= 0)
            close(listing_fd);
        return 0;
    }
    int removed = 0;
    struct dirent *entry;
    while ((entry = readdir(directory)) != NULL) {
        struct stat info;
        if (is_temp_of(entry->d_name, file->base_name) &&
            fstatat(file->directory_fd, entry->d_name, &info, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(info.st_mode) && unlinkat(file->directory_fd, entry->d_name, 0) == 0)
            removed++;
    }
    closedir(directory);
    return removed;
}

void ms_output_file_discard(ms_output_file *file)
{
    if (file->temp_fd >= 0)
        close(file->temp_fd);
    if (file->temp_name != NULL && file->directory_fd >= 0)
        unlinkat(file->directory_fd, file->temp_name, 0);
    if (file->directory_fd >= 0)
        close(file->directory_fd);
    free(file->temp_name);
    free(file->base_name);
    free(file->directory);
    free(file->requested_path);
    *file = (ms_output_file){.directory_fd = -1, .temp_fd = -1};
}
