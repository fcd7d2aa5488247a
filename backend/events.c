/* The events the backend emits (SPEC §4): their protobuf encoding as it goes into
 * event_outbox. backend/relay.c carries them to RabbitMQ. */
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "backend.pb-c.h"

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
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    *p++ = '\\';
    *p++ = 'x';
    for (size_t i = 0; i < len; i++) {
        *p++ = hex[buf[i] >> 4];
        *p++ = hex[buf[i] & 15];
    }
    *p = '\0';
    return GF_OK;
}
