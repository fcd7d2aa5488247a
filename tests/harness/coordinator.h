/* A stand-in for the backend's coordinator role, for tests and benchmarks of gxp until the
 * backend exists: backend-db's transaction_outbox and publication (what the backend's own
 * migrations will create), and backend.Backend/ResolveTransaction served in-process with
 * the real semantics (record "failed" unless a decision exists; answer the one that stands). */
#ifndef GF_TEST_COORDINATOR_H
#define GF_TEST_COORDINATOR_H

#include <libpq-fe.h>
#include <stdatomic.h>

/* The publisher side on backend-db: the outbox table and publication transaction_outbox_pub. */
extern const char COORDINATOR_OUTBOX_SQL[];

struct coordinator;

/* Serves ResolveTransaction on 127.0.0.1 (ephemeral port, written to *port) against the
 * database at backend_conninfo. NULL on failure. */
struct coordinator *coordinator_start(const char *backend_conninfo, int *port);
void coordinator_stop(struct coordinator *c);
/* ResolveTransaction calls served so far. */
int coordinator_calls(struct coordinator *c);

#endif
