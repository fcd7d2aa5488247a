/* Fuzz target: the request payload of the backend's gRPC service (backend.Backend, asked by
 * gxp's resolver): the protobuf request unpacked the way lib/src/grpc_server.c does, then the
 * validation ResolveTransaction runs before any database work (validate_resolve_request).
 * Input: one digit choosing the method (its index in coord_methods), then the protobuf bytes. */
#include <stdint.h>
#include <string.h>

#include "backend.h"
#include "fuzz.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const struct gf_grpc_method *m =
        &coord_methods[(unsigned char)(data[0] - '0') % (unsigned)coord_nmethods];
    ProtobufCMessage *msg = protobuf_c_message_unpack(m->request, NULL, size - 1, data + 1);
    if (msg == NULL)
        return 0; /* answered INVALID_ARGUMENT by the server */
    if (m->request == &backend__resolve_transaction_request__descriptor) {
        const Backend__ResolveTransactionRequest *r =
            (const Backend__ResolveTransactionRequest *)msg;
        char cid[GF_UUID_STRLEN + 1];
        if (validate_resolve_request(r, cid))
            FUZZ_CHECK(fuzz_uuid_lower(cid));
    } else {
        /* A method was added to coord_methods: give it a branch here. */
        fprintf(stderr, "fuzz_backend_rpc: no validation fuzzed for %s\n", m->request->name);
        abort();
    }
    protobuf_c_message_free_unpacked(msg, NULL);
    return 0;
}
