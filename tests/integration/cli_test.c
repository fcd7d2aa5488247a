/* gf against the real system: logging in (an operator the backend makes at start), the token
 * file and its permissions, GF_TOKEN, then the seed's sequence run with the real binary
 * (GF_CLI_BIN) on a backend world with its event log, auctions from creation through bids to
 * settlement or cancellation, and passwords; asserting on what gf prints and on its exit codes.
 * Every gf keeps its tokens in this run's directory, never in the user's ~/.config. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
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
#include "gf/clock.h"

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

/* A server that sheds the first request (503 overloaded, Retry-After: 1) and answers the
 * next ones 200: gf must wait and send again, since a shed request changed nothing. */
struct shedder {
    int fd;
    int served;
};

static void *shedder_run(void *arg)
{
    struct shedder *sh = arg;
    for (int i = 0; i < 2; i++) {
        int c = accept(sh->fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char req[4096];
        size_t got = 0;
        while (got < sizeof req - 1) { /* a GET: the head is the whole request */
            ssize_t n = read(c, req + got, sizeof req - 1 - got);
            if (n <= 0)
                break;
            got += (size_t)n;
            req[got] = '\0';
            if (strstr(req, "\r\n\r\n") != NULL)
                break;
        }
        static const char shed[] =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            "Retry-After: 1\r\nConnection: close\r\nContent-Length: 64\r\n\r\n"
            "{\"message\":\"overloaded, retry later\",\"error\":\"overloaded\",\"x\":1}";
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 "Connection: close\r\nContent-Length: 11\r\n\r\n{\"ok\":true}";
        const char *answer = i == 0 ? shed : ok;
        size_t len = i == 0 ? sizeof shed - 1 : sizeof ok - 1;
        if (write(c, answer, len) != (ssize_t)len)
            fprintf(stderr, "shedder: short write\n");
        close(c);
        sh->served++;
    }
    return NULL;
}

static void a_shed_request_is_sent_again_after_retry_after(void **state)
{
    (void)state;
    struct shedder sh = {.fd = socket(AF_INET, SOCK_STREAM, 0)};
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(sh.fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(sh.fd, 4), 0);
    assert_int_equal(getsockname(sh.fd, (struct sockaddr *)&a, &len), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, shedder_run, &sh), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    int64_t t0 = gf_mono_ms();
    struct run r = gf_at(url, (const char *const[]){"--json", "user-svc-info", NULL});
    int64_t took = gf_mono_ms() - t0;
    pthread_join(th, NULL);
    close(sh.fd);
    if (r.code != 0 || strstr(r.err, "overloaded; sending again in 1 s") == NULL)
        fail_msg("gf exited %d: %s%s", r.code, r.out, r.err);
    assert_int_equal(sh.served, 2);
    assert_string_equal(r.out, "{\"ok\":true}\n");
    assert_true(took >= 1000); /* it waited the Retry-After */
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

/* ---- auctions ---------------------------------------------------------------------------- */

/* The ids of the auction tests: the seller, the two bidders, the seller's user item (two units),
 * the auction that is bid on and settles, the one its seller cancels. */
static long long seller, bidder_a, bidder_b, seller_item, auction_bid_on, auction_cancelled;

/* The number in "<prefix><number>" at the start of out (asserted). */
static long long number_after(const char *out, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(out, prefix, n) != 0)
        fail_msg("'%s' does not start with '%s'", out, prefix);
    return strtoll(out + n, NULL, 10);
}

/* n as an argument of gf (one of eight buffers, reused round-robin). */
static const char *arg(long long n)
{
    static char bufs[8][24];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 24, "%lld", n);
    return b;
}

/* "GF_TOKEN=<a token of user id>", for a gf's environment (one buffer per slot). */
static const char *user_token_env(char buf[4200], long long id)
{
    char *t = world_token(&W, GF_ROLE_USER, id, 0, 600);
    assert_non_null(t);
    snprintf(buf, 4200, "GF_TOKEN=%s", t);
    free(t);
    return buf;
}

/* The fields of the row of kind `kind` in gf auction's "saga steps" table; 0 when none. */
static int step_row(const char *out, const char *kind, char f[][64], int max)
{
    const char *p = strstr(out, "\nsaga steps\n");
    assert_non_null(p);
    p = strchr(p + 1, '\n') + 1;
    p = strchr(p, '\n') + 1; /* past the header */
    for (; strncmp(p, "  ", 2) == 0; p = strchr(p, '\n') + 1) {
        const char *end = strchr(p, '\n');
        assert_non_null(end);
        int n = 0;
        for (const char *q = p; q < end && n < max;) {
            while (q < end && *q == ' ')
                q++;
            size_t len = strcspn(q, " \n");
            if (len == 0)
                break;
            snprintf(f[n++], 64, "%.*s", (int)len, q);
            q += len;
        }
        if (n >= 2 && strcmp(f[1], kind) == 0)
            return n;
    }
    return 0;
}

/* gf auction ID until its step of kind `kind` is in state `state` (kind NULL: until its output
 * holds `state`): the last output, asserted to. */
static struct run auction_until(long long id, const char *kind, const char *state, int timeout_ms)
{
    struct run r = {0};
    char f[12][64];
    for (int waited = 0;; waited += 200) {
        r = GF("auction", arg(id));
        assert_ran(&r);
        bool there = kind != NULL ? step_row(r.out, kind, f, 12) >= 3 && strcmp(f[2], state) == 0
                                  : strstr(r.out, state) != NULL;
        if (there)
            return r;
        if (waited >= timeout_ms)
            fail_msg("gf auction %lld: no %s %s after %d ms:\n%s", id, kind != NULL ? kind : "",
                     state, timeout_ms, r.out);
        run_free(&r);
        usleep(200 * 1000);
    }
}

static void auction_arguments_are_checked_before_anything_is_sent(void **state)
{
    (void)state;
    char before[4096], after[4096];
    snapshot(&W, true, before, sizeof before);
    static const struct {
        const char *args[7];
        const char *err;
    } bad[] = {
        {{"auction-create", "1", "1", "10", "4", NULL},
         "gf: auction-create: durationSeconds must be an integer from 5 to 604800 (7 days), not "
         "'4'\nTry 'gf auction-create --help'.\n"},
        {{"auction-create", "1", "1", "10", "604801", NULL},
         "gf: auction-create: durationSeconds must be an integer from 5 to 604800 (7 days), not "
         "'604801'\n"},
        {{"auction-create", "1", "1", "0", "60", NULL},
         "gf: auction-create: minBid must be an integer from 1 to 2147483647, not '0'\n"},
        {{"auction-create", "1", "1", "10", "60", "7", NULL}, "gf: auction-create: too many "},
        {{"auction-bid", "1", NULL}, "gf: auction-bid: missing argument <amount>\n"},
        {{"auction-bid", "x", "1", "5", NULL},
         "gf: auction-bid: auctionId must be an integer from 1 to 2147483647, not 'x'\n"},
        {{"auction-cancel", NULL}, "gf: auction-cancel: missing argument <auctionId>\n"},
        {{"auction", NULL}, "gf: auction: missing argument <auctionId>\n"},
        {{"auction", "0", NULL}, "gf: auction: auctionId must be an integer from 1 to "},
        {{"auctions", "--status", "closed", NULL},
         "gf: auctions: --status must be open, settled or cancelled, not 'closed'\n"
         "Try 'gf auctions --help'.\n"},
        {{"auctions", "--limit", "0", NULL},
         "gf: auctions: --limit must be an integer from 1 to 2147483647, not '0'\n"},
        {{"auctions", "--after", NULL}, "gf: auctions: option --after needs a value\n"},
        {{"auctions", "7", NULL}, "gf: auctions: too many arguments\n"},
        /* Left out, the userId is the logged-in user's own; the operator is no user. */
        {{"auction-bid", "1", "5", NULL},
         "gf: auction-bid: missing argument <userId> (logged in as an admin, not as a user)\n"
         "Try 'gf auction-bid --help'.\n"},
        {{"auction-cancel", "1", NULL}, "gf: auction-cancel: missing argument <userId> ("},
        {{"auction-create", "1", "10", "60", NULL},
         "gf: auction-create: missing argument <userId> ("},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct run r = gf_at(NULL, bad[i].args);
        if (r.code != 2 || r.out[0] != '\0' || strncmp(r.err, bad[i].err, strlen(bad[i].err)) != 0)
            fail_msg("gf %s ...: exited %d (want 2), '%s%s', want '%s'", bad[i].args[0], r.code,
                     r.out, r.err, bad[i].err);
        run_free(&r);
    }
    snapshot(&W, true, after, sizeof after);
    assert_string_equal(before, after);

    struct run r = GF("auction-bid", "--help");
    assert_ran(&r);
    assert_int_equal(
        strncmp(r.out, "usage: gf [options] auction-bid <auctionId> [userId] <amount>\n", 62), 0);
    assert_non_null(strstr(r.out, "(optional; without it: yours, when gf is logged in as a user)"));
    run_free(&r);
    r = GF("--help");
    assert_ran(&r);
    assert_non_null(strstr(r.out, "  auctions [--status S] [--limit N] [--after ID]\n"));
    assert_non_null(strstr(r.out, "  auction <auctionId>  "));
    run_free(&r);
}

static void an_auction_with_two_bidders_refunds_the_outbid_and_settles(void **state)
{
    (void)state;
    /* The seller with two units of item 1, two bidders with 100 GXP each. */
    struct run r = GF("create-user", "auction-seller");
    assert_ran(&r);
    seller = number_after(r.out, "user ");
    run_free(&r);
    r = GF("create-user", "bidder-a");
    assert_ran(&r);
    bidder_a = number_after(r.out, "user ");
    run_free(&r);
    r = GF("create-user", "bidder-b");
    assert_ran(&r);
    bidder_b = number_after(r.out, "user ");
    run_free(&r);
    r = GF("create-user-item", arg(seller), "1", "2");
    assert_ran(&r);
    seller_item = number_after(r.out, "user item ");
    run_free(&r);
    long long bidders[2] = {bidder_a, bidder_b};
    for (int i = 0; i < 2; i++) {
        char cid[37];
        r = GF("user-gxp-add", arg(bidders[i]), "100");
        assert_ran(&r);
        cid_of(r.out, cid);
        run_free(&r);
        assert_int_equal(wait_until_finalized(&W, cid, 15000), 0);
    }

    /* 5 s: what needs the auction open comes first. */
    r = GF("auction-create", arg(seller), arg(seller_item), "10", "5");
    assert_ran(&r);
    auction_bid_on = number_after(r.out, "auction ");
    assert_non_null(strstr(r.out, " created, ends at 20"));
    char cid_auction[37];
    cid_of(r.out, cid_auction);
    run_free(&r);
    char id[24];
    snprintf(id, sizeof id, "%lld", auction_bid_on);

    r = GF("auction-bid", id, arg(bidder_a), "20");
    assert_ran(&r);
    char want[160];
    snprintf(want, sizeof want, "user %lld bid 20 on auction %lld: bid ", bidder_a, auction_bid_on);
    long long bid_a = number_after(r.out, want);
    char cid_bid_a[37];
    cid_of(r.out, cid_bid_a);
    run_free(&r);

    r = GF("auction-bid", id, arg(seller), "50");
    assert_failed(&r, 1, "(seller_cannot_bid, HTTP 409)\n");
    run_free(&r);
    r = GF("auction-bid", id, arg(bidder_b), "20");
    assert_failed(&r, 1, "(bid_too_low, HTTP 409)\n");
    run_free(&r);

    /* Bidder B with its own login bids for itself: no userId given. */
    char tok[4200];
    const char *const env_b[] = {user_token_env(tok, bidder_b), NULL};
    r = GF_IN(NULL, env_b, "auction-bid", id, "30");
    assert_ran(&r);
    snprintf(want, sizeof want, "user %lld bid 30 on auction %lld: bid ", bidder_b, auction_bid_on);
    long long bid_b = number_after(r.out, want);
    run_free(&r);

    r = GF("auction-cancel", id, arg(seller));
    assert_failed(&r, 1, "(auction_has_bids, HTTP 409)\n");
    assert_string_equal(strchr(r.err, '\n'), "\n"); /* one line */
    run_free(&r);

    r = GF("auctions", "--status", "open");
    assert_ran(&r);
    char f[12][64];
    assert_int_equal(row(r.out, "auctions", 0, f, 12), 8);
    assert_string_equal(f[0], id);
    assert_string_equal(f[1], arg(seller));
    assert_string_equal(f[2], "1");  /* the item */
    assert_string_equal(f[3], "10"); /* min bid */
    assert_string_equal(f[4], "30"); /* leading bid */
    assert_string_equal(f[5], arg(bidder_b));
    assert_string_equal(f[6], "open");
    assert_iso8601_ms(f[7]);
    run_free(&r);

    /* The outbid bid's refund: due at once, run by the saga. */
    r = auction_until(auction_bid_on, "refund", "done", 10000);
    run_free(&r);
    r = GF("auction", id);
    assert_ran(&r);
    snprintf(want, sizeof want, "auction %lld (correlation id %s)\n", auction_bid_on, cid_auction);
    assert_int_equal(strncmp(r.out, want, strlen(want)), 0);
    snprintf(want, sizeof want, "  seller    user %lld, user item %lld (item 1)\n", seller,
             seller_item);
    assert_non_null(strstr(r.out, want));
    assert_non_null(strstr(r.out, "  min bid   10\n"));
    snprintf(want, sizeof want, "  leading   bid %lld: 30 by user %lld\n", bid_b, bidder_b);
    assert_non_null(strstr(r.out, want));
    /* The bids, the first outbid by the second. */
    assert_int_equal(row(r.out, "bids", 0, f, 12), 6);
    assert_string_equal(f[0], arg(bid_a));
    assert_string_equal(f[1], arg(bidder_a));
    assert_string_equal(f[2], "20");
    assert_string_equal(f[3], arg(bid_b));
    assert_string_equal(f[5], cid_bid_a);
    assert_int_equal(row(r.out, "bids", 1, f, 12), 6);
    assert_string_equal(f[0], arg(bid_b));
    assert_string_equal(f[3], "-");
    /* The steps so far. */
    assert_int_equal(step_row(r.out, "escrow_item", f, 12), 8);
    assert_string_equal(f[2], "done");
    assert_string_equal(f[3], arg(seller));
    assert_int_equal(step_row(r.out, "refund", f, 12), 8);
    assert_int_equal(f[0][0], '+');
    assert_string_equal(f[3], arg(bidder_a));
    assert_string_equal(f[4], "20");
    assert_uuid(f[7]);
    run_free(&r);

    /* The settlement at the end: the unit to B, the refund and payout done, nothing pending. */
    r = auction_until(auction_bid_on, NULL, "\nsaga complete: ", 20000);
    assert_non_null(strstr(r.out, "  status    settled\n"));
    assert_non_null(strstr(r.out, "  closed    20"));
    assert_non_null(strstr(r.out, "  result    the unit went to user item "));
    assert_non_null(strstr(r.out, "\nsaga complete: 7 steps, none pending\n"));
    static const char *const kinds[] = {"escrow_item", "bid",     "refund",
                                        "settle",      "deliver", "payout"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        assert_int_equal(step_row(r.out, kinds[i], f, 12), 8);
        assert_string_equal(f[2], "done");
        assert_int_equal(f[0][0], '+');
        assert_non_null(strchr(f[6], 's')); /* how late: a time */
    }
    assert_int_equal(step_row(r.out, "refund", f, 12), 8);
    assert_string_equal(f[4], "20");
    assert_int_equal(step_row(r.out, "deliver", f, 12), 8);
    assert_string_equal(f[3], arg(bidder_b));
    assert_int_equal(step_row(r.out, "payout", f, 12), 8);
    assert_string_equal(f[3], arg(seller));
    assert_string_equal(f[4], "30");
    assert_uuid(f[7]);
    /* In the order they were due: the settlement and its steps after the bids and the refund. */
    assert_true(strstr(r.out, "  settle ") > strstr(r.out, "  refund "));
    assert_true(strstr(r.out, "  deliver ") > strstr(r.out, "  settle "));
    assert_true(strstr(r.out, "  payout ") > strstr(r.out, "  deliver "));
    run_free(&r);

    assert_int_equal(wait_no_pending(&W, 15000), 0);
    snprintf(want, sizeof want, "user %lld: balance 100, reserved 0 ", bidder_a);
    r = GF("user-gxp", arg(bidder_a));
    assert_ran(&r);
    assert_int_equal(strncmp(r.out, want, strlen(want)), 0);
    run_free(&r);
    snprintf(want, sizeof want, "user %lld: balance 70, reserved 0 ", bidder_b);
    r = GF("user-gxp", arg(bidder_b));
    assert_ran(&r);
    assert_int_equal(strncmp(r.out, want, strlen(want)), 0);
    run_free(&r);
    snprintf(want, sizeof want, "user %lld: balance 30, reserved 0 ", seller);
    r = GF("user-gxp", arg(seller));
    assert_ran(&r);
    assert_int_equal(strncmp(r.out, want, strlen(want)), 0);
    run_free(&r);

    r = GF("auctions", "--status", "settled");
    assert_ran(&r);
    assert_int_equal(row(r.out, "auctions", 0, f, 12), 8);
    assert_string_equal(f[0], id);
    assert_string_equal(f[6], "settled");
    run_free(&r);
    r = GF("auctions", "--status", "open");
    assert_ran(&r);
    assert_string_equal(r.out, "auctions\n  (none)\n");
    run_free(&r);

    /* --json: the body as the server sent it. */
    r = GF("--json", "auction", id);
    assert_ran(&r);
    json_error_t e;
    json_t *j = json_loads(r.out, 0, &e);
    assert_non_null(j);
    assert_int_equal(jint(j, "id"), auction_bid_on);
    assert_string_equal(jstr(j, "status"), "settled");
    assert_int_equal(json_array_size(jarr(j, "bids")), 2);
    assert_int_equal(json_array_size(jarr(j, "steps")), 7);
    json_decref(j);
    run_free(&r);

    r = GF("auction", "999999");
    assert_failed(&r, 1, "(auction_not_found, HTTP 404)\n");
    run_free(&r);
}

static void a_seller_cancels_its_own_auction_before_any_bid(void **state)
{
    (void)state;
    char tok[4200], tok_a[4200];
    const char *const env[] = {user_token_env(tok, seller), NULL};
    const char *const env_a[] = {user_token_env(tok_a, bidder_a), NULL};
    /* The seller's own login: no userId given. */
    struct run r = GF_IN(NULL, env, "auction-create", arg(seller_item), "10", "3600");
    assert_ran(&r);
    auction_cancelled = number_after(r.out, "auction ");
    run_free(&r);
    char id[24];
    snprintf(id, sizeof id, "%lld", auction_cancelled);

    r = GF_IN(NULL, env_a, "auction-cancel", id);
    assert_failed(&r, 1, "(not_seller, HTTP 403)\n");
    run_free(&r);
    r = GF_IN(NULL, env_a, "auction-cancel", id, arg(seller)); /* for another user */
    assert_failed(&r, 1, "HTTP 403)\n");
    run_free(&r);

    r = GF_IN(NULL, env, "auction-cancel", id);
    assert_ran(&r);
    char want[96];
    snprintf(want, sizeof want, "auction %lld cancelled (correlation id ", auction_cancelled);
    assert_int_equal(strncmp(r.out, want, strlen(want)), 0);
    run_free(&r);
    r = GF_IN(NULL, env, "auction-cancel", id);
    assert_failed(&r, 1, "(auction_closed, HTTP 409)\n");
    run_free(&r);
    r = GF_IN(NULL, env_a, "auction-bid", id, "40");
    assert_failed(&r, 1, "(auction_closed, HTTP 409)\n");
    run_free(&r);

    r = GF("auction", id);
    assert_ran(&r);
    assert_non_null(strstr(r.out, "  status    cancelled\n"));
    assert_non_null(strstr(r.out, "  leading   no bid\n"));
    assert_non_null(strstr(r.out, "\nbids\n  (none)\n"));
    snprintf(want, sizeof want, "  result    the unit went to user item %lld\n", seller_item);
    assert_non_null(strstr(r.out, want));
    char f[12][64];
    assert_int_equal(step_row(r.out, "settle", f, 12), 8);
    assert_string_equal(f[2], "skipped");
    assert_string_equal(f[6], "-"); /* it did not run: not late */
    assert_int_equal(step_row(r.out, "cancel", f, 12), 8);
    assert_string_equal(f[2], "done");
    assert_int_equal(step_row(r.out, "return_item", f, 12), 8);
    assert_string_equal(f[3], arg(seller));
    assert_non_null(strstr(r.out, "\nsaga complete: 4 steps, none pending\n"));
    run_free(&r);

    /* A page at a time: the first auction, then the one after it. */
    r = GF("auctions", "--limit", "1");
    assert_ran(&r);
    assert_int_equal(row(r.out, "auctions", 0, f, 12), 8);
    assert_string_equal(f[0], arg(auction_bid_on));
    snprintf(want, sizeof want, "\n(a full page; the next: gf auctions --limit 1 --after %lld)\n",
             auction_bid_on);
    assert_non_null(strstr(r.out, want));
    run_free(&r);
    r = GF("auctions", "--limit=1", "--after", arg(auction_bid_on));
    assert_ran(&r);
    assert_int_equal(row(r.out, "auctions", 0, f, 12), 8);
    assert_string_equal(f[0], id);
    assert_string_equal(f[4], "-"); /* no leading bid */
    assert_string_equal(f[5], "-");
    assert_string_equal(f[6], "cancelled");
    run_free(&r);
    r = GF("auctions", "--status=cancelled");
    assert_ran(&r);
    assert_int_equal(row(r.out, "auctions", 0, f, 12), 8);
    assert_string_equal(f[0], id);
    assert_null(strstr(r.out, "(a full page"));
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
        cmocka_unit_test(a_shed_request_is_sent_again_after_retry_after),
        cmocka_unit_test(events_lists_the_users_buy),
        cmocka_unit_test(trace_shows_the_life_of_a_buy),
        cmocka_unit_test(auction_arguments_are_checked_before_anything_is_sent),
        cmocka_unit_test(an_auction_with_two_bidders_refunds_the_outbid_and_settles),
        cmocka_unit_test(a_seller_cancels_its_own_auction_before_any_bid),
        cmocka_unit_test(a_token_file_others_can_read_is_refused),
        cmocka_unit_test(gf_token_is_sent_instead_of_the_file),
        cmocka_unit_test(an_expired_token_says_when_and_how_to_log_in_again),
        cmocka_unit_test(a_user_made_with_a_password_logs_in_and_changes_it),
        cmocka_unit_test(logout_forgets_the_login_of_its_url_only),
    };
    return cmocka_run_group_tests_name("cli", tests, setup, teardown);
}
