/* gxp benchmark: TransactionPrepare throughput beside its SQL floor (pgbench running the
 * same statement at the same concurrency on the same cluster), finalization latency from
 * decision commit on backend-db to COMMITTED on gxp-db at a fixed decision rate, and the
 * gxp process's memory. Brings up its own clusters and gxp on free ports (see harness).
 *
 * Environment: BENCH_ROUNDS (3), BENCH_SECONDS (5 per round and side), BENCH_CONCURRENCY (16),
 * BENCH_USERS (1000), BENCH_DECISION_RATE (500), BENCH_DECISIONS (5000), BENCH_GXP_THREADS (16),
 * BENCH_GXP_PIPELINES (2), GXP_BIN (build/bin/gxp). */
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "bench_util.h"
#include "coordinator.h"
#include "gf/clock.h"
#include "gf/grpc.h"
#include "gf/log.h"
#include "gf/uuid.h"
#include "gxp.pb-c.h"
#include "harness.h"

#define PG_BIN "/usr/lib/postgresql/15/bin"

/* ---- phase 1: prepares through gxp ------------------------------------------------------ */

/* An asynchronous load generator, like pgbench: each thread keeps `inflight` calls going on
 * its own completion queue, so the generator's own CPU cost stays small. */
struct acall {
    grpc_call *call;
    grpc_byte_buffer *send, *recv;
    grpc_metadata_array initial, trailing;
    grpc_status_code status;
    grpc_slice details;
    int64_t t0;
};

struct loader {
    grpc_channel *channel;
    int users, seconds, id, inflight;
    int64_t *lat;
    size_t nlat, cap;
    long errors;
};

static void acall_start(struct loader *l, struct acall *a, grpc_completion_queue *cq,
                        unsigned *seed)
{
    char cid[37];
    gf_uuid_generate(cid);
    Gxp__TransactionPrepareRequest req = GXP__TRANSACTION_PREPARE_REQUEST__INIT;
    req.userid = 1 + (uint32_t)(rand_r(seed) % (unsigned)l->users);
    req.type = GXP__TRANSACTION_TYPE__SUBTRACT;
    req.amount = 1;
    req.correlationid = cid;
    uint8_t buf[128];
    size_t n = protobuf_c_message_pack(&req.base, buf);
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)buf, n);
    a->send = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    grpc_slice method = grpc_slice_from_static_string("/gxp.Gxp/TransactionPrepare");
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(5000, GPR_TIMESPAN));
    a->call = grpc_channel_create_call(l->channel, NULL, 0, cq, method, NULL, deadline, NULL);
    grpc_metadata_array_init(&a->initial);
    grpc_metadata_array_init(&a->trailing);
    a->recv = NULL;
    a->details = grpc_empty_slice();
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = a->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &a->initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &a->recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &a->trailing;
    ops[5].data.recv_status_on_client.status = &a->status;
    ops[5].data.recv_status_on_client.status_details = &a->details;
    a->t0 = gf_mono_us();
    if (grpc_call_start_batch(a->call, ops, 6, a, NULL) != GRPC_CALL_OK)
        die("start_batch");
}

static void acall_finish(struct acall *a)
{
    grpc_byte_buffer_destroy(a->send);
    if (a->recv)
        grpc_byte_buffer_destroy(a->recv);
    grpc_metadata_array_destroy(&a->initial);
    grpc_metadata_array_destroy(&a->trailing);
    grpc_slice_unref(a->details);
    grpc_call_unref(a->call);
}

static void *load(void *arg)
{
    struct loader *l = arg;
    unsigned seed = (unsigned)(l->id * 7919 + 1);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    struct acall *calls = calloc((size_t)l->inflight, sizeof *calls);
    int64_t end = gf_mono_ms() + l->seconds * 1000LL;
    int active = 0;
    for (int i = 0; i < l->inflight; i++, active++)
        acall_start(l, &calls[i], cq, &seed);
    while (active > 0) {
        grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        struct acall *a = ev.tag;
        int64_t us = gf_mono_us() - a->t0;
        if (a->status == GRPC_STATUS_OK) {
            if (l->nlat == l->cap) {
                l->cap = l->cap ? l->cap * 2 : 4096;
                l->lat = realloc(l->lat, l->cap * sizeof *l->lat);
                if (l->lat == NULL)
                    die("out of memory");
            }
            l->lat[l->nlat++] = us;
        } else {
            l->errors++;
        }
        acall_finish(a);
        if (gf_mono_ms() < end)
            acall_start(l, a, cq, &seed);
        else
            active--;
    }
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    free(calls);
    return NULL;
}

/* ---- phase 2: the floor, pgbench with the same SQL --------------------------------------- */

static double rusage_children_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
}

/* Runs pgbench; returns its tps and adds its own CPU time (ms) to *client_ms. */
static double pgbench_tps(const struct h_pg *pg, int conc, int seconds, int users,
                          double *client_ms)
{
    char script[] = "/tmp/gxp-bench-XXXXXX";
    int fd = mkstemp(script);
    if (fd < 0)
        die("mkstemp");
    char body[512];
    int n = snprintf(body, sizeof body,
                     "\\set uid random(1, %d)\n"
                     "SELECT gxp_prepare(:uid, 1::smallint, 1, gen_random_uuid(),"
                     " 'epoch'::timestamptz + NULL::bigint * interval '1 microsecond');\n",
                     users);
    if (write(fd, body, (size_t)n) != n)
        die("write script");
    close(fd);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s/pgbench -n -h 127.0.0.1 -p %d -U postgres -c %d -j 2 -T %d -M prepared -f %s"
             " postgres 2>&1",
             PG_BIN, pg->port, conc, seconds, script);
    double c0 = rusage_children_ms();
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        die("pgbench");
    double tps = 0;
    char line[512];
    while (fgets(line, sizeof line, p)) {
        if (strncmp(line, "tps = ", 6) == 0)
            tps = atof(line + 6);
    }
    pclose(p);
    *client_ms += rusage_children_ms() - c0;
    unlink(script);
    return tps;
}

/* ---- phase 3: finalization latency ------------------------------------------------------ */

struct fin {
    const struct h_pg *gxp_db;
    int total;
    char (*cids)[37];
    int64_t *commit_us; /* when the decision's INSERT returned on backend-db */
    int64_t *done_us;   /* when gxp-db's NOTIFY for it arrived */
    atomic_int seen;
    atomic_bool ready;
};

static int find_cid(struct fin *f, const char *cid)
{
    /* A linear scan: ~25 µs per notification at 5,000 ids, taken after the arrival time. */
    for (int i = 0; i < f->total; i++)
        if (strcmp(f->cids[i], cid) == 0)
            return i;
    return -1;
}

static void *listener(void *arg)
{
    struct fin *f = arg;
    PGconn *c = PQconnectdb(f->gxp_db->conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        die("listener connect");
    sql(c, "LISTEN gxp_finalized");
    atomic_store(&f->ready, true);
    int64_t end = gf_mono_ms() + 120000;
    while (atomic_load(&f->seen) < f->total && gf_mono_ms() < end) {
        struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        int64_t now = gf_mono_us();
        PQconsumeInput(c);
        PGnotify *n;
        while ((n = PQnotifies(c)) != NULL) {
            int i = find_cid(f, n->extra);
            if (i >= 0 && f->done_us[i] == 0) {
                f->done_us[i] = now;
                atomic_fetch_add(&f->seen, 1);
            }
            PQfreemem(n);
        }
    }
    PQfinish(c);
    return NULL;
}

int main(void)
{
    int seconds = env_int("BENCH_SECONDS", 5);
    int conc = env_int("BENCH_CONCURRENCY", 16);
    int users = env_int("BENCH_USERS", 1000);
    int rate = env_int("BENCH_DECISION_RATE", 500);
    int ndec = env_int("BENCH_DECISIONS", 5000);
    const char *bin = getenv("GXP_BIN") ? getenv("GXP_BIN") : "build/bin/gxp";
    gf_log_init("gxp-bench", GF_LOG_WARN);

    struct h_pg backend_db, gxp_db;
    if (h_pg_start(&backend_db, "backend-db", H_PG_LOGICAL) != 0 ||
        h_pg_start(&gxp_db, "gxp-db", H_PG_SUBSCRIBER) != 0)
        die("cannot start the clusters");
    PGconn *bdb = PQconnectdb(backend_db.conninfo), *gdb = PQconnectdb(gxp_db.conninfo);
    if (PQstatus(bdb) != CONNECTION_OK || PQstatus(gdb) != CONNECTION_OK)
        die("connect");
    sql(bdb, COORDINATOR_OUTBOX_SQL);
    int coord_port = 0;
    struct coordinator *co = coordinator_start(backend_db.conninfo, &coord_port);
    if (co == NULL)
        die("coordinator");

    int gport = h_free_port(), hport = h_free_port();
    char e1[64], e2[64], e3[700], e4[700], e5[64], e6[32], e7[32];
    snprintf(e1, sizeof e1, "GXP_GRPC_ADDR=127.0.0.1:%d", gport);
    snprintf(e2, sizeof e2, "GXP_HTTP_ADDR=127.0.0.1:%d", hport);
    snprintf(e3, sizeof e3, "GXP_DB_URL=%s", gxp_db.conninfo);
    snprintf(e4, sizeof e4, "GXP_PUBLISHER_CONNINFO=%s", backend_db.conninfo);
    snprintf(e5, sizeof e5, "GXP_BACKEND_ADDR=127.0.0.1:%d", coord_port);
    snprintf(e6, sizeof e6, "GXP_THREADS=%d", env_int("BENCH_GXP_THREADS", 16));
    snprintf(e7, sizeof e7, "GXP_DB_PIPELINES=%d", env_int("BENCH_GXP_PIPELINES", 2));
    /* Plaintext gRPC: the harness's stand-in coordinator and this client speak no TLS. */
    const char *env[] = {
        e1, e2, e3, e4, e5, e6, e7, "GXP_LOG_LEVEL=warn", "GXP_GRPC_INSECURE=true", NULL};
    const char *argv[] = {bin, NULL};
    char log[600];
    snprintf(log, sizeof log, "%s/gxp.log", h_run_dir());
    pid_t gxp = h_spawn(argv, env, log);
    if (gxp < 0 || h_wait_tcp(gport, 20000) != 0)
        die("gxp did not start");
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", gport);
    struct gf_grpc_client *client = gf_grpc_client_new(target);

    /* Wait for the schema and subscription, then give every user a large committed balance. */
    int64_t end = gf_mono_ms() + 30000;
    while (gf_mono_ms() < end &&
           sql_ll(gdb, "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate = 'r'") != 1)
        usleep(50000);
    char q[512];
    snprintf(q, sizeof q,
             "INSERT INTO balance (user_id) SELECT g FROM generate_series(1, %d) g;"
             "SELECT gxp_prepare(g, 0::smallint, 100000000, md5('fund' || g)::uuid, NULL)"
             "  FROM generate_series(1, %d) g;",
             users, users);
    sql(gdb, q);
    snprintf(q, sizeof q,
             "INSERT INTO transaction_outbox (correlation_id, state)"
             " SELECT md5('fund' || g)::uuid, 'succeeded' FROM generate_series(1, %d) g",
             users);
    sql(bdb, q);
    end = gf_mono_ms() + 60000;
    while (gf_mono_ms() < end &&
           sql_ll(gdb, "SELECT count(*) FROM gxp_transaction WHERE status = 0") != 0)
        usleep(50000);

    /* Phases 1 and 2, interleaved: this machine's speed drifts by tens of percent from one
     * minute to the next, so ours and the floor are measured in alternating rounds and the
     * medians compared. A 2 s warm-up round of ours is not counted. */
    int rounds = env_int("BENCH_ROUNDS", 3);
    int nloaders = env_int("BENCH_LOADERS", 1);
    if (nloaders < 1 || nloaders > conc)
        nloaders = 1;
    struct loader *ls = calloc((size_t)nloaders, sizeof *ls);
    pthread_t *th = calloc((size_t)nloaders, sizeof *th);
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *channel = grpc_channel_create(target, creds, NULL);
    grpc_channel_credentials_release(creds);
    pid_t gxp_pm = postmaster_pid(&gxp_db);
    double cpu_gxp = 0, cpu_pg = 0, cpu_self = 0;
    double floor_pg_ms = 0, floor_client_ms = 0, floor_tx = 0;
    size_t total = 0, cap_all = 0;
    long errors = 0;
    int64_t *all = NULL;
    double ours_r[16], floor_r[16], ratio_r[16];
    if (rounds > 16)
        rounds = 16;
    for (int round = -1; round < rounds; round++) {
        double g0 = cpu_ms(gxp), p0 = children_cpu_ms(gxp_pm), s0 = cpu_ms(getpid());
        for (int i = 0; i < nloaders; i++) {
            ls[i] = (struct loader){.channel = channel,
                                    .users = users,
                                    .id = i + (round + 1) * conc,
                                    .seconds = round < 0 ? 2 : seconds,
                                    .inflight = conc / nloaders + (i < conc % nloaders)};
            pthread_create(&th[i], NULL, load, &ls[i]);
        }
        size_t n = 0;
        for (int i = 0; i < nloaders; i++) {
            pthread_join(th[i], NULL);
            if (round >= 0) {
                if (total + ls[i].nlat > cap_all) {
                    cap_all = (total + ls[i].nlat) * 2;
                    all = realloc(all, cap_all * sizeof *all);
                    if (all == NULL)
                        die("out of memory");
                }
                memcpy(all + total, ls[i].lat, ls[i].nlat * sizeof *all);
                total += ls[i].nlat;
                n += ls[i].nlat;
                errors += ls[i].errors;
            }
            free(ls[i].lat);
        }
        if (round < 0)
            continue;
        cpu_gxp += cpu_ms(gxp) - g0;
        cpu_pg += children_cpu_ms(gxp_pm) - p0;
        cpu_self += cpu_ms(getpid()) - s0;
        ours_r[round] = (double)n / seconds;
        double f0 = children_cpu_ms(gxp_pm);
        floor_r[round] = pgbench_tps(&gxp_db, conc, seconds, users, &floor_client_ms);
        floor_pg_ms += children_cpu_ms(gxp_pm) - f0;
        floor_tx += floor_r[round] * seconds;
        ratio_r[round] = floor_r[round] > 0 ? ours_r[round] / floor_r[round] : 0;
        fprintf(stderr, "round %d: gxp %.0f/s, floor %.0f/s, %.0f %%\n", round + 1, ours_r[round],
                floor_r[round], 100 * ratio_r[round]);
    }
    qsort(all, total, sizeof *all, cmp_i64);
    cpu_gxp /= (double)(total ? total : 1);
    cpu_pg /= (double)(total ? total : 1);
    cpu_self /= (double)(total ? total : 1);
    double ours = median(ours_r, rounds), floor = median(floor_r, rounds);
    double ratio = median(ratio_r, rounds);
    long hwm_after_load = rss_kib(gxp, "VmHWM:");

    /* Phase 3: prepare ndec transactions, then decide them at `rate` per second. */
    struct fin f = {.gxp_db = &gxp_db, .total = ndec};
    f.cids = calloc((size_t)ndec, sizeof *f.cids);
    f.commit_us = calloc((size_t)ndec, sizeof *f.commit_us);
    f.done_us = calloc((size_t)ndec, sizeof *f.done_us);
    for (int i = 0; i < ndec; i++) {
        gf_uuid_generate(f.cids[i]);
        Gxp__TransactionPrepareRequest req = GXP__TRANSACTION_PREPARE_REQUEST__INIT;
        req.userid = 1 + (uint32_t)(i % users);
        req.type = (Gxp__TransactionType)(i % 2);
        req.amount = 1;
        req.correlationid = f.cids[i];
        ProtobufCMessage *out = NULL;
        if (gf_grpc_client_call(client, "/gxp.Gxp/TransactionPrepare", &req.base,
                                &gxp__transaction_prepare_response__descriptor, &out, 5000, NULL, 0,
                                NULL, 0) != GRPC_STATUS_OK)
            die("prepare for phase 3 failed");
        protobuf_c_message_free_unpacked(out, NULL);
    }
    pthread_t lt;
    pthread_create(&lt, NULL, listener, &f);
    while (!atomic_load(&f.ready))
        usleep(1000);
    sql(bdb, "PREPARE dec(uuid, text) AS INSERT INTO transaction_outbox (correlation_id, state)"
             " VALUES ($1, $2)");
    int64_t t0 = gf_mono_us();
    for (int i = 0; i < ndec; i++) {
        int64_t due = t0 + (int64_t)i * 1000000 / rate;
        int64_t now = gf_mono_us();
        if (due > now)
            usleep((useconds_t)(due - now));
        const char *params[2] = {f.cids[i], i % 3 == 0 ? "failed" : "succeeded"};
        PGresult *r = PQexecPrepared(bdb, "dec", 2, params, NULL, NULL, 0);
        f.commit_us[i] = gf_mono_us();
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            die("decision insert failed");
        PQclear(r);
    }
    double achieved = ndec / ((gf_mono_us() - t0) / 1e6);
    pthread_join(lt, NULL);
    int64_t *fl = malloc((size_t)ndec * sizeof *fl);
    int nfl = 0;
    for (int i = 0; i < ndec; i++)
        if (f.done_us[i])
            fl[nfl++] = f.done_us[i] - f.commit_us[i];
    qsort(fl, (size_t)nfl, sizeof *fl, cmp_i64);
    long hwm = rss_kib(gxp, "VmHWM:"), rss = rss_kib(gxp, "VmRSS:");

    printf("\n## gxp benchmark (%d rounds of %d s, %d in flight, %d users)\n\n", rounds, seconds,
           conc, users);
    printf("| measure | figure | target |\n|---|---|---|\n");
    printf("| TransactionPrepare through gxp (median of rounds) | %.0f calls/s (p50 %.2f ms, p99 "
           "%.2f ms, max %.2f "
           "ms, errors %ld) | |\n",
           ours, pct(all, total, 0.50) / 1000.0, pct(all, total, 0.99) / 1000.0,
           total ? all[total - 1] / 1000.0 : 0.0, errors);
    printf("| CPU per prepare: gxp / gxp-db / load generator | %.3f / %.3f / %.3f ms | |\n",
           cpu_gxp, cpu_pg, cpu_self);
    printf("| floor: pgbench, same SQL, same concurrency (median) | %.0f tx/s | |\n", floor);
    printf("| CPU per transaction of the floor: gxp-db / pgbench | %.3f / %.3f ms | |\n",
           floor_pg_ms / (floor_tx > 0 ? floor_tx : 1),
           floor_client_ms / (floor_tx > 0 ? floor_tx : 1));
    printf("| CPU per prepare, service + database (the load generator elsewhere) | ours %.3f ms,"
           " floor %.3f ms: %.0f %% of the floor's rate on the same cores | |\n",
           cpu_gxp + cpu_pg, floor_pg_ms / (floor_tx > 0 ? floor_tx : 1),
           cpu_gxp + cpu_pg > 0
               ? 100.0 * (floor_pg_ms / (floor_tx > 0 ? floor_tx : 1)) / (cpu_gxp + cpu_pg)
               : 0.0);
    printf("| gxp / floor (median of the rounds' ratios) | %.0f %% | >= 80 %% |\n", 100.0 * ratio);
    printf("| decisions inserted on backend-db | %d at %.0f/s | 500/s |\n", ndec, achieved);
    printf("| decision commit -> finalized on gxp-db | p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d "
           "of %d seen) | p50 <= 2 ms, p99 <= 20 ms |\n",
           pct(fl, (size_t)nfl, 0.50) / 1000.0, pct(fl, (size_t)nfl, 0.99) / 1000.0,
           nfl ? fl[nfl - 1] / 1000.0 : 0.0, nfl, ndec);
    printf("| gxp peak RSS | %.1f MiB (after prepare load %.1f MiB; now %.1f MiB) | <= 32 MiB |\n",
           hwm / 1024.0, hwm_after_load / 1024.0, rss / 1024.0);

    free(all);
    free(fl);
    free(f.cids);
    free(f.commit_us);
    free(f.done_us);
    free(ls);
    free(th);
    gf_grpc_client_free(client);
    grpc_channel_destroy(channel);
    h_stop(gxp, 10000);
    coordinator_stop(co);
    PQfinish(bdb);
    PQfinish(gdb);
    h_cleanup_all();
    return 0;
}
