/* Deliveries into event records: which event a delivery is, whether it can be decoded and
 * whether its fields are valid. Pure (no I/O, no globals); whatever a message holds, the
 * answer is a record or a reason to dead-letter it. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "backend.pb-c.h"
#include "eventlog.h"
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

static const struct event_kind kinds[] = {
    {GF_EVENT_BUY_ITEM, decode_buy_item},
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
     * disagree on what identifies the event: storing it could store it twice. */
    if (d->message_id != NULL && d->message_id[0] != '\0') {
        if (!gf_uuid_normalize(d->message_id, strlen(d->message_id), r.message_id) ||
            strcmp(r.message_id, r.correlation_id) != 0) {
            char mid[48];
            gf_log_safe(mid, sizeof mid, d->message_id);
            snprintf(why, whysz, "message_id \"%s\" is not the correlationId %s", mid,
                     r.correlation_id);
            v = EVENT_MESSAGE_ID_MISMATCH;
            goto fail;
        }
    } else {
        memcpy(r.message_id, r.correlation_id, sizeof r.message_id);
    }
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
