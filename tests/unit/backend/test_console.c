/* Unit tests of backend/console.c (compiled in): how feed messages become a transaction's
 * record. A stage stored before its claim is kept aside and adopted when the claim comes, in
 * the order the notes arrived, wherever they sit in the ring of kept notes: an operator's buy
 * stores its audit and then the buy under one correlation id, and its record's stage "stored"
 * is the first of them. The console runs without a broker (nothing consumes the feed until a
 * stream opens); messages go straight to take_message, the record is read from hello. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "backend.h"
#include "gf/amqp.h"

void take_message(struct console *c, const char *body, size_t len);
char *hello(struct console *c);

static void take(struct console *c, const char *service, const char *notes)
{
    char *msg = NULL;
    assert_true(asprintf(&msg, "{\"service\":\"%s\",\"replica\":\"t\",\"notes\":[%s]}", service,
                         notes) > 0);
    take_message(c, msg, strlen(msg));
    free(msg);
}

static void stored(struct console *c, const char *cid, const char *event)
{
    char note[512];
    snprintf(note, sizeof note,
             "{\"t\":\"tx\",\"correlationId\":\"%s\",\"kind\":\"\",\"userId\":5,\"itemId\":null,"
             "\"amount\":0,\"stage\":\"stored\",\"at\":\"2026-12-06T10:00:00.000Z\","
             "\"detail\":{\"event\":\"%s\"}}",
             cid, event);
    take(c, "eventlog", note);
}

/* The hello's frames of cid at stage (how many; the event of the first into event). */
static int frames_of(struct console *c, const char *cid, const char *stage, char event[64])
{
    char *h = hello(c);
    assert_non_null(h);
    const char *data = strstr(h, "data: ");
    assert_non_null(data);
    json_t *j = json_loads(data + strlen("data: "), JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(j);
    int n = 0;
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(j, "recent"), i, f)
    {
        if (strcmp(json_string_value(json_object_get(f, "correlationId")), cid) != 0 ||
            strcmp(json_string_value(json_object_get(f, "stage")), stage) != 0)
            continue;
        if (n++ == 0 && event != NULL) {
            const char *e =
                json_string_value(json_object_get(json_object_get(f, "detail"), "event"));
            snprintf(event, 64, "%s", e != NULL ? e : "");
        }
    }
    json_decref(j);
    free(h);
    return n;
}

/* Stored notes heard before the claim, at every position of the ring (fillers before them
 * move it), are adopted in their order: the audit (first stored) is the record's stage. */
static void stored_before_the_claim_are_adopted_in_arrival_order(void **state)
{
    (void)state;
    for (int fill = 0; fill < 70; fill++) {
        struct gf_amqp_options amqp = {0};
        struct console *c = console_start(NULL, &amqp);
        assert_non_null(c);
        for (int k = 0; k < fill; k++) {
            char other[37];
            snprintf(other, sizeof other, "00000000-0000-7000-8000-%012d", k);
            stored(c, other, "AdminActionEvent");
        }
        const char *cid = "0190aaaa-bbbb-7ccc-8ddd-eeeeffff0001";
        stored(c, cid, "AdminActionEvent");
        stored(c, cid, "BuyItemEvent");
        assert_int_equal(frames_of(c, cid, "stored", NULL), 0); /* no record before the claim */
        char claim[512];
        snprintf(claim, sizeof claim,
                 "{\"t\":\"tx\",\"correlationId\":\"%s\",\"kind\":\"buy\",\"userId\":5,"
                 "\"itemId\":9,\"amount\":7,\"stage\":\"claimed\","
                 "\"at\":\"2026-12-06T10:00:00.000Z\",\"detail\":{}}",
                 cid);
        take(c, "backend", claim);
        char event[64] = "";
        assert_int_equal(frames_of(c, cid, "claimed", NULL), 1);
        assert_int_equal(frames_of(c, cid, "stored", event), 1);
        if (strcmp(event, "AdminActionEvent") != 0)
            fail_msg("after %d other stored notes the record's stage stored is %s", fill, event);
        console_stop(c);
    }
}

/* Notes that are not the feed's change nothing and crash nothing. */
static void garbage_is_dropped(void **state)
{
    (void)state;
    struct gf_amqp_options amqp = {0};
    struct console *c = console_start(NULL, &amqp);
    assert_non_null(c);
    const char *bad[] = {"",
                         "[",
                         "null",
                         "[]",
                         "{\"notes\":7}",
                         "{\"notes\":[1,\"x\",null]}",
                         "{\"notes\":[{\"t\":\"tx\",\"correlationId\":\"short\",\"stage\":\"x\"}]}",
                         "{\"notes\":[{\"t\":\"tx\",\"correlationId\":7,\"stage\":\"claimed\"}]}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        take_message(c, bad[i], strlen(bad[i]));
    char *h = hello(c);
    assert_non_null(strstr(h, "\"recent\":[]"));
    free(h);
    console_stop(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stored_before_the_claim_are_adopted_in_arrival_order),
        cmocka_unit_test(garbage_is_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
