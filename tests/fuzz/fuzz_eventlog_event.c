/* Fuzz target: an AMQP delivery as eventlog's consumer gets it (event_decode, eventlog/event.c):
 * which event it is, its content type, the protobuf body (BuyItemEvent, AdminActionEvent and the
 * auction's AuctionOutbidEvent, AuctionSettledEvent, AuctionCancelledEvent) and its fields, the
 * message_id and the time; what it answers is either a record for the store or a reason to
 * dead-letter. Input: seven lines (routing key, content_type, type, message_id, correlation_id,
 * timestamp in s, header x-occurred-at-us; the numbers in C notation), then the body's bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "fuzz.h"

#define NOW_US 1764000000000000LL
#define WHY_MAX 200 /* eventlog/consumer.c */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    char *routing_key = fuzz_line(&in), *content_type = fuzz_line(&in), *type = fuzz_line(&in);
    char *message_id = fuzz_line(&in), *correlation_id = fuzz_line(&in);
    char *timestamp = fuzz_line(&in), *occurred_at = fuzz_line(&in);
    uint8_t *body = fuzz_alloc(in.n); /* rabbitmq-c's buffer: exactly the body's size */
    if (in.n > 0)
        memcpy(body, in.p, in.n);
    struct gf_amqp_delivery d = {
        .routing_key = routing_key,
        .content_type = content_type,
        .type = type,
        .message_id = message_id,
        .correlation_id = correlation_id,
        /* AMQP's timestamp is a uint64 and the header any integer: every int64 can come. */
        .timestamp_s = (int64_t)strtoull(timestamp, NULL, 0),
        .occurred_at_us = (int64_t)strtoull(occurred_at, NULL, 0),
        .body = body,
        .len = in.n,
    };

    struct event_record r = {0};
    char why[WHY_MAX];
    enum event_verdict v = event_decode(&d, NOW_US, &r, why, sizeof why);
    FUZZ_CHECK(v >= EVENT_OK && v < EVENT_NVERDICTS && v != EVENT_REJECTED_BY_DATABASE);
    FUZZ_CHECK(strcmp(event_verdict_str(v), "unknown") != 0);
    FUZZ_CHECK(memchr(why, '\0', sizeof why) != NULL);
    if (v == EVENT_OK) {
        /* What the store gets: eventlog-db's columns and CHECKs (sql/eventlog). */
        FUZZ_CHECK(r.name != NULL && r.data != NULL && json_is_object(r.data));
        /* 0: an audit event about no user (stored NULL) */
        FUZZ_CHECK(r.user_id >= 0 && r.user_id <= QUERY_USER_MAX);
        FUZZ_CHECK(r.user_id > 0 || strcmp(r.name, GF_EVENT_ADMIN_ACTION) == 0);
        FUZZ_CHECK(fuzz_uuid_lower(r.correlation_id));
        /* the identity: the correlation id, or an audit event's own eventId */
        FUZZ_CHECK(fuzz_uuid_lower(r.message_id));
        FUZZ_CHECK(strcmp(r.message_id, r.correlation_id) == 0 ||
                   strcmp(r.name, GF_EVENT_ADMIN_ACTION) == 0);
        FUZZ_CHECK(memchr(r.text, '\0', sizeof r.text) != NULL && fuzz_json_text_ok(r.text));
        FUZZ_CHECK(r.occurred_at_us > 0);
        char *json = json_dumps(r.data, JSON_COMPACT);
        FUZZ_CHECK(json != NULL);
        free(json);
        event_record_cleanup(&r);
    } else {
        FUZZ_CHECK(why[0] != '\0' && fuzz_log_safe(why)); /* "words safe for a log line" */
        FUZZ_CHECK(r.data == NULL);
    }
    free(body);
    free(routing_key);
    free(content_type);
    free(type);
    free(message_id);
    free(correlation_id);
    free(timestamp);
    free(occurred_at);
    return 0;
}
