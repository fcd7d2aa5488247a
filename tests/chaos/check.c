/* The chaos test's checker: reads the three databases once the system is quiet and checks
 * SPEC §5's invariants (the auction saga's: check_auction.c), and for every recorded request
 * that its answer tells the truth: a 2xx has its whole effect, a 4xx (or a 5xx the service
 * answered) none, a request without an answer all of it or none. Prints the summary; exits 1
 * on any violation. */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaos.h"
#include "check.h"

/* ---- a map from correlation id (or any short string) to an index ----------------------------- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

void map_init(struct map *m, size_t n)
{
    m->cap = 64;
    while (m->cap < 2 * n + 64)
        m->cap *= 2;
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->vals = calloc(m->cap, sizeof *m->vals);
    if (!m->keys || !m->vals) {
        fprintf(stderr, "chaos check: out of memory\n");
        exit(1);
    }
}

void map_free(struct map *m)
{
    free(m->keys);
    free(m->vals);
}

void map_put(struct map *m, const char *k, long v)
{
    size_t i = hash_str(k) & (m->cap - 1);
    while (m->keys[i][0] && strcmp(m->keys[i], k) != 0)
        i = (i + 1) & (m->cap - 1);
    snprintf(m->keys[i], sizeof m->keys[i], "%s", k);
    m->vals[i] = v;
}

long map_get(const struct map *m, const char *k)
{
    size_t i = hash_str(k) & (m->cap - 1);
    while (m->keys[i][0]) {
        if (strcmp(m->keys[i], k) == 0)
            return m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    return -1;
}

/* ---- invariants and their tallies ------------------------------------------------------------ */

static const char *const inv_names[NINV] = {
    [I_BALANCE] = "balance = sum committed ADD - sum committed SUBTRACT (per user)",
    [I_RESERVED] = "reserved = sum pending SUBTRACT (per user)",
    [I_INCOMING] = "incoming = sum pending ADD (per user)",
    [I_BOUNDS] = "0 <= reserved <= balance (per user)",
    [I_STATUS] = "COMMITTED iff decision succeeded, ABORTED iff failed (per gxp transaction)",
    [I_PENDING] = "nothing PENDING past timeout + lag (per gxp transaction)",
    [I_GXP_DECISION] = "gxp's recorded decision = backend's, applied (per gxp decision)",
    [I_REPLICA] = "every backend decision replicated to gxp-db unchanged (per decision)",
    [I_USER_BALANCE] = "every user has a gxp balance (per user)",
    [I_ORPHAN_BALANCE] = "a balance without a user is empty (per orphan balance)",
    [I_STOCK] = "sum user item counts + stock = stock created (per item)",
    [I_USER_ITEMS] = "user item count = committed buys (per user item)",
    [I_BUY_2PC] = "a committed buy is committed on gxp, a succeeded buy decision has its buy",
    [I_BUY_EVENT] = "every successful buy has exactly one stored BuyItemEvent (per buy)",
    [I_EVENT_BUY] = "every stored event belongs to a committed buy (per event)",
    [I_OUTBOX] = "event outbox drained: every event published (per outbox row)",
    [I_AU_ENDED] = "every auction ended (settled or cancelled), no saga step pending (per auction)",
    [I_AU_TIMELY] = "settled within the limit after its end or the last fault then (per auction)",
    [I_AU_GXP] = "GXP conserved: balance = credits - buys - bids + refunds + payouts (per user)",
    [I_AU_ESCROW] = "escrow (bids - refunds - payouts) = leading bids of open auctions (per run)",
    [I_AU_REFUND] = "an outbid bid refunded once, a bid not outbid leads, never refunded (per bid)",
    [I_AU_PAYOUT] = "a won auction's seller paid the winning amount once, no other (per auction)",
    [I_AU_UNIT] = "an auctioned unit has one owner: the winner, or the seller again (per auction)",
    [I_AU_EVENT] =
        "one stored event per settlement, cancellation, outbid bid; no other (per event)",
    [I_REQ_2XX] = "a 2xx request has its whole effect (per request)",
    [I_REQ_4XX] = "a 4xx request has no effect (per request)",
    [I_REQ_5XX] = "a 5xx the service answered has no effect (per request)",
    [I_REQ_UNKNOWN] = "a request without an answer has all of its effect or none (per request)",
    [I_REQ_CID] = "an answer carries the correlation id sent (per answer)",
    [I_AUTH_REFUSED] =
        "no token: 401, a user's token out of its place: 403; no effect (per request)",
    [I_AUTH_ACCEPTED] = "a valid token is never refused 401/403, restarts included (per answer)",
    [I_PATCH] = "item versions and names account for the PATCHes (per item)",
    [I_KEY_ONCE] = "at most one effect per Idempotency-Key, among all its attempts (per key)",
    [I_KEY_ANSWER] = "a key answered 2xx has one effect, the cid its answer names (per key)",
    [I_PENDING_AFTER] = "nothing PENDING past timeout + lag after a fault ended (per sample)",
    [I_FAULTS_TIMED] = "samples of the databases were taken during the run (per run)",
};

static long checked[NINV], violated[NINV];
static int verbose_left = 200; /* violation lines printed at most */

void check(enum inv i, bool ok, const char *fmt, ...)
{
    checked[i]++;
    if (ok)
        return;
    violated[i]++;
    if (verbose_left-- <= 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    printf("VIOLATION [%s]: ", inv_names[i]);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

/* ---- database snapshots ---------------------------------------------------------------------- */

PGresult *check_query(PGconn *c, const char *what, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "chaos check: %s: %s", what, PQerrorMessage(c));
        exit(1);
    }
    return r;
}

static PGconn *connect_db(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "chaos check: cannot connect to %s: %s", conninfo, PQerrorMessage(c));
        exit(1);
    }
    return c;
}

void table_load(struct table *t, PGconn *c, const char *what, const char *sql)
{
    t->r = check_query(c, what, sql);
    t->n = PQntuples(t->r);
    map_init(&t->m, (size_t)t->n);
    for (long i = 0; i < t->n; i++)
        map_put(&t->m, V(t->r, i, 0), i);
}

void table_free(struct table *t)
{
    PQclear(t->r);
    map_free(&t->m);
}

long row_of(const struct table *t, const char *key)
{
    return map_get(&t->m, key);
}

struct table b_uitems, b_dec, g_bal, g_tx; /* check.h: the auctions' checks read them */
static struct table b_users, b_items, b_mkt, b_coord, b_evout;
static struct table g_dec, g_rep, e_ev;

static void load_all(const char *bconn, const char *gconn, const char *econn)
{
    PGconn *b = connect_db(bconn), *g = connect_db(gconn), *e = connect_db(econn);
    table_load(&b_users, b, "users", "SELECT id, name FROM users");
    table_load(&b_items, b, "items", "SELECT id, name, cost, version FROM items");
    table_load(&b_mkt, b, "marketplace", "SELECT item_id, count FROM marketplace_items");
    table_load(&b_uitems, b, "user items",
               "SELECT user_id || '/' || item_id, id, user_id, item_id, count FROM user_items");
    table_load(&b_coord, b, "coord_transactions",
               "SELECT correlation_id, kind, user_id, coalesce(item_id, 0), amount"
               " FROM coord_transactions");
    table_load(&b_dec, b, "transaction_outbox",
               "SELECT correlation_id, state FROM transaction_outbox");
    /* The buys' events; the operators' AdminActionEvents are the events test's. */
    table_load(&b_evout, b, "event_outbox",
               "SELECT correlation_id, count(*), count(published_at), min(event_name)"
               " FROM event_outbox WHERE event_name = 'BuyItemEvent' GROUP BY correlation_id");
    table_load(&g_bal, g, "balance", "SELECT user_id, balance, reserved, incoming FROM balance");
    table_load(&g_tx, g, "gxp_transaction",
               "SELECT correlation_id, user_id, type, amount, status,"
               " (extract(epoch FROM now() - created_at) * 1000)::bigint, resolve_attempts"
               " FROM gxp_transaction");
    table_load(&g_dec, g, "decision",
               "SELECT correlation_id, state, source, outcome FROM decision");
    table_load(&g_rep, g, "replica", "SELECT correlation_id, state FROM transaction_outbox");
    table_load(&e_ev, e, "event",
               "SELECT message_id, count(*), min(user_id), min(event_name),"
               " min((data->>'userItemId')::bigint), min((data->>'itemId')::bigint),"
               " bool_and(correlation_id = message_id) FROM event"
               " WHERE event_name = 'BuyItemEvent' GROUP BY message_id");
    auction_load(b, e);
    PQfinish(b);
    PQfinish(g);
    PQfinish(e);
}

/* ---- SPEC §5 on gxp-db ------------------------------------------------------------------------
 */

const char *dec_of(const char *cid)
{
    long i = row_of(&b_dec, cid);
    return i < 0 ? "none" : V(b_dec.r, i, 1);
}

static void check_ledger(int64_t pending_limit_ms)
{
    /* Sums per user from the transactions. */
    long nb = g_bal.n;
    int64_t *add = calloc((size_t)nb + 1, sizeof *add), *sub = calloc((size_t)nb + 1, sizeof *sub),
            *padd = calloc((size_t)nb + 1, sizeof *padd),
            *psub = calloc((size_t)nb + 1, sizeof *psub);
    long *ntx = calloc((size_t)nb + 1, sizeof *ntx);
    for (long i = 0; i < g_tx.n; i++) {
        const char *cid = V(g_tx.r, i, 0);
        long b = row_of(&g_bal, V(g_tx.r, i, 1));
        int type = (int)NUM(g_tx.r, i, 2), status = (int)NUM(g_tx.r, i, 4);
        int64_t amount = NUM(g_tx.r, i, 3), age = NUM(g_tx.r, i, 5);
        if (b >= 0) {
            ntx[b]++;
            if (status == 2)
                (type == 0 ? add : sub)[b] += amount;
            else if (status == 0)
                (type == 0 ? padd : psub)[b] += amount;
        }
        const char *d = dec_of(cid);
        if (status == 0) {
            check(I_PENDING, age <= pending_limit_ms,
                  "transaction %s PENDING for %" PRId64 " ms (limit %" PRId64
                  " ms), backend decision %s",
                  cid, age, pending_limit_ms, d);
            if (age <= pending_limit_ms)
                printf("note: transaction %s still PENDING (%" PRId64 " ms, within the limit)\n",
                       cid, age);
            continue;
        }
        check(I_PENDING, true, "-");
        bool ok = (status == 2 && strcmp(d, "succeeded") == 0) ||
                  (status == 1 && strcmp(d, "failed") == 0);
        check(I_STATUS, ok, "transaction %s is %s on gxp, backend decision %s", cid,
              status == 2 ? "COMMITTED" : "ABORTED", d);
    }
    for (long b = 0; b < nb; b++) {
        const char *user = V(g_bal.r, b, 0);
        int64_t bal = NUM(g_bal.r, b, 1), res = NUM(g_bal.r, b, 2), inc = NUM(g_bal.r, b, 3);
        check(I_BALANCE, bal == add[b] - sub[b],
              "user %s: balance %" PRId64 " but committed ADD %" PRId64 " - SUBTRACT %" PRId64,
              user, bal, add[b], sub[b]);
        check(I_RESERVED, res == psub[b],
              "user %s: reserved %" PRId64 " but pending SUBTRACT %" PRId64, user, res, psub[b]);
        check(I_INCOMING, inc == padd[b], "user %s: incoming %" PRId64 " but pending ADD %" PRId64,
              user, inc, padd[b]);
        check(I_BOUNDS, res >= 0 && res <= bal, "user %s: reserved %" PRId64 ", balance %" PRId64,
              user, res, bal);
        if (row_of(&b_users, user) < 0)
            check(I_ORPHAN_BALANCE, bal == 0 && res == 0 && inc == 0 && ntx[b] == 0,
                  "gxp balance of user %s, unknown to the backend, is not empty", user);
    }
    for (long i = 0; i < b_users.n; i++)
        check(I_USER_BALANCE, row_of(&g_bal, V(b_users.r, i, 0)) >= 0,
              "user %s (%s) has no gxp balance", V(b_users.r, i, 0), V(b_users.r, i, 1));
    for (long i = 0; i < g_dec.n; i++) {
        const char *cid = V(g_dec.r, i, 0), *d = dec_of(cid);
        const char *outcome = V(g_dec.r, i, 3);
        check(I_GXP_DECISION,
              strcmp(V(g_dec.r, i, 1), d) == 0 && strncmp(outcome, "error", 5) != 0 &&
                  strcmp(outcome, "invalid_state") != 0,
              "gxp recorded decision %s for %s (source %s, outcome %s); backend's is %s",
              V(g_dec.r, i, 1), cid, V(g_dec.r, i, 2), outcome, d);
    }
    for (long i = 0; i < b_dec.n; i++) {
        const char *cid = V(b_dec.r, i, 0);
        long j = row_of(&g_rep, cid);
        check(I_REPLICA, j >= 0 && strcmp(V(g_rep.r, j, 1), V(b_dec.r, i, 1)) == 0,
              "decision %s (%s) is %s on gxp-db's replica", cid, V(b_dec.r, i, 1),
              j < 0 ? "missing" : V(g_rep.r, j, 1));
    }
    free(add);
    free(sub);
    free(padd);
    free(psub);
    free(ntx);
}

/* ---- buys, stock and events -------------------------------------------------------------- */

/* The state of a buy's effect in every database. */
struct buy_fx {
    bool claimed, outbox, event, decided_ok, gxp_committed, gxp_open;
    long outbox_n, event_n;
    int64_t amount, user, item;
};

static struct buy_fx buy_effect(const char *cid)
{
    struct buy_fx f = {0};
    long c = row_of(&b_coord, cid);
    if (c >= 0 && strcmp(V(b_coord.r, c, 1), "buy") == 0) {
        f.claimed = true;
        f.user = NUM(b_coord.r, c, 2);
        f.item = NUM(b_coord.r, c, 3);
        f.amount = NUM(b_coord.r, c, 4);
    }
    long o = row_of(&b_evout, cid);
    f.outbox_n = o < 0 ? 0 : NUM(b_evout.r, o, 1);
    f.outbox = f.outbox_n > 0;
    long e = row_of(&e_ev, cid);
    f.event_n = e < 0 ? 0 : NUM(e_ev.r, e, 1);
    f.event = f.event_n > 0;
    f.decided_ok = strcmp(dec_of(cid), "succeeded") == 0;
    long t = row_of(&g_tx, cid);
    f.gxp_committed = t >= 0 && NUM(g_tx.r, t, 4) == 2;
    f.gxp_open = t >= 0 && NUM(g_tx.r, t, 4) == 0;
    return f;
}

/* A committed buy paid: claimed, and (unless free) decided succeeded and COMMITTED on gxp. */
static bool buy_paid(const struct buy_fx *f)
{
    return f->claimed && (f->amount == 0 || (f->decided_ok && f->gxp_committed));
}

/* Everything a committed buy must have. */
static bool buy_complete(const struct buy_fx *f)
{
    return buy_paid(f) && f->outbox_n == 1 && f->event_n == 1;
}

static bool buy_absent(const struct buy_fx *f)
{
    return !f->outbox && !f->event && !f->decided_ok && !f->gxp_committed && !f->gxp_open;
}

/* The per-(user, item) count a key names in per_ui (a new one at 0 when it names none). */
static long *ui_slot(struct map *per_ui, long *ui_counts, long *nkeys, int64_t user, int64_t item)
{
    char key[48];
    snprintf(key, sizeof key, "%" PRId64 "/%" PRId64, user, item);
    long k = map_get(per_ui, key);
    if (k < 0) {
        k = (*nkeys)++;
        map_put(per_ui, key, k);
    }
    return &ui_counts[k];
}

static void check_buys(const struct rec *v, size_t n)
{
    /* Units per (user, item): committed buys, from the outbox (rows are kept a day), and the
     * units setup gave (sellers'); auctions move them (auction_units_of). */
    size_t n_ui = 0;
    for (size_t i = 0; i < n; i++)
        n_ui += v[i].kind == K_UI_CREATE;
    struct map per_ui;
    map_init(&per_ui, (size_t)b_uitems.n + (size_t)b_evout.n + n_ui);
    long *ui_counts = calloc((size_t)b_evout.n + (size_t)b_uitems.n + n_ui + 1, sizeof *ui_counts);
    long nkeys = 0;
    for (long i = 0; i < b_evout.n; i++) {
        const char *cid = V(b_evout.r, i, 0);
        struct buy_fx f = buy_effect(cid);
        check(I_OUTBOX, NUM(b_evout.r, i, 2) == NUM(b_evout.r, i, 1), "event of %s not published",
              cid);
        check(I_BUY_EVENT, f.outbox_n == 1 && f.event_n == 1,
              "buy %s: %ld outbox rows, %ld stored events", cid, f.outbox_n, f.event_n);
        check(I_BUY_2PC, buy_paid(&f),
              "committed buy %s: claimed %d, amount %" PRId64 ", decision %s, gxp committed %d",
              cid, f.claimed, f.amount, dec_of(cid), f.gxp_committed);
        long e = row_of(&e_ev, cid);
        if (e >= 0 && f.claimed)
            check(I_BUY_EVENT,
                  NUM(e_ev.r, e, 2) == f.user && NUM(e_ev.r, e, 5) == f.item &&
                      strcmp(V(e_ev.r, e, 6), "t") == 0,
                  "event of buy %s names user %s item %s, the buy was user %" PRId64
                  " item %" PRId64,
                  cid, V(e_ev.r, e, 2), V(e_ev.r, e, 5), f.user, f.item);
        (*ui_slot(&per_ui, ui_counts, &nkeys, f.user, f.item))++;
    }
    for (size_t i = 0; i < n; i++)
        if (v[i].kind == K_UI_CREATE && v[i].status == 200)
            *ui_slot(&per_ui, ui_counts, &nkeys, v[i].user, v[i].item) += v[i].amount;
    for (long i = 0; i < e_ev.n; i++) {
        const char *cid = V(e_ev.r, i, 0);
        check(I_EVENT_BUY,
              row_of(&b_evout, cid) >= 0 && strcmp(V(e_ev.r, i, 3), "BuyItemEvent") == 0,
              "stored event %s (%s) has no committed buy", cid, V(e_ev.r, i, 3));
    }
    for (long i = 0; i < b_dec.n; i++) {
        const char *cid = V(b_dec.r, i, 0);
        long c = row_of(&b_coord, cid);
        if (c < 0 || strcmp(V(b_coord.r, c, 1), "buy") != 0 ||
            strcmp(V(b_dec.r, i, 1), "succeeded") != 0)
            continue;
        check(I_BUY_2PC, row_of(&b_evout, cid) >= 0,
              "buy %s decided succeeded without its local commit (no event)", cid);
    }
    for (long i = 0; i < b_uitems.n; i++) {
        long k = map_get(&per_ui, V(b_uitems.r, i, 0));
        long got = k < 0 ? 0 : ui_counts[k];
        int64_t taken = 0, returned = 0;
        auction_units_of(V(b_uitems.r, i, 1), &taken, &returned);
        check(I_USER_ITEMS, NUM(b_uitems.r, i, 4) == got - taken + returned,
              "user item %s (user/item %s): count %s, but committed buys and setup's units %ld,"
              " auctions took %" PRId64 " and gave back or delivered %" PRId64,
              V(b_uitems.r, i, 1), V(b_uitems.r, i, 0), V(b_uitems.r, i, 4), got, taken, returned);
        if (k >= 0)
            ui_counts[k] = -1; /* seen */
    }
    for (long k = 0; k < nkeys; k++)
        if (ui_counts[k] > 0)
            check(I_USER_ITEMS, false,
                  "%ld committed buys or setup's units without their user item", ui_counts[k]);
    free(ui_counts);
    map_free(&per_ui);
}

/* Per item: stock on sale + units users hold + units in escrow (one per open auction) = the
 * stock setup put on sale + the units it gave users. */
static void check_stock(const struct rec *v, size_t n)
{
    for (long it = 0; it < b_items.n; it++) {
        int64_t id = NUM(b_items.r, it, 0), created = 0;
        bool on_sale = false, given = false;
        for (size_t i = 0; i < n; i++) {
            if (v[i].status != 200 || v[i].item != id)
                continue;
            if (v[i].kind == K_MKT_CREATE) {
                created += v[i].amount;
                on_sale = true;
            } else if (v[i].kind == K_UI_CREATE) {
                created += v[i].amount;
                given = true;
            }
        }
        if (!on_sale && !given)
            continue; /* not setup's */
        long m = row_of(&b_mkt, V(b_items.r, it, 0));
        int64_t stock = m < 0 ? 0 : NUM(b_mkt.r, m, 1), held = 0;
        for (long j = 0; j < b_uitems.n; j++)
            if (NUM(b_uitems.r, j, 3) == id)
                held += NUM(b_uitems.r, j, 4);
        int64_t escrow = auction_escrowed(id);
        check(I_STOCK, (m >= 0 || !on_sale) && stock + held + escrow == created,
              "item %" PRId64 ": stock %" PRId64 "%s + user items %" PRId64 " + in escrow %" PRId64
              " != %" PRId64 " created",
              id, stock, m < 0 && on_sale ? " (no marketplace row)" : "", held, escrow, created);
    }
}

/* ---- requests ---------------------------------------------------------------------------------
 */

/* O_LATER: the service said the outcome is not settled yet (409 request_in_progress, 5xx
 * outcome_unknown): like no answer, all of the effect or none. */
enum outcome { O_2XX, O_4XX, O_5XX_SVC, O_5XX_INGRESS, O_NONE, O_LATER, NOUT };
static const char *const outcome_names[NOUT] = {"2xx",          "4xx",       "5xx(service)",
                                                "5xx(ingress)", "no-answer", "retry-later"};

static enum outcome outcome_of(const struct rec *r)
{
    if (r->status == 0)
        return O_NONE;
    if ((r->status == 409 && strcmp(r->err, "request_in_progress") == 0) ||
        (r->status >= 500 && strcmp(r->err, "outcome_unknown") == 0))
        return O_LATER;
    if (r->status < 300)
        return O_2XX;
    if (r->status < 500)
        return O_4XX;
    /* An error body with a code comes from the service, but for the ingress's own 502 and 504
     * (bad_gateway, gateway_timeout: no service uses them) or a page without one. */
    if (!r->err[0] || strcmp(r->err, "bad_gateway") == 0 || strcmp(r->err, "gateway_timeout") == 0)
        return O_5XX_INGRESS;
    return O_5XX_SVC;
}

/* 1: the whole effect, 0: none, -1: part of it. */
static int effect_of(const struct rec *r, char *why, size_t n)
{
    char key[48];
    switch (r->kind) {
    case K_BUY: {
        struct buy_fx f = buy_effect(r->cid);
        snprintf(why, n,
                 "claimed %d outbox %ld events %ld decision %s gxp committed %d open %d amount "
                 "%" PRId64,
                 f.claimed, f.outbox_n, f.event_n, dec_of(r->cid), f.gxp_committed, f.gxp_open,
                 f.amount);
        if (buy_absent(&f))
            return 0;
        if (!buy_complete(&f) || f.user != r->user || f.item != r->item)
            return -1;
        if (r->status / 100 == 2) { /* the user item it named */
            snprintf(key, sizeof key, "%" PRId64 "/%" PRId64, r->user, r->item);
            long u = row_of(&b_uitems, key);
            if (u < 0 || NUM(b_uitems.r, u, 1) != r->res_id) {
                snprintf(why, n, "answered userItemId %" PRId64 ", stored %s", r->res_id,
                         u < 0 ? "none" : V(b_uitems.r, u, 1));
                return -1;
            }
        }
        return 1;
    }
    case K_ADD_GXP: {
        long t = row_of(&g_tx, r->cid);
        const char *d = dec_of(r->cid);
        int status = t < 0 ? -1 : (int)NUM(g_tx.r, t, 4);
        snprintf(why, n, "decision %s, gxp status %d", d, status);
        if (strcmp(d, "succeeded") != 0 && (status == -1 || status == 1))
            return 0;
        bool full = strcmp(d, "succeeded") == 0 && status == 2 && NUM(g_tx.r, t, 1) == r->user &&
                    NUM(g_tx.r, t, 2) == 0 && NUM(g_tx.r, t, 3) == r->amount;
        return full ? 1 : -1;
    }
    case K_CREATE_USER: {
        long found = -1;
        for (long i = 0; i < b_users.n && found < 0; i++)
            if (strcmp(V(b_users.r, i, 1), r->name) == 0)
                found = i;
        if (found < 0) {
            snprintf(why, n, "no user named so");
            return 0;
        }
        bool bal = row_of(&g_bal, V(b_users.r, found, 0)) >= 0;
        snprintf(why, n, "user %s, gxp balance %d", V(b_users.r, found, 0), bal);
        if (!bal)
            return -1;
        if (r->status / 100 == 2 && NUM(b_users.r, found, 0) != r->res_id)
            return -1;
        return 1;
    }
    case K_AU_CREATE:
    case K_BID:
    case K_AU_CANCEL:
        return auction_effect(r, why, n);
    default:
        snprintf(why, n, "-");
        return 1;
    }
}

static long counts[NKINDS][NOUT];
static long n_keyed, n_replayed, n_resent, n_probes;
/* senders: [0] the operator, [1] a user for itself, [2] no token, [3] a user out of place */
static long by_sender[4][NOUT];

/* A request that must be refused (chaos.h: REC_MUST_401, REC_MUST_403): never a 2xx; a 4xx is
 * the refusal wanted (or 408/429, which come before a look at the token); no effect whatever
 * the answer, even none. */
static void check_refused(const struct rec *r, enum outcome o)
{
    bool no_token = r->flags & REC_MUST_401;
    int want = no_token ? 401 : 403;
    const char *code = no_token ? "unauthenticated" : "forbidden";
    bool answer_ok = o != O_2XX && (o != O_4XX || r->status == 408 || r->status == 429 ||
                                    (r->status == want && strcmp(r->err, code) == 0));
    char why[256];
    int fx;
    if (r->kind == K_PATCH_ITEM) { /* its name must not be the item's */
        char id[24];
        snprintf(id, sizeof id, "%" PRId64, r->item);
        long it = row_of(&b_items, id);
        fx = it >= 0 && strcmp(V(b_items.r, it, 1), r->name) == 0;
        snprintf(why, sizeof why, "item %s named %s", id, it < 0 ? "-" : V(b_items.r, it, 1));
    } else {
        fx = effect_of(r, why, sizeof why);
    }
    check(I_AUTH_REFUSED, answer_ok && fx == 0,
          "%s #%ld cid %s user %" PRId64 " sent %s answered %d %s (want %d %s), effect %s: %s",
          kind_names[r->kind], r->seq, r->cid, r->user,
          no_token ? "without a token" : "with a user's token out of its place", r->status,
          r->err[0] ? r->err : "-", want, code, fx == 0 ? "none" : "some", why);
}

/* The record whose effect an answer speaks of: a replayed 2xx of a keyed request names the
 * correlation id of the attempt whose work committed. */
static struct rec effect_rec(const struct rec *r)
{
    struct rec e = *r;
    if (r->key[0] && r->status / 100 == 2 && r->resp_cid[0])
        snprintf(e.cid, sizeof e.cid, "%s", r->resp_cid);
    return e;
}

static void check_requests(const struct rec *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct rec *r = &v[i];
        enum outcome o = outcome_of(r);
        counts[r->kind][o]++;
        n_keyed += r->key[0] != 0;
        n_replayed += (r->flags & REC_REPLAYED) != 0;
        n_resent += (r->flags & REC_RESEND) && r->attempt > 1;
        n_probes += (r->flags & REC_PROBE) != 0;
        bool must_fail = r->flags & (REC_MUST_401 | REC_MUST_403);
        int sender = (r->flags & REC_MUST_401)   ? 2
                     : (r->flags & REC_MUST_403) ? 3
                     : (r->flags & REC_AS_USER)  ? 1
                                                 : 0;
        by_sender[sender][o]++;
        if (must_fail)
            check_refused(r, o);
        else if (r->status != 0)
            /* (a cancel by another than the seller is refused 403 not_seller: not the token) */
            check(I_AUTH_ACCEPTED,
                  r->status != 401 && (r->status != 403 || (r->kind == K_AU_CANCEL &&
                                                            strcmp(r->err, "not_seller") == 0)),
                  "%s #%ld cid %s with %s token answered %d %s", kind_names[r->kind], r->seq,
                  r->cid, sender == 1 ? "the user's own" : "the operator's", r->status,
                  r->err[0] ? r->err : "-");
        /* A keyed replay names the attempt that did the work: check_keys checks which. */
        if (r->status != 0 && r->resp_cid[0] && !(r->key[0] && (r->flags & REC_REPLAYED)))
            check(I_REQ_CID, strcmp(r->resp_cid, r->cid) == 0,
                  "%s request #%ld sent %s, answer says %s", kind_names[r->kind], r->seq, r->cid,
                  r->resp_cid);
        if (r->kind == K_PATCH_ITEM || r->kind == K_CREATE_ITEM || r->kind == K_MKT_CREATE ||
            r->kind == K_UI_CREATE)
            continue; /* items: check_patches; setup: check_stock */
        if (r->kind == K_CREATE_USER && strlen(r->name) > 255) /* must be refused */
            check(I_REQ_2XX, o != O_2XX, "create_user #%ld with a 300-byte name answered %d",
                  r->seq, r->status);
        if ((r->flags & REC_RESEND) && o != O_2XX)
            continue; /* check_resends: the attempts of one correlation id together */
        char why[256];
        struct rec e = effect_rec(r);
        int fx = effect_of(&e, why, sizeof why);
        const char *how = r->key[0] ? "keyed " : (r->flags & REC_RESEND) ? "resent " : "";
        switch (o) {
        case O_2XX:
            check(I_REQ_2XX, fx == 1,
                  "%s%s #%ld cid %s key %s attempt %d user %" PRId64 " item %" PRId64
                  " amount %" PRId64 " answered %d%s naming %s, effect %s: %s",
                  how, kind_names[r->kind], r->seq, r->cid, r->key[0] ? r->key : "-", r->attempt,
                  r->user, r->item, r->amount, r->status,
                  (r->flags & REC_REPLAYED) ? " (replayed)" : "", e.cid,
                  fx == 0 ? "none" : "partial", why);
            break;
        case O_4XX:
            check(I_REQ_4XX, fx == 0,
                  "%s%s #%ld cid %s key %s attempt %d user %" PRId64 " item %" PRId64
                  " answered %d %s, effect %s: %s",
                  how, kind_names[r->kind], r->seq, r->cid, r->key[0] ? r->key : "-", r->attempt,
                  r->user, r->item, r->status, r->err, fx == 1 ? "whole" : "partial", why);
            break;
        case O_5XX_SVC:
            check(I_REQ_5XX, fx == 0, "%s%s #%ld cid %s key %s answered %d %s, effect %s: %s", how,
                  kind_names[r->kind], r->seq, r->cid, r->key[0] ? r->key : "-", r->status, r->err,
                  fx == 1 ? "whole" : "partial", why);
            break;
        default:
            check(I_REQ_UNKNOWN, fx != -1,
                  "%s%s #%ld cid %s key %s (%s, %d %s, curl %d): partial effect: %s", how,
                  kind_names[r->kind], r->seq, r->cid, r->key[0] ? r->key : "-", outcome_names[o],
                  r->status, r->err[0] ? r->err : "-", r->curl_rc, why);
        }
    }
}

static int cmp_cid(const void *a, const void *b)
{
    const struct rec *const *x = a, *const *y = b;
    int c = strcmp((*x)->cid, (*y)->cid);
    return c ? c : (*x)->attempt - (*y)->attempt;
}

/* A request resending its correlation id: an attempt answered 5xx did nothing itself, but a
 * later one may have done the work (the first found the database down, say). Together: a 2xx
 * means the whole effect (check_requests); a last answer that is a definite refusal means none
 * (a resent id must not make the answer lie); answers that are all 5xx from the service mean
 * none; otherwise all or nothing. */
static void check_resends(const struct rec *v, size_t n)
{
    const struct rec **k = malloc((n + 1) * sizeof *k);
    size_t nk = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i].flags & REC_RESEND)
            k[nk++] = &v[i];
    qsort(k, nk, sizeof *k, cmp_cid);
    for (size_t i = 0; i < nk;) {
        size_t j = i;
        bool any_2xx = false, all_svc_5xx = true;
        char list[256] = "";
        size_t ll = 0;
        while (j < nk && strcmp(k[j]->cid, k[i]->cid) == 0) {
            enum outcome o = outcome_of(k[j]);
            any_2xx = any_2xx || o == O_2XX;
            all_svc_5xx = all_svc_5xx && o == O_5XX_SVC;
            if (ll < sizeof list - 40)
                ll += (size_t)snprintf(list + ll, sizeof list - ll, "%s%d%s%s", j > i ? "," : "",
                                       k[j]->status, k[j]->err[0] ? " " : "", k[j]->err);
            j++;
        }
        const struct rec *last = k[j - 1];
        char why[256];
        int fx = effect_of(last, why, sizeof why);
        if (any_2xx) {
            /* checked per answer */
        } else if (rec_definite(last)) {
            check(I_REQ_4XX, fx == 0, "resent %s cid %s: last of %zu answers %s, effect %s: %s",
                  kind_names[last->kind], last->cid, j - i, list, fx == 1 ? "whole" : "partial",
                  why);
        } else if (all_svc_5xx) {
            check(I_REQ_5XX, fx == 0, "resent %s cid %s: every answer a 5xx (%s), effect %s: %s",
                  kind_names[last->kind], last->cid, list, fx == 1 ? "whole" : "partial", why);
        } else {
            check(I_REQ_UNKNOWN, fx != -1, "resent %s cid %s (answers %s): partial effect: %s",
                  kind_names[last->kind], last->cid, list, why);
        }
        i = j;
    }
    free(k);
}

static int cmp_key(const void *a, const void *b)
{
    const struct rec *const *x = a, *const *y = b;
    int c = strcmp((*x)->key, (*y)->key);
    return c ? c : (*x)->attempt - (*y)->attempt;
}

static long keys_total, keys_2xx, keys_4xx, keys_unsettled, keys_attempts_max;

/* Every Idempotency-Key: among the correlation ids of all its attempts, at most one committed;
 * when an attempt was answered 2xx, exactly one did, the one every 2xx answer names; when the
 * last answer was a definite refusal, none did. */
static void check_keys(const struct rec *v, size_t n)
{
    const struct rec **k = malloc((n + 1) * sizeof *k);
    size_t nk = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i].key[0])
            k[nk++] = &v[i];
    qsort(k, nk, sizeof *k, cmp_key);
    for (size_t i = 0; i < nk;) {
        size_t j = i;
        while (j < nk && strcmp(k[j]->key, k[i]->key) == 0)
            j++;
        keys_total++;
        if ((long)(j - i) > keys_attempts_max)
            keys_attempts_max = (long)(j - i);
        const struct rec *last = k[j - 1], *ok = NULL;
        int effects = 0;
        char committed[37] = "", list[512] = "";
        size_t ll = 0;
        bool named_ok = true;
        for (size_t a = i; a < j; a++) {
            char why[256];
            struct rec own = *k[a]; /* this attempt's own correlation id */
            if (effect_of(&own, why, sizeof why) == 1) {
                effects++;
                snprintf(committed, sizeof committed, "%s", own.cid);
            }
            if (ll < sizeof list - 48)
                ll += (size_t)snprintf(list + ll, sizeof list - ll, "%s%s:%d%s", a > i ? "," : "",
                                       own.cid, own.status, (own.flags & REC_REPLAYED) ? "r" : "");
            if (k[a]->status / 100 == 2) {
                if (ok && strcmp(ok->resp_cid, k[a]->resp_cid) != 0)
                    named_ok = false;
                ok = k[a];
            }
        }
        /* A 2xx names one of this key's attempts. */
        if (ok) {
            bool ours = false;
            for (size_t a = i; a < j; a++)
                ours = ours || strcmp(k[a]->cid, ok->resp_cid) == 0;
            named_ok = named_ok && ours;
        }
        check(I_KEY_ONCE, effects <= 1, "%s key %s: %d of its attempts committed (cid:status %s)",
              kind_names[last->kind], last->key, effects, list);
        if (ok) {
            keys_2xx++;
            check(I_KEY_ANSWER, effects == 1 && named_ok && strcmp(committed, ok->resp_cid) == 0,
                  "%s key %s answered %d naming %s, but %d attempts committed (%s) (cid:status %s)",
                  kind_names[last->kind], last->key, ok->status, ok->resp_cid, effects,
                  committed[0] ? committed : "none", list);
        } else if (rec_definite(last)) {
            keys_4xx++;
            check(I_KEY_ANSWER, effects == 0,
                  "%s key %s finally answered %d %s, but an attempt committed (%s) (cid:status %s)",
                  kind_names[last->kind], last->key, last->status, last->err, committed, list);
        } else {
            keys_unsettled++;
        }
        i = j;
    }
    free(k);
}

/* Versions start at 0 and each PATCH that took effect adds one: the 2xx PATCHes of an item
 * are at most its version, which the unanswered ones may raise further; the PATCH that set
 * the current version (if answered) set the current name and cost. */
static void check_patches(const struct rec *v, size_t n)
{
    for (long it = 0; it < b_items.n; it++) {
        int64_t id = NUM(b_items.r, it, 0), version = NUM(b_items.r, it, 3);
        long ok = 0, unknown = 0;
        const struct rec *last = NULL;
        bool stored_4xx = false;
        for (size_t i = 0; i < n; i++) {
            const struct rec *r = &v[i];
            if (r->kind != K_PATCH_ITEM || r->item != id)
                continue;
            enum outcome o = outcome_of(r);
            if (o == O_2XX) {
                ok++;
                if (r->res_ver == version)
                    last = r;
            } else if (o == O_NONE || o == O_5XX_INGRESS) {
                unknown++;
            } else if (strcmp(r->name, V(b_items.r, it, 1)) == 0) {
                stored_4xx = true;
            }
        }
        bool good = ok <= version && version <= ok + unknown && !stored_4xx;
        if (last)
            good = good && strcmp(last->name, V(b_items.r, it, 1)) == 0 &&
                   (last->amount < 0 || last->amount == NUM(b_items.r, it, 2));
        check(I_PATCH, good,
              "item %" PRId64 ": version %" PRId64 ", %ld PATCHes answered 2xx, %ld unanswered, "
              "name %s (a refused PATCH's: %d)",
              id, version, ok, unknown, V(b_items.r, it, 1), stored_4xx);
    }
}

/* ---- faults and the summary -------------------------------------------------------------------
 */

/* A fault of the run (faults.tsv, written by chaos.sh): "T_REL KIND TARGET RESULT T0 T1 ...". */
struct fault {
    long t_rel;
    char kind[16], target[48], result[16];
    int64_t t0, t1;
};
static struct fault *faults;
static size_t n_faults;

static void load_faults(const char *path)
{
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f)
        return;
    char line[512];
    size_t cap = 0;
    while (fgets(line, sizeof line, f)) {
        struct fault x = {0};
        long long t0 = 0, t1 = 0;
        int got = sscanf(line, "%ld %15s %47s %15s %lld %lld", &x.t_rel, x.kind, x.target, x.result,
                         &t0, &t1);
        if (got < 4)
            continue;
        x.t0 = t0;
        x.t1 = got >= 6 ? t1 : t0;
        if (n_faults == cap) {
            cap = cap ? 2 * cap : 64;
            faults = realloc(faults, cap * sizeof *faults);
            if (!faults)
                exit(1);
        }
        faults[n_faults++] = x;
    }
    fclose(f);
}

int64_t fault_end_between(int64_t from_ms, int64_t to_ms)
{
    int64_t end = 0;
    for (size_t i = 0; i < n_faults; i++)
        if (faults[i].t0 <= to_ms && faults[i].t1 >= from_ms && faults[i].t1 > end)
            end = faults[i].t1;
    return end;
}

/* A database sample (gf-chaos sample). */
struct sample {
    int64_t t, pend_n, pend_max, open_tx, lock_waits, lock_wait_max;
    char cid[40];
};
static struct sample *samples;
static size_t n_samples;

static void load_samples(const char *path)
{
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f)
        return;
    char line[512];
    size_t cap = 0;
    while (fgets(line, sizeof line, f)) {
        struct sample x = {0};
        long long t, a, b, c, d, e;
        if (sscanf(line, "%lld %lld %lld %39s %lld %lld %lld", &t, &a, &b, x.cid, &c, &d, &e) != 7)
            continue;
        x.t = t, x.pend_n = a, x.pend_max = b, x.open_tx = c, x.lock_waits = d, x.lock_wait_max = e;
        if (n_samples == cap) {
            cap = cap ? 2 * cap : 1024;
            samples = realloc(samples, cap * sizeof *samples);
            if (!samples)
                exit(1);
        }
        samples[n_samples++] = x;
    }
    fclose(f);
}

static bool is_net_or_pause(const struct fault *f)
{
    return strcmp(f->kind, "cut") == 0 || strcmp(f->kind, "delay") == 0 ||
           strcmp(f->kind, "pause") == 0;
}

/* SPEC §5 over time: at every sample taken when no fault was going on, the oldest PENDING
 * transaction is at most pending_limit old, counted from the end of the last fault if it is
 * older than that. Also: the largest PENDING age after each partition or pause, and when the
 * reservations it left were settled. */
static void check_pending_over_time(int64_t limit_ms, int64_t timeout_ms)
{
    check(I_FAULTS_TIMED, n_samples > 0, "no database sample was taken during the run");
    char seen[64][40];
    int nseen = 0;
    for (size_t i = 0; i < n_samples; i++) {
        const struct sample *s = &samples[i];
        if (s->pend_max < 0)
            continue;
        int64_t last_end = 0;
        const struct fault *last = NULL;
        bool active = false;
        for (size_t j = 0; j < n_faults; j++) {
            const struct fault *f = &faults[j];
            if (f->t0 > s->t)
                continue;
            if (f->t1 >= s->t)
                active = true;
            else if (f->t1 >= last_end) {
                last_end = f->t1;
                last = f;
            }
        }
        if (active)
            continue;
        int64_t since = s->t - s->pend_max; /* when the oldest became PENDING */
        if (since < last_end)
            since = last_end;
        bool ok = s->t - since <= limit_ms;
        bool dup = false;
        for (int k = 0; k < nseen && !dup; k++)
            dup = strcmp(seen[k], s->cid) == 0;
        if (!ok && !dup && nseen < 64)
            snprintf(seen[nseen++], sizeof seen[0], "%s", s->cid);
        if (ok || !dup)
            check(I_PENDING_AFTER, ok,
                  "transaction %s PENDING for %" PRId64 " ms at %+.1f s, %" PRId64
                  " ms after the last fault (%s %s) ended (limit %" PRId64 " ms)",
                  s->cid, s->pend_max,
                  faults && n_faults ? (double)(s->t - faults[0].t0 + faults[0].t_rel) / 1e3 : 0.0,
                  last ? s->t - last_end : -1, last ? last->kind : "-", last ? last->target : "-",
                  limit_ms);
    }
    (void)timeout_ms;
}

static int64_t max_pending_after, lock_hold_max = -1;

static void print_faults(long *total, int64_t timeout_ms, int64_t limit_ms)
{
    *total = (long)n_faults;
    if (n_faults == 0) {
        printf("faults injected: (no record)\n");
        return;
    }
    char kinds[10][16], targets[24][48];
    long per_kind[10] = {0}, per_target[24] = {0}, failed = 0;
    int nk = 0, nt = 0;
    for (size_t i = 0; i < n_faults; i++) {
        const struct fault *f = &faults[i];
        if (strcmp(f->result, "ok") != 0 && strcmp(f->kind, "fpkill") != 0)
            failed++;
        int k = 0, j = 0;
        while (k < nk && strcmp(kinds[k], f->kind) != 0)
            k++;
        if (k == nk && nk < 10)
            snprintf(kinds[nk++], sizeof kinds[0], "%s", f->kind);
        if (k < 10)
            per_kind[k]++;
        while (j < nt && strcmp(targets[j], f->target) != 0)
            j++;
        if (j == nt && nt < 24)
            snprintf(targets[nt++], sizeof targets[0], "%s", f->target);
        if (j < 24)
            per_target[j]++;
    }
    printf("faults injected: %ld", *total);
    for (int k = 0; k < nk; k++)
        printf("%s %s=%ld", k ? "," : " (", kinds[k], per_kind[k]);
    printf("%s\n", nk ? ")" : "");
    printf("  by target:");
    for (int j = 0; j < nt; j++)
        printf(" %s=%ld", targets[j], per_target[j]);
    printf("\n");
    if (failed)
        printf("  %ld faults did not complete as planned (see the driver's log)\n", failed);
    /* After each partition and pause: the oldest PENDING in the following limit_ms (later
     * faults may add to it), and when nothing was PENDING longer than the timeout. */
    printf("PENDING on gxp after each partition or pause (sampled every ~0.5 s for %" PRId64
           " ms after it ended; pending timeout %" PRId64 " ms):\n",
           limit_ms, timeout_ms);
    for (size_t i = 0; i < n_faults; i++) {
        const struct fault *f = &faults[i];
        if (!is_net_or_pause(f))
            continue;
        int64_t next = f->t1 + limit_ms;
        int64_t worst = 0, settled = -1;
        for (size_t j = 0; j < n_samples; j++) {
            const struct sample *s = &samples[j];
            if (s->t < f->t1 || s->t >= next || s->pend_max < 0)
                continue;
            if (s->pend_max > worst)
                worst = s->pend_max;
            if (settled < 0 && s->pend_max <= timeout_ms)
                settled = s->t - f->t1;
        }
        if (worst > max_pending_after)
            max_pending_after = worst;
        printf("  %-6s %-14s %5" PRId64 " ms at %+6.1f s: max PENDING age afterwards %6" PRId64
               " ms; none older than the timeout %s%" PRId64 " ms after it ended\n",
               f->kind, f->target, f->t1 - f->t0, (double)f->t_rel / 1e3, worst,
               settled < 0 ? "(not seen) " : "", settled < 0 ? 0 : settled);
    }
    printf("  max PENDING age after partitions and pauses: %" PRId64 " ms\n", max_pending_after);
    int64_t all_max = 0, open_max = 0, wait_max = 0;
    for (size_t j = 0; j < n_samples; j++) {
        if (samples[j].pend_max > all_max)
            all_max = samples[j].pend_max;
        if (samples[j].open_tx > open_max)
            open_max = samples[j].open_tx;
        if (samples[j].lock_wait_max > wait_max)
            wait_max = samples[j].lock_wait_max;
    }
    printf("  over the whole run (%zu samples): max PENDING age %" PRId64
           " ms; backend-db: oldest open transaction of a service session %" PRId64
           " ms, longest lock wait %" PRId64 " ms\n",
           n_samples, all_max, open_max, wait_max);
}

/* Failpoint hits counted from the programs' logs by chaos.sh: "NAME ACTION COUNT" lines. */
static void print_failpoints(const char *path)
{
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f) {
        printf("failpoints fired: (no record)\n");
        return;
    }
    char line[256];
    printf("failpoints fired (from the logs):");
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        char name[64], action[16];
        long count;
        if (sscanf(line, "%63s %15s %ld", name, action, &count) == 3) {
            printf("%s %s %s=%ld", n ? "," : "", name, action, count);
            n++;
        }
    }
    printf("%s\n", n ? "" : " none");
    fclose(f);
}

/* Probe buys during pauses of a backend that sat inside a buy (chaos.sh): "T PROGRAM PAUSE_MS
 * ITEM blocked_ms=B probes=N status=S error=E". */
static void print_lock_probes(const char *path)
{
    FILE *f = path ? fopen(path, "r") : NULL;
    char line[512];
    int n = 0;
    printf("lock hold after a pause (probe buys of the item a paused backend was buying):\n");
    while (f && fgets(line, sizeof line, f)) {
        long long t, pause_ms, item, blocked;
        char prog[48], rest[256] = "";
        if (sscanf(line, "%lld %47s %lld %lld blocked_ms=%lld %255[^\n]", &t, prog, &pause_ms,
                   &item, &blocked, rest) < 5)
            continue;
        printf("  %s paused %lld ms inside a buy of item %lld: buys of that item blocked %lld ms "
               "(%s)\n",
               prog, pause_ms, item, blocked, rest);
        if (blocked > lock_hold_max)
            lock_hold_max = blocked;
        n++;
    }
    if (f)
        fclose(f);
    if (n == 0)
        printf("  none measured (no pause of backend-svc-1 caught a buy at buy.before_commit)\n");
}

static void print_summary(uint64_t seed, int64_t timeout_ms, int64_t limit_ms, const char *fp_path,
                          const char *probes_path)
{
    printf("\n===== chaos summary (CHAOS_SEED=%" PRIu64 ") =====\n", seed);
    long total = 0, by[NOUT] = {0};
    for (int k = 0; k < NKINDS; k++)
        for (int o = 0; o < NOUT; o++) {
            total += counts[k][o];
            by[o] += counts[k][o];
        }
    printf("requests: %ld (", total);
    for (int o = 0; o < NOUT; o++)
        printf("%s%s %ld", o ? ", " : "", outcome_names[o], by[o]);
    printf(")\n");
    printf("  %-16s %8s %8s %13s %13s %10s %12s\n", "kind", "2xx", "4xx", "5xx(service)",
           "5xx(ingress)", "no-answer", "retry-later");
    for (int k = 0; k < NKINDS; k++)
        printf("  %-16s %8ld %8ld %13ld %13ld %10ld %12ld\n", kind_names[k], counts[k][O_2XX],
               counts[k][O_4XX], counts[k][O_5XX_SVC], counts[k][O_5XX_INGRESS], counts[k][O_NONE],
               counts[k][O_LATER]);
    long resolver = 0, asked = 0;
    for (long i = 0; i < g_dec.n; i++)
        if (strcmp(V(g_dec.r, i, 2), "resolver") == 0)
            resolver++;
    for (long i = 0; i < g_tx.n; i++)
        if (NUM(g_tx.r, i, 6) > 0)
            asked++;
    printf("gxp transactions: %ld (stuck PENDING and resolved with the coordinator: %ld, of which "
           "gxp's resolver applied the decision before replication brought it: %ld)\n",
           g_tx.n, asked, resolver);
    printf("committed buys: %ld; stored buy events: %ld\n", b_evout.n, e_ev.n);
    auction_print_summary();
    printf("retries: %ld keyed attempts over %ld Idempotency-Keys (answered 2xx %ld, refused %ld, "
           "unsettled %ld; at most %ld attempts), %ld replayed answers; %ld resends of a "
           "correlation id; %ld probe buys\n",
           n_keyed, keys_total, keys_2xx, keys_4xx, keys_unsettled, keys_attempts_max, n_replayed,
           n_resent, n_probes);
    static const char *const senders[4] = {"the operator's token", "a user's own token",
                                           "no token (must be 401)",
                                           "a user's token out of place (must be 403)"};
    printf("requests by token:\n");
    for (int s = 0; s < 4; s++) {
        long all = 0;
        for (int o = 0; o < NOUT; o++)
            all += by_sender[s][o];
        printf("  %-42s %7ld (2xx %ld, 4xx %ld, 5xx %ld, no answer or later %ld)\n", senders[s],
               all, by_sender[s][O_2XX], by_sender[s][O_4XX],
               by_sender[s][O_5XX_SVC] + by_sender[s][O_5XX_INGRESS],
               by_sender[s][O_NONE] + by_sender[s][O_LATER]);
    }
    long nfaults;
    print_faults(&nfaults, timeout_ms, limit_ms);
    print_lock_probes(probes_path);
    print_failpoints(fp_path);
    long all_checked = 0, all_violated = 0;
    printf("invariants:\n");
    for (int i = 0; i < NINV; i++) {
        printf("  [%s] %-86s %7ld checked, %ld violations\n", violated[i] ? "FAIL" : " ok ",
               inv_names[i], checked[i], violated[i]);
        all_checked += checked[i];
        all_violated += violated[i];
    }
    printf("max PENDING age after partitions/pauses: %" PRId64 " ms; lock hold after a pause: %s",
           max_pending_after, lock_hold_max < 0 ? "not measured" : "");
    if (lock_hold_max >= 0)
        printf("%" PRId64 " ms", lock_hold_max);
    printf("\nchecks: %ld; violations = %ld\n", all_checked, all_violated);
}

int chaos_check(int argc, char **argv)
{
    const char *bconn = NULL, *gconn = NULL, *econn = NULL, *faults_path = NULL;
    const char *samples_path = NULL, *fp_path = NULL, *probes_path = NULL;
    int64_t limit_ms = 30000, timeout_ms = 2000, settle_limit_ms = 45000;
    uint64_t seed = 0;
    struct rec *v = NULL;
    size_t n = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *val = argv[i + 1];
        if (strcmp(k, "--backend-db") == 0)
            bconn = val;
        else if (strcmp(k, "--gxp-db") == 0)
            gconn = val;
        else if (strcmp(k, "--eventlog-db") == 0)
            econn = val;
        else if (strcmp(k, "--faults") == 0)
            faults_path = val;
        else if (strcmp(k, "--samples") == 0)
            samples_path = val;
        else if (strcmp(k, "--failpoints") == 0)
            fp_path = val;
        else if (strcmp(k, "--lock-probes") == 0)
            probes_path = val;
        else if (strcmp(k, "--pending-timeout-ms") == 0)
            timeout_ms = strtoll(val, NULL, 10);
        else if (strcmp(k, "--pending-limit-ms") == 0)
            limit_ms = strtoll(val, NULL, 10);
        else if (strcmp(k, "--settle-limit-ms") == 0)
            settle_limit_ms = strtoll(val, NULL, 10);
        else if (strcmp(k, "--seed") == 0)
            seed = strtoull(val, NULL, 10);
        else if (strcmp(k, "--records") == 0) {
            if (!rec_read_file(val, &v, &n))
                return 1;
        }
    }
    if (!bconn || !gconn || !econn) {
        fprintf(stderr, "chaos check: --backend-db, --gxp-db and --eventlog-db are required\n");
        return 2;
    }
    load_faults(faults_path);
    load_samples(samples_path);
    load_all(bconn, gconn, econn);
    check_ledger(limit_ms);
    check_buys(v, n);
    check_stock(v, n);
    check_auctions(settle_limit_ms);
    check_requests(v, n);
    check_patches(v, n);
    check_keys(v, n);
    check_resends(v, n);
    if (samples_path)
        check_pending_over_time(limit_ms, timeout_ms);
    print_summary(seed, timeout_ms, limit_ms, fp_path, probes_path);
    fflush(stdout);
    long bad = 0;
    for (int i = 0; i < NINV; i++)
        bad += violated[i];
    struct table *all[] = {&b_users, &b_items, &b_mkt, &b_uitems, &b_coord, &b_dec,
                           &b_evout, &g_bal,   &g_tx,  &g_dec,    &g_rep,   &e_ev};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        table_free(all[i]);
    auction_free();
    free(v);
    free(faults);
    free(samples);
    return bad ? 1 : 0;
}
