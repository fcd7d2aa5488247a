/* gxp-db's subscription to backend-db's decisions. Created by gxp itself, idempotently,
 * with back-off until backend-db answers, so any start order works; then watched every second:
 * it is "streaming" only when it exists and is enabled, its table is in state 'r' (copied and
 * followed), an apply worker runs and that worker has not been failing lately (the error
 * counts of pg_stat_subscription_stats did not grow). That state gates gxp's /readyz and is
 * shown by the metrics gxp_subscription_ready and gxp_subscription_state{state}.
 *
 * A subscription created (or a table added by a refresh) copies backend-db's whole
 * transaction_outbox into gxp-db's replica. If the replica still holds the rows of an earlier
 * subscription, the copy fails on the primary key and is retried for ever. So the replica is
 * emptied first. That loses nothing: the replica is only a carrier, each of its rows fired
 * gxp_on_decision when it arrived, and the copy fires it again for every row, where
 * gxp_apply_decision answers 'duplicate' for a decision already recorded (applied once per
 * correlation id), retries one recorded as an error, and applies one never received. We do not
 * create it with copy_data = false instead: the decisions committed on backend-db between the
 * old slot's last confirmed position and the new slot's creation would never arrive (a PENDING
 * transaction would wait for the resolver, a 'failed' decision for an id never prepared would
 * be missed, letting its late prepare through).
 *
 * The connection gxp-db opens to backend-db carries TCP keepalives and a TCP user timeout (added
 * unless GXP_PUBLISHER_CONNINFO sets them), so a cut replication link is noticed in seconds,
 * not hours; an existing subscription whose conninfo differs from the one gxp builds (an older
 * version's, a changed password) is altered to it.
 *
 * On PostgreSQL 15 only a superuser may create or alter a subscription and read its conninfo:
 * with GXP_SUBSCRIPTION_ADMIN_URL set, every statement here runs on a connection of its own as
 * that role (gxp_subscription_admin, sql/roles/roles.sql), while the ledger's connections use
 * GXP_DB_URL's least-privileged role; without it, on GXP_DB_URL's pool as before.
 *
 * CREATE/ALTER SUBSCRIPTION cannot run in a transaction block: a session advisory lock keeps
 * two replicas (and scripts/replication-recover.sh) from changing it at once. The conninfo may
 * hold a password: it goes into no log line, gxp's or (through the statement's text) gxp-db's. */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gf/clock.h"
#include "gf/log.h"
#include "gf/metrics.h"
#include "gxp.h"

#define SUB_NAME "transaction_outbox_sub"
#define PUB_NAME "transaction_outbox_pub"
#define SUB_LOCK "SELECT pg_advisory_lock(72707, 2)"
#define SUB_UNLOCK "SELECT pg_advisory_unlock(72707, 2)"
#define CHECK_INTERVAL_MS 1000 /* how often the subscription's state is read */
/* The apply worker exits on an error and is started again after wal_retrieve_retry_interval
 * (5 s by default): an error count that grew within this window means it keeps failing. */
#define STALL_WINDOW_MS 15000
#define ALTER_EVERY_MS 60000 /* a conninfo is altered at most this often (two configs flapping) */
/* The server logs a failed statement's text (log_min_error_statement), every DDL with
 * log_statement=ddl and slow ones with log_min_duration_*: not CREATE SUBSCRIPTION, whose
 * conninfo may hold a password. Superuser settings, as CREATE SUBSCRIPTION is on PG 15. */
#define LOG_QUIET                                                                                  \
    "SET log_min_error_statement = panic; SET log_statement = none;"                               \
    " SET log_min_duration_statement = -1; SET log_min_duration_sample = -1"
#define LOG_RESET                                                                                  \
    "RESET log_min_error_statement; RESET log_statement; RESET log_min_duration_statement;"        \
    " RESET log_min_duration_sample"

/* TCP settings of the replication link, each added unless the configured conninfo has it:
 * a silent peer is dropped after ~5 + 3 × 2 s of keepalives, or 10 s of unacknowledged data. */
static const char *const link_params[][2] = {
    {"keepalives", "1"},       {"keepalives_idle", "5"},      {"keepalives_interval", "2"},
    {"keepalives_count", "3"}, {"tcp_user_timeout", "10000"}, {"connect_timeout", "10"},
};

struct subscription {
    struct gxp_app *app;
    pthread_t thread;
    char *conninfo;      /* what CREATE SUBSCRIPTION gets: the link's settings, then the password */
    int64_t errors_seen; /* apply + sync errors at the last look; -1 before the first */
    int64_t pid_seen;    /* the apply worker's pid at the last look, 0 = none, -1 = no look yet */
    struct gf_deadline erroring_until; /* STALL_WINDOW_MS after they last grew or the worker went */
    struct gf_deadline next_alter;     /* the conninfo is not altered again before this */
};

/* What the subscription looks like from gxp-db; the order is the order of the checks. */
enum sub_health {
    SUB_MISSING,   /* no subscription */
    SUB_DISABLED,  /* ALTER SUBSCRIPTION ... DISABLE (an operator's choice: never undone here) */
    SUB_NO_TABLE,  /* made before the publication carried transaction_outbox */
    SUB_ERRORING,  /* its workers keep failing: errors counted, or the apply worker gone or
                      replaced, within STALL_WINDOW_MS */
    SUB_COPYING,   /* the table's initial copy is not done (srsubstate is not 'r') */
    SUB_NO_WORKER, /* no apply worker runs, or it is new since the last look (publisher
                      unreachable, worker restarting) */
    SUB_STREAMING,
    SUB_NSTATES
};
static const char *const health_names[SUB_NSTATES] = {
    "missing", "disabled", "no_table", "erroring", "copying", "no_worker", "streaming"};

struct observed {
    bool exists, enabled, conninfo_same;
    char table_state;   /* pg_subscription_rel.srsubstate, 0 when the table is not in it */
    int64_t worker_pid; /* the apply worker's, 0 when none runs */
    int64_t apply_errors, sync_errors; /* pg_stat_subscription_stats */
    int64_t last_msg_age_ms;           /* since the worker last heard backend-db; -1 unknown */
};

/* For /metrics (written by the subscription thread). */
static atomic_int health_now = -1;
static _Atomic int64_t apply_errors_now = -1, sync_errors_now = -1, last_msg_age_now = -1;
static struct gf_counter *m_created, *m_altered;

static bool is_uri(const char *s)
{
    return strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0;
}

/* The conninfo CREATE SUBSCRIPTION gets (pure; unit-tested): conninfo itself when password is
 * NULL or empty; else, for the keyword=value form, conninfo plus ` password='...'` quoted the
 * libpq way (a backslash before each quote and backslash), and for a postgresql:// URI,
 * conninfo plus `?password=...` (or `&`) percent-encoded. Were a password in conninfo too,
 * libpq would use the added one (the last): gxp_config_check refuses that. *out (caller
 * frees) is written on success only. */
GF_TESTABLE GF_MUSTCHECK enum gf_status
subscription_conninfo_build(const char *conninfo, const char *password, char **out)
{
    if (conninfo == NULL)
        return GF_EINVAL;
    if (password == NULL || password[0] == '\0') {
        char *copy = strdup(conninfo);
        if (copy == NULL)
            return GF_ENOMEM;
        *out = copy;
        return GF_OK;
    }
    size_t len = strlen(conninfo), plen = strlen(password);
    char *res = malloc(len + 3 * plen + sizeof " password=''"); /* the worst case of both forms */
    if (res == NULL)
        return GF_ENOMEM;
    memcpy(res, conninfo, len);
    char *p = res + len;
    if (is_uri(conninfo)) {
        /* libpq decodes %XX in a URI's parameters; only the unreserved characters go as is. */
        static const char hex[] = "0123456789ABCDEF";
        const char *q = strchr(conninfo, '?');
        if (q == NULL)
            *p++ = '?';
        else if (conninfo[len - 1] != '?' && conninfo[len - 1] != '&')
            *p++ = '&';
        p = stpcpy(p, "password=");
        for (const unsigned char *c = (const unsigned char *)password; *c; c++) {
            if (isalnum(*c) || *c == '-' || *c == '.' || *c == '_' || *c == '~') {
                *p++ = (char)*c;
            } else {
                *p++ = '%';
                *p++ = hex[*c >> 4];
                *p++ = hex[*c & 15];
            }
        }
    } else {
        p = stpcpy(p, len > 0 ? " password='" : "password='");
        for (const char *c = password; *c; c++) {
            if (*c == '\'' || *c == '\\')
                *p++ = '\\';
            *p++ = *c;
        }
        *p++ = '\'';
    }
    *p = '\0';
    *out = res;
    return GF_OK;
}

/* A copy of text (a server's error message, for a log line) with every occurrence of secret
 * replaced by ****; a plain copy when secret is NULL or empty. NULL when out of memory. */
GF_TESTABLE char *subscription_redact_dup(const char *text, const char *secret)
{
    if (secret == NULL || secret[0] == '\0')
        return strdup(text);
    size_t slen = strlen(secret), n = 0;
    for (const char *c = strstr(text, secret); c != NULL; c = strstr(c + slen, secret))
        n++;
    /* **** may be longer than the secret it replaces. */
    char *res = malloc(strlen(text) + n * 4 + 1);
    if (res == NULL)
        return NULL;
    char *p = res;
    for (const char *c = text;;) {
        const char *hit = strstr(c, secret);
        if (hit == NULL) {
            strcpy(p, c);
            break;
        }
        memcpy(p, c, (size_t)(hit - c));
        p = stpcpy(p + (hit - c), "****");
        c = hit + slen;
    }
    return res;
}

/* conninfo with every setting of link_params it lacks (libpq takes the last of a keyword
 * twice, so a setting of the operator's is never overridden). *out (caller frees). */
static enum gf_status with_link_params(const char *conninfo, char **out)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
    if (opts == NULL) {
        PQfreemem(err);
        return GF_EINVAL;
    }
    size_t n = strlen(conninfo) + 2;
    for (size_t i = 0; i < sizeof link_params / sizeof link_params[0]; i++)
        n += strlen(link_params[i][0]) + strlen(link_params[i][1]) + 2;
    char *res = malloc(n);
    if (res == NULL) {
        PQconninfoFree(opts);
        return GF_ENOMEM;
    }
    bool uri = is_uri(conninfo);
    char *p = stpcpy(res, conninfo);
    for (size_t i = 0; i < sizeof link_params / sizeof link_params[0]; i++) {
        bool set = false;
        for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
            if (strcmp(o->keyword, link_params[i][0]) == 0 && o->val != NULL)
                set = true;
        }
        if (set)
            continue;
        if (uri) {
            /* The first parameter after '?', the next ones after '&'. */
            char last = p > res ? p[-1] : '\0';
            if (strchr(res, '?') == NULL)
                *p++ = '?';
            else if (last != '?' && last != '&')
                *p++ = '&';
        } else if (p > res) {
            *p++ = ' ';
        }
        p += sprintf(p, "%s=%s", link_params[i][0], link_params[i][1]);
    }
    PQconninfoFree(opts);
    *out = res;
    return GF_OK;
}

static enum gf_status observe(struct subscription *s, struct gf_db_conn *c, struct observed *o)
{
    PGresult *res = NULL;
    enum gf_status st = gf_db_exec(
        c, "gxp_sub_observe",
        "SELECT s.subenabled, s.subconninfo,"
        " (SELECT r.srsubstate FROM pg_subscription_rel r WHERE r.srsubid = s.oid"
        "     AND r.srrelid = 'public.transaction_outbox'::regclass),"
        " coalesce((SELECT w.pid FROM pg_stat_subscription w"
        "            WHERE w.subid = s.oid AND w.relid IS NULL), 0),"
        " coalesce(e.apply_error_count, 0), coalesce(e.sync_error_count, 0),"
        " (SELECT (extract(epoch FROM now() - w.last_msg_receipt_time) * 1000)::bigint"
        "    FROM pg_stat_subscription w WHERE w.subid = s.oid AND w.relid IS NULL)"
        " FROM pg_subscription s LEFT JOIN pg_stat_subscription_stats e ON e.subid = s.oid"
        " WHERE s.subname = '" SUB_NAME "' AND s.subdbid = (SELECT oid FROM pg_database"
        "                                                  WHERE datname = current_database())",
        0, NULL, &res);
    if (st != GF_OK)
        return st;
    *o = (struct observed){.last_msg_age_ms = -1};
    if (PQntuples(res) > 0) {
        o->exists = true;
        o->enabled = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        o->conninfo_same = strcmp(PQgetvalue(res, 0, 1), s->conninfo) == 0;
        o->table_state = PQgetisnull(res, 0, 2) ? 0 : PQgetvalue(res, 0, 2)[0];
        o->worker_pid = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
        o->apply_errors = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
        o->sync_errors = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
        if (!PQgetisnull(res, 0, 6))
            o->last_msg_age_ms = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
    }
    PQclear(res);
    return GF_OK;
}

/* "<prefix> '<conninfo>'<suffix>" with the conninfo as an escaped literal (DDL takes no
 * parameters). NULL when out of memory. */
static char *ddl_with_conninfo(struct gf_db_conn *c, const char *conninfo, const char *prefix,
                               const char *suffix)
{
    char *lit = PQescapeLiteral(gf_db_pgconn(c), conninfo, strlen(conninfo));
    if (lit == NULL)
        return NULL;
    size_t n = strlen(prefix) + strlen(lit) + strlen(suffix) + 2;
    char *text = malloc(n);
    if (text != NULL)
        snprintf(text, n, "%s %s%s", prefix, lit, suffix);
    PQfreemem(lit);
    return text;
}

enum ddl { DDL_CREATE, DDL_CONNECTION };

/* CREATE SUBSCRIPTION, or ALTER SUBSCRIPTION ... CONNECTION, with s->conninfo quoted by
 * PQescapeLiteral: the one statement that carries text of our own making, sent with the
 * server's logging of it turned off (the conninfo may hold a password). */
static enum gf_status run_ddl(struct subscription *s, struct gf_db_conn *c, enum ddl which)
{
    struct gxp_app *app = s->app;
    PGconn *pg = gf_db_pgconn(c);
    char *text =
        which == DDL_CREATE
            ? ddl_with_conninfo(c, s->conninfo, "CREATE SUBSCRIPTION " SUB_NAME " CONNECTION",
                                " PUBLICATION " PUB_NAME)
            : ddl_with_conninfo(c, s->conninfo, "ALTER SUBSCRIPTION " SUB_NAME " CONNECTION", "");
    if (text == NULL)
        return GF_ENOMEM;
    /* Were the settings refused (another PostgreSQL's rules), gf_db has said so: go on. */
    bool quiet = gf_db_exec_simple(c, LOG_QUIET) == GF_OK;
    PGresult *res = PQexec(pg, text);
    free(text);
    if (quiet) {
        enum gf_status rs = gf_db_exec_simple(c, LOG_RESET);
        (void)rs; /* a connection that cannot take a RESET is not kept by the pool */
    }
    enum gf_status st;
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        st = GF_OK;
    } else if (gf_db_sqlstate_is(res, "42710")) {
        st = GF_OK; /* another replica created it first */
    } else {
        st = gf_db_status(res, pg);
        if (st != GF_EUNAVAILABLE && st != GF_ETIMEOUT)
            st = GF_EUNAVAILABLE; /* the publisher side is not ready: try again later */
        /* The server's message is about connecting with our conninfo: were it ever to quote
         * the password, the log line must not. */
        char *msg =
            subscription_redact_dup(PQresultErrorMessage(res), app->cfg->publisher_password);
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        GF_LOG_RL(GF_LOG_WARN, 10000,
                  "subscription %s failed (backend-db down, its publication missing, or a slot"
                  " of that name left there: scripts/replication-recover.sh) sqlstate=%s error=%s",
                  which == DDL_CREATE ? "create" : "conninfo update", state ? state : "-",
                  msg ? msg : "(out of memory)");
        free(msg);
    }
    PQclear(res);
    return st;
}

/* Empties gxp-db's replica before a copy of backend-db's table into it (see the top of the
 * file: the copy applies every decision again, idempotently). Only ever while no
 * subscription writes to it: none exists, or it does not carry the table yet. */
static enum gf_status empty_replica(struct gf_db_conn *c)
{
    enum gf_status st = gf_db_exec_simple(c, "TRUNCATE transaction_outbox");
    if (st == GF_OK)
        GF_LOG_RL(GF_LOG_INFO, 60000,
                  "subscription replica emptied before its copy table=transaction_outbox");
    return st;
}

/* Brings the subscription into shape (under the advisory lock): creates it when missing,
 * refreshes it when it lacks the table, aligns its conninfo. GF_OK when nothing is left to do
 * here (what remains, the copy and the worker, is PostgreSQL's). */
static enum gf_status ensure(struct subscription *s, struct gf_db_conn *c)
{
    struct observed o;
    enum gf_status st = observe(s, c, &o);
    if (st != GF_OK)
        return st;
    if (!o.exists) {
        st = empty_replica(c);
        if (st == GF_OK)
            st = run_ddl(s, c, DDL_CREATE);
        if (st == GF_OK) {
            GF_INFO("subscription created name=" SUB_NAME);
            gf_counter_add(m_created, 1);
        }
        return st;
    }
    /* The conninfo first: a refresh connects with it (an older version's may name a role that
     * can no longer log in). */
    if (!o.conninfo_same && gf_deadline_passed(s->next_alter)) {
        s->next_alter = gf_deadline_in_ms(ALTER_EVERY_MS);
        st = run_ddl(s, c, DDL_CONNECTION);
        if (st != GF_OK)
            return st;
        GF_INFO("subscription conninfo updated (link keepalives, role, password) name=" SUB_NAME);
        gf_counter_add(m_altered, 1);
    }
    if (o.table_state == 0) {
        st = empty_replica(c);
        if (st == GF_OK) /* a failure (backend-db down) is logged by gf_db: retried later */
            st = gf_db_exec_simple(c, "ALTER SUBSCRIPTION " SUB_NAME " REFRESH PUBLICATION");
        if (st != GF_OK)
            return st;
        /* Still without the table: backend-db's publication does not carry it yet. */
        st = observe(s, c, &o);
        if (st == GF_OK && o.exists && o.table_state == 0) {
            GF_LOG_RL(GF_LOG_WARN, 60000,
                      "subscription waits for backend-db's publication " PUB_NAME
                      " to carry transaction_outbox");
            return GF_EUNAVAILABLE;
        }
        return st;
    }
    return st;
}

/* The state from what was observed, keeping track of the error counts and of the apply worker
 * between two looks. Not every failure is counted in pg_stat_subscription_stats: a worker that
 * cannot start streaming (its slot lost, say) exits before the counted part and is started
 * again every wal_retrieve_retry_interval, so a worker that went away or was replaced since
 * the last look counts as a failure too (a restart of backend-db, an ALTER, also does: red
 * for STALL_WINDOW_MS after). */
static enum sub_health judge(struct subscription *s, const struct observed *o)
{
    int64_t errors = o->exists ? o->apply_errors + o->sync_errors : -1;
    if (errors >= 0 && s->errors_seen >= 0 && errors > s->errors_seen)
        s->erroring_until = gf_deadline_in_ms(STALL_WINDOW_MS);
    else if (errors < s->errors_seen)
        s->erroring_until = (struct gf_deadline){0}; /* a new subscription, or reset statistics */
    s->errors_seen = errors;
    int64_t pid = o->exists ? o->worker_pid : 0;
    if (o->exists && o->enabled && s->pid_seen > 0 && pid != s->pid_seen)
        s->erroring_until = gf_deadline_in_ms(STALL_WINDOW_MS);
    /* A worker counts once it outlived one look (one that cannot stream lives milliseconds),
     * or when this process sees it for the first time. */
    bool settled = pid != 0 && (pid == s->pid_seen || s->pid_seen < 0);
    s->pid_seen = pid;
    if (!o->exists)
        return SUB_MISSING;
    if (!o->enabled)
        return SUB_DISABLED;
    if (o->table_state == 0)
        return SUB_NO_TABLE;
    if (!gf_deadline_passed(s->erroring_until))
        return SUB_ERRORING;
    if (o->table_state != 'r')
        return SUB_COPYING;
    if (!settled)
        return SUB_NO_WORKER;
    return SUB_STREAMING;
}

/* One look (and, when needed, one attempt to fix it). GF_OK when ensure had nothing to do or
 * did it; the state goes to *h either way (SUB_NSTATES when gxp-db did not answer). */
static enum gf_status check(struct subscription *s, enum sub_health *h)
{
    struct gxp_app *app = s->app;
    struct gf_db_conn *c = NULL;
    *h = SUB_NSTATES;
    struct gf_db_pool *pool = app->admin_pool != NULL ? app->admin_pool : app->pool;
    enum gf_status st = gf_db_acquire(pool, &c);
    if (st != GF_OK)
        return st;
    struct observed o;
    st = observe(s, c, &o);
    bool act = st == GF_OK && (!o.exists || o.table_state == 0 ||
                               (!o.conninfo_same && gf_deadline_passed(s->next_alter)));
    if (act) {
        st = gf_db_exec_simple(c, SUB_LOCK);
        if (st == GF_OK) {
            st = ensure(s, c);
            enum gf_status ul = gf_db_exec_simple(c, SUB_UNLOCK);
            (void)ul; /* a lost connection drops the lock with it */
        }
        enum gf_status again = observe(s, c, &o);
        if (st == GF_OK)
            st = again;
        else if (again != GF_OK)
            o.exists = false; /* unknown: judged below only when the look worked */
    }
    if (st == GF_OK || act) {
        *h = judge(s, &o);
        atomic_store(&apply_errors_now, o.exists ? o.apply_errors : -1);
        atomic_store(&sync_errors_now, o.exists ? o.sync_errors : -1);
        atomic_store(&last_msg_age_now, o.exists ? o.last_msg_age_ms : -1);
    }
    gf_db_release(pool, c);
    return st;
}

static void *loop(void *arg)
{
    struct subscription *s = arg;
    struct gxp_app *app = s->app;
    struct gf_backoff bo;
    gf_backoff_init(&bo, 200, 10000);
    int was = -1;
    while (!app->stopping) {
        int64_t wait = CHECK_INTERVAL_MS;
        if (atomic_load(&app->migrated)) {
            enum sub_health h;
            enum gf_status st = check(s, &h);
            atomic_store(&app->subscribed, h == SUB_STREAMING);
            if (h != SUB_NSTATES) /* else gxp-db did not answer: the state is unknown */
                atomic_store(&health_now, (int)h);
            if (h != SUB_NSTATES && (int)h != was) {
                if (h == SUB_STREAMING)
                    GF_INFO("subscription streaming name=" SUB_NAME);
                else
                    GF_WARN("subscription not streaming name=" SUB_NAME " state=%s",
                            health_names[h]);
                was = (int)h;
            }
            if (st == GF_OK)
                gf_backoff_reset(&bo);
            else
                wait = gf_backoff_next(&bo);
        } else {
            wait = 200;
        }
        gf_sleep_ms(wait, &app->stopping);
    }
    return NULL;
}

static double state_gauge(void *arg)
{
    int now = atomic_load(&health_now);
    if (now < 0)
        return NAN;
    return now == (int)(intptr_t)arg ? 1 : 0;
}

static double count_gauge(void *arg)
{
    int64_t v = atomic_load((_Atomic int64_t *)arg);
    return v < 0 ? NAN : (double)v;
}

static double age_gauge(void *arg)
{
    (void)arg;
    int64_t ms = atomic_load(&last_msg_age_now);
    return ms < 0 ? NAN : (double)ms / 1000;
}

static void metrics_init(void)
{
    for (int i = 0; i < SUB_NSTATES; i++) {
        char labels[48];
        snprintf(labels, sizeof labels, "state=\"%s\"", health_names[i]);
        gf_metrics_gauge_fn(
            "gxp_subscription_state",
            "1 for the state of transaction_outbox_sub seen from gxp-db (streaming: "
            "table copied, apply worker running, no recent error); NaN before "
            "the first look",
            labels, state_gauge, (void *)(intptr_t)i);
    }
    gf_metrics_gauge_fn("gxp_subscription_apply_errors",
                        "errors of the subscription's apply worker (pg_stat_subscription_stats)",
                        "", count_gauge, (void *)&apply_errors_now);
    gf_metrics_gauge_fn("gxp_subscription_sync_errors",
                        "errors of its table copy (pg_stat_subscription_stats)", "", count_gauge,
                        (void *)&sync_errors_now);
    gf_metrics_gauge_fn("gxp_subscription_last_message_age_seconds",
                        "since the apply worker last heard from backend-db (keepalives "
                        "included; NaN without a worker)",
                        "", age_gauge, NULL);
    m_created = gf_metrics_counter("gxp_subscription_created_total",
                                   "times this process created the subscription (its replica "
                                   "emptied first, the table copied again)",
                                   "");
    m_altered = gf_metrics_counter("gxp_subscription_conninfo_updates_total",
                                   "times this process aligned the subscription's conninfo", "");
}

struct subscription *subscription_start(struct gxp_app *app)
{
    metrics_init();
    if (app->cfg->publisher_conninfo == NULL || app->cfg->publisher_conninfo[0] == '\0') {
        GF_WARN("GXP_PUBLISHER_CONNINFO is empty: no subscription, decisions reach gxp only"
                " through the resolver");
        return NULL;
    }
    struct subscription *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->app = app;
    s->errors_seen = -1;
    s->pid_seen = -1;
    char *linked = NULL;
    if (with_link_params(app->cfg->publisher_conninfo, &linked) != GF_OK ||
        subscription_conninfo_build(linked, app->cfg->publisher_password, &s->conninfo) != GF_OK) {
        GF_ERROR("cannot build the subscription's conninfo");
        free(linked);
        free(s);
        return NULL;
    }
    free(linked);
    if (pthread_create(&s->thread, NULL, loop, s) != 0) {
        free(s->conninfo);
        free(s);
        return NULL;
    }
    return s;
}

void subscription_stop(struct subscription *s)
{
    if (s == NULL)
        return;
    pthread_join(s->thread, NULL);
    free(s->conninfo);
    free(s);
}
