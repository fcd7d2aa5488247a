/* The events the backend emits (SPEC §4): their protobuf encoding as it goes into
 * event_outbox. backend/relay.c carries them to RabbitMQ. */
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "backend.pb-c.h"
#include "gf/amqp.h"
#include "gf/uuid.h"

/* buf[0..len) as a bytea literal in hex ("\\x..."): out holds at least 2 * len + 3 bytes. */
static void bytea_hex(const uint8_t *buf, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    *p++ = '\\';
    *p++ = 'x';
    for (size_t i = 0; i < len; i++) {
        *p++ = hex[buf[i] >> 4];
        *p++ = hex[buf[i] & 15];
    }
    *p = '\0';
}

enum gf_status events_buy_payload(int64_t user_id, int64_t item_id, int64_t user_item_id,
                                  const char *cid, char *out, size_t n)
{
    if (user_id <= 0 || user_id > UINT32_MAX || item_id <= 0 || item_id > UINT32_MAX ||
        user_item_id <= 0 || user_item_id > UINT32_MAX)
        return GF_ERANGE;
    Backend__BuyItemEvent e = BACKEND__BUY_ITEM_EVENT__INIT;
    e.userid = (uint32_t)user_id;
    e.itemid = (uint32_t)item_id;
    e.useritemid = (uint32_t)user_item_id;
    e.correlationid = (char *)cid;
    size_t len = backend__buy_item_event__get_packed_size(&e);
    uint8_t buf[EVENTS_PAYLOAD_MAX];
    if (len > sizeof buf || n < 2 * len + 3)
        return GF_ETOOBIG;
    backend__buy_item_event__pack(&e, buf);
    bytea_hex(buf, len, out);
    return GF_OK;
}

static bool u32(int64_t v)
{
    return v >= 0 && v <= UINT32_MAX;
}

enum gf_status events_admin_payload(const struct events_admin *a, const char *cid, char *out,
                                    size_t n)
{
    const struct gf_auth_claims *who = a->who;
    if (who == NULL || who->user_id <= 0 || who->user_id > UINT32_MAX || !u32(a->user_id) ||
        !u32(a->target_id) || !u32(a->item_id) || !u32(a->amount) || !u32(a->count) ||
        !u32(a->cost) || a->version < 0 || a->nfields > 2)
        return GF_ERANGE;
    char event_id[GF_UUID_STRLEN + 1];
    gf_uuid_generate_v7(event_id);
    Backend__AdminActionEvent e = BACKEND__ADMIN_ACTION_EVENT__INIT;
    e.eventid = event_id;
    e.action = (char *)a->action;
    e.actorid = (uint32_t)who->user_id;
    e.actorname = (char *)who->name;
    e.actorrole = (char *)gf_role_name(who->role);
    e.userid = (uint32_t)a->user_id;
    e.targetid = (uint32_t)a->target_id;
    e.itemid = (uint32_t)a->item_id;
    e.amount = (uint32_t)a->amount;
    e.count = (uint32_t)a->count;
    e.cost = (uint32_t)a->cost;
    e.version = (uint64_t)a->version;
    e.n_fields = (size_t)a->nfields;
    e.fields = (char **)a->fields;
    e.correlationid = (char *)cid;
    size_t len = backend__admin_action_event__get_packed_size(&e);
    uint8_t buf[EVENTS_ADMIN_PAYLOAD_MAX];
    if (len > sizeof buf || n < 2 * len + 3)
        return GF_ETOOBIG;
    backend__admin_action_event__pack(&e, buf);
    bytea_hex(buf, len, out);
    return GF_OK;
}

const char *events_auction_name(enum events_auction_kind k)
{
    switch (k) {
    case EVENTS_AUCTION_OUTBID:
        return GF_EVENT_AUCTION_OUTBID;
    case EVENTS_AUCTION_SETTLED:
        return GF_EVENT_AUCTION_SETTLED;
    case EVENTS_AUCTION_CANCELLED:
        return GF_EVENT_AUCTION_CANCELLED;
    }
    return "";
}

enum gf_status events_auction_payload(const struct events_auction *a, char *out, size_t n)
{
    if (a->auction_id <= 0 || !u32(a->auction_id) || !u32(a->user_id) || !u32(a->item_id) ||
        !u32(a->bid_id) || !u32(a->amount) || !u32(a->new_bid_id) || !u32(a->new_amount) ||
        !u32(a->winner_id) || !u32(a->user_item_id))
        return GF_ERANGE;
    uint8_t buf[EVENTS_AUCTION_PAYLOAD_MAX];
    size_t len = 0;
    switch (a->kind) {
    case EVENTS_AUCTION_OUTBID: {
        Backend__AuctionOutbidEvent e = BACKEND__AUCTION_OUTBID_EVENT__INIT;
        e.auctionid = (uint32_t)a->auction_id;
        e.userid = (uint32_t)a->user_id;
        e.bidid = (uint32_t)a->bid_id;
        e.amount = (uint32_t)a->amount;
        e.newbidid = (uint32_t)a->new_bid_id;
        e.newamount = (uint32_t)a->new_amount;
        e.itemid = (uint32_t)a->item_id;
        e.correlationid = (char *)a->cid;
        len = backend__auction_outbid_event__get_packed_size(&e);
        if (len > sizeof buf)
            return GF_ETOOBIG;
        backend__auction_outbid_event__pack(&e, buf);
        break;
    }
    case EVENTS_AUCTION_SETTLED: {
        Backend__AuctionSettledEvent e = BACKEND__AUCTION_SETTLED_EVENT__INIT;
        e.auctionid = (uint32_t)a->auction_id;
        e.sellerid = (uint32_t)a->user_id;
        e.winnerid = (uint32_t)a->winner_id;
        e.itemid = (uint32_t)a->item_id;
        e.amount = (uint32_t)a->amount;
        e.bidid = (uint32_t)a->bid_id;
        e.useritemid = (uint32_t)a->user_item_id;
        e.correlationid = (char *)a->cid;
        len = backend__auction_settled_event__get_packed_size(&e);
        if (len > sizeof buf)
            return GF_ETOOBIG;
        backend__auction_settled_event__pack(&e, buf);
        break;
    }
    case EVENTS_AUCTION_CANCELLED: {
        Backend__AuctionCancelledEvent e = BACKEND__AUCTION_CANCELLED_EVENT__INIT;
        e.auctionid = (uint32_t)a->auction_id;
        e.sellerid = (uint32_t)a->user_id;
        e.itemid = (uint32_t)a->item_id;
        e.useritemid = (uint32_t)a->user_item_id;
        e.correlationid = (char *)a->cid;
        len = backend__auction_cancelled_event__get_packed_size(&e);
        if (len > sizeof buf)
            return GF_ETOOBIG;
        backend__auction_cancelled_event__pack(&e, buf);
        break;
    }
    default:
        return GF_EINVAL;
    }
    if (n < 2 * len + 3)
        return GF_ETOOBIG;
    bytea_hex(buf, len, out);
    return GF_OK;
}
