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

/* One line per event, with its key fields; each returns false when the body is not the
 * message its name says. */
static bool log_buy_item(const struct gf_amqp_delivery *d)
{
    Backend__BuyItemEvent *e = backend__buy_item_event__unpack(NULL, d->len, d->body);
    if (e == NULL)
        return false;
    GF_INFO("event received name=%s userId=%u itemId=%u userItemId=%u redelivered=%d", d->type,
            e->userid, e->itemid, e->useritemid, d->redelivered);
    backend__buy_item_event__free_unpacked(e, NULL);
    return true;
}

/* The name is the token's, made safe for the line. */
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

static bool log_auction_outbid(const struct gf_amqp_delivery *d)
{
    Backend__AuctionOutbidEvent *e = backend__auction_outbid_event__unpack(NULL, d->len, d->body);
    if (e == NULL)
        return false;
    GF_INFO("event received name=%s auctionId=%u userId=%u bidId=%u amount=%u newBidId=%u "
            "newAmount=%u itemId=%u redelivered=%d",
            d->type, e->auctionid, e->userid, e->bidid, e->amount, e->newbidid, e->newamount,
            e->itemid, d->redelivered);
    backend__auction_outbid_event__free_unpacked(e, NULL);
    return true;
}

static bool log_auction_settled(const struct gf_amqp_delivery *d)
{
    Backend__AuctionSettledEvent *e = backend__auction_settled_event__unpack(NULL, d->len, d->body);
    if (e == NULL)
        return false;
    GF_INFO("event received name=%s auctionId=%u sellerId=%u winnerId=%u itemId=%u amount=%u "
            "bidId=%u userItemId=%u redelivered=%d",
            d->type, e->auctionid, e->sellerid, e->winnerid, e->itemid, e->amount, e->bidid,
            e->useritemid, d->redelivered);
    backend__auction_settled_event__free_unpacked(e, NULL);
    return true;
}

static bool log_auction_cancelled(const struct gf_amqp_delivery *d)
{
    Backend__AuctionCancelledEvent *e =
        backend__auction_cancelled_event__unpack(NULL, d->len, d->body);
    if (e == NULL)
        return false;
    GF_INFO("event received name=%s auctionId=%u sellerId=%u itemId=%u userItemId=%u "
            "redelivered=%d",
            d->type, e->auctionid, e->sellerid, e->itemid, e->useritemid, d->redelivered);
    backend__auction_cancelled_event__free_unpacked(e, NULL);
    return true;
}

static const struct {
    const char *name;
    bool (*log)(const struct gf_amqp_delivery *d);
} loggers[] = {
    {GF_EVENT_BUY_ITEM, log_buy_item},
    {GF_EVENT_ADMIN_ACTION, log_admin_action},
    {GF_EVENT_AUCTION_OUTBID, log_auction_outbid},
    {GF_EVENT_AUCTION_SETTLED, log_auction_settled},
    {GF_EVENT_AUCTION_CANCELLED, log_auction_cancelled},
};

static enum gf_status log_batch(void *arg, struct gf_amqp_delivery *d, int n)
{
    (void)arg;
    for (int i = 0; i < n; i++) {
        gf_log_set_cid(d[i].correlation_id[0] ? d[i].correlation_id : NULL);
        bool logged = false;
        for (size_t k = 0; k < sizeof loggers / sizeof loggers[0]; k++) {
            if (strcmp(d[i].type, loggers[k].name) == 0) {
                logged = loggers[k].log(&d[i]);
                break;
            }
        }
        if (!logged) {
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
