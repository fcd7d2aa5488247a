/* See coordinator.h. */
#include "coordinator.h"

#include <stdlib.h>
#include <string.h>

#include "backend.pb-c.h"
#include "gf/db.h"
#include "gf/grpc.h"
#include "gf/uuid.h"

const char COORDINATOR_OUTBOX_SQL[] =
    "CREATE TABLE transaction_outbox ("
    " correlation_id uuid PRIMARY KEY,"
    " state text NOT NULL CHECK (state IN ('failed', 'succeeded')),"
    " is_finalized boolean NOT NULL DEFAULT false,"
    " created_at timestamptz NOT NULL DEFAULT now());"
    "CREATE PUBLICATION transaction_outbox_pub FOR TABLE transaction_outbox;";

struct coordinator {
    struct gf_db_pool *pool;
    struct gf_grpc_server *server;
    atomic_int calls;
};

static grpc_status_code code_of(enum gf_status st)
{
    return st == GF_EINVAL ? GRPC_STATUS_INVALID_ARGUMENT : GRPC_STATUS_UNAVAILABLE;
}

static enum gf_status resolve(struct gf_grpc_call *call, void *arg, const ProtobufCMessage *msg,
                              ProtobufCMessage *out)
{
    struct coordinator *co = arg;
    const Backend__ResolveTransactionRequest *req = (const Backend__ResolveTransactionRequest *)msg;
    Backend__ResolveTransactionResponse *resp = (Backend__ResolveTransactionResponse *)out;
    atomic_fetch_add(&co->calls, 1);
    if (req->correlationid == NULL ||
        !gf_uuid_valid(req->correlationid, strlen(req->correlationid))) {
        gf_grpc_set_error(call, "correlationId must be a UUID");
        return GF_EINVAL;
    }
    struct gf_db_conn *c = NULL;
    enum gf_status st = gf_db_acquire(co->pool, &c);
    if (st != GF_OK)
        return st;
    const char *p[1] = {req->correlationid};
    PGresult *res = NULL;
    /* INSERT, never upsert: a decision that exists stands. Two statements, not one: an
     * INSERT that waited for a concurrent commit of the same id must be followed by a read
     * with a new snapshot, or it would not see the decision that won. */
    st = gf_db_exec(c, "coord_record_failed",
                    "INSERT INTO transaction_outbox (correlation_id, state)"
                    " VALUES ($1::uuid, 'failed') ON CONFLICT DO NOTHING",
                    1, p, NULL);
    if (st == GF_OK)
        st = gf_db_exec(c, "coord_read_decision",
                        "SELECT state FROM transaction_outbox WHERE correlation_id = $1::uuid", 1,
                        p, &res);
    gf_db_release(co->pool, c);
    if (st != GF_OK)
        return st;
    resp->correlationid = gf_grpc_strdup(call, req->correlationid);
    resp->state = gf_grpc_strdup(call, PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "failed");
    PQclear(res);
    return resp->correlationid && resp->state ? GF_OK : GF_ENOMEM;
}

static const struct gf_grpc_method METHODS[] = {
    {"/backend.Backend/ResolveTransaction", &backend__resolve_transaction_request__descriptor,
     &backend__resolve_transaction_response__descriptor, resolve},
};

struct coordinator *coordinator_start(const char *backend_conninfo, int *port)
{
    struct coordinator *co = calloc(1, sizeof *co);
    if (co == NULL)
        return NULL;
    struct gf_db_pool_options popt = {
        .conninfo = backend_conninfo, .size = 4, .application_name = "coordinator-stand-in"};
    co->pool = gf_db_pool_new(&popt);
    struct gf_grpc_server_options gopt = {.addr = "127.0.0.1:0",
                                          .threads = 2,
                                          .methods = METHODS,
                                          .nmethods = 1,
                                          .app = co,
                                          .grpc_code = code_of};
    if (co->pool)
        co->server = gf_grpc_server_start(&gopt, port);
    if (co->server == NULL) {
        coordinator_stop(co);
        return NULL;
    }
    return co;
}

void coordinator_stop(struct coordinator *co)
{
    if (co == NULL)
        return;
    gf_grpc_server_stop(co->server, 1000);
    gf_db_pool_free(co->pool);
    free(co);
}

int coordinator_calls(struct coordinator *co)
{
    return atomic_load(&co->calls);
}
