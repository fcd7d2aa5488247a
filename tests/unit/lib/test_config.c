/* Unit tests for lib/src/config.c: parsing each type from the environment, bounds, every
 * error reported in one run, secrets masked in logs, --help and --check-config's output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gf/config.h"
#include "gf/log.h"

struct tcfg {
    char *name;
    int64_t port;
    bool flag;
    char *addr;
    char *db;
    int level;
    char *token;
};

static const struct gf_config_def defs[] = {
    {"TC_NAME", GF_CFG_STRING, "svc", 0, 0, false, offsetof(struct tcfg, name), "a name"},
    {"TC_PORT", GF_CFG_INT, "8080", 1, 65535, false, offsetof(struct tcfg, port), "a port"},
    {"TC_FLAG", GF_CFG_BOOL, "false", 0, 0, false, offsetof(struct tcfg, flag), "a flag"},
    {"TC_ADDR", GF_CFG_ADDR, "0.0.0.0:8080", 0, 0, false, offsetof(struct tcfg, addr), "listen"},
    {"TC_DB", GF_CFG_CONNINFO, "host=localhost dbname=gxp", 0, 0, false, offsetof(struct tcfg, db),
     "database"},
    {"TC_LEVEL", GF_CFG_LOGLEVEL, "info", 0, 0, false, offsetof(struct tcfg, level), "log level"},
    {"TC_TOKEN", GF_CFG_STRING, "none", 0, 0, true, offsetof(struct tcfg, token), "a secret"},
};
#define NDEFS (sizeof defs / sizeof defs[0])

static const char *const all_vars[] = {"TC_NAME",  "TC_PORT",  "TC_FLAG", "TC_ADDR", "TC_DB",
                                       "TC_LEVEL", "TC_TOKEN", "TC_REQ",  "TC_AMQP"};

/* --- stderr capture: gf_log writes to fd 2 --------------------------------------------- */

static FILE *g_cap;
static int g_saved_fd = -1;

static void capture_start(void)
{
    fflush(stderr);
    g_cap = tmpfile();
    assert_non_null(g_cap);
    g_saved_fd = dup(STDERR_FILENO);
    assert_true(g_saved_fd >= 0);
    assert_true(dup2(fileno(g_cap), STDERR_FILENO) >= 0);
}

/* Returns what was written to stderr since capture_start (caller frees). */
static char *capture_end(void)
{
    fflush(stderr);
    dup2(g_saved_fd, STDERR_FILENO);
    close(g_saved_fd);
    long n = ftell(g_cap);
    assert_true(n >= 0);
    char *buf = calloc(1, (size_t)n + 1);
    assert_non_null(buf);
    rewind(g_cap);
    size_t got = fread(buf, 1, (size_t)n, g_cap);
    assert_int_equal(got, (size_t)n);
    fclose(g_cap);
    g_cap = NULL;
    /* Echo it so a failing test still shows the log. */
    fputs(buf, stderr);
    return buf;
}

static int count_lines(const char *s, const char *needle)
{
    int n = 0;
    for (const char *l = s; l && *l;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        char *line = strndup(l, len);
        if (strstr(line, needle))
            n++;
        free(line);
        l = e ? e + 1 : NULL;
    }
    return n;
}

static int reset_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof all_vars / sizeof all_vars[0]; i++)
        unsetenv(all_vars[i]);
    return 0;
}

/* --- tests ------------------------------------------------------------------------------ */

static void defaults_apply_when_unset_or_empty(void **state)
{
    (void)state;
    setenv("TC_NAME", "", 1); /* empty = unset */
    struct tcfg c;
    memset(&c, 0xa5, sizeof c);
    assert_int_equal(gf_config_load(defs, NDEFS, &c), GF_OK);
    assert_string_equal(c.name, "svc");
    assert_int_equal(c.port, 8080);
    assert_false(c.flag);
    assert_string_equal(c.addr, "0.0.0.0:8080");
    assert_string_equal(c.db, "host=localhost dbname=gxp");
    assert_int_equal(c.level, GF_LOG_INFO);
    assert_string_equal(c.token, "none");
    gf_config_free(defs, NDEFS, &c);
    assert_null(c.name);
    assert_null(c.addr);
    assert_null(c.db);
    assert_null(c.token);
}

static void environment_overrides_defaults(void **state)
{
    (void)state;
    setenv("TC_NAME", "gxp", 1);
    setenv("TC_PORT", "9090", 1);
    setenv("TC_FLAG", "yes", 1);
    setenv("TC_ADDR", "[::1]:0", 1);
    setenv("TC_DB", "postgresql://app:pw@db:5432/gxp", 1);
    setenv("TC_LEVEL", "DEBUG", 1);
    setenv("TC_TOKEN", "hunter2", 1);
    struct tcfg c = {0};
    assert_int_equal(gf_config_load(defs, NDEFS, &c), GF_OK);
    assert_string_equal(c.name, "gxp");
    assert_int_equal(c.port, 9090);
    assert_true(c.flag);
    assert_string_equal(c.addr, "[::1]:0");
    assert_string_equal(c.db, "postgresql://app:pw@db:5432/gxp");
    assert_int_equal(c.level, GF_LOG_DEBUG);
    assert_string_equal(c.token, "hunter2");
    gf_config_free(defs, NDEFS, &c);
}

static void required_missing_is_reported(void **state)
{
    (void)state;
    static const struct gf_config_def req[] = {
        {"TC_REQ", GF_CFG_STRING, NULL, 0, 0, false, 0, "required"},
    };
    char *v = (char *)0x1;
    setenv("TC_REQ", "", 1); /* empty still counts as missing */
    capture_start();
    enum gf_status st = gf_config_load(req, 1, &v);
    char *log = capture_end();
    assert_int_equal(st, GF_EINVAL);
    assert_null(v);
    assert_int_equal(count_lines(log, "var=TC_REQ value=<unset> rule='required'"), 1);
    free(log);

    setenv("TC_REQ", "present", 1);
    assert_int_equal(gf_config_load(req, 1, &v), GF_OK);
    assert_string_equal(v, "present");
    gf_config_free(req, 1, &v);
    assert_null(v);
}

static enum gf_status load_port(const char *val, int64_t *out)
{
    struct tcfg c = {0};
    setenv("TC_PORT", val, 1);
    enum gf_status st = gf_config_load(defs, NDEFS, &c);
    if (st == GF_OK)
        *out = c.port;
    gf_config_free(defs, NDEFS, &c);
    return st;
}

static void int_bounds_and_junk(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_int_equal(load_port("1", &v), GF_OK);
    assert_int_equal(v, 1);
    assert_int_equal(load_port("65535", &v), GF_OK);
    assert_int_equal(v, 65535);
    assert_int_equal(load_port("+443", &v), GF_OK);
    assert_int_equal(v, 443);
    v = -7;
    const char *bad[] = {"0",    "65536", "-1",  "12abc", " 12", "12 ",
                         "0x10", "1e3",   "abc", "--1",   "+",   "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        capture_start();
        enum gf_status st = load_port(bad[i], &v);
        char *log = capture_end();
        assert_int_equal(st, GF_EINVAL);
        assert_int_equal(count_lines(log, "var=TC_PORT"), 1);
        assert_non_null(strstr(log, "integer in [1, 65535]"));
        free(log);
    }
    assert_int_equal(v, -7); /* never written on failure */

    /* The whole int64 range is usable. */
    static const struct gf_config_def wide[] = {
        {"TC_PORT", GF_CFG_INT, "0", INT64_MIN, INT64_MAX, false, 0, "wide"},
    };
    int64_t w = 0;
    setenv("TC_PORT", "-9223372036854775808", 1);
    assert_int_equal(gf_config_load(wide, 1, &w), GF_OK);
    assert_true(w == INT64_MIN);
    setenv("TC_PORT", "9223372036854775807", 1);
    assert_int_equal(gf_config_load(wide, 1, &w), GF_OK);
    assert_true(w == INT64_MAX);
    setenv("TC_PORT", "9223372036854775808", 1);
    capture_start();
    assert_int_equal(gf_config_load(wide, 1, &w), GF_EINVAL);
    free(capture_end());
}

static void bool_forms(void **state)
{
    (void)state;
    static const struct gf_config_def d[] = {
        {"TC_FLAG", GF_CFG_BOOL, NULL, 0, 0, false, 0, "flag"},
    };
    const char *yes[] = {"1", "true", "TRUE", "yes", "Yes", "on", "ON"};
    const char *no[] = {"0", "false", "False", "no", "NO", "off", "Off"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        bool b = false;
        setenv("TC_FLAG", yes[i], 1);
        assert_int_equal(gf_config_load(d, 1, &b), GF_OK);
        assert_true(b);
        b = true;
        setenv("TC_FLAG", no[i], 1);
        assert_int_equal(gf_config_load(d, 1, &b), GF_OK);
        assert_false(b);
    }
    const char *bad[] = {"2", "y", "maybe", "truee", " on"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bool b = false;
        setenv("TC_FLAG", bad[i], 1);
        capture_start();
        enum gf_status st = gf_config_load(d, 1, &b);
        char *log = capture_end();
        assert_int_equal(st, GF_EINVAL);
        assert_int_equal(count_lines(log, "var=TC_FLAG"), 1);
        free(log);
    }
}

static void addr_forms(void **state)
{
    (void)state;
    char host[64];
    int port = -1;
    assert_int_equal(gf_config_split_addr("0.0.0.0:8080", host, sizeof host, &port), GF_OK);
    assert_string_equal(host, "0.0.0.0");
    assert_int_equal(port, 8080);
    assert_int_equal(gf_config_split_addr("127.0.0.1:0", host, sizeof host, &port), GF_OK);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 0);
    assert_int_equal(gf_config_split_addr("[::1]:65535", host, sizeof host, &port), GF_OK);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 65535);
    assert_int_equal(gf_config_split_addr("db.example:5432", host, sizeof host, &port), GF_OK);
    assert_string_equal(host, "db.example");
    assert_int_equal(port, 5432);

    const char *bad[] = {
        "localhost", ":80",   "h:",     "h:65536", "h:-1",  "h:8x", "h:123456", "::1:80", "[::1]",
        "[::1]80",   "[]:80", "[::1]:", "a b:80",  "h: 80", "",     "[::1:80",  "x]:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        strcpy(host, "untouched");
        port = -1;
        assert_int_equal(gf_config_split_addr(bad[i], host, sizeof host, &port), GF_EINVAL);
        assert_string_equal(host, "untouched");
        assert_int_equal(port, -1);
    }
    /* A host longer than the caller's buffer is refused, not truncated. */
    char tiny[4];
    assert_int_equal(gf_config_split_addr("abcd:1", tiny, sizeof tiny, &port), GF_EINVAL);
    assert_int_equal(gf_config_split_addr("abc:1", tiny, sizeof tiny, &port), GF_OK);
    assert_string_equal(tiny, "abc");

    /* Through the loader: the variable is named with the rule. */
    struct tcfg c = {0};
    setenv("TC_ADDR", "localhost", 1);
    capture_start();
    enum gf_status st = gf_config_load(defs, NDEFS, &c);
    char *log = capture_end();
    assert_int_equal(st, GF_EINVAL);
    assert_int_equal(count_lines(log, "var=TC_ADDR value='localhost' rule='host:port"), 1);
    assert_null(c.addr);
    assert_null(c.name); /* the strings already loaded were released */
    free(log);
}

static void conninfo_validation(void **state)
{
    (void)state;
    const char *good[] = {"host=localhost port=5432 dbname=gxp", "dbname = 'my db'", "",
                          "postgresql://app:pw@localhost:5432/gxp?sslmode=disable",
                          "postgres:///gxp"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct tcfg c = {0};
        setenv("TC_DB", good[i], 1);
        assert_int_equal(gf_config_load(defs, NDEFS, &c), GF_OK);
        /* "" means unset, so the default applies */
        assert_string_equal(c.db, good[i][0] ? good[i] : "host=localhost dbname=gxp");
        gf_config_free(defs, NDEFS, &c);
    }
    const char *bad[] = {"host=localhost port", "nosuchkey=1", "host='unterminated",
                         "postgresql://[::1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct tcfg c = {0};
        setenv("TC_DB", bad[i], 1);
        capture_start();
        enum gf_status st = gf_config_load(defs, NDEFS, &c);
        char *log = capture_end();
        assert_int_equal(st, GF_EINVAL);
        assert_int_equal(count_lines(log, "var=TC_DB value='****' rule='libpq conninfo: "), 1);
        assert_null(c.db);
        free(log);
    }
    /* libpq's own explanation is passed on. */
    struct tcfg c = {0};
    setenv("TC_DB", "nosuchkey=1", 1);
    capture_start();
    assert_int_equal(gf_config_load(defs, NDEFS, &c), GF_EINVAL);
    char *log = capture_end();
    assert_non_null(strstr(log, "invalid connection option 'nosuchkey'"));
    free(log);
}

static void all_errors_reported_together(void **state)
{
    (void)state;
    setenv("TC_PORT", "99999", 1);
    setenv("TC_FLAG", "perhaps", 1);
    setenv("TC_ADDR", "nohostport", 1);
    setenv("TC_DB", "host=x port", 1);
    setenv("TC_LEVEL", "loud", 1);
    setenv("TC_NAME", "fine", 1);
    static const struct gf_config_def more[] = {
        {"TC_REQ", GF_CFG_STRING, NULL, 0, 0, true, 0, "required secret"},
    };
    struct tcfg c = {0};
    char *req = NULL;
    capture_start();
    enum gf_status st1 = gf_config_load(defs, NDEFS, &c);
    enum gf_status st2 = gf_config_load(more, 1, &req);
    char *log = capture_end();
    assert_int_equal(st1, GF_EINVAL);
    assert_int_equal(st2, GF_EINVAL);
    assert_int_equal(count_lines(log, "var=TC_PORT value='99999' rule='integer in [1, 65535]'"), 1);
    assert_int_equal(count_lines(log, "var=TC_FLAG value='perhaps' rule='boolean"), 1);
    assert_int_equal(count_lines(log, "var=TC_ADDR value='nohostport'"), 1);
    assert_int_equal(count_lines(log, "var=TC_DB value='****' rule='libpq conninfo"), 1);
    assert_int_equal(count_lines(log, "var=TC_LEVEL value='loud' rule='log level"), 1);
    assert_int_equal(count_lines(log, "var=TC_REQ value=<unset>"), 1);
    assert_int_equal(count_lines(log, "var=TC_NAME"), 0);
    assert_int_equal(count_lines(log, "level=error"), 8); /* 6 variables + 2 summaries */
    assert_int_equal(count_lines(log, "config invalid_count=5"), 1);
    /* Nothing is left allocated after a failed load. */
    assert_null(c.name);
    assert_null(c.token);
    assert_null(req);
    free(log);
}

static void secret_value_is_never_logged(void **state)
{
    (void)state;
    static const struct gf_config_def d[] = {
        {"TC_TOKEN", GF_CFG_INT, NULL, 0, 10, true, 0, "secret int"},
    };
    int64_t v;
    setenv("TC_TOKEN", "123456789", 1);
    capture_start();
    assert_int_equal(gf_config_load(d, 1, &v), GF_EINVAL);
    char *log = capture_end();
    assert_null(strstr(log, "123456789"));
    assert_int_equal(count_lines(log, "var=TC_TOKEN value='****' rule='integer in [0, 10]'"), 1);
    free(log);
}

static void effective_config_logged_masked(void **state)
{
    (void)state;
    setenv("TC_NAME", "gxp", 1);
    setenv("TC_PORT", "9090", 1);
    setenv("TC_FLAG", "on", 1);
    setenv("TC_DB", "host=db port=5432 user=app password=s3cret dbname=gxp", 1);
    setenv("TC_LEVEL", "warn", 1);
    setenv("TC_TOKEN", "hunter2", 1);
    struct tcfg c = {0};
    assert_int_equal(gf_config_load(defs, NDEFS, &c), GF_OK);
    capture_start();
    gf_config_log(defs, NDEFS, &c);
    char *log = capture_end();
    assert_int_equal(count_lines(log, "level="), 1); /* one line */
    assert_non_null(strstr(log, "level=info"));
    assert_non_null(strstr(log, "msg=\"config TC_NAME=gxp TC_PORT=9090 TC_FLAG=true "
                                "TC_ADDR=0.0.0.0:8080 "
                                "TC_DB='user=app password=**** dbname=gxp host=db port=5432' "
                                "TC_LEVEL=warn TC_TOKEN=****\""));
    assert_null(strstr(log, "s3cret"));
    assert_null(strstr(log, "hunter2"));
    free(log);
    gf_config_free(defs, NDEFS, &c);

    setenv("TC_DB", "postgresql://app:s3cret@db/gxp", 1);
    assert_int_equal(gf_config_load(defs, NDEFS, &c), GF_OK);
    capture_start();
    gf_config_log(defs, NDEFS, &c);
    log = capture_end();
    assert_non_null(strstr(log, " TC_DB=postgresql://app:****@db/gxp "));
    assert_null(strstr(log, "s3cret"));
    free(log);
    gf_config_free(defs, NDEFS, &c);
}

static void check_mask(const char *in, const char *want)
{
    char *got = gf_config_mask_conninfo(in);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void mask_conninfo_forms(void **state)
{
    (void)state;
    check_mask("host=db port=5432 user=app password=s3cret dbname=gxp",
               "user=app password=**** dbname=gxp host=db port=5432");
    check_mask("host=db  dbname=gxp", "dbname=gxp host=db");
    check_mask("password='it\\'s secret' host=db", "password=**** host=db");
    check_mask("host=db application_name='my app'", "host=db application_name='my app'");
    check_mask("dbname='postgresql://u:pw@h/d'", "dbname=postgresql://u:****@h/d");
    check_mask("dbname='host=h password=pw'", "dbname='password=**** host=h'");
    check_mask("", "");
    check_mask("postgresql://app:s3cret@db:5432/gxp?sslmode=disable",
               "postgresql://app:****@db:5432/gxp?sslmode=disable");
    check_mask("postgres://app@db/gxp", "postgres://app@db/gxp");
    check_mask("postgresql://db/gxp?password=s3cret&sslmode=disable",
               "postgresql://db/gxp?password=****&sslmode=disable");
    check_mask("postgresql://:pw@db/gxp?user=app&password=x",
               "postgresql://:****@db/gxp?user=app&password=****");
    check_mask("postgresql:///gxp", "postgresql:///gxp");
    /* Unparsable: nothing of it may leak. */
    check_mask("host=db password=s3cret port", "****");
    check_mask("postgresql://app:s3cret@[::1", "****");
    char *n = gf_config_mask_conninfo(NULL);
    assert_string_equal(n, "****");
    free(n);
}

static void check_mask_url(const char *in, const char *want)
{
    char *got = gf_config_mask_url(in);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void amqp_url_validated_and_password_masked(void **state)
{
    (void)state;
    static const struct gf_config_def d[] = {
        {"TC_AMQP", GF_CFG_AMQP_URL, "amqp://guest:guest@localhost:5672/", 0, 0, false, 0,
         "broker"},
    };
    const char *good[] = {"amqp://guest:guest@localhost:5672/", "amqp://app@mq/vh", "amqp://mq",
                          "amqp://u:p%40ss@mq:5673/%2f"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char *v = NULL;
        setenv("TC_AMQP", good[i], 1);
        assert_int_equal(gf_config_load(d, 1, &v), GF_OK);
        assert_string_equal(v, good[i]);
        free(v);
    }
    const char *bad[] = {"http://mq:5672/", "amqp://u:s3cret@mq:notaport/", "mq:5672"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *v = NULL;
        setenv("TC_AMQP", bad[i], 1);
        capture_start();
        assert_int_equal(gf_config_load(d, 1, &v), GF_EINVAL);
        char *log = capture_end();
        assert_int_equal(count_lines(log, "var=TC_AMQP"), 1);
        assert_null(strstr(log, "s3cret"));
        assert_null(v);
        free(log);
    }
    setenv("TC_AMQP", "amqp://app:s3cret@mq:5672/vh", 1);
    char *v = NULL;
    assert_int_equal(gf_config_load(d, 1, &v), GF_OK);
    capture_start();
    gf_config_log(d, 1, &v);
    char *log = capture_end();
    assert_non_null(strstr(log, "TC_AMQP=amqp://app:****@mq:5672/vh"));
    assert_null(strstr(log, "s3cret"));
    free(log);
    free(v);
    check_mask_url("amqp://app:s3cret@mq:5672/vh", "amqp://app:****@mq:5672/vh");
    check_mask_url("amqp://app@mq/vh", "amqp://app@mq/vh");
    check_mask_url("amqp://mq:5672/", "amqp://mq:5672/");
    check_mask_url("amqp://a:b@c@mq/", "amqp://a:****@mq/");
}

static void grpc_target_forms(void **state)
{
    (void)state;
    static const struct gf_config_def d[] = {
        {"TC_TARGET", GF_CFG_GRPC_TARGET, "localhost:1", 0, 0, false, 0, "a gRPC target"},
    };
    const char *good[] = {"gxp:30002",
                          "127.0.0.1:30002",
                          "ipv4:127.0.0.1:1,127.0.0.1:2",
                          "dns:///gxp-svc:30002",
                          "unix:/tmp/gxp.sock",
                          "[::1]:30002"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char *v = NULL;
        setenv("TC_TARGET", good[i], 1);
        assert_int_equal(gf_config_load(d, 1, &v), GF_OK);
        assert_string_equal(v, good[i]);
        free(v);
    }
    const char *bad[] = {"gxp", "ipv4:", "dns:///a b:1", "gxp:99999", "http://gxp:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *v = NULL;
        setenv("TC_TARGET", bad[i], 1);
        capture_start();
        assert_int_equal(gf_config_load(d, 1, &v), GF_EINVAL);
        char *log = capture_end();
        assert_int_equal(count_lines(log, "var=TC_TARGET"), 1);
        assert_null(v);
        free(log);
    }
}

/* What f (a memstream or tmpfile) holds; caller frees. */
static char *stream_text(char **buf, FILE *f)
{
    assert_int_equal(fclose(f), 0);
    char *text = *buf;
    *buf = NULL;
    return text;
}

static void usage_lists_every_variable_with_its_default(void **state)
{
    (void)state;
    static const struct gf_config_def d[] = {
        {"TU_ADDR", GF_CFG_ADDR, "0.0.0.0:1", 0, 0, false, 0, "listen address"},
        {"TU_DB", GF_CFG_CONNINFO, "host=db dbname=x", 0, 0, false, 0, "a conninfo"},
        {"TU_EMPTY", GF_CFG_STRING, "", 0, 0, false, 0, "empty by default"},
        {"TU_REQ", GF_CFG_STRING, NULL, 0, 0, false, 0, "no default"},
        {"TU_PW", GF_CFG_STRING, "", 0, 0, true, 0, "a secret"},
        {"TU_SECRET_DEFAULT", GF_CFG_STRING, "hunter2", 0, 0, true, 0, "a secret with a default"},
        {"TU_ODD", GF_CFG_STRING, "a\"b\\c", 0, 0, false, 0, "quote and backslash"},
    };
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(gf_config_usage(f, "prog", d, sizeof d / sizeof d[0]), GF_OK);
    char *text = stream_text(&buf, f);
    const char *want = "usage: prog [--help] [--check-config]\n"
                       "--check-config loads the configuration as a start would, prints it"
                       " (secrets masked), exits 0 if valid, 78 if not.\n"
                       "Configuration comes from environment variables; an empty one counts as"
                       " unset. Variable, default, meaning:\n"
                       "  TU_ADDR            \"0.0.0.0:1\"         listen address\n"
                       "  TU_DB              \"host=db dbname=x\"  a conninfo\n"
                       "  TU_EMPTY           \"\"                  empty by default\n"
                       "  TU_REQ             (required)          no default\n"
                       "  TU_PW              \"\"                  a secret\n"
                       "  TU_SECRET_DEFAULT  \"****\"              a secret with a default\n"
                       "  TU_ODD             \"a\\\"b\\\\c\"           quote and backslash\n";
    assert_string_equal(text, want);
    assert_null(strstr(text, "hunter2"));
    /* Machine-readable: every variable has exactly one line "  NAME<blank>". */
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "\n  %s ", d[i].name);
        const char *hit = strstr(text, prefix);
        assert_non_null(hit);
        assert_null(strstr(hit + 1, prefix));
    }
    free(text);
}

static void print_shows_the_effective_config_masked_one_line_each(void **state)
{
    (void)state;
    setenv("TC_NAME", "gxp", 1);
    setenv("TC_DB", "host=db user=app password=s3cret dbname=gxp", 1);
    setenv("TC_TOKEN", "hunter2", 1);
    struct tcfg c = {0};
    assert_int_equal(gf_config_load(defs, NDEFS, &c), GF_OK);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(gf_config_print(f, defs, NDEFS, &c), GF_OK);
    char *text = stream_text(&buf, f);
    assert_string_equal(text, "TC_NAME=gxp\n"
                              "TC_PORT=8080\n"
                              "TC_FLAG=false\n"
                              "TC_ADDR=0.0.0.0:8080\n"
                              "TC_DB='user=app password=**** dbname=gxp host=db'\n"
                              "TC_LEVEL=info\n"
                              "TC_TOKEN=****\n");
    free(text);
    gf_config_free(defs, NDEFS, &c);
}

static void usage_and_print_report_a_failed_write(void **state)
{
    (void)state;
    FILE *f = fopen("/dev/full", "w");
    if (f == NULL)
        skip();
    struct tcfg c = {0};
    assert_int_equal(gf_config_load(defs, NDEFS, &c), GF_OK);
    assert_int_equal(gf_config_usage(f, "prog", defs, NDEFS), GF_EUNAVAILABLE);
    assert_int_equal(gf_config_print(f, defs, NDEFS, &c), GF_EUNAVAILABLE);
    fclose(f);
    gf_config_free(defs, NDEFS, &c);
}

int main(void)
{
    gf_log_init("test", GF_LOG_DEBUG);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(defaults_apply_when_unset_or_empty, reset_env),
        cmocka_unit_test_setup(environment_overrides_defaults, reset_env),
        cmocka_unit_test_setup(required_missing_is_reported, reset_env),
        cmocka_unit_test_setup(int_bounds_and_junk, reset_env),
        cmocka_unit_test_setup(bool_forms, reset_env),
        cmocka_unit_test_setup(addr_forms, reset_env),
        cmocka_unit_test_setup(conninfo_validation, reset_env),
        cmocka_unit_test_setup(all_errors_reported_together, reset_env),
        cmocka_unit_test_setup(secret_value_is_never_logged, reset_env),
        cmocka_unit_test_setup(effective_config_logged_masked, reset_env),
        cmocka_unit_test_setup(mask_conninfo_forms, reset_env),
        cmocka_unit_test_setup(amqp_url_validated_and_password_masked, reset_env),
        cmocka_unit_test_setup(grpc_target_forms, reset_env),
        cmocka_unit_test_setup(usage_lists_every_variable_with_its_default, reset_env),
        cmocka_unit_test_setup(print_shows_the_effective_config_masked_one_line_each, reset_env),
        cmocka_unit_test_setup(usage_and_print_report_a_failed_write, reset_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
