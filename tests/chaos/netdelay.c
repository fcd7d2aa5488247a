/* gf-netdelay: holds every packet of one netfilter queue for a fixed time, then lets it go —
 * the delay half of tests/harness/netfault.sh on kernels without tc netem (this machine's has
 * neither netem nor prio). netfault.sh sends the chosen ports' packets to the queue with
 * `iptables ... -j NFQUEUE --queue-num N --queue-bypass`, so when this program is not running
 * the packets pass undelayed, never dropped.
 *
 *   gf-netdelay --queue N --delay-ms MS [--ready FILE]
 *
 * Speaks nfnetlink_queue directly (no libnetfilter_queue): binds queue N in meta-copy mode (no
 * payload is copied), and accepts packets in arrival order once MS have passed, with one
 * batch verdict per tick. Every packet gets the same delay, so the order is kept. SIGTERM or
 * SIGINT: every held packet is accepted at once, the queue is unbound, exit 0. Exit 3 when the
 * queue number belongs to another program (the caller picks another), 1 on other errors. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RING 262144 /* packets held at most; more are accepted at once (fail open) */
#define BUF_SIZE (1 << 16)

static volatile sig_atomic_t stop;
static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct msg {
    char buf[256];
    size_t len;
};

static void msg_start(struct msg *m, uint16_t type, uint16_t flags, uint16_t queue)
{
    memset(m, 0, sizeof *m);
    struct nlmsghdr *h = (struct nlmsghdr *)m->buf;
    h->nlmsg_type = (uint16_t)((NFNL_SUBSYS_QUEUE << 8) | type);
    h->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
    struct nfgenmsg *g = (struct nfgenmsg *)NLMSG_DATA(h);
    g->nfgen_family = AF_UNSPEC;
    g->version = NFNETLINK_V0;
    g->res_id = htons(queue);
    m->len = NLMSG_LENGTH(sizeof *g);
}

static void msg_attr(struct msg *m, uint16_t type, const void *data, size_t len)
{
    struct nlattr *a = (struct nlattr *)(m->buf + NLMSG_ALIGN(m->len));
    a->nla_type = type;
    a->nla_len = (uint16_t)(NLA_HDRLEN + len);
    memcpy((char *)a + NLA_HDRLEN, data, len);
    m->len = NLMSG_ALIGN(m->len) + NLA_ALIGN(a->nla_len);
}

static int msg_send(int fd, struct msg *m, uint32_t seq)
{
    struct nlmsghdr *h = (struct nlmsghdr *)m->buf;
    h->nlmsg_len = (uint32_t)m->len;
    h->nlmsg_seq = seq;
    struct sockaddr_nl to = {.nl_family = AF_NETLINK};
    return sendto(fd, m->buf, m->len, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)m->len ? 0
                                                                                               : -1;
}

/* Waits for the ACK of request seq; returns its error (0 = done). */
static int wait_ack(int fd, uint32_t seq)
{
    static char buf[BUF_SIZE];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
             h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_ERROR && h->nlmsg_seq == seq) {
                struct nlmsgerr *e = NLMSG_DATA(h);
                return -e->error;
            }
        }
    }
}

static int config(int fd, uint16_t queue, uint32_t seq, uint16_t attr, const void *data, size_t len)
{
    struct msg m;
    msg_start(&m, NFQNL_MSG_CONFIG, NLM_F_ACK, queue);
    msg_attr(&m, attr, data, len);
    if (msg_send(fd, &m, seq) != 0)
        return errno;
    return wait_ack(fd, seq);
}

/* Accepts every held packet with an id up to id. */
static void accept_upto(int fd, uint16_t queue, uint32_t id)
{
    struct msg m;
    msg_start(&m, NFQNL_MSG_VERDICT_BATCH, 0, queue);
    struct nfqnl_msg_verdict_hdr v = {.verdict = htonl(NF_ACCEPT), .id = htonl(id)};
    msg_attr(&m, NFQA_VERDICT_HDR, &v, sizeof v);
    if (msg_send(fd, &m, 0) != 0)
        fprintf(stderr, "gf-netdelay: verdict: %s\n", strerror(errno));
}

static uint32_t ids[RING];
static int64_t due[RING];

int main(int argc, char **argv)
{
    long queue = -1, delay_ms = -1;
    const char *ready = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--queue") == 0)
            queue = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--delay-ms") == 0)
            delay_ms = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--ready") == 0)
            ready = argv[i + 1];
    }
    if (queue < 0 || queue > 65535 || delay_ms < 0 || delay_ms > 600000) {
        fprintf(stderr, "usage: gf-netdelay --queue 0..65535 --delay-ms 0..600000 [--ready F]\n");
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (fd < 0) {
        perror("gf-netdelay: netlink socket");
        return 1;
    }
    int sz = 8 << 20, one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one);
    struct sockaddr_nl me = {.nl_family = AF_NETLINK};
    if (bind(fd, (struct sockaddr *)&me, sizeof me) != 0) {
        perror("gf-netdelay: bind");
        return 1;
    }
    uint16_t q = (uint16_t)queue;
    struct nfqnl_msg_config_cmd cmd = {.command = NFQNL_CFG_CMD_BIND, .pf = htons(AF_INET)};
    int err = config(fd, q, 1, NFQA_CFG_CMD, &cmd, sizeof cmd);
    if (err != 0) {
        fprintf(stderr, "gf-netdelay: cannot bind queue %ld: %s\n", queue, strerror(err));
        return err == EPERM || err == EBUSY ? 3 : 1;
    }
    struct nfqnl_msg_config_params params = {.copy_range = htonl(0), .copy_mode = NFQNL_COPY_META};
    uint32_t maxlen = htonl(RING),
             flags[2] = {htonl(NFQA_CFG_F_FAIL_OPEN), htonl(NFQA_CFG_F_FAIL_OPEN)};
    if ((err = config(fd, q, 2, NFQA_CFG_PARAMS, &params, sizeof params)) != 0 ||
        (err = config(fd, q, 3, NFQA_CFG_QUEUE_MAXLEN, &maxlen, sizeof maxlen)) != 0) {
        fprintf(stderr, "gf-netdelay: cannot configure queue %ld: %s\n", queue, strerror(err));
        return 1;
    }
    /* FLAGS and MASK travel in one message. */
    struct msg m;
    msg_start(&m, NFQNL_MSG_CONFIG, NLM_F_ACK, q);
    msg_attr(&m, NFQA_CFG_FLAGS, &flags[0], sizeof flags[0]);
    msg_attr(&m, NFQA_CFG_MASK, &flags[1], sizeof flags[1]);
    if (msg_send(fd, &m, 4) != 0 || wait_ack(fd, 4) != 0)
        fprintf(stderr, "gf-netdelay: queue %ld: fail-open not set (kept going)\n", queue);
    if (ready) {
        FILE *f = fopen(ready, "w");
        if (f) {
            fprintf(f, "%d\n", (int)getpid());
            fclose(f);
        }
    }
    fprintf(stderr, "gf-netdelay: queue %ld bound, delay %ld ms\n", queue, delay_ms);

    static char buf[BUF_SIZE];
    size_t head = 0, tail = 0; /* held packets: ids[tail..head) */
    uint32_t last_seen = 0;
    int64_t delay_us = delay_ms * 1000;
    unsigned long held_total = 0;
    while (!stop) {
        int64_t now = mono_us();
        uint32_t last = 0;
        bool any = false;
        while (tail != head && due[tail % RING] <= now) {
            last = ids[tail % RING];
            any = true;
            tail++;
        }
        if (any)
            accept_upto(fd, q, last);
        int timeout = -1;
        if (tail != head) {
            int64_t wait = due[tail % RING] - now;
            timeout = wait <= 0 ? 0 : (int)((wait + 999) / 1000);
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, timeout);
        if (pr <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0)
            continue;
        now = mono_us();
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
             h = NLMSG_NEXT(h, n)) {
            if ((h->nlmsg_type & 0xff) != NFQNL_MSG_PACKET ||
                (h->nlmsg_type >> 8) != NFNL_SUBSYS_QUEUE)
                continue;
            struct nlattr *a =
                (struct nlattr *)((char *)NLMSG_DATA(h) + NLMSG_ALIGN(sizeof(struct nfgenmsg)));
            int left = (int)h->nlmsg_len - (int)((char *)a - (char *)h);
            while (left >= (int)NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= left) {
                if ((a->nla_type & NLA_TYPE_MASK) == NFQA_PACKET_HDR) {
                    struct nfqnl_msg_packet_hdr *ph =
                        (struct nfqnl_msg_packet_hdr *)((char *)a + NLA_HDRLEN);
                    uint32_t id = ntohl(ph->packet_id);
                    last_seen = id;
                    if (head - tail >= RING) { /* full: let it go now */
                        accept_upto(fd, q, id);
                        tail = head;
                    } else {
                        ids[head % RING] = id;
                        due[head % RING] = now + delay_us;
                        head++;
                        held_total++;
                    }
                    break;
                }
                left -= NLA_ALIGN(a->nla_len);
                a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len));
            }
        }
    }
    /* Everything held, and whatever is still unread in the socket: ids compare modulo 2^32,
     * so "up to last_seen + 2^30" covers both. */
    accept_upto(fd, q, last_seen + (1u << 30));
    struct nfqnl_msg_config_cmd unbind = {.command = NFQNL_CFG_CMD_UNBIND, .pf = htons(AF_INET)};
    (void)config(fd, q, 5, NFQA_CFG_CMD, &unbind, sizeof unbind);
    close(fd);
    fprintf(stderr, "gf-netdelay: queue %ld released after delaying %lu packets\n", queue,
            held_total);
    return 0;
}
