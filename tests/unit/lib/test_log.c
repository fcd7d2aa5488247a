/* Log lines: one line each, with service and correlation id, level filtering, no way for
 * a message to break the line format, and rate limiting of repeated failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gf/log.h"

static char captured[8192];

/* Runs fn with stderr redirected to a temporary file, then reads it into captured. */
static void capture(void (*fn)(void))
{
    char path[] = "/tmp/gf-log-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, captured, sizeof captured - 1);
    captured[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
}

static void write_lines(void)
{
    gf_log_init("svc-a", GF_LOG_INFO);
    gf_log_set_cid("123e4567-e89b-12d3-a456-426614174000");
    GF_INFO("hello user=%d", 7);
    GF_DEBUG("not shown");
    gf_log_set_cid(NULL);
    GF_WARN("quote \" and\nnewline");
}

static void lines_carry_service_cid_and_level(void **state)
{
    (void)state;
    capture(write_lines);
    char *first = captured;
    char *nl = strchr(first, '\n');
    assert_non_null(nl);
    *nl = '\0';
    assert_non_null(strstr(first, "level=info svc=svc-a cid=123e4567-e89b-12d3-a456-426614174000"));
    assert_non_null(strstr(first, "msg=\"hello user=7\""));
    char *second = nl + 1;
    assert_non_null(strstr(second, "level=warn svc=svc-a cid=- msg=\"quote ' and newline\"\n"));
    assert_null(strstr(captured, "not shown"));
    /* Exactly two lines. */
    assert_null(strchr(strchr(second, '\n') + 1, '\n'));
}

static void ratelimit(void)
{
    gf_log_init("svc-b", GF_LOG_INFO);
    for (int i = 0; i < 50; i++)
        GF_LOG_RL(GF_LOG_WARN, 60000, "database down attempt=%d", i);
}

static void repeated_failures_are_rate_limited(void **state)
{
    (void)state;
    capture(ratelimit);
    assert_non_null(strstr(captured, "database down attempt=0 suppressed=0"));
    assert_null(strstr(captured, "attempt=1 "));
}

static void level_names_parse(void **state)
{
    (void)state;
    enum gf_log_level l;
    assert_true(gf_log_level_parse("DEBUG", &l));
    assert_int_equal(l, GF_LOG_DEBUG);
    assert_true(gf_log_level_parse("error", &l));
    assert_int_equal(l, GF_LOG_ERROR);
    assert_false(gf_log_level_parse("loud", &l));
    assert_false(gf_log_level_parse(NULL, &l));
}

static void cids_with_spaces_or_quotes_cannot_forge_fields(void **state)
{
    (void)state;
    gf_log_set_cid("x level=error\"");
    assert_string_equal(gf_log_cid(), "x?level=error?");
    gf_log_set_cid(NULL);
    assert_string_equal(gf_log_cid(), "-");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lines_carry_service_cid_and_level),
        cmocka_unit_test(repeated_failures_are_rate_limited),
        cmocka_unit_test(level_names_parse),
        cmocka_unit_test(cids_with_spaces_or_quotes_cannot_forge_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
