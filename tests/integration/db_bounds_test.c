/* How long a paused or cut-off client of lib's database code can hold locks, and how long it
 * waits on a dead link (issue 20, "bounded locks and waits"), measured on a real cluster:
 * - every connection of the pool and the pipeline carries keepalives, TCP_USER_TIMEOUT and
 *   idle_in_transaction_session_timeout (and a conninfo can override the TCP values);
 * - a process SIGSTOPped inside a transaction holds its row lock for about
 *   GF_DB_IDLE_IN_TX_TIMEOUT_MS, and when it wakes its COMMIT fails (nothing committed);
 * - with the link cut (iptables, packets silently dropped: run as root; skipped otherwise),
 *   the server frees the locks within the same bound, drops an idle session by its own
 *   keepalives, and the client's statement fails within GF_DB_TCP_USER_TIMEOUT_MS. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "gf/clock.h"
#include "gf/db.h"
#include "gf/log.h"
#include "harness.h"
#include "sql_helpers.h"

/* Slack over a bound for scheduling on a loaded 2-core machine. */
#define SLACK_MS 2500

static struct h_pg PG;
static char SOCK_CONNINFO[700]; /* over the Unix socket: not touched by the iptables rules */

static int setup(void **state)
{
    (void)state;
    gf_log_init("db-bounds-test", GF_LOG_ERROR);
    if (h_pg_start(&PG, "bounds", H_PG_LOGICAL) != 0)
        return -1;
    snprintf(SOCK_CONNINFO, sizeof SOCK_CONNINFO,
             "host=%s port=%d user=postgres dbname=postgres application_name=observer", PG.datadir,
             PG.port);
    PGconn *c = PQconnectdb(SOCK_CONNINFO);
    bool ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
        PGresult *r = PQexec(c, "CREATE TABLE rows (id int PRIMARY KEY, v int NOT NULL);"
                                "INSERT INTO rows SELECT g, 0 FROM generate_series(1, 10) g");
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
    } else {
        fprintf(stderr, "setup: %s", PQerrorMessage(c));
    }
    PQfinish(c);
    return ok ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    h_cleanup_all();
    return 0;
}

static struct gf_db_pool *pool_new(const char *conninfo, const char *app, int idle_in_tx_ms)
{
    struct gf_db_pool_options o = {.conninfo = conninfo,
                                   .size = 2,
                                   .acquire_timeout_ms = 5000,
                                   .statement_timeout_ms = 5000,
                                   .application_name = app,
                                   .idle_in_transaction_timeout_ms = idle_in_tx_ms};
    struct gf_db_pool *p = gf_db_pool_new(&o);
    assert_non_null(p);
    return p;
}

static int sockopt(int fd, int level, int name)
{
    int v = -1;
    socklen_t n = sizeof v;
    assert_int_equal(getsockopt(fd, level, name, &v, &n), 0);
    return v;
}

static void show(struct gf_db_conn *c, const char *setting, char *out, size_t n)
{
    PGresult *r = NULL;
    const char *p[1] = {setting};
    assert_int_equal(gf_db_exec(c, "bounds_show", "SELECT current_setting($1)", 1, p, &r), GF_OK);
    snprintf(out, n, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
}

static void every_connection_carries_keepalives_user_timeout_and_the_idle_limit(void **state)
{
    (void)state;
    char v[64];
    struct gf_db_pool *p = pool_new(PG.conninfo, "bounds-opts", 0);
    struct gf_db_conn *c = NULL;
    assert_int_equal(gf_db_acquire(p, &c), GF_OK);
    int fd = PQsocket(gf_db_pgconn(c));
    assert_int_equal(sockopt(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
    assert_int_equal(sockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE), GF_DB_KEEPALIVES_IDLE_S);
    assert_int_equal(sockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL), GF_DB_KEEPALIVES_INTERVAL_S);
    assert_int_equal(sockopt(fd, IPPROTO_TCP, TCP_KEEPCNT), GF_DB_KEEPALIVES_COUNT);
    assert_int_equal(sockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), GF_DB_TCP_USER_TIMEOUT_MS);
    show(c, "idle_in_transaction_session_timeout", v, sizeof v);
    assert_string_equal(v, "5s");
    show(c, "statement_timeout", v, sizeof v);
    assert_string_equal(v, "5s");
    /* The server side, as tests/harness/pg-cluster.sh configures every cluster. */
    show(c, "tcp_keepalives_idle", v, sizeof v);
    assert_string_equal(v, "2");
    show(c, "tcp_user_timeout", v, sizeof v); /* the socket's value, in ms */
    assert_string_equal(v, "5000");
    show(c, "wal_sender_timeout", v, sizeof v);
    assert_string_equal(v, "10s");
    show(c, "wal_receiver_timeout", v, sizeof v);
    assert_string_equal(v, "10s");
    show(c, "max_slot_wal_keep_size", v, sizeof v);
    assert_string_equal(v, "1GB");
    gf_db_release(p, c);
    gf_db_pool_free(p);

    /* A conninfo that names a TCP setting wins over lib's default; the limit can be chosen
     * per pool or left to the server (< 0). */
    char ci[800];
    snprintf(ci, sizeof ci, "%s keepalives_idle=7 tcp_user_timeout=9000", PG.conninfo);
    p = pool_new(ci, "bounds-opts", -1);
    assert_int_equal(gf_db_acquire(p, &c), GF_OK);
    fd = PQsocket(gf_db_pgconn(c));
    assert_int_equal(sockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE), 7);
    assert_int_equal(sockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), 9000);
    assert_int_equal(sockopt(fd, IPPROTO_TCP, TCP_KEEPCNT), GF_DB_KEEPALIVES_COUNT);
    show(c, "idle_in_transaction_session_timeout", v, sizeof v);
    assert_string_equal(v, "0");
    gf_db_release(p, c);
    gf_db_pool_free(p);
    p = pool_new(PG.conninfo, "bounds-opts", 12000);
    assert_int_equal(gf_db_acquire(p, &c), GF_OK);
    show(c, "idle_in_transaction_session_timeout", v, sizeof v);
    assert_string_equal(v, "12s");
    gf_db_release(p, c);
    gf_db_pool_free(p);

    /* The pipeline's connections too. */
    struct gf_db_pool_options o = {.conninfo = PG.conninfo, .size = 1, .application_name = "pl"};
    struct gf_db_pipeline *pl = gf_db_pipeline_new(&o);
    assert_non_null(pl);
    PGresult *r = NULL;
    assert_int_equal(
        gf_db_pipeline_exec(pl, "bounds_pl_show",
                            "SELECT current_setting('idle_in_transaction_session_timeout')"
                            " || ' ' || current_setting('tcp_keepalives_idle')",
                            0, NULL, &r),
        GF_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "5s 2");
    PQclear(r);
    gf_db_pipeline_free(pl);
}

/* Runs on the observer connection: blocks on row id's lock; returns how long it waited (ms). */
static int64_t update_waits_ms(PGconn *obs, int id, int v)
{
    int64_t t0 = gf_mono_ms();
    sql_exec(obs, "UPDATE rows SET v = %d WHERE id = %d", v, id);
    return gf_mono_ms() - t0;
}

static PGconn *observer(void)
{
    PGconn *obs = connect_or_fail(SOCK_CONNINFO);
    sql_exec(obs, "SET statement_timeout = '40s'");
    return obs;
}

/* The child: locks row 1 in a transaction through lib's pool, says so, then waits for the
 * word to COMMIT and reports the status it got. */
static void child_locks_then_commits(int to_parent, int from_parent)
{
    struct gf_db_pool *p = pool_new(PG.conninfo, "bounds-paused", 0);
    struct gf_db_conn *c = NULL;
    enum gf_status st = gf_db_acquire(p, &c);
    if (st == GF_OK)
        st = gf_db_exec_simple(c, "BEGIN; UPDATE rows SET v = v + 1 WHERE id = 1");
    unsigned char b = (unsigned char)st;
    if (write(to_parent, &b, 1) != 1 || st != GF_OK)
        _exit(2);
    if (read(from_parent, &b, 1) != 1)
        _exit(3);
    st = gf_db_exec_simple(c, "COMMIT");
    b = (unsigned char)st;
    if (write(to_parent, &b, 1) != 1)
        _exit(4);
    gf_db_release(p, c);
    gf_db_pool_free(p);
    _exit(0);
}

static void
a_paused_process_holds_its_locks_for_at_most_the_idle_limit_and_cannot_commit(void **state)
{
    (void)state;
    int up[2], down[2];
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(down), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(up[0]);
        close(down[1]);
        child_locks_then_commits(up[1], down[0]);
    }
    close(up[1]);
    close(down[0]);
    unsigned char b = 0xff;
    assert_int_equal(read(up[0], &b, 1), 1);
    assert_int_equal(b, GF_OK);
    /* Paused right after its UPDATE: its kernel still ACKs, only the idle limit can help. */
    int64_t paused_at = gf_mono_ms();
    assert_int_equal(kill(pid, SIGSTOP), 0);
    PGconn *obs = observer();
    int64_t waited = update_waits_ms(obs, 1, 100);
    int64_t held = gf_mono_ms() - paused_at;
    fprintf(stderr, "paused client: row lock held %lld ms after the pause (bound %d ms)\n",
            (long long)held, GF_DB_IDLE_IN_TX_TIMEOUT_MS);
    assert_true(waited > 0);
    assert_true(held >= GF_DB_IDLE_IN_TX_TIMEOUT_MS - 500);
    assert_true(held <= GF_DB_IDLE_IN_TX_TIMEOUT_MS + SLACK_MS);
    /* It wakes and commits: refused (its session is gone), and its update never happened. */
    assert_int_equal(kill(pid, SIGCONT), 0);
    b = 0;
    assert_int_equal(write(down[1], &b, 1), 1);
    assert_int_equal(read(up[0], &b, 1), 1);
    assert_int_equal(b, GF_EUNAVAILABLE);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(sql_ll(obs, "SELECT v FROM rows WHERE id = 1"), 100);
    close(up[0]);
    close(down[1]);
    PQfinish(obs);
}

/* ---- a cut link (iptables) ----------------------------------------------------------------- */

static char RULE_COMMENT[64];
static bool RULES_ON;

/* Adds (-I) or deletes (-D) this process's two DROP rules for the cluster's port, marked with
 * a comment naming this pid; packets are dropped silently (no RST), both directions. */
static int iptables_rules(const char *op)
{
    int rc = 0;
    const char *dirs[2] = {"--dport", "--sport"};
    for (int i = 0; i < 2; i++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd,
                 "iptables -w 5 %s INPUT -i lo -p tcp %s %d -m comment --comment %s -j DROP"
                 " 2>/dev/null",
                 op, dirs[i], PG.port, RULE_COMMENT);
        if (system(cmd) != 0)
            rc = -1;
    }
    return rc;
}

static void rules_off(void)
{
    if (RULES_ON) {
        RULES_ON = false;
        (void)iptables_rules("-D");
    }
}

static void on_signal(int sig)
{
    rules_off();
    signal(sig, SIG_DFL);
    raise(sig);
}

static bool can_cut_links(void)
{
    return geteuid() == 0 && system("iptables -w 5 -S INPUT >/dev/null 2>&1") == 0;
}

/* Rules are deleted on exit and on a fatal signal, whatever the test was doing. */
static void arm_rules_cleanup(void)
{
    static bool armed;
    if (armed)
        return;
    armed = true;
    snprintf(RULE_COMMENT, sizeof RULE_COMMENT, "gf-test-%d", (int)getpid());
    atexit(rules_off);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGABRT, on_signal);
}

struct stmt_thread {
    struct gf_db_conn *c;
    enum gf_status st;
    int64_t took_ms;
};

static void *run_stmt(void *arg)
{
    struct stmt_thread *t = arg;
    int64_t t0 = gf_mono_ms();
    t->st =
        gf_db_exec(t->c, "bounds_upd3", "UPDATE rows SET v = v + 1 WHERE id = 3", 0, NULL, NULL);
    t->took_ms = gf_mono_ms() - t0;
    return NULL;
}

static void a_cut_link_frees_the_locks_and_fails_the_client_within_the_bounds(void **state)
{
    (void)state;
    if (!can_cut_links()) {
        fprintf(stderr, "not root or no iptables: the partition test is skipped\n");
        skip();
    }
    arm_rules_cleanup();

    struct gf_db_pool *p = pool_new(PG.conninfo, "bounds-cut", 0);
    struct gf_db_pool *q = pool_new(PG.conninfo, "bounds-cut-idle", 0);
    struct gf_db_conn *c = NULL, *idle = NULL;
    assert_int_equal(gf_db_acquire(p, &c), GF_OK);
    assert_int_equal(gf_db_acquire(q, &idle), GF_OK);
    assert_int_equal(gf_db_exec(idle, "bounds_one", "SELECT 1", 0, NULL, NULL), GF_OK);
    assert_int_equal(gf_db_exec_simple(c, "BEGIN; UPDATE rows SET v = v + 1 WHERE id = 2"), GF_OK);
    PGconn *obs = observer();
    assert_int_equal(
        sql_ll(obs,
               "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'bounds-cut%%'"),
        2);

    int64_t cut_at = gf_mono_ms();
    RULES_ON = true;
    assert_int_equal(iptables_rules("-I"), 0);
    /* The client sends its next statement into the cut: it must fail, not hang for hours. */
    struct stmt_thread t = {.c = c};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_stmt, &t), 0);
    /* The server ends the session idle in its transaction: row 2 is free again. */
    int64_t waited = update_waits_ms(obs, 2, 200);
    int64_t lock_held = gf_mono_ms() - cut_at;
    (void)waited;
    /* The idle session (no transaction, no locks) is dropped by the server's keepalives. */
    int64_t idle_gone = -1;
    while (gf_mono_ms() - cut_at < 30000) {
        if (sql_ll(obs, "SELECT count(*) FROM pg_stat_activity"
                        " WHERE application_name = 'bounds-cut-idle'") == 0) {
            idle_gone = gf_mono_ms() - cut_at;
            break;
        }
        gf_sleep_ms(100, NULL);
    }
    pthread_join(th, NULL);
    /* The idle client's own keepalives broke its socket meanwhile: its next statement fails
     * at once instead of waiting for a reply that cannot come. */
    while (gf_mono_ms() - cut_at < GF_DB_TCP_USER_TIMEOUT_MS + SLACK_MS)
        gf_sleep_ms(100, NULL);
    int64_t t0 = gf_mono_ms();
    enum gf_status idle_st = gf_db_exec(idle, "bounds_one", "SELECT 1", 0, NULL, NULL);
    int64_t idle_fail_ms = gf_mono_ms() - t0;
    rules_off();

    fprintf(stderr,
            "cut link: row lock held %lld ms (bound %d), client statement failed after %lld ms "
            "status=%s (bound %d), idle session dropped by the server after %lld ms, idle "
            "client failed in %lld ms status=%s\n",
            (long long)lock_held, GF_DB_IDLE_IN_TX_TIMEOUT_MS, (long long)t.took_ms,
            gf_status_str(t.st), GF_DB_TCP_USER_TIMEOUT_MS, (long long)idle_gone,
            (long long)idle_fail_ms, gf_status_str(idle_st));
    assert_true(lock_held <= GF_DB_IDLE_IN_TX_TIMEOUT_MS + SLACK_MS);
    assert_int_equal(t.st, GF_EUNAVAILABLE);
    assert_true(t.took_ms <= GF_DB_TCP_USER_TIMEOUT_MS + SLACK_MS);
    assert_true(idle_gone >= 0 && idle_gone <= GF_DB_TCP_USER_TIMEOUT_MS + 2000 + SLACK_MS);
    assert_int_equal(idle_st, GF_EUNAVAILABLE);
    assert_true(idle_fail_ms < 1000);
    /* Nothing of the cut transaction committed; the pools drop both connections. */
    assert_int_equal(sql_ll(obs, "SELECT v FROM rows WHERE id = 2"), 200);
    assert_int_equal(sql_ll(obs, "SELECT v FROM rows WHERE id = 3"), 0);
    gf_db_release(p, c);
    gf_db_release(q, idle);
    struct gf_db_pool_stats s;
    gf_db_pool_stats(p, &s);
    assert_int_equal(s.open, 0);
    /* And the link back, the pool reconnects. */
    assert_int_equal(gf_db_ping(p), GF_OK);
    gf_db_pool_free(p);
    gf_db_pool_free(q);
    PQfinish(obs);
}

/* pg_stat_subscription's apply worker pid on the subscriber (0 = none). */
static long long apply_pid(PGconn *sub)
{
    return sql_ll(sub, "SELECT coalesce(max(pid), 0) FROM pg_stat_subscription"
                       " WHERE subname = 'bounds_sub' AND relid IS NULL");
}

/* The replication link (as gxp-db's subscription to backend-db) cut without a RST: the
 * publisher's walsender and the subscriber's apply worker both give up within
 * wal_sender_timeout / wal_receiver_timeout (10 s, tests/harness/pg-cluster.sh), not the
 * kernel's hours, so the subscriber reconnects as soon as the link is back. */
static void a_cut_replication_link_is_noticed_by_both_ends_within_the_wal_timeouts(void **state)
{
    (void)state;
    if (!can_cut_links()) {
        fprintf(stderr, "not root or no iptables: the partition test is skipped\n");
        skip();
    }
    arm_rules_cleanup();
    struct h_pg subpg;
    assert_int_equal(h_pg_start(&subpg, "bounds-sub", H_PG_SUBSCRIBER), 0);
    char sub_ci[700];
    snprintf(sub_ci, sizeof sub_ci, "host=%s port=%d user=postgres dbname=postgres", subpg.datadir,
             subpg.port);
    PGconn *pub = observer(), *sub = connect_or_fail(sub_ci);
    sql_exec(pub, "CREATE TABLE repl (id int PRIMARY KEY); CREATE PUBLICATION bounds_pub"
                  " FOR TABLE repl; INSERT INTO repl VALUES (1)");
    sql_exec(sub, "CREATE TABLE repl (id int PRIMARY KEY)");
    sql_exec(sub,
             "CREATE SUBSCRIPTION bounds_sub CONNECTION 'host=127.0.0.1 port=%d user=postgres"
             " dbname=postgres' PUBLICATION bounds_pub",
             PG.port);
    int64_t end = gf_mono_ms() + 20000;
    while (
        gf_mono_ms() < end &&
        (sql_ll(pub, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") != 1 ||
         sql_ll(sub, "SELECT count(*) FROM repl") != 1))
        gf_sleep_ms(100, NULL);
    assert_int_equal(sql_ll(sub, "SELECT count(*) FROM repl"), 1);
    long long worker = apply_pid(sub);
    assert_true(worker > 0);

    int64_t cut_at = gf_mono_ms();
    RULES_ON = true;
    assert_int_equal(iptables_rules("-I"), 0);
    int64_t sender_gone = -1, receiver_gone = -1;
    while (gf_mono_ms() - cut_at < 30000 && (sender_gone < 0 || receiver_gone < 0)) {
        if (sender_gone < 0 && sql_ll(pub, "SELECT count(*) FROM pg_stat_replication") == 0)
            sender_gone = gf_mono_ms() - cut_at;
        if (receiver_gone < 0 && apply_pid(sub) != worker)
            receiver_gone = gf_mono_ms() - cut_at;
        gf_sleep_ms(100, NULL);
    }
    rules_off();
    fprintf(stderr,
            "cut replication link: walsender gone after %lld ms, apply worker after %lld ms "
            "(wal_sender_timeout = wal_receiver_timeout = 10 s)\n",
            (long long)sender_gone, (long long)receiver_gone);
    assert_true(sender_gone >= 0 && sender_gone <= 10000 + SLACK_MS);
    assert_true(receiver_gone >= 0 && receiver_gone <= 10000 + SLACK_MS);
    /* The link back: the subscription streams again. */
    sql_exec(pub, "INSERT INTO repl VALUES (2)");
    end = gf_mono_ms() + 20000;
    while (gf_mono_ms() < end && sql_ll(sub, "SELECT count(*) FROM repl") != 2)
        gf_sleep_ms(100, NULL);
    assert_int_equal(sql_ll(sub, "SELECT count(*) FROM repl"), 2);
    PQfinish(pub);
    PQfinish(sub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_connection_carries_keepalives_user_timeout_and_the_idle_limit),
        cmocka_unit_test(
            a_paused_process_holds_its_locks_for_at_most_the_idle_limit_and_cannot_commit),
        cmocka_unit_test(a_cut_link_frees_the_locks_and_fails_the_client_within_the_bounds),
        cmocka_unit_test(a_cut_replication_link_is_noticed_by_both_ends_within_the_wal_timeouts),
    };
    return cmocka_run_group_tests_name("db_bounds", tests, setup, teardown);
}
