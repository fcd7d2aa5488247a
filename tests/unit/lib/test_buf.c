/* The growable buffer: appends and printf grow it, the maximum is never passed, the first
 * failure sticks and frees, take hands the content over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gf/buf.h"

static void grows_and_stays_terminated(void **state)
{
    (void)state;
    struct gf_buf b;
    gf_buf_init(&b, 0);
    assert_string_equal(gf_buf_str(&b), "");
    assert_int_equal(gf_buf_len(&b), 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(gf_buf_addstr(&b, "0123456789"), GF_OK);
    assert_int_equal(gf_buf_len(&b), 10000);
    assert_int_equal(strlen(gf_buf_str(&b)), 10000);
    assert_int_equal(gf_buf_printf(&b, "[%d:%s]", 42, "x"), GF_OK);
    assert_string_equal(gf_buf_str(&b) + 10000, "[42:x]");
    assert_int_equal(gf_buf_add(&b, "\0z", 2), GF_OK); /* bytes, NUL included */
    assert_int_equal(gf_buf_len(&b), 10008);
    gf_buf_reset(&b);
    assert_int_equal(gf_buf_len(&b), 0);
    assert_string_equal(gf_buf_str(&b), "");
}

static void printf_larger_than_the_room_left(void **state)
{
    (void)state;
    struct gf_buf b;
    gf_buf_init(&b, 0);
    assert_int_equal(gf_buf_addstr(&b, "a"), GF_OK);
    char big[3000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(gf_buf_printf(&b, "%s|%s", big, big), GF_OK);
    assert_int_equal(gf_buf_len(&b), 1 + 2 * 2999 + 1);
    assert_int_equal(gf_buf_str(&b)[3000], '|');
    gf_buf_reset(&b);
}

static void the_maximum_holds_and_the_failure_sticks(void **state)
{
    (void)state;
    struct gf_buf b;
    gf_buf_init(&b, 8);
    assert_int_equal(gf_buf_addstr(&b, "12345678"), GF_OK); /* exactly the maximum */
    assert_int_equal(gf_buf_add(&b, "9", 1), GF_ETOOBIG);
    assert_int_equal(gf_buf_status(&b), GF_ETOOBIG);
    assert_string_equal(gf_buf_str(&b), "");              /* freed at once */
    assert_int_equal(gf_buf_addstr(&b, "a"), GF_ETOOBIG); /* sticks */
    assert_null(gf_buf_take(&b, NULL));
    gf_buf_reset(&b); /* usable again, same maximum */
    assert_int_equal(gf_buf_printf(&b, "%d", 123456789), GF_ETOOBIG);
    gf_buf_reset(&b);
    assert_int_equal(gf_buf_printf(&b, "%d", 1234), GF_OK);
    assert_int_equal(gf_buf_printf(&b, "%d", 5678), GF_OK);
    assert_int_equal(gf_buf_printf(&b, "%d", 9), GF_ETOOBIG);
    gf_buf_reset(&b);
}

static void take_hands_the_content_over(void **state)
{
    (void)state;
    struct gf_buf b;
    gf_buf_init(&b, 64);
    size_t len = 99;
    char *empty = gf_buf_take(&b, &len); /* empty: an allocated "" */
    assert_non_null(empty);
    assert_string_equal(empty, "");
    assert_int_equal(len, 0);
    free(empty);
    assert_int_equal(gf_buf_addstr(&b, "hello"), GF_OK);
    char *s = gf_buf_take(&b, &len);
    assert_string_equal(s, "hello");
    assert_int_equal(len, 5);
    free(s);
    assert_int_equal(gf_buf_len(&b), 0);
    assert_int_equal(gf_buf_addstr(&b, "again"), GF_OK);
    assert_string_equal(gf_buf_str(&b), "again");
    gf_buf_reset(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grows_and_stays_terminated),
        cmocka_unit_test(printf_larger_than_the_room_left),
        cmocka_unit_test(the_maximum_holds_and_the_failure_sticks),
        cmocka_unit_test(take_hands_the_content_over),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
