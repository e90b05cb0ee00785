/* server/job_waiters: what a /bbwm request held until its job ends is
 * answered (status and body from the job's final state and error), and a
 * registry that was never set up or holds nobody does nothing.  Holding a
 * real connection is tested end to end (tests/merge_service_test.sh). */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "server/jobs/job_waiters.h"
#include "server/service.h"
#include "check_support.h"

static json_t *answer(ms_job_state state, const char *error_text, unsigned *status)
{
    *status = 0;
    char *text = ms_job_waiters_answer(state, error_text, status);
    ck_assert_ptr_nonnull(text);
    json_t *body = json_loads(text, JSON_DECODE_ANY, NULL);
    ck_assert_ptr_nonnull(body);
    free(text);
    return body;
}

static const char *code_of(const json_t *body)
{
    return json_string_value(json_object_get(json_object_get(body, "error"), "code"));
}

START_TEST(test_succeeded_is_null)
{
    unsigned status;
    json_t *body = answer(MS_JOB_SUCCEEDED, NULL, &status);
    ck_assert_uint_eq(status, 200);
    ck_assert(json_is_null(body));
    json_decref(body);
}
END_TEST

START_TEST(test_failed_carries_the_job_error)
{
    unsigned status;
    json_t *body = answer(MS_JOB_FAILED,
                          "{\"code\":\"shape_mismatch\",\"message\":\"m\",\"key\":\"k.weight\","
                          "\"details\":{\"other_model\":\"model_b\"}}",
                          &status);
    ck_assert_uint_eq(status, 422);
    ck_assert_str_eq(code_of(body), "shape_mismatch");
    json_t *error = json_object_get(body, "error");
    ck_assert_str_eq(json_string_value(json_object_get(error, "key")), "k.weight");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(error, "details"),
                                                       "other_model")),
                     "model_b");
    json_decref(body);

    body = answer(MS_JOB_FAILED, "{\"code\":\"disk_full\",\"message\":\"m\"}", &status);
    ck_assert_uint_eq(status, 507);
    json_decref(body);
    body = answer(MS_JOB_CANCELLED, "{\"code\":\"cancelled\",\"message\":\"m\"}", &status);
    ck_assert_uint_eq(status, 409);
    ck_assert_str_eq(code_of(body), "cancelled");
    json_decref(body);
    body = answer(MS_JOB_FAILED, "{\"code\":\"interrupted\",\"message\":\"m\"}", &status);
    ck_assert_uint_eq(status, 500);
    ck_assert_str_eq(code_of(body), "interrupted");
    json_decref(body);
}
END_TEST

/* A job without a readable error record still ends the wait, as a 500. */
START_TEST(test_failed_without_error_record)
{
    const char *records[] = {NULL, "not json", "[1]", "{\"message\":\"no code\"}",
                             "{\"code\":\"no_such_code\",\"message\":\"m\"}"};
    for (size_t i = 0; i < sizeof records / sizeof records[0]; i++) {
        unsigned status;
        json_t *body = answer(MS_JOB_FAILED, records[i], &status);
        ck_assert_uint_eq(status, 500);
        ck_assert(json_is_object(json_object_get(body, "error")));
        if (i < 3)
            ck_assert_str_eq(code_of(body), "internal_error");
        json_decref(body);
    }
}
END_TEST

/* Set up or not, a registry with nobody held answers nobody. */
START_TEST(test_nobody_held)
{
    ms_service service;
    memset(&service, 0, sizeof service);
    ms_job_waiters_job_ended(&service, "0123456789abcdef0123456789abcdef", MS_JOB_SUCCEEDED,
                             NULL);
    ms_job_waiters_release_all(&service);
    ck_assert_int_eq(ms_job_waiters_init(&service.waiters), 0);
    ck_assert(service.waiters.ready);
    ck_assert(!service.waiters.closed);
    /* a state that is not final answers nothing, final ones find nobody */
    ms_job_waiters_job_ended(&service, "0123456789abcdef0123456789abcdef", MS_JOB_QUEUED, NULL);
    ms_job_waiters_job_ended(&service, "0123456789abcdef0123456789abcdef", MS_JOB_FAILED,
                             "{\"code\":\"io_error\",\"message\":\"m\"}");
    ck_assert_ptr_null(service.waiters.first);
    ms_job_waiters_release_all(&service);
    ck_assert(service.waiters.closed);
    ms_job_waiters_destroy(&service.waiters);
    ck_assert(!service.waiters.ready);
    ms_job_waiters_destroy(&service.waiters);   /* twice is fine */
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("job_waiters");
    TCase *tcase = tcase_create("answers");
    tcase_add_test(tcase, test_succeeded_is_null);
    tcase_add_test(tcase, test_failed_carries_the_job_error);
    tcase_add_test(tcase, test_failed_without_error_record);
    tcase_add_test(tcase, test_nobody_held);
    suite_add_tcase(suite, tcase);
    return ms_test_run_suite(suite);
}
