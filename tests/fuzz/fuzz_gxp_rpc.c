/* Fuzz target: the request payloads of gxp's RPCs (proto/gxp.proto), as gxp serves them: the
 * protobuf request of the method unpacked the way lib/src/grpc_server.c does, then the
 * validation its handler runs before any database work (gxp/ledger.c). Input: one digit
 * choosing the method (its index in ledger_methods: 0 TransactionPrepare, 1 CreateUserBalance,
 * 2 GetUserBalance, 3 GetAll, 4 GetTransaction), then the protobuf bytes. */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "gxp.h"

/* GXP_GETALL_CAP's bounds and default. */
static const int64_t caps[] = {1, 10000, 1000000};

static void check_method(const ProtobufCMessageDescriptor *d, const ProtobufCMessage *msg)
{
    char cid[37];
    const char *why = NULL;
    enum gf_status st;
    if (d == &gxp__transaction_prepare_request__descriptor) {
        const Gxp__TransactionPrepareRequest *r = (const Gxp__TransactionPrepareRequest *)msg;
        int64_t cts_us = 0;
        st = ledger_check_prepare(r, cid, &cts_us, &why);
        if (st == GF_OK) {
            FUZZ_CHECK(r->userid > 0 && r->amount > 0 && fuzz_uuid_lower(cid));
            FUZZ_CHECK(r->type == GXP__TRANSACTION_TYPE__ADD ||
                       r->type == GXP__TRANSACTION_TYPE__SUBTRACT);
            FUZZ_CHECK(cts_us == INT64_MIN || r->correlationtimestamp != NULL);
        }
    } else if (d == &gxp__create_user_balance_request__descriptor) {
        const Gxp__CreateUserBalanceRequest *r = (const Gxp__CreateUserBalanceRequest *)msg;
        st = ledger_check_user(r->userid, r->correlationid, r->correlationtimestamp, cid, &why);
        if (st == GF_OK)
            FUZZ_CHECK(r->userid > 0 && (cid[0] == '\0' || fuzz_uuid_lower(cid)));
    } else if (d == &gxp__get_user_balance_request__descriptor) {
        const Gxp__GetUserBalanceRequest *r = (const Gxp__GetUserBalanceRequest *)msg;
        st = ledger_check_user(r->userid, r->correlationid, r->correlationtimestamp, cid, &why);
        if (st == GF_OK)
            FUZZ_CHECK(r->userid > 0 && (cid[0] == '\0' || fuzz_uuid_lower(cid)));
    } else if (d == &gxp__get_all_request__descriptor) {
        const Gxp__GetAllRequest *r = (const Gxp__GetAllRequest *)msg;
        for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
            int64_t limit = 0;
            st = ledger_check_get_all(r, caps[i], &limit, &why);
            if (st == GF_OK)
                FUZZ_CHECK(limit >= 1 && limit <= caps[i]);
            else
                FUZZ_CHECK(st == GF_EINVAL && why != NULL);
        }
        return;
    } else if (d == &gxp__get_transaction_request__descriptor) {
        const Gxp__GetTransactionRequest *r = (const Gxp__GetTransactionRequest *)msg;
        st = ledger_check_get_transaction(r, cid, &why);
        if (st == GF_OK)
            FUZZ_CHECK(fuzz_uuid_lower(cid));
    } else {
        /* A method was added to ledger_methods: give it a branch here. */
        fprintf(stderr, "fuzz_gxp_rpc: no validation fuzzed for %s\n", d->name);
        abort();
    }
    FUZZ_CHECK(st == GF_OK || (st == GF_EINVAL && why != NULL));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const struct gf_grpc_method *m =
        &ledger_methods[(unsigned char)(data[0] - '0') % (unsigned)ledger_nmethods];
    ProtobufCMessage *msg = protobuf_c_message_unpack(m->request, NULL, size - 1, data + 1);
    if (msg == NULL)
        return 0; /* answered INVALID_ARGUMENT by the server */
    check_method(m->request, msg);
    protobuf_c_message_free_unpacked(msg, NULL);
    return 0;
}
