/* eventlog/event.c: which deliveries are stored and which are dead-lettered, and why; that no
 * content of a message can crash the decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend.pb-c.h"
#include "eventlog.h"
#include "gf/log.h"

/* The helpers event.c exposes to tests (GF_TESTABLE). */
bool event_content_type_ok(const char *ct);
int64_t event_occurred_at(const struct gf_amqp_delivery *d, int64_t now_us);
void event_text_name(char *out, size_t max, const char *name);

#define CID "0b7f6f3e-2a4c-4d0e-9f51-3c1d2b7a9e10"
#define NOW_US 1790000000123456LL

static uint8_t body_buf[1024];

/* A delivery of BuyItemEvent as the backend publishes it (SPEC §4), body packed from the
 * fields given. */
static struct gf_amqp_delivery delivery(uint32_t user, uint32_t item, uint32_t user_item,
                                        const char *cid)
{
    Backend__BuyItemEvent e = BACKEND__BUY_ITEM_EVENT__INIT;
    e.userid = user;
    e.itemid = item;
    e.useritemid = user_item;
    e.correlationid = (char *)cid;
    assert_true(backend__buy_item_event__get_packed_size(&e) <= sizeof body_buf);
    size_t len = backend__buy_item_event__pack(&e, body_buf);
    return (struct gf_amqp_delivery){
        .tag = 1,
        .routing_key = GF_EVENT_BUY_ITEM,
        .content_type = GF_EVENTS_CONTENT_TYPE,
        .type = GF_EVENT_BUY_ITEM,
        .message_id = cid,
        .correlation_id = cid,
        .timestamp_s = 1700000000,
        .occurred_at_us = 1700000000654321LL,
        .body = body_buf,
        .len = len,
    };
}

static enum event_verdict decode(const struct gf_amqp_delivery *d, char *why, size_t n)
{
    struct event_record r;
    memset(&r, 0x5a, sizeof r); /* garbage: nothing of it may be trusted or freed on failure */
    enum event_verdict v = event_decode(d, NOW_US, &r, why, n);
    if (v == EVENT_OK)
        event_record_cleanup(&r);
    return v;
}

static void a_valid_event_fills_every_field(void **state)
{
    (void)state;
    struct gf_amqp_delivery d = delivery(1, 2, 3, CID);
    struct event_record r = {0};
    char why[200];
    assert_int_equal(event_decode(&d, NOW_US, &r, why, sizeof why), EVENT_OK);
    assert_string_equal(r.name, "BuyItemEvent");
    assert_int_equal(r.user_id, 1);
    assert_string_equal(r.correlation_id, CID);
    assert_string_equal(r.message_id, CID);
    assert_string_equal(r.text, "user 1 bought item 2 (user item 3)");
    assert_true(r.occurred_at_us == 1700000000654321LL);
    char *data = json_dumps(r.data, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(data, "{\"correlationId\":\"" CID "\",\"itemId\":2,\"userId\":1,"
                              "\"userItemId\":3}");
    free(data);
    event_record_cleanup(&r);
    assert_null(r.data);
    event_record_cleanup(&r); /* twice is harmless */
}

static void the_largest_ids_and_an_uppercase_id_are_accepted(void **state)
{
    (void)state;
    struct gf_amqp_delivery d =
        delivery(UINT32_MAX, UINT32_MAX, UINT32_MAX, "0B7F6F3E-2A4C-4D0E-9F51-3C1D2B7A9E10");
    d.message_id = CID; /* the same id, another case */
    struct event_record r = {0};
    char why[200];
    assert_int_equal(event_decode(&d, NOW_US, &r, why, sizeof why), EVENT_OK);
    assert_true(r.user_id == 4294967295LL);
    assert_string_equal(r.correlation_id, CID);
    assert_string_equal(r.text, "user 4294967295 bought item 4294967295 (user item 4294967295)");
    event_record_cleanup(&r);
}

static void absent_properties_fall_back(void **state)
{
    (void)state;
    char why[200];
    struct gf_amqp_delivery d = delivery(1, 2, 3, CID);
    d.content_type = "";
    d.type = "";
    d.message_id = "";
    d.correlation_id = "";
    struct event_record r = {0};
    assert_int_equal(event_decode(&d, NOW_US, &r, why, sizeof why), EVENT_OK);
    assert_string_equal(r.message_id, CID); /* the correlation id stands in */
    event_record_cleanup(&r);
    /* NULL strings too (the header says "", but nothing may crash). */
    d.content_type = d.type = d.message_id = d.correlation_id = NULL;
    assert_int_equal(decode(&d, why, sizeof why), EVENT_OK);
    /* Moved by hand (routing key = a queue name): the type still says what it is. */
    d.type = GF_EVENT_BUY_ITEM;
    d.routing_key = "eventlog.events";
    assert_int_equal(decode(&d, why, sizeof why), EVENT_OK);
}

static void unknown_events_are_dead_lettered(void **state)
{
    (void)state;
    char why[200];
    struct gf_amqp_delivery d = delivery(1, 2, 3, CID);
    d.type = "SellItemEvent";
    assert_int_equal(decode(&d, why, sizeof why), EVENT_UNKNOWN_TYPE);
    assert_non_null(strstr(why, "SellItemEvent"));
    d.type = "";
    d.routing_key = "SomethingElse";
    assert_int_equal(decode(&d, why, sizeof why), EVENT_UNKNOWN_TYPE);
    d.type = "buyitemevent"; /* names are case-sensitive */
    d.routing_key = GF_EVENT_BUY_ITEM;
    assert_int_equal(decode(&d, why, sizeof why), EVENT_UNKNOWN_TYPE);
    d.type = "Buy\"Item\nEvent x=1"; /* cannot forge log fields */
    assert_int_equal(decode(&d, why, sizeof why), EVENT_UNKNOWN_TYPE);
    assert_null(strchr(why, '\n'));
    assert_non_null(strstr(why, "Buy?Item?Event?x=1"));
}

static void content_types(void **state)
{
    (void)state;
    assert_true(event_content_type_ok(NULL));
    assert_true(event_content_type_ok(""));
    assert_true(event_content_type_ok("application/x-protobuf"));
    assert_true(event_content_type_ok("Application/X-Protobuf"));
    assert_true(event_content_type_ok("application/x-protobuf; proto=backend.BuyItemEvent"));
    assert_true(event_content_type_ok("application/x-protobuf ;x=1"));
    assert_false(event_content_type_ok("application/json"));
    assert_false(event_content_type_ok("application/x-protobufx"));
    assert_false(event_content_type_ok("application/x-proto"));
    assert_false(event_content_type_ok(" application/x-protobuf"));
    char why[200];
    struct gf_amqp_delivery d = delivery(1, 2, 3, CID);
    d.content_type = "application/json";
    assert_int_equal(decode(&d, why, sizeof why), EVENT_BAD_CONTENT_TYPE);
    assert_non_null(strstr(why, "application/json"));
}

static void zero_ids_are_invalid_fields(void **state)
{
    (void)state;
    char why[200];
    struct gf_amqp_delivery d = delivery(0, 2, 3, CID);
    assert_int_equal(decode(&d, why, sizeof why), EVENT_INVALID_FIELD);
    assert_non_null(strstr(why, "userId"));
    d = delivery(1, 0, 3, CID);
    assert_int_equal(decode(&d, why, sizeof why), EVENT_INVALID_FIELD);
    assert_non_null(strstr(why, "itemId"));
    d = delivery(1, 2, 0, CID);
    assert_int_equal(decode(&d, why, sizeof why), EVENT_INVALID_FIELD);
    assert_non_null(strstr(why, "userItemId"));
    /* An empty body is a message of defaults: every id 0. */
    d = delivery(1, 2, 3, CID);
    d.len = 0;
    assert_int_equal(decode(&d, why, sizeof why), EVENT_INVALID_FIELD);
    d.body = NULL;
    assert_int_equal(decode(&d, why, sizeof why), EVENT_INVALID_FIELD);
}

static void correlation_ids_must_be_uuids(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "not-a-uuid",
        "0b7f6f3e2a4c4d0e9f513c1d2b7a9e10",
        "0b7f6f3e-2a4c-4d0e-9f51-3c1d2b7a9e1",
        "0b7f6f3e-2a4c-4d0e-9f51-3c1d2b7a9e100",
        "0b7f6f3e-2a4c-4d0e-9f51-3c1d2b7a9e1g",
        "{0b7f6f3e-2a4c-4d0e-9f51-3c1d2b7a9e10}",
        " 0b7f6f3e-2a4c-4d0e-9f51-3c1d2b7a9e10",
    };
    char why[200];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct gf_amqp_delivery d = delivery(1, 2, 3, bad[i]);
        d.message_id = "";
        assert_int_equal(decode(&d, why, sizeof why), EVENT_BAD_CORRELATION_ID);
    }
}

static void a_message_id_other_than_the_correlation_id_is_refused(void **state)
{
    (void)state;
    char why[200];
    struct gf_amqp_delivery d = delivery(1, 2, 3, CID);
    d.message_id = "5d0c1b7e-6f0a-4f7e-8a4b-2b9c0d1e2f3a";
    assert_int_equal(decode(&d, why, sizeof why), EVENT_MESSAGE_ID_MISMATCH);
    d.message_id = "msg-1";
    assert_int_equal(decode(&d, why, sizeof why), EVENT_MESSAGE_ID_MISMATCH);
    assert_non_null(strstr(why, "msg-1"));
}

static void bodies_that_do_not_decode_are_undecodable(void **state)
{
    (void)state;
    char why[200];
    struct gf_amqp_delivery d = delivery(1, 2, 3, CID);
    d.len -= 5; /* cut inside the correlation id */
    assert_int_equal(decode(&d, why, sizeof why), EVENT_UNDECODABLE);
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    d.body = garbage;
    d.len = sizeof garbage;
    assert_int_equal(decode(&d, why, sizeof why), EVENT_UNDECODABLE);
    static const char json[] = "{\"userId\":1,\"itemId\":2}";
    d.body = json;
    d.len = sizeof json - 1;
    assert_int_equal(decode(&d, why, sizeof why), EVENT_UNDECODABLE);
    /* userId as a length-delimited field (wrong wire type). */
    static const uint8_t wrong_wire[] = {0x0a, 0x01, 0x41};
    d.body = wrong_wire;
    d.len = sizeof wrong_wire;
    assert_int_equal(decode(&d, why, sizeof why), EVENT_UNDECODABLE);
}

/* Random bodies and random mutations of a valid one: never a crash (run under ASan), and a
 * body the decoder accepts is a complete record. */
static void no_body_crashes_the_decoder(void **state)
{
    (void)state;
    srand(42);
    char why[200];
    uint8_t buf[300];
    int ok = 0;
    for (int round = 0; round < 20000; round++) {
        struct gf_amqp_delivery d = delivery(7, 8, 9, CID);
        size_t len = d.len;
        memcpy(buf, body_buf, len);
        if (round % 2 == 0) {
            len = (size_t)rand() % sizeof buf;
            for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t)rand();
        } else {
            for (int k = rand() % 4; k >= 0; k--)
                buf[(size_t)rand() % len] = (uint8_t)rand();
            len = (size_t)rand() % (len + 1);
        }
        d.body = buf;
        d.len = len;
        d.message_id = "";
        struct event_record r = {0};
        if (event_decode(&d, NOW_US, &r, why, sizeof why) == EVENT_OK) {
            ok++;
            assert_true(r.user_id > 0);
            assert_non_null(r.data);
            assert_int_equal(strlen(r.correlation_id), 36);
            event_record_cleanup(&r);
        }
        assert_true(strlen(why) < sizeof why);
    }
    assert_true(ok < 20000);
}

static void the_time_comes_from_the_header_the_timestamp_or_now(void **state)
{
    (void)state;
    struct gf_amqp_delivery d = {0};
    assert_true(event_occurred_at(&d, NOW_US) == NOW_US);
    d.timestamp_s = 1700000000;
    assert_true(event_occurred_at(&d, NOW_US) == 1700000000000000LL);
    d.occurred_at_us = 1700000000654321LL;
    assert_true(event_occurred_at(&d, NOW_US) == 1700000000654321LL);
    /* Beyond year 9999 or negative: not believed, the next source is used. */
    d.occurred_at_us = INT64_MAX;
    assert_true(event_occurred_at(&d, NOW_US) == 1700000000000000LL);
    d.occurred_at_us = -5;
    d.timestamp_s = INT64_MAX;
    assert_true(event_occurred_at(&d, NOW_US) == NOW_US);
    d.timestamp_s = 253402300799LL;
    assert_true(event_occurred_at(&d, NOW_US) == 253402300799000000LL);
}

static void verdicts_have_stable_names(void **state)
{
    (void)state;
    assert_string_equal(event_verdict_str(EVENT_OK), "ok");
    assert_string_equal(event_verdict_str(EVENT_UNKNOWN_TYPE), "unknown_type");
    assert_string_equal(event_verdict_str(EVENT_BAD_CONTENT_TYPE), "bad_content_type");
    assert_string_equal(event_verdict_str(EVENT_UNDECODABLE), "undecodable");
    assert_string_equal(event_verdict_str(EVENT_INVALID_FIELD), "invalid_field");
    assert_string_equal(event_verdict_str(EVENT_BAD_CORRELATION_ID), "bad_correlation_id");
    assert_string_equal(event_verdict_str(EVENT_MESSAGE_ID_MISMATCH), "message_id_mismatch");
    assert_string_equal(event_verdict_str(EVENT_REJECTED_BY_DATABASE), "rejected_by_database");
    assert_string_equal(event_verdict_str(EVENT_NVERDICTS), "unknown");
    assert_string_equal(event_verdict_str((enum event_verdict) - 1), "unknown");
}

/* ---- AdminActionEvent (the audit of an operator's change) ----------------------------------- */

#define EVENT_ID "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d"

/* An AdminActionEvent of action with the fields every action has, as the backend fills them. */
static Backend__AdminActionEvent admin_event(const char *action)
{
    Backend__AdminActionEvent e = BACKEND__ADMIN_ACTION_EVENT__INIT;
    e.eventid = EVENT_ID;
    e.action = (char *)action;
    e.actorid = 1;
    e.actorname = "root";
    e.actorrole = "admin";
    e.correlationid = CID;
    return e;
}

/* Its delivery as the relay publishes it: message_id = the correlation id (SPEC §4). */
static struct gf_amqp_delivery admin_delivery(const Backend__AdminActionEvent *e)
{
    assert_true(backend__admin_action_event__get_packed_size(e) <= sizeof body_buf);
    size_t len = backend__admin_action_event__pack(e, body_buf);
    return (struct gf_amqp_delivery){
        .tag = 1,
        .routing_key = GF_EVENT_ADMIN_ACTION,
        .content_type = GF_EVENTS_CONTENT_TYPE,
        .type = GF_EVENT_ADMIN_ACTION,
        .message_id = CID,
        .correlation_id = CID,
        .occurred_at_us = 1700000000654321LL,
        .body = body_buf,
        .len = len,
    };
}

static void an_audit_event_is_stored_under_its_event_id_with_every_field(void **state)
{
    (void)state;
    Backend__AdminActionEvent e = admin_event("gxp_minted");
    e.userid = 5;
    e.amount = 100;
    struct gf_amqp_delivery d = admin_delivery(&e);
    struct event_record r = {0};
    char why[200];
    assert_int_equal(event_decode(&d, NOW_US, &r, why, sizeof why), EVENT_OK);
    assert_string_equal(r.name, "AdminActionEvent");
    assert_int_equal(r.user_id, 5);
    assert_string_equal(r.correlation_id, CID);
    assert_string_equal(r.message_id, EVENT_ID); /* its identity, not the correlation id */
    assert_string_equal(r.text, "admin root (id 1) minted 100 GXP for user 5");
    char *data = json_dumps(r.data, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(data, "{\"action\":\"gxp_minted\",\"actorId\":1,\"actorName\":\"root\","
                              "\"actorRole\":\"admin\",\"amount\":100,\"correlationId\":\"" CID
                              "\",\"cost\":0,\"count\":0,\"eventId\":\"" EVENT_ID
                              "\",\"fields\":[],\"itemId\":0,\"targetId\":0,\"userId\":5,"
                              "\"version\":0}");
    free(data);
    event_record_cleanup(&r);
    /* The AMQP message_id must still be the correlation id. */
    d.message_id = EVENT_ID;
    assert_int_equal(decode(&d, why, sizeof why), EVENT_MESSAGE_ID_MISMATCH);
}

static void each_action_has_its_sentence_and_an_item_change_has_no_user(void **state)
{
    (void)state;
    static const struct {
        const char *action;
        uint32_t user, target, item, amount, count, cost;
        uint64_t version;
        const char *text;
    } cases[] = {
        {"user_created", 5, 5, 0, 0, 0, 0, 0, "admin root (id 1) created user 5"},
        {"item_created", 0, 7, 7, 0, 0, 12, 0, "admin root (id 1) created item 7 (cost 12)"},
        {"item_changed", 0, 7, 7, 0, 0, 13, 4,
         "admin root (id 1) changed name and cost of item 7 (version 4)"},
        {"marketplace_item_created", 0, 3, 7, 0, 10, 0, 0,
         "admin root (id 1) put 10 of item 7 on the marketplace (marketplace item 3)"},
        {"user_item_created", 5, 9, 7, 0, 2, 0, 0,
         "admin root (id 1) gave user 5 2 of item 7 (user item 9)"},
        {"item_bought_for_user", 5, 9, 7, 0, 0, 12, 0,
         "admin root (id 1) bought item 7 for user 5 (user item 9, cost 12)"},
        {"password_set", 5, 5, 0, 0, 0, 0, 0, "admin root (id 1) set the password of user 5"},
        {"auction_created_for_user", 5, 11, 7, 0, 0, 0, 0,
         "admin root (id 1) auctioned a unit of item 7 for user 5 (auction 11)"},
        {"auction_bid_for_user", 5, 11, 7, 40, 0, 0, 0,
         "admin root (id 1) bid 40 GXP for user 5 on auction 11"},
        {"auction_cancelled_for_user", 5, 11, 7, 0, 0, 0, 0,
         "admin root (id 1) cancelled auction 11 for user 5"},
    };
    char *both[] = {"name", "cost"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Backend__AdminActionEvent e = admin_event(cases[i].action);
        e.userid = cases[i].user;
        e.targetid = cases[i].target;
        e.itemid = cases[i].item;
        e.amount = cases[i].amount;
        e.count = cases[i].count;
        e.cost = cases[i].cost;
        e.version = cases[i].version;
        if (cases[i].version > 0) {
            e.n_fields = 2;
            e.fields = both;
        }
        struct gf_amqp_delivery d = admin_delivery(&e);
        struct event_record r = {0};
        char why[200];
        assert_int_equal(event_decode(&d, NOW_US, &r, why, sizeof why), EVENT_OK);
        assert_string_equal(r.text, cases[i].text);
        assert_int_equal(r.user_id, cases[i].user); /* 0: stored NULL */
        event_record_cleanup(&r);
    }
}

static void audit_events_without_what_their_action_needs_are_invalid(void **state)
{
    (void)state;
    char why[200];
    char *name_only[] = {"name"}, *twice[] = {"cost", "cost"}, *other[] = {"password"};
    struct {
        Backend__AdminActionEvent e;
        const char *why;
    } cases[] = {
        {admin_event("item_deleted"), "action"},   {admin_event(""), "action"},
        {admin_event("gxp_minted"), "userId"},   /* no user */
        {admin_event("user_created"), "userId"}, /* no user */
        {admin_event("item_changed"), "targetId"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct gf_amqp_delivery d = admin_delivery(&cases[i].e);
        assert_int_equal(decode(&d, why, sizeof why), EVENT_INVALID_FIELD);
        assert_non_null(strstr(why, cases[i].why));
    }
    Backend__AdminActionEvent e = admin_event("gxp_minted");
    e.userid = 5;
    e.amount = 0;
    struct gf_amqp_delivery d = admin_delivery(&e);
    assert_int_equal(decode(&d, why, sizeof why), EVENT_INVALID_FIELD);
    assert_non_null(strstr(why, "amount"));
    e.amount = 1;
    e.actorid = 0;
    d = admin_delivery(&e);
    assert_int_equal(decode(&d, why, sizeof why), EVENT_INVALID_FIELD);
    assert_non_null(strstr(why, "actorId"));
    e.actorid = 1;
    e.actorname = "";
    d = admin_delivery(&e);
    assert_int_equal(decode(&d, why, sizeof why), EVENT_INVALID_FIELD);
    e.actorname = "bad \xc3\x28 utf-8";
    d = admin_delivery(&e);
    assert_int_equal(decode(&d, why, sizeof why), EVENT_INVALID_FIELD);
    e.actorname = "root";
    e.actorrole = "superuser";
    d = admin_delivery(&e);
    assert_int_equal(decode(&d, why, sizeof why), EVENT_INVALID_FIELD);
    e.actorrole = "admin";
    e.eventid = "not-a-uuid";
    d = admin_delivery(&e);
    assert_int_equal(decode(&d, why, sizeof why), EVENT_INVALID_FIELD);
    assert_non_null(strstr(why, "eventId"));
    e.eventid = EVENT_ID;
    e.correlationid = "nope";
    d = admin_delivery(&e);
    d.message_id = "";
    assert_int_equal(decode(&d, why, sizeof why), EVENT_BAD_CORRELATION_ID);
    e.correlationid = CID;
    /* fields only for item_changed, and only name and cost, each once */
    e.n_fields = 1;
    e.fields = name_only;
    d = admin_delivery(&e);
    assert_int_equal(decode(&d, why, sizeof why), EVENT_INVALID_FIELD);
    Backend__AdminActionEvent c = admin_event("item_changed");
    c.targetid = c.itemid = 7;
    c.version = 2;
    d = admin_delivery(&c);
    assert_int_equal(decode(&d, why, sizeof why), EVENT_INVALID_FIELD); /* no field */
    c.n_fields = 2;
    c.fields = twice;
    d = admin_delivery(&c);
    assert_int_equal(decode(&d, why, sizeof why), EVENT_INVALID_FIELD);
    c.n_fields = 1;
    c.fields = other;
    d = admin_delivery(&c);
    assert_int_equal(decode(&d, why, sizeof why), EVENT_INVALID_FIELD);
    c.fields = name_only;
    d = admin_delivery(&c);
    assert_int_equal(decode(&d, why, sizeof why), EVENT_OK);
    /* A BuyItemEvent's body under the audit's name does not pass. */
    d = delivery(1, 2, 3, CID);
    d.type = d.routing_key = GF_EVENT_ADMIN_ACTION;
    assert_int_not_equal(decode(&d, why, sizeof why), EVENT_OK);
}

static void long_or_odd_actor_names_are_cut_at_a_character_in_the_text(void **state)
{
    (void)state;
    char out[16];
    event_text_name(out, sizeof out, "root");
    assert_string_equal(out, "root");
    event_text_name(out, sizeof out, "a\tb\x7f");
    assert_string_equal(out, "a?b?");
    event_text_name(out, sizeof out, "exactly-15-byte");
    assert_string_equal(out, "exactly-15-byte");
    event_text_name(out, sizeof out, "sixteen-bytes-xx");
    assert_string_equal(out, "sixteen-byte...");
    /* "\xc3\xa9" (é) across the cut: the whole character goes. */
    event_text_name(out, sizeof out, "abcdefghijk\xc3\xa9zzzzzz");
    assert_string_equal(out, "abcdefghijk...");
    /* The longest name a token holds still leaves room in the text. */
    char name[256];
    memset(name, 'n', 255);
    name[255] = '\0';
    Backend__AdminActionEvent e = admin_event("marketplace_item_created");
    e.actorname = name;
    e.actorid = UINT32_MAX;
    e.targetid = e.itemid = e.count = UINT32_MAX;
    struct gf_amqp_delivery d = admin_delivery(&e);
    struct event_record r = {0};
    char why[200];
    assert_int_equal(event_decode(&d, NOW_US, &r, why, sizeof why), EVENT_OK);
    assert_non_null(strstr(r.text, "nnn... (id 4294967295) put 4294967295 of item 4294967295 on "
                                   "the marketplace (marketplace item 4294967295)"));
    json_t *j = json_string(r.text);
    assert_non_null(j);
    json_decref(j);
    event_record_cleanup(&r);
}

/* ---- the auction saga's events -------------------------------------------------------------- */

#define BID_CID "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a99"

/* A delivery of the event name with body m, as the relay publishes it: routing key and type
 * the name, message_id = correlation_id = cid (SPEC §4). */
static struct gf_amqp_delivery event_delivery(const char *name, const ProtobufCMessage *m,
                                              const char *cid)
{
    assert_true(protobuf_c_message_get_packed_size(m) <= sizeof body_buf);
    size_t len = protobuf_c_message_pack(m, body_buf);
    return (struct gf_amqp_delivery){
        .tag = 1,
        .routing_key = name,
        .content_type = GF_EVENTS_CONTENT_TYPE,
        .type = name,
        .message_id = cid,
        .correlation_id = cid,
        .occurred_at_us = 1700000000654321LL,
        .body = body_buf,
        .len = len,
    };
}

static Backend__AuctionOutbidEvent outbid_event(void)
{
    Backend__AuctionOutbidEvent e = BACKEND__AUCTION_OUTBID_EVENT__INIT;
    e.auctionid = 7, e.userid = 3, e.bidid = 12, e.amount = 50;
    e.newbidid = 13, e.newamount = 60, e.itemid = 2;
    e.correlationid = BID_CID;
    return e;
}

static Backend__AuctionSettledEvent settled_event(bool won)
{
    Backend__AuctionSettledEvent e = BACKEND__AUCTION_SETTLED_EVENT__INIT;
    e.auctionid = 7, e.sellerid = 3, e.itemid = 2;
    e.useritemid = won ? 21 : 20;
    if (won)
        e.winnerid = 4, e.amount = 60, e.bidid = 13;
    e.correlationid = CID;
    return e;
}

static Backend__AuctionCancelledEvent cancelled_event(void)
{
    Backend__AuctionCancelledEvent e = BACKEND__AUCTION_CANCELLED_EVENT__INIT;
    e.auctionid = 7, e.sellerid = 3, e.itemid = 2, e.useritemid = 20;
    e.correlationid = CID;
    return e;
}

/* Decodes d, which must be valid, and checks the record: name, user, text, data (sorted keys). */
static void assert_record(const struct gf_amqp_delivery *d, const char *name, int64_t user,
                          const char *cid, const char *text, const char *data)
{
    struct event_record r = {0};
    char why[200];
    enum event_verdict v = event_decode(d, NOW_US, &r, why, sizeof why);
    if (v != EVENT_OK)
        fail_msg("%s: %s (%s)", name, event_verdict_str(v), why);
    assert_string_equal(r.name, name);
    assert_true(r.user_id == user);
    assert_string_equal(r.correlation_id, cid);
    assert_string_equal(r.message_id, cid); /* the correlation id names the event */
    assert_string_equal(r.text, text);
    assert_true(r.occurred_at_us == 1700000000654321LL);
    char *got = json_dumps(r.data, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(got, data);
    free(got);
    event_record_cleanup(&r);
}

static void auction_events_are_stored_with_every_field_and_their_sentence(void **state)
{
    (void)state;
    Backend__AuctionOutbidEvent o = outbid_event();
    struct gf_amqp_delivery d = event_delivery(GF_EVENT_AUCTION_OUTBID, &o.base, BID_CID);
    assert_record(&d, "AuctionOutbidEvent", 3, BID_CID,
                  "user 3 was outbid on auction 7: bid 12 of 50 GXP refunded, new bid 13 of 60",
                  "{\"amount\":50,\"auctionId\":7,\"bidId\":12,\"correlationId\":\"" BID_CID
                  "\",\"itemId\":2,\"newAmount\":60,\"newBidId\":13,\"userId\":3}");
    /* itemId is not required (0: not sent). */
    o.itemid = 0;
    d = event_delivery(GF_EVENT_AUCTION_OUTBID, &o.base, BID_CID);
    char why[200];
    assert_int_equal(decode(&d, why, sizeof why), EVENT_OK);

    Backend__AuctionSettledEvent s = settled_event(true);
    d = event_delivery(GF_EVENT_AUCTION_SETTLED, &s.base, CID);
    assert_record(&d, "AuctionSettledEvent", 3, CID,
                  "auction 7 settled: user 4 won item 2 for 60 GXP from user 3",
                  "{\"amount\":60,\"auctionId\":7,\"bidId\":13,\"correlationId\":\"" CID
                  "\",\"itemId\":2,\"sellerId\":3,\"userItemId\":21,\"winnerId\":4}");
    s = settled_event(false);
    d = event_delivery(GF_EVENT_AUCTION_SETTLED, &s.base, CID);
    assert_record(&d, "AuctionSettledEvent", 3, CID,
                  "auction 7 ended without bids: item 2 went back to user 3",
                  "{\"amount\":0,\"auctionId\":7,\"bidId\":0,\"correlationId\":\"" CID
                  "\",\"itemId\":2,\"sellerId\":3,\"userItemId\":20,\"winnerId\":0}");

    Backend__AuctionCancelledEvent c = cancelled_event();
    d = event_delivery(GF_EVENT_AUCTION_CANCELLED, &c.base, CID);
    assert_record(&d, "AuctionCancelledEvent", 3, CID,
                  "auction 7 cancelled by user 3: item 2 went back",
                  "{\"auctionId\":7,\"correlationId\":\"" CID
                  "\",\"itemId\":2,\"sellerId\":3,\"userItemId\":20}");
}

/* The largest ids still fit the text (EVENT_TEXT_MAX), and an uppercase id is normalized. */
static void auction_events_with_the_largest_numbers_fit(void **state)
{
    (void)state;
    const uint32_t M = UINT32_MAX;
    const char *upper = "0B7F6F3E-2A4C-4D0E-9F51-3C1D2B7A9E10";
    Backend__AuctionOutbidEvent o = outbid_event();
    o.auctionid = o.userid = o.bidid = o.amount = o.newbidid = o.newamount = o.itemid = M;
    o.correlationid = (char *)upper;
    struct gf_amqp_delivery d = event_delivery(GF_EVENT_AUCTION_OUTBID, &o.base, upper);
    struct event_record r = {0};
    char why[200];
    assert_int_equal(event_decode(&d, NOW_US, &r, why, sizeof why), EVENT_OK);
    assert_string_equal(r.correlation_id, CID);
    assert_true(r.user_id == 4294967295LL);
    assert_string_equal(r.text, "user 4294967295 was outbid on auction 4294967295: bid 4294967295 "
                                "of 4294967295 GXP refunded, new bid 4294967295 of 4294967295");
    event_record_cleanup(&r);
    Backend__AuctionSettledEvent s = settled_event(true);
    s.auctionid = s.sellerid = s.winnerid = s.itemid = s.amount = s.bidid = s.useritemid = M;
    d = event_delivery(GF_EVENT_AUCTION_SETTLED, &s.base, CID);
    assert_int_equal(event_decode(&d, NOW_US, &r, why, sizeof why), EVENT_OK);
    assert_string_equal(r.text, "auction 4294967295 settled: user 4294967295 won item 4294967295 "
                                "for 4294967295 GXP from user 4294967295");
    event_record_cleanup(&r);
}

/* Each required field at 0 is an invalid field naming it; so is a winner without its bid. */
static void auction_events_without_a_required_field_are_invalid(void **state)
{
    (void)state;
    char why[200];
    struct gf_amqp_delivery d;
    static const char *const outbid_fields[] = {"auctionId", "userId",   "bidId",
                                                "amount",    "newBidId", "newAmount"};
    for (size_t i = 0; i < sizeof outbid_fields / sizeof outbid_fields[0]; i++) {
        Backend__AuctionOutbidEvent o = outbid_event();
        uint32_t *zero[] = {&o.auctionid, &o.userid,   &o.bidid,
                            &o.amount,    &o.newbidid, &o.newamount};
        *zero[i] = 0;
        d = event_delivery(GF_EVENT_AUCTION_OUTBID, &o.base, BID_CID);
        assert_int_equal(decode(&d, why, sizeof why), EVENT_INVALID_FIELD);
        assert_non_null(strstr(why, outbid_fields[i]));
    }
    static const char *const settled_fields[] = {"auctionId", "sellerId", "itemId", "userItemId"};
    for (size_t i = 0; i < sizeof settled_fields / sizeof settled_fields[0]; i++) {
        Backend__AuctionSettledEvent s = settled_event(true);
        uint32_t *zero[] = {&s.auctionid, &s.sellerid, &s.itemid, &s.useritemid};
        *zero[i] = 0;
        d = event_delivery(GF_EVENT_AUCTION_SETTLED, &s.base, CID);
        assert_int_equal(decode(&d, why, sizeof why), EVENT_INVALID_FIELD);
        assert_non_null(strstr(why, settled_fields[i]));
    }
    /* winnerId, amount and bidId: all or none. */
    for (int i = 0; i < 6; i++) {
        Backend__AuctionSettledEvent s = settled_event(i < 3);
        uint32_t *flip[] = {&s.winnerid, &s.amount, &s.bidid};
        *flip[i % 3] = i < 3 ? 0 : 9;
        d = event_delivery(GF_EVENT_AUCTION_SETTLED, &s.base, CID);
        assert_int_equal(decode(&d, why, sizeof why), EVENT_INVALID_FIELD);
        assert_non_null(strstr(why, "winnerId"));
    }
    static const char *const cancelled_fields[] = {"auctionId", "sellerId", "itemId", "userItemId"};
    for (size_t i = 0; i < sizeof cancelled_fields / sizeof cancelled_fields[0]; i++) {
        Backend__AuctionCancelledEvent c = cancelled_event();
        uint32_t *zero[] = {&c.auctionid, &c.sellerid, &c.itemid, &c.useritemid};
        *zero[i] = 0;
        d = event_delivery(GF_EVENT_AUCTION_CANCELLED, &c.base, CID);
        assert_int_equal(decode(&d, why, sizeof why), EVENT_INVALID_FIELD);
        assert_non_null(strstr(why, cancelled_fields[i]));
    }
    /* An empty body is every field 0. */
    static const char *const names[] = {GF_EVENT_AUCTION_OUTBID, GF_EVENT_AUCTION_SETTLED,
                                        GF_EVENT_AUCTION_CANCELLED};
    for (size_t i = 0; i < 3; i++) {
        d = delivery(1, 2, 3, CID);
        d.type = d.routing_key = names[i];
        d.len = 0;
        assert_int_equal(decode(&d, why, sizeof why), EVENT_INVALID_FIELD);
    }
}

static void auction_events_need_a_uuid_correlation_id(void **state)
{
    (void)state;
    char why[200];
    Backend__AuctionOutbidEvent o = outbid_event();
    o.correlationid = "bid-13";
    struct gf_amqp_delivery d = event_delivery(GF_EVENT_AUCTION_OUTBID, &o.base, "");
    assert_int_equal(decode(&d, why, sizeof why), EVENT_BAD_CORRELATION_ID);
    assert_non_null(strstr(why, "bid-13"));
    Backend__AuctionSettledEvent s = settled_event(false);
    s.correlationid = "";
    d = event_delivery(GF_EVENT_AUCTION_SETTLED, &s.base, "");
    assert_int_equal(decode(&d, why, sizeof why), EVENT_BAD_CORRELATION_ID);
    Backend__AuctionCancelledEvent c = cancelled_event();
    c.correlationid = "0b7f6f3e2a4c4d0e9f513c1d2b7a9e10";
    d = event_delivery(GF_EVENT_AUCTION_CANCELLED, &c.base, "");
    assert_int_equal(decode(&d, why, sizeof why), EVENT_BAD_CORRELATION_ID);
    /* A message_id other than the correlation id (the outbid's is the new bid's). */
    o = outbid_event();
    d = event_delivery(GF_EVENT_AUCTION_OUTBID, &o.base, CID);
    assert_int_equal(decode(&d, why, sizeof why), EVENT_MESSAGE_ID_MISMATCH);
}

/* One auction event's body under another's name, or a name its routing key contradicts, is
 * never stored. */
static void auction_events_are_told_apart(void **state)
{
    (void)state;
    char why[200];
    Backend__AuctionCancelledEvent c = cancelled_event();
    struct gf_amqp_delivery d = event_delivery(GF_EVENT_AUCTION_CANCELLED, &c.base, CID);
    d.type = d.routing_key = GF_EVENT_AUCTION_OUTBID; /* field 5: a string, not newBidId */
    assert_int_not_equal(decode(&d, why, sizeof why), EVENT_OK);
    d = event_delivery(GF_EVENT_AUCTION_CANCELLED, &c.base, CID);
    d.routing_key = GF_EVENT_AUCTION_SETTLED;
    assert_int_equal(decode(&d, why, sizeof why), EVENT_UNKNOWN_TYPE);
    d.type = "AuctionCanceledEvent"; /* spelt otherwise: unknown */
    d.routing_key = "AuctionCanceledEvent";
    assert_int_equal(decode(&d, why, sizeof why), EVENT_UNKNOWN_TYPE);
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    d = event_delivery(GF_EVENT_AUCTION_SETTLED, &c.base, CID);
    d.body = garbage;
    d.len = sizeof garbage;
    assert_int_equal(decode(&d, why, sizeof why), EVENT_UNDECODABLE);
    assert_non_null(strstr(why, "backend.AuctionSettledEvent"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_valid_event_fills_every_field),
        cmocka_unit_test(the_largest_ids_and_an_uppercase_id_are_accepted),
        cmocka_unit_test(absent_properties_fall_back),
        cmocka_unit_test(unknown_events_are_dead_lettered),
        cmocka_unit_test(content_types),
        cmocka_unit_test(zero_ids_are_invalid_fields),
        cmocka_unit_test(correlation_ids_must_be_uuids),
        cmocka_unit_test(a_message_id_other_than_the_correlation_id_is_refused),
        cmocka_unit_test(bodies_that_do_not_decode_are_undecodable),
        cmocka_unit_test(no_body_crashes_the_decoder),
        cmocka_unit_test(the_time_comes_from_the_header_the_timestamp_or_now),
        cmocka_unit_test(verdicts_have_stable_names),
        cmocka_unit_test(an_audit_event_is_stored_under_its_event_id_with_every_field),
        cmocka_unit_test(each_action_has_its_sentence_and_an_item_change_has_no_user),
        cmocka_unit_test(audit_events_without_what_their_action_needs_are_invalid),
        cmocka_unit_test(long_or_odd_actor_names_are_cut_at_a_character_in_the_text),
        cmocka_unit_test(auction_events_are_stored_with_every_field_and_their_sentence),
        cmocka_unit_test(auction_events_with_the_largest_numbers_fit),
        cmocka_unit_test(auction_events_without_a_required_field_are_invalid),
        cmocka_unit_test(auction_events_need_a_uuid_correlation_id),
        cmocka_unit_test(auction_events_are_told_apart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
