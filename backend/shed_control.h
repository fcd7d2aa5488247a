/* How much admission control sheds (admission.c): the share of the sheddable requests refused,
 * from its two signals as they move. A proportional-integral controller in the manner of PIE
 * (RFC 8033): between nothing and the bound, the share rises while the larger signal is above
 * a target (a fraction of its bound) or climbing, and falls while it is below or easing, so
 * that at any offered load the queues behind the backend hold near the target and the rest of
 * the load is admitted; past a bound everything is shed. Pure arithmetic, no clock, no I/O. */
#ifndef BACKEND_SHED_CONTROL_H
#define BACKEND_SHED_CONTROL_H

#include <stdint.h>

#include "admission.h"

struct shed_params {
    int64_t lag_bound_ms;    /* BACKEND_ADMIT_LAG_MS */
    int64_t outbox_bound_ms; /* BACKEND_ADMIT_OUTBOX_AGE_MS */
    double target;           /* BACKEND_ADMIT_TARGET_PCT / 100: where the signal is held */
    int64_t interval_ms;     /* BACKEND_ADMIT_INTERVAL_MS: the time between two steps */
};

struct shed_control {
    double p;                     /* the share shed, 0 (admit all) .. 1 (shed all) */
    double pressure;              /* the larger signal over its bound, last step (0: none) */
    enum admission_reason reason; /* the signal that set p (ADMISSION_OPEN when p is 0) */
};

/* One step with the figures just measured (ms; -1: unknown, which sheds nothing: a database
 * that does not answer fails the requests by itself). Returns the new s->p. */
double shed_control_step(struct shed_control *s, const struct shed_params *prm, int64_t lag_ms,
                         int64_t outbox_ms);

#endif
