/* Retention by pruning in small batches (see gf/prune.h): the loop, the lock and the counters;
 * what may be deleted is each service's statements' business. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gf/clock.h"
#include "gf/log.h"
#include "gf/metrics.h"
#include "gf/prune.h"

#define PARAMS_MAX 8

struct gf_pruner {
    struct gf_pruner_options opt;
    pthread_t thread;
    atomic_bool stop;
    struct gf_counter **pruned; /* [stmt * GF_PRUNE_TABLES_MAX + table] */
};

/* Runs one batch of stmt in its own transaction under the pruning lock. Returns the rows the
 * driving table lost, 0 when another session holds the lock (it prunes: this pass ends), or -1
 * on a database failure (logged by gf_db_exec). *locked tells which. */
static int64_t run_batch(struct gf_pruner *p, struct gf_db_conn *c, size_t si, bool *locked)
{
    const struct gf_prune_stmt *s = &p->opt.stmts[si];
    char batch[24], key[24];
    snprintf(batch, sizeof batch, "%" PRId64, p->opt.batch);
    snprintf(key, sizeof key, "%" PRId64, p->opt.lock_key);
    const char *params[PARAMS_MAX + 1] = {batch};
    for (int i = 0; i < s->nparams && i < PARAMS_MAX; i++)
        params[i + 1] = s->params[i];
    *locked = false;
    if (gf_db_exec_simple(c, "BEGIN") != GF_OK)
        return -1;
    PGresult *res = NULL;
    const char *kp[1] = {key};
    if (gf_db_exec(c, "gf_prune_lock", "SELECT pg_try_advisory_xact_lock($1::bigint)", 1, kp,
                   &res) != GF_OK)
        goto fail;
    *locked = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    res = NULL;
    if (!*locked) {
        gf_db_rollback(c);
        return 0;
    }
    if (gf_db_exec(c, s->name, s->sql, 1 + s->nparams, params, &res) != GF_OK)
        goto fail;
    int64_t counts[GF_PRUNE_TABLES_MAX] = {0};
    for (int t = 0; t < GF_PRUNE_TABLES_MAX && s->tables[t] != NULL; t++)
        counts[t] = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, t), NULL, 10) : 0;
    PQclear(res);
    if (gf_db_exec_simple(c, "COMMIT") != GF_OK)
        return -1;
    /* Counted only once committed: the counters say what is gone. */
    for (int t = 0; t < GF_PRUNE_TABLES_MAX && s->tables[t] != NULL; t++)
        gf_counter_add(p->pruned[si * GF_PRUNE_TABLES_MAX + (size_t)t], (uint64_t)counts[t]);
    return counts[0];
fail:
    gf_db_rollback(c);
    return -1;
}

static void pass(struct gf_pruner *p)
{
    struct gf_db_conn *c = NULL;
    if (gf_db_acquire(p->opt.pool, &c) != GF_OK)
        return; /* the database is away: the next pass tries again */
    for (size_t si = 0; si < p->opt.nstmts && !atomic_load(&p->stop); si++) {
        for (int64_t round = 0; round < p->opt.rounds && !atomic_load(&p->stop); round++) {
            bool locked = false;
            int64_t n = run_batch(p, c, si, &locked);
            if (n < 0) {
                GF_LOG_RL(GF_LOG_WARN, 60000, "prune failed statement=%s: retried next pass",
                          p->opt.stmts[si].name);
                goto out;
            }
            if (!locked)
                goto out; /* another replica prunes now */
            if (n < p->opt.batch)
                break; /* nothing more due in this table */
        }
    }
out:
    gf_db_release(p->opt.pool, c);
}

static void *run(void *arg)
{
    struct gf_pruner *p = arg;
    while (gf_sleep_ms(p->opt.interval_ms, &p->stop) && !atomic_load(&p->stop)) {
        if (p->opt.ready == NULL || atomic_load(p->opt.ready))
            pass(p);
    }
    return NULL;
}

struct gf_pruner *gf_pruner_start(const struct gf_pruner_options *opt)
{
    for (size_t si = 0; si < opt->nstmts; si++) {
        if (opt->stmts[si].nparams > PARAMS_MAX)
            return NULL;
    }
    struct gf_pruner *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->opt = *opt;
    p->pruned = calloc(opt->nstmts * GF_PRUNE_TABLES_MAX, sizeof *p->pruned);
    if (p->pruned == NULL) {
        free(p);
        return NULL;
    }
    char name[96], labels[96];
    snprintf(name, sizeof name, "%s_pruned_total", opt->service);
    for (size_t si = 0; si < opt->nstmts; si++) {
        for (int t = 0; t < GF_PRUNE_TABLES_MAX && opt->stmts[si].tables[t] != NULL; t++) {
            snprintf(labels, sizeof labels, "table=\"%s\"", opt->stmts[si].tables[t]);
            /* The same table under two statements shares one series. */
            p->pruned[si * GF_PRUNE_TABLES_MAX + (size_t)t] = gf_metrics_counter(
                name, "rows deleted after their retention (retention pruning)", labels);
        }
    }
    if (pthread_create(&p->thread, NULL, run, p) != 0) {
        free(p->pruned);
        free(p);
        return NULL;
    }
    return p;
}

void gf_pruner_stop(struct gf_pruner *p)
{
    if (p == NULL)
        return;
    atomic_store(&p->stop, true);
    pthread_join(p->thread, NULL);
    free(p->pruned);
    free(p);
}
