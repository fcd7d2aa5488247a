/* Idempotency-Key (SPEC §2b): a retry with the same key and body returns the first outcome,
 * whatever failed in between, and the work is never done twice.
 *
 * A key is claimed by one attempt at a time: the row in idempotency_keys names its owner, the
 * attempt's correlation id. The work's local transaction stores the success answer in that row
 * as its last statement before COMMIT, and only while the attempt still owns the key (the
 * fence): the answer exists iff the work committed. A retry that finds
 *   - an answer: replays it;
 *   - no answer and a claim younger than the takeover delay: 409 request_in_progress;
 *   - no answer and an older claim (the owner died, was paused or cut off, or could not store
 *     its failure): takes the claim over. From then on the old owner's COMMIT cannot happen
 *     (its fenced UPDATE finds no row, it rolls back), so running the work again is safe; and
 *     if the old owner's transaction already holds the row, the takeover waits for it and then
 *     sees its answer.
 * Definite failures (4xx) are stored after the work, fenced the same way. A 5xx releases the
 * claim (again only while it is still unanswered and ours), so that a retry runs at once; an
 * answer that committed meanwhile stays. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "gf/failpoint.h"
#include "gf/log.h"

#define JSON_TYPE "application/json"
#define TEXT_TYPE "text/plain; charset=utf-8"
#define IDEM_PRUNE_EVERY 1000 /* claims between two prunes of expired keys */

static const char SQL_INSERT[] = "INSERT INTO idempotency_keys (key, request_hash, owner) "
                                 "VALUES ($1, encode(sha256(decode($2, 'hex')), 'hex'), $3::uuid) "
                                 "ON CONFLICT (key) DO NOTHING RETURNING 1";
/* same request?, status, content type, body, expired?, owner, claim old enough to take over? */
static const char SQL_LOOKUP[] =
    "SELECT request_hash = encode(sha256(decode($2, 'hex')), 'hex'), status, content_type, body,"
    " created_at < now() - make_interval(secs => $3::float8), owner,"
    " claimed_at < now() - make_interval(secs => $4::float8) "
    "FROM idempotency_keys WHERE key = $1";
static const char SQL_DELETE_EXPIRED[] =
    "DELETE FROM idempotency_keys WHERE key = $1"
    " AND created_at < now() - make_interval(secs => $2::float8)";
static const char SQL_TAKE_OVER[] =
    "UPDATE idempotency_keys SET owner = $3::uuid, claimed_at = now()"
    " WHERE key = $1 AND owner IS NOT DISTINCT FROM $2::uuid AND status IS NULL RETURNING 1";
static const char SQL_STORE[] =
    "UPDATE idempotency_keys SET status = $3::int, content_type = $4, body = $5"
    " WHERE key = $1 AND owner = $2::uuid AND status IS NULL RETURNING 1";
static const char SQL_RELEASE[] =
    "DELETE FROM idempotency_keys WHERE key = $1 AND owner = $2::uuid AND status IS NULL";
static const char SQL_PRUNE[] =
    "DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys"
    " WHERE created_at < now() - make_interval(secs => $1::float8)"
    " ORDER BY created_at LIMIT 1000)";

static atomic_uint_fast64_t claims;

char *be_answer_body(const struct be_idem *idem, int64_t id, const char *cid)
{
    char *out = NULL;
    int n = -1;
    switch (idem->shape) {
    case BE_SHAPE_CREATED:
        n = asprintf(&out, "{\"%s\":%" PRId64 ",\"correlationId\":\"%s\"}", idem->id_key, id, cid);
        break;
    case BE_SHAPE_BUY:
        n = asprintf(&out,
                     "{\"correlationId\":\"%s\",\"buyItemResponse\":{\"userItemId\":%" PRId64
                     ",\"correlationId\":\"%s\"}}",
                     cid, id, cid);
        break;
    case BE_SHAPE_CID:
        n = asprintf(&out, "{\"correlationId\":\"%s\"}", cid);
        break;
    case BE_SHAPE_AUCTION:
        n = asprintf(&out, "{\"auctionId\":%" PRId64 ",\"correlationId\":\"%s\",\"endsAt\":\"%s\"}",
                     id, cid, idem->ends_at);
        break;
    }
    return n < 0 ? NULL : out;
}

/* Stores an answer on conn if idem->owner still holds the key: GF_OK, GF_ECONFLICT when
 * another attempt took it over (or it is answered already), or a database failure (mapped:
 * a lost serialization race is GF_EUNAVAILABLE, never mistaken for the fence). */
static enum gf_status store_on(struct gf_db_conn *conn, const struct be_idem *idem, int status,
                               const char *content_type, const char *body, struct be_err *err)
{
    char code[12];
    snprintf(code, sizeof code, "%d", status);
    const char *params[] = {idem->key, idem->owner, code, content_type, body};
    PGresult *res = NULL;
    enum gf_status st = store_run(conn, "idem_store", SQL_STORE, 5, params, &res, err);
    if (st == GF_OK && PQntuples(res) != 1) {
        be_err_set(err, "idempotency_key_superseded",
                   "a retry with the same Idempotency-Key took this request over; its answer "
                   "is the one that counts");
        st = GF_ECONFLICT;
    }
    PQclear(res);
    return st;
}

enum gf_status idem_commit(struct gf_db_conn *c, const struct be_idem *idem, int64_t id,
                           bool *unknown, struct be_err *err)
{
    enum gf_status st = GF_OK;
    *unknown = false;
    if (idem != NULL && idem->key != NULL) {
        char *body = be_answer_body(idem, id, idem->owner);
        st = body != NULL ? store_on(c, idem, 200, JSON_TYPE, body, err)
                          : be_db_failed(GF_ENOMEM, err);
        free(body);
        if (st != GF_OK) {
            gf_db_rollback(c);
            return st;
        }
    }
    gf_failpoint("tx.before_commit");
    st = gf_db_exec_simple(c, "COMMIT");
    if (st == GF_OK)
        return GF_OK;
    /* An error the server answered is definite: nothing committed. A lost connection is not:
     * the COMMIT may have reached the server. */
    *unknown = PQstatus(gf_db_pgconn(c)) != CONNECTION_OK;
    return be_db_failed(*unknown ? GF_EUNKNOWN : st, err);
}

/* "POST /path\n<body>" in hex, for the request hash. */
static char *request_hex(const struct gf_http_request *req)
{
    size_t blen;
    const char *body = gf_http_body(req, &blen);
    const char *path = gf_http_path(req);
    size_t plen = strlen(path);
    size_t n = 5 + plen + 1 + blen; /* "POST " path "\n" body */
    char *hex = malloc(2 * n + 1);
    if (hex == NULL)
        return NULL;
    static const char digits[] = "0123456789abcdef";
    char *o = hex;
    const char *parts[] = {"POST ", path, "\n", body};
    size_t lens[] = {5, plen, 1, blen};
    for (int p = 0; p < 4; p++) {
        for (size_t i = 0; i < lens[p]; i++) {
            unsigned char b = (unsigned char)parts[p][i];
            *o++ = digits[b >> 4];
            *o++ = digits[b & 15];
        }
    }
    *o = '\0';
    return hex;
}

/* The content types this API answers, so a replay can point at a static string. */
static const char *static_content_type(const char *s)
{
    if (s != NULL && strcmp(s, TEXT_TYPE) == 0)
        return TEXT_TYPE;
    return JSON_TYPE;
}

/* What the table holds for a key claimed already. */
struct row {
    bool found, same_request, expired, takeover_due;
    int status; /* -1 while unanswered */
    const char *content_type;
    char *body;     /* malloc'd */
    char owner[40]; /* "" when the claim names none (a row from before owners existed) */
};

static enum gf_status lookup(struct backend_app *app, struct gf_db_conn *conn, const char *key,
                             const char *hex, struct row *row)
{
    char ttl[24], takeover[24];
    snprintf(ttl, sizeof ttl, "%lld", (long long)app->cfg->idempotency_ttl_s);
    snprintf(takeover, sizeof takeover, "%.3f", (double)app->cfg->idempotency_takeover_ms / 1e3);
    const char *params[] = {key, hex, ttl, takeover};
    PGresult *res = NULL;
    free(row->body);
    *row = (struct row){.status = -1};
    enum gf_status st = gf_db_exec(conn, "idem_lookup", SQL_LOOKUP, 4, params, &res);
    if (st != GF_OK || PQntuples(res) == 0)
        goto out;
    row->found = true;
    row->same_request = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    row->expired = strcmp(PQgetvalue(res, 0, 4), "t") == 0;
    row->takeover_due = strcmp(PQgetvalue(res, 0, 6), "t") == 0;
    snprintf(row->owner, sizeof row->owner, "%s", PQgetvalue(res, 0, 5));
    if (!PQgetisnull(res, 0, 1)) {
        row->status = atoi(PQgetvalue(res, 0, 1));
        row->content_type = static_content_type(PQgetvalue(res, 0, 2));
        row->body = strdup(PQgetvalue(res, 0, 3));
        if (row->body == NULL)
            st = GF_ENOMEM;
    }
out:
    PQclear(res);
    return st;
}

static void prune(struct backend_app *app, struct gf_db_conn *conn)
{
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%lld", (long long)app->cfg->idempotency_ttl_s);
    const char *params[] = {ttl};
    /* Housekeeping only: a failure (already logged) leaves the rows for the next prune. */
    if (gf_db_exec(conn, "idem_prune", SQL_PRUNE, 1, params, NULL) != GF_OK)
        GF_WARN("idempotency keys not pruned");
}

/* One step of the claim: GF_OK with *verdict decided, or a database failure. */
static enum gf_status claim_step(struct backend_app *app, struct gf_db_conn *conn, const char *key,
                                 const char *cid, const char *hex, struct row *row,
                                 enum idem_verdict *verdict, bool *again)
{
    *again = false;
    PGresult *res = NULL;
    const char *ins[] = {key, hex, cid};
    enum gf_status st = gf_db_exec(conn, "idem_insert", SQL_INSERT, 3, ins, &res);
    bool inserted = st == GF_OK && PQntuples(res) == 1;
    PQclear(res);
    if (st != GF_OK)
        return st;
    if (inserted) {
        *verdict = IDEM_RUN;
        return GF_OK;
    }
    if ((st = lookup(app, conn, key, hex, row)) != GF_OK)
        return st;
    if (!row->found) { /* released meanwhile: claim it again */
        *again = true;
        return GF_OK;
    }
    if (row->expired) { /* a key past its TTL names nothing any more */
        char ttl[24];
        snprintf(ttl, sizeof ttl, "%lld", (long long)app->cfg->idempotency_ttl_s);
        const char *del[] = {key, ttl};
        st = gf_db_exec(conn, "idem_delete_expired", SQL_DELETE_EXPIRED, 2, del, NULL);
        *again = st == GF_OK;
        return st;
    }
    if (!row->same_request) {
        *verdict = IDEM_REUSED;
        return GF_OK;
    }
    if (row->status >= 0) {
        *verdict = IDEM_REPLAY;
        return GF_OK;
    }
    if (!row->takeover_due) {
        *verdict = IDEM_IN_PROGRESS;
        return GF_OK;
    }
    /* Unanswered for longer than any live attempt takes: take the claim over (the fence). */
    const char *tk[] = {key, row->owner[0] ? row->owner : NULL, cid};
    st = gf_db_exec(conn, "idem_take_over", SQL_TAKE_OVER, 3, tk, &res);
    bool taken = st == GF_OK && PQntuples(res) == 1;
    PQclear(res);
    if (st != GF_OK)
        return st;
    if (taken) {
        GF_WARN("idempotency key taken over from an attempt that left no answer owner=%s",
                row->owner[0] ? row->owner : "-");
        *verdict = IDEM_RUN;
    } else {
        *again = true; /* answered or taken by another retry meanwhile: look again */
    }
    return GF_OK;
}

enum gf_status idem_claim(struct backend_app *app, const struct gf_http_request *req,
                          const char *key, const char *cid, enum idem_verdict *verdict,
                          struct idem_replay *replay, struct be_err *err)
{
    struct row row = {.status = -1};
    struct gf_db_conn *conn = NULL;
    char *hex = request_hex(req);
    enum gf_status st = hex != NULL ? gf_db_acquire(app->pool, &conn) : GF_ENOMEM;
    if (st != GF_OK)
        goto out;
    if (atomic_fetch_add(&claims, 1) % IDEM_PRUNE_EVERY == IDEM_PRUNE_EVERY - 1)
        prune(app, conn);
    bool again = true;
    for (int attempt = 0; again && attempt < 4; attempt++) {
        st = claim_step(app, conn, key, cid, hex, &row, verdict, &again);
        if (st != GF_OK)
            goto out;
    }
    if (again)
        *verdict = IDEM_IN_PROGRESS; /* it kept changing under us: a busy key */
    if (*verdict == IDEM_REPLAY) {
        replay->status = row.status;
        replay->content_type = row.content_type;
        replay->body = row.body;
        row.body = NULL;
    }
out:
    if (conn != NULL)
        gf_db_release(app->pool, conn);
    free(row.body);
    free(hex);
    return be_db_failed(st, err);
}

void idem_finish(struct backend_app *app, const struct be_idem *idem,
                 const struct gf_http_response *resp)
{
    struct gf_db_conn *conn = NULL;
    int status = resp->status ? resp->status : 200;
    char *body = NULL;
    enum gf_status st = gf_db_acquire(app->pool, &conn);
    if (st != GF_OK)
        goto out;
    if (status >= 500) {
        const char *params[] = {idem->key, idem->owner};
        st = gf_db_exec(conn, "idem_release", SQL_RELEASE, 2, params, NULL);
        goto out;
    }
    body = resp->body != NULL ? strndup(resp->body, resp->body_len) : strdup("");
    if (body == NULL) {
        st = GF_ENOMEM;
        goto out;
    }
    /* A 2xx of work that stored its answer in its own transaction finds it answered
     * (GF_ECONFLICT): nothing to do. Answers of work without a transaction of its own are
     * stored here. */
    struct be_err ignored;
    st = store_on(conn, idem, status, resp->content_type ? resp->content_type : JSON_TYPE, body,
                  &ignored);
    if (st == GF_ECONFLICT)
        st = GF_OK;
out:
    /* The client got its answer anyway; a retry finds the claim unanswered and, after the
     * takeover delay, runs again — safe, since nothing committed under this claim. */
    if (st != GF_OK)
        GF_WARN("idempotency answer not kept status=%d error=%s", status, gf_status_str(st));
    if (conn != NULL)
        gf_db_release(app->pool, conn);
    free(body);
}
