/* The backend's local data: users, items, the marketplace and user items. Every statement
 * is parameterized and prepared per connection; lists are keyset-paged by id. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "gf/amqp.h"
#include "gf/buf.h"
#include "gf/clock.h"
#include "gf/log.h"
#include "gf/metrics.h"

/* A stale If-Match (412) is the item's optimistic lock refusing a change. */
static struct gf_counter *m_patch_conflicts;

void store_metrics_init(void)
{
    m_patch_conflicts = gf_metrics_counter(
        "backend_lock_conflicts_total",
        "optimistic-lock conflicts: an update named a version that had changed, by operation",
        "op=\"item_patch\"");
}

/* One statement on a pooled connection; for a change (write), a connection lost after it was
 * sent is GF_EUNKNOWN: it may have committed. */
static enum gf_status run_one(struct backend_app *app, bool write, const char *name,
                              const char *sql, int n, const char *const *params, PGresult **res,
                              struct be_err *err)
{
    struct gf_db_conn *c = NULL;
    if (!atomic_load(&app->migrated))
        return be_db_failed(GF_EUNAVAILABLE, err);
    enum gf_status st = gf_db_acquire(app->pool, &c);
    if (st != GF_OK)
        return be_db_failed(st, err);
    st = gf_db_exec(c, name, sql, n, params, res);
    if (write && st == GF_EUNAVAILABLE && PQstatus(gf_db_pgconn(c)) != CONNECTION_OK)
        st = GF_EUNKNOWN;
    gf_db_release(app->pool, c);
    return be_db_failed(st, err);
}

enum gf_status store_exec(struct backend_app *app, const char *name, const char *sql, int n,
                          const char *const *params, PGresult **res, struct be_err *err)
{
    return run_one(app, false, name, sql, n, params, res, err);
}

enum gf_status store_write(struct backend_app *app, const char *name, const char *sql, int n,
                           const char *const *params, PGresult **res, struct be_err *err)
{
    return run_one(app, true, name, sql, n, params, res, err);
}

enum gf_status store_acquire(struct backend_app *app, struct gf_db_conn **c, struct be_err *err)
{
    *c = NULL;
    if (!atomic_load(&app->migrated))
        return be_db_failed(GF_EUNAVAILABLE, err);
    return be_db_failed(gf_db_acquire(app->pool, c), err);
}

enum gf_status store_begin(struct backend_app *app, struct gf_db_conn **c, struct be_err *err)
{
    enum gf_status st = store_acquire(app, c, err);
    if (st != GF_OK)
        return st;
    st = gf_db_exec_simple(*c, "BEGIN");
    if (st != GF_OK) {
        gf_db_release(app->pool, *c);
        *c = NULL;
    }
    return be_db_failed(st, err);
}

enum gf_status store_run(struct gf_db_conn *c, const char *name, const char *sql, int n,
                         const char *const *params, PGresult **res, struct be_err *err)
{
    return be_db_failed(gf_db_exec(c, name, sql, n, params, res), err);
}

static json_t *iso_time(const char *epoch_us)
{
    char out[25];
    gf_iso8601_ms(strtoll(epoch_us, NULL, 10), out);
    return json_string(out);
}

/* ---- lists, written as JSON text directly ----------------------------------------------
 * A list answers up to BACKEND_LIST_CAP rows; building a jansson object per row and then
 * serializing them cost more CPU than the query (measured: ~2 µs a row), so rows go straight
 * from the result into the answer's text, escaped as jansson escapes them (", \ and control
 * characters; UTF-8 as is: the database holds only valid UTF-8, checked on the way in). */

/* s as a JSON string, quotes included. */
static void text_json_string(struct gf_buf *t, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    gf_buf_add(t, "\"", 1);
    const char *run = s;
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        gf_buf_add(t, run, (size_t)(s - run));
        char esc[7] = {'\\', (char)ch, 0};
        size_t n = 2;
        switch (ch) {
        case '"':
        case '\\':
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 15];
            n = 6;
        }
        gf_buf_add(t, esc, n);
        run = s + 1;
    }
    gf_buf_add(t, run, (size_t)(s - run));
    gf_buf_add(t, "\"", 1);
}

/* An integer column as PostgreSQL prints it (-?[0-9]+), copied; false if it is not one. */
static bool text_json_int(struct gf_buf *t, const char *v)
{
    const char *d = v + (*v == '-');
    if (*d == '\0' || strspn(d, "0123456789") != strlen(d))
        return false;
    gf_buf_addstr(t, v);
    return true;
}

/* A list query answered as {"<key>":[{...},...]}: the columns become members with the given
 * names, in order (text columns as strings, the others integers); the last column is
 * updated_at (epoch µs) and becomes "updatedAt". With version non-NULL the query's first
 * column is the table's version (the same in every row), given in *version (-1: no row), and
 * the members start at the second. *out (malloc'd, NUL-terminated) and *len are the caller's. */
static enum gf_status list(struct backend_app *app, const char *name, const char *sql,
                           const char *const keys[], int nkeys, const struct be_page *page,
                           const char *key, int64_t *version, char **out, size_t *len,
                           struct be_err *err)
{
    char after[24], limit[16], user[24];
    snprintf(after, sizeof after, "%" PRId64, page->after);
    snprintf(limit, sizeof limit, "%d", page->limit);
    snprintf(user, sizeof user, "%" PRId64, page->user_id);
    const char *params[3] = {after, limit, user};
    PGresult *res = NULL;
    /* $3, the user a list is cut to, only where the query names it. */
    int n = strstr(sql, "$3") != NULL ? 3 : 2;
    enum gf_status st = store_exec(app, name, sql, n, params, &res, err);
    if (st != GF_OK)
        return st;
    int first = version != NULL; /* the column of the first member */
    if (version != NULL)
        *version = PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)
                       ? strtoll(PQgetvalue(res, 0, 0), NULL, 10)
                       : -1;
    bool is_text[8] = {false};
    for (int k = 0; k < nkeys && k < 8; k++)
        is_text[k] = PQftype(res, first + k) == 25 /* text */ ||
                     PQftype(res, first + k) == 1043 /* varchar */;
    struct gf_buf t;
    gf_buf_init(&t, 0); /* as long as list_cap rows make it */
    bool ok = nkeys <= 8;
    gf_buf_addstr(&t, "{\"");
    gf_buf_addstr(&t, key);
    gf_buf_addstr(&t, "\":[");
    int rows = PQntuples(res);
    for (int i = 0; ok && i < rows; i++) {
        gf_buf_addstr(&t, i == 0 ? "{\"" : ",{\"");
        for (int k = 0; ok && k < nkeys; k++) {
            if (k > 0)
                gf_buf_addstr(&t, ",\"");
            gf_buf_addstr(&t, keys[k]);
            gf_buf_addstr(&t, "\":");
            const char *v = PQgetvalue(res, i, first + k);
            if (is_text[k])
                text_json_string(&t, v);
            else
                ok = text_json_int(&t, v);
        }
        char when[25];
        gf_iso8601_ms(strtoll(PQgetvalue(res, i, first + nkeys), NULL, 10), when);
        gf_buf_addstr(&t, ",\"updatedAt\":\"");
        gf_buf_addstr(&t, when);
        gf_buf_addstr(&t, "\"}");
    }
    gf_buf_addstr(&t, "]}");
    PQclear(res);
    if (!ok) {
        gf_buf_reset(&t);
        GF_ERROR("store list %s: a column is not an integer", name);
        return be_db_failed(GF_EINTERNAL, err);
    }
    *out = gf_buf_take(&t, len);
    return *out != NULL ? GF_OK : be_db_failed(GF_ENOMEM, err);
}

#define EPOCH_US(col) "(extract(epoch FROM " col ") * 1000000)::bigint"

/* A table's version as a column (an InitPlan: read once, in the statement's snapshot). */
#define TABLE_VERSION(t) "(SELECT version FROM table_versions WHERE name = '" t "')"

enum gf_status store_list_users(struct backend_app *app, const struct be_page *page,
                                const char *key, int64_t *version, char **out, size_t *len,
                                struct be_err *err)
{
    static const char *const keys[] = {"id", "name"};
    return list(app, "be_list_users",
                "SELECT " TABLE_VERSION("users") ", id, name, " EPOCH_US(
                    "updated_at") " FROM users WHERE id > $1::bigint ORDER BY id LIMIT $2::int",
                keys, 2, page, key, version, out, len, err);
}

enum gf_status store_list_items(struct backend_app *app, const struct be_page *page,
                                const char *key, int64_t *version, char **out, size_t *len,
                                struct be_err *err)
{
    static const char *const keys[] = {"id", "name", "cost"};
    return list(app, "be_list_items",
                "SELECT " TABLE_VERSION("items") ", id, name, cost, " EPOCH_US(
                    "updated_at") " FROM items WHERE id > $1::bigint ORDER BY id LIMIT $2::int",
                keys, 3, page, key, version, out, len, err);
}

enum gf_status store_list_marketplace(struct backend_app *app, const struct be_page *page,
                                      const char *key, char **out, size_t *len, struct be_err *err)
{
    static const char *const keys[] = {"id", "itemId", "count"};
    return list(app, "be_list_marketplace",
                "SELECT id, item_id, count, " EPOCH_US(
                    "updated_at") " FROM marketplace_items"
                                  " WHERE id > $1::bigint ORDER BY id LIMIT $2::int",
                keys, 3, page, key, NULL, out, len, err);
}

enum gf_status store_list_user_items(struct backend_app *app, const struct be_page *page,
                                     const char *key, char **out, size_t *len, struct be_err *err)
{
    static const char *const keys[] = {"id", "itemId", "userId", "count"};
    return list(
        app, "be_list_user_items",
        "SELECT id, item_id, user_id, count, " EPOCH_US(
            "updated_at") " FROM user_items"
                          " WHERE id > $1::bigint AND ($3::bigint = 0 OR user_id = $3::bigint)"
                          " ORDER BY id LIMIT $2::int",
        keys, 4, page, key, NULL, out, len, err);
}

void store_rollback(struct gf_db_conn *c)
{
    if (PQstatus(gf_db_pgconn(c)) == CONNECTION_OK) {
        enum gf_status rb = gf_db_exec_simple(c, "ROLLBACK");
        (void)rb; /* a failed ROLLBACK leaves a connection the pool will not lend again */
    }
}

/* The INSERT's id, or GF_ENOTFOUND when an INSERT ... SELECT found no referenced row. */
static enum gf_status returned_id(PGresult *res, int64_t *id, struct be_err *err)
{
    if (PQntuples(res) != 1)
        return be_db_failed(GF_ENOTFOUND, err);
    *id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    return GF_OK;
}

enum gf_status store_audit(struct gf_db_conn *c, const struct events_admin *a, const char *cid,
                           struct be_err *err)
{
    char payload[EVENTS_ADMIN_HEX_MAX];
    if (events_admin_payload(a, cid, payload, sizeof payload) != GF_OK) {
        GF_ERROR("audit event not encoded (a number past the proto's) action=%s", a->action);
        return be_db_failed(GF_EINTERNAL, err);
    }
    const char *params[2] = {cid, payload};
    return store_run(c, "be_audit",
                     "INSERT INTO event_outbox (event_name, correlation_id, payload)"
                     " VALUES ('" GF_EVENT_ADMIN_ACTION "', $1::uuid, $2::bytea)",
                     2, params, NULL, err);
}

/* INSERT ... RETURNING id, its audit a (target_id: the new id; item_id too when -1) and, with an
 * Idempotency-Key, the stored answer: one transaction. Failures come mapped; the caller names the
 * data's answers (GF_EEXISTS, GF_ENOTFOUND, GF_EINVAL) of the INSERT for its operation unless
 * *answered (the audit's or idem_commit's answer, final). */
static enum gf_status insert_returning(struct backend_app *app, const char *name, const char *sql,
                                       int n, const char *const *params, struct events_admin *a,
                                       const char *cid, const struct be_idem *idem, int64_t *id,
                                       bool *answered, struct be_err *err)
{
    struct gf_db_conn *c = NULL;
    PGresult *res = NULL;
    bool unknown = false;
    *answered = false;
    enum gf_status st = store_begin(app, &c, err);
    if (st != GF_OK)
        return st;
    st = store_run(c, name, sql, n, params, &res, err);
    if (st == GF_OK)
        st = returned_id(res, id, err);
    PQclear(res);
    if (st == GF_OK) {
        a->target_id = *id;
        if (a->item_id < 0)
            a->item_id = *id;
        st = store_audit(c, a, cid, err);
        *answered = st != GF_OK;
    }
    if (st != GF_OK) {
        gf_db_rollback(c);
    } else {
        /* idem_commit fills err itself: what it answers is final. Without a key it only
         * COMMITs (a lost answer is GF_EUNKNOWN, as for a single statement). */
        st = idem_commit(c, idem, *id, &unknown, err);
        *answered = st != GF_OK;
    }
    gf_db_release(app->pool, c);
    if (st == GF_OK)
        relay_kick(app->relay);
    return st;
}

enum gf_status store_create_item(struct backend_app *app, const struct gf_auth_claims *who,
                                 const char *name, int64_t cost, const char *cid,
                                 const struct be_idem *idem, int64_t *item_id, struct be_err *err)
{
    char c[24];
    snprintf(c, sizeof c, "%" PRId64, cost);
    const char *params[2] = {name, c};
    bool answered;
    /* item_id -1: the new row is the item, named as target and as item. */
    struct events_admin a = {
        .action = EVENTS_ACTION_ITEM_CREATED, .who = who, .item_id = -1, .cost = cost};
    enum gf_status st =
        insert_returning(app, "be_create_item",
                         "INSERT INTO items (name, cost) VALUES ($1, $2::bigint) RETURNING id", 2,
                         params, &a, cid, idem, item_id, &answered, err);
    if (!answered && st == GF_EINVAL)
        be_err_set(err, "invalid_field", "the item is not valid");
    return st;
}

static json_t *item_json(PGresult *res, int64_t *version)
{
    json_t *o = json_pack(
        "{s:I,s:s,s:I}", "id", (json_int_t)strtoll(PQgetvalue(res, 0, 0), NULL, 10), "name",
        PQgetvalue(res, 0, 1), "cost", (json_int_t)strtoll(PQgetvalue(res, 0, 2), NULL, 10));
    if (o)
        json_object_set_new(o, "updatedAt", iso_time(PQgetvalue(res, 0, 3)));
    *version = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    return o;
}

enum gf_status store_get_item(struct backend_app *app, int64_t id, json_t **out, int64_t *version,
                              struct be_err *err)
{
    char i[24];
    snprintf(i, sizeof i, "%" PRId64, id);
    const char *params[1] = {i};
    PGresult *res = NULL;
    enum gf_status st = store_exec(
        app, "be_get_item",
        "SELECT id, name, cost, " EPOCH_US("updated_at") ", version"
                                                         " FROM items WHERE id = $1::bigint",
        1, params, &res, err);
    if (st != GF_OK)
        return st;
    if (PQntuples(res) == 0) {
        PQclear(res);
        be_err_set(err, "item_not_found", "no item %" PRId64, id);
        return GF_ENOTFOUND;
    }
    *out = item_json(res, version);
    PQclear(res);
    return *out ? GF_OK : be_db_failed(GF_ENOMEM, err);
}

enum gf_status store_patch_item(struct backend_app *app, const struct gf_auth_claims *who,
                                int64_t id, int64_t if_match, const char *name, int64_t cost,
                                const char *cid, json_t **out, int64_t *version, struct be_err *err)
{
    char i[24], v[24], c[24];
    snprintf(i, sizeof i, "%" PRId64, id);
    snprintf(v, sizeof v, "%" PRId64, if_match);
    snprintf(c, sizeof c, "%" PRId64, cost);
    /* The audit is known before the change: the version after it is if_match + 1, or there is
     * no change (and the event's INSERT takes no row). */
    struct events_admin a = {.action = EVENTS_ACTION_ITEM_CHANGED,
                             .who = who,
                             .target_id = id,
                             .item_id = id,
                             .cost = cost < 0 ? 0 : cost,
                             .version = if_match + 1};
    if (name != NULL)
        a.fields[a.nfields++] = "name";
    if (cost >= 0)
        a.fields[a.nfields++] = "cost";
    char payload[EVENTS_ADMIN_HEX_MAX];
    if (events_admin_payload(&a, cid, payload, sizeof payload) != GF_OK) {
        GF_ERROR("audit event not encoded (a number past the proto's) action=%s", a.action);
        return be_db_failed(GF_EINTERNAL, err);
    }
    const char *params[6] = {i, v, name, cost < 0 ? NULL : c, cid, payload};
    PGresult *res = NULL;
    /* The version named by If-Match is the one the client read: optimistic locking. A new
     * cost also bumps the item's stock row's version (which counts price changes only), in the
     * same statement, so it takes that row's lock: a buy checks the version only once it holds
     * the stock row (buy_local), so a buy that committed first was charged the price in force
     * at its commit (this UPDATE waited for its row lock), and one that comes after this change
     * sees the version moved, reads the new cost and refuses with price_changed. The audit
     * event is written by the same statement, for the row changed only. */
    enum gf_status st = store_write(
        app, "be_patch_item",
        "WITH i AS (UPDATE items SET name = coalesce($3, name),"
        " cost = coalesce($4::bigint, cost), version = version + 1, updated_at = now()"
        " WHERE id = $1::bigint AND version = $2::bigint"
        " RETURNING id, name, cost, " EPOCH_US(
            "updated_at") ", version),"
                          " m AS (UPDATE marketplace_items SET version = version + 1"
                          " WHERE item_id IN (SELECT id FROM i) AND $4::bigint IS NOT NULL),"
                          " e AS (INSERT INTO event_outbox (event_name, correlation_id, payload)"
                          " SELECT '" GF_EVENT_ADMIN_ACTION "', $5::uuid, $6::bytea FROM i)"
                          " SELECT * FROM i",
        6, params, &res, err);
    if (st == GF_EINVAL)
        be_err_set(err, "invalid_field", "the item is not valid");
    if (st != GF_OK)
        return st;
    if (PQntuples(res) == 1) {
        relay_kick(app->relay);
        *out = item_json(res, version);
        PQclear(res);
        return *out ? GF_OK : be_db_failed(GF_ENOMEM, err);
    }
    PQclear(res);
    json_t *now = NULL;
    int64_t current;
    st = store_get_item(app, id, &now, &current, err);
    if (st != GF_OK)
        return st;
    json_decref(now);
    gf_counter_add(m_patch_conflicts, 1);
    be_err_set(err, "version_mismatch",
               "item %" PRId64 " has version %" PRId64 ", not %" PRId64 ": read it again", id,
               current, if_match);
    return GF_EPRECONDITION;
}

enum gf_status store_user_exists(struct backend_app *app, int64_t user_id, struct be_err *err)
{
    char u[24];
    snprintf(u, sizeof u, "%" PRId64, user_id);
    const char *params[1] = {u};
    PGresult *res = NULL;
    enum gf_status st = store_exec(
        app, "be_user_exists", "SELECT 1 FROM users WHERE id = $1::bigint", 1, params, &res, err);
    if (st != GF_OK)
        return st;
    bool found = PQntuples(res) == 1;
    PQclear(res);
    if (!found) {
        be_err_set(err, "user_not_found", "no user %" PRId64, user_id);
        return GF_ENOTFOUND;
    }
    return GF_OK;
}

enum gf_status store_create_marketplace_item(struct backend_app *app,
                                             const struct gf_auth_claims *who, int64_t item_id,
                                             int64_t count, const char *cid,
                                             const struct be_idem *idem, int64_t *id,
                                             struct be_err *err)
{
    bool answered;
    char i[24], c[24];
    snprintf(i, sizeof i, "%" PRId64, item_id);
    snprintf(c, sizeof c, "%" PRId64, count);
    const char *params[2] = {i, c};
    struct events_admin a = {.action = EVENTS_ACTION_MARKETPLACE_ITEM_CREATED,
                             .who = who,
                             .item_id = item_id,
                             .count = count};
    enum gf_status st = insert_returning(app, "be_create_marketplace",
                                         "INSERT INTO marketplace_items (item_id, count)"
                                         " SELECT id, $2::bigint FROM items WHERE id = $1::bigint"
                                         " RETURNING id",
                                         2, params, &a, cid, idem, id, &answered, err);
    if (answered)
        return st;
    if (st == GF_ENOTFOUND)
        be_err_set(err, "item_not_found", "no item %" PRId64, item_id);
    else if (st == GF_EEXISTS)
        be_err_set(err, "already_on_marketplace", "item %" PRId64 " is already on the marketplace",
                   item_id);
    else if (st == GF_EINVAL)
        be_err_set(err, "invalid_field", "count is not valid");
    return st;
}

enum gf_status store_create_user_item(struct backend_app *app, const struct gf_auth_claims *who,
                                      int64_t user_id, int64_t item_id, int64_t count,
                                      const char *cid, const struct be_idem *idem, int64_t *id,
                                      struct be_err *err)
{
    bool answered;
    char u[24], i[24], c[24];
    snprintf(u, sizeof u, "%" PRId64, user_id);
    snprintf(i, sizeof i, "%" PRId64, item_id);
    snprintf(c, sizeof c, "%" PRId64, count);
    const char *params[3] = {u, i, c};
    struct events_admin a = {.action = EVENTS_ACTION_USER_ITEM_CREATED,
                             .who = who,
                             .user_id = user_id,
                             .item_id = item_id,
                             .count = count};
    /* The original dropped userId here; it is stored. Unknown user or item: no row. */
    enum gf_status st =
        insert_returning(app, "be_create_user_item",
                         "INSERT INTO user_items (user_id, item_id, count)"
                         " SELECT u.id, i.id, $3::bigint FROM users u, items i"
                         " WHERE u.id = $1::bigint AND i.id = $2::bigint RETURNING id",
                         3, params, &a, cid, idem, id, &answered, err);
    if (answered)
        return st;
    if (st == GF_ENOTFOUND)
        be_err_set(err, "not_found", "no user %" PRId64 " or no item %" PRId64, user_id, item_id);
    else if (st == GF_EEXISTS)
        be_err_set(err, "user_item_exists", "user %" PRId64 " already has item %" PRId64, user_id,
                   item_id);
    else if (st == GF_EINVAL)
        be_err_set(err, "invalid_field", "count is not valid");
    return st;
}
