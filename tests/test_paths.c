/* server/paths: model paths stay inside the models roots; output names are
 * plain file names.  Builds a small tree in a temp dir with symlinks that
 * point in and out. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/model_match.h"
#include "server/paths.h"
#include "check_support.h"

static char *base;
static char root_a[PATH_MAX], root_b[PATH_MAX], outside_dir[PATH_MAX];

static void touch(const char *dir, const char *name)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *file = fopen(path, "w");
    ck_assert_ptr_nonnull(file);
    fputs("x", file);
    fclose(file);
}

static void link_in(const char *dir, const char *name, const char *target)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ck_assert_int_eq(symlink(target, path), 0);
}

static void setup(void)
{
    char *made = ms_test_make_temp_dir("test_paths");
    ck_assert_ptr_nonnull(made);
    base = realpath(made, NULL);
    free(made);
    snprintf(root_a, sizeof root_a, "%s/a", base);
    snprintf(root_b, sizeof root_b, "%s/b", base);
    snprintf(outside_dir, sizeof outside_dir, "%s/outside", base);
    ck_assert_int_eq(mkdir(root_a, 0755), 0);
    ck_assert_int_eq(mkdir(root_b, 0755), 0);
    ck_assert_int_eq(mkdir(outside_dir, 0755), 0);
    char sub[PATH_MAX * 2];
    snprintf(sub, sizeof sub, "%s/sub", root_a);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    touch(root_a, "one.safetensors");
    touch(sub, "deep.safetensors");
    touch(root_b, "two.safetensors");
    touch(outside_dir, "secret.safetensors");
    char target[PATH_MAX * 2];
    snprintf(target, sizeof target, "%s/secret.safetensors", outside_dir);
    link_in(root_a, "escape.safetensors", target);
    link_in(root_a, "inside_link.safetensors", "sub/deep.safetensors");
    link_in(root_a, "escape_dir", outside_dir);
    snprintf(target, sizeof target, "%s/two.safetensors", root_b);
    link_in(root_a, "to_b.safetensors", target);
}

static void teardown(void)
{
    ck_assert_int_eq(ms_test_remove_tree(base), 0);
    free(base);
    base = NULL;
}

static ms_status resolve(const char *model, char **resolved, size_t *root_index)
{
    char *roots[] = {root_a, root_b};
    ms_error err;
    *resolved = NULL;
    return ms_paths_resolve_model(roots, 2, model, resolved, root_index, &err);
}

START_TEST(test_resolve_inside)
{
    char *resolved = NULL;
    size_t root = 99;
    ck_assert_int_eq(resolve("one.safetensors", &resolved, &root), MS_OK);
    ck_assert_uint_eq(root, 0);
    char expected[PATH_MAX * 2];
    snprintf(expected, sizeof expected, "%s/one.safetensors", root_a);
    ck_assert_str_eq(resolved, expected);
    free(resolved);
    ck_assert_int_eq(resolve("two.safetensors", &resolved, &root), MS_OK);
    ck_assert_uint_eq(root, 1);
    free(resolved);
    ck_assert_int_eq(resolve("sub/deep.safetensors", &resolved, &root), MS_OK);
    free(resolved);
    ck_assert_int_eq(resolve("./sub//deep.safetensors", &resolved, &root), MS_OK);
    free(resolved);
    /* a symlink that stays inside is fine and resolves to its target */
    ck_assert_int_eq(resolve("inside_link.safetensors", &resolved, &root), MS_OK);
    snprintf(expected, sizeof expected, "%s/sub/deep.safetensors", root_a);
    ck_assert_str_eq(resolved, expected);
    free(resolved);
    snprintf(expected, sizeof expected, "%s/one.safetensors", root_a);
    ck_assert_int_eq(resolve(expected, &resolved, &root), MS_OK);
    free(resolved);
    /* a link from one root into another stays inside the roots */
    ck_assert_int_eq(resolve("to_b.safetensors", &resolved, &root), MS_OK);
    ck_assert_uint_eq(root, 1);
    snprintf(expected, sizeof expected, "%s/two.safetensors", root_b);
    ck_assert_str_eq(resolved, expected);
    free(resolved);
}
END_TEST

START_TEST(test_resolve_refused)
{
    char *resolved = NULL;
    size_t root = 0;
    ck_assert_int_eq(resolve("../outside/secret.safetensors", &resolved, &root),
                     MS_ERR_PATH_OUTSIDE_MODELS);
    ck_assert_int_eq(resolve("sub/../one.safetensors", &resolved, &root),
                     MS_ERR_PATH_OUTSIDE_MODELS);
    ck_assert_int_eq(resolve("..", &resolved, &root), MS_ERR_PATH_OUTSIDE_MODELS);
    ck_assert_int_eq(resolve("escape.safetensors", &resolved, &root),
                     MS_ERR_PATH_OUTSIDE_MODELS);
    ck_assert_int_eq(resolve("escape_dir/secret.safetensors", &resolved, &root),
                     MS_ERR_PATH_OUTSIDE_MODELS);
    char absolute[PATH_MAX * 2];
    snprintf(absolute, sizeof absolute, "%s/secret.safetensors", outside_dir);
    ck_assert_int_eq(resolve(absolute, &resolved, &root), MS_ERR_PATH_OUTSIDE_MODELS);
    ck_assert_int_eq(resolve("/etc/passwd", &resolved, &root), MS_ERR_PATH_OUTSIDE_MODELS);
    /* a sibling whose name extends the root's is not inside it */
    snprintf(absolute, sizeof absolute, "%s/a_sibling", base);
    ck_assert_int_eq(mkdir(absolute, 0755), 0);
    touch(absolute, "x.safetensors");
    snprintf(absolute, sizeof absolute, "%s/a_sibling/x.safetensors", base);
    ck_assert_int_eq(resolve(absolute, &resolved, &root), MS_ERR_PATH_OUTSIDE_MODELS);
    ck_assert_ptr_null(resolved);
}
END_TEST

START_TEST(test_resolve_missing)
{
    char *resolved = NULL;
    size_t root = 0;
    ck_assert_int_eq(resolve("nope.safetensors", &resolved, &root), MS_ERR_NOT_FOUND);
    ck_assert_int_eq(resolve("sub", &resolved, &root), MS_ERR_NOT_FOUND);   /* a directory */
    ck_assert_int_eq(resolve("", &resolved, &root), MS_ERR_NOT_FOUND);
    /* a root itself is inside the roots, and not a file */
    ck_assert_int_eq(resolve(".", &resolved, &root), MS_ERR_NOT_FOUND);
    ck_assert_int_eq(resolve(root_b, &resolved, &root), MS_ERR_NOT_FOUND);
    ck_assert_ptr_null(resolved);
    char absolute[PATH_MAX * 2];
    snprintf(absolute, sizeof absolute, "%s/missing.safetensors", root_a);
    ck_assert_int_eq(resolve(absolute, &resolved, &root), MS_ERR_NOT_FOUND);
    ck_assert_ptr_null(resolved);
    /* missing files outside the roots are "outside", not "missing" */
    snprintf(absolute, sizeof absolute, "%s/missing.safetensors", outside_dir);
    ck_assert_int_eq(resolve(absolute, &resolved, &root), MS_ERR_PATH_OUTSIDE_MODELS);
    ck_assert_int_eq(resolve("/no/such/dir/x.safetensors", &resolved, &root),
                     MS_ERR_PATH_OUTSIDE_MODELS);
}
END_TEST

/* A result folder: made, its entry synced in the parent; an existing one
 * is fine; one whose parent is missing is not. */
START_TEST(test_make_dir_durable)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/fresh", base);
    ck_assert(ms_paths_make_dir_durable(path));
    struct stat info;
    ck_assert_int_eq(stat(path, &info), 0);
    ck_assert(S_ISDIR(info.st_mode));
    ck_assert(ms_paths_make_dir_durable(path));   /* exists already */
    snprintf(path, sizeof path, "%s/no/such/parent", base);
    ck_assert(!ms_paths_make_dir_durable(path));
}
END_TEST

START_TEST(test_is_inside)
{
    ck_assert(ms_paths_is_inside("/m", "/m/x"));
    ck_assert(ms_paths_is_inside("/m/", "/m/x"));
    ck_assert(!ms_paths_is_inside("/m", "/m"));
    ck_assert(!ms_paths_is_inside("/m", "/m/"));
    ck_assert(!ms_paths_is_inside("/m", "/mx/y"));
    ck_assert(ms_paths_is_inside("/", "/etc"));
}
END_TEST

START_TEST(test_output_names)
{
    ck_assert(ms_paths_output_name_valid("a.safetensors"));
    ck_assert(ms_paths_output_name_valid("My_lora-v2.1.safetensors"));
    ck_assert(!ms_paths_output_name_valid(".safetensors"));
    ck_assert(!ms_paths_output_name_valid("_a.safetensors"));
    ck_assert(!ms_paths_output_name_valid("a.bin"));
    ck_assert(!ms_paths_output_name_valid("a/b.safetensors"));
    ck_assert(!ms_paths_output_name_valid("../b.safetensors"));
    ck_assert(!ms_paths_output_name_valid("a b.safetensors"));
    ck_assert(!ms_paths_output_name_valid(""));
    char name[256];
    memset(name, 'x', sizeof name);
    strcpy(name + 200 - 12, ".safetensors");
    ck_assert_uint_eq(strlen(name), 200);
    ck_assert(ms_paths_output_name_valid(name));
    memset(name, 'x', sizeof name);
    strcpy(name + 201 - 12, ".safetensors");
    ck_assert(!ms_paths_output_name_valid(name));
}
END_TEST

START_TEST(test_default_names)
{
    const char *models[] = {"dir/my lora.safetensors", "x.safetensors", "ünïcode.safetensors",
                            "_under", ".safetensors", "a/b/", "plain"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        char *name = ms_paths_default_output_name(models[i]);
        ck_assert_ptr_nonnull(name);
        ck_assert_msg(ms_paths_output_name_valid(name), "%s -> %s", models[i], name);
        free(name);
    }
    char *name = ms_paths_default_output_name("dir/my lora.safetensors");
    ck_assert_str_eq(name, "my_lora_resized.safetensors");
    free(name);
    char long_model[600];
    memset(long_model, 'q', sizeof long_model - 1);
    long_model[sizeof long_model - 1] = '\0';
    name = ms_paths_default_output_name(long_model);
    ck_assert(ms_paths_output_name_valid(name));
    free(name);
}
END_TEST

START_TEST(test_default_merge_names)
{
    char *name = ms_paths_default_merge_name("sub/My Model.safetensors", "b.safetensors",
                                             "weighted_sum");
    ck_assert_str_eq(name, "My_Model_b_weighted_sum.safetensors");
    free(name);
    name = ms_paths_default_merge_name("C:\\webui\\a.safetensors", "/x/y/b", "add_difference");
    ck_assert_str_eq(name, "a_b_add_difference.safetensors");
    free(name);
    name = ms_paths_default_merge_name("_a.safetensors", ".safetensors", "tensor_sum");
    ck_assert_str_eq(name, "ma_.safetensors_tensor_sum.safetensors");   /* as resize names */
    ck_assert(ms_paths_output_name_valid(name));
    free(name);
    /* long stems share what is left, the method stays whole */
    char long_model[600];
    memset(long_model, 'q', sizeof long_model - 1);
    long_model[sizeof long_model - 1] = '\0';
    name = ms_paths_default_merge_name(long_model, long_model, "similarity_add_difference");
    ck_assert(ms_paths_output_name_valid(name));
    ck_assert_uint_le(strlen(name), 200);
    ck_assert_ptr_nonnull(strstr(name, "_similarity_add_difference.safetensors"));
    free(name);
}
END_TEST

/* Web UI names (model_match.h): trailing components of the client's path. */
static ms_status match(const char *client, char **resolved, size_t *root_index, ms_error *err)
{
    char *roots[] = {root_a, root_b};
    *resolved = NULL;
    return ms_model_match(roots, 2, client, "model_a", resolved, root_index, err);
}

static void expect_match(const char *client, const char *root, const char *relative)
{
    char *resolved = NULL;
    size_t root_index = 99;
    ms_error err;
    ck_assert_msg(match(client, &resolved, &root_index, &err) == MS_OK, "%s: %s", client,
                  err.message);
    char expected[PATH_MAX * 2];
    snprintf(expected, sizeof expected, "%s/%s", root, relative);
    ck_assert_str_eq(resolved, expected);
    ck_assert_uint_eq(root_index, root == root_a ? 0 : 1);
    free(resolved);
}

static const char *detail(const ms_error *err, const char *name)
{
    for (int i = 0; i < err->detail_count; i++)
        if (strcmp(err->details[i].name, name) == 0)
            return err->details[i].value;
    return NULL;
}

START_TEST(test_match_trailing_components)
{
    /* the web UI's own absolute path, from another machine */
    expect_match("/home/u/webui/models/Stable-diffusion/sub/deep.safetensors", root_a,
                 "sub/deep.safetensors");
    expect_match("sub/deep.safetensors", root_a, "sub/deep.safetensors");
    expect_match("deep.safetensors", root_a, "sub/deep.safetensors");
    expect_match("deep", root_a, "sub/deep.safetensors");   /* no extension, as the web UI */
    expect_match("sub/deep", root_a, "sub/deep.safetensors");
    expect_match("C:\\webui\\models\\Stable-diffusion\\sub\\deep.safetensors", root_a,
                 "sub/deep.safetensors");
    expect_match("two.safetensors", root_b, "two.safetensors");
    expect_match("./one.safetensors", root_a, "one.safetensors");
    /* a link inside a root resolves to its target */
    expect_match("/elsewhere/inside_link.safetensors", root_a, "sub/deep.safetensors");
    /* an absolute path inside a root is that file */
    char absolute[PATH_MAX * 2];
    snprintf(absolute, sizeof absolute, "%s/one.safetensors", root_a);
    expect_match(absolute, root_a, "one.safetensors");
}
END_TEST

START_TEST(test_match_prefers_longest_then_whole)
{
    /* one.safetensors at a root's top and sub/one.safetensors below it */
    char sub[PATH_MAX * 2];
    snprintf(sub, sizeof sub, "%s/sub", root_a);
    touch(sub, "one.safetensors");
    expect_match("one.safetensors", root_a, "one.safetensors");        /* whole beats partial */
    expect_match("one", root_a, "one.safetensors");
    expect_match("/webui/models/sub/one.safetensors", root_a, "sub/one.safetensors");
    expect_match("/webui/models/Stable-diffusion/one.safetensors", root_a, "one.safetensors");
}
END_TEST

START_TEST(test_match_refused)
{
    char *resolved = NULL;
    size_t root_index = 0;
    ms_error err;
    ck_assert_int_eq(match("missing.safetensors", &resolved, &root_index, &err),
                     MS_ERR_NOT_FOUND);
    ck_assert_str_eq(detail(&err, "field"), "model_a");
    ck_assert_int_eq(match("", &resolved, &root_index, &err), MS_ERR_NOT_FOUND);
    ck_assert_int_eq(match("one.ckpt", &resolved, &root_index, &err), MS_ERR_NOT_FOUND);
    /* directories are not models, nor are files outside the roots */
    ck_assert_int_eq(match("sub", &resolved, &root_index, &err), MS_ERR_NOT_FOUND);
    ck_assert_int_eq(match("secret.safetensors", &resolved, &root_index, &err),
                     MS_ERR_NOT_FOUND);
    ck_assert_int_eq(match("escape.safetensors", &resolved, &root_index, &err),
                     MS_ERR_NOT_FOUND);
    /* other components than the client's */
    ck_assert_int_eq(match("/webui/other/deep.safetensors", &resolved, &root_index, &err),
                     MS_ERR_NOT_FOUND);
    ck_assert_int_eq(match("sub/../one.safetensors", &resolved, &root_index, &err),
                     MS_ERR_PATH_OUTSIDE_MODELS);
    ck_assert_int_eq(match("/", &resolved, &root_index, &err), MS_ERR_PATH_OUTSIDE_MODELS);
    /* absolute inside a root but missing: not looked for elsewhere */
    char absolute[PATH_MAX * 2];
    snprintf(absolute, sizeof absolute, "%s/other/deep.safetensors", root_a);
    ck_assert_int_eq(match(absolute, &resolved, &root_index, &err), MS_ERR_NOT_FOUND);
    snprintf(absolute, sizeof absolute, "%s/deep.safetensors", root_a);
    ck_assert_int_eq(match(absolute, &resolved, &root_index, &err), MS_ERR_NOT_FOUND);
    ck_assert_str_eq(detail(&err, "field"), "model_a");
    ck_assert_ptr_null(resolved);
}
END_TEST

START_TEST(test_match_ambiguous)
{
    touch(root_b, "one.safetensors");
    char *resolved = NULL;
    size_t root_index = 0;
    ms_error err;
    ck_assert_int_eq(match("one.safetensors", &resolved, &root_index, &err),
                     MS_ERR_INVALID_PARAMETER);
    ck_assert_ptr_null(resolved);
    ck_assert_str_eq(detail(&err, "field"), "model_a");
    ck_assert_str_eq(detail(&err, "candidate_count"), "2");
    const char *candidates = detail(&err, "candidates");
    ck_assert_ptr_nonnull(strstr(candidates, "one.safetensors (root 0)"));
    ck_assert_ptr_nonnull(strstr(candidates, "one.safetensors (root 1)"));
    /* two folders with the same name below one root */
    char dir[PATH_MAX * 2];
    snprintf(dir, sizeof dir, "%s/x", root_a);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    touch(dir, "deep.safetensors");
    ck_assert_int_eq(match("deep", &resolved, &root_index, &err), MS_ERR_INVALID_PARAMETER);
    /* a longer path decides */
    expect_match("models/x/deep.safetensors", root_a, "x/deep.safetensors");
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("paths");
    TCase *tcase = tcase_create("paths");
    tcase_add_checked_fixture(tcase, setup, teardown);
    tcase_add_test(tcase, test_resolve_inside);
    tcase_add_test(tcase, test_resolve_refused);
    tcase_add_test(tcase, test_resolve_missing);
    tcase_add_test(tcase, test_make_dir_durable);
    tcase_add_test(tcase, test_is_inside);
    tcase_add_test(tcase, test_output_names);
    tcase_add_test(tcase, test_default_names);
    tcase_add_test(tcase, test_default_merge_names);
    tcase_add_test(tcase, test_match_trailing_components);
    tcase_add_test(tcase, test_match_prefers_longest_then_whole);
    tcase_add_test(tcase, test_match_refused);
    tcase_add_test(tcase, test_match_ambiguous);
    suite_add_tcase(suite, tcase);
    return ms_test_run_suite(suite);
}
