/* The shedding controller (shed_control.h). */
#include "shed_control.h"

/* The gains, per unit of pressure (a signal over its bound). ALPHA, the integral part, per
 * 25 ms of the interval: 0.125 × (pressure − target) a step, so a signal at its bound with the
 * target at half of it adds 6 % of the requests to the share shed every 25 ms (half of them in
 * about 0.2 s). BETA, the proportional part on the signal's change: a signal above the target
 * that climbs by a tenth of its bound in one step adds 5 %, and one that falls takes as much
 * back. PIE's own gains (0.125 and 1.25 per second of queueing delay)
 * suit drop rates of a percent; a backend at twice its peak must shed half of what comes. */
#define ALPHA 0.125
#define BETA 0.5

static double over(int64_t ms, int64_t bound_ms)
{
    return ms < 0 || bound_ms <= 0 ? 0 : (double)ms / (double)bound_ms;
}

double shed_control_step(struct shed_control *s, const struct shed_params *prm, int64_t lag_ms,
                         int64_t outbox_ms)
{
    double lag = over(lag_ms, prm->lag_bound_ms), outbox = over(outbox_ms, prm->outbox_bound_ms);
    double x = lag >= outbox ? lag : outbox;
    enum admission_reason why = lag >= outbox ? ADMISSION_DECISIONS_LAG : ADMISSION_OUTBOX_BACKLOG;
    if (lag_ms < 0 && outbox_ms < 0) {
        s->p = 0; /* nothing known: admit, as when admission control is off */
    } else if (x >= 1) {
        s->p = 1; /* past a bound: the queue is already longer than the target allows */
    } else {
        double dt = (double)prm->interval_ms / 25.0;
        /* The proportional part counts a climb only above the target, from the target at
         * the lowest: a blip of lag at light load (a checkpoint, a descheduled apply worker)
         * that stays under the target sheds nothing, as it should; a fall counts always. */
        double from = s->pressure > prm->target ? s->pressure : prm->target;
        double change = x > from ? x - from : x < s->pressure ? x - s->pressure : 0;
        s->p += ALPHA * dt * (x - prm->target) + BETA * change;
        if (s->p < 1e-3) /* a share this small is noise: admit everything */
            s->p = 0;
        if (s->p > 1)
            s->p = 1;
    }
    s->pressure = x;
    s->reason = s->p > 0 ? why : ADMISSION_OPEN;
    return s->p;
}
