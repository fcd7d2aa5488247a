/* Admission control (admission.c): requests that give work to gxp's apply worker or to the
 * event relay are refused (503 overloaded) while either is behind, instead of queueing. */
#ifndef BACKEND_ADMISSION_H
#define BACKEND_ADMISSION_H

#include <stdbool.h>
#include <stdint.h>

struct backend_app;
struct admission;

/* Why a request was shed. */
enum admission_reason {
    ADMISSION_OPEN = 0,       /* not shedding */
    ADMISSION_DECISIONS_LAG,  /* gxp's subscription is behind on backend-db's WAL */
    ADMISSION_OUTBOX_BACKLOG, /* the oldest unpublished event is too old */
};

/* Starts the measuring thread (its own database connection, every BACKEND_ADMIT_INTERVAL_MS)
 * and registers the metrics. With BACKEND_ADMIT=false nothing is measured and every request
 * is admitted. NULL only on a resource failure. */
struct admission *admission_start(struct backend_app *app);
/* Whether a request that writes a decision or an event may run now: ADMISSION_OPEN, or the
 * reason to shed it (counted in backend_shed_total). Lock-free; a NULL a admits. */
enum admission_reason admission_check(struct admission *a);
/* The reason's words for a client ("gxp's replication is behind", ...). */
const char *admission_reason_text(enum admission_reason r);
void admission_stop(struct admission *a); /* NULL is a no-op */

#endif
