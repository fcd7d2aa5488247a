/* See failpoint.h. The table is parsed once (pthread_once) and read-only afterwards, so
 * gf_failpoint needs no lock; hit counters are atomics. */
#include "gf/failpoint.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gf/clock.h"
#include "gf/log.h"

#define FP_MAX 32
#define FP_NAME_MAX 64

enum fp_action { FP_KILL, FP_PAUSE, FP_WAIT };

/* How long a wait: point waits for its file at most: a test that dies before creating it
 * does not leave the process stuck for ever. */
#define FP_WAIT_MAX_MS (120 * 1000)

struct fp {
    char name[FP_NAME_MAX];
    enum fp_action action;
    int64_t pause_ms;
    char path[256];     /* wait: the file whose existence releases the thread */
    double probability; /* 0 < p <= 1 */
    atomic_ulong hits;
};

static struct fp points[FP_MAX];
static int npoints;
static atomic_bool enabled;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool valid = true;
static bool seeded; /* GF_FAILPOINTS_SEED was given: draws repeat from run to run */
static uint64_t seed;
static atomic_uint threads; /* ordinal of each thread's first draw, for the seeded draws */

/* One "NAME=ACTION[:ARG][@P]" entry into *p; false when malformed. */
static bool parse_entry(const char *s, size_t len, struct fp *p)
{
    char buf[320];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *eq = strchr(buf, '=');
    if (eq == NULL || eq == buf || (size_t)(eq - buf) >= FP_NAME_MAX)
        return false;
    *eq = '\0';
    memcpy(p->name, buf, (size_t)(eq - buf) + 1);
    char *action = eq + 1;
    p->probability = 1.0;
    char *at = strchr(action, '@');
    if (at != NULL) {
        *at = '\0';
        char *end;
        p->probability = strtod(at + 1, &end);
        if (end == at + 1 || *end != '\0' || !(p->probability > 0.0 && p->probability <= 1.0))
            return false;
    }
    char *colon = strchr(action, ':');
    char *arg = NULL;
    if (colon != NULL) {
        *colon = '\0';
        arg = colon + 1;
    }
    char *end = NULL;
    if (strcmp(action, "kill") == 0) {
        p->action = FP_KILL;
        if (arg != NULL) { /* kill:P is kill@P */
            p->probability = strtod(arg, &end);
            if (end == arg || *end != '\0' || !(p->probability > 0.0 && p->probability <= 1.0))
                return false;
        }
        return true;
    }
    if (strcmp(action, "pause") == 0 && arg != NULL) {
        p->action = FP_PAUSE;
        long long ms = strtoll(arg, &end, 10);
        if (end == arg || *end != '\0' || ms < 0 || ms > 24LL * 3600 * 1000)
            return false;
        p->pause_ms = ms;
        return true;
    }
    if (strcmp(action, "wait") == 0 && arg != NULL && arg[0] == '/' &&
        strlen(arg) < sizeof p->path) {
        p->action = FP_WAIT;
        memcpy(p->path, arg, strlen(arg) + 1);
        return true;
    }
    return false;
}

static void parse(void)
{
    const char *sv = getenv("GF_FAILPOINTS_SEED");
    if (sv != NULL && sv[0] != '\0') {
        char *end;
        unsigned long long n = strtoull(sv, &end, 10);
        if (*end == '\0') {
            seeded = true;
            seed = n;
        } else {
            GF_ERROR("GF_FAILPOINTS_SEED must be a non-negative integer: the draws are not "
                     "seeded");
        }
    }
    const char *v = getenv("GF_FAILPOINTS");
    if (v == NULL || v[0] == '\0')
        return;
    int n = 0;
    const char *s = v;
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (n == FP_MAX || !parse_entry(s, len, &points[n])) { /* an empty entry too */
            valid = false;
            GF_ERROR("GF_FAILPOINTS is invalid (NAME=kill[:P], NAME=pause:MS[@P] or "
                     "NAME=wait:/ABSOLUTE/PATH[@P], comma separated, at most %d): every "
                     "failpoint stays off",
                     FP_MAX);
            return;
        }
        n++;
        s += len;
        if (*s != ',')
            break;
        s++;
    }
    npoints = n;
    for (int i = 0; i < n; i++)
        GF_WARN("failpoint armed name=%s action=%s pause_ms=%lld path=%s probability=%.3f",
                points[i].name,
                points[i].action == FP_KILL    ? "kill"
                : points[i].action == FP_PAUSE ? "pause"
                                               : "wait",
                (long long)points[i].pause_ms, points[i].path, points[i].probability);
    atomic_store(&enabled, n > 0);
}

bool gf_failpoints_init(void)
{
    pthread_once(&once, parse);
    return valid;
}

/* splitmix64: spreads a seed and a thread's ordinal over the xorshift's state. */
static uint64_t mix(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A thread-local xorshift, seeded per thread: the probability draws need no lock. With
 * GF_FAILPOINTS_SEED, a thread's draws depend only on the seed and the order in which threads
 * first draw (so a single-threaded path repeats exactly); otherwise on the clock. */
static double draw(void)
{
    static _Thread_local uint64_t x;
    if (x == 0)
        x = seeded ? mix(seed ^ mix(atomic_fetch_add(&threads, 1))) | 1
                   : ((uint64_t)gf_mono_us() << 1 | 1) ^
                         ((uint64_t)(uintptr_t)&x * 0x9E3779B97F4A7C15ull);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return (double)(x >> 11) / (double)(1ull << 53);
}

void gf_failpoint(const char *name)
{
    pthread_once(&once, parse);
    if (!atomic_load_explicit(&enabled, memory_order_relaxed))
        return;
    for (int i = 0; i < npoints; i++) {
        struct fp *p = &points[i];
        if (strcmp(p->name, name) != 0)
            continue;
        if (p->probability < 1.0 && draw() >= p->probability)
            return;
        atomic_fetch_add(&p->hits, 1);
        if (p->action == FP_KILL) {
            GF_WARN("failpoint fired name=%s action=kill", name);
            raise(SIGKILL);
            _exit(137); /* not reached */
        }
        if (p->action == FP_WAIT) {
            GF_WARN("failpoint fired name=%s action=wait path=%s", name, p->path);
            int64_t end = gf_mono_ms() + FP_WAIT_MAX_MS;
            while (access(p->path, F_OK) != 0 && gf_mono_ms() < end)
                gf_sleep_ms(10, NULL);
            GF_WARN("failpoint released name=%s path=%s", name, p->path);
            return;
        }
        GF_WARN("failpoint fired name=%s action=pause ms=%lld", name, (long long)p->pause_ms);
        gf_sleep_ms(p->pause_ms, NULL);
        return;
    }
}

unsigned long gf_failpoint_hits(const char *name)
{
    pthread_once(&once, parse);
    for (int i = 0; i < npoints; i++) {
        if (strcmp(points[i].name, name) == 0)
            return atomic_load(&points[i].hits);
    }
    return 0;
}
