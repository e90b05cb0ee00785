/* Model paths from clients (server/paths.c, server/model_match.c):
 * the /v1 resolver (a path relative to a models root) and the web UI's
 * matcher (trailing components), on a fixed tree made once under $TMPDIR:
 * two roots and one that does not exist, sub-folders, a folder named like a
 * model, hidden files, a symbolic-link loop, and links that lead out to a
 * secret file beside the roots.  Whatever the path, an answer must be a
 * regular file inside the root it names, never the secret.  Input: up to
 * three lines, a leading '@' standing for the tree's folder (so absolute
 * paths into the roots can be written in a seed); each is also made into
 * default output names, which must be valid output names. */
#include "fuzz.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/model_match.h"
#include "server/paths.h"

enum { ROOT_COUNT = 3 };

static char base[PATH_MAX];
static char *roots[ROOT_COUNT];
static char *root_reals[ROOT_COUNT];
static char *secret_real;

static char *under_base(const char *relative)
{
    char *path = ms_paths_join(base, relative);
    MS_FUZZ_CHECK(path != NULL);
    return path;
}

static void make_folder(const char *relative)
{
    char *path = under_base(relative);
    MS_FUZZ_CHECK(mkdir(path, 0755) == 0);
    free(path);
}

static void make_file(const char *relative)
{
    char *path = under_base(relative);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    MS_FUZZ_CHECK(fd >= 0);
    MS_FUZZ_CHECK(write(fd, "not a model", 11) == 11);
    close(fd);
    free(path);
}

static void make_link(const char *target, const char *relative)
{
    char *path = under_base(relative);
    MS_FUZZ_CHECK(symlink(target, path) == 0);
    free(path);
}

static void remove_tree(void)
{
    static const char *const links[] = {
        "root_a/escape.safetensors", "root_a/out", "root_a/inside", "root_b/loop",
        "root_b/to_a.safetensors",
    };
    static const char *const files[] = {
        "outside/secret.safetensors", "root_a/model.safetensors", "root_a/x.safetensors",
        "root_a/sub/lora.safetensors", "root_a/sub/deep/x.safetensors",
        "root_a/.hidden.safetensors", "root_a/notes.txt", "root_b/x.safetensors",
        "root_b/sub/lora.safetensors", "root_b/x",
    };
    static const char *const folders[] = {
        "root_a/sub/deep", "root_a/sub", "root_a/folder.safetensors", "root_a",
        "root_b/sub", "root_b", "outside", "",
    };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        char *path = under_base(links[i]);
        unlink(path);
        free(path);
    }
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *path = under_base(files[i]);
        unlink(path);
        free(path);
    }
    for (size_t i = 0; i < sizeof folders / sizeof folders[0]; i++) {
        char *path = folders[i][0] != '\0' ? under_base(folders[i]) : strdup(base);
        rmdir(path);
        free(path);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *temp = getenv("TMPDIR");
    snprintf(base, sizeof base, "%s/mergesvd-fuzz-models-XXXXXX",
             temp != NULL && temp[0] != '\0' ? temp : "/tmp");
    MS_FUZZ_CHECK(mkdtemp(base) != NULL);
    make_folder("outside");
    make_file("outside/secret.safetensors");
    make_folder("root_a");
    make_folder("root_a/sub");
    make_folder("root_a/sub/deep");
    make_folder("root_a/folder.safetensors");
    make_file("root_a/model.safetensors");
    make_file("root_a/x.safetensors");
    make_file("root_a/sub/lora.safetensors");
    make_file("root_a/sub/deep/x.safetensors");
    make_file("root_a/.hidden.safetensors");
    make_file("root_a/notes.txt");
    make_link("../outside/secret.safetensors", "root_a/escape.safetensors");
    make_link("../outside", "root_a/out");
    make_link("sub", "root_a/inside");
    make_folder("root_b");
    make_folder("root_b/sub");
    make_file("root_b/x.safetensors");
    make_file("root_b/x");
    make_file("root_b/sub/lora.safetensors");
    make_link(".", "root_b/loop");
    make_link("../root_a/model.safetensors", "root_b/to_a.safetensors");
    roots[0] = under_base("root_a");
    roots[1] = under_base("root_b/");
    roots[2] = under_base("missing_root");
    for (int i = 0; i < ROOT_COUNT; i++)
        root_reals[i] = realpath(roots[i], NULL);
    MS_FUZZ_CHECK(root_reals[0] != NULL && root_reals[1] != NULL && root_reals[2] == NULL);
    char *secret = under_base("outside/secret.safetensors");
    secret_real = realpath(secret, NULL);
    MS_FUZZ_CHECK(secret_real != NULL);
    free(secret);
    atexit(remove_tree);
    return 0;
}

static void check_answer(ms_status status, char *resolved, size_t root_index, ms_error *err)
{
    if (status != MS_OK) {
        MS_FUZZ_CHECK(resolved == NULL);
        ms_fuzz_check_error(err);
        return;
    }
    MS_FUZZ_CHECK(resolved != NULL && root_index < ROOT_COUNT);
    MS_FUZZ_CHECK(root_reals[root_index] != NULL);
    MS_FUZZ_CHECK(ms_paths_is_inside(root_reals[root_index], resolved));
    MS_FUZZ_CHECK(strcmp(resolved, secret_real) != 0);
    struct stat info;
    MS_FUZZ_CHECK(lstat(resolved, &info) == 0 && S_ISREG(info.st_mode));
    free(resolved);
}

static void check_path(const char *path)
{
    char *resolved = NULL;
    size_t root_index = ROOT_COUNT;
    ms_error err;
    ms_status status = ms_paths_resolve_model(roots, ROOT_COUNT, path, &resolved, &root_index,
                                              &err);
    check_answer(status, resolved, root_index, &err);
    resolved = NULL;
    root_index = ROOT_COUNT;
    status = ms_model_match(roots, ROOT_COUNT, path, "model_a", &resolved, &root_index, &err);
    check_answer(status, resolved, root_index, &err);
    char *name = ms_paths_default_output_name(path);
    MS_FUZZ_CHECK(name != NULL && ms_paths_output_name_valid(name));
    free(name);
}

/* "@/x" -> "BASE/x"; takes line. */
static char *expand(char *line)
{
    if (line == NULL || line[0] != '@')
        return line;
    char *expanded = malloc(strlen(base) + strlen(line));
    MS_FUZZ_CHECK(expanded != NULL);
    sprintf(expanded, "%s%s", base, line + 1);
    free(line);
    return expanded;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cursor = 0;
    char *lines[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++)
        lines[i] = expand(ms_fuzz_next_line(data, size, &cursor));
    if (lines[0] == NULL)
        return 0;
    check_path(lines[0]);
    if (lines[1] != NULL) {
        check_path(lines[1]);
        char *name = ms_paths_default_merge_name(lines[0], lines[1],
                                                 lines[2] != NULL ? lines[2] : "");
        MS_FUZZ_CHECK(name != NULL && ms_paths_output_name_valid(name));
        free(name);
    }
    for (int i = 0; i < 3; i++)
        free(lines[i]);
    return 0;
}
