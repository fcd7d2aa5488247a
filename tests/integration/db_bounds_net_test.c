/* The bounds of lib's other connections on a cut link (issue 20, "bounded locks and waits"),
 * the companion of db_bounds_test.c for gRPC and AMQP: links are cut with iptables on
 * loopback, packets silently dropped (no RST), so only keepalives and TCP_USER_TIMEOUT can tell.
 * - gRPC: an idle channel keeps its connection across the clients' keepalive pings (the
 *   server accepts them: no GOAWAY too_many_pings); once the link is cut the client drops its
 *   transport within GF_GRPC_CLIENT_KEEPALIVE_MS + GF_GRPC_KEEPALIVE_TIMEOUT_MS and the server
 *   within GF_GRPC_SERVER_KEEPALIVE_MS + GF_GRPC_KEEPALIVE_TIMEOUT_MS; the channel comes back.
 * - AMQP: a publish waiting for its confirm, and an idle connection, both fail within ~5 s
 *   (TCP_USER_TIMEOUT, keepalives) although the heartbeat is 30 s.
 * Needs root and iptables (skipped otherwise); each rule carries the comment gf-test-<pid> and
 * is deleted at the end, on failure and on exit. Only this process's own connections are cut. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend.pb-c.h"
#include "gf/amqp.h"
#include "gf/clock.h"
#include "gf/grpc.h"
#include "gf/log.h"
#include "harness.h"

#define SLACK_MS 3000
#define MAX_RULES 8

static struct h_rmq R;
static char COMMENT[64];
static char RULES[MAX_RULES][128]; /* the match part of each rule added ("" = free) */

static int iptables(const char *op, const char *match)
{
    char cmd[512];
    snprintf(
        cmd, sizeof cmd,
        "iptables -w 5 %s INPUT -i lo -p tcp %.127s -m comment --comment %.63s -j DROP 2>/dev/null",
        op, match, COMMENT);
    return system(cmd) == 0 ? 0 : -1;
}

/* Drops every packet on loopback to or from a TCP port (both directions of its connections). */
static void cut_port(int port)
{
    for (int dir = 0; dir < 2; dir++) {
        int i = 0;
        while (i < MAX_RULES && RULES[i][0])
            i++;
        assert_true(i < MAX_RULES);
        snprintf(RULES[i], sizeof RULES[i], "%s %d", dir ? "--dport" : "--sport", port);
        assert_int_equal(iptables("-I", RULES[i]), 0);
    }
}

static void heal_all(void)
{
    for (int i = 0; i < MAX_RULES; i++) {
        if (RULES[i][0]) {
            (void)iptables("-D", RULES[i]);
            RULES[i][0] = '\0';
        }
    }
}

static void on_signal(int sig)
{
    heal_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Established TCP connections on loopback matching an ss filter, e.g. "( dport = :123 )". */
static int established(const char *filter)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ss -Htn state established '%s' 2>/dev/null | wc -l", filter);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    int n = -1;
    if (fscanf(f, "%d", &n) != 1)
        n = -1;
    pclose(f);
    return n;
}

/* The local port of this process's one established connection to remote_port, or -1. */
static int my_local_port(int remote_port)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "ss -Htnp state established '( dport = :%d )' 2>/dev/null | grep 'pid=%d,'",
             remote_port, (int)getpid());
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    char line[512];
    int port = -1, n = 0;
    while (fgets(line, sizeof line, f)) {
        /* Recv-Q Send-Q Local:Port Peer:Port ... */
        char local[128];
        if (sscanf(line, "%*s %*s %127s", local) == 1) {
            char *colon = strrchr(local, ':');
            if (colon)
                port = atoi(colon + 1);
            n++;
        }
    }
    pclose(f);
    return n == 1 ? port : -1;
}

static bool skip_unless_root(void)
{
    if (geteuid() == 0 && system("iptables -w 5 -S INPUT >/dev/null 2>&1") == 0 &&
        system("ss -V >/dev/null 2>&1") == 0)
        return false;
    fprintf(stderr, "not root, or no iptables/ss: the partition test is skipped\n");
    return true;
}

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    gf_log_init("db-bounds-net-test", GF_LOG_ERROR);
    snprintf(COMMENT, sizeof COMMENT, "gf-test-%d", (int)getpid());
    atexit(heal_all);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGABRT, on_signal);
    return h_rmq_open(&R);
}

static int teardown(void **state)
{
    (void)state;
    heal_all();
    h_cleanup_all();
    return 0;
}

/* ---- gRPC ---------------------------------------------------------------------------------- */

static grpc_status_code code_of(enum gf_status st)
{
    return st == GF_OK ? GRPC_STATUS_OK : GRPC_STATUS_UNAVAILABLE;
}

static enum gf_status answer(struct gf_grpc_call *call, void *app, const ProtobufCMessage *msg,
                             ProtobufCMessage *out)
{
    (void)app;
    const Backend__ResolveTransactionRequest *req = (const Backend__ResolveTransactionRequest *)msg;
    Backend__ResolveTransactionResponse *resp = (Backend__ResolveTransactionResponse *)out;
    resp->correlationid = gf_grpc_strdup(call, req->correlationid ? req->correlationid : "");
    resp->state = gf_grpc_strdup(call, "failed");
    return resp->correlationid && resp->state ? GF_OK : GF_ENOMEM;
}

static const struct gf_grpc_method METHODS[] = {
    {"/backend.Backend/ResolveTransaction", &backend__resolve_transaction_request__descriptor,
     &backend__resolve_transaction_response__descriptor, answer},
};

static grpc_status_code call(struct gf_grpc_client *c, int deadline_ms, unsigned flags)
{
    Backend__ResolveTransactionRequest req = BACKEND__RESOLVE_TRANSACTION_REQUEST__INIT;
    req.correlationid = (char *)"00000000-0000-4000-8000-000000000000";
    ProtobufCMessage *resp = NULL;
    grpc_status_code code = gf_grpc_client_call(c, "/backend.Backend/ResolveTransaction", &req.base,
                                                &backend__resolve_transaction_response__descriptor,
                                                &resp, deadline_ms, NULL, flags, NULL, 0);
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    return code;
}

static void grpc_keepalives_are_accepted_and_drop_a_cut_transport_on_both_ends(void **state)
{
    (void)state;
    if (skip_unless_root())
        skip();
    struct gf_grpc_server_options o = {.addr = "127.0.0.1:0",
                                       .threads = 2,
                                       .methods = METHODS,
                                       .nmethods = 1,
                                       .grpc_code = code_of};
    int port = 0;
    struct gf_grpc_server *srv = gf_grpc_server_start(&o, &port);
    assert_non_null(srv);
    char target[64], to_server[64], from_server[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    snprintf(to_server, sizeof to_server, "( dport = :%d )", port);
    snprintf(from_server, sizeof from_server, "( sport = :%d )", port);
    struct gf_grpc_client *c = gf_grpc_client_new(target);
    assert_non_null(c);
    assert_int_equal(call(c, 2000, GF_GRPC_WAIT_FOR_READY), GRPC_STATUS_OK);
    int local = my_local_port(port);
    assert_true(local > 0);

    /* Idle with pings every GF_GRPC_CLIENT_KEEPALIVE_MS: a server that counted them as abuse
     * would answer GOAWAY on the third one and the client would reconnect (a new port). */
    gf_sleep_ms(3 * GF_GRPC_CLIENT_KEEPALIVE_MS + 1500, NULL);
    assert_int_equal(call(c, 2000, 0), GRPC_STATUS_OK);
    assert_int_equal(my_local_port(port), local);

    int64_t cut_at = gf_mono_ms();
    cut_port(port);
    int64_t t0 = gf_mono_ms();
    assert_int_equal(call(c, 1000, 0), GRPC_STATUS_DEADLINE_EXCEEDED);
    int64_t call_ms = gf_mono_ms() - t0;
    int64_t client_gone = -1, server_gone = -1;
    while (gf_mono_ms() - cut_at < 30000 && (client_gone < 0 || server_gone < 0)) {
        if (client_gone < 0 && established(to_server) == 0)
            client_gone = gf_mono_ms() - cut_at;
        if (server_gone < 0 && established(from_server) == 0)
            server_gone = gf_mono_ms() - cut_at;
        gf_sleep_ms(100, NULL);
    }
    heal_all();
    fprintf(stderr,
            "grpc cut: call failed after %lld ms (deadline 1000), client dropped the transport "
            "after %lld ms (bound %d), server after %lld ms (bound %d)\n",
            (long long)call_ms, (long long)client_gone,
            GF_GRPC_CLIENT_KEEPALIVE_MS + GF_GRPC_KEEPALIVE_TIMEOUT_MS, (long long)server_gone,
            GF_GRPC_SERVER_KEEPALIVE_MS + GF_GRPC_KEEPALIVE_TIMEOUT_MS);
    assert_true(client_gone >= 0 && client_gone <= GF_GRPC_CLIENT_KEEPALIVE_MS +
                                                       GF_GRPC_KEEPALIVE_TIMEOUT_MS + SLACK_MS);
    assert_true(server_gone >= 0 && server_gone <= GF_GRPC_SERVER_KEEPALIVE_MS +
                                                       GF_GRPC_KEEPALIVE_TIMEOUT_MS + SLACK_MS);
    /* The link back: the channel reconnects by itself. */
    assert_int_equal(call(c, 5000, GF_GRPC_WAIT_FOR_READY), GRPC_STATUS_OK);
    gf_grpc_client_free(c);
    gf_grpc_server_stop(srv, 1000);
}

/* ---- AMQP ---------------------------------------------------------------------------------- */

static struct gf_amqp_conn *amqp_conn(const char *name)
{
    /* A 30 s heartbeat and a 30 s rpc timeout: only the TCP bounds can be quicker. */
    struct gf_amqp_options o = {.url = R.url, .name = name, .heartbeat_s = 30, .timeout_ms = 30000};
    enum gf_status st = GF_EINTERNAL;
    struct gf_amqp_conn *c = gf_amqp_connect(&o, &st);
    assert_int_equal(st, GF_OK);
    return c;
}

static void amqp_publish_and_idle_connection_fail_within_seconds_on_a_cut_link(void **state)
{
    (void)state;
    if (skip_unless_root())
        skip();
    struct gf_amqp_conn *pub = amqp_conn("bounds-publisher");
    assert_int_equal(gf_amqp_confirm_select(pub), GF_OK);
    assert_int_equal(gf_amqp_declare_exchange(pub, "bounds.x"), GF_OK);
    int pub_port = my_local_port(R.port);
    assert_true(pub_port > 0);
    struct gf_amqp_conn *idle = amqp_conn("bounds-idle");
    /* The two connections' ports: ours is the one that is not pub's. */
    int idle_port = -1;
    {
        char cmd[256];
        snprintf(cmd, sizeof cmd,
                 "ss -Htnp state established '( dport = :%d )' 2>/dev/null | grep 'pid=%d,'"
                 " | awk '{print $3}' | sed 's/.*://'",
                 R.port, (int)getpid());
        FILE *f = popen(cmd, "r");
        assert_non_null(f);
        int p;
        while (fscanf(f, "%d", &p) == 1)
            if (p != pub_port)
                idle_port = p;
        pclose(f);
    }
    assert_true(idle_port > 0);
    assert_int_equal(gf_amqp_pump(idle, 100), GF_OK);

    /* Cut only these two connections (the broker serves other tests). */
    cut_port(pub_port);
    cut_port(idle_port);
    int64_t cut_at = gf_mono_ms();
    struct gf_amqp_message m = {.exchange = "bounds.x",
                                .routing_key = "nowhere",
                                .body = "x",
                                .len = 1,
                                .content_type = "text/plain",
                                .type = "BoundsTest",
                                .message_id = "bounds-1"};
    enum gf_status pst = gf_amqp_publish(pub, &m, 1, 30000);
    int64_t publish_ms = gf_mono_ms() - cut_at;
    enum gf_status ist = GF_OK;
    while (gf_mono_ms() - cut_at < 30000 && (ist = gf_amqp_pump(idle, 200)) == GF_OK)
        ;
    int64_t idle_ms = gf_mono_ms() - cut_at;
    heal_all();
    fprintf(stderr,
            "amqp cut: publish waiting for its confirm failed after %lld ms status=%s, idle "
            "connection after %lld ms status=%s (heartbeat 30 s; TCP bound ~5 s)\n",
            (long long)publish_ms, gf_status_str(pst), (long long)idle_ms, gf_status_str(ist));
    assert_int_not_equal(pst, GF_OK);
    assert_true(publish_ms <= 5000 + SLACK_MS);
    assert_int_equal(ist, GF_EUNAVAILABLE);
    assert_true(idle_ms <= 5000 + SLACK_MS);
    assert_false(gf_amqp_ok(pub));
    gf_amqp_close(pub);
    gf_amqp_close(idle);
    /* The link back: a new connection works. */
    pub = amqp_conn("bounds-publisher-2");
    assert_int_equal(gf_amqp_pump(pub, 100), GF_OK);
    gf_amqp_close(pub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grpc_keepalives_are_accepted_and_drop_a_cut_transport_on_both_ends),
        cmocka_unit_test(amqp_publish_and_idle_connection_fail_within_seconds_on_a_cut_link),
    };
    return cmocka_run_group_tests_name("db_bounds_net", tests, setup, teardown);
}
