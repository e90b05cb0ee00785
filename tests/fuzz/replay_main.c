/* Runs a fuzz target over files, without libFuzzer: `make check` replays
 * each committed corpus with the normal build, so an input that once
 * crashed stays a test.  Arguments: files or folders to replay; none means
 * the target's corpus, $TESTS_DIR/fuzz/corpus/MS_FUZZ_NAME.  Exit status 1
 * when there is nothing to replay (a corpus that went missing must not
 * pass); an input that breaks a promise aborts, as under libFuzzer. */
#include "fuzz.h"

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#ifndef MS_FUZZ_NAME
#error "MS_FUZZ_NAME names the target (its corpus folder)"
#endif

/* Targets without fixed files leave it out. */
extern int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Reads the whole file into a buffer of exactly its size, so AddressSanitizer
 * sees a read past the input's end. */
static int replay_file(const char *path, size_t *count)
{
    FILE *stream = fopen(path, "rb");
    struct stat info;
    if (stream == NULL || fstat(fileno(stream), &info) != 0) {
        fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
        if (stream != NULL)
            fclose(stream);
        return -1;
    }
    size_t size = (size_t)info.st_size;
    uint8_t *data = malloc(size > 0 ? size : 1);
    bool read_whole = data != NULL && fread(data, 1, size, stream) == size;
    fclose(stream);
    if (!read_whole) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        free(data);
        return -1;
    }
    printf("input %s (%zu bytes)\n", path, size);
    fflush(stdout);
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    (*count)++;
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A folder's files in name order, so the log reads the same every run. */
static int replay_folder(const char *folder, size_t *count)
{
    DIR *stream = opendir(folder);
    if (stream == NULL) {
        fprintf(stderr, "replay: cannot open %s: %s\n", folder, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t name_count = 0;
    int status = 0;
    struct dirent *entry;
    while (status == 0 && (entry = readdir(stream)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        char **grown = realloc(names, (name_count + 1) * sizeof *names);
        if (grown == NULL) {
            status = -1;
            break;
        }
        names = grown;
        names[name_count] = malloc(strlen(folder) + strlen(entry->d_name) + 2);
        if (names[name_count] == NULL) {
            status = -1;
            break;
        }
        sprintf(names[name_count++], "%s/%s", folder, entry->d_name);
    }
    closedir(stream);
    if (status == 0)
        qsort(names, name_count, sizeof *names, compare_names);
    for (size_t i = 0; i < name_count; i++) {
        if (status == 0)
            status = replay_file(names[i], count);
        free(names[i]);
    }
    free(names);
    return status;
}

static int replay_path(const char *path, size_t *count)
{
    struct stat info;
    if (stat(path, &info) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return S_ISDIR(info.st_mode) ? replay_folder(path, count) : replay_file(path, count);
}

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize != NULL)
        LLVMFuzzerInitialize(&argc, &argv);
    size_t count = 0;
    int status = 0;
    if (argc > 1) {
        for (int i = 1; i < argc && status == 0; i++)
            status = replay_path(argv[i], &count);
    } else {
        const char *tests_dir = getenv("TESTS_DIR");
        if (tests_dir == NULL || tests_dir[0] == '\0') {
            fprintf(stderr, "replay: set TESTS_DIR (make check does) or name the inputs\n");
            return 1;
        }
        char corpus[4096];
        snprintf(corpus, sizeof corpus, "%s/fuzz/corpus/%s", tests_dir, MS_FUZZ_NAME);
        status = replay_path(corpus, &count);
    }
    if (status == 0 && count == 0) {
        fprintf(stderr, "replay: no input to replay\n");
        status = -1;
    }
    /* the closing count deploy/test sums up */
    printf("fuzz %s replay: %zu checks, %d failures\n", MS_FUZZ_NAME, count, status == 0 ? 0 : 1);
    return status == 0 ? 0 : 1;
}
