/* Volume on gxp-db: a backend transaction carrying tens of thousands of decisions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>

#include "gf/clock.h"
#include "gxp_fixture.h"

#define PENDING_TIMEOUT_MS 1500
#define MANY_DECISIONS 50000
#define MANY_USERS 1000 /* the decisions spread over users, as real ones are */
#define FIRST_USER 50000

static int setup(void **state)
{
    (void)state;
    return world_start(&W, PENDING_TIMEOUT_MS);
}

/* The replication apply worker applies a backend transaction in one local transaction.
 * gxp_apply_decision used to take an advisory lock per decision, held to that transaction's
 * end: a few tens of thousands of decisions in one backend transaction overflowed gxp-db's
 * lock table ("out of shared memory"), the apply transaction failed, and the worker retried
 * it for ever, stopping every later decision (sql/gxp/002_apply_without_lock_slots.sql). */
static void one_backend_transaction_of_many_decisions_applies_in_full(void **state)
{
    (void)state;
    uint32_t u0 = FIRST_USER, un = FIRST_USER + MANY_USERS - 1;
    sql_exec(W.gxp, "INSERT INTO balance (user_id) SELECT generate_series(%u, %u)", u0, un);
    /* ADDs of 1 to every user, the same ids on both sides. Prepared in batches (a prepare
     * takes its id's lock too), each kept from the resolver in the same transaction: it
     * would otherwise ask the coordinator about them before their decisions exist. */
    char expr[96];
    snprintf(expr, sizeof expr, "md5('many-' || %u || '-' || g)::uuid", u0);
    for (int b = 0; b < MANY_DECISIONS / 1000; b++)
        sql_exec(W.gxp,
                 "BEGIN;"
                 "SELECT gxp_prepare(%u + g %% %d, 0::smallint, 1, %s, now())"
                 "  FROM generate_series(%d, %d) g;"
                 "UPDATE gxp_transaction SET next_resolve_at = now() + interval '1 hour'"
                 " WHERE user_id BETWEEN %u AND %u AND status = 0 AND next_resolve_at IS NULL;"
                 "COMMIT",
                 u0, MANY_USERS, expr, b * 1000 + 1, (b + 1) * 1000, u0, un);
    assert_int_equal(sql_ll(W.gxp,
                            "SELECT count(*) FROM gxp_transaction WHERE user_id BETWEEN %u AND %u"
                            " AND status = 0",
                            u0, un),
                     MANY_DECISIONS);
    int64_t t0 = gf_mono_ms();
    sql_exec(W.backend,
             "INSERT INTO transaction_outbox (correlation_id, state)"
             " SELECT %s, 'succeeded' FROM generate_series(1, %d) g",
             expr, MANY_DECISIONS);
    long long done = 0;
    while ((done = sql_ll(W.gxp,
                          "SELECT count(*) FROM gxp_transaction WHERE user_id BETWEEN %u AND %u"
                          " AND status = 2",
                          u0, un)) < MANY_DECISIONS &&
           gf_mono_ms() < t0 + 120000)
        usleep(100 * 1000);
    printf("%d decisions in one transaction applied in %lld ms\n", MANY_DECISIONS,
           (long long)(gf_mono_ms() - t0));
    assert_int_equal(done, MANY_DECISIONS);
    assert_int_equal(sql_ll(W.gxp,
                            "SELECT count(*) FROM decision d JOIN gxp_transaction t USING"
                            " (correlation_id) WHERE t.user_id BETWEEN %u AND %u"
                            " AND d.source = 'replication' AND d.outcome = 'applied'",
                            u0, un),
                     MANY_DECISIONS);
    assert_int_equal(sql_ll(W.gxp,
                            "SELECT count(*) FROM balance WHERE user_id BETWEEN %u AND %u"
                            " AND balance = %d AND incoming = 0",
                            u0, un, MANY_DECISIONS / MANY_USERS),
                     MANY_USERS);
    /* Replication goes on behind it. */
    uint32_t u = un + 1;
    char cid[37];
    fund(&W, u, 7);
    new_cid(cid);
    assert_int_equal(rpc_prepare(&W, u, 1, 5, cid), GRPC_STATUS_OK);
    decide(&W, cid, "succeeded");
    assert_int_equal(wait_status(&W, cid, 2, 10000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(one_backend_transaction_of_many_decisions_applies_in_full,
                                  world_check),
    };
    return cmocka_run_group_tests_name("gxp_bulk", tests, setup, world_teardown);
}
