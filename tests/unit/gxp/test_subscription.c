/* GXP_PUBLISHER_PASSWORD: the conninfo CREATE SUBSCRIPTION gets (libpq reads the password back
 * exactly), the refusal of a second password in GXP_PUBLISHER_CONNINFO, and the redaction of
 * the server's error messages before they are logged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gf/log.h"
#include "gxp.h"

/* The helpers gxp/subscription.c exposes to tests (GF_TESTABLE). */
enum gf_status subscription_conninfo_build(const char *conninfo, const char *password, char **out);
char *subscription_redact_dup(const char *text, const char *secret);

/* The value libpq parses for keyword out of conninfo (caller frees), or NULL when unset. */
static char *parsed(const char *conninfo, const char *keyword)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
    if (opts == NULL)
        fail_msg("libpq refused '%s': %s", conninfo, err ? err : "?");
    char *val = NULL;
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (strcmp(o->keyword, keyword) == 0 && o->val != NULL)
            val = strdup(o->val);
    }
    PQconninfoFree(opts);
    return val;
}

static char *build(const char *conninfo, const char *password)
{
    char *out = NULL;
    assert_int_equal(subscription_conninfo_build(conninfo, password, &out), GF_OK);
    assert_non_null(out);
    return out;
}

static void assert_roundtrip(const char *conninfo, const char *password)
{
    char *ci = build(conninfo, password);
    char *pw = parsed(ci, "password");
    assert_non_null(pw);
    assert_string_equal(pw, password);
    free(pw);
    /* The rest of the conninfo means what it meant. */
    char *before = parsed(conninfo, "host"), *after = parsed(ci, "host");
    if (before == NULL)
        assert_null(after);
    else
        assert_string_equal(after, before);
    free(before);
    free(after);
    free(ci);
}

static void an_empty_password_leaves_the_conninfo_unchanged(void **state)
{
    (void)state;
    const char *cis[] = {"host=db user=u dbname=backend", "postgresql://u@db/backend", ""};
    for (size_t i = 0; i < sizeof cis / sizeof cis[0]; i++) {
        char *a = build(cis[i], NULL), *b = build(cis[i], "");
        assert_string_equal(a, cis[i]);
        assert_string_equal(b, cis[i]);
        free(a);
        free(b);
    }
}

static void the_password_is_appended_quoted_the_libpq_way(void **state)
{
    (void)state;
    static const struct {
        const char *pw, *want;
    } cases[] = {
        {"s3cret", "host=db user=u password='s3cret'"},
        {"it's", "host=db user=u password='it\\'s'"},
        {"back\\slash", "host=db user=u password='back\\\\slash'"},
        {"with space", "host=db user=u password='with space'"},
        {"\\'", "host=db user=u password='\\\\\\''"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *ci = build("host=db user=u", cases[i].pw);
        assert_string_equal(ci, cases[i].want);
        free(ci);
    }
    char *ci = build("", "pw");
    assert_string_equal(ci, "password='pw'");
    free(ci);
}

static void libpq_reads_back_exactly_the_password_given(void **state)
{
    (void)state;
    const char *pws[] = {"s3cret",  "it's",   "back\\slash", "with space", "trailing\\",
                         "'",       "\\",     "''\\\\''",    " lead",      "tab\there",
                         "a=b c=d", "%41+&?", "p\xc3\xa4ss", "#/@:[]"};
    const char *cis[] = {"host=db port=5432 user=u dbname=backend",
                         "host='db' dbname = 'my db'",
                         "postgresql://u@db:5432/backend",
                         "postgresql://u@db/backend?sslmode=disable",
                         "postgres://db/backend?",
                         "postgresql://db/backend?sslmode=disable&"};
    for (size_t c = 0; c < sizeof cis / sizeof cis[0]; c++) {
        for (size_t p = 0; p < sizeof pws / sizeof pws[0]; p++)
            assert_roundtrip(cis[c], pws[p]);
    }
    char *ci = build("postgresql://u@db/backend", "a b/c");
    assert_string_equal(ci, "postgresql://u@db/backend?password=a%20b%2Fc");
    free(ci);
    ci = build("postgresql://u@db/backend?sslmode=disable", "x");
    assert_string_equal(ci, "postgresql://u@db/backend?sslmode=disable&password=x");
    free(ci);
}

/* Why gxp_config_check refuses two passwords: libpq takes the last, silently. */
static void with_two_passwords_libpq_takes_the_last(void **state)
{
    (void)state;
    char *ci = build("host=db password=first", "second");
    char *pw = parsed(ci, "password");
    assert_string_equal(pw, "second");
    free(pw);
    free(ci);
    ci = build("postgresql://u:first@db/backend", "second");
    pw = parsed(ci, "password");
    assert_string_equal(pw, "second");
    free(pw);
    free(ci);
}

static FILE *g_cap;
static int g_saved = -1;

static void capture_start(void)
{
    fflush(stderr);
    g_cap = tmpfile();
    assert_non_null(g_cap);
    g_saved = dup(STDERR_FILENO);
    assert_true(dup2(fileno(g_cap), STDERR_FILENO) >= 0);
}

static char *capture_end(void)
{
    fflush(stderr);
    dup2(g_saved, STDERR_FILENO);
    close(g_saved);
    long n = ftell(g_cap);
    char *buf = calloc(1, (size_t)n + 1);
    assert_non_null(buf);
    rewind(g_cap);
    assert_int_equal(fread(buf, 1, (size_t)n, g_cap), (size_t)n);
    fclose(g_cap);
    fputs(buf, stderr); /* a failing test still shows the log */
    return buf;
}

/* Loads gxp's configuration with these two variables and runs gxp_config_check. */
static enum gf_status check(const char *conninfo, const char *password, char **log)
{
    setenv("GXP_PUBLISHER_CONNINFO", conninfo, 1);
    setenv("GXP_PUBLISHER_PASSWORD", password, 1);
    setenv("GXP_GRPC_INSECURE", "true", 1); /* gRPC's TLS is another test's */
    struct gxp_config cfg = {0};
    assert_int_equal(gf_config_load(gxp_config_defs, gxp_config_ndefs, &cfg), GF_OK);
    capture_start();
    enum gf_status st = gxp_config_check(&cfg);
    *log = capture_end();
    gf_config_free(gxp_config_defs, gxp_config_ndefs, &cfg);
    return st;
}

static void a_password_in_both_places_is_refused_at_config_time(void **state)
{
    (void)state;
    const char *both[] = {"host=db user=u password=conn-s3cret",
                          "postgresql://u:conn-s3cret@db/backend",
                          "postgresql://u@db/backend?password=conn-s3cret"};
    for (size_t i = 0; i < sizeof both / sizeof both[0]; i++) {
        char *log = NULL;
        assert_int_equal(check(both[i], "env-s3cret", &log), GF_EINVAL);
        assert_non_null(strstr(log, "config invalid var=GXP_PUBLISHER_PASSWORD value='****'"));
        assert_null(strstr(log, "s3cret"));
        free(log);
    }
    /* One place only is fine, either one; so is a password with no subscription at all. */
    const char *ok[][2] = {{"host=db user=u", "env-s3cret"},
                           {"host=db user=u password=conn-s3cret", ""},
                           {"postgresql://u@db/backend", "env-s3cret"},
                           {"", "env-s3cret"}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char *log = NULL;
        assert_int_equal(check(ok[i][0], ok[i][1], &log), GF_OK);
        assert_string_equal(log, "");
        free(log);
    }
    unsetenv("GXP_PUBLISHER_CONNINFO");
    unsetenv("GXP_PUBLISHER_PASSWORD");
    unsetenv("GXP_GRPC_INSECURE");
}

static void the_password_is_a_masked_secret_of_the_config_table(void **state)
{
    (void)state;
    const struct gf_config_def *d = NULL;
    for (size_t i = 0; i < gxp_config_ndefs; i++) {
        if (strcmp(gxp_config_defs[i].name, "GXP_PUBLISHER_PASSWORD") == 0)
            d = &gxp_config_defs[i];
    }
    assert_non_null(d);
    assert_true(d->secret);
    assert_int_equal(d->type, GF_CFG_STRING);
    assert_string_equal(d->default_val, "");
}

static void redact(const char *text, const char *secret, const char *want)
{
    char *got = subscription_redact_dup(text, secret);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void server_messages_are_logged_without_the_password(void **state)
{
    (void)state;
    redact("could not connect: s3cret and s3cret", "s3cret", "could not connect: **** and ****");
    redact("nothing to hide", "s3cret", "nothing to hide");
    redact("x", "a-longer-secret", "x");
    redact("aaa", "aa", "****a");
    redact("s3cret", "s3cret", "****");
    redact("keep it", NULL, "keep it");
    redact("keep it", "", "keep it");
}

int main(void)
{
    gf_log_init("test", GF_LOG_DEBUG);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_empty_password_leaves_the_conninfo_unchanged),
        cmocka_unit_test(the_password_is_appended_quoted_the_libpq_way),
        cmocka_unit_test(libpq_reads_back_exactly_the_password_given),
        cmocka_unit_test(with_two_passwords_libpq_takes_the_last),
        cmocka_unit_test(a_password_in_both_places_is_refused_at_config_time),
        cmocka_unit_test(the_password_is_a_masked_secret_of_the_config_table),
        cmocka_unit_test(server_messages_are_logged_without_the_password),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
