/* Every status has a distinct, stable snake_case name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "gf/status.h"

static void every_status_has_a_distinct_name(void **state)
{
    (void)state;
    for (int a = GF_OK; a <= GF_PENDING; a++) {
        const char *na = gf_status_str((enum gf_status)a);
        assert_non_null(na);
        assert_string_not_equal(na, "unknown");
        for (int b = a + 1; b <= GF_PENDING; b++)
            assert_string_not_equal(na, gf_status_str((enum gf_status)b));
    }
    assert_string_equal(gf_status_str(GF_OK), "ok");
    assert_string_equal(gf_status_str(GF_EINVAL), "invalid_argument");
    assert_string_equal(gf_status_str((enum gf_status)999), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(every_status_has_a_distinct_name)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
