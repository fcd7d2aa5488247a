/* UUID generation and the strict canonical-form check used on every correlation id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "gf/uuid.h"

static void generated_uuids_are_valid_v4_and_distinct(void **state)
{
    (void)state;
    char a[37], b[37];
    gf_uuid_generate(a);
    gf_uuid_generate(b);
    assert_int_equal(strlen(a), 36);
    assert_true(gf_uuid_valid(a, 36));
    assert_string_not_equal(a, b);
    assert_int_equal(a[14], '4');               /* version 4 */
    assert_true(strchr("89ab", a[19]) != NULL); /* RFC 4122 variant */
}

/* Version 7: valid, distinct, and ordered by time (the first 48 bits are Unix milliseconds):
 * an id made later sorts after one made a few milliseconds before, as text and as PostgreSQL's
 * uuid (both compare the bytes in order). */
static void v7_uuids_are_valid_distinct_and_ordered_by_time(void **state)
{
    (void)state;
    char a[37], b[37], c[37];
    gf_uuid_generate_v7(a);
    gf_uuid_generate_v7(b);
    struct timespec two_ms = {0, 2 * 1000 * 1000};
    nanosleep(&two_ms, NULL);
    gf_uuid_generate_v7(c);
    assert_true(gf_uuid_valid(a, 36));
    assert_string_not_equal(a, b);
    assert_int_equal(a[14], '7');               /* version 7 */
    assert_true(strchr("89ab", a[19]) != NULL); /* RFC 9562 variant */
    assert_true(strcmp(a, c) < 0);
    assert_true(strcmp(b, c) < 0);
    /* The time: the first 12 hex digits are now in milliseconds, give or take a second. */
    char hex[13];
    memcpy(hex, a, 8);
    memcpy(hex + 8, a + 9, 4);
    hex[12] = '\0';
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    long long got = strtoll(hex, NULL, 16);
    assert_true(got <= ms && got > ms - 1000);
}

static void validation_accepts_only_the_canonical_form(void **state)
{
    (void)state;
    const char *good[] = {"123e4567-e89b-12d3-a456-426614174000",
                          "123E4567-E89B-12D3-A456-426614174000"};
    const char *bad[] = {"",
                         "123e4567e89b12d3a456426614174000",
                         "123e4567-e89b-12d3-a456-42661417400",
                         "123e4567-e89b-12d3-a456-4266141740000",
                         "123e4567-e89b-12d3-a456_426614174000",
                         "g23e4567-e89b-12d3-a456-426614174000",
                         "{23e4567-e89b-12d3-a456-426614174000",
                         "123e4567-e89b-12d3-a456-42661417400\n"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(gf_uuid_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(gf_uuid_valid(bad[i], strlen(bad[i])));
    assert_false(gf_uuid_valid(NULL, 36));
    /* A NUL inside the 36 bytes is not a UUID. */
    assert_false(gf_uuid_valid("123e4567-e89b-12d3-a456-42661417\0000", 36));
}

static void normalize_lowercases_and_leaves_out_untouched_on_failure(void **state)
{
    (void)state;
    char out[37] = "untouched";
    assert_true(gf_uuid_normalize("123E4567-E89B-12D3-A456-426614174ABC", 36, out));
    assert_string_equal(out, "123e4567-e89b-12d3-a456-426614174abc");
    char keep[37] = "untouched";
    assert_false(gf_uuid_normalize("nope", 4, keep));
    assert_string_equal(keep, "untouched");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(generated_uuids_are_valid_v4_and_distinct),
        cmocka_unit_test(v7_uuids_are_valid_distinct_and_ordered_by_time),
        cmocka_unit_test(validation_accepts_only_the_canonical_form),
        cmocka_unit_test(normalize_lowercases_and_leaves_out_untouched_on_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
