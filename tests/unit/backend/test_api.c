/* The HTTP API's input rules (backend/validate.c) and its one status → HTTP code table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "backend.h"
#include "validate.h"

/* The helpers backend/validate.c exposes to tests (GF_TESTABLE). */
enum gf_status validate_number(const json_t *v, const char *field, int64_t min, int64_t max,
                               int64_t *out, struct be_err *err);
enum gf_status validate_name(const json_t *v, const char *field, const char **out,
                             struct be_err *err);
bool validate_digits(const char *s, size_t len, int64_t max, int64_t *out);

/* validate_number on the JSON text src (wrapped in an array so scalars parse). */
static enum gf_status number(const char *src, int64_t min, int64_t max, int64_t *out,
                             struct be_err *err)
{
    char text[256];
    snprintf(text, sizeof text, "[%s]", src);
    json_error_t je;
    json_t *arr = json_loads(text, 0, &je);
    assert_non_null(arr);
    enum gf_status st = validate_number(json_array_get(arr, 0), "count", min, max, out, err);
    json_decref(arr);
    return st;
}

static void integers_and_digit_strings_are_accepted(void **state)
{
    (void)state;
    struct be_err err = {0};
    int64_t v = -1;
    assert_int_equal(number("12", 1, VALIDATE_U31_MAX, &v, &err), GF_OK);
    assert_int_equal(v, 12);
    assert_int_equal(number("\"12\"", 1, VALIDATE_U31_MAX, &v, &err), GF_OK);
    assert_int_equal(v, 12);
    assert_int_equal(number("\"007\"", 1, VALIDATE_U31_MAX, &v, &err), GF_OK);
    assert_int_equal(v, 7);
    assert_int_equal(number("0", 0, VALIDATE_U31_MAX, &v, &err), GF_OK);
    assert_int_equal(v, 0);
    assert_int_equal(number("2147483647", 1, VALIDATE_U31_MAX, &v, &err), GF_OK);
    assert_int_equal(v, 2147483647);
    assert_int_equal(number("\"2147483647\"", 1, VALIDATE_U31_MAX, &v, &err), GF_OK);
    assert_int_equal(number("9007199254740992", 1, VALIDATE_ID_MAX, &v, &err), GF_OK);
    assert_true(v == VALIDATE_ID_MAX);
}

static void every_other_number_form_is_refused_naming_the_field(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "1.5",
        "1.0",
        "1e3",
        "-1",
        "true",
        "false",
        "null",
        "{}",
        "[]",
        "[1]",
        "\"12abc\"",
        "\" 12\"",
        "\"12 \"",
        "\"+12\"",
        "\"-12\"",
        "\"\"",
        "\"1.5\"",
        "\"0x10\"",
        "\"1e3\"",
        "0",
        "2147483648",
        "\"2147483648\"",
        "99999999999999999",
        "\"99999999999999999999999999999\"",
        "-9223372036854775808",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct be_err err = {0};
        int64_t v = 42;
        if (number(bad[i], 1, VALIDATE_U31_MAX, &v, &err) != GF_EINVAL)
            fail_msg("accepted %s", bad[i]);
        assert_int_equal(v, 42); /* out-parameters are written only on success */
        assert_string_equal(err.code, "invalid_field");
        assert_non_null(strstr(err.message, "\"count\""));
    }
}

static void ids_are_positive_and_at_most_2_pow_53(void **state)
{
    (void)state;
    struct be_err err = {0};
    int64_t v;
    assert_int_equal(number("0", 1, VALIDATE_ID_MAX, &v, &err), GF_EINVAL);
    assert_int_equal(number("9007199254740993", 1, VALIDATE_ID_MAX, &v, &err), GF_EINVAL);
    assert_int_equal(number("\"9007199254740993\"", 1, VALIDATE_ID_MAX, &v, &err), GF_EINVAL);
    assert_int_equal(number("1", 1, VALIDATE_ID_MAX, &v, &err), GF_OK);
}

static enum gf_status name(const char *src, const char **out, struct be_err *err)
{
    json_t *s = json_string(src);
    assert_non_null(s);
    enum gf_status st = validate_name(s, "name", out, err);
    json_decref(s);
    return st;
}

static void names_are_1_to_255_bytes_without_control_characters(void **state)
{
    (void)state;
    struct be_err err = {0};
    const char *out = NULL;
    char buf[300];
    assert_int_equal(name("Bob", &out, &err), GF_OK);
    assert_int_equal(name("žluťoučký kůň 🐎", &out, &err), GF_OK);
    memset(buf, 'a', 255);
    buf[255] = '\0';
    assert_int_equal(name(buf, &out, &err), GF_OK);
    buf[255] = 'a';
    buf[256] = '\0';
    assert_int_equal(name(buf, &out, &err), GF_EINVAL);
    assert_string_equal(err.code, "invalid_field");
    assert_non_null(strstr(err.message, "\"name\""));
    assert_int_equal(name("", &out, &err), GF_EINVAL);
    assert_int_equal(name("a\tb", &out, &err), GF_EINVAL);
    assert_int_equal(name("a\nb", &out, &err), GF_EINVAL);
    assert_int_equal(name("a\x1f", &out, &err), GF_EINVAL);
    assert_int_equal(name("a\x7f", &out, &err), GF_EINVAL);
    json_t *n = json_integer(5);
    assert_int_equal(validate_name(n, "name", &out, &err), GF_EINVAL);
    json_decref(n);
    assert_int_equal(validate_name(json_null(), "name", &out, &err), GF_EINVAL);
}

static const struct validate_field item_fields[] = {{"name", VALIDATE_NAME, true},
                                                    {"cost", VALIDATE_COST, true}};

static enum gf_status body(const char *text, struct validate_value *v, struct be_err *err)
{
    json_t *root = NULL;
    memset(err, 0, sizeof *err);
    enum gf_status st = validate_body(text, strlen(text), item_fields, 2, &root, v, err);
    if (st == GF_OK)
        assert_non_null(root);
    else
        assert_null(root);
    json_decref(root);
    return st;
}

static void a_valid_body_fills_every_field(void **state)
{
    (void)state;
    struct validate_value v[2];
    struct be_err err;
    json_t *root = NULL;
    const char *text = "{\"cost\":\"12\",\"name\":\"sword\"}";
    assert_int_equal(validate_body(text, strlen(text), item_fields, 2, &root, v, &err), GF_OK);
    assert_true(v[0].present && v[1].present);
    assert_string_equal(v[0].str, "sword");
    assert_int_equal(v[1].num, 12);
    json_decref(root);

    static const struct validate_field patch[] = {{"name", VALIDATE_NAME, false},
                                                  {"cost", VALIDATE_COST, false}};
    text = "{\"cost\":0}";
    assert_int_equal(validate_body(text, strlen(text), patch, 2, &root, v, &err), GF_OK);
    assert_false(v[0].present);
    assert_true(v[1].present);
    assert_int_equal(v[1].num, 0);
    json_decref(root);
}

static void each_bad_body_gets_its_error_code(void **state)
{
    (void)state;
    static const struct {
        const char *body, *code;
    } cases[] = {
        {"", "empty_body"},
        {"   ", "malformed_json"},
        {"{\"name\":\"a\",\"cost\":1", "malformed_json"},
        {"{\"name\":\"a\",\"cost\":1}x", "malformed_json"},
        {"{'name':'a'}", "malformed_json"},
        {"[1,2]", "invalid_body"},
        {"\"text\"", "invalid_body"},
        {"null", "invalid_body"},
        {"{\"name\":\"a\",\"cost\":1,\"extra\":true}", "unknown_field"},
        {"{\"name\":\"a\"}", "missing_field"},
        {"{\"cost\":1}", "missing_field"},
        {"{}", "missing_field"},
        {"{\"name\":\"a\",\"name\":\"b\",\"cost\":1}", "duplicate_field"},
        {"{\"name\":\"\xff\xfe\",\"cost\":1}", "invalid_utf8"},
        {"{\"name\":\"\xc3\",\"cost\":1}", "invalid_utf8"},
        {"{\"name\":\"a\\u0000b\",\"cost\":1}", "malformed_json"},
        {"{\"name\":\"a\",\"cost\":123456789012345678901234567890}", "invalid_field"},
        {"{\"name\":\"a\",\"cost\":1.5}", "invalid_field"},
        {"{\"name\":\"a\",\"cost\":-1}", "invalid_field"},
        {"{\"name\":\"a\",\"cost\":null}", "invalid_field"},
        {"{\"name\":\"\",\"cost\":1}", "invalid_field"},
        {"{\"name\":7,\"cost\":1}", "invalid_field"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct validate_value v[2];
        struct be_err err;
        if (body(cases[i].body, v, &err) != GF_EINVAL)
            fail_msg("accepted %s", cases[i].body);
        if (strcmp(err.code, cases[i].code) != 0)
            fail_msg("%s: code %s, want %s", cases[i].body, err.code, cases[i].code);
        assert_true(err.message[0] != '\0');
        assert_false(v[0].present || v[1].present); /* nothing points into a freed document */
    }
}

static void an_unknown_field_is_named_and_clipped_on_a_character_boundary(void **state)
{
    (void)state;
    struct validate_value v[2];
    struct be_err err;
    char text[400] = "{\"";
    for (int i = 0; i < 40; i++)
        strcat(text, "ž"); /* 2 bytes each: 80 bytes, clipped at 64 */
    strcat(text, "\":1}");
    assert_int_equal(body(text, v, &err), GF_EINVAL);
    assert_string_equal(err.code, "unknown_field");
    json_t *s = json_string(err.message); /* NULL if the clip split a character */
    assert_non_null(s);
    json_decref(s);
    assert_int_equal(body("{\"nam\":\"a\"}", v, &err), GF_EINVAL);
    assert_non_null(strstr(err.message, "\"nam\""));
}

static void limit_and_after_page_lists(void **state)
{
    (void)state;
    struct be_page p;
    struct be_err err;
    assert_int_equal(validate_page(NULL, NULL, 100, &p, &err), GF_OK);
    assert_int_equal(p.limit, 100);
    assert_int_equal(p.after, 0);
    assert_int_equal(validate_page("5", "7", 100, &p, &err), GF_OK);
    assert_int_equal(p.limit, 5);
    assert_int_equal(p.after, 7);
    assert_int_equal(validate_page("100000", "0", 100, &p, &err), GF_OK);
    assert_int_equal(p.limit, 100); /* cut to the cap, not refused */
    assert_int_equal(validate_page("99999999999999999999999", NULL, 100, &p, &err), GF_EINVAL);
    static const char *const bad[] = {"0", "-1", "", "abc", "1.5", " 5", "5 ", "+5", "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = (struct be_page){.after = -7, .limit = -7};
        if (validate_page(bad[i], NULL, 100, &p, &err) != GF_EINVAL)
            fail_msg("limit=%s accepted", bad[i]);
        assert_string_equal(err.code, "invalid_field");
        assert_non_null(strstr(err.message, "\"limit\""));
        assert_int_equal(p.limit, -7);
    }
    static const char *const bad_after[] = {"-1", "", "x", "9007199254740993", "1.0"};
    for (size_t i = 0; i < sizeof bad_after / sizeof bad_after[0]; i++) {
        if (validate_page(NULL, bad_after[i], 100, &p, &err) != GF_EINVAL)
            fail_msg("after=%s accepted", bad_after[i]);
        assert_non_null(strstr(err.message, "\"after\""));
    }
}

static void a_query_id_is_required_and_positive(void **state)
{
    (void)state;
    struct be_err err;
    int64_t id = 0;
    assert_int_equal(validate_query_id("42", "userId", &id, &err), GF_OK);
    assert_int_equal(id, 42);
    assert_int_equal(validate_query_id(NULL, "userId", &id, &err), GF_EINVAL);
    assert_string_equal(err.code, "missing_field");
    assert_non_null(strstr(err.message, "userId"));
    static const char *const bad[] = {"0", "-1", "", "abc", "1a", "9007199254740993"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(validate_query_id(bad[i], "userId", &id, &err), GF_EINVAL);
        assert_string_equal(err.code, "invalid_field");
    }
}

static void if_match_takes_strong_weak_and_bare_versions(void **state)
{
    (void)state;
    int64_t v = -1;
    static const char *const good[] = {"\"3\"", "W/\"3\"", "3", " \"3\" ", "\t3"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        v = -1;
        if (!validate_if_match(good[i], &v))
            fail_msg("refused %s", good[i]);
        assert_int_equal(v, 3);
    }
    assert_true(validate_if_match("\"0\"", &v));
    assert_int_equal(v, 0);
    static const char *const bad[] = {
        "*",   "",        "\"\"",   "\"3", "3\"",    "\"a\"", "\"3\", \"4\"",
        "W/3", "w/\"3\"", "W/\"\"", "-1",  "\"-1\"", "3.0",   "99999999999999999999",
        NULL,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = -1;
        if (validate_if_match(bad[i], &v))
            fail_msg("accepted %s", bad[i] ? bad[i] : "(null)");
        assert_int_equal(v, -1);
    }
}

static void idempotency_keys_are_1_to_255_printable_ascii(void **state)
{
    (void)state;
    char buf[300];
    assert_true(validate_idempotency_key("a"));
    assert_true(validate_idempotency_key("8e0c1c9e-0f3b-4a51-9d6e-2b1f3c4d5e6f"));
    assert_true(validate_idempotency_key("with space ~!@#"));
    memset(buf, 'k', 255);
    buf[255] = '\0';
    assert_true(validate_idempotency_key(buf));
    buf[255] = 'k';
    buf[256] = '\0';
    assert_false(validate_idempotency_key(buf));
    assert_false(validate_idempotency_key(""));
    assert_false(validate_idempotency_key(NULL));
    assert_false(validate_idempotency_key("a\x01"));
    assert_false(validate_idempotency_key("a\tb"));
    assert_false(validate_idempotency_key("a\x7f"));
    assert_false(validate_idempotency_key("clé"));
}

static void digits_stop_before_overflowing(void **state)
{
    (void)state;
    int64_t v;
    assert_true(validate_digits("9223372036854775807", 19, INT64_MAX, &v));
    assert_true(v == INT64_MAX);
    assert_false(validate_digits("9223372036854775808", 19, INT64_MAX, &v));
    assert_true(validate_digits("10", 2, 10, &v));
    assert_false(validate_digits("11", 2, 10, &v));
    assert_true(validate_digits("12x", 2, 100, &v)); /* only len bytes are read */
    assert_int_equal(v, 12);
}

/* The one mapping of database failures (err.c): what each becomes for the client, and mapping
 * a mapped status again changes nothing (callers never re-map, but it would be harmless). */
static void database_failures_map_once(void **state)
{
    (void)state;
    static const struct {
        enum gf_status in, out;
        const char *code;
    } table[] = {
        {GF_ECONFLICT, GF_EUNAVAILABLE, "database_unavailable"}, /* 40001, 40P01: retryable */
        {GF_EUNAVAILABLE, GF_EUNAVAILABLE, "database_unavailable"},
        {GF_ESHUTDOWN, GF_EUNAVAILABLE, "database_unavailable"},
        {GF_ETIMEOUT, GF_ETIMEOUT, "database_timeout"},
        {GF_EUNKNOWN, GF_EUNKNOWN, "outcome_unknown"},
        {GF_ENOMEM, GF_ENOMEM, "out_of_memory"},
        {GF_EEXISTS, GF_EEXISTS, "already_exists"}, /* the caller names what it means */
        {GF_ENOTFOUND, GF_ENOTFOUND, "not_found"},
        {GF_EINVAL, GF_EINVAL, "invalid_field"},
        {GF_EINTERNAL, GF_EINTERNAL, "internal"},
        {GF_ERANGE, GF_EINTERNAL, "internal"},
        {GF_PENDING, GF_EINTERNAL, "internal"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        struct be_err err = {0};
        enum gf_status st = be_db_failed(table[i].in, &err);
        assert_int_equal(st, table[i].out);
        assert_string_equal(err.code, table[i].code);
        assert_true(err.message[0] != '\0');
        struct be_err again = {0};
        assert_int_equal(be_db_failed(st, &again), st);
        assert_string_equal(again.code, err.code);
    }
    struct be_err err = {.code = "untouched"};
    assert_int_equal(be_db_failed(GF_OK, &err), GF_OK);
    assert_string_equal(err.code, "untouched");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(integers_and_digit_strings_are_accepted),
        cmocka_unit_test(every_other_number_form_is_refused_naming_the_field),
        cmocka_unit_test(ids_are_positive_and_at_most_2_pow_53),
        cmocka_unit_test(names_are_1_to_255_bytes_without_control_characters),
        cmocka_unit_test(a_valid_body_fills_every_field),
        cmocka_unit_test(each_bad_body_gets_its_error_code),
        cmocka_unit_test(an_unknown_field_is_named_and_clipped_on_a_character_boundary),
        cmocka_unit_test(limit_and_after_page_lists),
        cmocka_unit_test(a_query_id_is_required_and_positive),
        cmocka_unit_test(if_match_takes_strong_weak_and_bare_versions),
        cmocka_unit_test(idempotency_keys_are_1_to_255_printable_ascii),
        cmocka_unit_test(digits_stop_before_overflowing),
        cmocka_unit_test(database_failures_map_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
