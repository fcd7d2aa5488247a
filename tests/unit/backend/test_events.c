/* Unit tests of backend/events.c: the BuyItemEvent and the auction saga's events as they go
 * into event_outbox. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend.h"
#include "backend.pb-c.h"

static const char CID[] = "0b9c2f3e-5d41-4c8e-9a77-1f2e3d4c5b6a";

/* Decodes the bytea hex literal back into bytes. */
static size_t unhex(const char *s, uint8_t *out, size_t n)
{
    assert_int_equal(s[0], '\\');
    assert_int_equal(s[1], 'x');
    size_t len = strlen(s + 2) / 2;
    assert_true(len <= n);
    for (size_t i = 0; i < len; i++) {
        char byte[3] = {s[2 + 2 * i], s[3 + 2 * i], 0};
        out[i] = (uint8_t)strtoul(byte, NULL, 16);
    }
    return len;
}

static void buy_payload_decodes_to_the_event_with_spec_field_numbers(void **state)
{
    (void)state;
    char hex[2 * EVENTS_PAYLOAD_MAX + 3];
    assert_int_equal(events_buy_payload(1, 2, 3, CID, hex, sizeof hex), GF_OK);
    uint8_t buf[EVENTS_PAYLOAD_MAX];
    size_t len = unhex(hex, buf, sizeof buf);
    /* Field 1 (userId) varint 1, field 2 varint 2, field 3 varint 3, field 4 the string. */
    static const uint8_t head[] = {0x08, 1, 0x10, 2, 0x18, 3, 0x22, 36};
    assert_memory_equal(buf, head, sizeof head);
    Backend__BuyItemEvent *e = backend__buy_item_event__unpack(NULL, len, buf);
    assert_non_null(e);
    assert_int_equal(e->userid, 1);
    assert_int_equal(e->itemid, 2);
    assert_int_equal(e->useritemid, 3);
    assert_string_equal(e->correlationid, CID);
    backend__buy_item_event__free_unpacked(e, NULL);
}

static void the_largest_ids_fit_the_payload_buffer(void **state)
{
    (void)state;
    char hex[2 * EVENTS_PAYLOAD_MAX + 3];
    assert_int_equal(events_buy_payload(UINT32_MAX, UINT32_MAX, UINT32_MAX, CID, hex, sizeof hex),
                     GF_OK);
}

static void ids_outside_uint32_are_refused(void **state)
{
    (void)state;
    char hex[2 * EVENTS_PAYLOAD_MAX + 3];
    assert_int_equal(events_buy_payload(0, 1, 1, CID, hex, sizeof hex), GF_ERANGE);
    assert_int_equal(events_buy_payload(1, (int64_t)UINT32_MAX + 1, 1, CID, hex, sizeof hex),
                     GF_ERANGE);
    assert_int_equal(events_buy_payload(1, 1, -5, CID, hex, sizeof hex), GF_ERANGE);
    /* A buffer too small is refused, not overrun. */
    assert_int_equal(events_buy_payload(1, 1, 1, CID, hex, 10), GF_ETOOBIG);
}

/* Each auction event decodes back with its fields; the largest ids fit; out of range refused. */
static void auction_payloads_decode_to_their_events(void **state)
{
    (void)state;
    char hex[EVENTS_AUCTION_HEX_MAX];
    uint8_t buf[EVENTS_AUCTION_PAYLOAD_MAX];
    struct events_auction o = {.kind = EVENTS_AUCTION_OUTBID,
                               .auction_id = 7,
                               .user_id = 3,
                               .item_id = 2,
                               .bid_id = 12,
                               .amount = 50,
                               .new_bid_id = 13,
                               .new_amount = 60,
                               .cid = CID};
    assert_string_equal(events_auction_name(o.kind), "AuctionOutbidEvent");
    assert_int_equal(events_auction_payload(&o, hex, sizeof hex), GF_OK);
    size_t len = unhex(hex, buf, sizeof buf);
    Backend__AuctionOutbidEvent *e = backend__auction_outbid_event__unpack(NULL, len, buf);
    assert_non_null(e);
    assert_int_equal(e->auctionid, 7);
    assert_int_equal(e->userid, 3);
    assert_int_equal(e->bidid, 12);
    assert_int_equal(e->amount, 50);
    assert_int_equal(e->newbidid, 13);
    assert_int_equal(e->newamount, 60);
    assert_int_equal(e->itemid, 2);
    assert_string_equal(e->correlationid, CID);
    backend__auction_outbid_event__free_unpacked(e, NULL);

    struct events_auction st = {.kind = EVENTS_AUCTION_SETTLED,
                                .auction_id = UINT32_MAX,
                                .user_id = UINT32_MAX,
                                .item_id = UINT32_MAX,
                                .bid_id = UINT32_MAX,
                                .amount = UINT32_MAX,
                                .winner_id = UINT32_MAX,
                                .user_item_id = UINT32_MAX,
                                .cid = CID};
    assert_string_equal(events_auction_name(st.kind), "AuctionSettledEvent");
    assert_int_equal(events_auction_payload(&st, hex, sizeof hex), GF_OK);
    len = unhex(hex, buf, sizeof buf);
    Backend__AuctionSettledEvent *s = backend__auction_settled_event__unpack(NULL, len, buf);
    assert_non_null(s);
    assert_int_equal(s->winnerid, UINT32_MAX);
    assert_int_equal(s->useritemid, UINT32_MAX);
    backend__auction_settled_event__free_unpacked(s, NULL);

    struct events_auction c = {.kind = EVENTS_AUCTION_CANCELLED,
                               .auction_id = 9,
                               .user_id = 4,
                               .item_id = 5,
                               .user_item_id = 6,
                               .cid = CID};
    assert_string_equal(events_auction_name(c.kind), "AuctionCancelledEvent");
    assert_int_equal(events_auction_payload(&c, hex, sizeof hex), GF_OK);
    len = unhex(hex, buf, sizeof buf);
    Backend__AuctionCancelledEvent *x = backend__auction_cancelled_event__unpack(NULL, len, buf);
    assert_non_null(x);
    assert_int_equal(x->auctionid, 9);
    assert_int_equal(x->sellerid, 4);
    assert_int_equal(x->useritemid, 6);
    backend__auction_cancelled_event__free_unpacked(x, NULL);

    c.auction_id = 0;
    assert_int_equal(events_auction_payload(&c, hex, sizeof hex), GF_ERANGE);
    c.auction_id = (int64_t)UINT32_MAX + 1;
    assert_int_equal(events_auction_payload(&c, hex, sizeof hex), GF_ERANGE);
    c.auction_id = 9;
    c.user_item_id = -1;
    assert_int_equal(events_auction_payload(&c, hex, sizeof hex), GF_ERANGE);
    c.user_item_id = 6;
    assert_int_equal(events_auction_payload(&c, hex, 10), GF_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buy_payload_decodes_to_the_event_with_spec_field_numbers),
        cmocka_unit_test(the_largest_ids_fit_the_payload_buffer),
        cmocka_unit_test(ids_outside_uint32_are_refused),
        cmocka_unit_test(auction_payloads_decode_to_their_events),
    };
    return cmocka_run_group_tests_name("unit_backend_events", tests, NULL, NULL);
}
