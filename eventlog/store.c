/* eventlog-db: a batch of events stored in one statement, idempotently, and the pages of the
 * log read back for the HTTP API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"
#include "gf/clock.h"
#include "gf/log.h"

/* ---- storing ---------------------------------------------------------------------------------
 * The batch travels as one jsonb array (one parameter, whatever its size, escaped by jansson)
 * and is inserted by one statement, which is its own transaction: when it returns, the batch
 * is committed. ON CONFLICT DO NOTHING skips what a redelivery brings a second time; the join
 * back to the input tells which records were inserted now, and their lag. */
static const char SQL_STORE[] =
    "WITH x AS ("
    " SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(ord int, event_name text, message_id uuid,"
    "  user_id bigint, text text, correlation_id uuid, data jsonb, occurred_us bigint)),"
    " ins AS ("
    "  INSERT INTO event (event_name, message_id, user_id, text, correlation_id, data,"
    "                     occurred_at)"
    "  SELECT event_name, message_id, user_id, text, correlation_id, data,"
    "         timestamptz 'epoch' + occurred_us * interval '1 microsecond'"
    "    FROM x ORDER BY ord"
    "  ON CONFLICT ON CONSTRAINT event_once DO NOTHING"
    "  RETURNING event_name, message_id,"
    "            (extract(epoch FROM stored_at - occurred_at) * 1000000)::bigint AS lag_us)"
    "SELECT x.ord, ins.lag_us FROM ins JOIN x USING (event_name, message_id)";

/* The batch as the statement's parameter. */
static char *batch_json(struct event_record *const *recs, int n)
{
    json_t *arr = json_array();
    for (int i = 0; arr != NULL && i < n; i++) {
        const struct event_record *r = recs[i];
        /* user_id 0: an event about no user (an audited item change), stored NULL. */
        json_t *o = json_pack("{s:i,s:s,s:s,s:o,s:s,s:s,s:O,s:I}", "ord", i, "event_name", r->name,
                              "message_id", r->message_id, "user_id",
                              r->user_id > 0 ? json_integer((json_int_t)r->user_id) : json_null(),
                              "text", r->text, "correlation_id", r->correlation_id, "data", r->data,
                              "occurred_us", (json_int_t)r->occurred_at_us);
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    char *text = arr != NULL ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    return text;
}

enum gf_status store_events(struct gf_db_pool *pool, struct event_record *const *recs, int n)
{
    enum gf_status st = GF_ENOMEM;
    struct gf_db_conn *conn = NULL;
    PGresult *res = NULL;
    char *param = NULL;
    for (int i = 0; i < n; i++) {
        recs[i]->stored = false;
        recs[i]->lag_us = 0;
    }
    if (n == 0)
        return GF_OK;
    param = batch_json(recs, n);
    if (param == NULL) {
        GF_ERROR("store out of memory for a batch of %d events", n);
        goto out;
    }
    st = gf_db_acquire(pool, &conn);
    if (st != GF_OK)
        goto out;
    const char *params[] = {param};
    st = gf_db_exec(conn, "store_events", SQL_STORE, 1, params, &res);
    if (st != GF_OK)
        goto out;
    for (int row = 0; row < PQntuples(res); row++) {
        int ord = atoi(PQgetvalue(res, row, 0));
        if (ord < 0 || ord >= n) {
            GF_ERROR("store unexpected answer ord=%d n=%d", ord, n);
            continue;
        }
        recs[ord]->stored = true;
        recs[ord]->lag_us = strtoll(PQgetvalue(res, row, 1), NULL, 10);
    }
out:
    PQclear(res);
    if (conn != NULL)
        gf_db_release(pool, conn);
    free(param);
    return st;
}

/* ---- reading ---------------------------------------------------------------------------------
 * One statement per shape of the query, so each is planned for its own index. Parameters:
 * $1 limit, then those present in the order after, user_id, correlation_id. */
#define LIST_COLS                                                                                  \
    "SELECT id, event_name, user_id, text, correlation_id,"                                        \
    " (extract(epoch FROM occurred_at) * 1000000)::bigint,"                                        \
    " (extract(epoch FROM stored_at) * 1000000)::bigint, data FROM event "
#define NEWEST " ORDER BY id DESC LIMIT $1"
#define FORWARD " ORDER BY id LIMIT $1"

/* [forward][by user][by correlation id] */
static const char *const list_sql[2][2][2] = {
    {{LIST_COLS NEWEST, LIST_COLS "WHERE correlation_id = $2" NEWEST},
     {LIST_COLS "WHERE user_id = $2" NEWEST,
      LIST_COLS "WHERE user_id = $2 AND correlation_id = $3" NEWEST}},
    {{LIST_COLS "WHERE id > $2" FORWARD, LIST_COLS "WHERE id > $2 AND correlation_id = $3" FORWARD},
     {LIST_COLS "WHERE id > $2 AND user_id = $3" FORWARD,
      LIST_COLS "WHERE id > $2 AND user_id = $3 AND correlation_id = $4" FORWARD}},
};
static const char *const list_names[2][2][2] = {
    {{"list_newest", "list_newest_c"}, {"list_newest_u", "list_newest_uc"}},
    {{"list_after", "list_after_c"}, {"list_after_u", "list_after_uc"}},
};

static json_t *row_json(const PGresult *res, int row)
{
    char occurred[25], stored[25];
    gf_iso8601_ms(strtoll(PQgetvalue(res, row, 5), NULL, 10), occurred);
    gf_iso8601_ms(strtoll(PQgetvalue(res, row, 6), NULL, 10), stored);
    json_t *data = json_loads(PQgetvalue(res, row, 7), JSON_DECODE_ANY, NULL);
    /* userId null: an event about no user (an audited item change), which only admins see. */
    json_t *user = PQgetisnull(res, row, 2)
                       ? json_null()
                       : json_integer((json_int_t)strtoll(PQgetvalue(res, row, 2), NULL, 10));
    return json_pack("{s:I,s:s,s:o,s:s,s:s,s:s,s:s,s:o}", "id",
                     (json_int_t)strtoll(PQgetvalue(res, row, 0), NULL, 10), "event",
                     PQgetvalue(res, row, 1), "userId", user, "text", PQgetvalue(res, row, 3),
                     "correlationId", PQgetvalue(res, row, 4), "occurredAt", occurred, "storedAt",
                     stored, "data", data != NULL ? data : json_null());
}

enum gf_status store_list(struct gf_db_pool *pool, const struct events_query *q,
                          json_t **events_out, int64_t *first_id, int64_t *last_id)
{
    enum gf_status st;
    struct gf_db_conn *conn = NULL;
    PGresult *res = NULL;
    json_t *events = NULL;
    char limit[24], after[24], user[24];
    const char *params[4];
    int np = 0;
    bool forward = q->after >= 0, by_user = q->user_id > 0, by_cid = q->has_correlation_id;
    snprintf(limit, sizeof limit, "%lld", (long long)q->limit);
    params[np++] = limit;
    if (forward) {
        snprintf(after, sizeof after, "%lld", (long long)q->after);
        params[np++] = after;
    }
    if (by_user) {
        snprintf(user, sizeof user, "%lld", (long long)q->user_id);
        params[np++] = user;
    }
    if (by_cid)
        params[np++] = q->correlation_id;

    st = gf_db_acquire(pool, &conn);
    if (st != GF_OK)
        goto out;
    st = gf_db_exec(conn, list_names[forward][by_user][by_cid], list_sql[forward][by_user][by_cid],
                    np, params, &res);
    if (st != GF_OK)
        goto out;
    st = GF_ENOMEM;
    events = json_array();
    if (events == NULL)
        goto out;
    int rows = PQntuples(res);
    for (int row = 0; row < rows; row++) {
        if (json_array_append_new(events, row_json(res, row)) != 0)
            goto out;
    }
    *first_id = rows > 0 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    *last_id = rows > 0 ? strtoll(PQgetvalue(res, rows - 1, 0), NULL, 10) : 0;
    *events_out = events;
    events = NULL;
    st = GF_OK;
out:
    json_decref(events);
    PQclear(res);
    if (conn != NULL)
        gf_db_release(pool, conn);
    return st;
}
