/* See gxp_fixture.h. The coordinator is the harness's stand-in (tests/harness/coordinator.h):
 * a faithful miniature of the backend's ResolveTransaction on the real backend-db, so the
 * resolver is tested against real semantics. */
#include "gxp_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gf/clock.h"
#include "gf/db.h"
#include "gf/log.h"
#include "gf/uuid.h"

int world_wait_gxp(int grpc_port, int timeout_ms)
{
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", grpc_port);
    struct gf_grpc_client *c = gf_grpc_client_new(target);
    int64_t end = gf_mono_ms() + timeout_ms;
    int rc = -1;
    while (gf_mono_ms() < end) {
        Gxp__GetAllRequest req = GXP__GET_ALL_REQUEST__INIT;
        req.limit = 1;
        ProtobufCMessage *out = NULL;
        grpc_status_code code =
            gf_grpc_client_call(c, "/gxp.Gxp/GetAll", &req.base, &gxp__get_all_response__descriptor,
                                &out, 1000, NULL, 0, NULL, 0);
        if (out)
            protobuf_c_message_free_unpacked(out, NULL);
        if (code == GRPC_STATUS_OK) {
            rc = 0;
            break;
        }
        usleep(50 * 1000);
    }
    gf_grpc_client_free(c);
    return rc;
}

pid_t world_spawn_gxp(struct gxp_world *w, int grpc_port, int http_port, const char *log_name)
{
    char grpc_addr[64], http_addr[64], db_url[700], pub[700], backend_addr[64], timeout[48];
    snprintf(grpc_addr, sizeof grpc_addr, "GXP_GRPC_ADDR=127.0.0.1:%d", grpc_port);
    snprintf(http_addr, sizeof http_addr, "GXP_HTTP_ADDR=127.0.0.1:%d", http_port);
    snprintf(db_url, sizeof db_url, "GXP_DB_URL=%s", w->gxp_db.conninfo);
    snprintf(pub, sizeof pub, "GXP_PUBLISHER_CONNINFO=%s", w->backend_db.conninfo);
    snprintf(backend_addr, sizeof backend_addr, "GXP_BACKEND_ADDR=127.0.0.1:%d",
             w->coordinator_port);
    snprintf(timeout, sizeof timeout, "GXP_PENDING_TIMEOUT_MS=%d", w->pending_timeout_ms);
    const char *env[] = {grpc_addr,
                         http_addr,
                         db_url,
                         pub,
                         backend_addr,
                         timeout,
                         "GXP_RESOLVE_INTERVAL_MS=100",
                         "GXP_LOG_LEVEL=debug",
                         "GXP_EVENT_LOG=false", /* these tests have no broker */
                         "GXP_BACKEND_DEADLINE_MS=1000",
                         "GXP_SHUTDOWN_GRACE_MS=3000",
                         "GXP_GRPC_INSECURE=true", /* mutual TLS has its own test (grpc_tls) */
                         NULL};
    const char *argv[] = {GF_GXP_BIN, NULL};
    snprintf(w->gxp_log, sizeof w->gxp_log, "%s/%s", h_run_dir(), log_name);
    return h_spawn(argv, env, w->gxp_log);
}

int world_start(struct gxp_world *w, int pending_timeout_ms)
{
    memset(w, 0, sizeof *w);
    w->pending_timeout_ms = pending_timeout_ms;
    gf_log_init("gxp-test", GF_LOG_WARN);
    if (h_pg_start(&w->backend_db, "backend-db", H_PG_LOGICAL) != 0 ||
        h_pg_start(&w->gxp_db, "gxp-db", H_PG_SUBSCRIBER) != 0)
        return -1;
    w->backend = connect_or_fail(w->backend_db.conninfo);
    w->gxp = connect_or_fail(w->gxp_db.conninfo);
    sql_exec(w->backend, "%s", COORDINATOR_OUTBOX_SQL);
    w->coordinator = coordinator_start(w->backend_db.conninfo, &w->coordinator_port);
    if (w->coordinator == NULL)
        return -1;

    w->grpc_port = h_free_port();
    w->http_port = h_free_port();
    w->gxp_pid = world_spawn_gxp(w, w->grpc_port, w->http_port, "gxp.log");
    if (w->gxp_pid < 0 || world_wait_gxp(w->grpc_port, 20000) != 0) {
        fprintf(stderr, "gxp did not come up; log: %s\n", w->gxp_log);
        return -1;
    }
    /* Decisions flow only once the subscription has copied the table and is streaming. */
    int64_t end = gf_mono_ms() + 30000;
    while (gf_mono_ms() < end) {
        if (sql_ll(w->gxp,
                   "SELECT count(*) FROM pg_subscription_rel r"
                   " JOIN pg_subscription s ON s.oid = r.srsubid"
                   " WHERE s.subname = 'transaction_outbox_sub' AND r.srsubstate = 'r'") == 1)
            break;
        usleep(50 * 1000);
    }
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", w->grpc_port);
    w->client = gf_grpc_client_new(target);
    return 0;
}

int world_stop(struct gxp_world *w)
{
    int rc = 0;
    if (w->gxp_pid > 0) {
        int status = h_stop(w->gxp_pid, 10000);
        /* A clean SIGTERM shutdown exits 0; a sanitizer report (leak, UB) or a crash does
         * not, and fails the suite. */
        if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
            fprintf(stderr, "gxp did not exit cleanly: status=%d (log %s)\n", status, w->gxp_log);
            rc = -1;
        }
        w->gxp_pid = -1;
    }
    gf_grpc_client_free(w->client);
    coordinator_stop(w->coordinator);
    w->coordinator = NULL;
    if (w->backend)
        PQfinish(w->backend);
    if (w->gxp)
        PQfinish(w->gxp);
    h_cleanup_all();
    return rc;
}

grpc_status_code rpc_create_balance(struct gxp_world *w, uint32_t user)
{
    Gxp__CreateUserBalanceRequest req = GXP__CREATE_USER_BALANCE_REQUEST__INIT;
    char cid[37];
    new_cid(cid);
    req.userid = user;
    req.correlationid = cid;
    ProtobufCMessage *out = NULL;
    grpc_status_code code = gf_grpc_client_call(w->client, "/gxp.Gxp/CreateUserBalance", &req.base,
                                                &gxp__create_user_balance_response__descriptor,
                                                &out, 5000, cid, 0, NULL, 0);
    if (out) {
        assert_string_equal(((Gxp__CreateUserBalanceResponse *)out)->correlationid, cid);
        protobuf_c_message_free_unpacked(out, NULL);
    }
    return code;
}

grpc_status_code rpc_prepare(struct gxp_world *w, uint32_t user, int type, uint32_t amount,
                             const char *cid)
{
    Gxp__TransactionPrepareRequest req = GXP__TRANSACTION_PREPARE_REQUEST__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    ts.seconds = gf_wall_us() / 1000000;
    req.userid = user;
    req.type = (Gxp__TransactionType)type;
    req.amount = amount;
    req.correlationid = (char *)cid;
    req.correlationtimestamp = &ts;
    ProtobufCMessage *out = NULL;
    grpc_status_code code = gf_grpc_client_call(w->client, "/gxp.Gxp/TransactionPrepare", &req.base,
                                                &gxp__transaction_prepare_response__descriptor,
                                                &out, 5000, cid, 0, NULL, 0);
    if (out) {
        assert_string_equal(((Gxp__TransactionPrepareResponse *)out)->correlationid, cid);
        protobuf_c_message_free_unpacked(out, NULL);
    }
    return code;
}

grpc_status_code rpc_balance(struct gxp_world *w, uint32_t user, uint32_t *balance,
                             uint32_t *reserved)
{
    Gxp__GetUserBalanceRequest req = GXP__GET_USER_BALANCE_REQUEST__INIT;
    req.userid = user;
    ProtobufCMessage *out = NULL;
    grpc_status_code code = gf_grpc_client_call(w->client, "/gxp.Gxp/GetUserBalance", &req.base,
                                                &gxp__get_user_balance_response__descriptor, &out,
                                                5000, NULL, 0, NULL, 0);
    if (out) {
        Gxp__GetUserBalanceResponse *r = (Gxp__GetUserBalanceResponse *)out;
        *balance = r->balance;
        *reserved = r->reserved;
        assert_non_null(r->updatedat);
        protobuf_c_message_free_unpacked(out, NULL);
    }
    return code;
}

void decide(struct gxp_world *w, const char *cid, const char *state)
{
    sql_exec(w->backend,
             "INSERT INTO transaction_outbox (correlation_id, state) VALUES ('%s', '%s')", cid,
             state);
}

int wait_status(struct gxp_world *w, const char *cid, int status, int timeout_ms)
{
    int64_t end = gf_mono_ms() + timeout_ms;
    do {
        if (sql_ll(w->gxp,
                   "SELECT count(*) FROM gxp_transaction WHERE correlation_id = '%s'"
                   " AND status = %d",
                   cid, status) == 1)
            return 0;
        usleep(5 * 1000);
    } while (gf_mono_ms() < end);
    return -1;
}

int wait_decision(struct gxp_world *w, const char *cid, int timeout_ms)
{
    int64_t end = gf_mono_ms() + timeout_ms;
    do {
        if (sql_ll(w->gxp, "SELECT count(*) FROM decision WHERE correlation_id = '%s'", cid) == 1)
            return 0;
        usleep(5 * 1000);
    } while (gf_mono_ms() < end);
    return -1;
}

void fund(struct gxp_world *w, uint32_t user, uint32_t amount)
{
    char cid[37];
    new_cid(cid);
    grpc_status_code code = rpc_create_balance(w, user);
    assert_int_equal(code, GRPC_STATUS_OK);
    assert_int_equal(rpc_prepare(w, user, GXP__TRANSACTION_TYPE__ADD, amount, cid), GRPC_STATUS_OK);
    decide(w, cid, "succeeded");
    assert_int_equal(wait_status(w, cid, GXP__TRANSACTION_STATUS__COMMITTED, 10000), 0);
}

void check_invariants(struct gxp_world *w)
{
    /* balance = Σ committed ADD − Σ committed SUBTRACT (with what retention pruned of them:
     * balance_pruned); reserved = Σ pending SUBTRACT; incoming = Σ pending ADD;
     * 0 ≤ reserved ≤ balance. */
    long long bad = sql_ll(
        w->gxp,
        "SELECT count(*) FROM balance b LEFT JOIN LATERAL ("
        "  SELECT coalesce(sum(CASE WHEN status = 2 AND type = 0 THEN amount"
        "                           WHEN status = 2 AND type = 1 THEN -amount END), 0) AS net,"
        "         coalesce(sum(amount) FILTER (WHERE status = 0 AND type = 1), 0) AS res,"
        "         coalesce(sum(amount) FILTER (WHERE status = 0 AND type = 0), 0) AS inc"
        "    FROM gxp_transaction t WHERE t.user_id = b.user_id) s ON true"
        " LEFT JOIN balance_pruned p ON p.user_id = b.user_id"
        " WHERE b.balance <> s.net + coalesce(p.net, 0) OR b.reserved <> s.res"
        "    OR b.incoming <> s.inc OR b.reserved < 0 OR b.reserved > b.balance");
    assert_int_equal(bad, 0);
    /* COMMITTED iff the decision is succeeded, ABORTED iff failed. */
    bad = sql_ll(
        w->gxp, "SELECT count(*) FROM gxp_transaction t LEFT JOIN decision d USING (correlation_id)"
                " WHERE (t.status = 2 AND d.state IS DISTINCT FROM 'succeeded')"
                "    OR (t.status = 1 AND d.state IS DISTINCT FROM 'failed')"
                "    OR (t.status = 0 AND d.outcome = 'applied')");
    assert_int_equal(bad, 0);
    /* Every decision gxp-db received on the replica was recorded (none lost to an error). */
    bad = sql_ll(w->gxp, "SELECT count(*) FROM transaction_outbox o"
                         " LEFT JOIN decision d USING (correlation_id)"
                         " WHERE d.correlation_id IS NULL OR d.outcome LIKE 'error%%'");
    assert_int_equal(bad, 0);
}

struct gxp_world W;

int world_teardown(void **state)
{
    (void)state;
    return world_stop(&W);
}

int world_check(void **state)
{
    (void)state;
    check_invariants(&W);
    return 0;
}
