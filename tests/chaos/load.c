/* The chaos test's clients: `setup` creates the users, items and stock the load works on (before
 * any fault), `load` runs N clients, each a thread with its own libcurl handle and its own
 * seeded stream of operations, through the ingress until the time is up. Every request is
 * recorded (chaos.h) with the correlation id it sent and what identifies its effect. Some buys
 * and add-gxps carry an Idempotency-Key and are retried with it until a definite answer; some
 * resend their X-Correlation-Id after no answer, as a client resending its tracing id would.
 * Every request carries a bearer token (tokens.c): the operator's, or for a buy often the
 * buyer's own; a few carry none or a user's token where it does not belong, and must be
 * refused. `probe` buys one item again and again while the driver holds a backend paused. */
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "chaos.h"

#define PROBE_USER "chaos-probe"

struct opts {
    const char *url, *out, *setup, *stop_file, *tokens, *admin_password_file;
    uint64_t seed;
    long seconds, clients, think_ms, users, items;
};

static void parse_opts(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.seconds = 30, .clients = 16, .think_ms = 100, .users = 24, .items = 6};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--url") == 0)
            o->url = v;
        else if (strcmp(k, "--out") == 0)
            o->out = v;
        else if (strcmp(k, "--setup") == 0)
            o->setup = v;
        else if (strcmp(k, "--stop-file") == 0)
            o->stop_file = v;
        else if (strcmp(k, "--tokens") == 0)
            o->tokens = v;
        else if (strcmp(k, "--admin-password-file") == 0)
            o->admin_password_file = v;
        else if (strcmp(k, "--seed") == 0)
            o->seed = strtoull(v, NULL, 10);
        else if (strcmp(k, "--seconds") == 0)
            o->seconds = strtol(v, NULL, 10);
        else if (strcmp(k, "--clients") == 0)
            o->clients = strtol(v, NULL, 10);
        else if (strcmp(k, "--think-ms") == 0)
            o->think_ms = strtol(v, NULL, 10);
        else if (strcmp(k, "--users") == 0)
            o->users = strtol(v, NULL, 10);
        else if (strcmp(k, "--items") == 0)
            o->items = strtol(v, NULL, 10);
    }
}

/* ---- one HTTP exchange ---------------------------------------------------------------------- */

struct http {
    CURL *h;
    struct buf body;
    int64_t etag;  /* the ETag's version of the last answer, -1 if none */
    bool replayed; /* the last answer said Idempotent-Replayed: true */
};

size_t chaos_buf_write(char *data, size_t size, size_t nmemb, void *ud)
{
    struct buf *b = ud;
    size_t n = size * nmemb;
    if (b->len + n + 1 > sizeof b->p)
        return 0;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    struct http *x = ud;
    size_t n = size * nmemb;
    if (n > 6 && strncasecmp(data, "ETag:", 5) == 0) {
        const char *p = data + 5;
        while (*p == ' ' || *p == '"')
            p++;
        x->etag = strtoll(p, NULL, 10);
    } else if (n >= 24 && strncasecmp(data, "Idempotent-Replayed:", 20) == 0) {
        const char *p = data + 20;
        while (*p == ' ')
            p++;
        x->replayed = strncasecmp(p, "true", 4) == 0;
    }
    return n;
}

static bool http_init(struct http *x)
{
    x->h = curl_easy_init();
    return x->h != NULL;
}

static int64_t json_id(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* Sends one request with the record's correlation id (and Idempotency-Key, if it has one), the
 * bearer token (none when NULL), and fills the record's answer fields. */
static void http_do(struct http *x, const char *method, const char *url, const char *body,
                    const char *if_match, const char *token, struct rec *r)
{
    struct curl_slist *hd = NULL;
    char h[128];
    snprintf(h, sizeof h, "X-Correlation-Id: %s", r->cid);
    hd = curl_slist_append(hd, h);
    if (token) {
        char a[TOKEN_MAX + 32];
        snprintf(a, sizeof a, "Authorization: Bearer %s", token);
        hd = curl_slist_append(hd, a);
    }
    hd = curl_slist_append(hd, "Content-Type: application/json");
    hd = curl_slist_append(hd, "Expect:");
    if (if_match) {
        snprintf(h, sizeof h, "If-Match: %s", if_match);
        hd = curl_slist_append(hd, h);
    }
    if (r->key[0]) {
        snprintf(h, sizeof h, "Idempotency-Key: %s", r->key);
        hd = curl_slist_append(hd, h);
    }
    x->body.len = 0;
    x->body.p[0] = '\0';
    x->etag = -1;
    x->replayed = false;
    CURL *c = x->h;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, chaos_buf_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 40000L); /* above nginx's 30 s proxy_read_timeout */
    r->t0_ms = now_ms();
    CURLcode rc = curl_easy_perform(c);
    r->t1_ms = now_ms();
    curl_slist_free_all(hd);
    r->curl_rc = (int)rc;
    r->status = 0;
    r->resp_cid[0] = '\0';
    r->err[0] = '\0';
    if (rc != CURLE_OK)
        return; /* no answer */
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    r->status = (int)code;
    if (x->replayed)
        r->flags |= REC_REPLAYED;
    else
        r->flags &= ~REC_REPLAYED;
    json_t *j = json_loadb(x->body.p, x->body.len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return;
    }
    json_t *v = json_object_get(j, "correlationId");
    if (json_is_string(v))
        snprintf(r->resp_cid, sizeof r->resp_cid, "%s", json_string_value(v));
    v = json_object_get(j, "error");
    if (json_is_string(v))
        snprintf(r->err, sizeof r->err, "%s", json_string_value(v));
    switch (r->kind) {
    case K_CREATE_USER:
        r->res_id = json_id(j, "userId");
        break;
    case K_CREATE_ITEM:
        r->res_id = json_id(j, "itemId");
        break;
    case K_MKT_CREATE:
        r->res_id = json_id(j, "marketplaceItemId");
        break;
    case K_BUY:
        r->res_id = json_id(json_object_get(j, "buyItemResponse"), "userItemId");
        break;
    case K_UI_CREATE:
        r->res_id = json_id(j, "userItemId");
        break;
    case K_AU_CREATE:
    case K_AU_CANCEL:
        r->res_id = json_id(j, "auctionId");
        break;
    case K_BID:
        r->res_id = json_id(j, "bidId");
        break;
    case K_PATCH_ITEM:
        r->res_ver = x->etag;
        break;
    default:
        break;
    }
    json_decref(j);
}

/* ---- the record file ------------------------------------------------------------------------ */

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static FILE *out_f;
static atomic_long seq_next;
static atomic_long n_2xx, n_4xx, n_5xx, n_none;

static void record(struct rec *r)
{
    r->seq = atomic_fetch_add(&seq_next, 1);
    atomic_fetch_add(r->status == 0     ? &n_none
                     : r->status >= 500 ? &n_5xx
                     : r->status >= 400 ? &n_4xx
                                        : &n_2xx,
                     1);
    pthread_mutex_lock(&out_mu);
    rec_write(out_f, r);
    fflush(out_f);
    pthread_mutex_unlock(&out_mu);
}

static void rec_new(struct rec *r, struct rng *g, int client, enum rec_kind k)
{
    memset(r, 0, sizeof *r);
    r->client = client;
    r->kind = k;
    r->amount = 0;
    r->attempt = 1;
    rng_uuid(g, r->cid);
}

/* ---- setup ---------------------------------------------------------------------------------
 * The operator logs in; items with small costs (one free: no two-phase commit, still an
 * event), each on sale; one item's stock is small so that it runs out under load; users with a
 * password and some GXP, each logged in (their tokens and the operator's: --tokens); and the
 * auctions' goods: an item not on sale (AUCTION_ITEM) of which every user holds SELLER_UNITS
 * units, to put up for auction. Run before any fault: every request must succeed. */

#define AUCTION_ITEM "chaos-auction-item"
#define SELLER_UNITS 40

static char setup_token[TOKEN_MAX]; /* the operator's */

static bool setup_one(struct http *x, const char *url, const char *path, const char *body,
                      struct rec *r)
{
    char u[512];
    snprintf(u, sizeof u, "%s%s", url, path);
    http_do(x, "POST", u, body, NULL, setup_token, r);
    record(r);
    if (r->status / 100 != 2) {
        fprintf(stderr, "chaos setup: POST %s %s -> %d (curl %d) %s\n", path, body, r->status,
                r->curl_rc, x->body.p);
        return false;
    }
    return true;
}

int chaos_setup(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o);
    if (!o.url || !o.out || !o.tokens || !o.admin_password_file) {
        fprintf(stderr, "chaos setup: --url, --out, --tokens and --admin-password-file are "
                        "required\n");
        return 2;
    }
    out_f = fopen(o.out, "w");
    if (!out_f) {
        perror(o.out);
        return 1;
    }
    curl_global_init(CURL_GLOBAL_ALL);
    static struct http x;
    if (!http_init(&x))
        return 1;
    if (!tokens_init(o.url, o.tokens, o.admin_password_file, o.seed) ||
        !tokens_login_add(0, ADMIN_NAME))
        return 1;
    tokens_get(0, setup_token);
    struct rng g;
    rng_init(&g, o.seed, 0);
    char body[2048], pw[NAME_MAX_LEN + 64];
    bool ok = true;
    for (long i = 1; ok && i <= o.items; i++) {
        struct rec r;
        rec_new(&r, &g, -1, K_CREATE_ITEM);
        r.amount = i == 1 ? 0 : rng_range(&g, 1, 12);
        snprintf(r.name, sizeof r.name, "chaos-item-%ld", i);
        snprintf(body, sizeof body, "{\"name\":\"%s\",\"cost\":%" PRId64 "}", r.name, r.amount);
        ok = setup_one(&x, o.url, "/item/create", body, &r);
        if (!ok)
            break;
        struct rec m;
        rec_new(&m, &g, -1, K_MKT_CREATE);
        m.item = r.res_id;
        m.amount = i == 2 ? 40 : 1000000;
        snprintf(body, sizeof body, "{\"itemId\":%" PRId64 ",\"count\":%" PRId64 "}", m.item,
                 m.amount);
        ok = setup_one(&x, o.url, "/marketplace/item/create", body, &m);
    }
    int64_t *made = calloc((size_t)o.users + 1, sizeof *made); /* the users, probe excluded */
    long n_made = 0;
    ok = ok && made != NULL;
    for (long i = 0; ok && i <= o.users; i++) {
        struct rec r;
        rec_new(&r, &g, -1, K_CREATE_USER);
        /* User 0 is the driver's probe buyer (chaos-probe), rich and unknown to the load. */
        if (i == 0)
            snprintf(r.name, sizeof r.name, "%s", PROBE_USER);
        else
            snprintf(r.name, sizeof r.name, "chaos-user-%ld", i);
        user_password(o.seed, r.name, pw, sizeof pw);
        snprintf(body, sizeof body, "{\"name\":\"%s\",\"password\":\"%s\"}", r.name, pw);
        ok = setup_one(&x, o.url, "/user/create", body, &r) && tokens_login_add(r.res_id, r.name);
        if (!ok)
            break;
        if (i > 0)
            made[n_made++] = r.res_id;
        struct rec a;
        rec_new(&a, &g, -1, K_ADD_GXP);
        a.user = r.res_id;
        a.amount = rng_range(&g, 20, 200);
        if (i == 0)
            a.amount = 1000000;
        snprintf(body, sizeof body, "{\"userId\":%" PRId64 ",\"amount\":%" PRId64 "}", a.user,
                 a.amount);
        ok = setup_one(&x, o.url, "/user/gxp/add", body, &a);
    }
    /* The auctions' item: not on sale; each user holds units of it to auction. */
    struct rec ai;
    rec_new(&ai, &g, -1, K_CREATE_ITEM);
    ai.amount = 5;
    snprintf(ai.name, sizeof ai.name, "%s", AUCTION_ITEM);
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"cost\":%" PRId64 "}", ai.name, ai.amount);
    ok = ok && setup_one(&x, o.url, "/item/create", body, &ai);
    for (long i = 0; ok && i < n_made; i++) {
        struct rec u;
        rec_new(&u, &g, -1, K_UI_CREATE);
        u.user = made[i];
        u.item = ai.res_id;
        u.amount = SELLER_UNITS;
        snprintf(body, sizeof body,
                 "{\"userId\":%" PRId64 ",\"itemId\":%" PRId64 ",\"count\":%" PRId64 "}", u.user,
                 u.item, u.amount);
        ok = setup_one(&x, o.url, "/user/item/create", body, &u);
    }
    free(made);
    ok = ok && tokens_save();
    curl_easy_cleanup(x.h);
    curl_global_cleanup();
    fclose(out_f);
    tokens_free();
    return ok ? 0 : 1;
}

/* ---- load ------------------------------------------------------------------------------------ */

#define MAX_OWN_USERS 512
#define UNKNOWN_USER 2000000000

static int64_t *setup_users, *setup_items;
static size_t n_setup_users, n_setup_items;
/* Sellers: a user and its user item of the auctions' item (setup's K_UI_CREATE). */
static int64_t *seller_users, *seller_uis;
static size_t n_sellers;
static size_t *user_toks, n_user_toks; /* the tokens of setup's users (not the probe's) */
static long admin_tok;
static struct opts g_opts;
static int64_t deadline_ms, hard_deadline_ms;
static atomic_bool stopping;

/* The load runs --seconds, and longer until the driver creates --stop-file (when its last
 * fault is over, so that every fault meets load), but never past the hard deadline. */
static bool keep_going(void)
{
    if (atomic_load(&stopping))
        return false;
    int64_t now = now_ms();
    bool more = now < deadline_ms ||
                (g_opts.stop_file && access(g_opts.stop_file, F_OK) != 0 && now < hard_deadline_ms);
    if (!more)
        atomic_store(&stopping, true);
    return more;
}

struct client {
    int id;
    pthread_t th;
    struct rng g;
    struct rng retry_g; /* the new correlation ids of retries: their number depends on timing */
    struct http x;
    int64_t own[MAX_OWN_USERS];
    int n_own, n_created;
    char tok[TOKEN_MAX];      /* the token of the request being sent */
    char read_tok[TOKEN_MAX]; /* the operator's, for the GET before a PATCH */
};

/* Draws the same numbers whatever happened before, so that a client's stream of operations
 * stays the same for a seed; which users it created depends on the answers, though. */
static int64_t pick_user(struct client *c)
{
    bool own = rng_chance(&c->g, 1, 6);
    uint64_t k = rng_next(&c->g);
    if (own && c->n_own > 0)
        return c->own[k % (uint64_t)c->n_own];
    return setup_users[k % n_setup_users];
}

/* Who sends a request acting for user (0: an admin route, which acts for no one user): its
 * token into c->tok (NULL: none) and the record's flags that say so. Most go with the
 * operator's token; on a user route (buy) a setup user often acts for itself with its own; a
 * few must be refused: no token (401), a user's token acting for another user or on an admin
 * route (403). Draws the same numbers whatever it chooses. */
static const char *pick_sender(struct client *c, int64_t user, struct rec *r)
{
    int64_t m = rng_range(&c->g, 0, 99);
    uint64_t k = rng_next(&c->g);
    long own = user > 0 ? tokens_index(user) : -1;
    size_t i = (size_t)admin_tok;
    if (m < 3) {
        r->flags |= REC_MUST_401;
        return NULL;
    }
    if (m < 6 && n_user_toks >= 2) {
        i = user_toks[k % n_user_toks];
        if (tokens_user(i) == user)
            i = user_toks[(k + 1) % n_user_toks];
        r->flags |= REC_MUST_403;
    } else if (m < 40 && own >= 0) {
        i = (size_t)own;
        r->flags |= REC_AS_USER;
    }
    tokens_get(i, c->tok);
    return c->tok;
}

static void op_create_user(struct client *c)
{
    struct rec r;
    rec_new(&r, &c->g, c->id, K_CREATE_USER);
    if (rng_chance(&c->g, 1, 20)) /* over 255 bytes: 400 */
        memset(r.name, 'x', 300);
    else
        snprintf(r.name, sizeof r.name, "chaos-c%d-u%d", c->id, ++c->n_created);
    bool password = rng_chance(&c->g, 1, 4); /* one in four can log in (a hash: ~50 ms) */
    const char *token = pick_sender(c, 0, &r);
    char body[1024], url[256], pw[NAME_MAX_LEN + 64];
    user_password(g_opts.seed, r.name, pw, sizeof pw);
    if (password)
        snprintf(body, sizeof body, "{\"name\":\"%s\",\"password\":\"%s\"}", r.name, pw);
    else
        snprintf(body, sizeof body, "{\"name\":\"%s\"}", r.name);
    snprintf(url, sizeof url, "%s/user/create", g_opts.url);
    http_do(&c->x, "POST", url, body, NULL, token, &r);
    record(&r);
    if (r.status == 200 && r.res_id > 0 && c->n_own < MAX_OWN_USERS)
        c->own[c->n_own++] = r.res_id;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* How a buy or add-gxp is sent: once (most), with an Idempotency-Key and retried with it until
 * a definite answer, or resending its correlation id after no answer or a 5xx. */
enum send_mode { SEND_ONCE, SEND_KEYED, SEND_RESEND };

#define KEY_RETRY_MAX_MS 90000 /* a keyed request gives up after this long without an answer */
#define KEY_ATTEMPTS_MAX 60
#define RESEND_MAX 8

static enum send_mode pick_mode(struct client *c, struct rec *r)
{
    int64_t m = rng_range(&c->g, 0, 99);
    char key[37];
    rng_uuid(&c->g, key); /* drawn always: the stream stays the same whatever the mode */
    if (m < 25) {
        snprintf(r->key, sizeof r->key, "%s", key);
        return SEND_KEYED;
    }
    if (m < 35) {
        r->flags |= REC_RESEND;
        return SEND_RESEND;
    }
    return SEND_ONCE;
}

/* Sends r (POST body to path) as its mode says, recording every attempt. The load's end does
 * not cut a keyed request short: it retries until a definite answer or KEY_RETRY_MAX_MS. */
static void send_post(struct client *c, enum send_mode mode, const char *path, const char *body,
                      const char *token, struct rec *r)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", g_opts.url, path);
    int64_t first = now_ms();
    for (int attempt = 1;; attempt++) {
        r->attempt = attempt;
        if (mode == SEND_KEYED && attempt > 1)
            rng_uuid(&c->retry_g, r->cid); /* every attempt has its own correlation id */
        http_do(&c->x, "POST", url, body, NULL, token, r);
        record(r);
        if (mode == SEND_ONCE || rec_definite(r))
            return;
        if (mode == SEND_RESEND) {
            /* A tracing id is resent only when the answer was lost or the service failed. */
            bool lost = r->status == 0 || r->status >= 500 ||
                        (r->status == 409 && strcmp(r->err, "request_in_progress") == 0);
            if (!lost || attempt >= RESEND_MAX)
                return;
        } else if (attempt >= KEY_ATTEMPTS_MAX || now_ms() - first > KEY_RETRY_MAX_MS) {
            return;
        }
        int64_t wait = r->status == 409 ? 500 : 100 * (attempt < 20 ? attempt : 20);
        sleep_ms(wait + rng_range(&c->retry_g, 0, wait / 2));
    }
}

static void op_add_gxp(struct client *c)
{
    struct rec r;
    rec_new(&r, &c->g, c->id, K_ADD_GXP);
    r.user = rng_chance(&c->g, 1, 25) ? UNKNOWN_USER : pick_user(c);
    r.amount = rng_chance(&c->g, 1, 40) ? 0 : rng_range(&c->g, 1, 40); /* 0: 400 */
    char body[128];
    enum send_mode mode = pick_mode(c, &r);
    const char *token = pick_sender(c, 0, &r); /* an admin route */
    snprintf(body, sizeof body, "{\"userId\":%" PRId64 ",\"amount\":%" PRId64 "}", r.user,
             r.amount);
    send_post(c, mode, "/user/gxp/add", body, token, &r);
}

static void op_buy(struct client *c)
{
    struct rec r;
    rec_new(&r, &c->g, c->id, K_BUY);
    r.user = rng_chance(&c->g, 1, 30) ? UNKNOWN_USER : pick_user(c);
    r.item = setup_items[rng_range(&c->g, 0, (int64_t)n_setup_items - 1)];
    char body[128];
    enum send_mode mode = pick_mode(c, &r);
    const char *token = pick_sender(c, r.user, &r);
    snprintf(body, sizeof body, "{\"userId\":%" PRId64 ",\"itemId\":%" PRId64 "}", r.user, r.item);
    send_post(c, mode, "/marketplace/item/buy", body, token, &r);
}

/* GET the item for its ETag, then PATCH it naming that version (or a stale one: 412). The
 * GET is not recorded: it changes nothing. */
static void op_patch_item(struct client *c)
{
    struct rec r;
    rec_new(&r, &c->g, c->id, K_PATCH_ITEM);
    r.item = setup_items[rng_range(&c->g, 0, (int64_t)n_setup_items - 1)];
    bool stale = rng_chance(&c->g, 1, 5);
    bool cost = rng_chance(&c->g, 1, 3);
    int64_t new_cost = rng_range(&c->g, 0, 15);
    snprintf(r.name, sizeof r.name, "chaos-item-%" PRId64 "-c%d-p%ld", r.item, c->id,
             (long)rng_range(&c->g, 0, 999999));
    const char *token = pick_sender(c, 0, &r); /* an admin route */
    char url[256], body[512], if_match[32];
    snprintf(url, sizeof url, "%s/item/%" PRId64, g_opts.url, r.item);
    /* A public route, but the ingress limits clients without a token per address: the
     * operator's goes along (unread). */
    struct rec get = r;
    tokens_get((size_t)admin_tok, c->read_tok);
    http_do(&c->x, "GET", url, NULL, NULL, c->read_tok, &get);
    if (get.status != 200 || c->x.etag < 0)
        return;
    r.aux = stale ? c->x.etag + 1000 : c->x.etag;
    snprintf(if_match, sizeof if_match, "\"%" PRId64 "\"", r.aux);
    r.amount = cost ? new_cost : -1;
    if (cost)
        snprintf(body, sizeof body, "{\"name\":\"%s\",\"cost\":%" PRId64 "}", r.name, new_cost);
    else
        snprintf(body, sizeof body, "{\"name\":\"%s\"}", r.name);
    http_do(&c->x, "PATCH", url, body, if_match, token, &r);
    record(&r);
}

/* ---- auctions ----------------------------------------------------------------------------
 * Sellers (setup's users, each with units of the auctions' item) put one unit up for 5-10 s;
 * bidders read an open auction's leading bid and bid above it (a few at or below it: 409), with
 * their own token or the operator's; now and then a seller cancels its newest auction (which
 * has no bid yet, or 409). The auctions created are shared by the clients (their ids are known
 * only from the answers, so which auction a bid goes to depends on timing). */

struct auction_ref {
    int64_t id, seller, min_bid, ends_ms;
};
#define AUCTIONS_MAX 100000
static pthread_mutex_t auctions_mu = PTHREAD_MUTEX_INITIALIZER;
static struct auction_ref *auctions;
static size_t n_auctions;

static void auction_add(const struct rec *r)
{
    pthread_mutex_lock(&auctions_mu);
    if (auctions == NULL)
        auctions = calloc(AUCTIONS_MAX, sizeof *auctions);
    if (auctions != NULL && n_auctions < AUCTIONS_MAX)
        auctions[n_auctions++] = (struct auction_ref){.id = r->res_id,
                                                      .seller = r->user,
                                                      .min_bid = r->amount,
                                                      .ends_ms = r->t0_ms + r->aux * 1000};
    pthread_mutex_unlock(&auctions_mu);
}

/* An auction to bid on: one of the newest still open (by pick), else the newest (closed: 409);
 * newest: the newest of all. false when none was created yet. */
static bool auction_pick(uint64_t pick, bool newest, struct auction_ref *out)
{
    bool found = false;
    pthread_mutex_lock(&auctions_mu);
    if (n_auctions > 0) {
        *out = auctions[n_auctions - 1];
        found = true;
        size_t open[64], n_open = 0;
        int64_t soon = now_ms() + 300;
        for (size_t i = n_auctions; !newest && i > 0 && n_auctions - i < 256 && n_open < 64; i--)
            if (auctions[i - 1].ends_ms > soon)
                open[n_open++] = i - 1;
        if (n_open > 0)
            *out = auctions[open[pick % n_open]];
    }
    pthread_mutex_unlock(&auctions_mu);
    return found;
}

/* Idempotency-Key or once: a resent correlation id is a buy's and a bid's way (their answer is
 * replayed), not a create's or a cancel's (their second attempt is refused 409). */
static enum send_mode pick_mode_no_resend(struct client *c, struct rec *r)
{
    enum send_mode m = pick_mode(c, r);
    if (m != SEND_RESEND)
        return m;
    r->flags &= ~REC_RESEND;
    return SEND_ONCE;
}

static void op_auction_create(struct client *c)
{
    struct rec r;
    rec_new(&r, &c->g, c->id, K_AU_CREATE);
    size_t k = (size_t)rng_range(&c->g, 0, (int64_t)n_sellers - 1);
    r.user = seller_users[k];
    r.item = seller_uis[k];
    r.aux = rng_chance(&c->g, 1, 25) ? 3 : rng_range(&c->g, 5, 10); /* under 5 s: 400 */
    r.amount = rng_range(&c->g, 1, 5);
    enum send_mode mode = pick_mode_no_resend(c, &r);
    const char *token = pick_sender(c, r.user, &r);
    /* A duration out of range is refused 400 before the token's 403 (acting for another
     * user): one refusal at a time. */
    if ((r.flags & REC_MUST_403) && r.aux < 5)
        r.aux = 5;
    char body[256];
    snprintf(body, sizeof body,
             "{\"userId\":%" PRId64 ",\"userItemId\":%" PRId64 ",\"minBid\":%" PRId64
             ",\"durationSeconds\":%" PRId64 "}",
             r.user, r.item, r.amount, r.aux);
    send_post(c, mode, "/auction/create", body, token, &r);
    if (r.status == 200 && r.res_id > 0)
        auction_add(&r);
}

/* The auction's minimum and leading bid (GET /auction/:id, not recorded: it changes nothing);
 * false when it could not be read. */
static bool auction_read(struct client *c, int64_t id, int64_t *min_bid, int64_t *leading)
{
    struct rec get;
    rec_new(&get, &c->retry_g, c->id, K_BID);
    char url[256];
    snprintf(url, sizeof url, "%s/auction/%" PRId64, g_opts.url, id);
    tokens_get((size_t)admin_tok, c->read_tok);
    http_do(&c->x, "GET", url, NULL, NULL, c->read_tok, &get);
    if (get.status != 200)
        return false;
    json_t *j = json_loadb(c->x.body.p, c->x.body.len, 0, NULL);
    bool ok = json_is_object(j);
    if (ok) {
        *min_bid = json_id(j, "minBid");
        json_t *lead = json_object_get(j, "leadingBid");
        *leading = json_is_object(lead) ? json_id(lead, "amount") : 0;
    }
    json_decref(j);
    return ok;
}

static void op_bid(struct client *c)
{
    struct rec r;
    rec_new(&r, &c->g, c->id, K_BID);
    uint64_t pick = rng_next(&c->g);
    r.user = rng_chance(&c->g, 1, 30) ? UNKNOWN_USER : pick_user(c);
    bool low = rng_chance(&c->g, 1, 10); /* at the leading bid (or under the minimum): 409 */
    int64_t inc = rng_range(&c->g, 1, 3);
    enum send_mode mode = pick_mode(c, &r);
    const char *token = pick_sender(c, r.user, &r);
    struct auction_ref a;
    if (!auction_pick(pick, false, &a))
        return; /* none created yet */
    r.item = a.id;
    int64_t min_bid = a.min_bid, leading = 0;
    if (!auction_read(c, a.id, &min_bid, &leading))
        leading = 0;
    if (low)
        r.amount = leading > 0 ? leading : min_bid - 1;
    else
        r.amount = leading >= min_bid ? leading + inc : min_bid + inc - 1;
    if (r.amount < 1)
        r.amount = 1;
    char body[192];
    snprintf(body, sizeof body,
             "{\"auctionId\":%" PRId64 ",\"userId\":%" PRId64 ",\"amount\":%" PRId64 "}", r.item,
             r.user, r.amount);
    send_post(c, mode, "/auction/bid", body, token, &r);
}

static void op_auction_cancel(struct client *c)
{
    struct rec r;
    rec_new(&r, &c->g, c->id, K_AU_CANCEL);
    bool wrong = rng_chance(&c->g, 1, 10); /* not the seller: 403 not_seller */
    uint64_t other = rng_next(&c->g);
    enum send_mode mode = pick_mode_no_resend(c, &r);
    struct auction_ref a;
    if (!auction_pick(0, true, &a)) {
        (void)pick_sender(c, 0, &r); /* the same draws as a cancel sent */
        return;
    }
    r.item = a.id;
    r.user = a.seller;
    if (wrong) {
        r.user = seller_users[other % n_sellers];
        if (r.user == a.seller)
            r.user = seller_users[(other + 1) % n_sellers];
    }
    const char *token = pick_sender(c, r.user, &r);
    char body[128];
    snprintf(body, sizeof body, "{\"auctionId\":%" PRId64 ",\"userId\":%" PRId64 "}", r.item,
             r.user);
    send_post(c, mode, "/auction/cancel", body, token, &r);
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    while (keep_going()) {
        int64_t op = rng_range(&c->g, 0, 99);
        if (op < 35)
            op_buy(c);
        else if (op < 53)
            op_add_gxp(c);
        else if (op < 63)
            op_create_user(c);
        else if (op < 75)
            op_patch_item(c);
        else if (op < 80)
            op_auction_create(c);
        else if (op < 99)
            op_bid(c);
        else
            op_auction_cancel(c);
        if (g_opts.think_ms > 0) {
            int64_t ms = rng_range(&c->g, 0, g_opts.think_ms);
            struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

static bool read_setup(const char *path)
{
    struct rec *v = NULL;
    size_t n = 0;
    if (!rec_read_file(path, &v, &n))
        return false;
    setup_users = calloc(n + 1, sizeof *setup_users);
    setup_items = calloc(n + 1, sizeof *setup_items);
    seller_users = calloc(n + 1, sizeof *seller_users);
    seller_uis = calloc(n + 1, sizeof *seller_uis);
    if (!setup_users || !setup_items || !seller_users || !seller_uis) {
        free(v);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i].status != 200)
            continue;
        if (v[i].kind == K_CREATE_USER && strcmp(v[i].name, PROBE_USER) != 0)
            setup_users[n_setup_users++] = v[i].res_id;
        else if (v[i].kind == K_CREATE_ITEM && strcmp(v[i].name, AUCTION_ITEM) != 0)
            setup_items[n_setup_items++] = v[i].res_id;
        else if (v[i].kind == K_UI_CREATE) {
            seller_users[n_sellers] = v[i].user;
            seller_uis[n_sellers++] = v[i].res_id;
        }
    }
    free(v);
    if (n_setup_users == 0 || n_setup_items == 0 || n_sellers == 0) {
        fprintf(stderr, "chaos load: %s holds no users, no items or no sellers\n", path);
        return false;
    }
    return true;
}

/* The tokens setup got: the operator's, and those of the setup users (which act for
 * themselves, and stand in for a user acting for another). */
static bool read_tokens(void)
{
    if (!tokens_init(g_opts.url, g_opts.tokens, g_opts.admin_password_file, g_opts.seed) ||
        !tokens_read())
        return false;
    admin_tok = tokens_index(0);
    user_toks = calloc(n_setup_users + 1, sizeof *user_toks);
    if (user_toks == NULL)
        return false;
    for (size_t i = 0; i < n_setup_users; i++) {
        long t = tokens_index(setup_users[i]);
        if (t >= 0)
            user_toks[n_user_toks++] = (size_t)t;
    }
    return true;
}

int chaos_load(int argc, char **argv)
{
    parse_opts(argc, argv, &g_opts);
    if (!g_opts.url || !g_opts.out || !g_opts.setup || !g_opts.tokens ||
        !g_opts.admin_password_file || g_opts.clients < 1) {
        fprintf(stderr, "chaos load: --url, --out, --setup, --tokens, --admin-password-file and "
                        "--clients >= 1 are required\n");
        return 2;
    }
    /* The driver's trap stops us; should the driver be killed first, so are we. */
    pid_t parent = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
        return 1;
    if (!read_setup(g_opts.setup) || !read_tokens())
        return 1;
    out_f = fopen(g_opts.out, "w");
    if (!out_f) {
        perror(g_opts.out);
        return 1;
    }
    curl_global_init(CURL_GLOBAL_ALL);
    int64_t start = now_ms();
    deadline_ms = start + g_opts.seconds * 1000;
    hard_deadline_ms = deadline_ms + 3 * g_opts.seconds * 1000 + 300000;
    struct client *cs = calloc((size_t)g_opts.clients, sizeof *cs);
    if (!cs)
        return 1;
    for (long i = 0; i < g_opts.clients; i++) {
        cs[i].id = (int)i;
        rng_init(&cs[i].g, g_opts.seed, (uint64_t)i + 1);
        rng_init(&cs[i].retry_g, g_opts.seed, (uint64_t)i + 100001);
        if (!http_init(&cs[i].x) || pthread_create(&cs[i].th, NULL, client_main, &cs[i]) != 0) {
            fprintf(stderr, "chaos load: cannot start client %ld\n", i);
            return 1;
        }
    }
    while (keep_going()) {
        for (int i = 0; i < 50 && keep_going(); i++)
            usleep(100000);
        fprintf(stderr, "chaos load: t=%3llds requests=%ld 2xx=%ld 4xx=%ld 5xx=%ld no-answer=%ld\n",
                (long long)((now_ms() - start) / 1000), atomic_load(&seq_next), atomic_load(&n_2xx),
                atomic_load(&n_4xx), atomic_load(&n_5xx), atomic_load(&n_none));
    }
    for (long i = 0; i < g_opts.clients; i++) {
        pthread_join(cs[i].th, NULL);
        curl_easy_cleanup(cs[i].x.h);
    }
    fprintf(stderr, "chaos load: done after %llds: requests=%ld\n",
            (long long)((now_ms() - start) / 1000), atomic_load(&seq_next));
    free(cs);
    free(setup_users);
    free(setup_items);
    free(seller_users);
    free(seller_uis);
    free(auctions);
    free(user_toks);
    tokens_free();
    curl_global_cleanup();
    fclose(out_f);
    return 0;
}

/* ---- probe ------------------------------------------------------------------------------------
 * Buys --item as the probe user (chaos-probe, from --setup) through --url (a backend's own
 * port), one buy after another, until one gets a definite answer (2xx or 4xx) or --max-ms
 * passed. Run by the driver just after it stopped a backend that sits inside a buy of that item
 * with the stock row locked: the time until the first definite answer is how long the paused
 * backend's locks blocked other buyers. Each buy is recorded (appended to --out) and checked
 * like any other. Prints "blocked_ms=B probes=N status=S error=E". */
int chaos_probe(int argc, char **argv)
{
    const char *url = NULL, *setup = NULL, *out = NULL, *tokens = NULL, *admin_pw = NULL;
    int64_t item = 0, max_ms = 30000;
    uint64_t seed = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--url") == 0)
            url = v;
        else if (strcmp(k, "--setup") == 0)
            setup = v;
        else if (strcmp(k, "--out") == 0)
            out = v;
        else if (strcmp(k, "--item") == 0)
            item = strtoll(v, NULL, 10);
        else if (strcmp(k, "--max-ms") == 0)
            max_ms = strtoll(v, NULL, 10);
        else if (strcmp(k, "--seed") == 0)
            seed = strtoull(v, NULL, 10);
        else if (strcmp(k, "--tokens") == 0)
            tokens = v;
        else if (strcmp(k, "--admin-password-file") == 0)
            admin_pw = v;
    }
    if (!url || !setup || !out || !tokens || !admin_pw || item <= 0) {
        fprintf(stderr, "chaos probe: --url, --setup, --out, --tokens, --admin-password-file and "
                        "--item are required\n");
        return 2;
    }
    struct rec *v = NULL;
    size_t n = 0;
    int64_t user = 0;
    if (!rec_read_file(setup, &v, &n))
        return 1;
    for (size_t i = 0; i < n; i++)
        if (v[i].kind == K_CREATE_USER && v[i].status == 200 && strcmp(v[i].name, PROBE_USER) == 0)
            user = v[i].res_id;
    free(v);
    if (user == 0) {
        fprintf(stderr, "chaos probe: no %s user in %s\n", PROBE_USER, setup);
        return 1;
    }
    /* The probe user buys for itself, with its own token. */
    if (!tokens_init(url, tokens, admin_pw, seed) || !tokens_read())
        return 1;
    long tok = tokens_index(user);
    if (tok < 0) {
        fprintf(stderr, "chaos probe: no token of %s in %s\n", PROBE_USER, tokens);
        return 1;
    }
    static char token[TOKEN_MAX];
    tokens_get((size_t)tok, token);
    out_f = fopen(out, "a");
    if (!out_f) {
        perror(out);
        return 1;
    }
    atomic_store(&seq_next, 9000000 + (now_ms() % 1000000) * 100);
    curl_global_init(CURL_GLOBAL_ALL);
    static struct http x;
    if (!http_init(&x))
        return 1;
    struct rng g;
    rng_init(&g, seed ^ (uint64_t)now_ms(), 777);
    char u[512], body[128];
    snprintf(u, sizeof u, "%s/marketplace/item/buy", url);
    snprintf(body, sizeof body, "{\"userId\":%" PRId64 ",\"itemId\":%" PRId64 "}", user, item);
    int64_t start = now_ms();
    struct rec r;
    int probes = 0;
    do {
        rec_new(&r, &g, -2, K_BUY);
        r.user = user;
        r.item = item;
        r.flags = REC_PROBE | REC_AS_USER;
        http_do(&x, "POST", u, body, NULL, token, &r);
        record(&r);
        probes++;
        if (r.status >= 200 && r.status < 500)
            break;
        sleep_ms(100);
    } while (now_ms() - start < max_ms);
    printf("blocked_ms=%" PRId64 " probes=%d status=%d error=%s\n", r.t1_ms - start, probes,
           r.status, r.err[0] ? r.err : "-");
    curl_easy_cleanup(x.h);
    curl_global_cleanup();
    fclose(out_f);
    tokens_free();
    return 0;
}
