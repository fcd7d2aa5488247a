/* gxp's four RPCs against a real gxp process and a real gxp-db: success and error codes,
 * idempotency, concurrency of reservations, hostile payloads. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gxp_fixture.h"

static uint32_t next_user = 1000;

static int setup(void **state)
{
    (void)state;
    return world_start(&W, 60000);
}

static long long tx_count(void)
{
    return sql_ll(W.gxp, "SELECT count(*) FROM gxp_transaction");
}

static void create_user_balance_is_idempotent_and_starts_at_zero(void **state)
{
    (void)state;
    uint32_t u = next_user++, b = 99, r = 99;
    assert_int_equal(rpc_create_balance(&W, u), GRPC_STATUS_OK);
    assert_int_equal(rpc_create_balance(&W, u), GRPC_STATUS_OK);
    assert_int_equal(rpc_balance(&W, u, &b, &r), GRPC_STATUS_OK);
    assert_int_equal(b, 0);
    assert_int_equal(r, 0);
    assert_int_equal(sql_ll(W.gxp, "SELECT count(*) FROM balance WHERE user_id = %u", u), 1);
}

static void get_user_balance_of_unknown_user_is_not_found(void **state)
{
    (void)state;
    uint32_t b, r;
    assert_int_equal(rpc_balance(&W, 4000000000u, &b, &r), GRPC_STATUS_NOT_FOUND);
}

static void invalid_requests_get_invalid_argument_and_change_nothing(void **state)
{
    (void)state;
    uint32_t u = next_user++;
    char cid[37];
    new_cid(cid);
    assert_int_equal(rpc_create_balance(&W, u), GRPC_STATUS_OK);
    long long before = tx_count();
    assert_int_equal(rpc_create_balance(&W, 0), GRPC_STATUS_INVALID_ARGUMENT);
    assert_int_equal(rpc_prepare(&W, 0, 0, 5, cid), GRPC_STATUS_INVALID_ARGUMENT);
    assert_int_equal(rpc_prepare(&W, u, 0, 0, cid), GRPC_STATUS_INVALID_ARGUMENT);
    assert_int_equal(rpc_prepare(&W, u, 7, 5, cid), GRPC_STATUS_INVALID_ARGUMENT);
    assert_int_equal(rpc_prepare(&W, u, -1, 5, cid), GRPC_STATUS_INVALID_ARGUMENT);
    assert_int_equal(rpc_prepare(&W, u, 0, 5, "not-a-uuid"), GRPC_STATUS_INVALID_ARGUMENT);
    assert_int_equal(rpc_prepare(&W, u, 0, 5, ""), GRPC_STATUS_INVALID_ARGUMENT);
    assert_int_equal(rpc_prepare(&W, u, 0, 5, "'; DROP TABLE balance; --"),
                     GRPC_STATUS_INVALID_ARGUMENT);

    /* A timestamp PostgreSQL cannot hold, and negative nanos. */
    Gxp__TransactionPrepareRequest req = GXP__TRANSACTION_PREPARE_REQUEST__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    req.userid = u;
    req.amount = 5;
    req.correlationid = cid;
    req.correlationtimestamp = &ts;
    int64_t secs[] = {INT64_MAX, INT64_MIN, 0};
    int32_t nanos[] = {0, 0, -1};
    for (int i = 0; i < 3; i++) {
        ts.seconds = secs[i];
        ts.nanos = nanos[i];
        ProtobufCMessage *out = NULL;
        char details[256];
        grpc_status_code code =
            gf_grpc_client_call(W.client, "/gxp.Gxp/TransactionPrepare", &req.base,
                                &gxp__transaction_prepare_response__descriptor, &out, 5000, NULL, 0,
                                details, sizeof details);
        assert_int_equal(code, GRPC_STATUS_INVALID_ARGUMENT);
        assert_non_null(strstr(details, "correlationTimestamp"));
    }
    assert_int_equal(tx_count(), before);
    uint32_t b, r;
    assert_int_equal(rpc_balance(&W, u, &b, &r), GRPC_STATUS_OK);
    assert_int_equal(b + r, 0);
}

static void prepare_for_unknown_user_is_not_found(void **state)
{
    (void)state;
    char cid[37];
    new_cid(cid);
    assert_int_equal(rpc_prepare(&W, 3999999999u, 1, 5, cid), GRPC_STATUS_NOT_FOUND);
    assert_int_equal(
        sql_ll(W.gxp, "SELECT count(*) FROM gxp_transaction WHERE correlation_id = '%s'", cid), 0);
}

static void subtract_beyond_available_is_failed_precondition(void **state)
{
    (void)state;
    uint32_t u = next_user++, b, r;
    char c1[37], c2[37], c3[37];
    new_cid(c1), new_cid(c2), new_cid(c3);
    fund(&W, u, 100);
    assert_int_equal(rpc_prepare(&W, u, 1, 101, c1), GRPC_STATUS_FAILED_PRECONDITION);
    assert_int_equal(rpc_prepare(&W, u, 1, 60, c2), GRPC_STATUS_OK);
    /* 40 left available: 41 must be refused even though balance is 100. */
    assert_int_equal(rpc_prepare(&W, u, 1, 41, c3), GRPC_STATUS_FAILED_PRECONDITION);
    assert_int_equal(rpc_balance(&W, u, &b, &r), GRPC_STATUS_OK);
    assert_int_equal(b, 100);
    assert_int_equal(r, 60);
    decide(&W, c2, "failed");
    assert_int_equal(wait_status(&W, c2, 1, 10000), 0);
}

static void prepare_is_idempotent_per_correlation_id(void **state)
{
    (void)state;
    uint32_t u = next_user++, b, r;
    char cid[37];
    new_cid(cid);
    fund(&W, u, 50);
    assert_int_equal(rpc_prepare(&W, u, 1, 20, cid), GRPC_STATUS_OK);
    assert_int_equal(rpc_prepare(&W, u, 1, 20, cid), GRPC_STATUS_OK);
    assert_int_equal(rpc_balance(&W, u, &b, &r), GRPC_STATUS_OK);
    assert_int_equal(r, 20);
    /* The same id with other arguments is refused and reserves nothing. */
    assert_int_equal(rpc_prepare(&W, u, 1, 21, cid), GRPC_STATUS_ALREADY_EXISTS);
    assert_int_equal(rpc_prepare(&W, u, 0, 20, cid), GRPC_STATUS_ALREADY_EXISTS);
    assert_int_equal(rpc_balance(&W, u, &b, &r), GRPC_STATUS_OK);
    assert_int_equal(r, 20);
    assert_int_equal(
        sql_ll(W.gxp, "SELECT count(*) FROM gxp_transaction WHERE correlation_id = '%s'", cid), 1);
    decide(&W, cid, "succeeded");
    assert_int_equal(wait_status(&W, cid, 2, 10000), 0);
    /* A late prepare of the id after the commit is refused and reserves nothing: a coordinator
     * prepares an id only while it has no decision for it, so this one has forgotten the
     * transaction (its retention) and must not take it for its own (sql/gxp/003_retention.sql). */
    assert_int_equal(rpc_prepare(&W, u, 1, 20, cid), GRPC_STATUS_ALREADY_EXISTS);
    assert_int_equal(rpc_balance(&W, u, &b, &r), GRPC_STATUS_OK);
    assert_int_equal(b, 30);
    assert_int_equal(r, 0);
}

/* GetTransaction: status, type, amount and times; the state after the decision. */
static grpc_status_code get_transaction(const char *cid, Gxp__GetTransactionResponse **out)
{
    Gxp__GetTransactionRequest req = GXP__GET_TRANSACTION_REQUEST__INIT;
    req.correlationid = (char *)cid;
    ProtobufCMessage *m = NULL;
    grpc_status_code code =
        gf_grpc_client_call(W.client, "/gxp.Gxp/GetTransaction", &req.base,
                            &gxp__get_transaction_response__descriptor, &m, 5000, NULL, 0, NULL, 0);
    *out = (Gxp__GetTransactionResponse *)m;
    return code;
}

static void get_transaction_answers_one_transaction_by_correlation_id(void **state)
{
    (void)state;
    uint32_t u = next_user++;
    char cid[37], unknown[37];
    new_cid(cid);
    new_cid(unknown);
    fund(&W, u, 50);
    assert_int_equal(rpc_prepare(&W, u, 1, 20, cid), GRPC_STATUS_OK);
    Gxp__GetTransactionResponse *r = NULL;
    assert_int_equal(get_transaction(cid, &r), GRPC_STATUS_OK);
    assert_non_null(r->transaction);
    assert_int_equal(r->transaction->balance_id, u);
    assert_int_equal(r->transaction->amount, 20);
    assert_int_equal(r->transaction->type, GXP__TRANSACTION_TYPE__SUBTRACT);
    assert_int_equal(r->transaction->status, GXP__TRANSACTION_STATUS__PENDING);
    assert_string_equal(r->transaction->correlation_id, cid);
    assert_non_null(r->createdat);
    assert_null(r->finalizedat);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    decide(&W, cid, "failed");
    assert_int_equal(wait_status(&W, cid, 1, 10000), 0);
    assert_int_equal(get_transaction(cid, &r), GRPC_STATUS_OK);
    assert_int_equal(r->transaction->status, GXP__TRANSACTION_STATUS__ABORTED);
    assert_non_null(r->finalizedat);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    assert_int_equal(get_transaction(unknown, &r), GRPC_STATUS_NOT_FOUND);
    assert_null(r);
    assert_int_equal(get_transaction("not-a-uuid", &r), GRPC_STATUS_INVALID_ARGUMENT);
    assert_int_equal(get_transaction("", &r), GRPC_STATUS_INVALID_ARGUMENT);
}

static void add_that_would_overflow_uint32_is_out_of_range(void **state)
{
    (void)state;
    uint32_t u = next_user++;
    char c1[37], c2[37];
    new_cid(c1), new_cid(c2);
    fund(&W, u, 4000000000u);
    assert_int_equal(rpc_prepare(&W, u, 0, 294967295u, c1), GRPC_STATUS_OK);
    /* balance + pending adds would pass 4294967295. */
    assert_int_equal(rpc_prepare(&W, u, 0, 1, c2), GRPC_STATUS_OUT_OF_RANGE);
    decide(&W, c1, "succeeded");
    assert_int_equal(wait_status(&W, c1, 2, 10000), 0);
    uint32_t b, r;
    assert_int_equal(rpc_balance(&W, u, &b, &r), GRPC_STATUS_OK);
    assert_int_equal(b, 4294967295u);
}

struct race {
    uint32_t user;
    grpc_status_code code;
};

static void *race_prepare(void *arg)
{
    struct race *rc = arg;
    char cid[37];
    new_cid(cid);
    rc->code = rpc_prepare(&W, rc->user, 1, 7, cid);
    return NULL;
}

static void concurrent_subtract_prepares_never_reserve_more_than_the_balance(void **state)
{
    (void)state;
    uint32_t u = next_user++, b, r;
    fund(&W, u, 100);
    pthread_t th[32];
    struct race rc[32];
    for (int i = 0; i < 32; i++) {
        rc[i].user = u;
        assert_int_equal(pthread_create(&th[i], NULL, race_prepare, &rc[i]), 0);
    }
    int ok = 0, refused = 0;
    for (int i = 0; i < 32; i++) {
        pthread_join(th[i], NULL);
        ok += rc[i].code == GRPC_STATUS_OK;
        refused += rc[i].code == GRPC_STATUS_FAILED_PRECONDITION;
    }
    assert_int_equal(ok, 14); /* 14 * 7 = 98 <= 100 < 15 * 7 */
    assert_int_equal(refused, 18);
    assert_int_equal(rpc_balance(&W, u, &b, &r), GRPC_STATUS_OK);
    assert_int_equal(b, 100);
    assert_int_equal(r, 98);
}

static void hostile_payloads_get_invalid_argument_and_the_server_keeps_serving(void **state)
{
    (void)state;
    const char *methods[] = {"/gxp.Gxp/TransactionPrepare", "/gxp.Gxp/CreateUserBalance",
                             "/gxp.Gxp/GetUserBalance"};
    long long balances = sql_ll(W.gxp, "SELECT count(*) FROM balance");
    long long before = tx_count();
    unsigned seed = 12345;
    uint8_t buf[2048];
    for (int i = 0; i < 300; i++) {
        size_t len = 1 + (size_t)(rand_r(&seed) % (sizeof buf - 1));
        for (size_t k = 0; k < len; k++)
            buf[k] = (uint8_t)rand_r(&seed);
        /* Field 1 with wire type 7 does not exist: the message can never parse. */
        buf[0] = 0x0f;
        char details[256];
        grpc_status_code code = gf_grpc_client_call_raw(
            W.client, methods[i % 3], buf, len, NULL, NULL, 5000, NULL, 0, details, sizeof details);
        assert_int_equal(code, GRPC_STATUS_INVALID_ARGUMENT);
    }
    /* Lengths that lie: a string field claiming 2^31 bytes, a truncated varint. */
    const uint8_t liar[] = {0x22, 0xff, 0xff, 0xff, 0xff, 0x07, 'a'};
    const uint8_t trunc[] = {0x08, 0xff, 0xff};
    assert_int_equal(gf_grpc_client_call_raw(W.client, methods[0], liar, sizeof liar, NULL, NULL,
                                             5000, NULL, 0, NULL, 0),
                     GRPC_STATUS_INVALID_ARGUMENT);
    assert_int_equal(gf_grpc_client_call_raw(W.client, methods[0], trunc, sizeof trunc, NULL, NULL,
                                             5000, NULL, 0, NULL, 0),
                     GRPC_STATUS_INVALID_ARGUMENT);
    /* An empty message is a request with every field at its default: invalid for prepare. */
    assert_int_equal(
        gf_grpc_client_call_raw(W.client, methods[0], buf, 0, NULL, NULL, 5000, NULL, 0, NULL, 0),
        GRPC_STATUS_INVALID_ARGUMENT);
    /* Over the 64 KiB message limit. */
    uint8_t *big = calloc(1, 200000);
    assert_non_null(big);
    assert_int_equal(gf_grpc_client_call_raw(W.client, methods[0], big, 200000, NULL, NULL, 5000,
                                             NULL, 0, NULL, 0),
                     GRPC_STATUS_RESOURCE_EXHAUSTED);
    free(big);
    /* An unknown method is UNIMPLEMENTED, not a hang. */
    assert_int_equal(gf_grpc_client_call_raw(W.client, "/gxp.Gxp/Nope", buf, 4, NULL, NULL, 5000,
                                             NULL, 0, NULL, 0),
                     GRPC_STATUS_UNIMPLEMENTED);
    assert_int_equal(sql_ll(W.gxp, "SELECT count(*) FROM balance"), balances);
    assert_int_equal(tx_count(), before);
    assert_int_equal(world_wait_gxp(W.grpc_port, 2000), 0);
    uint32_t b, r;
    assert_int_equal(rpc_balance(&W, 4000000001u, &b, &r), GRPC_STATUS_NOT_FOUND);
}

static void get_all_answers_everything_and_pages_by_key(void **state)
{
    (void)state;
    uint32_t u = next_user++;
    fund(&W, u, 10);
    long long nb = sql_ll(W.gxp, "SELECT count(*) FROM balance");
    long long nt = tx_count();

    Gxp__GetAllRequest req = GXP__GET_ALL_REQUEST__INIT;
    ProtobufCMessage *out = NULL;
    assert_int_equal(gf_grpc_client_call(W.client, "/gxp.Gxp/GetAll", &req.base,
                                         &gxp__get_all_response__descriptor, &out, 5000, NULL, 0,
                                         NULL, 0),
                     GRPC_STATUS_OK);
    Gxp__GetAllResponse *all = (Gxp__GetAllResponse *)out;
    assert_int_equal(all->n_balances, nb);
    assert_int_equal(all->n_transactions, nt);
    assert_int_equal(all->next_after_balance, 0);
    bool found = false;
    for (size_t i = 0; i < all->n_transactions; i++) {
        assert_non_null(all->transactions[i]->updated_at);
        found |= all->transactions[i]->balance_id == u && all->transactions[i]->amount == 10 &&
                 all->transactions[i]->status == GXP__TRANSACTION_STATUS__COMMITTED;
    }
    assert_true(found);
    protobuf_c_message_free_unpacked(out, NULL);

    /* Pages of 2 visit every row exactly once: balances first, then transactions. */
    size_t seen_b = 0, seen_t = 0;
    for (int kind = 0; kind < 2; kind++) {
        Gxp__GetAllRequest preq = GXP__GET_ALL_REQUEST__INIT;
        preq.limit = 2;
        if (kind == 0)
            preq.after_transaction = INT64_MAX; /* no transactions: balances only */
        else
            preq.after_balance = 4294967295u; /* no balances: transactions only */
        for (int guard = 0; guard < 10000; guard++) {
            out = NULL;
            assert_int_equal(gf_grpc_client_call(W.client, "/gxp.Gxp/GetAll", &preq.base,
                                                 &gxp__get_all_response__descriptor, &out, 5000,
                                                 NULL, 0, NULL, 0),
                             GRPC_STATUS_OK);
            Gxp__GetAllResponse *page = (Gxp__GetAllResponse *)out;
            assert_true(page->n_balances <= 2 && page->n_transactions <= 2);
            seen_b += page->n_balances;
            seen_t += page->n_transactions;
            uint64_t next = kind == 0 ? page->next_after_balance : page->next_after_transaction;
            if (kind == 0)
                preq.after_balance = page->next_after_balance;
            else
                preq.after_transaction = page->next_after_transaction;
            protobuf_c_message_free_unpacked(out, NULL);
            if (next == 0)
                break;
        }
    }
    assert_int_equal(seen_b, nb);
    assert_int_equal(seen_t, nt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(create_user_balance_is_idempotent_and_starts_at_zero,
                                  world_check),
        cmocka_unit_test_teardown(get_user_balance_of_unknown_user_is_not_found, world_check),
        cmocka_unit_test_teardown(invalid_requests_get_invalid_argument_and_change_nothing,
                                  world_check),
        cmocka_unit_test_teardown(prepare_for_unknown_user_is_not_found, world_check),
        cmocka_unit_test_teardown(subtract_beyond_available_is_failed_precondition, world_check),
        cmocka_unit_test_teardown(prepare_is_idempotent_per_correlation_id, world_check),
        cmocka_unit_test_teardown(add_that_would_overflow_uint32_is_out_of_range, world_check),
        cmocka_unit_test_teardown(concurrent_subtract_prepares_never_reserve_more_than_the_balance,
                                  world_check),
        cmocka_unit_test_teardown(
            hostile_payloads_get_invalid_argument_and_the_server_keeps_serving, world_check),
        cmocka_unit_test_teardown(get_all_answers_everything_and_pages_by_key, world_check),
        cmocka_unit_test_teardown(get_transaction_answers_one_transaction_by_correlation_id,
                                  world_check),
    };
    return cmocka_run_group_tests_name("gxp_rpc", tests, setup, world_teardown);
}
