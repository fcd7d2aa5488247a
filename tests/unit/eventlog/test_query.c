/* eventlog/query.c: the query string of GET /eventlog/events, good and bad. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "eventlog.h"

/* The helper query.c exposes to tests (GF_TESTABLE). */
bool query_digits(const char *s, int64_t max, int64_t *out);

#define CAP 1000
#define CID "0b7f6f3e-2a4c-4d0e-9f51-3c1d2b7a9e10"

#define ARGS(...)                                                                                  \
    (const struct query_arg[])                                                                     \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }
#define N(...) (sizeof(const struct query_arg[]){__VA_ARGS__} / sizeof(struct query_arg))
#define PARSE(q, err, ...) query_parse(ARGS(__VA_ARGS__), N(__VA_ARGS__), CAP, q, err)

static void no_parameters_mean_the_newest_hundred(void **state)
{
    (void)state;
    struct events_query q;
    struct api_err err = {0};
    assert_int_equal(query_parse(NULL, 0, CAP, &q, &err), GF_OK);
    assert_int_equal(q.limit, 100);
    assert_int_equal(q.after, -1);
    assert_int_equal(q.user_id, 0);
    assert_false(q.has_correlation_id);
    /* A cap below the default is the default. */
    assert_int_equal(query_parse(NULL, 0, 10, &q, &err), GF_OK);
    assert_int_equal(q.limit, 10);
}

static void every_parameter_is_read(void **state)
{
    (void)state;
    struct events_query q;
    struct api_err err = {0};
    assert_int_equal(PARSE(&q, &err, {"userId", "42"}, {"limit", "7"}, {"after", "0"},
                           {"correlationId", "0B7F6F3E-2A4C-4D0E-9F51-3C1D2B7A9E10"}),
                     GF_OK);
    assert_int_equal(q.user_id, 42);
    assert_int_equal(q.limit, 7);
    assert_int_equal(q.after, 0);
    assert_true(q.has_correlation_id);
    assert_string_equal(q.correlation_id, CID);
    assert_int_equal(PARSE(&q, &err, {"after", "9223372036854775807"}, {"userId", "4294967295"}),
                     GF_OK);
    assert_true(q.after == INT64_MAX);
    assert_true(q.user_id == 4294967295LL);
    assert_int_equal(PARSE(&q, &err, {"limit", "0007"}), GF_OK);
    assert_int_equal(q.limit, 7);
}

static void a_limit_above_the_cap_is_cut(void **state)
{
    (void)state;
    struct events_query q;
    struct api_err err = {0};
    assert_int_equal(PARSE(&q, &err, {"limit", "1000000"}), GF_OK);
    assert_int_equal(q.limit, CAP);
    assert_int_equal(PARSE(&q, &err, {"limit", "1000"}), GF_OK);
    assert_int_equal(q.limit, CAP);
}

static void bad_values_are_refused_naming_the_parameter(void **state)
{
    (void)state;
    static const struct {
        const char *key, *value, *code;
    } bad[] = {
        {"userId", "0", "invalid_parameter"},
        {"userId", "-1", "invalid_parameter"},
        {"userId", "+1", "invalid_parameter"},
        {"userId", "1.5", "invalid_parameter"},
        {"userId", "abc", "invalid_parameter"},
        {"userId", " 1", "invalid_parameter"},
        {"userId", "1 ", "invalid_parameter"},
        {"userId", "0x10", "invalid_parameter"},
        {"userId", "4294967296", "invalid_parameter"},
        {"userId", "", "invalid_parameter"},
        {"userId", NULL, "invalid_parameter"},
        {"limit", "0", "invalid_parameter"},
        {"limit", "-5", "invalid_parameter"},
        {"limit", "ten", "invalid_parameter"},
        {"limit", "99999999999999999999", "invalid_parameter"},
        {"after", "-1", "invalid_parameter"},
        {"after", "9223372036854775808", "invalid_parameter"},
        {"after", "1e3", "invalid_parameter"},
        {"correlationId", "nope", "invalid_parameter"},
        {"correlationId", CID "0", "invalid_parameter"},
        {"correlationId", "0b7f6f3e2a4c4d0e9f513c1d2b7a9e10", "invalid_parameter"},
        {"userId", "00000000000000000000000000000000000000000000000000000000000000001",
         "invalid_parameter"},
        {"userid", "1", "unknown_parameter"},
        {"user_id", "1", "unknown_parameter"},
        {"offset", "1", "unknown_parameter"},
        {"", "1", "unknown_parameter"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct events_query q = {.limit = -7};
        struct api_err err = {0};
        struct query_arg a = {bad[i].key, bad[i].value};
        assert_int_equal(query_parse(&a, 1, CAP, &q, &err), GF_EINVAL);
        assert_string_equal(err.code, bad[i].code);
        assert_true(strlen(err.message) > 0);
        if (bad[i].key[0] != '\0')
            assert_non_null(strstr(err.message, bad[i].key));
        assert_int_equal(q.limit, -7); /* nothing written on failure */
    }
}

static void a_parameter_given_twice_is_refused(void **state)
{
    (void)state;
    struct events_query q;
    struct api_err err = {0};
    assert_int_equal(PARSE(&q, &err, {"userId", "1"}, {"userId", "1"}), GF_EINVAL);
    assert_string_equal(err.code, "duplicate_parameter");
}

static void an_unknown_key_is_clipped_and_cleaned_in_the_message(void **state)
{
    (void)state;
    struct events_query q;
    struct api_err err = {0};
    char key[300];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    key[3] = '"';
    key[4] = '\n';
    struct query_arg a = {key, "1"};
    assert_int_equal(query_parse(&a, 1, CAP, &q, &err), GF_EINVAL);
    assert_string_equal(err.code, "unknown_parameter");
    assert_non_null(strstr(err.message, "\"kkk??kk"));
    assert_non_null(strstr(err.message, "...\""));
    assert_null(strchr(err.message, '\n'));
}

static void digits_are_strict_and_stop_before_overflow(void **state)
{
    (void)state;
    int64_t v = -1;
    assert_true(query_digits("0", 10, &v));
    assert_int_equal(v, 0);
    assert_true(query_digits("10", 10, &v));
    assert_int_equal(v, 10);
    assert_false(query_digits("11", 10, &v));
    assert_true(query_digits("9223372036854775807", INT64_MAX, &v));
    assert_true(v == INT64_MAX);
    assert_false(query_digits("9223372036854775808", INT64_MAX, &v));
    assert_false(query_digits("", 10, &v));
    assert_false(query_digits(NULL, 10, &v));
    assert_false(query_digits("1a", 10, &v));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_parameters_mean_the_newest_hundred),
        cmocka_unit_test(every_parameter_is_read),
        cmocka_unit_test(a_limit_above_the_cap_is_cut),
        cmocka_unit_test(bad_values_are_refused_naming_the_parameter),
        cmocka_unit_test(a_parameter_given_twice_is_refused),
        cmocka_unit_test(an_unknown_key_is_clipped_and_cleaned_in_the_message),
        cmocka_unit_test(digits_are_strict_and_stop_before_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
