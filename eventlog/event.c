/* Deliveries into event records: which event a delivery is, whether it can be decoded and
 * whether its fields are valid. Pure (no I/O, no globals); whatever a message holds, the
 * answer is a record or a reason to dead-letter it. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "backend.pb-c.h"
#include "eventlog.h"
#include "gf/auth.h"
#include "gf/log.h"

/* Times outside 1970..9999 are not believed (a timestamptz would hold them, a client would
 * not): the next source of the time is used instead. */
#define EVENT_TIME_MAX_S 253402300799LL /* 9999-12-31T23:59:59Z */

/* One event the service knows: its name (routing key and type) and its decoder, which fills
 * the record's fields from the body or says why it cannot. */
struct event_kind {
    const char *name;
    enum event_verdict (*decode)(const void *body, size_t len, struct event_record *r, char *why,
                                 size_t whysz);
};

static const char *const verdict_names[EVENT_NVERDICTS] = {
    [EVENT_OK] = "ok",
    [EVENT_UNKNOWN_TYPE] = "unknown_type",
    [EVENT_BAD_CONTENT_TYPE] = "bad_content_type",
    [EVENT_UNDECODABLE] = "undecodable",
    [EVENT_INVALID_FIELD] = "invalid_field",
    [EVENT_BAD_CORRELATION_ID] = "bad_correlation_id",
    [EVENT_MESSAGE_ID_MISMATCH] = "message_id_mismatch",
    [EVENT_REJECTED_BY_DATABASE] = "rejected_by_database",
};

const char *event_verdict_str(enum event_verdict v)
{
    return (unsigned)v < EVENT_NVERDICTS ? verdict_names[v] : "unknown";
}

/* ---- decoders: one per known event ---------------------------------------------------------- */

/* Checks a protobuf string field holding a correlation id and writes it normalized. */
static enum event_verdict correlation_id(const char *s, char out[GF_UUID_STRLEN + 1], char *why,
                                         size_t whysz)
{
    if (s == NULL || !gf_uuid_normalize(s, strlen(s), out)) {
        char safe[48];
        gf_log_safe(safe, sizeof safe, s);
        snprintf(why, whysz, "correlationId \"%s\" is not a UUID", safe);
        return EVENT_BAD_CORRELATION_ID;
    }
    return EVENT_OK;
}

static enum event_verdict decode_buy_item(const void *body, size_t len, struct event_record *r,
                                          char *why, size_t whysz)
{
    enum event_verdict v = EVENT_UNDECODABLE;
    Backend__BuyItemEvent *e = backend__buy_item_event__unpack(NULL, len, body);
    if (e == NULL) {
        snprintf(why, whysz, "the body (%zu bytes) is not a backend.BuyItemEvent", len);
        goto out;
    }
    v = EVENT_INVALID_FIELD;
    if (e->userid == 0 || e->itemid == 0 || e->useritemid == 0) {
        snprintf(why, whysz, "%s is missing or 0",
                 e->userid == 0   ? "userId"
                 : e->itemid == 0 ? "itemId"
                                  : "userItemId");
        goto out;
    }
    v = correlation_id(e->correlationid, r->correlation_id, why, whysz);
    if (v != EVENT_OK)
        goto out;
    r->data = json_pack("{s:I,s:I,s:I,s:s}", "userId", (json_int_t)e->userid, "itemId",
                        (json_int_t)e->itemid, "userItemId", (json_int_t)e->useritemid,
                        "correlationId", r->correlation_id);
    if (r->data == NULL) {
        /* Out of memory: not the message's fault, but nothing else can be done with it now
         * without blocking the queue; say so plainly. */
        snprintf(why, whysz, "out of memory while decoding");
        v = EVENT_UNDECODABLE;
        goto out;
    }
    r->user_id = e->userid;
    snprintf(r->text, sizeof r->text, "user %u bought item %u (user item %u)", e->userid, e->itemid,
             e->useritemid);
out:
    if (e != NULL)
        backend__buy_item_event__free_unpacked(e, NULL);
    return v;
}

/* ---- AdminActionEvent: the audit of an operator's change (proto/backend.proto) ------------- */

/* What each action must carry besides its actor and ids (proto/backend.proto's table). */
enum {
    NEED_USER = 1 << 0,
    NEED_TARGET = 1 << 1,
    NEED_ITEM = 1 << 2,
    NEED_AMOUNT = 1 << 3,
    NEED_VERSION = 1 << 4, /* and fields */
};

static const struct admin_action {
    const char *name;
    unsigned need;
} admin_actions[] = {
    {"user_created", NEED_USER | NEED_TARGET},
    {"item_created", NEED_TARGET | NEED_ITEM},
    {"item_changed", NEED_TARGET | NEED_ITEM | NEED_VERSION},
    {"marketplace_item_created", NEED_TARGET | NEED_ITEM},
    {"user_item_created", NEED_USER | NEED_TARGET | NEED_ITEM},
    {"gxp_minted", NEED_USER | NEED_AMOUNT},
    {"item_bought_for_user", NEED_USER | NEED_TARGET | NEED_ITEM},
    {"password_set", NEED_USER},
    {"auction_created_for_user", NEED_USER | NEED_TARGET | NEED_ITEM},
    {"auction_bid_for_user", NEED_USER | NEED_TARGET | NEED_AMOUNT},
    {"auction_cancelled_for_user", NEED_USER | NEED_TARGET | NEED_ITEM},
};

/* s is valid UTF-8 (jansson checks it as json_string does), of 1..max bytes. */
static bool utf8_text(const char *s, size_t max)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
}

/* A name (valid UTF-8) for the text: cut at a character's start so that at most max bytes
 * remain (an ellipsis "..." marks a cut), control characters as '?'. */
GF_TESTABLE void event_text_name(char *out, size_t max, const char *name)
{
    size_t n = strlen(name);
    size_t cut = n;
    if (max < 4) {
        out[0] = '\0';
        return;
    }
    if (n > max - 1) {
        cut = max - 4;
        while (cut > 0 && ((unsigned char)name[cut] & 0xc0) == 0x80)
            cut--;
    }
    size_t j = 0;
    for (size_t i = 0; i < cut; i++) {
        unsigned char c = (unsigned char)name[i];
        out[j++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (cut < n) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j] = '\0';
}

/* The sentence of an audit event, e.g. "admin root (id 1) minted 100 GXP for user 5". */
static void admin_text(char *out, size_t n, const Backend__AdminActionEvent *e,
                       const struct admin_action *a)
{
    char actor[48];
    event_text_name(actor, sizeof actor, e->actorname);
    int w = snprintf(out, n, "%s %s (id %u) ", e->actorrole, actor, e->actorid);
    if (w < 0 || (size_t)w >= n)
        return;
    out += w;
    n -= (size_t)w;
    const char *act = a->name;
    if (strcmp(act, "user_created") == 0)
        snprintf(out, n, "created user %u", e->userid);
    else if (strcmp(act, "item_created") == 0)
        snprintf(out, n, "created item %u (cost %u)", e->targetid, e->cost);
    else if (strcmp(act, "item_changed") == 0)
        snprintf(out, n, "changed %s%s%s of item %u (version %llu)", e->fields[0],
                 e->n_fields > 1 ? " and " : "", e->n_fields > 1 ? e->fields[1] : "", e->targetid,
                 (unsigned long long)e->version);
    else if (strcmp(act, "marketplace_item_created") == 0)
        snprintf(out, n, "put %u of item %u on the marketplace (marketplace item %u)", e->count,
                 e->itemid, e->targetid);
    else if (strcmp(act, "user_item_created") == 0)
        snprintf(out, n, "gave user %u %u of item %u (user item %u)", e->userid, e->count,
                 e->itemid, e->targetid);
    else if (strcmp(act, "gxp_minted") == 0)
        snprintf(out, n, "minted %u GXP for user %u", e->amount, e->userid);
    else if (strcmp(act, "item_bought_for_user") == 0)
        snprintf(out, n, "bought item %u for user %u (user item %u, cost %u)", e->itemid, e->userid,
                 e->targetid, e->cost);
    else if (strcmp(act, "auction_created_for_user") == 0)
        snprintf(out, n, "auctioned a unit of item %u for user %u (auction %u)", e->itemid,
                 e->userid, e->targetid);
    else if (strcmp(act, "auction_bid_for_user") == 0)
        snprintf(out, n, "bid %u GXP for user %u on auction %u", e->amount, e->userid, e->targetid);
    else if (strcmp(act, "auction_cancelled_for_user") == 0)
        snprintf(out, n, "cancelled auction %u for user %u", e->targetid, e->userid);
    else
        snprintf(out, n, "set the password of user %u", e->userid);
}

/* Its fields' rules: a known action with what it needs, an actor (id, name, role), a UUID for
 * eventId and for correlationId; item_changed names one or two distinct fields of "name" and
 * "cost". Anything else is an invalid field. */
static enum event_verdict admin_check(const Backend__AdminActionEvent *e,
                                      const struct admin_action **out, char *why, size_t whysz)
{
    const struct admin_action *a = NULL;
    for (size_t i = 0; e->action != NULL && i < sizeof admin_actions / sizeof admin_actions[0];
         i++) {
        if (strcmp(e->action, admin_actions[i].name) == 0)
            a = &admin_actions[i];
    }
    const char *bad = NULL;
    enum gf_role role;
    if (a == NULL)
        bad = "action is not a known action";
    else if (e->actorid == 0)
        bad = "actorId is missing or 0";
    else if (!utf8_text(e->actorname, GF_AUTH_NAME_MAX))
        bad = "actorName is not 1..255 bytes of UTF-8";
    else if (e->actorrole == NULL || !gf_role_parse(e->actorrole, &role))
        bad = "actorRole is not a role";
    else if ((a->need & NEED_USER) && e->userid == 0)
        bad = "userId is missing or 0";
    else if ((a->need & NEED_TARGET) && e->targetid == 0)
        bad = "targetId is missing or 0";
    else if ((a->need & NEED_ITEM) && e->itemid == 0)
        bad = "itemId is missing or 0";
    else if ((a->need & NEED_AMOUNT) && e->amount == 0)
        bad = "amount is missing or 0";
    else if ((a->need & NEED_VERSION) && e->version == 0)
        bad = "version is missing or 0";
    else if ((a->need & NEED_VERSION) ? e->n_fields < 1 || e->n_fields > 2 : e->n_fields != 0)
        bad = "fields do not fit the action";
    for (size_t i = 0; bad == NULL && i < e->n_fields; i++) {
        const char *f = e->fields[i];
        if (f == NULL || (strcmp(f, "name") != 0 && strcmp(f, "cost") != 0) ||
            (i == 1 && strcmp(f, e->fields[0]) == 0))
            bad = "fields holds something other than \"name\" and \"cost\"";
    }
    if (bad != NULL) {
        snprintf(why, whysz, "%s", bad);
        return EVENT_INVALID_FIELD;
    }
    *out = a;
    return EVENT_OK;
}

static enum event_verdict decode_admin_action(const void *body, size_t len, struct event_record *r,
                                              char *why, size_t whysz)
{
    enum event_verdict v = EVENT_UNDECODABLE;
    const struct admin_action *a = NULL;
    Backend__AdminActionEvent *e = backend__admin_action_event__unpack(NULL, len, body);
    if (e == NULL) {
        snprintf(why, whysz, "the body (%zu bytes) is not a backend.AdminActionEvent", len);
        goto out;
    }
    v = admin_check(e, &a, why, whysz);
    if (v != EVENT_OK)
        goto out;
    v = correlation_id(e->correlationid, r->correlation_id, why, whysz);
    if (v != EVENT_OK)
        goto out;
    if (e->eventid == NULL || !gf_uuid_normalize(e->eventid, strlen(e->eventid), r->message_id)) {
        snprintf(why, whysz, "eventId is not a UUID");
        v = EVENT_INVALID_FIELD;
        goto out;
    }
    json_t *fields = json_array();
    for (size_t i = 0; fields != NULL && i < e->n_fields; i++) {
        if (json_array_append_new(fields, json_string(e->fields[i])) != 0) {
            json_decref(fields);
            fields = NULL;
        }
    }
    r->data =
        fields == NULL
            ? NULL
            : json_pack("{s:s,s:s,s:I,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:s}", "eventId",
                        r->message_id, "action", a->name, "actorId", (json_int_t)e->actorid,
                        "actorName", e->actorname, "actorRole", e->actorrole, "userId",
                        (json_int_t)e->userid, "targetId", (json_int_t)e->targetid, "itemId",
                        (json_int_t)e->itemid, "amount", (json_int_t)e->amount, "count",
                        (json_int_t)e->count, "cost", (json_int_t)e->cost, "version",
                        (json_int_t)(e->version > INT64_MAX ? INT64_MAX : e->version), "fields",
                        fields, "correlationId", r->correlation_id);
    if (r->data == NULL) {
        snprintf(why, whysz, "out of memory while decoding");
        v = EVENT_UNDECODABLE;
        goto out;
    }
    r->user_id = e->userid; /* 0: none (stored NULL) */
    admin_text(r->text, sizeof r->text, e, a);
out:
    if (e != NULL)
        backend__admin_action_event__free_unpacked(e, NULL);
    return v;
}

/* ---- the auction saga's events (proto/backend.proto; SPEC §2b) ------------------------------ */

/* A field of an event with its name as the proto spells it. */
struct event_field {
    const char *name;
    uint32_t value;
};

/* Every one of the n fields is set (nonzero); else an invalid field naming the first that is
 * not. */
static enum event_verdict need_nonzero(const struct event_field *f, size_t n, char *why,
                                       size_t whysz)
{
    for (size_t i = 0; i < n; i++) {
        if (f[i].value == 0) {
            snprintf(why, whysz, "%s is missing or 0", f[i].name);
            return EVENT_INVALID_FIELD;
        }
    }
    return EVENT_OK;
}

/* r->data = {"name":value,...,"correlationId":...} of the n fields: NULL without memory. */
static json_t *fields_json(const struct event_field *f, size_t n, const char *cid)
{
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && i < n; i++) {
        if (json_object_set_new(o, f[i].name, json_integer((json_int_t)f[i].value)) != 0) {
            json_decref(o);
            o = NULL;
        }
    }
    if (o != NULL && json_object_set_new(o, "correlationId", json_string(cid)) != 0) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

/* The common tail of the auction decoders: the correlation id, then the data. */
static enum event_verdict auction_record(const char *cid, const struct event_field *f, size_t n,
                                         struct event_record *r, char *why, size_t whysz)
{
    enum event_verdict v = correlation_id(cid, r->correlation_id, why, whysz);
    if (v != EVENT_OK)
        return v;
    r->data = fields_json(f, n, r->correlation_id);
    if (r->data == NULL) {
        snprintf(why, whysz, "out of memory while decoding");
        return EVENT_UNDECODABLE;
    }
    return EVENT_OK;
}

/* A bid outbid the user's leading bid; the saga refunds it. Stored as the outbid bidder's. */
static enum event_verdict decode_auction_outbid(const void *body, size_t len,
                                                struct event_record *r, char *why, size_t whysz)
{
    enum event_verdict v = EVENT_UNDECODABLE;
    Backend__AuctionOutbidEvent *e = backend__auction_outbid_event__unpack(NULL, len, body);
    if (e == NULL) {
        snprintf(why, whysz, "the body (%zu bytes) is not a backend.AuctionOutbidEvent", len);
        goto out;
    }
    const struct event_field f[] = {
        {"auctionId", e->auctionid}, {"userId", e->userid},     {"bidId", e->bidid},
        {"amount", e->amount},       {"newBidId", e->newbidid}, {"newAmount", e->newamount},
        {"itemId", e->itemid}, /* not required: last */
    };
    v = need_nonzero(f, sizeof f / sizeof f[0] - 1, why, whysz);
    if (v != EVENT_OK)
        goto out;
    v = auction_record(e->correlationid, f, sizeof f / sizeof f[0], r, why, whysz);
    if (v != EVENT_OK)
        goto out;
    r->user_id = e->userid;
    snprintf(r->text, sizeof r->text,
             "user %u was outbid on auction %u: bid %u of %u GXP refunded, new bid %u of %u",
             e->userid, e->auctionid, e->bidid, e->amount, e->newbidid, e->newamount);
out:
    if (e != NULL)
        backend__auction_outbid_event__free_unpacked(e, NULL);
    return v;
}

/* The auction ended: a winner paid and got the item, or without bids the item went back to the
 * seller. Stored as the seller's. */
static enum event_verdict decode_auction_settled(const void *body, size_t len,
                                                 struct event_record *r, char *why, size_t whysz)
{
    enum event_verdict v = EVENT_UNDECODABLE;
    Backend__AuctionSettledEvent *e = backend__auction_settled_event__unpack(NULL, len, body);
    if (e == NULL) {
        snprintf(why, whysz, "the body (%zu bytes) is not a backend.AuctionSettledEvent", len);
        goto out;
    }
    const struct event_field f[] = {
        {"auctionId", e->auctionid},   {"sellerId", e->sellerid}, {"itemId", e->itemid},
        {"userItemId", e->useritemid}, {"winnerId", e->winnerid}, {"amount", e->amount},
        {"bidId", e->bidid},
    };
    v = need_nonzero(f, 4, why, whysz); /* auctionId..userItemId; the winner's three below */
    if (v != EVENT_OK)
        goto out;
    /* A winner comes with the winning bid and its amount; no winner, with neither. */
    bool won = e->winnerid != 0;
    if ((e->amount != 0) != won || (e->bidid != 0) != won) {
        snprintf(why, whysz, "winnerId, amount and bidId are not all set or all 0");
        v = EVENT_INVALID_FIELD;
        goto out;
    }
    v = auction_record(e->correlationid, f, sizeof f / sizeof f[0], r, why, whysz);
    if (v != EVENT_OK)
        goto out;
    r->user_id = e->sellerid;
    if (won)
        snprintf(r->text, sizeof r->text,
                 "auction %u settled: user %u won item %u for %u GXP from user %u", e->auctionid,
                 e->winnerid, e->itemid, e->amount, e->sellerid);
    else
        snprintf(r->text, sizeof r->text,
                 "auction %u ended without bids: item %u went back to user %u", e->auctionid,
                 e->itemid, e->sellerid);
out:
    if (e != NULL)
        backend__auction_settled_event__free_unpacked(e, NULL);
    return v;
}

/* The seller cancelled before any bid; the unit went back. Stored as the seller's. */
static enum event_verdict decode_auction_cancelled(const void *body, size_t len,
                                                   struct event_record *r, char *why, size_t whysz)
{
    enum event_verdict v = EVENT_UNDECODABLE;
    Backend__AuctionCancelledEvent *e = backend__auction_cancelled_event__unpack(NULL, len, body);
    if (e == NULL) {
        snprintf(why, whysz, "the body (%zu bytes) is not a backend.AuctionCancelledEvent", len);
        goto out;
    }
    const struct event_field f[] = {
        {"auctionId", e->auctionid},
        {"sellerId", e->sellerid},
        {"itemId", e->itemid},
        {"userItemId", e->useritemid},
    };
    v = need_nonzero(f, sizeof f / sizeof f[0], why, whysz);
    if (v != EVENT_OK)
        goto out;
    v = auction_record(e->correlationid, f, sizeof f / sizeof f[0], r, why, whysz);
    if (v != EVENT_OK)
        goto out;
    r->user_id = e->sellerid;
    snprintf(r->text, sizeof r->text, "auction %u cancelled by user %u: item %u went back",
             e->auctionid, e->sellerid, e->itemid);
out:
    if (e != NULL)
        backend__auction_cancelled_event__free_unpacked(e, NULL);
    return v;
}

static const struct event_kind kinds[] = {
    {GF_EVENT_BUY_ITEM, decode_buy_item},
    {GF_EVENT_ADMIN_ACTION, decode_admin_action},
    {GF_EVENT_AUCTION_OUTBID, decode_auction_outbid},
    {GF_EVENT_AUCTION_SETTLED, decode_auction_settled},
    {GF_EVENT_AUCTION_CANCELLED, decode_auction_cancelled},
};

/* ---- the properties ------------------------------------------------------------------------- */

/* The event a delivery is: named by its type property, else by its routing key (a message
 * moved by hand, e.g. from the dead-letter queue, keeps its type but not its routing key).
 * When both name an event, they must name the same. NULL (and why) when unknown. */
static const struct event_kind *event_kind_of(const struct gf_amqp_delivery *d, char *why,
                                              size_t whysz)
{
    const char *type = d->type != NULL ? d->type : "";
    const char *key = d->routing_key != NULL ? d->routing_key : "";
    const struct event_kind *by_type = NULL, *by_key = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strcmp(type, kinds[i].name) == 0)
            by_type = &kinds[i];
        if (strcmp(key, kinds[i].name) == 0)
            by_key = &kinds[i];
    }
    const struct event_kind *k = type[0] != '\0' ? by_type : by_key;
    if (k != NULL && (by_key == NULL || by_key == k))
        return k;
    char t[48], rk[48];
    gf_log_safe(t, sizeof t, type);
    gf_log_safe(rk, sizeof rk, key);
    if (k != NULL)
        snprintf(why, whysz, "type \"%s\" and routing key \"%s\" name different events", t, rk);
    else
        snprintf(why, whysz, "no known event has type \"%s\" (routing key \"%s\")", t, rk);
    return NULL;
}

/* An absent content_type is accepted (the name says what the body is); a set one must be
 * application/x-protobuf, any case, parameters allowed ("; proto=..."). */
GF_TESTABLE bool event_content_type_ok(const char *ct)
{
    if (ct == NULL || ct[0] == '\0')
        return true;
    size_t n = strlen(GF_EVENTS_CONTENT_TYPE);
    if (strncasecmp(ct, GF_EVENTS_CONTENT_TYPE, n) != 0)
        return false;
    ct += n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* When it happened: the header x-occurred-at-us, else the timestamp property, else now. */
GF_TESTABLE int64_t event_occurred_at(const struct gf_amqp_delivery *d, int64_t now_us)
{
    if (d->occurred_at_us > 0 && d->occurred_at_us / 1000000 <= EVENT_TIME_MAX_S)
        return d->occurred_at_us;
    if (d->timestamp_s > 0 && d->timestamp_s <= EVENT_TIME_MAX_S)
        return d->timestamp_s * 1000000;
    return now_us;
}

/* ---- the whole delivery --------------------------------------------------------------------- */

enum event_verdict event_decode(const struct gf_amqp_delivery *d, int64_t now_us,
                                struct event_record *out, char *why, size_t whysz)
{
    struct event_record r = {0};
    enum event_verdict v = EVENT_UNKNOWN_TYPE;
    why[0] = '\0';
    const struct event_kind *k = event_kind_of(d, why, whysz);
    if (k == NULL)
        goto fail;
    v = EVENT_BAD_CONTENT_TYPE;
    if (!event_content_type_ok(d->content_type)) {
        char ct[64];
        gf_log_safe(ct, sizeof ct, d->content_type);
        snprintf(why, whysz, "content_type \"%s\" is not %s", ct, GF_EVENTS_CONTENT_TYPE);
        goto fail;
    }
    v = k->decode(d->body != NULL ? d->body : "", d->body != NULL ? d->len : 0, &r, why, whysz);
    if (v != EVENT_OK)
        goto fail;
    /* SPEC §4: message_id = correlation id. One that differs means the publisher and we
     * disagree on what identifies the event: storing it could store it twice. The event's
     * identity is that id, unless its decoder set one of its own (an audit's eventId). */
    char mid_norm[GF_UUID_STRLEN + 1];
    if (d->message_id != NULL && d->message_id[0] != '\0') {
        if (!gf_uuid_normalize(d->message_id, strlen(d->message_id), mid_norm) ||
            strcmp(mid_norm, r.correlation_id) != 0) {
            char mid[48];
            gf_log_safe(mid, sizeof mid, d->message_id);
            snprintf(why, whysz, "message_id \"%s\" is not the correlationId %s", mid,
                     r.correlation_id);
            v = EVENT_MESSAGE_ID_MISMATCH;
            goto fail;
        }
    }
    if (r.message_id[0] == '\0')
        memcpy(r.message_id, r.correlation_id, sizeof r.message_id);
    r.name = k->name;
    r.occurred_at_us = event_occurred_at(d, now_us);
    *out = r;
    return EVENT_OK;
fail:
    event_record_cleanup(&r);
    return v;
}

void event_record_cleanup(struct event_record *r)
{
    if (r == NULL)
        return;
    json_decref(r->data);
    r->data = NULL;
}
