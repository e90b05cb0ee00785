/* server/http/model_index: the models walk, its order, its pages and what
 * it keeps between listings.  Builds small trees in a temp dir; the cache
 * is seen through the index's counts of folders read and headers opened. */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "server/http/model_index.h"
#include "check_support.h"

/* Short, so that the tests can wait it out; long enough for the coarsest
 * file system clock tick (10 ms at HZ=100). */
enum { SETTLE_MS = 40 };

static char *base;
static char root_a[PATH_MAX], root_b[PATH_MAX];
static char *roots[3];

static void path_in(char *out, const char *dir, const char *name)
{
    int length = snprintf(out, PATH_MAX, "%s/%s", dir, name);
    ck_assert(length > 0 && length < PATH_MAX);
}

/* bytes of content, written in place (the folder's entry is not touched
 * when the file exists). */
static void write_file(const char *dir, const char *name, const char *content)
{
    char path[PATH_MAX];
    path_in(path, dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    size_t length = strlen(content);
    ck_assert_int_eq(write(fd, content, length), (ssize_t)length);
    close(fd);
}

static void make_dir(const char *dir, const char *name)
{
    char path[PATH_MAX];
    path_in(path, dir, name);
    ck_assert_int_eq(mkdir(path, 0755), 0);
}

/* Past the settle time: what was just written may be trusted once read. */
static void let_settle(void)
{
    struct timespec pause = {0, 3 * SETTLE_MS * 1000000L};
    nanosleep(&pause, NULL);
}

static void setup(void)
{
    char *made = ms_test_make_temp_dir("test_model_index");
    ck_assert_ptr_nonnull(made);
    base = realpath(made, NULL);
    free(made);
    path_in(root_a, base, "a");
    path_in(root_b, base, "b");
    ck_assert_int_eq(mkdir(root_a, 0755), 0);
    ck_assert_int_eq(mkdir(root_b, 0755), 0);
    /* names chosen so that folder-by-folder order differs from plain
     * bytewise order: "x/y" before "x.safetensors" */
    make_dir(root_a, "x");
    char x[PATH_MAX];
    path_in(x, root_a, "x");
    write_file(x, "y.safetensors", "hello");
    write_file(root_a, "x.safetensors", "hello");
    write_file(root_a, "a.safetensors", "hello");
    write_file(root_a, "notes.txt", "not a model");
    write_file(root_a, ".hidden.safetensors", "hello");
    write_file(root_b, "c.safetensors", "hello");
    roots[0] = root_a;
    roots[1] = root_b;
    roots[2] = NULL;
}

static void teardown(void)
{
    ms_test_remove_tree(base);
    free(base);
}

/* bad_safetensors' details.reason */
static const char *error_reason(json_t *model)
{
    json_t *error = json_object_get(model, "error");
    ck_assert_str_eq(json_string_value(json_object_get(error, "code")), "bad_safetensors");
    return json_string_value(json_object_get(json_object_get(error, "details"), "reason"));
}

static ms_model_index *new_index(int settle_ms)
{
    ms_model_index *index = ms_model_index_new(&ms_model_default_limits, settle_ms);
    ck_assert_ptr_nonnull(index);
    return index;
}

/* Every page of size limit, joined: "root:path" lines. */
static char *list_all(ms_model_index *index, size_t root_count, size_t limit, int *pages)
{
    static char joined[65536];
    joined[0] = '\0';
    *pages = 0;
    ms_model_position after = {0, NULL};
    for (;;) {
        ms_model_page page;
        ms_error err;
        ck_assert_int_eq(ms_model_index_page(index, roots, root_count,
                                             after.path != NULL ? &after : NULL, limit, &page,
                                             &err),
                         MS_OK);
        (*pages)++;
        ck_assert_uint_le(json_array_size(page.models), limit);
        for (size_t i = 0; i < json_array_size(page.models); i++) {
            json_t *model = json_array_get(page.models, i);
            char line[PATH_MAX + 32];
            snprintf(line, sizeof line, "%d:%s\n",
                     (int)json_integer_value(json_object_get(model, "root")),
                     json_string_value(json_object_get(model, "path")));
            ck_assert_uint_lt(strlen(joined) + strlen(line), sizeof joined);
            strcat(joined, line);
        }
        free(after.path);
        after.path = NULL;
        if (!page.more) {
            ms_model_page_clear(&page);
            break;
        }
        after.root = page.next.root;
        after.path = strdup(page.next.path);
        ms_model_page_clear(&page);
        ck_assert_int_lt(*pages, 1000);
    }
    return joined;
}

static const char *const EXPECTED =
    "0:a.safetensors\n0:x/y.safetensors\n0:x.safetensors\n1:c.safetensors\n";

START_TEST(test_order_and_pages)
{
    ms_model_index *index = new_index(SETTLE_MS);
    int pages = 0;
    ck_assert_str_eq(list_all(index, 2, 1000, &pages), EXPECTED);
    ck_assert_int_eq(pages, 1);
    /* every page size gives every file once, in the same order */
    for (size_t limit = 1; limit <= 4; limit++) {
        ck_assert_str_eq(list_all(index, 2, limit, &pages), EXPECTED);
        ck_assert_int_eq(pages, (int)((4 + limit - 1) / limit));
    }
    ms_model_index_free(index);
}
END_TEST

START_TEST(test_page_fields)
{
    ms_model_index *index = new_index(SETTLE_MS);
    ms_model_page page;
    ms_error err;
    ck_assert_int_eq(ms_model_index_page(index, roots, 2, NULL, 2, &page, &err), MS_OK);
    ck_assert(page.more);
    ck_assert_uint_eq(page.next.root, 0);
    ck_assert_str_eq(page.next.path, "x/y.safetensors");
    ck_assert_uint_eq(page.not_reached_count, 0);
    ck_assert_uint_eq(json_array_size(page.not_reached), 0);
    json_t *first = json_array_get(page.models, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(first, "bytes")), 5);
    ck_assert_str_eq(json_string_value(json_object_get(first, "kind")), "unknown");
    ck_assert_str_eq(error_reason(first), "file_too_small");
    ms_model_page_clear(&page);
    ms_model_index_free(index);
}
END_TEST

/* A cursor names a place, not a file: it still works once its file is gone,
 * and nothing before it comes again. */
START_TEST(test_cursor_of_removed_file)
{
    ms_model_index *index = new_index(SETTLE_MS);
    ms_model_position after = {0, (char *)"x/y.safetensors"};
    char gone[PATH_MAX];
    path_in(gone, root_a, "x/y.safetensors");
    ck_assert_int_eq(unlink(gone), 0);
    ms_model_page page;
    ms_error err;
    ck_assert_int_eq(ms_model_index_page(index, roots, 2, &after, 10, &page, &err), MS_OK);
    ck_assert_uint_eq(json_array_size(page.models), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(page.models, 0), "path")),
                     "x.safetensors");
    ck_assert(!page.more);
    ms_model_page_clear(&page);
    ms_model_index_free(index);
}
END_TEST

START_TEST(test_unchanged_tree_is_not_read_again)
{
    ms_model_index *index = new_index(SETTLE_MS);
    let_settle();
    int pages = 0;
    ck_assert_str_eq(list_all(index, 2, 100, &pages), EXPECTED);
    ms_model_index_counts first = ms_model_index_get_counts(index);
    ck_assert_uint_eq(first.folders_read, 3);    /* a, a/x, b */
    ck_assert_uint_eq(first.headers_opened, 4);
    ck_assert_str_eq(list_all(index, 2, 100, &pages), EXPECTED);
    ms_model_index_counts second = ms_model_index_get_counts(index);
    ck_assert_uint_eq(second.folders_read, first.folders_read);
    ck_assert_uint_eq(second.headers_opened, first.headers_opened);
    ms_model_index_free(index);
}
END_TEST

/* Only the folder that changed is read again; only the new file opened. */
START_TEST(test_changed_folder_is_read_again)
{
    ms_model_index *index = new_index(SETTLE_MS);
    let_settle();
    int pages = 0;
    list_all(index, 2, 100, &pages);
    ms_model_index_counts before = ms_model_index_get_counts(index);
    char x[PATH_MAX];
    path_in(x, root_a, "x");
    write_file(x, "z.safetensors", "hello");
    let_settle();
    ck_assert_str_eq(list_all(index, 2, 100, &pages),
                     "0:a.safetensors\n0:x/y.safetensors\n0:x/z.safetensors\n0:x.safetensors\n"
                     "1:c.safetensors\n");
    ms_model_index_counts after = ms_model_index_get_counts(index);
    ck_assert_uint_eq(after.folders_read, before.folders_read + 1);
    ck_assert_uint_eq(after.headers_opened, before.headers_opened + 1);
    /* a folder removed is gone from the listing */
    char z[PATH_MAX], y[PATH_MAX];
    path_in(z, x, "z.safetensors");
    path_in(y, x, "y.safetensors");
    ck_assert_int_eq(unlink(z), 0);
    ck_assert_int_eq(unlink(y), 0);
    ck_assert_int_eq(rmdir(x), 0);
    ck_assert_str_eq(list_all(index, 2, 100, &pages),
                     "0:a.safetensors\n0:x.safetensors\n1:c.safetensors\n");
    ms_model_index_free(index);
}
END_TEST

/* A file rewritten in place leaves its folder as it was: the file's own
 * stat tells, and its header is opened again. */
START_TEST(test_file_changed_in_unchanged_folder)
{
    ms_model_index *index = new_index(SETTLE_MS);
    let_settle();
    int pages = 0;
    list_all(index, 2, 100, &pages);
    ms_model_index_counts before = ms_model_index_get_counts(index);
    /* 8 bytes of header length 100, past the end: header_too_large */
    write_file(root_a, "a.safetensors", "d\x01\x01\x01\x01\x01\x01\x01" "abcd");
    let_settle();
    ms_model_page page;
    ms_error err;
    ck_assert_int_eq(ms_model_index_page(index, roots, 2, NULL, 1, &page, &err), MS_OK);
    json_t *model = json_array_get(page.models, 0);
    ck_assert_str_eq(json_string_value(json_object_get(model, "path")), "a.safetensors");
    ck_assert_int_eq(json_integer_value(json_object_get(model, "bytes")), 12);
    ck_assert_str_eq(error_reason(model), "header_too_large");
    ms_model_page_clear(&page);
    ms_model_index_counts after = ms_model_index_get_counts(index);
    ck_assert_uint_eq(after.folders_read, before.folders_read);
    ck_assert_uint_eq(after.headers_opened, before.headers_opened + 1);
    ms_model_index_free(index);
}
END_TEST

/* What changed within the settle time of a read is read again, whatever
 * its timestamps say: a same-tick change would otherwise be missed. */
START_TEST(test_recent_change_is_not_trusted)
{
    ms_model_index *index = new_index(60000);
    int pages = 0;
    list_all(index, 2, 100, &pages);
    ms_model_index_counts first = ms_model_index_get_counts(index);
    list_all(index, 2, 100, &pages);
    ms_model_index_counts second = ms_model_index_get_counts(index);
    ck_assert_uint_eq(second.folders_read, 2 * first.folders_read);
    ck_assert_uint_eq(second.headers_opened, 2 * first.headers_opened);
    ms_model_index_free(index);
}
END_TEST

static json_t *gap(const ms_model_page *page, size_t i)
{
    return json_array_get(page->not_reached, i);
}

static void assert_gap(const ms_model_page *page, size_t i, int root, const char *path,
                       const char *reason)
{
    json_t *entry = gap(page, i);
    ck_assert_ptr_nonnull(entry);
    ck_assert_int_eq(json_integer_value(json_object_get(entry, "root")), root);
    ck_assert_str_eq(json_string_value(json_object_get(entry, "path")), path);
    ck_assert_str_eq(json_string_value(json_object_get(entry, "reason")), reason);
}

/* Past the file limit the walk stops: the files before the cut are listed,
 * the folder where it stopped and every later root are named. */
START_TEST(test_file_limit_is_reported)
{
    char missing[PATH_MAX];
    path_in(missing, base, "missing");
    roots[2] = missing;
    ms_model_limits limits = {8, 100, 2};
    ms_model_index *index = ms_model_index_new(&limits, SETTLE_MS);
    ck_assert_ptr_nonnull(index);
    ms_model_page page;
    ms_error err;
    ck_assert_int_eq(ms_model_index_page(index, roots, 3, NULL, 100, &page, &err), MS_OK);
    ck_assert_uint_eq(json_array_size(page.models), 2);
    ck_assert(!page.more);
    ck_assert_uint_eq(page.not_reached_count, 3);
    assert_gap(&page, 0, 0, "x.safetensors", "file_limit");
    assert_gap(&page, 1, 1, "", "file_limit");
    assert_gap(&page, 2, 2, "", "file_limit");
    ms_model_page_clear(&page);
    ms_model_index_free(index);
}
END_TEST

START_TEST(test_folder_limit_and_depth_are_reported)
{
    char x[PATH_MAX], deep[PATH_MAX];
    path_in(x, root_a, "x");
    make_dir(x, "deep");
    path_in(deep, x, "deep");
    write_file(deep, "d.safetensors", "hello");
    ms_model_limits shallow = {1, 100, 100};
    ms_model_index *index = ms_model_index_new(&shallow, SETTLE_MS);
    ck_assert_ptr_nonnull(index);
    ms_model_page page;
    ms_error err;
    ck_assert_int_eq(ms_model_index_page(index, roots, 2, NULL, 100, &page, &err), MS_OK);
    ck_assert_uint_eq(json_array_size(page.models), 4);
    ck_assert_uint_eq(page.not_reached_count, 1);
    assert_gap(&page, 0, 0, "x/deep", "too_deep");
    ms_model_page_clear(&page);
    ms_model_index_free(index);

    ms_model_limits few_folders = {8, 2, 100};
    index = ms_model_index_new(&few_folders, SETTLE_MS);
    ck_assert_ptr_nonnull(index);
    ck_assert_int_eq(ms_model_index_page(index, roots, 2, NULL, 100, &page, &err), MS_OK);
    /* a and a/x entered; a/x/deep, the third, comes before x/y.safetensors */
    ck_assert_uint_eq(json_array_size(page.models), 1);
    ck_assert_uint_eq(page.not_reached_count, 2);
    assert_gap(&page, 0, 0, "x/deep", "folder_limit");
    assert_gap(&page, 1, 1, "", "folder_limit");
    ms_model_page_clear(&page);
    ms_model_index_free(index);
}
END_TEST

START_TEST(test_missing_root_is_reported)
{
    char missing[PATH_MAX];
    path_in(missing, base, "missing");
    roots[0] = missing;
    ms_model_index *index = new_index(SETTLE_MS);
    ms_model_page page;
    ms_error err;
    ck_assert_int_eq(ms_model_index_page(index, roots, 2, NULL, 100, &page, &err), MS_OK);
    ck_assert_uint_eq(json_array_size(page.models), 1);
    ck_assert_uint_eq(page.not_reached_count, 1);
    assert_gap(&page, 0, 0, "", "missing");
    ms_model_page_clear(&page);
    ms_model_index_free(index);
}
END_TEST

/* Symlinks inside the root are followed, each folder walked once; a
 * symlink out of the root is not followed. */
START_TEST(test_symlinks)
{
    char link[PATH_MAX];
    path_in(link, root_a, "loop");
    ck_assert_int_eq(symlink(".", link), 0);
    path_in(link, root_a, "to_c.safetensors");
    ck_assert_int_eq(symlink("../b/c.safetensors", link), 0);
    path_in(link, root_a, "inside.safetensors");
    ck_assert_int_eq(symlink("x/y.safetensors", link), 0);
    ms_model_index *index = new_index(SETTLE_MS);
    int pages = 0;
    ck_assert_str_eq(list_all(index, 2, 2, &pages),
                     "0:a.safetensors\n0:inside.safetensors\n0:x/y.safetensors\n"
                     "0:x.safetensors\n1:c.safetensors\n");
    ms_model_index_free(index);
}
END_TEST

START_TEST(test_position_order)
{
    ms_model_position a = {0, (char *)"a/b.safetensors"};
    ms_model_position b = {0, (char *)"a.safetensors"};
    ms_model_position c = {1, (char *)"0.safetensors"};
    ms_model_position d = {0, (char *)"a"};
    ck_assert_int_lt(ms_model_position_compare(&a, &b), 0);
    ck_assert_int_gt(ms_model_position_compare(&b, &a), 0);
    ck_assert_int_lt(ms_model_position_compare(&b, &c), 0);
    ck_assert_int_lt(ms_model_position_compare(&d, &a), 0);
    ck_assert_int_eq(ms_model_position_compare(&a, &a), 0);
}
END_TEST

START_TEST(test_cursor_round_trip)
{
    ms_model_position position = {1, (char *)"dir/\xc3\xa9t\xc3\xa9 v2.safetensors"};
    char *text = ms_model_cursor_format(&position);
    ck_assert_ptr_nonnull(text);
    ck_assert_str_eq(text, "1-6469722fc3a974c3a92076322e7361666574656e736f7273");
    ms_model_position parsed = {0, NULL};
    ck_assert(ms_model_cursor_parse(text, 2, &parsed));
    ck_assert_uint_eq(parsed.root, 1);
    ck_assert_str_eq(parsed.path, position.path);
    free(parsed.path);
    /* the same root is out of range with one root */
    ck_assert(!ms_model_cursor_parse(text, 1, &parsed));
    free(text);
}
END_TEST

START_TEST(test_cursor_refused)
{
    static const char *const bad[] = {
        "", "x", "0", "0-", "-61", "0-6", "0-zz", "0-6A", "00-61", "+0-61", " 0-61",
        "0-6100",          /* a NUL byte inside */
        "0-ff",            /* not UTF-8 */
        "0-61-62", "99999999999999999999999-61", "2-61",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms_model_position parsed = {0, NULL};
        ck_assert_msg(!ms_model_cursor_parse(bad[i], 2, &parsed), "'%s' taken", bad[i]);
        ck_assert_ptr_null(parsed.path);
    }
}
END_TEST

static Suite *model_index_suite(void)
{
    Suite *suite = suite_create("model_index");
    TCase *walk = tcase_create("walk");
    tcase_add_checked_fixture(walk, setup, teardown);
    tcase_add_test(walk, test_order_and_pages);
    tcase_add_test(walk, test_page_fields);
    tcase_add_test(walk, test_cursor_of_removed_file);
    tcase_add_test(walk, test_unchanged_tree_is_not_read_again);
    tcase_add_test(walk, test_changed_folder_is_read_again);
    tcase_add_test(walk, test_file_changed_in_unchanged_folder);
    tcase_add_test(walk, test_recent_change_is_not_trusted);
    tcase_add_test(walk, test_file_limit_is_reported);
    tcase_add_test(walk, test_folder_limit_and_depth_are_reported);
    tcase_add_test(walk, test_missing_root_is_reported);
    tcase_add_test(walk, test_symlinks);
    suite_add_tcase(suite, walk);
    TCase *cursor = tcase_create("cursor");
    tcase_add_test(cursor, test_position_order);
    tcase_add_test(cursor, test_cursor_round_trip);
    tcase_add_test(cursor, test_cursor_refused);
    suite_add_tcase(suite, cursor);
    return suite;
}

int main(void)
{
    return ms_test_run_suite(model_index_suite());
}
