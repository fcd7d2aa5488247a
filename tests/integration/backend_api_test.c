/* The backend's HTTP API (SPEC §2) against the real backend, gxp and both databases: the
 * original's test sequence and its answer shapes, bad input per endpoint, Idempotency-Key,
 * ETag/If-Match and the svc-info texts. One world for the whole program; every test ends with
 * SPEC §5's invariants across both databases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend_fixture.h"
#include "gf/clock.h"

static int setup(void **state)
{
    (void)state;
    return world_start(&W, NULL);
}

/* GET path: 200 with exactly {key:[...]}; returns the array (owned by *r). */
static json_t *list(const char *path, const char *key, struct http_res *r)
{
    http(&W, "GET", path, NULL, NULL, r);
    assert_ok(r, key);
    return jarr(r->json, key);
}

/* How many lines of the log at path contain want, once there is at least one (or after
 * timeout_ms). */
static int wait_log_line(const char *path, const char *want, int timeout_ms)
{
    int64_t end = gf_mono_ms() + timeout_ms;
    int n = 0;
    do {
        FILE *f = fopen(path, "r");
        char line[4096];
        n = 0;
        while (f && fgets(line, sizeof line, f))
            n += strstr(line, want) != NULL;
        if (f)
            fclose(f);
        if (n > 0)
            break;
        usleep(50 * 1000);
    } while (gf_mono_ms() < end);
    return n;
}

static void post_ok(const char *path, const char *body, const char *keys, struct http_res *r)
{
    http(&W, "POST", path, body, NULL, r);
    assert_ok(r, keys);
}

static char seed_add_cid[37], seed_buy_cid[37];

static void the_originals_test_sequence_answers_its_shapes(void **state)
{
    (void)state;
    struct http_res r;
    /* ls on an empty system. */
    assert_int_equal(json_array_size(list("/user", "users", &r)), 0);
    http_res_free(&r);
    assert_int_equal(json_array_size(list("/user/", "users", &r)), 0);
    http_res_free(&r);
    assert_int_equal(json_array_size(list("/item", "items", &r)), 0);
    http_res_free(&r);
    assert_int_equal(json_array_size(list("/marketplace/item", "marketplaceItems", &r)), 0);
    http_res_free(&r);
    assert_int_equal(json_array_size(list("/user/item", "userItems", &r)), 0);
    http_res_free(&r);

    post_ok("/user/create", "{\"name\":\"my-name\"}", "userId,correlationId", &r);
    assert_int_equal(jint(r.json, "userId"), 1);
    http_res_free(&r);
    post_ok("/item/create", "{\"name\":\"my-item\",\"cost\":10}", "itemId,correlationId", &r);
    assert_int_equal(jint(r.json, "itemId"), 1);
    http_res_free(&r);
    post_ok("/marketplace/item/create", "{\"itemId\":1,\"count\":12}",
            "marketplaceItemId,correlationId", &r);
    assert_int_equal(jint(r.json, "marketplaceItemId"), 1);
    atomic_fetch_add(&W.stock_created, 12);
    http_res_free(&r);
    post_ok("/user/gxp/add", "{\"userId\":1,\"amount\":100}", "correlationId", &r);
    snprintf(seed_add_cid, sizeof seed_add_cid, "%s", jstr(r.json, "correlationId"));
    http_res_free(&r);
    /* At a human's pace (the CLI): the credit is finalized before the buy. Spending it at
     * once is pinned by backend_coord's gxp_added_is_spendable_as_soon_as_the_add_answers. */
    assert_int_equal(wait_until_finalized(&W, seed_add_cid, 15000), 0);
    post_ok("/marketplace/item/buy", "{\"userId\":1,\"itemId\":1}", "correlationId,buyItemResponse",
            &r);
    snprintf(seed_buy_cid, sizeof seed_buy_cid, "%s", jstr(r.json, "correlationId"));
    json_t *buy = json_object_get(r.json, "buyItemResponse");
    assert_keys(buy, "userItemId,correlationId");
    assert_int_equal(jint(buy, "userItemId"), 1);
    assert_string_equal(jstr(buy, "correlationId"), seed_buy_cid);
    http_res_free(&r);
    assert_string_not_equal(seed_add_cid, seed_buy_cid);

    /* ls again: every list, field for field. */
    json_t *a = list("/user", "users", &r), *e;
    assert_int_equal(json_array_size(a), 1);
    e = json_array_get(a, 0);
    assert_keys(e, "id,name,updatedAt");
    assert_int_equal(jint(e, "id"), 1);
    assert_string_equal(jstr(e, "name"), "my-name");
    assert_iso8601_ms(jstr(e, "updatedAt"));
    http_res_free(&r);
    a = list("/item", "items", &r);
    assert_int_equal(json_array_size(a), 1);
    e = json_array_get(a, 0);
    assert_keys(e, "id,name,cost,updatedAt");
    assert_int_equal(jint(e, "id"), 1);
    assert_string_equal(jstr(e, "name"), "my-item");
    assert_int_equal(jint(e, "cost"), 10);
    assert_iso8601_ms(jstr(e, "updatedAt"));
    http_res_free(&r);
    a = list("/marketplace/item", "marketplaceItems", &r);
    assert_int_equal(json_array_size(a), 1);
    e = json_array_get(a, 0);
    assert_keys(e, "id,itemId,count,updatedAt");
    assert_int_equal(jint(e, "id"), 1);
    assert_int_equal(jint(e, "itemId"), 1);
    assert_int_equal(jint(e, "count"), 11);
    assert_iso8601_ms(jstr(e, "updatedAt"));
    http_res_free(&r);
    a = list("/user/item", "userItems", &r);
    assert_int_equal(json_array_size(a), 1);
    e = json_array_get(a, 0);
    assert_keys(e, "id,itemId,userId,count,updatedAt");
    assert_int_equal(jint(e, "id"), 1);
    assert_int_equal(jint(e, "itemId"), 1);
    assert_int_equal(jint(e, "userId"), 1);
    assert_int_equal(jint(e, "count"), 1);
    assert_iso8601_ms(jstr(e, "updatedAt"));
    http_res_free(&r);
    assert_int_equal(sql_ll(W.backend, "SELECT count FROM user_items WHERE user_id = 1"
                                       " AND item_id = 1"),
                     1);

    /* Both distributed transactions finalize as committed, with their decisions. */
    assert_int_equal(wait_until_finalized(&W, seed_add_cid, 15000), 0);
    assert_int_equal(wait_until_finalized(&W, seed_buy_cid, 15000), 0);
    balance_is(&W, 1, 90, 0);
    http(&W, "GET", "/gxp/get-all", NULL, NULL, &r);
    assert_ok(&r, "balances,transactions");
    a = jarr(r.json, "balances");
    assert_int_equal(json_array_size(a), 1);
    e = json_array_get(a, 0);
    assert_keys(e, "balance,reserved,updatedAt");
    assert_int_equal(jint(e, "balance"), 90);
    assert_int_equal(jint(e, "reserved"), 0);
    assert_iso8601_ms(jstr(e, "updatedAt"));
    a = jarr(r.json, "transactions");
    assert_int_equal(json_array_size(a), 2);
    for (size_t i = 0; i < 2; i++) {
        e = json_array_get(a, i);
        assert_keys(e, "balanceId,amount,type,status,correlationId,updatedAt");
        assert_int_equal(jint(e, "balanceId"), 1);
        assert_int_equal(jint(e, "status"), 2);
        assert_iso8601_ms(jstr(e, "updatedAt"));
        bool add = jint(e, "type") == 0;
        assert_int_equal(jint(e, "amount"), add ? 100 : 10);
        assert_string_equal(jstr(e, "correlationId"), add ? seed_add_cid : seed_buy_cid);
    }
    http_res_free(&r);
    assert_int_equal(sql_ll(W.backend,
                            "SELECT count(*) FROM transaction_outbox WHERE state = 'succeeded'"
                            " AND correlation_id IN ('%s', '%s')",
                            seed_add_cid, seed_buy_cid),
                     2);

    /* The life of each transaction, as gf trace shows it. */
    char path[128];
    snprintf(path, sizeof path, "/gxp/transaction?correlationId=%s", seed_buy_cid);
    http(&W, "GET", path, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_keys(r.json, "correlationId,kind,userId,itemId,amount,createdAt,decision,gxp");
    assert_string_equal(jstr(r.json, "correlationId"), seed_buy_cid);
    assert_string_equal(jstr(r.json, "kind"), "buy");
    assert_int_equal(jint(r.json, "userId"), 1);
    assert_int_equal(jint(r.json, "itemId"), 1);
    assert_int_equal(jint(r.json, "amount"), 10);
    assert_iso8601_ms(jstr(r.json, "createdAt"));
    json_t *d = json_object_get(r.json, "decision");
    assert_keys(d, "state,createdAt");
    assert_string_equal(jstr(d, "state"), "succeeded");
    json_t *g = json_object_get(r.json, "gxp");
    assert_keys(g, "status,type,amount,createdAt,updatedAt,finalizedAt");
    assert_string_equal(jstr(g, "status"), "COMMITTED");
    assert_string_equal(jstr(g, "type"), "SUBTRACT");
    assert_int_equal(jint(g, "amount"), 10);
    assert_iso8601_ms(jstr(g, "finalizedAt"));
    http_res_free(&r);
    snprintf(path, sizeof path, "/gxp/transaction?correlationId=%s", seed_add_cid);
    http(&W, "GET", path, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "kind"), "add_gxp");
    assert_true(json_is_null(json_object_get(r.json, "itemId")));
    assert_string_equal(jstr(json_object_get(r.json, "gxp"), "type"), "ADD");
    assert_string_equal(jstr(json_object_get(r.json, "gxp"), "status"), "COMMITTED");
    http_res_free(&r);

    /* The buy's event went through the broker: gxp and the backend each log it once, with
     * its correlation id, as the original's services did. */
    char want[160];
    snprintf(want, sizeof want,
             "cid=%s msg=\"event received name=BuyItemEvent userId=1 itemId=1"
             " userItemId=1",
             seed_buy_cid);
    assert_int_equal(wait_log_line(W.backend_log, want, 15000), 1);
    assert_int_equal(wait_log_line(W.gxp_log, want, 15000), 1);
}

static void a_valid_incoming_correlation_id_is_echoed_and_an_invalid_one_replaced(void **state)
{
    (void)state;
    char cid[37], hdr[128], got[128];
    new_cid(cid);
    snprintf(hdr, sizeof hdr, "X-Correlation-Id: %s", cid);
    const char *h[] = {hdr, NULL};
    struct http_res r;
    http(&W, "GET", "/user/gxp?userId=1", NULL, h, &r);
    assert_ok(&r, "balance,reserved,updatedAt,correlationId");
    assert_string_equal(jstr(r.json, "correlationId"), cid);
    assert_string_equal(http_header(&r, "X-Correlation-Id", got, sizeof got), cid);
    http_res_free(&r);
    /* The same on an error answer. */
    http(&W, "POST", "/user/create", "{}", h, &r);
    assert_error(&r, 400, "missing_field");
    assert_string_equal(jstr(r.json, "correlationId"), cid);
    http_res_free(&r);
    const char *bad[] = {"X-Correlation-Id: not-a-uuid", NULL};
    http(&W, "GET", "/user/gxp?userId=1", NULL, bad, &r);
    assert_ok(&r, "balance,reserved,updatedAt,correlationId");
    assert_string_not_equal(jstr(r.json, "correlationId"), "not-a-uuid");
    http_res_free(&r);
}

static void user_item_create_stores_the_user_id(void **state)
{
    (void)state;
    long long item = api_create_item(&W, "gift", 3);
    long long id = api_create_user_item(&W, 1, item, 4);
    assert_int_equal(sql_ll(W.backend, "SELECT user_id FROM user_items WHERE id = %lld", id), 1);
    assert_int_equal(sql_ll(W.backend, "SELECT count FROM user_items WHERE id = %lld", id), 4);
}

static void numeric_strings_zero_cost_and_255_byte_names_are_accepted(void **state)
{
    (void)state;
    struct http_res r;
    post_ok("/item/create", "{\"name\":\"by-string\",\"cost\":\"12\"}", "itemId,correlationId", &r);
    long long item = jint(r.json, "itemId");
    http_res_free(&r);
    assert_int_equal(sql_ll(W.backend, "SELECT cost FROM items WHERE id = %lld", item), 12);
    item = api_create_item(&W, "free", 0);
    assert_int_equal(sql_ll(W.backend, "SELECT cost FROM items WHERE id = %lld", item), 0);
    char name[300], body[400];
    memset(name, 'n', 255);
    name[255] = '\0';
    snprintf(body, sizeof body, "{\"name\":\"%s\"}", name);
    post_ok("/user/create", body, "userId,correlationId", &r);
    http_res_free(&r);
    /* Non-ASCII UTF-8 round-trips. */
    long long u = api_create_user(&W, "Grüße ✓");
    char got[64];
    assert_string_equal(
        sql_text(W.backend, got, sizeof got, "SELECT name FROM users WHERE id = %lld", u),
        "Grüße ✓");
    /* A numeric string for an id. */
    post_ok("/user/gxp/add", "{\"userId\":\"1\",\"amount\":\"5\"}", "correlationId", &r);
    char cid[37];
    snprintf(cid, sizeof cid, "%s", jstr(r.json, "correlationId"));
    http_res_free(&r);
    assert_int_equal(wait_until_finalized(&W, cid, 15000), 0);
    balance_is(&W, 1, 95, 0);
}

/* ---- bad input ----------------------------------------------------------------------- */

struct bad {
    const char *method, *path, *body;
    long status;
    const char *code; /* NULL: any snake_case code */
};

/* Each request is refused as stated and changes nothing (strict: not even a decision). */
static void refuse_all(const struct bad *cases, size_t n, bool strict)
{
    char before[1200], after[1200];
    for (size_t i = 0; i < n; i++) {
        const struct bad *c = &cases[i];
        snapshot(&W, strict, before, sizeof before);
        struct http_res r;
        http(&W, c->method, c->path, c->body, NULL, &r);
        if (r.status != c->status)
            fail_msg("%s %s %s: expected %ld, got %ld: %s %s", c->method, c->path,
                     c->body ? c->body : "", c->status, r.status, r.body, r.error);
        assert_error(&r, c->status, c->code);
        http_res_free(&r);
        snapshot(&W, strict, after, sizeof after);
        if (strcmp(before, after) != 0)
            fail_msg("%s %s %s changed something:\n  %s\n  %s", c->method, c->path,
                     c->body ? c->body : "", before, after);
    }
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void malformed_or_mistyped_bodies_are_400_and_change_nothing(void **state)
{
    (void)state;
    static const struct bad cases[] = {
        {"POST", "/user/create", "{\"name\":", 400, "malformed_json"},
        {"POST", "/user/create", "{name:\"x\"}", 400, "malformed_json"},
        {"POST", "/user/create", "not json", 400, "malformed_json"},
        {"POST", "/user/create", "{\"name\":\"x\"} trailing", 400, "malformed_json"},
        {"POST", "/user/create", "", 400, NULL},
        {"POST", "/user/create", NULL, 400, NULL},
        {"POST", "/user/create", "[]", 400, NULL},
        {"POST", "/user/create", "\"x\"", 400, NULL},
        {"POST", "/user/create", "42", 400, NULL},
        {"POST", "/user/create", "null", 400, NULL},
        {"POST", "/user/create", "{\"name\":5}", 400, "invalid_field"},
        {"POST", "/user/create", "{\"name\":null}", 400, "invalid_field"},
        {"POST", "/user/create", "{\"name\":[\"x\"]}", 400, "invalid_field"},
        {"POST", "/user/create", "{}", 400, "missing_field"},
        {"POST", "/user/create", "{\"name\":\"x\",\"admin\":true}", 400, "unknown_field"},
        {"POST", "/user/create", "{\"name\":\"x\",\"name\":\"y\"}", 400, NULL},
        {"POST", "/user/create", "{\"name\":\"\"}", 400, "invalid_field"},
        {"POST", "/user/create", "{\"name\":\"a\\u0000b\"}", 400, NULL},
        {"POST", "/user/create", "{\"name\":\"tab\\there\"}", 400, "invalid_field"},
        {"POST", "/user/create", "{\"name\":\"\\ud800\"}", 400, NULL},
        {"POST", "/user/create", "{\"name\":\"a\xff\xfe\"}", 400, NULL},
        {"POST", "/user/create", "{\"name\":\"\xc0\xaf\"}", 400, NULL},
        {"POST", "/user/create", "{\"name\":\"\xed\xa0\x80\"}", 400, NULL},
        {"POST", "/item/create", "{\"name\":\"i\"}", 400, "missing_field"},
        {"POST", "/item/create", "{\"cost\":1}", 400, "missing_field"},
        {"POST", "/item/create", "{\"name\":\"i\",\"cost\":-1}", 400, "invalid_field"},
        {"POST", "/item/create", "{\"name\":\"i\",\"cost\":2147483648}", 400, "invalid_field"},
        {"POST", "/item/create", "{\"name\":\"i\",\"cost\":9223372036854775808}", 400, NULL},
        {"POST", "/item/create", "{\"name\":\"i\",\"cost\":1e3}", 400, "invalid_field"},
        {"POST", "/item/create", "{\"name\":\"i\",\"cost\":1.5}", 400, "invalid_field"},
        {"POST", "/item/create", "{\"name\":\"i\",\"cost\":10.0}", 400, "invalid_field"},
        {"POST", "/item/create", "{\"name\":\"i\",\"cost\":\"abc\"}", 400, "invalid_field"},
        {"POST", "/item/create", "{\"name\":\"i\",\"cost\":\"1.5\"}", 400, "invalid_field"},
        {"POST", "/item/create", "{\"name\":\"i\",\"cost\":\"-5\"}", 400, "invalid_field"},
        {"POST", "/item/create", "{\"name\":\"i\",\"cost\":\"12abc\"}", 400, "invalid_field"},
        {"POST", "/item/create", "{\"name\":\"i\",\"cost\":\"\"}", 400, "invalid_field"},
        {"POST", "/item/create", "{\"name\":\"i\",\"cost\":true}", 400, "invalid_field"},
        {"POST", "/item/create", "{\"name\":\"i\",\"cost\":null}", 400, "invalid_field"},
        {"POST", "/item/create", "{\"name\":\"i\",\"cost\":{}}", 400, "invalid_field"},
        {"POST", "/item/create", "{\"name\":7,\"cost\":1}", 400, "invalid_field"},
        {"POST", "/marketplace/item/create", "{\"itemId\":1}", 400, "missing_field"},
        {"POST", "/marketplace/item/create", "{\"itemId\":0,\"count\":1}", 400, "invalid_field"},
        {"POST", "/marketplace/item/create", "{\"itemId\":-1,\"count\":1}", 400, "invalid_field"},
        {"POST", "/marketplace/item/create", "{\"itemId\":1,\"count\":0}", 400, "invalid_field"},
        {"POST", "/marketplace/item/create", "{\"itemId\":1,\"count\":-3}", 400, "invalid_field"},
        {"POST", "/marketplace/item/create", "{\"itemId\":1,\"count\":2147483648}", 400,
         "invalid_field"},
        {"POST", "/marketplace/item/create", "{\"itemId\":1.5,\"count\":1}", 400, "invalid_field"},
        {"POST", "/marketplace/item/create", "{\"itemId\":9007199254740993,\"count\":1}", 400,
         "invalid_field"},
        {"POST", "/user/item/create", "{\"userId\":1,\"itemId\":1}", 400, "missing_field"},
        {"POST", "/user/item/create", "{\"userId\":1,\"itemId\":1,\"count\":0}", 400,
         "invalid_field"},
        {"POST", "/user/item/create", "{\"userId\":\"x\",\"itemId\":1,\"count\":1}", 400,
         "invalid_field"},
        {"POST", "/user/gxp/add", "{\"userId\":1}", 400, "missing_field"},
        {"POST", "/user/gxp/add", "{\"userId\":1,\"amount\":0}", 400, "invalid_field"},
        {"POST", "/user/gxp/add", "{\"userId\":1,\"amount\":-1}", 400, "invalid_field"},
        {"POST", "/user/gxp/add", "{\"userId\":1,\"amount\":2147483648}", 400, "invalid_field"},
        {"POST", "/user/gxp/add", "{\"userId\":1,\"amount\":1e3}", 400, "invalid_field"},
        {"POST", "/user/gxp/add", "{\"userId\":1,\"amount\":1.5}", 400, "invalid_field"},
        {"POST", "/user/gxp/add", "{\"userId\":0,\"amount\":1}", 400, "invalid_field"},
        {"POST", "/user/gxp/add", "{\"userId\":1,\"amount\":1,\"x\":1}", 400, "unknown_field"},
        {"POST", "/marketplace/item/buy", "{\"userId\":1}", 400, "missing_field"},
        {"POST", "/marketplace/item/buy", "{\"userId\":1,\"itemId\":0}", 400, "invalid_field"},
        {"POST", "/marketplace/item/buy", "{\"userId\":true,\"itemId\":1}", 400, "invalid_field"},
        {"POST", "/marketplace/item/buy", "{\"userId\":1,\"itemId\":1,\"count\":2}", 400,
         "unknown_field"},
        {"POST", "/marketplace/item/buy", "[1,1]", 400, NULL},
        {"GET", "/user/gxp", NULL, 400, "missing_field"},
        {"GET", "/user/gxp?userId=", NULL, 400, "invalid_field"},
        {"GET", "/user/gxp?userId=abc", NULL, 400, "invalid_field"},
        {"GET", "/user/gxp?userId=0", NULL, 400, "invalid_field"},
        {"GET", "/user/gxp?userId=-1", NULL, 400, "invalid_field"},
        {"GET", "/user/gxp?userId=1.5", NULL, 400, "invalid_field"},
        {"GET", "/gxp/transaction", NULL, 400, "missing_field"},
        {"GET", "/gxp/transaction?correlationId=", NULL, 400, "missing_field"},
        {"GET", "/gxp/transaction?correlationId=1", NULL, 400, "invalid_field"},
        {"GET", "/gxp/transaction?correlationId=%27%3B%20DROP%20TABLE%20users%3B--", NULL, 400,
         "invalid_field"},
        {"GET", "/user/gxp?userId=99999999999999999999", NULL, 400, "invalid_field"},
        {"GET", "/user?limit=abc", NULL, 400, "invalid_field"},
        {"GET", "/item?after=-1", NULL, 400, "invalid_field"},
    };
    refuse_all(cases, N(cases), true);

    /* Names of 256 bytes, and a 70 KB body. */
    char name[300], body[400];
    memset(name, 'n', 256);
    name[256] = '\0';
    snprintf(body, sizeof body, "{\"name\":\"%s\"}", name);
    struct bad longname[] = {{"POST", "/user/create", body, 400, "invalid_field"},
                             {"POST", "/item/create", NULL, 400, "invalid_field"}};
    char item_body[400];
    snprintf(item_body, sizeof item_body, "{\"name\":\"%s\",\"cost\":1}", name);
    longname[1].body = item_body;
    refuse_all(longname, N(longname), true);
    size_t big = 70 * 1024;
    char *huge = malloc(big + 32);
    assert_non_null(huge);
    strcpy(huge, "{\"name\":\"");
    memset(huge + 9, 'h', big);
    strcpy(huge + 9 + big, "\"}");
    struct bad too_big[] = {{"POST", "/user/create", huge, 413, NULL},
                            {"POST", "/marketplace/item/buy", huge, 413, NULL}};
    refuse_all(too_big, N(too_big), true);
    free(huge);
}

static void unknown_ids_duplicates_paths_and_methods_are_refused(void **state)
{
    (void)state;
    long long not_on_sale = api_create_item(&W, "not-on-sale", 1);
    char buy_not_on_sale[96];
    snprintf(buy_not_on_sale, sizeof buy_not_on_sale, "{\"userId\":1,\"itemId\":%lld}",
             not_on_sale);
    const struct bad strict[] = {
        {"POST", "/user/create", "{\"name\":\"my-name\"}", 409, NULL},
        {"POST", "/marketplace/item/create", "{\"itemId\":999,\"count\":1}", 404, NULL},
        {"POST", "/marketplace/item/create", "{\"itemId\":1,\"count\":1}", 409, NULL},
        {"POST", "/user/item/create", "{\"userId\":999,\"itemId\":1,\"count\":1}", 404, NULL},
        {"POST", "/user/item/create", "{\"userId\":1,\"itemId\":999,\"count\":1}", 404, NULL},
        {"POST", "/user/item/create", "{\"userId\":1,\"itemId\":1,\"count\":1}", 409, NULL},
        {"POST", "/user/gxp/add", "{\"userId\":999,\"amount\":1}", 404, NULL},
        {"GET", "/user/gxp?userId=999", NULL, 404, NULL},
        {"GET", "/gxp/transaction?correlationId=0b9c2f3e-5d41-4c8e-9a77-1f2e3d4c5b6a", NULL, 404,
         "unknown_transaction"},
        {"GET", "/item/999", NULL, 404, NULL},
        {"GET", "/nope", NULL, 404, NULL},
        {"GET", "/user/create/more", NULL, 404, NULL},
        {"POST", "/", "{}", 404, NULL},
    };
    refuse_all(strict, N(strict), true);
    /* A refused buy may record its 'failed' decision; nothing else may change. */
    const struct bad buys[] = {
        {"POST", "/marketplace/item/buy", "{\"userId\":999,\"itemId\":1}", 404, NULL},
        {"POST", "/marketplace/item/buy", "{\"userId\":1,\"itemId\":999}", 404, NULL},
        {"POST", "/marketplace/item/buy", buy_not_on_sale, 404, NULL},
    };
    refuse_all(buys, N(buys), false);

    /* Wrong methods on known paths: 405 naming the allowed ones. */
    static const struct {
        const char *method, *path, *allow;
    } m[] = {
        {"GET", "/user/create", "POST"},   {"POST", "/user", "GET"},
        {"DELETE", "/item", "GET"},        {"PUT", "/marketplace/item/buy", "POST"},
        {"POST", "/user/gxp", "GET"},      {"GET", "/user/gxp/add", "POST"},
        {"POST", "/gxp/get-all", "GET"},   {"DELETE", "/item/1", "PATCH"},
        {"POST", "/item/svc-info", "GET"},
    };
    for (size_t i = 0; i < N(m); i++) {
        char before[1200], after[1200], allow[128];
        snapshot(&W, true, before, sizeof before);
        struct http_res r;
        http(&W, m[i].method, m[i].path, strcmp(m[i].method, "GET") ? "{}" : NULL, NULL, &r);
        if (r.status != 405)
            fail_msg("%s %s: expected 405, got %ld", m[i].method, m[i].path, r.status);
        assert_error(&r, 405, NULL);
        if (http_header(&r, "Allow", allow, sizeof allow) == NULL ||
            strstr(allow, m[i].allow) == NULL)
            fail_msg("%s %s: Allow should name %s", m[i].method, m[i].path, m[i].allow);
        http_res_free(&r);
        snapshot(&W, true, after, sizeof after);
        assert_string_equal(before, after);
    }
}

static void buying_out_of_stock_is_409_and_charges_nothing(void **state)
{
    (void)state;
    long long u = api_create_user(&W, "stock-buyer");
    api_add_gxp(&W, u, 50, NULL);
    long long item = api_create_item(&W, "scarce", 7);
    api_create_marketplace_item(&W, item, 1);
    char body[96];
    snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", u, item);
    struct http_res r;
    post_ok("/marketplace/item/buy", body, "correlationId,buyItemResponse", &r);
    http_res_free(&r);
    struct bad again[] = {{"POST", "/marketplace/item/buy", body, 409, "out_of_stock"}};
    refuse_all(again, 1, false);
    assert_int_equal(wait_no_pending(&W, 15000), 0);
    balance_is(&W, u, 43, 0);
    assert_int_equal(
        sql_ll(W.backend, "SELECT count FROM marketplace_items WHERE item_id = %lld", item), 0);
}

static void buying_without_enough_gxp_is_409_and_releases_the_reservation(void **state)
{
    (void)state;
    long long u = api_create_user(&W, "poor-buyer");
    api_add_gxp(&W, u, 5, NULL);
    long long item = api_create_item(&W, "dear", 10);
    api_create_marketplace_item(&W, item, 3);
    char body[96];
    snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", u, item);
    struct bad buy[] = {{"POST", "/marketplace/item/buy", body, 409, "insufficient_gxp"}};
    refuse_all(buy, 1, false);
    assert_int_equal(wait_no_pending(&W, 15000), 0);
    balance_is(&W, u, 5, 0);
    assert_int_equal(sql_ll(W.backend, "SELECT count(*) FROM user_items WHERE user_id = %lld", u),
                     0);
}

/* ---- Idempotency-Key ----------------------------------------------------------------- */

static void a_retried_post_with_the_same_idempotency_key_is_answered_once(void **state)
{
    (void)state;
    long long u = api_create_user(&W, "idem-user");
    char body[96], other[96], replayed[32];
    snprintf(body, sizeof body, "{\"userId\":%lld,\"amount\":7}", u);
    snprintf(other, sizeof other, "{\"userId\":%lld,\"amount\":8}", u);
    const char *h[] = {"Idempotency-Key: add-7-once", NULL};
    struct http_res first, again;
    http(&W, "POST", "/user/gxp/add", body, h, &first);
    assert_ok(&first, "correlationId");
    assert_null(http_header(&first, "Idempotent-Replayed", replayed, sizeof replayed));
    assert_int_equal(wait_until_finalized(&W, jstr(first.json, "correlationId"), 15000), 0);
    char before[1200], after[1200];
    snapshot(&W, true, before, sizeof before);
    for (int i = 0; i < 3; i++) {
        http(&W, "POST", "/user/gxp/add", body, h, &again);
        assert_int_equal(again.status, 200);
        assert_string_equal(again.body, first.body);
        assert_non_null(http_header(&again, "Idempotent-Replayed", replayed, sizeof replayed));
        assert_string_equal(replayed, "true");
        http_res_free(&again);
    }
    snapshot(&W, true, after, sizeof after);
    assert_string_equal(before, after);
    balance_is(&W, u, 7, 0);
    assert_int_equal(sql_ll(W.gxp, "SELECT count(*) FROM gxp_transaction WHERE user_id = %lld", u),
                     1);
    /* The same key with another body is a client bug: 422, nothing done. */
    http(&W, "POST", "/user/gxp/add", other, h, &again);
    assert_error(&again, 422, NULL);
    http_res_free(&again);
    snapshot(&W, true, after, sizeof after);
    assert_string_equal(before, after);
    http_res_free(&first);

    /* A create is replayed too: one user, the same id. */
    const char *hu[] = {"Idempotency-Key: create-once", NULL};
    http(&W, "POST", "/user/create", "{\"name\":\"idem-created\"}", hu, &first);
    assert_ok(&first, "userId,correlationId");
    http(&W, "POST", "/user/create", "{\"name\":\"idem-created\"}", hu, &again);
    assert_int_equal(again.status, 200);
    assert_string_equal(again.body, first.body);
    http_res_free(&first);
    http_res_free(&again);
    assert_int_equal(sql_ll(W.backend, "SELECT count(*) FROM users WHERE name = 'idem-created'"),
                     1);
    /* An invalid key is bad input. */
    const char *bad[] = {"Idempotency-Key: caf\xc3\xa9", NULL};
    http(&W, "POST", "/user/gxp/add", body, bad, &again);
    assert_error(&again, 400, NULL);
    http_res_free(&again);
}

/* ---- ETag / If-Match ----------------------------------------------------------------- */

static long long etag_version(const struct http_res *r)
{
    char etag[64];
    assert_non_null(http_header(r, "ETag", etag, sizeof etag));
    size_t n = strlen(etag);
    if (n < 3 || etag[0] != '"' || etag[n - 1] != '"')
        fail_msg("ETag is not a quoted version: %s", etag);
    return strtoll(etag + 1, NULL, 10);
}

static void item_updates_need_a_fresh_if_match(void **state)
{
    (void)state;
    long long item = api_create_item(&W, "etagged", 20);
    char path[64], m[64];
    snprintf(path, sizeof path, "/item/%lld", item);
    struct http_res r;
    http(&W, "GET", path, NULL, NULL, &r);
    assert_ok(&r, "id,name,cost,updatedAt");
    assert_int_equal(jint(r.json, "cost"), 20);
    long long v0 = etag_version(&r);
    http_res_free(&r);

    snprintf(m, sizeof m, "If-Match: \"%lld\"", v0);
    const char *h0[] = {m, NULL};
    http(&W, "PATCH", path, "{\"cost\":25}", h0, &r);
    assert_ok(&r, "id,name,cost,updatedAt");
    assert_int_equal(jint(r.json, "cost"), 25);
    assert_string_equal(jstr(r.json, "name"), "etagged");
    long long v1 = etag_version(&r);
    assert_true(v1 != v0);
    http_res_free(&r);
    http(&W, "GET", path, NULL, NULL, &r);
    assert_int_equal(etag_version(&r), v1);
    assert_int_equal(jint(r.json, "cost"), 25);
    http_res_free(&r);

    /* The old version is stale: 412; no If-Match: 428; a bad one: 400 or 412. */
    char before[1200], after[1200];
    snapshot(&W, true, before, sizeof before);
    http(&W, "PATCH", path, "{\"name\":\"stale\"}", h0, &r);
    assert_error(&r, 412, NULL);
    http_res_free(&r);
    http(&W, "PATCH", path, "{\"name\":\"no-if-match\"}", NULL, &r);
    assert_error(&r, 428, NULL);
    http_res_free(&r);
    const char *hb[] = {"If-Match: *", NULL};
    http(&W, "PATCH", path, "{\"name\":\"star\"}", hb, &r);
    assert_true(r.status == 400 || r.status == 412 || r.status == 428);
    assert_error(&r, r.status, NULL);
    http_res_free(&r);
    char m1[64];
    snprintf(m1, sizeof m1, "If-Match: \"%lld\"", v1);
    const char *h1[] = {m1, NULL};
    http(&W, "PATCH", path, "{\"cost\":-1}", h1, &r);
    assert_error(&r, 400, NULL);
    http_res_free(&r);
    http(&W, "PATCH", "/item/999999", "{\"cost\":1}", h1, &r);
    assert_error(&r, 404, NULL);
    http_res_free(&r);
    snapshot(&W, true, after, sizeof after);
    assert_string_equal(before, after);
    http(&W, "GET", path, NULL, NULL, &r);
    assert_string_equal(jstr(r.json, "name"), "etagged");
    http_res_free(&r);
}

/* ---- svc-info ------------------------------------------------------------------------ */

static void svc_info_names_the_deployment(void **state)
{
    (void)state;
    static const char *const paths[] = {"/item/svc-info", "/user/svc-info", "/marketplace/svc-info",
                                        "/gxp/svc-info"};
    for (size_t i = 0; i < N(paths); i++) {
        struct http_res r;
        char want[128], ct[128];
        http(&W, "GET", paths[i], NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        snprintf(want, sizeof want, "%s endpoint serviced by backend-svc-test", paths[i]);
        /* A trailing newline is tolerated. */
        if (r.body_len > 0 && r.body[r.body_len - 1] == '\n')
            r.body[r.body_len - 1] = '\0';
        assert_string_equal(r.body, want);
        assert_non_null(http_header(&r, "Content-Type", ct, sizeof ct));
        assert_non_null(strstr(ct, "text/plain"));
        http_res_free(&r);
    }
}

static void lists_page_with_limit_and_after(void **state)
{
    (void)state;
    struct http_res r;
    json_t *a = list("/item?limit=2", "items", &r);
    assert_int_equal(json_array_size(a), 2);
    long long last = jint(json_array_get(a, 1), "id");
    http_res_free(&r);
    char path[64];
    snprintf(path, sizeof path, "/item?limit=1&after=%lld", last);
    a = list(path, "items", &r);
    assert_int_equal(json_array_size(a), 1);
    assert_true(jint(json_array_get(a, 0), "id") > last);
    http_res_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(the_originals_test_sequence_answers_its_shapes, world_check),
        cmocka_unit_test_teardown(
            a_valid_incoming_correlation_id_is_echoed_and_an_invalid_one_replaced, world_check),
        cmocka_unit_test_teardown(user_item_create_stores_the_user_id, world_check),
        cmocka_unit_test_teardown(numeric_strings_zero_cost_and_255_byte_names_are_accepted,
                                  world_check),
        cmocka_unit_test_teardown(malformed_or_mistyped_bodies_are_400_and_change_nothing,
                                  world_check),
        cmocka_unit_test_teardown(unknown_ids_duplicates_paths_and_methods_are_refused,
                                  world_check),
        cmocka_unit_test_teardown(buying_out_of_stock_is_409_and_charges_nothing, world_check),
        cmocka_unit_test_teardown(buying_without_enough_gxp_is_409_and_releases_the_reservation,
                                  world_check),
        cmocka_unit_test_teardown(a_retried_post_with_the_same_idempotency_key_is_answered_once,
                                  world_check),
        cmocka_unit_test_teardown(item_updates_need_a_fresh_if_match, world_check),
        cmocka_unit_test_teardown(svc_info_names_the_deployment, world_check),
        cmocka_unit_test_teardown(lists_page_with_limit_and_after, world_check),
    };
    /* GF_TEST_FILTER=pattern (cmocka's * and ?) runs the matching tests only. */
    if (getenv("GF_TEST_FILTER"))
        cmocka_set_test_filter(getenv("GF_TEST_FILTER"));
    return cmocka_run_group_tests_name("backend_api", tests, setup, world_teardown);
}
