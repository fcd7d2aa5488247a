/* Unit tests of backend/events.c: the BuyItemEvent as it goes into event_outbox. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buy_payload_decodes_to_the_event_with_spec_field_numbers),
        cmocka_unit_test(the_largest_ids_fit_the_payload_buffer),
        cmocka_unit_test(ids_outside_uint32_are_refused),
    };
    return cmocka_run_group_tests_name("unit_backend_events", tests, NULL, NULL);
}
