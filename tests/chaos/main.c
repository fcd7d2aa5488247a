/* gf-chaos: the chaos test's load generator, fault schedule and checker in one program.
 * tests/chaos/chaos.sh drives it; each subcommand is one step of a run:
 *
 *   gf-chaos schedule --seed S --seconds T [--faults N]   the fault schedule, a line a fault
 *   gf-chaos setup    --url U --seed S --out F --tokens F --admin-password-file F
 *                     users, items and stock before the faults; the logins' tokens
 *   gf-chaos load     --url U --seed S --seconds T --clients N --setup F --out F --tokens F
 *                     --admin-password-file F
 *   gf-chaos check    --records F... --faults F   the invariants, and the summary
 *   gf-chaos probe    --url U --setup F --tokens F --admin-password-file F --item N --out F
 *                     buys of one item while a paused backend may hold its locks: how
 *                     long they were blocked
 *   gf-chaos sample   --gxp-db C --backend-db C --out F --stop-file F   PENDING ages, open
 *                     transactions and lock waits, twice a second during the run
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "chaos.h"

const char *const kind_names[NKINDS] = {
    "create_user",      "add_gxp",        "buy", "patch_item",    "create_item", "mkt_create",
    "user_item_create", "auction_create", "bid", "auction_cancel"};

int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ---- random stream ------------------------------------------------------------------------ */

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void rng_init(struct rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ULL);
    r->s = splitmix(&x);
}

uint64_t rng_next(struct rng *r)
{
    return splitmix(&r->s);
}

int64_t rng_range(struct rng *r, int64_t lo, int64_t hi)
{
    uint64_t span = (uint64_t)(hi - lo) + 1;
    return lo + (int64_t)(rng_next(r) % span);
}

bool rng_chance(struct rng *r, int num, int den)
{
    return (int)(rng_next(r) % (uint64_t)den) < num;
}

void rng_uuid(struct rng *r, char out[37])
{
    unsigned char b[16];
    uint64_t a = rng_next(r), c = rng_next(r);
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(a >> (8 * i));
        b[8 + i] = (unsigned char)(c >> (8 * i));
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* ---- records ------------------------------------------------------------------------------ */

static const char *or_dash(const char *s)
{
    return s[0] ? s : "-";
}

void rec_write(FILE *f, const struct rec *r)
{
    fprintf(f,
            "%ld\t%d\t%s\t%d\t%d\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64
            "\t%s\t%s\t%s\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%s\t%s\t%d\t%d\n",
            r->seq, r->client, kind_names[r->kind], r->status, r->curl_rc, r->user, r->item,
            r->amount, r->aux, or_dash(r->name), or_dash(r->cid), or_dash(r->resp_cid), r->t0_ms,
            r->t1_ms, r->res_id, r->res_ver, or_dash(r->err), or_dash(r->key), r->attempt,
            r->flags);
}

static void copy_field(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", strcmp(src, "-") == 0 ? "" : src);
}

static bool rec_parse(char *line, struct rec *r)
{
    char *f[20];
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, "\t\n", &save); t && n < 20; t = strtok_r(NULL, "\t\n", &save))
        f[n++] = t;
    if (n != 20)
        return false;
    memset(r, 0, sizeof *r);
    r->seq = strtol(f[0], NULL, 10);
    r->client = (int)strtol(f[1], NULL, 10);
    int k = 0;
    while (k < NKINDS && strcmp(kind_names[k], f[2]) != 0)
        k++;
    if (k == NKINDS)
        return false;
    r->kind = (enum rec_kind)k;
    r->status = (int)strtol(f[3], NULL, 10);
    r->curl_rc = (int)strtol(f[4], NULL, 10);
    r->user = strtoll(f[5], NULL, 10);
    r->item = strtoll(f[6], NULL, 10);
    r->amount = strtoll(f[7], NULL, 10);
    r->aux = strtoll(f[8], NULL, 10);
    copy_field(r->name, sizeof r->name, f[9]);
    copy_field(r->cid, sizeof r->cid, f[10]);
    copy_field(r->resp_cid, sizeof r->resp_cid, f[11]);
    r->t0_ms = strtoll(f[12], NULL, 10);
    r->t1_ms = strtoll(f[13], NULL, 10);
    r->res_id = strtoll(f[14], NULL, 10);
    r->res_ver = strtoll(f[15], NULL, 10);
    copy_field(r->err, sizeof r->err, f[16]);
    copy_field(r->key, sizeof r->key, f[17]);
    r->attempt = (int)strtol(f[18], NULL, 10);
    r->flags = (int)strtol(f[19], NULL, 10);
    return true;
}

bool rec_definite(const struct rec *r)
{
    if (r->status >= 200 && r->status < 300)
        return true;
    if (r->status < 400 || r->status >= 500 || r->status == 408 || r->status == 429)
        return false;
    return !(r->status == 409 && strcmp(r->err, "request_in_progress") == 0);
}

bool rec_read_file(const char *path, struct rec **out, size_t *n)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "chaos: cannot open %s\n", path);
        return false;
    }
    char line[1024];
    size_t cap = *n + 1024;
    struct rec *v = realloc(*out, cap * sizeof *v);
    long lineno = 0;
    bool ok = v != NULL;
    while (ok && fgets(line, sizeof line, f)) {
        lineno++;
        if (*n == cap) {
            cap *= 2;
            struct rec *nv = realloc(v, cap * sizeof *v);
            if (nv == NULL) {
                ok = false;
                break;
            }
            v = nv;
        }
        if (!rec_parse(line, &v[*n])) {
            fprintf(stderr, "chaos: %s:%ld: malformed record\n", path, lineno);
            ok = false;
            break;
        }
        (*n)++;
    }
    fclose(f);
    if (v)
        *out = v;
    return ok;
}

/* ---- the fault schedule ----------------------------------------------------------------------
 * Faults start after 3 s of load and end 5 s before it stops, N of them (at least one of each
 * kind below; by default one per 6 s), one per slot with a random offset inside the slot. The
 * first slots hold the required ones in a random order: a kill, a cluster restart, a broker
 * connection close, a cut of each network link, a delay and a pause; the others a random kind.
 * Targets of a kind are dealt from a shuffled deck, so a long run kills and pauses every
 * program, restarts every cluster and cuts every link. One line per fault:
 *   AT kill PROGRAM DOWN_MS        kill -9, restart after DOWN_MS
 *   AT pg CLUSTER DOWN_MS          immediate stop, start after DOWN_MS
 *   AT broker broker 0             the broker closes every client connection
 *   AT cut LINK MS                 the link drops every packet for MS (tests/harness/netfault.sh)
 *   AT delay LINK MS DELAY_MS      the link holds every packet DELAY_MS, for MS
 *   AT pause PROGRAM MS            SIGSTOP, SIGCONT after MS (longer than gxp's pending timeout);
 *                                  the required pause is backend-svc-1's (chaos.sh stops it
 *                                  inside a buy, locks held)
 */

enum fault_kind { F_KILL, F_PG, F_BROKER, F_CUT, F_DELAY, F_PAUSE, NFAULTKINDS };
static const char *const programs[] = {"backend-svc-1", "backend-svc-2", "gxp-1", "gxp-2",
                                       "eventlog"};
static const char *const clusters[] = {"backend-db", "gxp-db", "eventlog-db"};
static const char *const links[] = {"backend-db", "replication", "gxp-db", "grpc", "broker"};
#define NLINKS 5

struct deck {
    int order[8], n, next;
};

static int deal(struct deck *d, struct rng *r)
{
    if (d->next == 0) { /* (re)shuffle */
        for (int i = 0; i < d->n; i++)
            d->order[i] = i;
        for (int i = d->n - 1; i > 0; i--) {
            int j = (int)rng_range(r, 0, i), t = d->order[i];
            d->order[i] = d->order[j];
            d->order[j] = t;
        }
    }
    int v = d->order[d->next];
    d->next = (d->next + 1) % d->n;
    return v;
}

static int cmd_schedule(int argc, char **argv)
{
    uint64_t seed = 0;
    long seconds = 0, faults = 0, pause_min = 3000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seed") == 0)
            seed = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--faults") == 0)
            faults = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--pause-min-ms") == 0)
            pause_min = strtol(argv[i + 1], NULL, 10);
    }
    if (seconds < 15) {
        fprintf(stderr, "chaos schedule: --seconds must be at least 15\n");
        return 2;
    }
    struct rng r;
    rng_init(&r, seed, 1000);
    /* The required faults: one kill, pg and broker, a cut of every link, a delay, a pause. */
    int first[16], nfirst = 0;
    first[nfirst++] = F_KILL;
    first[nfirst++] = F_PG;
    first[nfirst++] = F_BROKER;
    for (int i = 0; i < NLINKS; i++)
        first[nfirst++] = F_CUT;
    first[nfirst++] = F_DELAY;
    first[nfirst++] = F_PAUSE;
    for (int i = nfirst - 1; i > 0; i--) {
        int j = (int)rng_range(&r, 0, i), t = first[i];
        first[i] = first[j];
        first[j] = t;
    }
    long span_ms = (seconds - 8) * 1000;
    int n = faults > 0 ? (int)faults : (int)(span_ms / 6000);
    if (n < nfirst)
        n = nfirst;
    long slot = span_ms / n;
    struct deck progs = {.n = 5}, pgs = {.n = 3}, lnks = {.n = NLINKS}, paused = {.n = 5};
    /* Weights of the kinds after the required ones: kill 3, pg 1, broker 1, cut 2, delay 1,
     * pause 2. */
    static const int weighted[] = {F_KILL, F_KILL, F_KILL,  F_PG,    F_BROKER,
                                   F_CUT,  F_CUT,  F_DELAY, F_PAUSE, F_PAUSE};
    for (int i = 0; i < n; i++) {
        int kind = i < nfirst ? first[i] : weighted[rng_range(&r, 0, 9)];
        long at = 3000 + i * slot + rng_range(&r, 0, slot / 3);
        switch (kind) {
        case F_KILL:
            printf("%ld kill %s %" PRId64 "\n", at, programs[deal(&progs, &r)],
                   rng_range(&r, 200, 2500));
            break;
        case F_PG:
            printf("%ld pg %s %" PRId64 "\n", at, clusters[deal(&pgs, &r)],
                   rng_range(&r, 300, 2500));
            break;
        case F_CUT:
            printf("%ld cut %s %" PRId64 "\n", at, links[deal(&lnks, &r)],
                   rng_range(&r, 2000, 8000));
            break;
        case F_DELAY:
            printf("%ld delay %s %" PRId64 " %" PRId64 "\n", at,
                   links[rng_range(&r, 0, NLINKS - 1)], rng_range(&r, 2000, 6000),
                   rng_range(&r, 50, 500));
            break;
        case F_PAUSE: /* the required one: backend-svc-1, inside a buy (lock hold) */
            /* The required one is long enough to outlast a bound on idle transactions of
             * a few seconds, and shorter than the HTTP body timeout (30 s). */
            if (i < nfirst)
                printf("%ld pause %s %" PRId64 "\n", at, programs[0],
                       rng_range(&r, pause_min + 5000, pause_min + 8000));
            else
                printf("%ld pause %s %" PRId64 "\n", at, programs[deal(&paused, &r)],
                       rng_range(&r, pause_min, pause_min + 8000));
            break;
        default:
            printf("%ld broker broker 0\n", at);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "schedule") == 0)
        return cmd_schedule(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "setup") == 0)
        return chaos_setup(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "load") == 0)
        return chaos_load(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "check") == 0)
        return chaos_check(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "probe") == 0)
        return chaos_probe(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "sample") == 0)
        return chaos_sample(argc - 1, argv + 1);
    fprintf(stderr, "usage: gf-chaos schedule|setup|load|check|probe|sample [options] (see "
                    "tests/chaos/)\n");
    return 2;
}
