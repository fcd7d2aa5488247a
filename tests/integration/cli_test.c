/* gf against the real system: the seed's sequence run with the real binary (GF_CLI_BIN) on a
 * backend world with its event log, asserting on what gf prints and on its exit codes. */
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

/* Runs gf with urls (NULL: the world's backend and event log) and args; stdout and stderr go
 * to files (no pipe to fill up). */
static struct run gf_at(const char *url, const char *const *args)
{
    char base[64], ev[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", W.http_port);
    snprintf(ev, sizeof ev, "http://127.0.0.1:%d", W.eventlog_port);
    const char *argv[24] = {GF_CLI_BIN, "--url", url != NULL ? url : base, "--eventlog-url", ev};
    int argc = 5;
    for (int i = 0; args[i] != NULL && argc < 23; i++)
        argv[argc++] = args[i];
    int out = tmpfd(), err = tmpfd();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out, 1);
        dup2(err, 2);
        unsetenv("GF_URL");
        unsetenv("GF_EVENTLOG_URL");
        execv(GF_CLI_BIN, (char *const *)argv);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    struct run r = {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
    if (getenv("GF_CLI_TEST_VERBOSE"))
        fprintf(stderr, "gf%s%s → %d\n%s%s", argc > 5 ? " " : "", argc > 5 ? argv[5] : "", r.code,
                r.out, r.err);
    return r;
}
#define GF(...) gf_at(NULL, (const char *const[]){__VA_ARGS__, NULL})

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

/* ---- the tests ---------------------------------------------------------------------------------
 */

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

static int setup(void **state)
{
    (void)state;
    return world_start(&W, &(struct world_options){.events = true});
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_seed_sequence_prints_what_the_original_showed),
        cmocka_unit_test(svc_info_prints_the_servers_line),
        cmocka_unit_test(json_passes_the_body_through_unchanged),
        cmocka_unit_test(a_refused_request_exits_1_with_the_servers_message),
        cmocka_unit_test(bad_usage_exits_2_and_sends_nothing),
        cmocka_unit_test(a_closed_port_exits_3),
        cmocka_unit_test(events_lists_the_users_buy),
        cmocka_unit_test(trace_shows_the_life_of_a_buy),
    };
    return cmocka_run_group_tests_name("cli", tests, setup, world_teardown);
}
