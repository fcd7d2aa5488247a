/* A consumer that logs the events it receives (see gf/events.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.pb-c.h"
#include "gf/events.h"
#include "gf/log.h"

#define LOG_QUEUE_MAX 10000

struct events_log {
    char name[96];
    const char *keys[1];
    struct gf_amqp_queue queue;
};

/* One line for an AdminActionEvent; false when the body is not one. The name is the token's,
 * made safe for the line. */
static bool log_admin_action(const struct gf_amqp_delivery *d)
{
    Backend__AdminActionEvent *e = backend__admin_action_event__unpack(NULL, d->len, d->body);
    if (e == NULL)
        return false;
    char action[40], actor[64];
    gf_log_safe(action, sizeof action, e->action);
    gf_log_safe(actor, sizeof actor, e->actorname);
    GF_INFO("event received name=%s action=%s actorId=%u actor=%s userId=%u targetId=%u "
            "redelivered=%d",
            d->type, action, e->actorid, actor, e->userid, e->targetid, d->redelivered);
    backend__admin_action_event__free_unpacked(e, NULL);
    return true;
}

static enum gf_status log_batch(void *arg, struct gf_amqp_delivery *d, int n)
{
    (void)arg;
    for (int i = 0; i < n; i++) {
        gf_log_set_cid(d[i].correlation_id[0] ? d[i].correlation_id : NULL);
        Backend__BuyItemEvent *e = NULL;
        bool logged = false;
        if (strcmp(d[i].type, GF_EVENT_BUY_ITEM) == 0)
            e = backend__buy_item_event__unpack(NULL, d[i].len, d[i].body);
        else if (strcmp(d[i].type, GF_EVENT_ADMIN_ACTION) == 0)
            logged = log_admin_action(&d[i]);
        if (e != NULL) {
            GF_INFO("event received name=%s userId=%u itemId=%u userItemId=%u redelivered=%d",
                    d[i].type, e->userid, e->itemid, e->useritemid, d[i].redelivered);
            backend__buy_item_event__free_unpacked(e, NULL);
        } else if (!logged) {
            /* Only watched here: nothing to dead-letter, the event log keeps its own copy. */
            GF_LOG_RL(GF_LOG_WARN, 5000,
                      "event not understood type='%.64s' routing_key='%.64s' bytes=%zu", d[i].type,
                      d[i].routing_key, d[i].len);
        }
    }
    gf_log_set_cid(NULL);
    return GF_OK;
}

struct gf_amqp_consumer *gf_events_log_start(const char *svc, const struct gf_amqp_options *conn)
{
    /* The queue description must outlive the consumer: it lives as long as the process. */
    static struct events_log slots[4];
    static int used;
    if (used == (int)(sizeof slots / sizeof slots[0]))
        return NULL;
    struct events_log *l = &slots[used++];
    snprintf(l->name, sizeof l->name, "%s.events.log", svc);
    l->keys[0] = "#";
    /* Bound to the watchers' exchange, not to topic_exchange: a watcher bound there with `#`
     * would make every event routable, and the relay's mandatory publish could no longer tell
     * that eventlog's durable queue is missing (see gf/amqp.h). The binding to topic_exchange
     * that earlier versions made is removed, since a transient queue keeps it until the broker
     * restarts. */
    l->queue = (struct gf_amqp_queue){.name = l->name,
                                      .exchange = GF_EVENTS_WATCH_EXCHANGE,
                                      .routing_keys = l->keys,
                                      .nkeys = 1,
                                      .max_length = LOG_QUEUE_MAX,
                                      .transient = true,
                                      .unbind_exchange = GF_EVENTS_EXCHANGE};
    struct gf_amqp_consumer_options opt = {
        .conn = *conn,
        .queue = &l->queue,
        .prefetch = 100,
        .batch_max = 100,
        .batch_wait_ms = 0,
        .handle = log_batch,
        .metrics_prefix = "events_log",
    };
    return gf_amqp_consumer_start(&opt);
}
