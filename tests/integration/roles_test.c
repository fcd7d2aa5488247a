/* Services prove who they are (issue 18): the roles and users the local stack makes, made the
 * same way (tests/harness/pg-cluster.sh --scram and `roles`, sql/roles/roles.sql;
 * tests/harness/rabbitmq.sh `users`, scripts/broker-users.sh) on three clusters and a RabbitMQ
 * node of this test's own (it deletes guest, which the run's shared node keeps), then proven:
 * each service's role runs its migrations and uses its tables, and can do nothing else; the
 * replication role streams the publication and reads nothing else; TCP wants a scram-sha-256
 * password; each broker user can do its service's job and not another's; guest cannot log in. */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <libpq-fe.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "gf/amqp.h"
#include "gf/db.h"
#include "gf/migrate.h"
#include "harness.h"

extern const struct gf_migration backend_migrations[], gxp_migrations[], eventlog_migrations[];
extern const int backend_migrations_count, gxp_migrations_count, eventlog_migrations_count;

#define PG_CLUSTER GF_SOURCE_DIR "/tests/harness/pg-cluster.sh"
#define RABBITMQ GF_SOURCE_DIR "/tests/harness/rabbitmq.sh"

static const char *const secret_names[] = {
    "postgres", "backend",      "gxp",      "gxp_replication", "gxp_subscription_admin",
    "eventlog", "amqp-backend", "amqp-gxp", "amqp-eventlog"};

static struct {
    char secrets[512];
    struct h_pg backend_db, gxp_db, eventlog_db;
    char broker_dir[512];
    int amqp_port;
} W;

static void run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        fail_msg("command failed (%d): %s", rc, cmd);
}

static void secret(const char *name, char *out, size_t n)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s.password", W.secrets, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(out, (int)n, f));
    fclose(f);
}

/* A TCP conninfo for role on pg (password: that role's secret unless pw is given; "" = none). */
static PGconn *tcp_connect(const struct h_pg *pg, const char *role, const char *pw,
                           const char *extra)
{
    char conninfo[1024], pwbuf[128] = "";
    if (pw == NULL) {
        secret(role, pwbuf, sizeof pwbuf);
        pw = pwbuf;
    }
    snprintf(conninfo, sizeof conninfo,
             "host=127.0.0.1 port=%d user=%s dbname=postgres connect_timeout=5 password='%s' %s",
             pg->port, role, pw, extra ? extra : "");
    return PQconnectdb(conninfo);
}

/* The administrator's way in: the socket in the data directory, trusted. */
static PGconn *admin_connect(const struct h_pg *pg)
{
    char conninfo[1024];
    snprintf(conninfo, sizeof conninfo, "host=%s port=%d user=postgres dbname=postgres",
             pg->datadir, pg->port);
    PGconn *c = PQconnectdb(conninfo);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    return c;
}

/* Runs sql; returns its SQLSTATE ("00000" on success) in a static buffer. */
static const char *sql_state(PGconn *c, const char *sql)
{
    static char state[6];
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(state, sizeof state, "%s",
             st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? "00000"
             : s                                             ? s
                                                             : "?????");
    PQclear(r);
    return state;
}

static void sql_ok(PGconn *c, const char *sql)
{
    const char *st = sql_state(c, sql);
    if (strcmp(st, "00000") != 0)
        fail_msg("%s: %s (%s)", sql, st, PQerrorMessage(c));
}

static char *sql_value(PGconn *c, const char *sql)
{
    static char v[256];
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    snprintf(v, sizeof v, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static void apply_roles(const struct h_pg *pg, const char *cluster)
{
    run("bash '%s' roles '%s' %s '%s'", PG_CLUSTER, pg->datadir, cluster, W.secrets);
}

static void migrate_as(const struct h_pg *pg, const char *role, const char *service,
                       const struct gf_migration *m, int n)
{
    char conninfo[256], pw[128];
    secret(role, pw, sizeof pw);
    snprintf(conninfo, sizeof conninfo, "host=127.0.0.1 port=%d user=%s dbname=postgres", pg->port,
             role);
    struct gf_db_pool_options o = {
        .conninfo = conninfo, .password = pw, .size = 1, .acquire_timeout_ms = 5000};
    struct gf_db_pool *pool = gf_db_pool_new(&o);
    assert_non_null(pool);
    struct gf_db_conn *c = NULL;
    assert_int_equal(gf_db_acquire(pool, &c), GF_OK);
    assert_int_equal(gf_migrate(c, service, m, n), GF_OK);
    gf_db_release(pool, c);
    gf_db_pool_free(pool);
}

static int setup(void **state)
{
    (void)state;
    const char *run_dir = h_run_dir();
    assert_non_null(run_dir);
    snprintf(W.secrets, sizeof W.secrets, "%s/secrets", run_dir);
    assert_int_equal(mkdir(W.secrets, 0700), 0);
    for (size_t i = 0; i < sizeof secret_names / sizeof secret_names[0]; i++)
        run("head -c 18 /dev/urandom | base64 | tr '+/' 'xy' | tr -d '\\n' >'%s/%s.password'",
            W.secrets, secret_names[i]);
    run("chmod 600 '%s'/*.password", W.secrets);
    /* The broker first: it boots while the clusters are made. */
    const char *tmp = getenv("GF_TEST_TMP");
    assert_non_null(tmp);
    snprintf(W.broker_dir, sizeof W.broker_dir, "%s/roles-broker", tmp);
    char cmd[1024], port[32] = "";
    snprintf(cmd, sizeof cmd, "bash '%s' start '%s' 0", RABBITMQ, W.broker_dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char *got = fgets(port, sizeof port, p);
    assert_int_equal(pclose(p), 0);
    assert_non_null(got);
    W.amqp_port = atoi(port);
    run("bash '%s' users '%s' / '%s'", RABBITMQ, W.broker_dir, W.secrets);

    assert_int_equal(h_pg_start(&W.backend_db, "backend-db", H_PG_LOGICAL | H_PG_SCRAM), 0);
    assert_int_equal(h_pg_start(&W.gxp_db, "gxp-db", H_PG_SUBSCRIBER | H_PG_SCRAM), 0);
    assert_int_equal(h_pg_start(&W.eventlog_db, "eventlog-db", H_PG_SCRAM), 0);
    /* backend-db as a new stack makes it: roles first, then the service's migrations. */
    apply_roles(&W.backend_db, "backend-db");
    migrate_as(&W.backend_db, "backend", "backend", backend_migrations, backend_migrations_count);
    /* gxp-db and eventlog-db as data from before roles: the superuser's migrations, then the
     * roles, which hand every object over; then the service's own start. */
    char conninfo[600];
    const struct h_pg *old[] = {&W.gxp_db, &W.eventlog_db};
    for (int i = 0; i < 2; i++) {
        snprintf(conninfo, sizeof conninfo, "host=%s port=%d user=postgres dbname=postgres",
                 old[i]->datadir, old[i]->port);
        struct gf_db_pool_options o = {.conninfo = conninfo, .size = 1, .acquire_timeout_ms = 5000};
        struct gf_db_pool *pool = gf_db_pool_new(&o);
        struct gf_db_conn *c = NULL;
        assert_int_equal(gf_db_acquire(pool, &c), GF_OK);
        if (i == 0)
            assert_int_equal(gf_migrate(c, "gxp", gxp_migrations, gxp_migrations_count), GF_OK);
        else
            assert_int_equal(
                gf_migrate(c, "eventlog", eventlog_migrations, eventlog_migrations_count), GF_OK);
        gf_db_release(pool, c);
        gf_db_pool_free(pool);
    }
    apply_roles(&W.gxp_db, "gxp-db");
    apply_roles(&W.eventlog_db, "eventlog-db");
    migrate_as(&W.gxp_db, "gxp", "gxp", gxp_migrations, gxp_migrations_count);
    migrate_as(&W.eventlog_db, "eventlog", "eventlog", eventlog_migrations,
               eventlog_migrations_count);
    /* Every `up` applies them again: idempotent. */
    apply_roles(&W.backend_db, "backend-db");
    apply_roles(&W.gxp_db, "gxp-db");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (W.broker_dir[0])
        run("bash '%s' stop '%s'", RABBITMQ, W.broker_dir);
    h_cleanup_all();
    return 0;
}

static void service_roles_own_and_use_their_tables(void **state)
{
    (void)state;
    PGconn *b = tcp_connect(&W.backend_db, "backend", NULL, NULL);
    assert_int_equal(PQstatus(b), CONNECTION_OK);
    sql_ok(b, "INSERT INTO users (name) VALUES ('roles-test')");
    assert_string_equal(sql_value(b, "SELECT count(*) FROM users"), "1");
    sql_ok(b, "INSERT INTO transaction_outbox (correlation_id, state)"
              " VALUES ('8d0c1f34-5c1e-4d6b-9a52-0d6b6d1e4a01', 'failed')");
    PQfinish(b);
    PGconn *g = tcp_connect(&W.gxp_db, "gxp", NULL, NULL);
    assert_int_equal(PQstatus(g), CONNECTION_OK);
    sql_ok(g, "INSERT INTO balance (user_id, balance) VALUES (1, 10)");
    assert_string_equal(sql_value(g, "SELECT gxp_prepare(1, 1::smallint, 5, "
                                     "'8d0c1f34-5c1e-4d6b-9a52-0d6b6d1e4a02', now())"),
                        "0");
    PQfinish(g);
    PGconn *e = tcp_connect(&W.eventlog_db, "eventlog", NULL, NULL);
    assert_int_equal(PQstatus(e), CONNECTION_OK);
    sql_ok(e, "INSERT INTO event (event_name, message_id, user_id, text, correlation_id, data,"
              " occurred_at) VALUES ('BuyItemEvent', gen_random_uuid(), 1, 't',"
              " gen_random_uuid(), '{}', now())");
    PQfinish(e);
    /* Nothing in public is the superuser's any more (the old data was handed over). */
    const struct h_pg *pgs[] = {&W.backend_db, &W.gxp_db, &W.eventlog_db};
    const char *owners[] = {"backend", "gxp", "eventlog"};
    for (int i = 0; i < 3; i++) {
        PGconn *a = admin_connect(pgs[i]);
        char q[512];
        snprintf(q, sizeof q,
                 "SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
                 " AND relowner <> '%s'::regrole) + (SELECT count(*) FROM pg_proc WHERE"
                 " pronamespace = 'public'::regnamespace AND proowner <> '%s'::regrole)",
                 owners[i], owners[i]);
        assert_string_equal(sql_value(a, q), "0");
        PQfinish(a);
    }
}

static void service_roles_can_do_nothing_else(void **state)
{
    (void)state;
    /* A service's role exists on its own cluster only. */
    PGconn *x = tcp_connect(&W.gxp_db, "backend", NULL, NULL);
    assert_int_not_equal(PQstatus(x), CONNECTION_OK);
    PQfinish(x);
    x = tcp_connect(&W.eventlog_db, "backend", NULL, NULL);
    assert_int_not_equal(PQstatus(x), CONNECTION_OK);
    PQfinish(x);
    PGconn *b = tcp_connect(&W.backend_db, "backend", NULL, NULL);
    assert_int_equal(PQstatus(b), CONNECTION_OK);
    assert_string_equal(sql_state(b, "CREATE ROLE intruder"), "42501");
    assert_string_equal(sql_state(b, "CREATE DATABASE intruder"), "42501");
    assert_string_equal(sql_state(b, "SELECT * FROM pg_authid"), "42501");
    assert_string_equal(sql_state(b, "CREATE TABLE pg_catalog.intruder (x int)"), "42501");
    assert_string_equal(sql_state(b, "ALTER SYSTEM SET work_mem = '1GB'"), "42501");
    assert_string_equal(sql_state(b, "COPY users TO PROGRAM 'true'"), "42501");
    assert_string_equal(sql_state(b, "SELECT pg_read_file('postgresql.conf')"), "42501");
    PQfinish(b);
    PGconn *g = tcp_connect(&W.gxp_db, "gxp", NULL, NULL);
    assert_int_equal(PQstatus(g), CONNECTION_OK);
    /* Why gxp's subscription manager has a role of its own (PostgreSQL 15). */
    assert_string_equal(sql_state(g, "SELECT subconninfo FROM pg_subscription"), "42501");
    assert_string_equal(sql_state(g, "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p"
                                     " WITH (connect = false)"),
                        "42501");
    PQfinish(g);
    PGconn *e = tcp_connect(&W.eventlog_db, "eventlog", NULL, NULL);
    assert_int_equal(PQstatus(e), CONNECTION_OK);
    assert_string_equal(sql_state(e, "CREATE SCHEMA intruder"), "42501");
    PQfinish(e);
}

static void replication_role_streams_the_publication_only(void **state)
{
    (void)state;
    PGconn *r = tcp_connect(&W.backend_db, "gxp_replication", NULL, NULL);
    assert_int_equal(PQstatus(r), CONNECTION_OK);
    sql_ok(r, "SELECT * FROM transaction_outbox");
    assert_string_equal(sql_state(r, "SELECT * FROM users"), "42501");
    assert_string_equal(sql_state(r, "SELECT * FROM event_outbox"), "42501");
    assert_string_equal(sql_state(r, "INSERT INTO transaction_outbox (correlation_id, state)"
                                     " VALUES (gen_random_uuid(), 'failed')"),
                        "42501");
    assert_string_equal(sql_state(r, "DELETE FROM transaction_outbox"), "42501");
    assert_string_equal(sql_state(r, "CREATE TABLE intruder (x int)"), "42501");
    PQfinish(r);
    /* The real thing: gxp-db subscribes as gxp_replication (created by gxp's subscription
     * role) and the decision written above arrives and is recorded. */
    char pw[128], q[1024];
    secret("gxp_replication", pw, sizeof pw);
    PGconn *s = tcp_connect(&W.gxp_db, "gxp_subscription_admin", NULL, NULL);
    assert_int_equal(PQstatus(s), CONNECTION_OK);
    snprintf(q, sizeof q,
             "CREATE SUBSCRIPTION transaction_outbox_sub CONNECTION 'host=127.0.0.1 port=%d"
             " user=gxp_replication dbname=postgres password=%s' PUBLICATION"
             " transaction_outbox_pub",
             W.backend_db.port, pw);
    sql_ok(s, q);
    int arrived = 0;
    for (int i = 0; i < 200 && !arrived; i++) {
        arrived = strcmp(sql_value(s, "SELECT count(*) FROM decision WHERE correlation_id ="
                                      " '8d0c1f34-5c1e-4d6b-9a52-0d6b6d1e4a01'"),
                         "1") == 0;
        if (!arrived)
            usleep(100 * 1000);
    }
    assert_true(arrived);
    sql_ok(s, "ALTER SUBSCRIPTION transaction_outbox_sub DISABLE");
    sql_ok(s, "ALTER SUBSCRIPTION transaction_outbox_sub SET (slot_name = NONE)");
    sql_ok(s, "DROP SUBSCRIPTION transaction_outbox_sub");
    PQfinish(s);
}

static void tcp_wants_a_scram_password(void **state)
{
    (void)state;
    const char *roles[] = {"backend", "gxp_replication", "postgres"};
    for (int i = 0; i < 3; i++) {
        PGconn *c = tcp_connect(&W.backend_db, roles[i], "", NULL);
        assert_int_not_equal(PQstatus(c), CONNECTION_OK);
        PQfinish(c);
        c = tcp_connect(&W.backend_db, roles[i], "wrong", NULL);
        assert_int_not_equal(PQstatus(c), CONNECTION_OK);
        PQfinish(c);
    }
    /* postgres over TCP with its password (secrets/pgpass in the stack). */
    PGconn *c = tcp_connect(&W.backend_db, "postgres", NULL, NULL);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PQfinish(c);
    /* A role whose password is stored as md5 cannot log in, even with the right password. */
    PGconn *a = admin_connect(&W.backend_db);
    sql_ok(a, "SET password_encryption = 'md5'");
    sql_ok(a, "CREATE ROLE md5_user LOGIN PASSWORD 'md5-secret'");
    c = tcp_connect(&W.backend_db, "md5_user", "md5-secret", NULL);
    assert_int_not_equal(PQstatus(c), CONNECTION_OK);
    PQfinish(c);
    sql_ok(a, "DROP ROLE md5_user");
    /* Stored verifiers are scram-sha-256. */
    assert_string_equal(sql_value(a, "SELECT count(*) FROM pg_authid WHERE rolname IN"
                                     " ('backend', 'gxp_replication')"
                                     " AND rolpassword LIKE 'SCRAM-SHA-256$%'"),
                        "2");
    PQfinish(a);
}

/* ---- RabbitMQ --------------------------------------------------------------------------- */

/* Logs in as user (password: its secret, or pw); NULL when refused. */
static amqp_connection_state_t amqp_login_as(const char *user, const char *pw)
{
    char pwbuf[128], name[64];
    if (pw == NULL) {
        snprintf(name, sizeof name, "amqp-%s", user);
        secret(name, pwbuf, sizeof pwbuf);
        pw = pwbuf;
    }
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    struct timeval tv = {5, 0};
    amqp_set_rpc_timeout(c, &tv);
    if (amqp_socket_open_noblock(s, "127.0.0.1", W.amqp_port, &tv) != AMQP_STATUS_OK)
        fail_msg("cannot reach the broker");
    amqp_rpc_reply_t r = amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, user, pw);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        amqp_destroy_connection(c);
        return NULL;
    }
    amqp_channel_open(c, 1);
    assert_int_equal(amqp_get_rpc_reply(c).reply_type, AMQP_RESPONSE_NORMAL);
    return c;
}

/* 0 when the last synchronous call succeeded, else the channel.close reply code (403 access
 * refused); the channel is opened again. */
static int reply_code(amqp_connection_state_t c)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(c);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    assert_int_equal(r.reply_type, AMQP_RESPONSE_SERVER_EXCEPTION);
    assert_int_equal(r.reply.id, AMQP_CHANNEL_CLOSE_METHOD);
    int code = ((amqp_channel_close_t *)r.reply.decoded)->reply_code;
    amqp_channel_close_ok_t ok = {0};
    amqp_send_method(c, 1, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    amqp_channel_open(c, 1);
    assert_int_equal(amqp_get_rpc_reply(c).reply_type, AMQP_RESPONSE_NORMAL);
    return code;
}

/* A publish is refused asynchronously: a synchronous call after it shows the verdict. */
static int publish(amqp_connection_state_t c, const char *exchange, const char *key)
{
    assert_int_equal(amqp_basic_publish(c, 1, amqp_cstring_bytes(exchange), amqp_cstring_bytes(key),
                                        0, 0, NULL, amqp_cstring_bytes("roles-test")),
                     AMQP_STATUS_OK);
    amqp_exchange_declare(c, 1, amqp_cstring_bytes("amq.topic"), amqp_cstring_bytes("topic"), 1, 0,
                          0, 0, amqp_empty_table);
    return reply_code(c);
}

static int consume(amqp_connection_state_t c, const char *queue)
{
    amqp_basic_get(c, 1, amqp_cstring_bytes(queue), 1);
    return reply_code(c);
}

static int declare(amqp_connection_state_t c, const char *queue)
{
    amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, amqp_empty_table);
    return reply_code(c);
}

static void finish(amqp_connection_state_t c)
{
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
}

/* Each service's own declarations, through lib's code, as its user. */
static void declares_as(const char *user, const struct gf_amqp_queue *q, const char *exchange)
{
    char url[128], pw[128], name[64];
    snprintf(url, sizeof url, "amqp://%s@127.0.0.1:%d/", user, W.amqp_port);
    snprintf(name, sizeof name, "amqp-%s", user);
    secret(name, pw, sizeof pw);
    struct gf_amqp_options o = {
        .url = url, .password = pw, .name = "roles-test", .timeout_ms = 5000};
    enum gf_status st;
    struct gf_amqp_conn *c = gf_amqp_connect(&o, &st);
    assert_non_null(c);
    if (exchange)
        assert_int_equal(gf_amqp_declare_exchange(c, exchange), GF_OK);
    if (q)
        assert_int_equal(gf_amqp_declare_queue(c, q), GF_OK);
    gf_amqp_close(c);
}

static void broker_users_do_their_job_and_no_other(void **state)
{
    (void)state;
    static const char *const all[] = {"#"};
    static const char *const buy[] = {GF_EVENT_BUY_ITEM};
    const struct gf_amqp_queue gxp_log = {.name = "gxp.events.log",
                                          .exchange = GF_EVENTS_WATCH_EXCHANGE,
                                          .routing_keys = all,
                                          .nkeys = 1,
                                          .max_length = 10000,
                                          .transient = true,
                                          .unbind_exchange = GF_EVENTS_EXCHANGE};
    struct gf_amqp_queue backend_log = gxp_log;
    backend_log.name = "backend.events.log";
    (void)buy;
    /* What each one declares at start (eventlog's consumer, the relay, the watchers). */
    declares_as("eventlog", &gf_events_eventlog_queue, NULL);
    declares_as("backend", &gf_events_eventlog_queue, GF_EVENTS_WATCH_EXCHANGE);
    declares_as("backend", &backend_log, NULL);
    declares_as("gxp", &gxp_log, NULL);
    /* The console (issue 17): a backend's own queue on gf.console. */
    static const char *const console_keys[] = {"console.#"};
    const struct gf_amqp_queue console_q = {.name = "backend.console.roles-test:1",
                                            .exchange = "gf.console",
                                            .routing_keys = console_keys,
                                            .nkeys = 1,
                                            .max_length = 20000,
                                            .transient = true,
                                            .expires_ms = 60000};
    declares_as("backend", &console_q, NULL);

    amqp_connection_state_t b = amqp_login_as("backend", NULL);
    amqp_connection_state_t g = amqp_login_as("gxp", NULL);
    amqp_connection_state_t e = amqp_login_as("eventlog", NULL);
    assert_non_null(b);
    assert_non_null(g);
    assert_non_null(e);
    /* The backend publishes events; eventlog takes them from its queue. */
    assert_int_equal(publish(b, GF_EVENTS_EXCHANGE, GF_EVENT_BUY_ITEM), 0);
    assert_int_equal(publish(b, GF_EVENTS_WATCH_EXCHANGE, GF_EVENT_BUY_ITEM), 0);
    assert_int_equal(consume(e, "eventlog.events"), 0);
    assert_int_equal(consume(b, "backend.events.log"), 0);
    assert_int_equal(consume(g, "gxp.events.log"), 0);
    /* Every service sends its console notes to gf.console; only a backend reads them. */
    assert_int_equal(publish(b, "gf.console", "console.backend"), 0);
    assert_int_equal(publish(g, "gf.console", "console.gxp"), 0);
    assert_int_equal(publish(e, "gf.console", "console.eventlog"), 0);
    assert_int_equal(consume(b, "backend.console.roles-test:1"), 0);
    assert_int_equal(consume(g, "backend.console.roles-test:1"), 403);
    /* Nobody else publishes events, or through the default exchange into any queue. */
    assert_int_equal(publish(e, GF_EVENTS_EXCHANGE, GF_EVENT_BUY_ITEM), 403);
    assert_int_equal(publish(g, GF_EVENTS_EXCHANGE, GF_EVENT_BUY_ITEM), 403);
    assert_int_equal(publish(g, GF_EVENTS_WATCH_EXCHANGE, GF_EVENT_BUY_ITEM), 403);
    assert_int_equal(publish(e, "", "eventlog.events"), 403);
    assert_int_equal(publish(b, "", "eventlog.events"), 403);
    /* Nobody reads another's queue, or the dead letters. */
    assert_int_equal(consume(b, "eventlog.events"), 403);
    assert_int_equal(consume(g, "eventlog.events"), 403);
    assert_int_equal(consume(e, "gxp.events.log"), 403);
    assert_int_equal(consume(b, "eventlog.events.dead"), 403);
    /* Nobody declares queues of its own choosing. */
    assert_int_equal(declare(b, "intruder"), 403);
    assert_int_equal(declare(g, "eventlog.events.dead"), 403);
    assert_int_equal(declare(e, "backend.events.log"), 403);
    finish(b);
    finish(g);
    finish(e);
}

static void guest_and_wrong_passwords_cannot_log_in(void **state)
{
    (void)state;
    assert_null(amqp_login_as("guest", "guest"));
    assert_null(amqp_login_as("backend", "wrong"));
    assert_null(amqp_login_as("gxp", ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(service_roles_own_and_use_their_tables),
        cmocka_unit_test(service_roles_can_do_nothing_else),
        cmocka_unit_test(replication_role_streams_the_publication_only),
        cmocka_unit_test(tcp_wants_a_scram_password),
        cmocka_unit_test(broker_users_do_their_job_and_no_other),
        cmocka_unit_test(guest_and_wrong_passwords_cannot_log_in),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
