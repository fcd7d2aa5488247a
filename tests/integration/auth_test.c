/* Who may call what, against the real backend, gxp, eventlog and their databases: every cell
 * of the route × role table (no token, a user acting for itself, a user naming another user,
 * an admin), refusals that change nothing, tokens that prove nothing (expired, not yet valid,
 * tampered, alg none, signed by a key the services do not hold, a rotated-out key, wrong
 * issuer or audience), logins and their throttling, password changes, the first operator
 * (BACKEND_ADMIN_NAME), and no password or token in any log line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "backend_fixture.h"
#include "gf/clock.h"

#define ADMIN_NAME "root-operator"
#define ADMIN_PASSWORD "operator-pass-4821"
#define ALICE_PASSWORD "alice-secret-9137"
#define ALICE_NEW_PASSWORD "alice-second-5517"

static const char *const admin_env[] = {"BACKEND_ADMIN_NAME=" ADMIN_NAME,
                                        "BACKEND_ADMIN_PASSWORD=" ADMIN_PASSWORD,
                                        "BACKEND_LOGIN_MAX_FAILURES=3", NULL};

static int setup(void **state)
{
    (void)state;
    return world_start(&W, &(struct world_options){.events = true, .extra_env = admin_env});
}

/* The fixture's users: alice logs in (password), bob was created without one. */
static long long alice, bob, item, item2, market_item;
static char buy_cid[37];

static long long created_id(struct http_res *r, const char *key)
{
    assert_int_equal(r->status, 200);
    long long id = jint(r->json, key);
    http_res_free(r);
    return id;
}

/* Kills the backend and starts it again (a restart that reads the key directory anew). */
static void restart_backend(void)
{
    assert_int_equal(world_crash_backend(&W), 0);
    assert_int_equal(world_start_backend(&W, false, NULL), 0);
}

static void make_world_objects(void)
{
    if (alice != 0)
        return;
    struct http_res r;
    http(&W, "POST", "/user/create", "{\"name\":\"alice\",\"password\":\"" ALICE_PASSWORD "\"}",
         NULL, &r);
    alice = created_id(&r, "userId");
    http(&W, "POST", "/user/create", "{\"name\":\"bob\"}", NULL, &r);
    bob = created_id(&r, "userId");
    item = api_create_item(&W, "sword", 1);
    market_item = api_create_marketplace_item(&W, item, 1000);
    item2 = api_create_item(&W, "amulet", 5); /* the user items the admin makes */
    api_add_gxp(&W, alice, 1000, NULL);
    api_add_gxp(&W, bob, 1000, NULL);
    char body[128];
    snprintf(body, sizeof body, "{\"userId\":%lld,\"itemId\":%lld}", alice, item);
    http(&W, "POST", "/marketplace/item/buy", body, NULL, &r);
    assert_int_equal(r.status, 200);
    snprintf(buy_cid, sizeof buy_cid, "%s", jstr(r.json, "correlationId"));
    http_res_free(&r);
}

/* What the databases hold that a refused request must not change. */
static char *state_fingerprint(void)
{
    assert_int_equal(wait_no_pending(&W, 10000), 0); /* a 200 finalizes on gxp a moment later */
    char be[1024], gx[256];
    sql_text(W.backend, be, sizeof be,
             "SELECT (SELECT count(*) FROM users) || '/' || (SELECT count(*) FROM items)"
             " || '/' || (SELECT coalesce(sum(count), 0) FROM marketplace_items) || '/'"
             " || (SELECT coalesce(sum(count), 0) FROM user_items) || '/'"
             " || (SELECT string_agg(name || cost || version, ',' ORDER BY id) FROM items)"
             " || '/' || (SELECT count(*) FROM credentials)"
             " || '/' || (SELECT count(*) FROM transaction_outbox)");
    sql_text(W.gxp, gx, sizeof gx,
             "SELECT coalesce(sum(balance), 0) || '/' || count(*) FROM balance");
    char *out = NULL;
    assert_true(asprintf(&out, "%s|%s", be, gx) > 0);
    return out;
}

enum who { NOBODY_, ALICE, ALICE_FOR_BOB, ADMIN };
static const char *const who_names[] = {"no token", "alice for herself", "alice naming bob",
                                        "admin"};

/* One cell: method path (body) as `who`, expecting status. For ALICE_FOR_BOB the body and
 * path name bob. */
struct cell {
    const char *method;
    const char *path; /* %lld: the user named (alice, or bob for ALICE_FOR_BOB) */
    const char *body; /* %lld as in path; NULL: none */
    int expect[4];    /* by enum who; 0: not tried */
    const char *port; /* "eventlog" for eventlog's routes, else the backend */
};

static long try_cell(const struct cell *c, enum who w, char **token_alice)
{
    long long named = w == ALICE_FOR_BOB ? bob : alice;
    char path[256], body[256];
    snprintf(path, sizeof path, c->path, named, named);
    if (c->body != NULL)
        snprintf(body, sizeof body, c->body, named,
                 strcmp(c->path, "/user/item/create") == 0 ? item2 : item, named);
    const char *headers[3] = {NULL, NULL, NULL};
    int nh = 0;
    if (w == NOBODY_)
        headers[nh++] = "Authorization:";
    else if (w == ALICE || w == ALICE_FOR_BOB)
        headers[nh++] = world_bearer(*token_alice);
    if (strcmp(c->method, "PATCH") == 0)
        headers[nh++] = "If-Match: \"999999\"";
    struct http_res r;
    long st;
    if (c->port != NULL) {
        struct backend_world *ev = calloc(1, sizeof *ev); /* eventlog's port, the same tokens */
        assert_non_null(ev);
        ev->http_port = W.eventlog_port;
        ev->admin_token = W.admin_token;
        st = http(ev, c->method, path, c->body ? body : NULL, headers, &r);
        free(ev);
    } else {
        st = http(&W, c->method, path, c->body ? body : NULL, headers, &r);
    }
    if (st >= 400) {
        /* the usual error body */
        assert_non_null(r.json);
        assert_non_null(jstr(r.json, "error"));
        assert_non_null(jstr(r.json, "message"));
        assert_non_null(jstr(r.json, "correlationId"));
        if (st == 401) {
            char h[128];
            assert_non_null(http_header(&r, "WWW-Authenticate", h, sizeof h));
        }
    }
    http_res_free(&r);
    return st;
}

static void every_cell_of_the_route_by_role_table_answers_as_documented(void **state)
{
    (void)state;
    make_world_objects();
    char *alice_token = world_token(&W, GF_ROLE_USER, alice, 0, 600);
    char gxp_tx[96];
    snprintf(gxp_tx, sizeof gxp_tx, "/gxp/transaction?correlationId=%s", buy_cid);
    /* Refused cells: 401 or 403, nothing changed. Allowed ones: the status of a success (or
     * of a request that passed the gate and failed on its own merits, e.g. PATCH's 412). */
    const struct cell cells[] = {
        {"GET", "/user", NULL, {401, 403, 0, 200}, NULL},
        {"GET", "/user/", NULL, {401, 403, 0, 200}, NULL},
        {"POST", "/user/create", "{\"name\":\"made-%lld-%lld\"}", {401, 403, 0, 0}, NULL},
        {"GET", "/item", NULL, {200, 200, 0, 200}, NULL},
        {"POST", "/item/create", "{\"name\":\"n%lld\",\"cost\":%lld}", {401, 403, 0, 0}, NULL},
        {"GET", "/item/1", NULL, {200, 200, 0, 200}, NULL},
        {"PATCH", "/item/1", "{\"name\":\"renamed-%lld\"}", {401, 403, 0, 412}, NULL},
        {"GET", "/marketplace/item", NULL, {200, 200, 0, 200}, NULL},
        {"POST",
         "/marketplace/item/create",
         "{\"itemId\":%lld,\"count\":%lld}",
         {401, 403, 0, 0},
         NULL},
        {"POST",
         "/marketplace/item/buy",
         "{\"userId\":%lld,\"itemId\":%lld}",
         {401, 200, 403, 200},
         NULL},
        {"GET", "/user/item", NULL, {401, 200, 0, 200}, NULL},
        {"GET", "/user/item?userId=%lld", NULL, {401, 200, 403, 200}, NULL},
        {"POST",
         "/user/item/create",
         "{\"userId\":%lld,\"itemId\":%lld,\"count\":1}",
         {401, 403, 403, 200},
         NULL},
        {"POST", "/user/gxp/add", "{\"userId\":%lld,\"amount\":1}", {401, 403, 403, 200}, NULL},
        {"GET", "/user/gxp?userId=%lld", NULL, {401, 200, 403, 200}, NULL},
        {"GET", "/gxp/get-all", NULL, {401, 403, 0, 200}, NULL},
        {"GET", gxp_tx, NULL, {401, 403, 0, 200}, NULL},
        {"POST",
         "/auth/password",
         "{\"userId\":%lld,\"newPassword\":\"whatever-%lld\"}",
         {401, 0, 403, 0},
         NULL},
        /* Auctions: signed in; a user for itself (past the gate, no such auction: 404). */
        {"GET", "/auction", NULL, {401, 200, 0, 200}, NULL},
        {"GET", "/auction?status=open", NULL, {401, 200, 0, 200}, NULL},
        {"GET", "/auction/999999", NULL, {401, 404, 0, 404}, NULL},
        {"POST",
         "/auction/create",
         "{\"userId\":%lld,\"userItemId\":999999,\"minBid\":1,\"durationSeconds\":60}",
         {401, 404, 403, 404},
         NULL},
        {"POST",
         "/auction/bid",
         "{\"auctionId\":999999,\"userId\":%lld,\"amount\":5}",
         {401, 404, 403, 404},
         NULL},
        {"POST",
         "/auction/cancel",
         "{\"auctionId\":999999,\"userId\":%lld}",
         {401, 404, 403, 404},
         NULL},
        {"GET", "/item/svc-info", NULL, {200, 200, 0, 200}, NULL},
        {"GET", "/user/svc-info", NULL, {200, 200, 0, 200}, NULL},
        {"GET", "/marketplace/svc-info", NULL, {200, 200, 0, 200}, NULL},
        {"GET", "/gxp/svc-info", NULL, {200, 200, 0, 200}, NULL},
        {"GET", "/healthz", NULL, {200, 200, 0, 200}, NULL},
        {"GET", "/readyz", NULL, {200, 200, 0, 200}, NULL},
        {"GET", "/metrics", NULL, {200, 200, 0, 200}, NULL},
        {"GET", "/eventlog/events?userId=%lld", NULL, {401, 200, 403, 200}, "eventlog"},
        {"GET", "/eventlog/events", NULL, {401, 200, 0, 200}, "eventlog"},
    };
    int tried = 0;
    for (size_t i = 0; i < sizeof cells / sizeof cells[0]; i++) {
        for (int w = NOBODY_; w <= ADMIN; w++) {
            int want = cells[i].expect[w];
            if (want == 0)
                continue;
            char *before = want >= 400 ? state_fingerprint() : NULL;
            long got = try_cell(&cells[i], (enum who)w, &alice_token);
            if (got == 200 && strcmp(cells[i].path, "/user/item/create") == 0)
                atomic_fetch_add(&W.stock_created, 1); /* the admin's user item */
            if (got != want)
                fail_msg("%s %s as %s: %ld, want %d", cells[i].method, cells[i].path, who_names[w],
                         got, want);
            if (before != NULL) {
                char *after = state_fingerprint();
                if (strcmp(before, after) != 0)
                    fail_msg("%s %s as %s was refused and changed %s into %s", cells[i].method,
                             cells[i].path, who_names[w], before, after);
                free(after);
                free(before);
            }
            tried++;
        }
    }
    /* The admin's POSTs of the table, with their own bodies (they create). */
    struct http_res r;
    http(&W, "POST", "/user/create", "{\"name\":\"made-by-admin\"}", NULL, &r);
    assert_ok(&r, "userId,correlationId");
    http_res_free(&r);
    (void)api_create_marketplace_item(&W, api_create_item(&W, "shield", 3), 2);
    /* A user's list of user items holds its own rows only. */
    http(&W, "GET", "/user/item", NULL, (const char *[]){world_bearer(alice_token), NULL}, &r);
    assert_int_equal(r.status, 200);
    json_t *rows = jarr(r.json, "userItems");
    assert_true(json_array_size(rows) > 0);
    for (size_t k = 0; k < json_array_size(rows); k++)
        assert_int_equal(jint(json_array_get(rows, k), "userId"), alice);
    http_res_free(&r);
    print_message("route x role cells tried: %d\n", tried);
    free(alice_token);
}

/* The token of a request to GET /user, as an admin's would be, but broken one way. */
static void expect_401(const char *token, const char *code, const char *what)
{
    struct http_res r;
    char *before = state_fingerprint();
    long st = http(&W, "GET", "/user", NULL, (const char *[]){world_bearer(token), NULL}, &r);
    if (st != 401 || r.json == NULL || strcmp(jstr(r.json, "error"), code) != 0)
        fail_msg("%s: %ld %s, want 401 %s", what, st, r.body, code);
    http_res_free(&r);
    /* and on a mutation: nothing changes */
    http(&W, "POST", "/item/create", "{\"name\":\"forged\",\"cost\":1}",
         (const char *[]){world_bearer(token), NULL}, &r);
    assert_int_equal(r.status, 401);
    http_res_free(&r);
    char *after = state_fingerprint();
    assert_string_equal(before, after);
    free(before);
    free(after);
}

/* An admin's token signed with the key set of dir and signing_key under issuer and audience:
 * 401 invalid_token, nothing changed. */
static void expect_401_signed_by(const char *dir, const char *signing_key, const char *issuer,
                                 const char *audience, const char *what)
{
    char why[256];
    struct gf_auth_keys *k = gf_auth_keys_load(dir, signing_key, issuer, audience, why, sizeof why);
    if (k == NULL)
        fail_msg("%s: %s", what, why);
    struct gf_auth_claims c = {.user_id = 1, .role = GF_ROLE_ADMIN, .name = "mallory"};
    char *tok = NULL;
    assert_int_equal(gf_auth_sign(k, &c, (int64_t)time(NULL), 600, &tok), GF_OK);
    expect_401(tok, "invalid_token", what);
    free(tok);
    gf_auth_keys_free(k);
}

static char *b64url(const void *p, size_t n)
{
    size_t cap = sodium_base64_encoded_len(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(cap);
    assert_non_null(out);
    sodium_bin2base64(out, cap, p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

static void forged_expired_and_foreign_tokens_are_401_and_change_nothing(void **state)
{
    (void)state;
    make_world_objects();
    char *ok = world_token(&W, GF_ROLE_ADMIN, 1, 0, 600);
    struct http_res r;
    http(&W, "GET", "/user", NULL, (const char *[]){world_bearer(ok), NULL}, &r);
    assert_int_equal(r.status, 200);
    http_res_free(&r);

    char *expired = world_token(&W, GF_ROLE_ADMIN, 1, 0, -300);
    expect_401(expired, "token_expired", "an expired token");
    char *early = world_token(&W, GF_ROLE_ADMIN, 1, 600, 600);
    expect_401(early, "invalid_token", "a token not valid for 10 minutes");

    /* A flipped character in the signature, then in the payload (role user → admin stays
     * signed for what it was). */
    char *bad_sig = strdup(ok);
    char *last = bad_sig + strlen(bad_sig) - 2;
    *last = *last == 'A' ? 'B' : 'A';
    expect_401(bad_sig, "invalid_token", "a token with a changed signature");
    char *user_tok = world_token(&W, GF_ROLE_USER, alice, 0, 600);
    char *dot1 = strchr(user_tok, '.'), *dot2 = strchr(dot1 + 1, '.');
    char payload[1024];
    size_t plen = 0;
    assert_int_equal(sodium_base642bin((unsigned char *)payload, sizeof payload - 1, dot1 + 1,
                                       (size_t)(dot2 - dot1 - 1), NULL, &plen, NULL,
                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                     0);
    payload[plen] = '\0';
    char *role = strstr(payload, "\"user\"");
    assert_non_null(role);
    char promoted[1100];
    snprintf(promoted, sizeof promoted, "%.*s\"admin\"%s", (int)(role - payload), payload,
             role + 6);
    char *p64 = b64url(promoted, strlen(promoted));
    char forged[4096];
    snprintf(forged, sizeof forged, "%.*s.%s%s", (int)(dot1 - user_tok), user_tok, p64, dot2);
    expect_401(forged, "invalid_token", "a user's token promoted to admin");

    /* alg none, with and without a signature; and HS256 keyed with anything. */
    char hdr_none[128];
    snprintf(hdr_none, sizeof hdr_none, "{\"alg\":\"none\",\"typ\":\"JWT\"}");
    char *h64 = b64url(hdr_none, strlen(hdr_none));
    char none_tok[4096];
    snprintf(none_tok, sizeof none_tok, "%s.%s.", h64, p64);
    expect_401(none_tok, "invalid_token", "alg none without a signature");
    snprintf(none_tok, sizeof none_tok, "%s.%s%s", h64, p64, dot2);
    expect_401(none_tok, "invalid_token", "alg none with a signature");
    free(h64);
    const char *hs = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    h64 = b64url(hs, strlen(hs));
    snprintf(none_tok, sizeof none_tok, "%s.%s%s", h64, p64, dot2);
    expect_401(none_tok, "invalid_token", "alg HS256");
    free(h64);

    /* A key of its own: unknown kid. Another issuer or audience with the right key. */
    char dir[700], priv[700], pub[760];
    snprintf(dir, sizeof dir, "%s/foreign", h_run_dir());
    snprintf(priv, sizeof priv, "%s/foreign.key.pem", h_run_dir());
    snprintf(pub, sizeof pub, "%s/foreign.pub.pem", dir);
    assert_int_equal(mkdir(dir, 0755) == 0 || errno == EEXIST, 1);
    assert_int_equal(gf_auth_keygen(priv, pub), GF_OK);
    expect_401_signed_by(dir, priv, "gf-svc", "gf-svc-api",
                         "a token signed by a key the services do not hold");
    expect_401_signed_by(W.auth_dir, W.auth_key, "someone-else", "gf-svc-api",
                         "a token of another issuer");
    expect_401_signed_by(W.auth_dir, W.auth_key, "gf-svc", "another-api",
                         "a token for another audience");

    /* Not a bearer token at all. */
    expect_401("not-a-token", "invalid_token", "garbage");
    http(&W, "GET", "/user", NULL, (const char *[]){"Authorization: Basic YWRtaW46YWRtaW4=", NULL},
         &r);
    assert_int_equal(r.status, 401);
    http_res_free(&r);
    http(&W, "GET", "/user", NULL, (const char *[]){"Authorization:", NULL}, &r);
    assert_int_equal(r.status, 401);
    assert_string_equal(jstr(r.json, "error"), "unauthenticated");
    http_res_free(&r);
    free(p64);
    free(ok);
    free(expired);
    free(early);
    free(bad_sig);
    free(user_tok);
}

static void a_rotated_out_key_stops_working_and_the_new_one_keeps_working(void **state)
{
    (void)state;
    make_world_objects();
    /* A second key joins the set (rotation: both valid), the backend restarts with both. */
    char priv2[700], pub2[760], why[256];
    snprintf(priv2, sizeof priv2, "%s/second.key.pem", h_run_dir());
    snprintf(pub2, sizeof pub2, "%s/second.pub.pem", W.auth_dir);
    assert_int_equal(gf_auth_keygen(priv2, pub2), GF_OK);
    restart_backend();
    struct gf_auth_keys *second =
        gf_auth_keys_load(W.auth_dir, priv2, "gf-svc", "gf-svc-api", why, sizeof why);
    assert_non_null(second);
    struct gf_auth_claims c = {.user_id = 1, .role = GF_ROLE_ADMIN, .name = "ops"};
    char *by_second = NULL;
    assert_int_equal(gf_auth_sign(second, &c, (int64_t)time(NULL), 600, &by_second), GF_OK);
    struct http_res r;
    http(&W, "GET", "/user", NULL, (const char *[]){world_bearer(by_second), NULL}, &r);
    assert_int_equal(r.status, 200);
    http_res_free(&r);
    /* The second key is rotated out: its tokens are refused, the first key's still work. */
    assert_int_equal(unlink(pub2), 0);
    restart_backend();
    expect_401(by_second, "invalid_token", "a token of a rotated-out key");
    http(&W, "GET", "/user", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    http_res_free(&r);
    free(by_second);
    gf_auth_keys_free(second);
}

static long login(const char *name, const char *password, struct http_res *r)
{
    char body[512];
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"password\":\"%s\"}", name, password);
    return http(&W, "POST", "/auth/login", body, (const char *[]){"Authorization:", NULL}, r);
}

static void users_log_in_change_passwords_and_guessing_is_throttled(void **state)
{
    (void)state;
    make_world_objects();
    struct http_res r;
    /* alice logs in and reads her balance with her token; not bob's. */
    assert_int_equal(login("alice", ALICE_PASSWORD, &r), 200);
    assert_ok(&r, "token,expiresAt,tokenType,correlationId");
    assert_iso8601_ms(jstr(r.json, "expiresAt"));
    char *tok = strdup(jstr(r.json, "token"));
    http_res_free(&r);
    char path[64];
    snprintf(path, sizeof path, "/user/gxp?userId=%lld", alice);
    http(&W, "GET", path, NULL, (const char *[]){world_bearer(tok), NULL}, &r);
    assert_int_equal(r.status, 200);
    http_res_free(&r);
    snprintf(path, sizeof path, "/user/gxp?userId=%lld", bob);
    http(&W, "GET", path, NULL, (const char *[]){world_bearer(tok), NULL}, &r);
    assert_error(&r, 403, "forbidden");
    http_res_free(&r);

    /* Unknown name, wrong password, a user without a password: the same 401. */
    assert_int_equal(login("nobody-here", ALICE_PASSWORD, &r), 401);
    assert_string_equal(jstr(r.json, "error"), "invalid_credentials");
    http_res_free(&r);
    assert_int_equal(login("bob", "anything-at-all", &r), 401);
    assert_string_equal(jstr(r.json, "error"), "invalid_credentials");
    http_res_free(&r);

    /* A weak new password, a wrong current one, then the change. */
    char body[256];
    snprintf(body, sizeof body, "{\"password\":\"%s\",\"newPassword\":\"short\"}", ALICE_PASSWORD);
    http(&W, "POST", "/auth/password", body, (const char *[]){world_bearer(tok), NULL}, &r);
    assert_error(&r, 400, "weak_password");
    http_res_free(&r);
    snprintf(body, sizeof body, "{\"password\":\"wrong-one-123\",\"newPassword\":\"%s\"}",
             ALICE_NEW_PASSWORD);
    http(&W, "POST", "/auth/password", body, (const char *[]){world_bearer(tok), NULL}, &r);
    assert_error(&r, 403, "wrong_password");
    http_res_free(&r);
    snprintf(body, sizeof body, "{\"password\":\"%s\",\"newPassword\":\"%s\"}", ALICE_PASSWORD,
             ALICE_NEW_PASSWORD);
    http(&W, "POST", "/auth/password", body, (const char *[]){world_bearer(tok), NULL}, &r);
    assert_int_equal(r.status, 200);
    http_res_free(&r);
    assert_int_equal(login("alice", ALICE_PASSWORD, &r), 401);
    http_res_free(&r);
    assert_int_equal(login("alice", ALICE_NEW_PASSWORD, &r), 200);
    http_res_free(&r);

    /* An admin gives bob a password: bob can log in. */
    snprintf(body, sizeof body, "{\"userId\":%lld,\"newPassword\":\"bob-first-7731\"}", bob);
    http(&W, "POST", "/auth/password", body, NULL, &r);
    assert_int_equal(r.status, 200);
    http_res_free(&r);
    assert_int_equal(login("bob", "bob-first-7731", &r), 200);
    http_res_free(&r);

    /* Guessing: after BACKEND_LOGIN_MAX_FAILURES (3) wrong passwords in a row the name is locked
     * for a while — even the right password gets 429 with Retry-After — then works again. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(login("alice", "guess-number-x", &r), 401);
        http_res_free(&r);
    }
    assert_int_equal(login("alice", ALICE_NEW_PASSWORD, &r), 429);
    assert_string_equal(jstr(r.json, "error"), "login_throttled");
    char ra[16];
    assert_non_null(http_header(&r, "Retry-After", ra, sizeof ra));
    int wait_s = atoi(ra);
    assert_true(wait_s >= 1 && wait_s <= 2);
    http_res_free(&r);
    sleep((unsigned)wait_s + 1);
    assert_int_equal(login("alice", ALICE_NEW_PASSWORD, &r), 200);
    http_res_free(&r);
    free(tok);
}

static void the_first_operator_logs_in_and_its_name_is_taken(void **state)
{
    (void)state;
    make_world_objects();
    struct http_res r;
    assert_int_equal(login(ADMIN_NAME, ADMIN_PASSWORD, &r), 200);
    char *tok = strdup(jstr(r.json, "token"));
    http_res_free(&r);
    http(&W, "GET", "/user", NULL, (const char *[]){world_bearer(tok), NULL}, &r);
    assert_int_equal(r.status, 200);
    http_res_free(&r);
    /* A user cannot take an operator's name as a login; a restart does not make a second. */
    http(&W, "POST", "/user/create", "{\"name\":\"" ADMIN_NAME "\",\"password\":\"pw-123456789\"}",
         (const char *[]){world_bearer(tok), NULL}, &r);
    assert_error(&r, 409, "name_taken");
    http_res_free(&r);
    restart_backend();
    assert_int_equal(sql_ll(W.backend, "SELECT count(*) FROM credentials WHERE role = 'admin'"), 1);
    free(tok);
}

static void no_password_or_token_reaches_a_log_line(void **state)
{
    (void)state;
    const char *secrets[] = {ADMIN_PASSWORD, ALICE_PASSWORD, ALICE_NEW_PASSWORD, "bob-first-7731",
                             W.admin_token};
    const char *logs[] = {W.backend_log, W.gxp_log, W.eventlog_log};
    for (size_t l = 0; l < 3; l++) {
        FILE *f = fopen(logs[l], "r");
        assert_non_null(f);
        char line[8192];
        int lines = 0;
        while (fgets(line, sizeof line, f)) {
            lines++;
            for (size_t s = 0; s < sizeof secrets / sizeof secrets[0]; s++) {
                if (strstr(line, secrets[s]) != NULL)
                    fail_msg("%s holds a secret: %s", logs[l], line);
            }
            /* no JWT-looking text either: three base64url parts starting with eyJ */
            if (strstr(line, "eyJ") != NULL)
                fail_msg("%s holds what looks like a token: %s", logs[l], line);
        }
        fclose(f);
        assert_true(lines > 0);
    }
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(every_cell_of_the_route_by_role_table_answers_as_documented,
                                  world_check),
        cmocka_unit_test_teardown(forged_expired_and_foreign_tokens_are_401_and_change_nothing,
                                  world_check),
        cmocka_unit_test_teardown(a_rotated_out_key_stops_working_and_the_new_one_keeps_working,
                                  world_check),
        cmocka_unit_test_teardown(users_log_in_change_passwords_and_guessing_is_throttled,
                                  world_check),
        cmocka_unit_test_teardown(the_first_operator_logs_in_and_its_name_is_taken, world_check),
        cmocka_unit_test(no_password_or_token_reaches_a_log_line),
    };
    if (getenv("GF_TEST_FILTER"))
        cmocka_set_test_filter(getenv("GF_TEST_FILTER"));
    return cmocka_run_group_tests_name("auth", tests, setup, world_teardown);
}
