/* gxp's request validation, timestamp conversion and its one status → gRPC code table. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gxp.h"

/* The helpers gxp/ledger.c exposes to tests (GF_TESTABLE). */
bool ledger_timestamp_ok(const Google__Protobuf__Timestamp *ts);
void ledger_timestamp_set(Google__Protobuf__Timestamp *ts, int64_t epoch_us);

static Gxp__TransactionPrepareRequest valid(void)
{
    Gxp__TransactionPrepareRequest r = GXP__TRANSACTION_PREPARE_REQUEST__INIT;
    r.userid = 1;
    r.type = GXP__TRANSACTION_TYPE__SUBTRACT;
    r.amount = 10;
    r.correlationid = "123E4567-E89B-12D3-A456-426614174000";
    return r;
}

static void a_valid_prepare_passes_with_a_normalized_cid(void **state)
{
    (void)state;
    Gxp__TransactionPrepareRequest r = valid();
    char cid[37];
    int64_t cts = 0;
    const char *why = NULL;
    assert_int_equal(ledger_check_prepare(&r, cid, &cts, &why), GF_OK);
    assert_string_equal(cid, "123e4567-e89b-12d3-a456-426614174000");
    assert_true(cts == INT64_MIN);

    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    ts.seconds = 1795671811;
    ts.nanos = 712345678;
    r.correlationtimestamp = &ts;
    assert_int_equal(ledger_check_prepare(&r, cid, &cts, &why), GF_OK);
    assert_true(cts == 1795671811712345LL);
}

static void each_bad_field_is_refused_with_its_reason(void **state)
{
    (void)state;
    char cid[37];
    int64_t cts;
    const char *why;
    Gxp__TransactionPrepareRequest r;

    r = valid(), r.userid = 0;
    assert_int_equal(ledger_check_prepare(&r, cid, &cts, &why), GF_EINVAL);
    assert_non_null(strstr(why, "userId"));
    r = valid(), r.amount = 0;
    assert_int_equal(ledger_check_prepare(&r, cid, &cts, &why), GF_EINVAL);
    assert_non_null(strstr(why, "amount"));
    r = valid(), r.type = (Gxp__TransactionType)2;
    assert_int_equal(ledger_check_prepare(&r, cid, &cts, &why), GF_EINVAL);
    assert_non_null(strstr(why, "type"));
    r = valid(), r.type = (Gxp__TransactionType)-1;
    assert_int_equal(ledger_check_prepare(&r, cid, &cts, &why), GF_EINVAL);
    r = valid(), r.correlationid = "123e4567";
    assert_int_equal(ledger_check_prepare(&r, cid, &cts, &why), GF_EINVAL);
    assert_non_null(strstr(why, "correlationId"));
    r = valid(), r.correlationid = NULL;
    assert_int_equal(ledger_check_prepare(&r, cid, &cts, &why), GF_EINVAL);

    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    r = valid(), r.correlationtimestamp = &ts;
    ts.nanos = 1000000000;
    assert_int_equal(ledger_check_prepare(&r, cid, &cts, &why), GF_EINVAL);
    ts.nanos = -1;
    assert_int_equal(ledger_check_prepare(&r, cid, &cts, &why), GF_EINVAL);
    ts.nanos = 0, ts.seconds = INT64_MAX;
    assert_int_equal(ledger_check_prepare(&r, cid, &cts, &why), GF_EINVAL);
    ts.seconds = INT64_MIN;
    assert_int_equal(ledger_check_prepare(&r, cid, &cts, &why), GF_EINVAL);
    ts.seconds = 253402300799LL; /* 9999-12-31T23:59:59Z: the last accepted second */
    assert_int_equal(ledger_check_prepare(&r, cid, &cts, &why), GF_OK);
}

static void timestamps_round_trip_including_before_the_epoch(void **state)
{
    (void)state;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    ledger_timestamp_set(&ts, 1795671811712345LL);
    assert_true(ts.seconds == 1795671811);
    assert_int_equal(ts.nanos, 712345000);
    ledger_timestamp_set(&ts, -1);
    assert_true(ts.seconds == -1);
    assert_int_equal(ts.nanos, 999999000);
    assert_true(ledger_timestamp_ok(&ts));
}

static void statuses_map_to_the_codes_the_spec_names(void **state)
{
    (void)state;
    assert_int_equal(ledger_grpc_code(GF_EINVAL), GRPC_STATUS_INVALID_ARGUMENT);
    assert_int_equal(ledger_grpc_code(GF_ENOTFOUND), GRPC_STATUS_NOT_FOUND);
    assert_int_equal(ledger_grpc_code(GF_EPRECONDITION), GRPC_STATUS_FAILED_PRECONDITION);
    assert_int_equal(ledger_grpc_code(GF_EEXISTS), GRPC_STATUS_ALREADY_EXISTS);
    assert_int_equal(ledger_grpc_code(GF_EUNAVAILABLE), GRPC_STATUS_UNAVAILABLE);
    assert_int_equal(ledger_grpc_code(GF_ETIMEOUT), GRPC_STATUS_DEADLINE_EXCEEDED);
    assert_int_equal(ledger_grpc_code(GF_EINTERNAL), GRPC_STATUS_INTERNAL);
    for (int s = GF_OK; s <= GF_PENDING; s++)
        assert_true(ledger_grpc_code((enum gf_status)s) != GRPC_STATUS_UNKNOWN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_valid_prepare_passes_with_a_normalized_cid),
        cmocka_unit_test(each_bad_field_is_refused_with_its_reason),
        cmocka_unit_test(timestamps_round_trip_including_before_the_epoch),
        cmocka_unit_test(statuses_map_to_the_codes_the_spec_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
