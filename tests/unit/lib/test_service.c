/* Unit tests for lib/src/service.c's command line: what each argument selects, and the one
 * line an unknown argument gets on stderr. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gf/service.h"

/* Runs gf_service_args on argv (NULL-terminated) and returns what it wrote to stderr in
 * *err (caller frees). */
static enum gf_service_mode args(char **argv, char **err)
{
    int argc = 0;
    while (argv[argc] != NULL)
        argc++;
    fflush(stderr);
    FILE *cap = tmpfile();
    assert_non_null(cap);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(cap), STDERR_FILENO) >= 0);
    enum gf_service_mode mode = gf_service_args(argc, argv, "svc");
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    long n = ftell(cap);
    assert_true(n >= 0);
    *err = calloc(1, (size_t)n + 1);
    assert_non_null(*err);
    rewind(cap);
    assert_int_equal(fread(*err, 1, (size_t)n, cap), (size_t)n);
    fclose(cap);
    return mode;
}

static void each_argument_selects_its_mode_silently(void **state)
{
    (void)state;
    struct {
        char *argv[4];
        enum gf_service_mode want;
    } cases[] = {
        {{"svc", NULL}, GF_SERVICE_RUN},
        {{"svc", "--help", NULL}, GF_SERVICE_HELP},
        {{"svc", "-h", NULL}, GF_SERVICE_HELP},
        {{"svc", "--check-config", NULL}, GF_SERVICE_CHECK_CONFIG},
        {{"svc", "--check-config", "--help", NULL}, GF_SERVICE_HELP},
        {{"svc", "--help", "--check-config", NULL}, GF_SERVICE_HELP},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err = NULL;
        assert_int_equal(args(cases[i].argv, &err), cases[i].want);
        assert_string_equal(err, "");
        free(err);
    }
}

static void an_unknown_argument_is_named_on_one_line(void **state)
{
    (void)state;
    char *cases[][4] = {
        {"svc", "--bogus", NULL},
        {"svc", "--check-config", "--bogus", NULL},
        {"svc", "--bogus", "--help", NULL}, /* even with --help: a typo must not go unnoticed */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err = NULL;
        assert_int_equal(args(cases[i], &err), GF_SERVICE_BAD_ARGS);
        assert_string_equal(err, "svc: unknown argument '--bogus' (try --help)\n");
        free(err);
    }
    char *near[][3] = {{"svc", "--HELP", NULL},
                       {"svc", "help", NULL},
                       {"svc", "--check-config=1", NULL},
                       {"svc", "", NULL}};
    for (size_t i = 0; i < sizeof near / sizeof near[0]; i++) {
        char *err = NULL;
        assert_int_equal(args(near[i], &err), GF_SERVICE_BAD_ARGS);
        char want[128];
        snprintf(want, sizeof want, "svc: unknown argument '%s' (try --help)\n", near[i][1]);
        assert_string_equal(err, want);
        free(err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_argument_selects_its_mode_silently),
        cmocka_unit_test(an_unknown_argument_is_named_on_one_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
