/* Hostile clients against the real backend (and gxp's HTTP port), over raw sockets: thousands
 * of idle connections, slow-loris heads and bodies, oversized heads and URLs, and a flood of
 * requests beyond capacity, first on a healthy database and then with the table it reads
 * locked. Throughout, /healthz is probed on a new connection every 100 ms and must answer 200
 * within a bound; the flood must get 503s with Retry-After (and never hang); the tricklers
 * must be cut after their deadline; normal requests must succeed again once the flood stops;
 * and the services must exit cleanly (the ASan build's leak check included). The figures
 * measured are printed (the overload behaviour in README.md comes from them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "backend_fixture.h"
#include "gf/clock.h"

#define IDLE_CONNECTIONS 3000
#define HEAD_TRICKLERS 20
#define BODY_TRICKLERS 10
#define GXP_TRICKLERS 3
#define FLOOD_CONNECTIONS 64
#define HEADER_TIMEOUT_MS 2000
#define BODY_TIMEOUT_MS 3000
#define GXP_HEADER_TIMEOUT_MS 10000 /* gxp's default: the fixture sets none */
#define PROBE_BOUND_MS 2000         /* every probe answers within this (ASan, 2 shared cores) */

/* ---- raw sockets ------------------------------------------------------------------------ */

static int tcp_connect(int port, int rcv_timeout_s)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = rcv_timeout_s};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One answer read whole into buf (head, then Content-Length bytes). Its status; -1 when the
 * peer closed or the read timed out (errno EAGAIN) first. */
static int read_answer(int fd, char *buf, size_t n)
{
    size_t have = 0;
    buf[0] = '\0';
    for (;;) {
        char *end = strstr(buf, "\r\n\r\n");
        if (end != NULL) {
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            size_t want = cl != NULL && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
            if (have >= (size_t)(end + 4 - buf) + want)
                break;
        }
        if (have == n - 1)
            break;
        ssize_t r = recv(fd, buf + have, n - 1 - have, 0);
        if (r <= 0)
            return -1;
        have += (size_t)r;
        buf[have] = '\0';
    }
    int status = -1;
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
        return -1;
    return status;
}

/* True once the peer closed (EOF or reset) within ms, draining what it sent first. */
static bool closed_within(int fd, int ms)
{
    int64_t end = gf_mono_ms() + ms;
    for (;;) {
        int64_t left = end - gf_mono_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left < 0 || poll(&p, 1, (int)left) <= 0)
            return false;
        char buf[512];
        ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            return true;
    }
}

/* GET path on a new connection: status, and the time it took in *us. */
static int get_once(int port, const char *path, int64_t *us)
{
    int64_t t0 = gf_mono_us();
    int st = -1;
    int fd = tcp_connect(port, 5);
    if (fd >= 0) {
        char req[128], buf[8192];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
        if (send_all(fd, req, strlen(req)) == 0)
            st = read_answer(fd, buf, sizeof buf);
        close(fd);
    }
    if (us != NULL)
        *us = gf_mono_us() - t0;
    return st;
}

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    }
    if (f != NULL)
        fclose(f);
    return kb;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

/* ---- the probe: GET /healthz on a new connection every 100 ms ---------------------------- */

#define MAX_PROBES 2000
static struct {
    pthread_t thread;
    bool running;
    atomic_bool stop;
    int port;
    int n, failed;
    long long us[MAX_PROBES];
} probe;

static void *probe_run(void *arg)
{
    (void)arg;
    while (!atomic_load(&probe.stop) && probe.n < MAX_PROBES) {
        int64_t us;
        int st = get_once(probe.port, "/healthz", &us);
        if (st != 200) {
            probe.failed++;
            fprintf(stderr, "probe: /healthz answered %d after %lld us\n", st, (long long)us);
        }
        probe.us[probe.n++] = us;
        usleep(100 * 1000);
    }
    return NULL;
}

/* ---- slow-loris: heads and bodies trickled a byte at a time ------------------------------- */

struct trickler {
    int fd;
    bool body;        /* POST with a body trickled, else a head trickled */
    int64_t start_ms; /* when its first byte went */
    int64_t cut_ms;   /* how long it lived (-1 while alive) */
    size_t sent;
};

#define NTRICKLERS (HEAD_TRICKLERS + BODY_TRICKLERS + GXP_TRICKLERS)
static struct {
    pthread_t thread;
    bool running;
    struct trickler t[NTRICKLERS];
    _Atomic int64_t until_ms;
} slow;

static void *slow_run(void *arg)
{
    (void)arg;
    static const char head[] = "GET /item HTTP/1.1\r\nHost: t\r\nX-Slow: "
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    bool alive = true;
    while (alive && gf_mono_ms() < slow.until_ms) {
        alive = false;
        for (int i = 0; i < NTRICKLERS; i++) {
            struct trickler *t = &slow.t[i];
            if (t->cut_ms >= 0 || t->fd < 0)
                continue;
            char c = t->body ? 'x' : head[t->sent % (sizeof head - 1)];
            if (send(t->fd, &c, 1, MSG_NOSIGNAL) == 1)
                t->sent++;
            if (closed_within(t->fd, 0) || t->sent > 10000)
                t->cut_ms = gf_mono_ms() - t->start_ms;
            else
                alive = true;
        }
        /* One byte per connection every 300 ms: never idle long enough for the idle timeout. */
        for (int k = 0; k < 6 && alive; k++) {
            usleep(50 * 1000);
            for (int i = 0; i < NTRICKLERS; i++) {
                struct trickler *t = &slow.t[i];
                if (t->cut_ms < 0 && t->fd >= 0 && closed_within(t->fd, 0))
                    t->cut_ms = gf_mono_ms() - t->start_ms;
            }
        }
    }
    return NULL;
}

static void slow_start(int backend_port, int gxp_port)
{
    for (int i = 0; i < NTRICKLERS; i++) {
        struct trickler *t = &slow.t[i];
        bool gxp = i >= HEAD_TRICKLERS + BODY_TRICKLERS;
        t->body = i >= HEAD_TRICKLERS && !gxp;
        t->fd = tcp_connect(gxp ? gxp_port : backend_port, 5);
        assert_true(t->fd >= 0);
        t->cut_ms = -1;
        if (t->body) {
            const char *h = "POST /user/create HTTP/1.1\r\nHost: t\r\nContent-Type: "
                            "application/json\r\nContent-Length: 4000\r\n\r\n";
            assert_int_equal(send_all(t->fd, h, strlen(h)), 0);
        }
        t->start_ms = gf_mono_ms();
    }
    slow.until_ms = gf_mono_ms() + GXP_HEADER_TIMEOUT_MS + 6000;
    assert_int_equal(pthread_create(&slow.thread, NULL, slow_run, NULL), 0);
    slow.running = true;
}

/* ---- the flood: keep-alive connections asking back to back ------------------------------- */

static struct {
    pthread_t threads[FLOOD_CONNECTIONS];
    bool running;
    atomic_bool stop;
    int port;
    atomic_long ok, shed, failed, other, hung, reconnects;
    atomic_long shed_without_retry_after, shed_not_json;
} flood;

static void *flood_run(void *arg)
{
    (void)arg;
    static const char req[] = "GET /item HTTP/1.1\r\nHost: t\r\n\r\n";
    char *buf = malloc(1 << 16);
    int fd = -1;
    while (buf != NULL && !atomic_load(&flood.stop)) {
        if (fd < 0 && (fd = tcp_connect(flood.port, 10)) < 0) {
            atomic_fetch_add(&flood.other, 1);
            usleep(10 * 1000);
            continue;
        }
        errno = 0;
        int st = send_all(fd, req, sizeof req - 1) == 0 ? read_answer(fd, buf, 1 << 16) : -1;
        if (st >= 200 && st < 300) {
            atomic_fetch_add(&flood.ok, 1);
        } else if (st == 503) {
            atomic_fetch_add(&flood.shed, 1);
            if (strcasestr(buf, "\r\nRetry-After: 1\r\n") == NULL)
                atomic_fetch_add(&flood.shed_without_retry_after, 1);
            if (strstr(buf, "\"error\":\"overloaded\"") == NULL ||
                strstr(buf, "\"correlationId\":\"") == NULL)
                atomic_fetch_add(&flood.shed_not_json, 1);
        } else if (st >= 500) {
            atomic_fetch_add(&flood.failed, 1); /* a handler's own 5xx (504 from the pool) */
        } else if (st < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            atomic_fetch_add(&flood.hung, 1); /* no answer in 10 s */
        } else {
            atomic_fetch_add(&flood.other, 1);
        }
        if (st < 0 || strcasestr(buf, "\r\nConnection: close") != NULL) {
            close(fd);
            fd = -1;
            atomic_fetch_add(&flood.reconnects, 1);
        }
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    return NULL;
}

static void flood_start(int port)
{
    flood.port = port;
    atomic_store(&flood.stop, false);
    atomic_store(&flood.ok, 0);
    atomic_store(&flood.shed, 0);
    atomic_store(&flood.failed, 0);
    atomic_store(&flood.other, 0);
    atomic_store(&flood.hung, 0);
    for (int i = 0; i < FLOOD_CONNECTIONS; i++)
        assert_int_equal(pthread_create(&flood.threads[i], NULL, flood_run, NULL), 0);
    flood.running = true;
}

static void flood_stop(const char *phase, double seconds)
{
    atomic_store(&flood.stop, true);
    for (int i = 0; i < FLOOD_CONNECTIONS; i++)
        pthread_join(flood.threads[i], NULL);
    flood.running = false;
    long ok = atomic_load(&flood.ok), shed = atomic_load(&flood.shed);
    printf("flood %s: %d connections %.1f s: 2xx=%ld (%.0f/s) 503=%ld (%.0f/s) other 5xx=%ld "
           "other=%ld hung=%ld\n",
           phase, FLOOD_CONNECTIONS, seconds, ok, ok / seconds, shed, shed / seconds,
           atomic_load(&flood.failed), atomic_load(&flood.other), atomic_load(&flood.hung));
    assert_int_equal(atomic_load(&flood.hung), 0);
    assert_int_equal(atomic_load(&flood.other), 0);
    assert_int_equal(atomic_load(&flood.shed_without_retry_after), 0);
    assert_int_equal(atomic_load(&flood.shed_not_json), 0);
}

/* ---- the test ----------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    /* Thousands of connections need thousands of descriptors here too. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < IDLE_CONNECTIONS + 1000) {
        fprintf(stderr, "RLIMIT_NOFILE %llu is too low for this test\n",
                (unsigned long long)rl.rlim_cur);
        return -1;
    }
    static const char *const env[] = {"BACKEND_HTTP_HEADER_TIMEOUT_MS=2000", /* HEADER_TIMEOUT_MS */
                                      "BACKEND_HTTP_BODY_TIMEOUT_MS=3000",   /* BODY_TIMEOUT_MS */
                                      /* The flood under a locked table is about handlers
                                       * that block for the whole 3 s: no lock_timeout, and
                                       * an admission limit well below the connections the
                                       * flood's 64 land on (libmicrohttpd spreads them over
                                       * its threads unevenly: with the default 36 of 48, a
                                       * run could block fewer than 36 and shed nothing). */
                                      "BACKEND_DB_LOCK_TIMEOUT_MS=0", "BACKEND_HTTP_MAX_INFLIGHT=8",
                                      NULL};
    struct world_options o = {.extra_env = env, .watchers_off = true};
    return world_start(&W, &o);
}

static void sorted_percentiles(long long *v, int n, long long *p50, long long *p99, long long *max)
{
    qsort(v, (size_t)n, sizeof v[0], cmp_ll);
    *p50 = v[n / 2];
    *p99 = v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
    *max = v[n - 1];
}

static void the_services_shed_cut_and_keep_answering_probes(void **state)
{
    (void)state;
    int port = W.http_port;
    struct http_res r;
    long rss0 = rss_kb(W.backend_pid);

    probe.port = port;
    assert_int_equal(pthread_create(&probe.thread, NULL, probe_run, NULL), 0);
    probe.running = true;

    /* 1. Thousands of idle connections (nothing sent), on the backend and gxp. */
    static int idle[IDLE_CONNECTIONS];
    int64_t t0 = gf_mono_ms();
    for (int i = 0; i < IDLE_CONNECTIONS; i++) {
        idle[i] = tcp_connect(i % 10 == 0 ? W.gxp_http_port : port, 5);
        assert_true(idle[i] >= 0);
    }
    int64_t idle_since = gf_mono_ms();
    printf("idle: %d connections opened in %lld ms\n", IDLE_CONNECTIONS,
           (long long)(idle_since - t0));
    usleep(500 * 1000);
    int64_t us;
    assert_int_equal(get_once(port, "/healthz", &us), 200);
    assert_int_equal(get_once(W.gxp_http_port, "/healthz", NULL), 200);
    assert_int_equal(http(&W, "GET", "/item", NULL, NULL, &r), 200);
    http_res_free(&r);

    long rss1 = rss_kb(W.backend_pid);

    /* 2. Slow-loris: heads and bodies trickled, on their own thread until cut. */
    slow_start(port, W.gxp_http_port);

    /* 3. Oversized heads and URLs: 431 / 414 and a close, without memory growth. */
    size_t big = 64 * 1024;
    char *req = malloc(big + 128);
    char *buf = malloc(1 << 16);
    assert_non_null(req);
    assert_non_null(buf);
    int n431 = 0, n414 = 0;
    for (int i = 0; i < 200; i++) {
        bool url = i % 4 == 3;
        int target = i % 10 == 9 ? W.gxp_http_port : port;
        int n = snprintf(req, 128, url ? "GET /" : "GET /item HTTP/1.1\r\nHost: t\r\nX-Big: ");
        memset(req + n, 'a', big);
        strcpy(req + n + big, url ? " HTTP/1.1\r\nHost: t\r\n\r\n" : "\r\n\r\n");
        int fd = tcp_connect(target, 5);
        assert_true(fd >= 0);
        (void)send_all(fd, req, strlen(req)); /* the server may stop reading midway */
        int st = read_answer(fd, buf, 1 << 16);
        if (st == 431)
            n431++;
        else if (st == 414)
            n414++;
        else
            fprintf(stderr, "oversized %s: status %d\n", url ? "URL" : "head", st);
        close(fd);
    }
    free(req); /* before the asserts: a failed one leaves the test here */
    long rss2 = rss_kb(W.backend_pid);
    printf("backend RSS: %ld kB, %ld kB with %d idle connections, %ld kB after the oversized\n",
           rss0, rss1, IDLE_CONNECTIONS, rss2);
    printf("oversized: 200 requests (150 heads, 50 URLs of 64 KiB): 431=%d 414=%d\n", n431, n414);
    assert_int_equal(n431 + n414, 200);
    assert_true(rss2 - rss1 < 64 * 1024); /* what one at a time could hold, with margin */

    /* 4. A flood on a healthy database, then with items locked (every handler blocks). */
    flood_start(port);
    usleep(4000 * 1000);
    flood_stop("healthy database", 4.0);

    flood_start(port);
    usleep(500 * 1000);
    sql_exec(W.backend, "BEGIN");
    sql_exec(W.backend, "LOCK TABLE items IN ACCESS EXCLUSIVE MODE");
    int64_t hold = gf_mono_ms();
    /* /readyz is not limited and asks the database pool, of which the admission limit leaves
     * two connections to it and the background work: it must answer (200, or 503 should the
     * background work hold those two). */
    int ok_under_lock = 0, probes_under_lock = 0;
    int64_t readyz_max_us = 0;
    while (gf_mono_ms() - hold < 3000) {
        int st = get_once(port, "/readyz", &us);
        if (st != 200 && st != 503) /* -1: no connection, or no answer in 5 s */
            fail_msg("/readyz under the lock answered %d after %.1f ms", st, us / 1000.0);
        ok_under_lock += st == 200;
        probes_under_lock++;
        if (us > readyz_max_us)
            readyz_max_us = us;
        usleep(200 * 1000);
    }
    sql_exec(W.backend, "COMMIT");
    usleep(500 * 1000);
    flood_stop("items locked 3 s", 4.0);
    long shed_under_lock = atomic_load(&flood.shed);
    printf("under the lock: /readyz 200 in %d of %d, slowest %.1f ms\n", ok_under_lock,
           probes_under_lock, readyz_max_us / 1000.0);
    assert_true(shed_under_lock > 0);

    /* 5. Recovery: normal requests succeed again. */
    t0 = gf_mono_ms();
    long st = 0;
    while ((st = http(&W, "GET", "/item", NULL, NULL, &r)) != 200 && gf_mono_ms() - t0 < 5000) {
        http_res_free(&r);
        usleep(10 * 1000);
    }
    http_res_free(&r);
    printf("recovery: GET /item 200 again after %lld ms\n", (long long)(gf_mono_ms() - t0));
    assert_int_equal(st, 200);
    long long user = api_create_user(&W, "after-the-flood");
    assert_true(user > 0);

    /* 6. The tricklers were cut after their deadlines (and not before). */
    pthread_join(slow.thread, NULL);
    slow.running = false;
    int64_t head_max = 0, body_max = 0, gxp_max = 0, min_ms[3] = {INT64_MAX, INT64_MAX, INT64_MAX};
    for (int i = 0; i < NTRICKLERS; i++) {
        struct trickler *t = &slow.t[i];
        int kind = i < HEAD_TRICKLERS ? 0 : i < HEAD_TRICKLERS + BODY_TRICKLERS ? 1 : 2;
        int64_t *max = kind == 0 ? &head_max : kind == 1 ? &body_max : &gxp_max;
        assert_true(t->cut_ms >= 0); /* cut, not alive at the end */
        if (t->cut_ms > *max)
            *max = t->cut_ms;
        if (t->cut_ms < min_ms[kind])
            min_ms[kind] = t->cut_ms;
        close(t->fd);
    }
    printf("slow-loris: %d heads cut after %lld..%lld ms (deadline %d), %d bodies after "
           "%lld..%lld ms (deadline %d), %d on gxp after %lld..%lld ms (deadline %d)\n",
           HEAD_TRICKLERS, (long long)min_ms[0], (long long)head_max, HEADER_TIMEOUT_MS,
           BODY_TRICKLERS, (long long)min_ms[1], (long long)body_max, BODY_TIMEOUT_MS,
           GXP_TRICKLERS, (long long)min_ms[2], (long long)gxp_max, GXP_HEADER_TIMEOUT_MS);
    assert_true(min_ms[0] >= HEADER_TIMEOUT_MS - 100);
    assert_true(head_max <= HEADER_TIMEOUT_MS + 3000);
    assert_true(min_ms[1] >= BODY_TIMEOUT_MS - 100);
    assert_true(body_max <= BODY_TIMEOUT_MS + 3000);
    assert_true(min_ms[2] >= GXP_HEADER_TIMEOUT_MS - 100);
    assert_true(gxp_max <= GXP_HEADER_TIMEOUT_MS + 3000);

    /* 7. The idle connections were held all along (the idle timeout is 30 s). */
    int held = 0;
    for (int i = 0; i < IDLE_CONNECTIONS; i++) {
        if (!closed_within(idle[i], 0))
            held++;
        close(idle[i]);
    }
    printf("idle: %d of %d connections still open after %lld ms\n", held, IDLE_CONNECTIONS,
           (long long)(gf_mono_ms() - idle_since));
    assert_true(held >= IDLE_CONNECTIONS * 9 / 10);

    /* 8. The probes, all along. */
    atomic_store(&probe.stop, true);
    pthread_join(probe.thread, NULL);
    probe.running = false;
    long long p50, p99, max;
    sorted_percentiles(probe.us, probe.n, &p50, &p99, &max);
    printf("probes: %d /healthz on new connections, %d failed; latency p50=%.1f ms "
           "p99=%.1f ms max=%.1f ms\n",
           probe.n, probe.failed, p50 / 1000.0, p99 / 1000.0, max / 1000.0);
    assert_int_equal(probe.failed, 0);
    assert_true(max < PROBE_BOUND_MS * 1000LL);

    /* 9. The counters say the same. */
    assert_int_equal(http(&W, "GET", "/metrics", NULL, NULL, &r), 200);
    printf("metrics:\n");
    for (const char *l = r.body; l != NULL && *l != '\0';
         l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, "gf_http_", 8) == 0)
            printf("  %.*s\n", (int)strcspn(l, "\n"), l);
    }
    assert_non_null(strstr(r.body, "gf_http_shed_total{reason=\"overloaded\"}"));
    assert_null(strstr(r.body, "gf_http_shed_total{reason=\"overloaded\"} 0\n"));
    assert_null(strstr(r.body, "gf_http_connections_cut_total{reason=\"header_timeout\"} 0\n"));
    assert_null(strstr(r.body, "gf_http_connections_cut_total{reason=\"body_timeout\"} 0\n"));
    http_res_free(&r);
    free(buf);
    fflush(stdout);
}

/* Stops the client threads a failed assertion left running, then the world. */
static int teardown(void **state)
{
    if (flood.running) {
        atomic_store(&flood.stop, true);
        for (int i = 0; i < FLOOD_CONNECTIONS; i++)
            pthread_join(flood.threads[i], NULL);
    }
    if (slow.running) {
        atomic_store(&slow.until_ms, 0);
        pthread_join(slow.thread, NULL);
    }
    if (probe.running) {
        atomic_store(&probe.stop, true);
        pthread_join(probe.thread, NULL);
    }
    flood.running = slow.running = probe.running = false;
    return world_teardown(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_services_shed_cut_and_keep_answering_probes),
    };
    return cmocka_run_group_tests_name("hostile", tests, setup, teardown);
}
