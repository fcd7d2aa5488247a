/* gf against the real system: logging in (an operator the backend makes at start), the token
 * file and its permissions, GF_TOKEN, then the seed's sequence run with the real binary
 * (GF_CLI_BIN) on a backend world with its event log, and passwords; asserting on what gf
 * prints and on its exit codes. Every gf keeps its tokens in this run's directory, never in
 * the user's ~/.config. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend_fixture.h"

/* ---- running gf --------------------------------------------------------------------------------
 */

struct run {
    int code; /* the exit code, or -1 when gf did not exit */
    char *out, *err;
};

static char *slurp(int fd)
{
    off_t n = lseek(fd, 0, SEEK_END);
    assert_true(n >= 0);
    char *s = calloc(1, (size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(pread(fd, s, (size_t)n, 0), n);
    close(fd);
    return s;
}

static int tmpfd(void)
{
    char path[] = "/tmp/gf-cli-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    return fd;
}

#define OPERATOR "operator"
#define OPERATOR_PASSWORD "operator-password-1"

/* This run's token files: TOKENS (gf's, by GF_TOKEN_FILE in this process's environment, so
 * every gf sees it) in a directory gf makes itself. */
static char dir[64], tokens[128];

/* How one gf runs: stdin's text (NULL: /dev/null, never the terminal), "K=V" (or "K" to unset)
 * for its environment, NULL-terminated (may be NULL). */
struct how {
    const char *in;
    const char *const *env;
};

static struct run gf_how(const char *url, const struct how *how, const char *const *args);

/* Runs gf with urls (NULL: the world's backend and event log) and args; stdout and stderr go
 * to files (no pipe to fill up). */
static struct run gf_at(const char *url, const char *const *args)
{
    return gf_how(url, &(struct how){0}, args);
}

static struct run gf_how(const char *url, const struct how *how, const char *const *args)
{
    char base[64], ev[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", W.http_port);
    snprintf(ev, sizeof ev, "http://127.0.0.1:%d", W.eventlog_port);
    const char *argv[24] = {GF_CLI_BIN, "--url", url != NULL ? url : base, "--eventlog-url", ev};
    int argc = 5;
    for (int i = 0; args[i] != NULL && argc < 23; i++)
        argv[argc++] = args[i];
    int out = tmpfd(), err = tmpfd(), in = tmpfd();
    if (how->in != NULL)
        assert_int_equal(pwrite(in, how->in, strlen(how->in), 0), (ssize_t)strlen(how->in));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (how->in == NULL) {
            close(in);
            in = open("/dev/null", O_RDONLY);
        }
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        unsetenv("GF_URL");
        unsetenv("GF_EVENTLOG_URL");
        for (int i = 0; how->env != NULL && how->env[i] != NULL; i++)
            if (strchr(how->env[i], '=') != NULL)
                putenv((char *)how->env[i]);
            else
                unsetenv(how->env[i]);
        execv(GF_CLI_BIN, (char *const *)argv);
        _exit(127);
    }
    close(in);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    struct run r = {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
    if (getenv("GF_CLI_TEST_VERBOSE"))
        fprintf(stderr, "gf%s%s → %d\n%s%s", argc > 5 ? " " : "", argc > 5 ? argv[5] : "", r.code,
                r.out, r.err);
    return r;
}
#define GF(...) gf_at(NULL, (const char *const[]){__VA_ARGS__, NULL})
/* gf with stdin's text and environment. */
#define GF_IN(in, env, ...)                                                                        \
    gf_how(NULL, &(struct how){in, env}, (const char *const[]){__VA_ARGS__, NULL})

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

/* An ok run: exit 0, nothing on stderr. */
static void assert_ran(const struct run *r)
{
    if (r->code != 0 || r->err[0] != '\0')
        fail_msg("gf exited %d: %s%s", r->code, r->out, r->err);
}

/* One line on stderr, nothing on stdout, the exit code given. */
static void assert_failed(const struct run *r, int code, const char *needle)
{
    if (r->code != code)
        fail_msg("gf exited %d, not %d: %s%s", r->code, code, r->out, r->err);
    assert_string_equal(r->out, "");
    assert_non_null(strstr(r->err, needle));
    assert_int_equal(strncmp(r->err, "gf: ", 4), 0);
}

/* The whitespace-separated fields of row `index` (0-based) of the table titled `title`. */
static int row(const char *out, const char *title, int index, char fields[][64], int max)
{
    char head[80];
    snprintf(head, sizeof head, "%s\n", title);
    const char *p = strstr(out, head);
    if (p != NULL && p != out && p[-1] != '\n')
        p = NULL;
    assert_non_null(p);
    p += strlen(head);
    for (int skip = 0; skip <= index; skip++) /* the header, then the rows before */
        p = strchr(p, '\n') + 1;
    const char *end = strchr(p, '\n');
    assert_non_null(end);
    int n = 0;
    while (p < end && n < max) {
        while (p < end && *p == ' ')
            p++;
        size_t len = strcspn(p, " \n");
        if (len == 0)
            break;
        snprintf(fields[n++], 64, "%.*s", (int)len, p);
        p += len;
    }
    return n;
}

/* The correlation id in "... (correlation id X)". */
static void cid_of(const char *line, char cid[37])
{
    const char *p = strstr(line, "(correlation id ");
    assert_non_null(p);
    snprintf(cid, 37, "%s", p + strlen("(correlation id "));
    assert_uuid(cid);
}

static char cid_add[37], cid_buy[37];

/* "http://127.0.0.1:<port>": the world's backend, as gf keys its login. */
static const char *base_url(void)
{
    static char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", W.http_port);
    return url;
}

static unsigned mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (unsigned)(st.st_mode & 07777);
}

/* A token file written by the test (0600), holding one login for the world's URL. */
static void write_store(const char *path, const char *name, const char *token, const char *expires)
{
    json_t *store = json_pack("{s:{s:s,s:s,s:s}}", base_url(), "name", name, "token", token,
                              "expiresAt", expires);
    assert_non_null(store);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(json_dumpfd(store, fd, 0), 0);
    close(fd);
    json_decref(store);
}

/* "GF_TOKEN_FILE=<dir>/<name>", for a gf's environment (static: one per name). */
static const char *file_env(char buf[256], const char *name)
{
    snprintf(buf, 256, "GF_TOKEN_FILE=%s/%s", dir, name);
    return buf;
}

/* ---- the tests ---------------------------------------------------------------------------------
 */

static void logging_in_keeps_a_token_only_its_owner_can_read(void **state)
{
    (void)state;
    struct run r = GF("ls");
    assert_failed(&r, 1, "(unauthenticated, HTTP 401)\n");
    assert_non_null(strstr(r.err, "gf: not logged in to http://127.0.0.1:"));
    assert_non_null(strstr(r.err, " (gf login NAME)\n"));
    run_free(&r);

    r = GF_IN("not-the-password\n", NULL, "login", OPERATOR);
    assert_failed(&r, 1, "the name or the password is wrong (invalid_credentials, HTTP 401)\n");
    assert_null(strstr(r.err, "gf login")); /* no hint: the login itself was refused */
    run_free(&r);
    r = GF_IN("", NULL, "login", OPERATOR);
    assert_failed(&r, 2, "gf: no password on stdin\n");
    run_free(&r);
    struct stat st;
    assert_int_equal(stat(tokens, &st), -1); /* nothing written for a failed login */

    r = GF_IN(OPERATOR_PASSWORD "\n", NULL, "login", OPERATOR);
    assert_ran(&r);
    assert_int_equal(strncmp(r.out, "logged in as operator (admin, until ", 36), 0);
    run_free(&r);
    assert_int_equal(mode_of(tokens), 0600);
    char gfdir[128];
    snprintf(gfdir, sizeof gfdir, "%s/gf", dir);
    assert_int_equal(mode_of(gfdir), 0700);

    json_error_t e;
    json_t *store = json_load_file(tokens, 0, &e);
    assert_non_null(store);
    assert_int_equal(json_object_size(store), 1);
    json_t *entry = json_object_get(store, base_url());
    assert_keys(entry, "name,token,expiresAt");
    assert_string_equal(jstr(entry, "name"), OPERATOR);
    assert_iso8601_ms(jstr(entry, "expiresAt"));
    const char *token = jstr(entry, "token");

    /* gf auth token: what curl and scripts send. */
    r = GF("auth", "token");
    assert_ran(&r);
    char want[4200];
    snprintf(want, sizeof want, "%s\n", token);
    assert_string_equal(r.out, want);
    run_free(&r);
    struct http_res res;
    assert_int_equal(
        http(&W, "GET", "/user", NULL, (const char *const[]){world_bearer(token), NULL}, &res),
        200);
    http_res_free(&res);

    /* localhost is the same login as 127.0.0.1. */
    char local[64];
    snprintf(local, sizeof local, "http://localhost:%d/", W.http_port);
    r = gf_at(local, (const char *const[]){"whoami", NULL});
    assert_ran(&r);
    assert_int_equal(strncmp(r.out, "operator (admin) at http://localhost:", 37), 0);
    assert_non_null(strstr(r.out, " until 20"));
    run_free(&r);
    json_decref(store);
}

static void the_seed_sequence_prints_what_the_original_showed(void **state)
{
    (void)state;
    struct run r = GF("ls");
    assert_ran(&r);
    assert_non_null(strstr(r.out, "users\n  (none)\n\nitems\n  (none)\n\nmarketplace items\n"
                                  "  (none)\n\nuser items\n  (none)\n\ngxp balances\n"));
    run_free(&r);

    r = GF("create-user", "my-name");
    assert_ran(&r);
    assert_int_equal(strncmp(r.out, "user 1 created (correlation id ", 31), 0);
    run_free(&r);
    r = GF("create-item", "my-item", "10");
    assert_ran(&r);
    assert_int_equal(strncmp(r.out, "item 1 created (correlation id ", 31), 0);
    run_free(&r);
    r = GF("create-marketplace-item", "1", "12");
    assert_ran(&r);
    assert_int_equal(strncmp(r.out, "marketplace item 1 created (correlation id ", 43), 0);
    run_free(&r);
    r = GF("user-gxp-add", "1", "100");
    assert_ran(&r);
    assert_int_equal(strncmp(r.out, "100 gxp added to user 1 (correlation id ", 40), 0);
    cid_of(r.out, cid_add);
    run_free(&r);
    r = GF("buy-marketplace-item", "1", "1");
    assert_ran(&r);
    assert_int_equal(strncmp(r.out, "user 1 bought item 1: user item 1 (correlation id ", 50), 0);
    cid_of(r.out, cid_buy);
    run_free(&r);

    assert_int_equal(wait_until_finalized(&W, cid_add, 15000), 0);
    assert_int_equal(wait_until_finalized(&W, cid_buy, 15000), 0);
    r = GF("ls");
    assert_ran(&r);
    char f[8][64];
    assert_int_equal(row(r.out, "users", 0, f, 8), 3);
    assert_string_equal(f[0], "1");
    assert_string_equal(f[1], "my-name");
    assert_int_equal(row(r.out, "items", 0, f, 8), 4);
    assert_string_equal(f[1], "my-item");
    assert_string_equal(f[2], "10");
    assert_int_equal(row(r.out, "marketplace items", 0, f, 8), 4);
    assert_string_equal(f[1], "1");
    assert_string_equal(f[2], "11"); /* stock 11 */
    assert_int_equal(row(r.out, "user items", 0, f, 8), 5);
    assert_string_equal(f[1], "1");
    assert_string_equal(f[2], "1");
    assert_string_equal(f[3], "1");
    assert_int_equal(row(r.out, "gxp balances", 0, f, 8), 3);
    assert_string_equal(f[0], "90");
    assert_string_equal(f[1], "0");
    assert_iso8601_ms(f[2]);
    /* Both transactions, by name, COMMITTED. */
    int seen = 0;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(row(r.out, "gxp transactions", i, f, 8), 6);
        assert_string_equal(f[0], "1");
        assert_string_equal(f[3], "COMMITTED");
        if (strcmp(f[4], cid_add) == 0)
            seen |= 1, assert_string_equal(f[1], "ADD"), assert_string_equal(f[2], "100");
        if (strcmp(f[4], cid_buy) == 0)
            seen |= 2, assert_string_equal(f[1], "SUBTRACT"), assert_string_equal(f[2], "10");
    }
    assert_int_equal(seen, 3);
    run_free(&r);

    r = GF("user-gxp", "1");
    assert_ran(&r);
    assert_int_equal(strncmp(r.out, "user 1: balance 90, reserved 0 (updated ", 40), 0);
    run_free(&r);
}

static void svc_info_prints_the_servers_line(void **state)
{
    (void)state;
    static const char *const names[] = {"marketplace", "user", "item", "gxp"};
    for (int i = 0; i < 4; i++) {
        char cmd[64], want[128];
        snprintf(cmd, sizeof cmd, "%s-svc-info", names[i]);
        snprintf(want, sizeof want, "/%s/svc-info endpoint serviced by backend-svc-test\n",
                 names[i]);
        struct run r = GF(cmd);
        assert_ran(&r);
        assert_string_equal(r.out, want);
        run_free(&r);
    }
}

static void json_passes_the_body_through_unchanged(void **state)
{
    (void)state;
    struct http_res res;
    assert_int_equal(http(&W, "GET", "/user", NULL, NULL, &res), 200);
    struct run r = GF("--json", "ls");
    assert_ran(&r);
    /* Five bodies, one a line; the first is GET /user's, byte for byte. */
    assert_int_equal(strncmp(r.out, res.body, res.body_len), 0);
    assert_int_equal(r.out[res.body_len], '\n');
    http_res_free(&res);
    run_free(&r);

    r = GF("--json", "user-gxp", "1");
    assert_ran(&r);
    json_error_t e;
    json_t *j = json_loads(r.out, 0, &e);
    assert_non_null(j);
    assert_keys(j, "balance,reserved,updatedAt,correlationId");
    assert_int_equal(jint(j, "balance"), 90);
    json_decref(j);
    run_free(&r);
}

static void a_refused_request_exits_1_with_the_servers_message(void **state)
{
    (void)state;
    struct run r = GF("create-user", "my-name");
    assert_failed(&r, 1, "HTTP 409)\n");
    assert_string_equal(strchr(r.err, '\n'), "\n"); /* one line */
    run_free(&r);
    r = GF("user-gxp", "99");
    assert_failed(&r, 1, "HTTP 404)\n");
    run_free(&r);
    r = GF("buy-marketplace-item", "1", "99");
    assert_failed(&r, 1, "HTTP 404)\n");
    run_free(&r);
}

static void bad_usage_exits_2_and_sends_nothing(void **state)
{
    (void)state;
    char before[4096], after[4096];
    snapshot(&W, true, before, sizeof before);
    struct run r = GF("create-item", "x");
    assert_int_equal(r.code, 2);
    assert_string_equal(r.err, "gf: create-item: missing argument <cost>\n"
                               "Try 'gf create-item --help'.\n");
    run_free(&r);
    r = GF("create-marketplace-item", "1", "-3");
    assert_int_equal(r.code, 2);
    run_free(&r);
    r = GF("frobnicate");
    assert_int_equal(r.code, 2);
    assert_string_equal(r.err, "gf: unknown command 'frobnicate'\nTry 'gf --help'.\n");
    run_free(&r);
    snapshot(&W, true, after, sizeof after);
    assert_string_equal(before, after);

    r = GF("user-gxp", "--help");
    assert_ran(&r);
    assert_int_equal(strncmp(r.out, "usage: gf [options] user-gxp <userId>\n", 38), 0);
    run_free(&r);
}

static void a_closed_port_exits_3(void **state)
{
    (void)state;
    /* A port that was free a moment ago: bound, then closed. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    struct run r = gf_at(url, (const char *const[]){"ls", NULL});
    assert_failed(&r, 3, "gf: cannot reach http://127.0.0.1:");
    run_free(&r);
}

static void events_lists_the_users_buy(void **state)
{
    (void)state;
    assert_int_equal(wait_events(&W, 1, 15000), 0);
    struct run r = GF("events", "1");
    assert_ran(&r);
    char f[12][64];
    assert_true(row(r.out, "events", 0, f, 12) >= 6);
    assert_string_equal(f[2], "BuyItemEvent");
    assert_string_equal(f[3], "1");
    assert_string_equal(f[4], cid_buy);
    run_free(&r);
    r = GF("events", "2");
    assert_ran(&r);
    assert_string_equal(r.out, "events\n  (none)\n");
    run_free(&r);
}

static void trace_shows_the_life_of_a_buy(void **state)
{
    (void)state;
    struct run r = GF("trace", cid_buy);
    assert_ran(&r);
    assert_non_null(strstr(r.out, "started   buy: user 1, item 1, cost 10\n"));
    assert_non_null(strstr(r.out, "decision  succeeded\n"));
    assert_non_null(strstr(r.out, "gxp       SUBTRACT 10 prepared\n"));
    assert_non_null(strstr(r.out, "gxp       COMMITTED\n"));
    assert_non_null(strstr(r.out, "event     BuyItemEvent stored (occurred "));
    run_free(&r);

    r = GF("trace", cid_add);
    assert_ran(&r);
    assert_non_null(strstr(r.out, "started   add_gxp: user 1, amount 100\n"));
    assert_non_null(strstr(r.out, "gxp       ADD 100 prepared\n"));
    assert_non_null(strstr(r.out, "gxp       COMMITTED\n"));
    run_free(&r);

    r = GF("trace", "0b7f6f3e-2a4c-4d0e-9f51-3c1d2b7a9e10");
    assert_failed(&r, 1, "HTTP 404)\n");
    run_free(&r);
}

static void a_token_file_others_can_read_is_refused(void **state)
{
    (void)state;
    char before[4096];
    snapshot(&W, true, before, sizeof before);
    static const unsigned modes[] = {0644, 0640, 0604, 0660};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        assert_int_equal(chmod(tokens, modes[i]), 0);
        struct run r = GF("ls");
        assert_failed(&r, 1, "gf will not use it; chmod 600 it, or remove it and log in again\n");
        assert_non_null(strstr(r.err, tokens));
        run_free(&r);
        /* Nor is it replaced by a login (the old tokens in it may be someone else's now). */
        r = GF_IN(OPERATOR_PASSWORD "\n", NULL, "login", OPERATOR);
        assert_failed(&r, 1, "gf will not use it");
        run_free(&r);
        assert_int_equal(mode_of(tokens), modes[i]);
    }
    char after[4096];
    snapshot(&W, true, after, sizeof after);
    assert_string_equal(before, after);
    assert_int_equal(chmod(tokens, 0600), 0);
    struct run r = GF("whoami");
    assert_ran(&r);
    run_free(&r);
}

static void gf_token_is_sent_instead_of_the_file(void **state)
{
    (void)state;
    char *user = world_token(&W, GF_ROLE_USER, 1, 0, 600);
    assert_non_null(user);
    char tok[4200];
    snprintf(tok, sizeof tok, "GF_TOKEN=%s", user);
    const char *const env[] = {tok, NULL};
    struct run r = GF_IN(NULL, env, "whoami");
    assert_ran(&r);
    assert_int_equal(strncmp(r.out, "user-1 (user, user 1) at http://127.0.0.1:", 42), 0);
    assert_non_null(strstr(r.out, " (GF_TOKEN)\n"));
    run_free(&r);
    r = GF_IN(NULL, env, "auth", "token");
    assert_ran(&r);
    assert_int_equal(strncmp(r.out, user, strlen(user)), 0);
    run_free(&r);
    /* The user's token, not the operator's: its own balance, no list of users. */
    r = GF_IN(NULL, env, "user-gxp", "1");
    assert_ran(&r);
    run_free(&r);
    r = GF_IN(NULL, env, "ls");
    assert_failed(&r, 1, "(forbidden, HTTP 403)\n");
    run_free(&r);
    /* The file is not even read: one others could read does not matter then. */
    assert_int_equal(chmod(tokens, 0644), 0);
    r = GF_IN(NULL, env, "user-gxp", "1");
    assert_ran(&r);
    run_free(&r);
    assert_int_equal(chmod(tokens, 0600), 0);

    snprintf(tok, sizeof tok, "GF_TOKEN=%sx", user); /* a signature the server refuses */
    r = GF_IN(NULL, env, "user-gxp", "1");
    assert_failed(&r, 1, "(invalid_token, HTTP 401)\n");
    assert_non_null(strstr(r.err, "gf: the token in GF_TOKEN of user-1 was refused "
                                  "(gf login user-1)\n"));
    run_free(&r);
    snprintf(tok, sizeof tok, "GF_TOKEN=not a token\r\nX-Evil: 1");
    r = GF_IN(NULL, env, "user-gxp", "1");
    assert_failed(&r, 1, "gf: GF_TOKEN is not a token");
    run_free(&r);
    free(user);
}

static void an_expired_token_says_when_and_how_to_log_in_again(void **state)
{
    (void)state;
    char *expired = world_token(&W, GF_ROLE_ADMIN, 1, 0, -60);
    assert_non_null(expired);
    char path[200], fenv[256];
    snprintf(path, sizeof path, "%s/expired.json", dir);
    write_store(path, OPERATOR, expired, "2020-01-01T00:00:00.000Z");
    const char *const env[] = {file_env(fenv, "expired.json"), NULL};
    struct run r = GF_IN(NULL, env, "auth", "token");
    assert_failed(&r, 1, "gf: the token expired at 20");
    assert_non_null(strstr(r.err, "Z: gf login operator\n"));
    run_free(&r);
    r = GF_IN(NULL, env, "whoami");
    assert_failed(&r, 1, "gf: the token expired at ");
    run_free(&r);
    r = GF_IN(NULL, env, "ls");
    assert_failed(&r, 1, "(token_expired, HTTP 401)\n");
    assert_non_null(strstr(r.err, "gf: the token of operator expired at "));
    assert_non_null(strstr(r.err, " (gf login operator)\n"));
    run_free(&r);

    char tok[4200];
    snprintf(tok, sizeof tok, "GF_TOKEN=%s", expired);
    const char *const env2[] = {tok, NULL};
    r = GF_IN(NULL, env2, "auth", "token");
    assert_failed(&r, 1, "gf: the token in GF_TOKEN expired at ");
    run_free(&r);
    free(expired);
}

static void a_user_made_with_a_password_logs_in_and_changes_it(void **state)
{
    (void)state;
    struct run r = GF_IN("short\n", NULL, "create-user", "pw-short", "--password-stdin");
    assert_failed(&r, 1, "HTTP 400)\n");
    run_free(&r);
    r = GF_IN("first-password-1\n", NULL, "create-user", "pw-user", "--password-stdin");
    assert_ran(&r);
    long long id = 0;
    assert_int_equal(sscanf(r.out, "user %lld created (correlation id ", &id), 1);
    run_free(&r);
    char sid[24];
    snprintf(sid, sizeof sid, "%lld", id);

    char fenv[256];
    const char *const env[] = {file_env(fenv, "user.json"), NULL};
    r = GF_IN("first-password-1\n", env, "login", "pw-user");
    assert_ran(&r);
    assert_int_equal(strncmp(r.out, "logged in as pw-user (user, until ", 34), 0);
    run_free(&r);
    r = GF_IN(NULL, env, "whoami");
    assert_ran(&r);
    char want[96];
    snprintf(want, sizeof want, "pw-user (user, user %lld) at ", id);
    assert_int_equal(strncmp(r.out, want, strlen(want)), 0);
    run_free(&r);

    /* passwd: the current password, then the new one (two lines). */
    r = GF_IN("wrong-password-0\nsecond-password-2\n", env, "passwd");
    assert_failed(&r, 1, "(wrong_password, HTTP 403)\n");
    run_free(&r);
    r = GF_IN("first-password-1\n", env, "passwd");
    assert_failed(&r, 2, "gf: no password on stdin\n");
    run_free(&r);
    r = GF_IN("first-password-1\nsecond-password-2\n", env, "passwd", "--password-stdin");
    assert_ran(&r);
    assert_string_equal(r.out, "password changed for pw-user\n");
    run_free(&r);
    r = GF_IN("first-password-1\n", env, "login", "pw-user");
    assert_failed(&r, 1, "(invalid_credentials, HTTP 401)\n");
    run_free(&r);
    r = GF_IN("second-password-2\r\n", env, "login", "pw-user");
    assert_ran(&r);
    run_free(&r);

    /* A user sets no one else's password; the operator sets anyone's. */
    r = GF_IN("other-password-9\n", env, "set-password", "1");
    assert_failed(&r, 1, "HTTP 403)\n");
    run_free(&r);
    r = GF_IN("third-password-3\n", NULL, "set-password", sid);
    assert_ran(&r);
    snprintf(want, sizeof want, "password set for user %lld\n", id);
    assert_string_equal(r.out, want);
    run_free(&r);
    r = GF_IN("third-password-3\n", env, "login", "pw-user");
    assert_ran(&r);
    run_free(&r);
}

static void logout_forgets_the_login_of_its_url_only(void **state)
{
    (void)state;
    /* A second system's login beside this one's. */
    json_error_t e;
    json_t *store = json_load_file(tokens, 0, &e);
    assert_non_null(store);
    assert_int_equal(json_object_set_new(store, "http://127.0.0.1:1",
                                         json_pack("{s:s,s:s,s:s}", "name", "x", "token", "a.b.c",
                                                   "expiresAt", "2099-01-01T00:00:00.000Z")),
                     0);
    assert_int_equal(json_dump_file(store, tokens, 0), 0);
    json_decref(store);

    struct run r = GF("logout");
    assert_ran(&r);
    char want[128];
    snprintf(want, sizeof want, "logged out of %s (was operator)\n", base_url());
    assert_string_equal(r.out, want);
    run_free(&r);
    assert_int_equal(mode_of(tokens), 0600);
    store = json_load_file(tokens, 0, &e);
    assert_non_null(store);
    assert_null(json_object_get(store, base_url()));
    assert_non_null(json_object_get(store, "http://127.0.0.1:1"));
    json_decref(store);

    r = GF("logout");
    assert_ran(&r);
    snprintf(want, sizeof want, "not logged in to %s\n", base_url());
    assert_string_equal(r.out, want);
    run_free(&r);
    r = GF("auth", "token");
    assert_failed(&r, 1, "gf: not logged in: gf login NAME\n");
    run_free(&r);
    r = GF("user-gxp", "1");
    assert_failed(&r, 1, "(gf login NAME)\n");
    run_free(&r);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/gf-cli-test-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(tokens, sizeof tokens, "%s/gf/tokens.json", dir);
    setenv("GF_TOKEN_FILE", tokens, 1);
    unsetenv("GF_TOKEN");
    static const char *const env[] = {"BACKEND_ADMIN_NAME=" OPERATOR,
                                      "BACKEND_ADMIN_PASSWORD=" OPERATOR_PASSWORD, NULL};
    return world_start(&W, &(struct world_options){.events = true, .extra_env = env});
}

static int teardown(void **state)
{
    static const char *const files[] = {"gf/tokens.json", "expired.json", "user.json"};
    char path[160];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/gf", dir);
    rmdir(path);
    rmdir(dir);
    return world_teardown(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(logging_in_keeps_a_token_only_its_owner_can_read),
        cmocka_unit_test(the_seed_sequence_prints_what_the_original_showed),
        cmocka_unit_test(svc_info_prints_the_servers_line),
        cmocka_unit_test(json_passes_the_body_through_unchanged),
        cmocka_unit_test(a_refused_request_exits_1_with_the_servers_message),
        cmocka_unit_test(bad_usage_exits_2_and_sends_nothing),
        cmocka_unit_test(a_closed_port_exits_3),
        cmocka_unit_test(events_lists_the_users_buy),
        cmocka_unit_test(trace_shows_the_life_of_a_buy),
        cmocka_unit_test(a_token_file_others_can_read_is_refused),
        cmocka_unit_test(gf_token_is_sent_instead_of_the_file),
        cmocka_unit_test(an_expired_token_says_when_and_how_to_log_in_again),
        cmocka_unit_test(a_user_made_with_a_password_logs_in_and_changes_it),
        cmocka_unit_test(logout_forgets_the_login_of_its_url_only),
    };
    return cmocka_run_group_tests_name("cli", tests, setup, teardown);
}
