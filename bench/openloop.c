/* openloop: an open-loop HTTP/1.1 load generator. Requests arrive on a fixed schedule (t0 + i/rate,
 * or a Poisson process) whatever the server does, over a pool of kept-alive connections; an arrival
 * with no free connection waits in a queue, and its latency runs from its scheduled arrival to the
 * end of its response, so a slow server shows in the figures instead of slowing the load (wrk's
 * closed loop hides it: coordinated omission). One thread, epoll, plain sockets.
 *
 *   openloop --url http://127.0.0.1:PORT --op buy|add-gxp|get [--path /item] --rate R
 *            --seconds S [--conns N] [--poisson] [--seed N] [--users N] [--items N]
 *            [--timeout S] [--drain S] [--tsv FILE] [--interval S]
 *
 * The operator's bearer token comes from BENCH_TOKEN (as the wrk scripts take it). Prints one line
 * "OPENLOOP key=value ..." (see report()); --tsv writes one row per interval of completions. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "openloop_core.h"

#define MAX_CONNS 4096
#define MAX_RESPONSE (16u << 20) /* a response larger than this is an error */
#define MAX_LATENCIES (200u << 20)

enum op { OP_BUY, OP_ADD_GXP, OP_GET };

static struct {
    const char *host, *port, *path, *token, *tsv;
    enum op op;
    double rate, seconds, timeout, drain, interval;
    int conns, users, items;
    bool poisson;
    uint64_t seed;
} cfg = {.path = "/item",
         .timeout = 10,
         .drain = 15,
         .interval = 1,
         .conns = 64,
         .users = 1000,
         .items = 32,
         .seed = 1};

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("openloop: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- latencies (microseconds), growable ---------------------------------------------------- */
struct lats {
    uint32_t *v;
    size_t n, cap;
};

static void lats_add(struct lats *l, int64_t ns)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4096;
        if (cap > MAX_LATENCIES)
            die("more than %u latencies: a shorter run or a lower rate", MAX_LATENCIES);
        uint32_t *v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            die("out of memory");
        l->v = v;
        l->cap = cap;
    }
    int64_t us = ns < 0 ? 0 : ns / 1000;
    l->v[l->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* p as milliseconds, the values sorted first */
static double lats_ms(struct lats *l, double p)
{
    return ol_percentile(l->v, l->n, p) / 1000.0;
}

/* ---- counters: the whole run, and the current interval -------------------------------------- */
struct counts {
    uint64_t arrivals, ok, shed, s503_other, s4xx, s5xx, other, errors, timeouts;
    uint64_t ok_in_window; /* 2xx completed before the schedule's end: the goodput */
    struct lats ok_lat, all_lat;
};
static struct counts total, iv;
static struct lats gen_lag; /* dispatch delay of arrivals that found a free connection */
static uint64_t queue_max;

/* ---- the queue of arrivals waiting for a connection: scheduled times, a growable ring ------- */
static struct {
    int64_t *v;
    size_t head, n, cap;
} q;

static void q_push(int64_t t)
{
    if (q.n == q.cap) {
        size_t cap = q.cap ? q.cap * 2 : 1024;
        int64_t *v = malloc(cap * sizeof(*v));
        if (!v)
            die("out of memory");
        for (size_t i = 0; i < q.n; i++)
            v[i] = q.v[(q.head + i) % q.cap];
        free(q.v);
        q.v = v;
        q.head = 0;
        q.cap = cap;
    }
    q.v[(q.head + q.n++) % q.cap] = t;
    if (q.n > queue_max)
        queue_max = q.n;
}

static int64_t q_pop(void)
{
    int64_t t = q.v[q.head];
    q.head = (q.head + 1) % q.cap;
    q.n--;
    return t;
}

/* ---- connections ----------------------------------------------------------------------------- */
enum cstate { C_CLOSED, C_CONNECTING, C_IDLE, C_BUSY };
struct conn {
    int fd;
    enum cstate state;
    bool connected, want_out;
    int64_t sched, sent; /* the request's arrival and its send */
    char out[1024];
    size_t out_len, out_off;
    char *in;
    size_t in_len, in_cap;
};
static struct conn *conns;
static int epfd;
static struct addrinfo *addr;
static int64_t t0, t_end;
static uint64_t rng = 1;
static size_t busy;

/* Free connections: a stack of indexes. */
static int *idle;
static int n_idle;

static void conn_open(struct conn *c);
static void conn_free(struct conn *c, int64_t now);

/* Takes c off the free stack, if it is there. */
static void idle_remove(struct conn *c)
{
    int idx = (int)(c - conns);
    for (int i = 0; i < n_idle; i++)
        if (idle[i] == idx) {
            idle[i] = idle[--n_idle];
            return;
        }
}

static void conn_arm(struct conn *c, bool out)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        die("epoll_ctl: %s", strerror(errno));
    c->want_out = out;
}

/* Closes and reopens (the pool keeps its size); a request in flight is the caller's to count. */
static void conn_reset(struct conn *c)
{
    if (c->state == C_BUSY)
        busy--;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = C_CLOSED;
    c->in_len = 0;
    conn_open(c);
}

static void conn_open(struct conn *c)
{
    c->fd = socket(addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        die("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->connected = false;
    c->state = C_CONNECTING;
    if (connect(c->fd, addr->ai_addr, addr->ai_addrlen) != 0 && errno != EINPROGRESS)
        die("connect %s:%s: %s", cfg.host, cfg.port, strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        die("epoll_ctl: %s", strerror(errno));
    c->want_out = true;
}

/* A fresh UUID (version 4) for X-Correlation-Id: each request its own, as the services expect
 * of distinct operations. */
static void uuid4(char out[37])
{
    uint64_t a = ol_rand64(&rng), b = ol_rand64(&rng);
    a = (a & ~0xf000ULL) | 0x4000ULL;                        /* version 4 */
    b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL; /* variant 10 */
    snprintf(out, 37, "%08" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%012" PRIx64,
             a >> 32, (a >> 16) & 0xffff, a & 0xffff, b >> 48, b & (uint64_t)0xffffffffffff);
}

static void build_request(struct conn *c)
{
    char body[128], cid[37], auth[600] = "";
    const char *path = cfg.path, *method = "GET";
    int blen = 0;
    int user = 1 + (int)(ol_rand64(&rng) % (uint64_t)cfg.users);
    if (cfg.op == OP_BUY) {
        int item = 1 + (int)(ol_rand64(&rng) % (uint64_t)cfg.items);
        blen = snprintf(body, sizeof(body), "{\"userId\":%d,\"itemId\":%d}", user, item);
        path = "/marketplace/item/buy";
        method = "POST";
    } else if (cfg.op == OP_ADD_GXP) {
        blen = snprintf(body, sizeof(body), "{\"userId\":%d,\"amount\":1}", user);
        path = "/user/gxp/add";
        method = "POST";
    }
    uuid4(cid);
    if (cfg.token)
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", cfg.token);
    int n;
    if (blen > 0)
        n = snprintf(c->out, sizeof(c->out),
                     "%s %s HTTP/1.1\r\nHost: %s:%s\r\n%sX-Correlation-Id: %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                     method, path, cfg.host, cfg.port, auth, cid, blen, body);
    else
        n = snprintf(c->out, sizeof(c->out),
                     "%s %s HTTP/1.1\r\nHost: %s:%s\r\n%sX-Correlation-Id: %s\r\n\r\n", method,
                     path, cfg.host, cfg.port, auth, cid);
    if (n < 0 || (size_t)n >= sizeof(c->out))
        die("a request does not fit in %zu bytes (the token is too long?)", sizeof(c->out));
    c->out_len = (size_t)n;
    c->out_off = 0;
}

static void conn_write(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                if (!c->want_out)
                    conn_arm(c, true);
                return;
            }
            /* the connection broke under the request: an error, not retried */
            total.errors++;
            iv.errors++;
            conn_reset(c);
            conn_free(c, now_ns());
            return;
        }
        c->out_off += (size_t)w;
    }
    if (c->want_out)
        conn_arm(c, false);
}

/* Hands the arrival scheduled at sched to connection c. */
static void dispatch(struct conn *c, int64_t sched, int64_t now)
{
    c->sched = sched;
    c->sent = now;
    c->state = C_BUSY;
    busy++;
    c->in_len = 0;
    build_request(c);
    if (c->connected)
        conn_write(c);
    else if (!c->want_out)
        conn_arm(c, true);
}

static void conn_free(struct conn *c, int64_t now)
{
    if (q.n > 0) {
        dispatch(c, q_pop(), now);
        return;
    }
    c->state = c->connected ? C_IDLE : C_CONNECTING;
    idle[n_idle++] = (int)(c - conns);
}

static void record(int status, const char *body, size_t blen, int64_t now, struct conn *c)
{
    int64_t lat = now - c->sched;
    struct counts *both[2] = {&total, &iv};
    bool shed = false;
    if (status == 503) {
        char code[64];
        shed = ol_error_code(body, blen, code, sizeof(code)) && strcmp(code, "overloaded") == 0;
    }
    for (int k = 0; k < 2; k++) {
        struct counts *t = both[k];
        if (status >= 200 && status < 300) {
            t->ok++;
            lats_add(&t->ok_lat, lat);
            if (now <= t_end)
                t->ok_in_window++;
        } else if (status == 503) {
            if (shed)
                t->shed++;
            else
                t->s503_other++;
        } else if (status >= 400 && status < 500) {
            t->s4xx++;
        } else if (status >= 500) {
            t->s5xx++;
        } else {
            t->other++;
        }
        lats_add(&t->all_lat, lat);
    }
}

static void conn_read(struct conn *c, int64_t now)
{
    bool eof = false;
    for (;;) {
        if (c->in_cap - c->in_len < 4096) {
            size_t cap = c->in_cap ? c->in_cap * 2 : 16384;
            if (cap > MAX_RESPONSE) {
                if (c->state == C_BUSY) {
                    total.errors++;
                    iv.errors++;
                }
                conn_reset(c);
                return;
            }
            char *in = realloc(c->in, cap);
            if (!in)
                die("out of memory");
            c->in = in;
            c->in_cap = cap;
        }
        ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (r > 0) {
            c->in_len += (size_t)r;
            continue;
        }
        if (r == 0) {
            eof = true;
            break;
        }
        if (errno == EAGAIN || errno == EINTR)
            break;
        eof = true; /* reset: as a close */
        break;
    }
    if (c->state != C_BUSY) {
        /* a free connection the server closed (its keep-alive timeout): reopen it */
        if (eof || c->in_len > 0) {
            idle_remove(c);
            conn_reset(c);
            conn_free(c, now);
        }
        return;
    }
    struct ol_response resp;
    enum ol_parse p = ol_http_parse(c->in, c->in_len, eof, &resp);
    if (p == OL_PARSE_MORE)
        return;
    if (p == OL_PARSE_ERROR || resp.total != c->in_len) {
        /* garbage, a cut response, or bytes nobody asked for */
        total.errors++;
        iv.errors++;
        conn_reset(c);
        conn_free(c, now);
        return;
    }
    record(resp.status, c->in + resp.header_len, resp.total - resp.header_len, now, c);
    c->in_len = 0;
    busy--;
    c->state = C_IDLE;
    if (!resp.keep_alive || eof)
        conn_reset(c);
    conn_free(c, now);
}

/* ---- per-interval rows ------------------------------------------------------------------- */
static FILE *tsv;

static void interval_row(double at_s)
{
    if (tsv) {
        ol_sort_u32(iv.ok_lat.v, iv.ok_lat.n);
        ol_sort_u32(iv.all_lat.v, iv.all_lat.n);
        fprintf(tsv,
                "%.1f\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64
                "\t%" PRIu64 "\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%zu\t%zu\n",
                at_s, iv.arrivals, iv.ok, iv.shed, iv.s503_other, iv.s4xx + iv.s5xx + iv.other,
                iv.errors, iv.timeouts, lats_ms(&iv.ok_lat, 50), lats_ms(&iv.ok_lat, 99),
                lats_ms(&iv.ok_lat, 100), lats_ms(&iv.all_lat, 50), lats_ms(&iv.all_lat, 99), q.n,
                busy);
        fflush(tsv);
    }
    struct lats ok = iv.ok_lat, all = iv.all_lat;
    memset(&iv, 0, sizeof(iv));
    ok.n = all.n = 0;
    iv.ok_lat = ok;
    iv.all_lat = all;
}

static void report(int64_t end)
{
    /* the generator's own CPU (user + system): that it was not the bottleneck */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                   (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    ol_sort_u32(total.ok_lat.v, total.ok_lat.n);
    ol_sort_u32(total.all_lat.v, total.all_lat.n);
    ol_sort_u32(gen_lag.v, gen_lag.n);
    const char *ops[] = {"buy", "add-gxp", "get"};
    printf("OPENLOOP op=%s rate=%.1f seconds=%.1f conns=%d poisson=%d offered=%.1f goodput=%.1f "
           "arrivals=%" PRIu64 " ok=%" PRIu64 " shed=%" PRIu64 " s503_other=%" PRIu64
           " s4xx=%" PRIu64 " s5xx=%" PRIu64 " other=%" PRIu64 " errors=%" PRIu64
           " timeouts=%" PRIu64 " unfinished=%zu p50=%.2f p90=%.2f p99=%.2f max=%.2f"
           " all_p50=%.2f all_p90=%.2f all_p99=%.2f all_max=%.2f queue_max=%" PRIu64
           " gen_lag_p99=%.3f drain_s=%.2f cpu_s=%.2f\n",
           ops[cfg.op], cfg.rate, cfg.seconds, cfg.conns, cfg.poisson, total.arrivals / cfg.seconds,
           total.ok_in_window / cfg.seconds, total.arrivals, total.ok, total.shed, total.s503_other,
           total.s4xx, total.s5xx, total.other, total.errors, total.timeouts, q.n + busy,
           lats_ms(&total.ok_lat, 50), lats_ms(&total.ok_lat, 90), lats_ms(&total.ok_lat, 99),
           lats_ms(&total.ok_lat, 100), lats_ms(&total.all_lat, 50), lats_ms(&total.all_lat, 90),
           lats_ms(&total.all_lat, 99), lats_ms(&total.all_lat, 100), queue_max,
           lats_ms(&gen_lag, 99), end > t_end ? (end - t_end) / 1e9 : 0.0, cpu_s);
}

/* ---- the command line -------------------------------------------------------------------- */
static double num(const char *opt, const char *s, double lo, double hi)
{
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (errno || e == s || *e || !(v >= lo && v <= hi))
        die("%s: want a number in [%g, %g], got '%s'", opt, lo, hi, s);
    return v;
}

static void usage(FILE *f)
{
    fputs("usage: openloop --url http://HOST:PORT --op buy|add-gxp|get [--path P] --rate R\n"
          "                --seconds S [--conns N] [--poisson] [--seed N] [--users N] [--items N]\n"
          "                [--timeout S] [--drain S] [--tsv FILE] [--interval S]\n"
          "BENCH_TOKEN: a bearer token every request carries.\n",
          f);
}

static void parse_args(int argc, char **argv)
{
    static const struct option opts[] = {{"url", 1, 0, 'u'},     {"op", 1, 0, 'o'},
                                         {"path", 1, 0, 'P'},    {"rate", 1, 0, 'r'},
                                         {"seconds", 1, 0, 's'}, {"conns", 1, 0, 'c'},
                                         {"poisson", 0, 0, 'p'}, {"seed", 1, 0, 'S'},
                                         {"users", 1, 0, 'U'},   {"items", 1, 0, 'I'},
                                         {"timeout", 1, 0, 't'}, {"drain", 1, 0, 'd'},
                                         {"tsv", 1, 0, 'T'},     {"interval", 1, 0, 'i'},
                                         {"help", 0, 0, 'h'},    {0, 0, 0, 0}};
    static char hostbuf[256], portbuf[16];
    const char *url = NULL, *op = NULL;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'u':
            url = optarg;
            break;
        case 'o':
            op = optarg;
            break;
        case 'P':
            cfg.path = optarg;
            break;
        case 'r':
            cfg.rate = num("--rate", optarg, 0.001, 1e6);
            break;
        case 's':
            cfg.seconds = num("--seconds", optarg, 0.001, 86400 * 7);
            break;
        case 'c':
            cfg.conns = (int)num("--conns", optarg, 1, MAX_CONNS);
            break;
        case 'p':
            cfg.poisson = true;
            break;
        case 'S':
            cfg.seed = (uint64_t)num("--seed", optarg, 0, 9e15);
            break;
        case 'U':
            cfg.users = (int)num("--users", optarg, 1, 1e9);
            break;
        case 'I':
            cfg.items = (int)num("--items", optarg, 1, 1e9);
            break;
        case 't':
            cfg.timeout = num("--timeout", optarg, 0.001, 3600);
            break;
        case 'd':
            cfg.drain = num("--drain", optarg, 0, 3600);
            break;
        case 'T':
            cfg.tsv = optarg;
            break;
        case 'i':
            cfg.interval = num("--interval", optarg, 0.1, 3600);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind != argc)
        die("unexpected argument '%s'", argv[optind]);
    if (!url || !op || cfg.rate <= 0 || cfg.seconds <= 0) {
        usage(stderr);
        die("--url, --op, --rate and --seconds are required");
    }
    if (strcmp(op, "buy") == 0)
        cfg.op = OP_BUY;
    else if (strcmp(op, "add-gxp") == 0)
        cfg.op = OP_ADD_GXP;
    else if (strcmp(op, "get") == 0)
        cfg.op = OP_GET;
    else
        die("--op: buy, add-gxp or get, not '%s'", op);
    if (cfg.path[0] != '/' || strpbrk(cfg.path, " \r\n"))
        die("--path: an absolute path without spaces, not '%s'", cfg.path);
    /* http://HOST:PORT[/] only: the path is the operation's */
    if (strncmp(url, "http://", 7) != 0)
        die("--url: http://HOST:PORT, not '%s'", url);
    const char *h = url + 7, *colon = strchr(h, ':');
    if (!colon || colon == h || (size_t)(colon - h) >= sizeof(hostbuf))
        die("--url: http://HOST:PORT, not '%s'", url);
    memcpy(hostbuf, h, (size_t)(colon - h));
    const char *pe = colon + 1;
    size_t pl = strspn(pe, "0123456789");
    if (pl == 0 || pl >= sizeof(portbuf) || (pe[pl] && strcmp(pe + pl, "/") != 0))
        die("--url: http://HOST:PORT, not '%s'", url);
    memcpy(portbuf, pe, pl);
    cfg.host = hostbuf;
    cfg.port = portbuf;
    const char *tok = getenv("BENCH_TOKEN");
    if (tok && *tok) {
        if (strpbrk(tok, " \r\n"))
            die("BENCH_TOKEN holds a space or a line break");
        cfg.token = tok;
    }
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int gai = getaddrinfo(cfg.host, cfg.port, &hints, &addr);
    if (gai != 0)
        die("%s:%s: %s", cfg.host, cfg.port, gai_strerror(gai));
    rng = cfg.seed * 0x2545f4914f6cdd1dULL + 7;
    if (cfg.tsv) {
        tsv = fopen(cfg.tsv, "w");
        if (!tsv)
            die("%s: %s", cfg.tsv, strerror(errno));
        fputs("t_s\tarrivals\tok\tshed\ts503_other\tother_status\terrors\ttimeouts\tp50_ms\tp99_"
              "ms\tmax_ms\tall_p50_ms\tall_p99_ms\tqueued\tinflight\n",
              tsv);
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (epfd < 0 || tfd < 0)
        die("epoll/timerfd: %s", strerror(errno));
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &tev) != 0)
        die("epoll_ctl: %s", strerror(errno));
    conns = calloc((size_t)cfg.conns, sizeof(*conns));
    idle = calloc((size_t)cfg.conns, sizeof(*idle));
    if (!conns || !idle)
        die("out of memory");

    /* The pool opens first: the schedule starts once every connection is up (or 5 s passed),
     * so that the first arrivals do not pay for connecting. */
    for (int i = 0; i < cfg.conns; i++) {
        conns[i].fd = -1;
        conn_open(&conns[i]);
        idle[n_idle++] = i;
    }
    struct epoll_event evs[256];
    int64_t open_deadline = now_ns() + 5000000000LL;
    for (int up = 0; up < cfg.conns && now_ns() < open_deadline;) {
        int n = epoll_wait(epfd, evs, 256, 100);
        for (int k = 0; k < n; k++) {
            struct conn *c = evs[k].data.ptr;
            if (!c || c->connected)
                continue;
            int err = 0;
            socklen_t el = sizeof(err);
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
            if (err)
                die("connect %s:%s: %s", cfg.host, cfg.port, strerror(err));
            if (evs[k].events & EPOLLOUT) {
                c->connected = true;
                c->state = C_IDLE;
                conn_arm(c, false);
                up++;
            }
        }
    }

    struct ol_schedule sched;
    ol_schedule_init(&sched, cfg.rate, cfg.poisson, cfg.seed);
    t0 = now_ns();
    t_end = t0 + (int64_t)(cfg.seconds * 1e9);
    int64_t drain_end = t_end + (int64_t)(cfg.drain * 1e9);
    int64_t next = t0 + (int64_t)(ol_schedule_next(&sched) * 1e9);
    int64_t iv_len = (int64_t)(cfg.interval * 1e9), iv_next = t0 + iv_len, sweep_next = t0;
    bool scheduling = true;
    int64_t armed = -1;
    for (;;) {
        int64_t now = now_ns();
        /* the arrivals due: to a free connection, else to the queue */
        while (scheduling && next <= now) {
            if (next >= t_end) {
                scheduling = false;
                break;
            }
            total.arrivals++;
            iv.arrivals++;
            if (n_idle > 0) {
                lats_add(&gen_lag, now - next);
                dispatch(&conns[idle[--n_idle]], next, now);
            } else {
                q_push(next);
            }
            next = t0 + (int64_t)(ol_schedule_next(&sched) * 1e9);
        }
        if (now >= iv_next) {
            interval_row((iv_next - t0) / 1e9);
            iv_next += iv_len;
        }
        if (now >= sweep_next) {
            /* requests past their timeout (from their send): counted, their connection reset */
            for (int i = 0; i < cfg.conns; i++) {
                struct conn *c = &conns[i];
                if (c->state == C_BUSY && now - c->sent > (int64_t)(cfg.timeout * 1e9)) {
                    total.timeouts++;
                    iv.timeouts++;
                    conn_reset(c);
                    conn_free(c, now);
                } else if (c->state == C_CLOSED && c->fd < 0) {
                    /* one that failed to reconnect: another attempt */
                    conn_open(c);
                    conn_free(c, now);
                }
            }
            sweep_next = now + 100000000;
        }
        if (!scheduling && ((q.n == 0 && busy == 0) || now >= drain_end))
            break;
        /* sleep until the next arrival (the timer, to the nanosecond) or 100 ms */
        if (scheduling && next != armed) {
            struct itimerspec its = {
                .it_value = {.tv_sec = next / 1000000000, .tv_nsec = next % 1000000000}};
            timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
            armed = next;
        }
        int n = epoll_wait(epfd, evs, 256, 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        now = now_ns();
        for (int k = 0; k < n; k++) {
            struct conn *c = evs[k].data.ptr;
            if (!c) {
                uint64_t exp;
                if (read(tfd, &exp, sizeof(exp)) < 0 && errno != EAGAIN)
                    die("timerfd: %s", strerror(errno));
                continue;
            }
            if (c->fd < 0)
                continue;
            uint32_t e = evs[k].events;
            if (!c->connected && (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
                int err = 0;
                socklen_t el = sizeof(err);
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err || (e & (EPOLLERR | EPOLLHUP))) {
                    bool was_busy = c->state == C_BUSY;
                    if (was_busy) {
                        total.errors++;
                        iv.errors++;
                    }
                    /* a refused reconnect: off the free stack, tried again at the next sweep
                     * rather than in a loop */
                    idle_remove(c);
                    close(c->fd);
                    c->fd = -1;
                    if (was_busy)
                        busy--;
                    c->state = C_CLOSED;
                    continue;
                }
                c->connected = true;
                if (c->state == C_CONNECTING)
                    c->state = C_IDLE;
            }
            if ((e & EPOLLOUT) && c->state == C_BUSY)
                conn_write(c);
            else if ((e & EPOLLOUT) && c->want_out && c->fd >= 0)
                conn_arm(c, false);
            if (c->fd >= 0 && (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                conn_read(c, now);
        }
    }
    int64_t end = now_ns();
    if (iv.arrivals || iv.ok || iv.all_lat.n || iv.errors || iv.timeouts)
        interval_row((end - t0) / 1e9);
    report(end);
    if (tsv)
        fclose(tsv);
    return 0;
}
