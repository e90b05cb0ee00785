/* Grouping tensors into LoRA modules: spellings, ".weight", alpha, passthrough
 * and the shape errors. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/lora/lora.h"
#include "check_support.h"
#include "numerics_testutil.h"

#define COUNT_OF(array) (sizeof(array) / sizeof((array)[0]))

typedef struct parsed {
    unsigned char *image;
    ms_safetensors file;
} parsed;

static void parse(parsed *p, const test_tensor_spec *specs, size_t count)
{
    uint64_t size;
    p->image = test_build_image(specs, count, NULL, &size);
    ck_assert_ptr_nonnull(p->image);
    ms_error err;
    ms_status status = ms_safetensors_parse(p->image, size, &p->file, &err);
    ck_assert_msg(status == MS_OK, "parse: %s", err.message);
}

static void release(parsed *p)
{
    ms_safetensors_close(&p->file);
    free(p->image);
}

static ms_status group(const test_tensor_spec *specs, size_t count, ms_error *err)
{
    parsed p;
    ms_lora_module_list list;
    parse(&p, specs, count);
    ms_status status = ms_lora_find_modules(&p.file, &list, err);
    if (status == MS_OK)
        ms_lora_module_list_free(&list);
    release(&p);
    return status;
}

static bool has_passthrough(const ms_lora_module_list *list, const char *name)
{
    for (size_t i = 0; i < list->passthrough_count; i++)
        if (strcmp(list->passthrough[i]->name, name) == 0)
            return true;
    return false;
}

START_TEST(test_three_spellings)
{
    static const test_tensor_spec specs[] = {
        {"lora_unet_a.alpha", "F32", 0, {0}, 2.0},
        {"lora_unet_a.lora_down.weight", "F32", 2, {4, 10}, 0.25},
        {"lora_unet_a.lora_up.weight", "F32", 2, {6, 4}, 0.25},
        {"b.lora_A", "F16", 2, {3, 7}, 0.5},
        {"b.lora_B", "F16", 2, {5, 3}, 0.5},
        {"c.down.weight", "BF16", 4, {2, 3, 3, 3}, 1.0},
        {"c.up.weight", "BF16", 4, {8, 2, 1, 1}, 1.0},
        {"c.alpha", "BF16", 0, {0}, 1.0},
        {"unrelated.bias", "F32", 1, {3}, 1.0},
        {"step", "I64", 0, {0}, 0.0},
    };
    parsed p;
    ms_lora_module_list list;
    ms_error err;
    parse(&p, specs, COUNT_OF(specs));
    ck_assert_int_eq(ms_lora_find_modules(&p.file, &list, &err), MS_OK);
    ck_assert_uint_eq(list.count, 3);
    /* sorted by name: b, c, lora_unet_a */
    const ms_lora_module *b = &list.modules[0], *c = &list.modules[1], *a = &list.modules[2];
    ck_assert_str_eq(b->name, "b");
    ck_assert_str_eq(c->name, "c");
    ck_assert_str_eq(a->name, "lora_unet_a");
    ck_assert_int_eq(a->spelling, MS_LORA_SPELLING_KOHYA);
    ck_assert_int_eq(b->spelling, MS_LORA_SPELLING_PEFT);
    ck_assert_int_eq(c->spelling, MS_LORA_SPELLING_CONTROL);
    ck_assert_str_eq(ms_lora_spelling_name(b->spelling), "peft");

    ck_assert_int_eq(a->rank, 4);
    ck_assert_int_eq(a->out_features, 6);
    ck_assert_int_eq(a->in_features, 10);
    ck_assert(!a->is_conv);
    ck_assert_str_eq(a->down->name, "lora_unet_a.lora_down.weight");
    ck_assert_str_eq(a->up->name, "lora_unet_a.lora_up.weight");
    ck_assert_ptr_nonnull(a->alpha);
    double alpha;
    ck_assert_int_eq(ms_lora_module_alpha(&p.file, a, &alpha, &err), MS_OK);
    ck_assert_double_eq(alpha, 2.0);

    ck_assert_int_eq(b->rank, 3);
    ck_assert_int_eq(b->in_features, 7);
    ck_assert_ptr_null(b->alpha);
    ck_assert_int_eq(ms_lora_module_alpha(&p.file, b, &alpha, &err), MS_OK);
    ck_assert_double_eq(alpha, 3.0); /* missing alpha = rank */

    ck_assert(c->is_conv);
    ck_assert_int_eq(c->rank, 2);
    ck_assert_int_eq(c->in_features, 27);
    ck_assert_int_eq(c->kernel_h, 3);
    ck_assert_int_eq(c->kernel_w, 3);
    ck_assert_int_eq(c->out_features, 8);

    ck_assert_uint_eq(list.passthrough_count, 2);
    ck_assert(has_passthrough(&list, "step"));
    ck_assert(has_passthrough(&list, "unrelated.bias"));
    ms_lora_module_list_free(&list);
    release(&p);
}
END_TEST

START_TEST(test_incomplete_modules_pass_through)
{
    static const test_tensor_spec specs[] = {
        {"x.alpha", "F32", 0, {0}, 1.0},
        {"x.lora_down.weight", "F32", 2, {2, 4}, 1.0},   /* no up */
        {"y.lora_up.weight", "F32", 2, {4, 2}, 1.0},     /* no down */
        {"z.lora_down.weight", "F32", 2, {2, 4}, 1.0},   /* mixed ".weight" still pairs */
        {"z.lora_up", "F32", 2, {3, 2}, 1.0},
        {"w.lora_A.weight", "F32", 2, {2, 4}, 1.0},      /* spellings do not mix */
        {"w.lora_up.weight", "F32", 2, {3, 2}, 1.0},
    };
    parsed p;
    ms_lora_module_list list;
    ms_error err;
    parse(&p, specs, COUNT_OF(specs));
    ck_assert_int_eq(ms_lora_find_modules(&p.file, &list, &err), MS_OK);
    ck_assert_uint_eq(list.count, 1);
    ck_assert_str_eq(list.modules[0].name, "z");
    ck_assert_uint_eq(list.passthrough_count, 5);
    ck_assert(has_passthrough(&list, "x.alpha"));
    ck_assert(has_passthrough(&list, "x.lora_down.weight"));
    ck_assert(has_passthrough(&list, "y.lora_up.weight"));
    ck_assert(has_passthrough(&list, "w.lora_A.weight"));
    ck_assert(has_passthrough(&list, "w.lora_up.weight"));
    ms_lora_module_list_free(&list);
    release(&p);
}
END_TEST

START_TEST(test_no_modules)
{
    static const test_tensor_spec specs[] = {
        {"model.weight", "F32", 2, {2, 2}, 1.0},
    };
    parsed p;
    ms_lora_module_list list;
    ms_error err;
    parse(&p, specs, COUNT_OF(specs));
    ck_assert_int_eq(ms_lora_find_modules(&p.file, &list, &err), MS_OK);
    ck_assert_uint_eq(list.count, 0);
    ck_assert_uint_eq(list.passthrough_count, 1);
    ms_lora_module_list_free(&list);
    release(&p);
}
END_TEST

START_TEST(test_rank_mismatch)
{
    static const test_tensor_spec specs[] = {
        {"m.lora_down.weight", "F32", 2, {4, 10}, 1.0},
        {"m.lora_up.weight", "F32", 2, {6, 3}, 1.0},
    };
    ms_error err;
    ck_assert_int_eq(group(specs, COUNT_OF(specs), &err), MS_ERR_RANK_MISMATCH);
    ck_assert_str_eq(err.key, "m.lora_up.weight");
}
END_TEST

typedef struct shape_error_case {
    test_tensor_spec specs[3];
    const char *key;
    ms_status code;
} shape_error_case;

static const shape_error_case shape_errors[] = {
    {{{"m.lora_down.weight", "F32", 3, {4, 10, 2}, 1.0},
      {"m.lora_up.weight", "F32", 3, {6, 4, 1}, 1.0}},
     "m.lora_down.weight", MS_ERR_SHAPE_MISMATCH},
    {{{"m.lora_down.weight", "F32", 4, {4, 10, 3, 3}, 1.0},
      {"m.lora_up.weight", "F32", 4, {6, 4, 3, 3}, 1.0}},
     "m.lora_up.weight", MS_ERR_SHAPE_MISMATCH},
    {{{"m.lora_down.weight", "F32", 4, {4, 10, 3, 3}, 1.0},
      {"m.lora_up.weight", "F32", 2, {6, 4}, 1.0}},
     "m.lora_up.weight", MS_ERR_SHAPE_MISMATCH},
    {{{"m.alpha", "F32", 1, {2}, 1.0},
      {"m.lora_down.weight", "F32", 2, {4, 10}, 1.0},
      {"m.lora_up.weight", "F32", 2, {6, 4}, 1.0}},
     "m.alpha", MS_ERR_SHAPE_MISMATCH},
    {{{"m.alpha", "I64", 0, {0}, 0.0},
      {"m.lora_down.weight", "F32", 2, {4, 10}, 1.0},
      {"m.lora_up.weight", "F32", 2, {6, 4}, 1.0}},
     "m.alpha", MS_ERR_SHAPE_MISMATCH},
    {{{"m.lora_down.weight", "F32", 2, {0, 10}, 1.0},
      {"m.lora_up.weight", "F32", 2, {6, 0}, 1.0}},
     "m.lora_down.weight", MS_ERR_SHAPE_MISMATCH},
    {{{"m.lora_down.weight", "I64", 2, {4, 10}, 0.0},
      {"m.lora_up.weight", "F32", 2, {6, 4}, 1.0}},
     "m.lora_down.weight", MS_ERR_UNSUPPORTED_DTYPE},
};

START_TEST(test_shape_errors)
{
    const shape_error_case *c = &shape_errors[_i];
    size_t count = c->specs[2].name != NULL ? 3 : 2;
    ms_error err;
    ck_assert_int_eq(group(c->specs, count, &err), c->code);
    ck_assert_str_eq(err.key, c->key);
}
END_TEST

START_TEST(test_duplicate_module_name)
{
    static const test_tensor_spec specs[] = {
        {"m.lora_A", "F32", 2, {2, 4}, 1.0},
        {"m.lora_B", "F32", 2, {3, 2}, 1.0},
        {"m.lora_down.weight", "F32", 2, {2, 4}, 1.0},
        {"m.lora_up.weight", "F32", 2, {3, 2}, 1.0},
    };
    ms_error err;
    ck_assert_int_eq(group(specs, COUNT_OF(specs), &err), MS_ERR_DUPLICATE_KEY);
}
END_TEST

START_TEST(test_alpha_not_finite)
{
    static const test_tensor_spec specs[] = {
        {"m.alpha", "F32", 0, {0}, INFINITY},
        {"m.lora_down.weight", "F32", 2, {2, 4}, 1.0},
        {"m.lora_up.weight", "F32", 2, {3, 2}, 1.0},
    };
    parsed p;
    ms_lora_module_list list;
    ms_error err;
    double alpha;
    parse(&p, specs, COUNT_OF(specs));
    ck_assert_int_eq(ms_lora_find_modules(&p.file, &list, &err), MS_OK);
    ck_assert_int_eq(ms_lora_module_alpha(&p.file, &list.modules[0], &alpha, &err),
                     MS_ERR_NAN_DETECTED);
    ck_assert_str_eq(err.key, "m.alpha");
    ms_lora_module_list_free(&list);
    release(&p);
}
END_TEST

/* Thousands of tensors: every module found, in order. */
START_TEST(test_many_modules)
{
    enum { modules = 1500 };
    test_tensor_spec *specs = calloc(3 * modules, sizeof *specs);
    char (*names)[48] = calloc(3 * modules, sizeof *names);
    ck_assert(specs != NULL && names != NULL);
    for (int i = 0; i < modules; i++) {
        snprintf(names[3 * i], 48, "lora_unet_%05d.alpha", i);
        snprintf(names[3 * i + 1], 48, "lora_unet_%05d.lora_down.weight", i);
        snprintf(names[3 * i + 2], 48, "lora_unet_%05d.lora_up.weight", i);
        specs[3 * i] = (test_tensor_spec){names[3 * i], "F16", 0, {0}, 1.0};
        specs[3 * i + 1] = (test_tensor_spec){names[3 * i + 1], "F16", 2, {1, 2}, 1.0};
        specs[3 * i + 2] = (test_tensor_spec){names[3 * i + 2], "F16", 2, {2, 1}, 1.0};
    }
    parsed p;
    ms_lora_module_list list;
    ms_error err;
    parse(&p, specs, 3 * modules);
    ck_assert_int_eq(ms_lora_find_modules(&p.file, &list, &err), MS_OK);
    ck_assert_uint_eq(list.count, modules);
    ck_assert_uint_eq(list.passthrough_count, 0);
    for (size_t i = 1; i < list.count; i++)
        ck_assert(strcmp(list.modules[i - 1].name, list.modules[i].name) < 0);
    ms_lora_module_list_free(&list);
    release(&p);
    free(specs);
    free(names);
}
END_TEST

static Suite *lora_suite(void)
{
    Suite *suite = suite_create("lora");
    TCase *cases = tcase_create("grouping");
    tcase_add_test(cases, test_three_spellings);
    tcase_add_test(cases, test_incomplete_modules_pass_through);
    tcase_add_test(cases, test_no_modules);
    tcase_add_test(cases, test_rank_mismatch);
    tcase_add_loop_test(cases, test_shape_errors, 0, (int)COUNT_OF(shape_errors));
    tcase_add_test(cases, test_duplicate_module_name);
    tcase_add_test(cases, test_alpha_not_finite);
    tcase_add_test(cases, test_many_modules);
    suite_add_tcase(suite, cases);
    return suite;
}

int main(void)
{
    return ms_test_run_suite(lora_suite());
}
