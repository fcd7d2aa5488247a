/* The chaos checker's shared parts: check.c (SPEC §5, the requests, the summary) and
 * check_auction.c (the auction saga) read the same database snapshots and count their
 * invariants in one tally. Inside gf-chaos only. */
#ifndef GF_CHAOS_CHECK_H
#define GF_CHAOS_CHECK_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "chaos.h"

/* ---- a map from a short string (a correlation id, an id) to an index ------------------------ */
struct map {
    char (*keys)[48]; /* a correlation id, or "user/item" of two 64-bit ids */
    long *vals;
    size_t cap;
};
void map_init(struct map *m, size_t n);
void map_free(struct map *m);
void map_put(struct map *m, const char *k, long v);
/* The value put under k, -1 when none. */
long map_get(const struct map *m, const char *k);

/* ---- a query's result with a map on its first column ----------------------------------------- */
struct table {
    PGresult *r;
    struct map m;
    long n;
};
/* Runs sql on c (exits on failure, naming what). */
PGresult *check_query(PGconn *c, const char *what, const char *sql);
void table_load(struct table *t, PGconn *c, const char *what, const char *sql);
void table_free(struct table *t);
/* The row whose first column is key, -1 when none. */
long row_of(const struct table *t, const char *key);

#define V(r, i, j) PQgetvalue((r), (i), (j))
#define NUM(r, i, j) strtoll(PQgetvalue((r), (i), (j)), NULL, 10)
#define NUL(r, i, j) PQgetisnull((r), (i), (j))

/* Loaded by check.c, read by the auctions' checks: backend-db's user items (key "user/item":
 * id, user_id, item_id, count) and decisions (correlation_id, state); gxp-db's balances
 * (user_id, balance, reserved, incoming) and transactions (correlation_id, user_id, type,
 * amount, status, ...). */
extern struct table b_uitems, b_dec, g_bal, g_tx;
/* backend-db's decision for cid: "succeeded", "failed" or "none". */
const char *dec_of(const char *cid);

/* ---- the invariants, counted per check ---------------------------------------------------------
 */
enum inv {
    I_BALANCE,
    I_RESERVED,
    I_INCOMING,
    I_BOUNDS,
    I_STATUS,
    I_PENDING,
    I_GXP_DECISION,
    I_REPLICA,
    I_USER_BALANCE,
    I_ORPHAN_BALANCE,
    I_STOCK,
    I_USER_ITEMS,
    I_BUY_2PC,
    I_BUY_EVENT,
    I_EVENT_BUY,
    I_OUTBOX,
    I_AU_ENDED,
    I_AU_TIMELY,
    I_AU_GXP,
    I_AU_ESCROW,
    I_AU_REFUND,
    I_AU_PAYOUT,
    I_AU_UNIT,
    I_AU_EVENT,
    I_REQ_2XX,
    I_REQ_4XX,
    I_REQ_5XX,
    I_REQ_UNKNOWN,
    I_REQ_CID,
    I_AUTH_REFUSED,
    I_AUTH_ACCEPTED,
    I_PATCH,
    I_KEY_ONCE,
    I_KEY_ANSWER,
    I_PENDING_AFTER,
    I_FAULTS_TIMED,
    NINV
};
/* One check of invariant i; when it failed, the violation is printed (fmt: what broke). */
void check(enum inv i, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The end (epoch ms) of the last fault that started at or before to_ms and ended at or after
 * from_ms; 0 when none did (check.c, from the driver's faults.tsv). */
int64_t fault_end_between(int64_t from_ms, int64_t to_ms);

/* ---- the auction saga (check_auction.c) --------------------------------------------------------
 */
/* Reads the auctions, bids, saga steps, their decisions and events from backend-db (b) and
 * eventlog-db (e). */
void auction_load(PGconn *b, PGconn *e);
/* A recorded auction request's effect (chaos.h K_AU_CREATE, K_BID, K_AU_CANCEL): 1 all of it,
 * 0 none, -1 a part; why says what was found. */
int auction_effect(const struct rec *r, char *why, size_t n);
/* Units of user item id (its number as text) that auctions took (escrow) and gave back or to
 * it (a settlement's or cancellation's result): its count moves by returned - taken. */
void auction_units_of(const char *user_item_id, int64_t *taken, int64_t *returned);
/* Units of item id in escrow: one per open auction of the item. */
int64_t auction_escrowed(int64_t item_id);
/* The saga's invariants (I_AU_*); a settlement may come at most settle_limit_ms after its
 * auction's end, or after the end of a fault going on then. */
void check_auctions(int64_t settle_limit_ms);
/* The summary's lines about auctions. */
void auction_print_summary(void);
void auction_free(void);

#endif
