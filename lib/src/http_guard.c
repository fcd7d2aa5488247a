/* The HTTP server's connection guard (see ARCHITECTURE.md, "HTTP under attack"): every open
 * connection of a server is registered with its phase, and a reaper thread cuts those whose
 * request head or body trickles in (MHD's timeout only measures inactivity), answers not
 * taken, and idle ones when the connection limit nears. A 408 always means nothing was done:
 * the reaper cuts only by compare-and-swap from the exact state it judged. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#include "gf/clock.h"
#include "gf/log.h"
#include "gf/metrics.h"
#include "http_internal.h"

#define CONNECTION_MEMORY GF_HTTP__CONNECTION_MEMORY
#define REAPER_TICK_MS 200
/* An idle connection's socket is looked at no more often than this. */
#define IDLE_RECHECK_US 1000000
/* Received bytes within this of a phase's start may belong to the previous request (the
 * kernel counts in jiffies). */
#define RECV_SLOP_US 20000
/* A reaper tick later than this after the previous one, with the process's CPU time grown by
 * less than a tenth of it, means the process did not run: SIGSTOP, a frozen container or VM.
 * That time is the server's, not the clients'. (A reaper late because the other threads are
 * busy is not a pause: their CPU time grew.) */
#define STALL_US 1000000

/* The phases of http_internal.h, and one more that only the reaper sets. */
#define PHASE_HEAD GF_HTTP__HEAD
#define PHASE_BODY GF_HTTP__BODY
#define PHASE_SENDING GF_HTTP__SENDING
#define PHASE_CUT 4u /* the reaper cut it: nothing more runs or is answered on it */
#define PHASE_BITS 3u
#define PHASE_MASK ((1u << PHASE_BITS) - 1)

enum cut_reason { CUT_NONE, CUT_HEADER, CUT_BODY, CUT_SEND, CUT_PRESSURE, CUT_NREASONS };
static const char *const cut_reason_names[CUT_NREASONS] = {"none", "header_timeout", "body_timeout",
                                                           "send_timeout", "connection_pressure"};

/* One open connection, registered from MHD's "started" notification to its "closed" one
 * (MHD closes the descriptor only after the latter): while registered, fd is this
 * connection's, so the reaper may shut it down under conns_mu without hitting a reused fd. */
struct gf_http__conn {
    struct gf_http__conn *prev, *next; /* g->conns_*, under conns_mu */
    int fd;
    /* (generation << PHASE_BITS) | phase: the MHD thread moves it on (gf_http__conn_set), the
     * reaper only ever swaps it to PHASE_CUT. */
    atomic_uint state;
    atomic_llong phase_us;    /* gf_mono_us() when the phase began (stored before state) */
    atomic_llong progress_us; /* when the server last took body bytes (or the phase began) */
    atomic_llong body_left;   /* body bytes still to come by Content-Length; -1: not known */
    /* The reaper's own, under conns_mu: */
    unsigned seen_gen;
    int64_t head_seen_us;  /* unprocessed bytes first noticed (0: not yet) in this phase */
    int64_t next_check_us; /* an idle one is looked at again from then on */
    bool cut;
};

struct gf_http__guard {
    int max_connections;
    int64_t header_timeout_us, body_timeout_us;
    /* The reaper's: when its previous pass ran, and when it last found it had not run for
     * STALL_US (ages count from then: a paused server gives every client its time again). */
    int64_t last_reap_us, last_cpu_us, resumed_us;
    char *peek; /* the reaper's: CONNECTION_MEMORY bytes to look at a head waiting unread */
    /* The open connections, oldest first, and the reaper that watches them. */
    pthread_mutex_t conns_mu;
    struct gf_http__conn *conns_head, *conns_tail;
    int nconns;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv; /* on CLOCK_MONOTONIC */
    bool stopping;          /* under stop_mu */
    bool reaper_started;
    pthread_t reaper;
};

/* Process-wide figures (every server of the process together), for /metrics. */
static atomic_llong g_open_connections;
static struct gf_counter *g_cut[CUT_NREASONS];

static double open_connections(void *arg)
{
    (void)arg;
    return (double)atomic_load(&g_open_connections);
}

void gf_http__guard_metrics_init(void)
{
    for (int r = CUT_HEADER; r < CUT_NREASONS; r++) {
        char labels[64];
        snprintf(labels, sizeof labels, "reason=\"%s\"", cut_reason_names[r]);
        g_cut[r] = gf_metrics_counter(
            "gf_http_connections_cut_total",
            "connections closed by the server: a head or body too slow, an answer not taken, or "
            "idle while the connection limit neared",
            labels);
    }
    gf_metrics_gauge_fn("gf_http_connections_open", "HTTP connections open now", "",
                        open_connections, NULL);
}

/* --- connections ------------------------------------------------------------------------ */

bool gf_http__conn_set(struct gf_http__conn *t, enum gf_http__phase phase)
{
    if (t == NULL)
        return true;
    unsigned cur = atomic_load(&t->state);
    for (;;) {
        if ((cur & PHASE_MASK) == PHASE_CUT)
            return false;
        unsigned next = (((cur >> PHASE_BITS) + 1) << PHASE_BITS) | (unsigned)phase;
        long long now = (long long)gf_mono_us();
        atomic_store(&t->phase_us, now);
        atomic_store(&t->progress_us, now);
        if (atomic_compare_exchange_weak(&t->state, &cur, next))
            return true;
    }
}

void gf_http__conn_progress(struct gf_http__conn *t, long long left)
{
    if (t == NULL)
        return;
    atomic_store(&t->body_left, left);
    atomic_store(&t->progress_us, (long long)gf_mono_us());
}

struct gf_http__conn *gf_http__conn_open(struct gf_http__guard *g, int fd)
{
    struct gf_http__conn *t = calloc(1, sizeof *t);
    if (t == NULL) {
        GF_LOG_RL(GF_LOG_ERROR, 5000, "http cannot track a connection: out of memory");
        return NULL;
    }
    t->fd = fd;
    atomic_init(&t->state, PHASE_HEAD);
    atomic_init(&t->phase_us, (long long)gf_mono_us());
    atomic_init(&t->progress_us, (long long)gf_mono_us());
    atomic_init(&t->body_left, -1);
    pthread_mutex_lock(&g->conns_mu);
    t->prev = g->conns_tail;
    if (g->conns_tail != NULL)
        g->conns_tail->next = t;
    else
        g->conns_head = t;
    g->conns_tail = t;
    g->nconns++;
    pthread_mutex_unlock(&g->conns_mu);
    atomic_fetch_add(&g_open_connections, 1);
    return t;
}

void gf_http__conn_close(struct gf_http__guard *g, struct gf_http__conn *t)
{
    if (t == NULL)
        return;
    pthread_mutex_lock(&g->conns_mu);
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        g->conns_head = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    else
        g->conns_tail = t->prev;
    g->nconns--;
    pthread_mutex_unlock(&g->conns_mu);
    atomic_fetch_sub(&g_open_connections, 1);
    free(t);
}

/* --- the reaper -------------------------------------------------------------------------- */

/* Bytes the kernel holds for this connection that MHD has not read yet: the server is behind
 * (its thread busy in another connection's handler, or the process was paused), so whatever
 * the client sent is not late. -1 when it cannot tell. */
static int unread_bytes(int fd)
{
    int n = 0;
    return ioctl(fd, FIONREAD, &n) == 0 ? n : -1;
}

/* Bytes wait unread in the kernel (the server is behind: its thread busy in another
 * connection's handler): do they complete the request's head, or its body? Then the request
 * arrived whole and is not cut. A head is looked for in the unread bytes (the end of a head
 * split across MHD's buffer and the kernel's counts too, leniently); a body is complete when
 * the unread bytes cover what Content-Length still wants (unknown, chunked: not cut while
 * behind). What stays incomplete even with them is a trickler's, judged as usual. */
static bool waiting_whole(struct gf_http__guard *g, struct gf_http__conn *t, int phase, int unread)
{
    if (phase == PHASE_BODY) {
        long long left = (long long)atomic_load(&t->body_left);
        return left < 0 || (long long)unread >= left;
    }
    ssize_t n = recv(t->fd, g->peek, CONNECTION_MEMORY, MSG_PEEK | MSG_DONTWAIT);
    if (n <= 0)
        return false;
    const char *b = g->peek;
    size_t len = (size_t)n;
    return memmem(b, len, "\r\n\r\n", 4) != NULL || memmem(b, len, "\n\n", 2) != NULL ||
           b[0] == '\n' || (len >= 2 && b[0] == '\r' && b[1] == '\n') ||
           len == CONNECTION_MEMORY; /* too large to tell: MHD answers 431 itself */
}

/* When the kernel last received data on fd (gf_mono_us() time), or -1. */
static int64_t last_recv_us(int fd, int64_t now)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return -1;
    return now - (int64_t)ti.tcpi_last_data_recv * 1000;
}

/* A head or body past its deadline: is the client slow, or the server behind? Bytes waiting
 * unread in the kernel that complete the request mean the server is behind (waiting_whole):
 * never cut then. Other bytes that came after the server last made progress (the phase's
 * start for a head, the last chunk taken for a body) may be in MHD's hands this very moment,
 * or form a head or chunk framing that is still incomplete: they get min(timeout, 1 s) from
 * when they were first noticed (the kernel only tells when the last byte came). A head with
 * no byte since its phase began is an idle keep-alive connection: MHD's idle timeout's. A
 * body with nothing unprocessed is late. Called under conns_mu. */
static enum cut_reason late_verdict(struct gf_http__guard *g, struct gf_http__conn *t, int64_t now,
                                    int phase, int64_t timeout_us)
{
    int unread = unread_bytes(t->fd);
    int64_t recv_us = last_recv_us(t->fd, now);
    if (unread < 0 || recv_us < 0)
        return CUT_NONE;
    if (unread > 0 && waiting_whole(g, t, phase, unread))
        return CUT_NONE;
    int64_t since = (int64_t)atomic_load(&t->progress_us);
    if (recv_us <= since + RECV_SLOP_US) {
        if (phase == PHASE_BODY)
            return CUT_BODY;
        t->next_check_us = now + IDLE_RECHECK_US;
        return CUT_NONE;
    }
    if (t->head_seen_us == 0)
        t->head_seen_us = now;
    int64_t grace = timeout_us < 1000000 ? timeout_us : 1000000;
    if (now - t->head_seen_us >= grace)
        return phase == PHASE_BODY ? CUT_BODY : CUT_HEADER;
    return CUT_NONE;
}

/* An answer older than the body timeout: cut only when the client is not taking it (the
 * socket's send buffer is full); a writable socket means MHD has not written yet. */
static enum cut_reason send_verdict(struct gf_http__conn *t)
{
    struct pollfd p = {.fd = t->fd, .events = POLLOUT};
    int rc = poll(&p, 1, 0);
    return rc == 0 ? CUT_SEND : CUT_NONE;
}

/* Cuts t, if it is still in the state the verdict was about (seen): the swap to PHASE_CUT
 * makes sure no handler runs on it afterwards, and none is running now. */
static bool cut(struct gf_http__conn *t, unsigned seen, enum cut_reason why)
{
    static const char timeout_408[] = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                                      "Content-Length: 0\r\n\r\n";
    unsigned next = (seen & ~PHASE_MASK) | PHASE_CUT;
    if (!atomic_compare_exchange_strong(&t->state, &seen, next))
        return false; /* it moved on meanwhile: judged again next tick */
    t->cut = true;
    /* Nothing is being written on a connection still reading its request, and nothing will
     * be (the swap above): a 408 cannot interleave with an answer. An answer the client does
     * not take is closed without a status: a 408 would claim the request was not received.
     * Best effort; the close follows anyway. */
    if (why == CUT_HEADER || why == CUT_BODY)
        (void)send(t->fd, timeout_408, sizeof timeout_408 - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    /* MHD sees the end of the stream and closes the connection in its own thread. */
    shutdown(t->fd, SHUT_RDWR);
    gf_counter_add(g_cut[why], 1);
    GF_LOG_RL(GF_LOG_WARN, 5000, "http connection cut reason=%s", cut_reason_names[why]);
    return true;
}

/* One pass over the open connections. */
static void reap(struct gf_http__guard *g, int64_t now)
{
    /* Time the process did not run (stopped, frozen) is not the clients': every phase's age
     * counts from the end of such a gap. */
    struct timespec ts;
    int64_t cpu = clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0
                      ? (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000
                      : 0;
    int64_t gap = now - g->last_reap_us;
    if (g->last_reap_us != 0 && gap > STALL_US && cpu - g->last_cpu_us < gap / 10) {
        g->resumed_us = now;
        GF_WARN("http server did not run for ms=%lld: connection deadlines restart",
                (long long)(gap / 1000));
    }
    g->last_reap_us = now;
    g->last_cpu_us = cpu;
    pthread_mutex_lock(&g->conns_mu);
    /* Near the limit MHD would refuse new connections (probes included): idle ones go first,
     * oldest first, down to 80%. */
    int high = g->max_connections - g->max_connections / 10;
    int excess = g->nconns > high ? g->nconns - g->max_connections * 8 / 10 : 0;
    for (struct gf_http__conn *t = g->conns_head; t != NULL; t = t->next) {
        if (t->cut)
            continue;
        unsigned state = atomic_load(&t->state);
        int phase = (int)(state & PHASE_MASK);
        int64_t phase_us = (int64_t)atomic_load(&t->phase_us);
        unsigned gen = state >> PHASE_BITS;
        if (gen != t->seen_gen) {
            t->seen_gen = gen;
            t->head_seen_us = 0;
            t->next_check_us = 0;
        }
        int64_t age = now - (phase_us > g->resumed_us ? phase_us : g->resumed_us);
        enum cut_reason why = CUT_NONE;
        if (phase == PHASE_HEAD) {
            if (excess > 0 && age > IDLE_RECHECK_US && unread_bytes(t->fd) == 0)
                why = CUT_PRESSURE;
            else if (age > g->header_timeout_us && now >= t->next_check_us)
                why = late_verdict(g, t, now, phase, g->header_timeout_us);
        } else if (phase == PHASE_BODY && age > g->body_timeout_us && now >= t->next_check_us) {
            why = late_verdict(g, t, now, phase, g->body_timeout_us);
        } else if (phase == PHASE_SENDING && age > g->body_timeout_us) {
            why = send_verdict(t);
        }
        if (why != CUT_NONE && cut(t, state, why) && why == CUT_PRESSURE)
            excess--;
    }
    pthread_mutex_unlock(&g->conns_mu);
}

static void *reaper_run(void *arg)
{
    struct gf_http__guard *g = arg;
    gf_log_set_cid(NULL);
    pthread_mutex_lock(&g->stop_mu);
    while (!g->stopping) {
        struct timespec until = gf_deadline_mono_ts(gf_deadline_in_ms(REAPER_TICK_MS), -1);
        int rc = 0;
        while (!g->stopping && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&g->stop_cv, &g->stop_mu, &until);
        if (g->stopping)
            break;
        pthread_mutex_unlock(&g->stop_mu);
        reap(g, gf_mono_us());
        pthread_mutex_lock(&g->stop_mu);
    }
    pthread_mutex_unlock(&g->stop_mu);
    return NULL;
}

/* --- the guard ---------------------------------------------------------------------------- */

struct gf_http__guard *gf_http__guard_new(int max_connections, int64_t header_timeout_us,
                                          int64_t body_timeout_us)
{
    struct gf_http__guard *g = calloc(1, sizeof *g);
    struct gf_http__guard *res = NULL;
    if (g == NULL || (g->peek = malloc(CONNECTION_MEMORY)) == NULL) {
        GF_ERROR("http out of memory starting a server");
        goto out;
    }
    if (gf_cond_init_mono(&g->stop_cv) != 0) { /* the reaper waits on CLOCK_MONOTONIC */
        GF_ERROR("http cannot create the reaper's condition");
        goto out;
    }
    pthread_mutex_init(&g->conns_mu, NULL);
    pthread_mutex_init(&g->stop_mu, NULL);
    g->max_connections = max_connections;
    g->header_timeout_us = header_timeout_us;
    g->body_timeout_us = body_timeout_us;
    res = g;
    g = NULL;
out:
    if (g != NULL)
        free(g->peek);
    free(g);
    return res;
}

enum gf_status gf_http__guard_start(struct gf_http__guard *g)
{
    if (pthread_create(&g->reaper, NULL, reaper_run, g) != 0)
        return GF_EUNAVAILABLE;
    g->reaper_started = true;
    return GF_OK;
}

void gf_http__guard_stop(struct gf_http__guard *g)
{
    if (g == NULL || !g->reaper_started)
        return;
    pthread_mutex_lock(&g->stop_mu);
    g->stopping = true;
    pthread_cond_signal(&g->stop_cv);
    pthread_mutex_unlock(&g->stop_mu);
    pthread_join(g->reaper, NULL);
    g->reaper_started = false;
}

void gf_http__guard_free(struct gf_http__guard *g)
{
    if (g == NULL)
        return;
    gf_http__guard_stop(g);
    struct gf_http__conn *t = g->conns_head;
    while (t != NULL) { /* none left after MHD_stop_daemon; freed should one be */
        struct gf_http__conn *next = t->next;
        free(t);
        t = next;
    }
    pthread_cond_destroy(&g->stop_cv);
    pthread_mutex_destroy(&g->stop_mu);
    pthread_mutex_destroy(&g->conns_mu);
    free(g->peek);
    free(g);
}
