/* RabbitMQ connections, topology and publishing with confirms (see gf/amqp.h). One
 * connection, one channel (1), one thread. */
#include "gf/amqp.h"

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "amqp_internal.h"
#include "gf/clock.h"
#include "gf/log.h"

#define CHANNEL 1
#define FRAME_MAX 131072

/* Every event eventlog stores: an event whose name is missing here is returned to the relay
 * (no queue takes it) and waits in the outbox forever. */
static const char *const eventlog_keys[] = {GF_EVENT_BUY_ITEM, GF_EVENT_ADMIN_ACTION,
                                            GF_EVENT_AUCTION_OUTBID, GF_EVENT_AUCTION_SETTLED,
                                            GF_EVENT_AUCTION_CANCELLED};
const struct gf_amqp_queue gf_events_eventlog_queue = {
    .name = "eventlog.events",
    .exchange = GF_EVENTS_EXCHANGE,
    .routing_keys = eventlog_keys,
    .nkeys = sizeof eventlog_keys / sizeof eventlog_keys[0],
    .dead_letter_queue = "eventlog.events.dead",
};

static struct timeval tv_ms(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

static const char *reply_text(amqp_rpc_reply_t r, char *buf, size_t n)
{
    switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        snprintf(buf, n, "ok");
        break;
    case AMQP_RESPONSE_NONE:
        snprintf(buf, n, "no reply");
        break;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(buf, n, "%s", amqp_error_string2(r.library_error));
        break;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *m = r.reply.decoded;
            snprintf(buf, n, "connection closed by the broker: %u %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *m = r.reply.decoded;
            snprintf(buf, n, "channel closed by the broker: %u %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else {
            snprintf(buf, n, "unexpected broker method 0x%08x", (unsigned)r.reply.id);
        }
        break;
    }
    return buf;
}

/* Checks the reply of the last synchronous call; on failure logs what and marks the
 * connection broken (a channel or connection error leaves nothing usable behind). */
enum gf_status gf_amqp_check_reply(struct gf_amqp_conn *c, const char *what)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(c->state);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return GF_OK;
    char buf[256];
    GF_LOG_RL(GF_LOG_WARN, 5000, "amqp %s failed name=%s reason='%s'", what, c->name,
              reply_text(r, buf, sizeof buf));
    c->broken = true;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT)
        return GF_ETIMEOUT;
    return GF_EUNAVAILABLE;
}

/* TCP-level bounds on a broker that stops answering (partition, paused or dead host), besides
 * the AMQP heartbeats, which rabbitmq-c only checks inside library calls: keepalive probes
 * after 2 s of silence, 1 s apart, and TCP_USER_TIMEOUT 5 s for sent bytes (a publish, an ack)
 * or probes that stay unacknowledged. A cut-off broker connection then fails its next call
 * within ~5 s instead of the kernel's ~15 min of retransmits or 2 h of keepalive idle; a live
 * but slow broker keeps ACKing at the TCP level, so slow confirms are not cut. The same figures
 * as lib's libpq connections (GF_DB_TCP_USER_TIMEOUT_MS in gf/db.h). Best effort: a failure
 * is logged, the connection still works. */
static void set_tcp_bounds(int fd, const char *name)
{
    const int on = 1, idle_s = 2, interval_s = 1, count = 3;
    const unsigned user_timeout_ms = 5000;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof interval_s) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms) !=
            0)
        GF_WARN("amqp socket options not set name=%s fd=%d", name, fd);
}

enum gf_status gf_amqp_config_check(const char *prefix, const char *url, const char *ca_file)
{
    char *tmp = strdup(url ? url : "");
    struct amqp_connection_info info;
    if (tmp == NULL)
        return GF_ENOMEM;
    /* A URL that does not parse is reported by the configuration table's own check. */
    bool tls = amqp_parse_url(tmp, &info) == AMQP_STATUS_OK && info.ssl;
    free(tmp);
    bool ca = ca_file != NULL && ca_file[0] != '\0';
    if (tls && !ca) {
        GF_ERROR("config invalid var=%s_AMQP_CA value='' rule='required with an amqps:// "
                 "%s_AMQP_URL: the PEM file of the CA the broker's certificate chains to'",
                 prefix, prefix);
    } else if (!tls && ca) {
        GF_ERROR("config invalid var=%s_AMQP_CA value='%s' rule='only with an amqps:// "
                 "%s_AMQP_URL (TLS); the URL is plain amqp://'",
                 prefix, ca_file, prefix);
    } else {
        return GF_OK;
    }
    GF_ERROR("config invalid_count=1");
    return GF_EINVAL;
}

/* The TLS socket of an amqps:// connection: TLS 1.2 or later, the broker's certificate must
 * chain to ca_file and name the host the URL names (rabbitmq-c checks both during the
 * handshake, which amqp_socket_open_noblock bounds by the connect timeout). */
static amqp_socket_t *tls_socket_new(struct gf_amqp_conn *c, const char *ca_file,
                                     enum gf_status *st)
{
    if (ca_file == NULL || ca_file[0] == '\0') {
        GF_ERROR("amqp amqps url without a CA file name=%s", c->name);
        *st = GF_EINVAL;
        return NULL;
    }
    amqp_socket_t *sock = amqp_ssl_socket_new(c->state);
    if (sock == NULL) {
        *st = GF_ENOMEM;
        return NULL;
    }
    amqp_ssl_socket_set_verify_peer(sock, 1);
    amqp_ssl_socket_set_verify_hostname(sock, 1);
    int rc = amqp_ssl_socket_set_ssl_versions(sock, AMQP_TLSv1_2, AMQP_TLSvLATEST);
    if (rc == AMQP_STATUS_OK)
        rc = amqp_ssl_socket_set_cacert(sock, ca_file);
    if (rc != AMQP_STATUS_OK) {
        /* The socket belongs to the connection state, which the caller destroys. */
        GF_LOG_RL(GF_LOG_WARN, 5000, "amqp tls setup failed name=%s ca=%s reason='%s'", c->name,
                  ca_file, amqp_error_string2(rc));
        *st = GF_EUNAVAILABLE;
        return NULL;
    }
    return sock;
}

struct gf_amqp_conn *gf_amqp_connect(const struct gf_amqp_options *opt, enum gf_status *st)
{
    struct gf_amqp_conn *c = calloc(1, sizeof *c);
    char *url = strdup(opt->url ? opt->url : "");
    *st = GF_ENOMEM;
    if (c == NULL || url == NULL)
        goto fail;
    snprintf(c->name, sizeof c->name, "%s", opt->name ? opt->name : "gf");
    struct amqp_connection_info info;
    if (amqp_parse_url(url, &info) != AMQP_STATUS_OK) {
        GF_ERROR("amqp bad url name=%s", c->name);
        *st = GF_EINVAL;
        goto fail;
    }
    if (info.vhost == NULL || *info.vhost == '\0')
        info.vhost = "/"; /* amqp://host:port/ names the default vhost, as most clients read it */
    const char *password = (opt->password && *opt->password) ? opt->password : info.password;
    int timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : 5000;
    *st = GF_EUNAVAILABLE;
    c->state = amqp_new_connection();
    if (c->state == NULL) {
        *st = GF_ENOMEM;
        goto fail;
    }
    amqp_socket_t *sock =
        info.ssl ? tls_socket_new(c, opt->ca_file, st) : amqp_tcp_socket_new(c->state);
    if (sock == NULL) {
        if (!info.ssl)
            *st = GF_ENOMEM;
        goto fail;
    }
    struct timeval tv = tv_ms(timeout_ms);
    int rc = amqp_socket_open_noblock(sock, info.host, info.port, &tv);
    if (rc != AMQP_STATUS_OK) {
        GF_LOG_RL(GF_LOG_WARN, 5000,
                  "amqp connect failed name=%s host=%s port=%d tls=%s reason='%s'", c->name,
                  info.host, info.port, info.ssl ? "yes" : "no", amqp_error_string2(rc));
        goto fail;
    }
    c->socket_open = true;
    set_tcp_bounds(amqp_socket_get_sockfd(sock), c->name);
    if (amqp_set_handshake_timeout(c->state, &tv) != AMQP_STATUS_OK ||
        amqp_set_rpc_timeout(c->state, &tv) != AMQP_STATUS_OK)
        goto fail;
    /* consumer_cancel_notify: without it the broker says nothing to a consumer whose queue
     * is deleted, and the consumer would wait forever on a queue that is gone. */
    amqp_table_entry_t cap = {.key = amqp_cstring_bytes("consumer_cancel_notify"),
                              .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}};
    amqp_table_entry_t prop[2] = {
        {.key = amqp_cstring_bytes("connection_name"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(c->name)}},
        {.key = amqp_cstring_bytes("capabilities"),
         .value = {.kind = AMQP_FIELD_KIND_TABLE,
                   .value.table = {.num_entries = 1, .entries = &cap}}},
    };
    amqp_table_t props = {.num_entries = 2, .entries = prop};
    amqp_rpc_reply_t r =
        amqp_login_with_properties(c->state, info.vhost, 0, FRAME_MAX, opt->heartbeat_s, &props,
                                   AMQP_SASL_METHOD_PLAIN, info.user, password ? password : "");
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        char buf[256];
        GF_LOG_RL(GF_LOG_WARN, 5000, "amqp login failed name=%s host=%s vhost=%s reason='%s'",
                  c->name, info.host, info.vhost, reply_text(r, buf, sizeof buf));
        goto fail;
    }
    c->logged_in = true;
    amqp_channel_open(c->state, CHANNEL);
    if (gf_amqp_check_reply(c, "channel.open") != GF_OK)
        goto fail;
    GF_INFO("amqp connected name=%s host=%s port=%d vhost=%s tls=%s", c->name, info.host, info.port,
            info.vhost, info.ssl ? "yes" : "no");
    free(url);
    *st = GF_OK;
    return c;
fail:
    free(url);
    if (c != NULL)
        c->broken = true;
    gf_amqp_close(c);
    return NULL;
}

void gf_amqp_close(struct gf_amqp_conn *c)
{
    if (c == NULL)
        return;
    if (c->state != NULL) {
        if (c->logged_in && !c->broken) {
            /* Polite close, bounded by the rpc timeout; failures do not matter here. */
            amqp_channel_close(c->state, CHANNEL, AMQP_REPLY_SUCCESS);
            amqp_connection_close(c->state, AMQP_REPLY_SUCCESS);
        }
        amqp_destroy_connection(c->state);
    }
    free(c->returned_ids);
    free(c);
}

bool gf_amqp_ok(const struct gf_amqp_conn *c)
{
    return c != NULL && !c->broken;
}

enum gf_status gf_amqp_declare_exchange(struct gf_amqp_conn *c, const char *name)
{
    if (c->broken)
        return GF_EUNAVAILABLE;
    amqp_exchange_declare(c->state, CHANNEL, amqp_cstring_bytes(name), amqp_cstring_bytes("topic"),
                          0, 1, 0, 0, amqp_empty_table);
    return gf_amqp_check_reply(c, "exchange.declare");
}

enum gf_status gf_amqp_declare_queue(struct gf_amqp_conn *c, const struct gf_amqp_queue *q)
{
    enum gf_status st = gf_amqp_declare_exchange(c, q->exchange);
    if (st != GF_OK)
        return st;
    amqp_table_entry_t args[4];
    int nargs = 0;
    if (q->dead_letter_queue != NULL) {
        amqp_queue_declare(c->state, CHANNEL, amqp_cstring_bytes(q->dead_letter_queue), 0, 1, 0, 0,
                           amqp_empty_table);
        st = gf_amqp_check_reply(c, "queue.declare (dead letters)");
        if (st != GF_OK)
            return st;
        /* Rejected messages go through the default exchange, which routes by queue name. */
        args[nargs++] = (amqp_table_entry_t){
            .key = amqp_cstring_bytes("x-dead-letter-exchange"),
            .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("")}};
        args[nargs++] = (amqp_table_entry_t){
            .key = amqp_cstring_bytes("x-dead-letter-routing-key"),
            .value = {.kind = AMQP_FIELD_KIND_UTF8,
                      .value.bytes = amqp_cstring_bytes(q->dead_letter_queue)}};
    }
    if (q->max_length > 0) {
        args[nargs++] = (amqp_table_entry_t){
            .key = amqp_cstring_bytes("x-max-length"),
            .value = {.kind = AMQP_FIELD_KIND_I64, .value.i64 = q->max_length}};
    }
    if (q->expires_ms > 0) {
        args[nargs++] = (amqp_table_entry_t){
            .key = amqp_cstring_bytes("x-expires"),
            .value = {.kind = AMQP_FIELD_KIND_I64, .value.i64 = q->expires_ms}};
    }
    amqp_table_t table = {.num_entries = nargs, .entries = args};
    amqp_queue_declare(c->state, CHANNEL, amqp_cstring_bytes(q->name), 0, q->transient ? 0 : 1, 0,
                       0, table);
    st = gf_amqp_check_reply(c, "queue.declare");
    if (st != GF_OK)
        return st;
    for (int i = 0; i < q->nkeys; i++) {
        amqp_queue_bind(c->state, CHANNEL, amqp_cstring_bytes(q->name),
                        amqp_cstring_bytes(q->exchange), amqp_cstring_bytes(q->routing_keys[i]),
                        amqp_empty_table);
        st = gf_amqp_check_reply(c, "queue.bind");
        if (st != GF_OK)
            return st;
    }
    if (q->unbind_exchange == NULL)
        return GF_OK;
    /* The exchange must exist for the unbind (a 404 would close the channel); unbinding what
     * is not bound is a no-op for the broker. */
    st = gf_amqp_declare_exchange(c, q->unbind_exchange);
    for (int i = 0; i < q->nkeys && st == GF_OK; i++) {
        amqp_queue_unbind(c->state, CHANNEL, amqp_cstring_bytes(q->name),
                          amqp_cstring_bytes(q->unbind_exchange),
                          amqp_cstring_bytes(q->routing_keys[i]), amqp_empty_table);
        st = gf_amqp_check_reply(c, "queue.unbind");
    }
    return st;
}

enum gf_status gf_amqp_confirm_select(struct gf_amqp_conn *c)
{
    if (c->broken)
        return GF_EUNAVAILABLE;
    amqp_confirm_select(c->state, CHANNEL);
    enum gf_status st = gf_amqp_check_reply(c, "confirm.select");
    if (st == GF_OK) {
        c->confirming = true;
        c->next_tag = 1;
    }
    return st;
}

/* Handles a frame that is not part of what the caller waits for: a close from the broker
 * breaks the connection (answered with close-ok so the broker can free it). */
void gf_amqp_handle_stray(struct gf_amqp_conn *c, const amqp_frame_t *f)
{
    if (f->frame_type != AMQP_FRAME_METHOD)
        return;
    if (f->payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const amqp_connection_close_t *m = f->payload.method.decoded;
        GF_WARN("amqp connection closed by the broker name=%s code=%u reason='%.*s'", c->name,
                m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        amqp_connection_close_ok_t ok = {0};
        int rc = amqp_send_method(c->state, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
        (void)rc;
        c->broken = true;
    } else if (f->payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const amqp_channel_close_t *m = f->payload.method.decoded;
        GF_WARN("amqp channel closed by the broker name=%s code=%u reason='%.*s'", c->name,
                m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        amqp_channel_close_ok_t ok = {0};
        int rc = amqp_send_method(c->state, f->channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        (void)rc;
        c->broken = true;
    } else if (f->payload.method.id == AMQP_BASIC_CANCEL_METHOD) {
        GF_WARN("amqp consumer cancelled by the broker (queue deleted?) name=%s", c->name);
        c->broken = true;
    }
}

enum gf_status gf_amqp_pump(struct gf_amqp_conn *c, int wait_ms)
{
    if (c == NULL || c->broken)
        return GF_EUNAVAILABLE;
    struct gf_deadline deadline = gf_deadline_in_ms(wait_ms);
    for (;;) {
        int64_t left = gf_deadline_left_ms(deadline);
        struct timeval tv = tv_ms((int)left);
        amqp_frame_t f;
        int rc = amqp_simple_wait_frame_noblock(c->state, &f, &tv);
        if (rc == AMQP_STATUS_TIMEOUT)
            break;
        if (rc != AMQP_STATUS_OK) {
            GF_LOG_RL(GF_LOG_WARN, 5000, "amqp connection lost name=%s reason='%s'", c->name,
                      amqp_error_string2(rc));
            c->broken = true;
            break;
        }
        gf_amqp_handle_stray(c, &f);
        amqp_maybe_release_buffers(c->state);
        if (c->broken || left <= 0)
            break;
    }
    return c->broken ? GF_EUNAVAILABLE : GF_OK;
}

/* ---- publishing --------------------------------------------------------------------------- */

/* The message a basic.return names: the first of this message_id and routing key that is not
 * settled nor returned yet (the broker returns in publishing order, before the ack). Several
 * messages of a batch may share a message_id: the events of one request. */
static int find_message(struct gf_amqp_message *m, int n, const bool *returned,
                        const amqp_bytes_t *id, const amqp_bytes_t *key)
{
    for (int i = 0; i < n; i++) {
        if (!m[i].best_effort && !returned[i] && m[i].outcome == GF_AMQP_UNCONFIRMED &&
            m[i].message_id != NULL && strlen(m[i].message_id) == id->len &&
            memcmp(m[i].message_id, id->bytes, id->len) == 0 &&
            (m[i].routing_key == NULL || (strlen(m[i].routing_key) == key->len &&
                                          memcmp(m[i].routing_key, key->bytes, key->len) == 0)))
            return i;
    }
    return -1;
}

/* A basic.return (ret): the content follows; the message is matched by its message_id and
 * routing key. The broker still acks it afterwards, so it is only marked here. */
static void on_return(struct gf_amqp_conn *c, const amqp_basic_return_t *ret,
                      struct gf_amqp_message *m, int n, bool *returned)
{
    amqp_bytes_t key = ret->routing_key; /* the frame's memory may be reused by the read */
    char keybuf[256];
    size_t klen = key.len < sizeof keybuf ? key.len : sizeof keybuf;
    memcpy(keybuf, key.bytes, klen);
    key = (amqp_bytes_t){.len = klen, .bytes = keybuf};
    amqp_message_t msg;
    amqp_rpc_reply_t r = amqp_read_message(c->state, CHANNEL, &msg, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        c->broken = true;
        return;
    }
    if (msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
        int i = find_message(m, n, returned, &msg.properties.message_id, &key);
        if (i >= 0)
            returned[i] = true;
    }
    amqp_destroy_message(&msg);
}

/* Applies an ack or nack for tag (and all before it when multiple) to the batch whose first
 * message has tag first. */
static void settle(struct gf_amqp_message *m, int n, const bool *returned, uint64_t first,
                   uint64_t tag, bool multiple, bool ack, int *left)
{
    for (int i = 0; i < n; i++) {
        uint64_t t = first + (uint64_t)i;
        if (m[i].outcome != GF_AMQP_UNCONFIRMED || t > tag || (!multiple && t != tag))
            continue;
        m[i].outcome = !ack ? GF_AMQP_NACKED : returned[i] ? GF_AMQP_RETURNED : GF_AMQP_CONFIRMED;
        (*left)--;
    }
}

static int publish_one(struct gf_amqp_conn *c, const struct gf_amqp_message *m)
{
    amqp_basic_properties_t p = {0};
    p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    p.delivery_mode = 2; /* persistent */
    if (m->content_type) {
        p._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
        p.content_type = amqp_cstring_bytes(m->content_type);
    }
    if (m->type) {
        p._flags |= AMQP_BASIC_TYPE_FLAG;
        p.type = amqp_cstring_bytes(m->type);
    }
    if (m->message_id) {
        p._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        p.message_id = amqp_cstring_bytes(m->message_id);
    }
    if (m->correlation_id) {
        p._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        p.correlation_id = amqp_cstring_bytes(m->correlation_id);
    }
    amqp_table_entry_t header;
    if (m->occurred_at_us > 0) {
        p._flags |= AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_HEADERS_FLAG;
        p.timestamp = (uint64_t)(m->occurred_at_us / 1000000);
        header = (amqp_table_entry_t){
            .key = amqp_cstring_bytes("x-occurred-at-us"),
            .value = {.kind = AMQP_FIELD_KIND_I64, .value.i64 = m->occurred_at_us}};
        p.headers = (amqp_table_t){.num_entries = 1, .entries = &header};
    }
    amqp_bytes_t body = {.len = m->len, .bytes = (void *)m->body};
    return amqp_basic_publish(c->state, CHANNEL, amqp_cstring_bytes(m->exchange),
                              amqp_cstring_bytes(m->routing_key), m->best_effort ? 0 : 1, 0, &p,
                              body);
}

enum gf_status gf_amqp_publish(struct gf_amqp_conn *c, struct gf_amqp_message *m, int n,
                               int timeout_ms)
{
    if (c->broken)
        return GF_EUNAVAILABLE;
    if (!c->confirming)
        return GF_EINVAL; /* gf_amqp_confirm_select first */
    for (int i = 0; i < n; i++) {
        if (m[i].message_id == NULL || m[i].message_id[0] == '\0')
            return GF_EINVAL; /* a return is matched to its message by message_id */
    }
    if (n <= 0)
        return GF_OK;
    if (n > c->returned_cap) {
        bool *r = realloc(c->returned_ids, (size_t)n * sizeof *r);
        if (r == NULL)
            return GF_ENOMEM;
        c->returned_ids = r;
        c->returned_cap = n;
    }
    bool *returned = c->returned_ids;
    memset(returned, 0, (size_t)n * sizeof *returned);
    uint64_t first = c->next_tag;
    for (int i = 0; i < n; i++) {
        m[i].outcome = GF_AMQP_UNCONFIRMED;
        int rc = publish_one(c, &m[i]);
        if (rc != AMQP_STATUS_OK) {
            GF_LOG_RL(GF_LOG_WARN, 5000, "amqp publish failed name=%s reason='%s'", c->name,
                      amqp_error_string2(rc));
            c->broken = true;
            return GF_EUNAVAILABLE;
        }
        c->next_tag++;
    }
    int left = n;
    struct gf_deadline deadline = gf_deadline_in_ms(timeout_ms);
    while (left > 0) {
        int64_t wait = gf_deadline_left_ms(deadline);
        if (wait == 0) {
            GF_LOG_RL(GF_LOG_WARN, 5000, "amqp confirms timed out name=%s unconfirmed=%d", c->name,
                      left);
            c->broken = true; /* late confirms would be matched to the wrong batch */
            return GF_ETIMEOUT;
        }
        struct timeval tv = tv_ms((int)wait);
        amqp_frame_t f;
        int rc = amqp_simple_wait_frame_noblock(c->state, &f, &tv);
        if (rc == AMQP_STATUS_TIMEOUT)
            continue;
        if (rc != AMQP_STATUS_OK) {
            GF_LOG_RL(GF_LOG_WARN, 5000, "amqp connection lost name=%s reason='%s'", c->name,
                      amqp_error_string2(rc));
            c->broken = true;
            return GF_EUNAVAILABLE;
        }
        if (f.frame_type == AMQP_FRAME_METHOD && f.channel == CHANNEL) {
            switch (f.payload.method.id) {
            case AMQP_BASIC_ACK_METHOD: {
                const amqp_basic_ack_t *a = f.payload.method.decoded;
                settle(m, n, returned, first, a->delivery_tag, a->multiple, true, &left);
                break;
            }
            case AMQP_BASIC_NACK_METHOD: {
                const amqp_basic_nack_t *a = f.payload.method.decoded;
                settle(m, n, returned, first, a->delivery_tag, a->multiple, false, &left);
                break;
            }
            case AMQP_BASIC_RETURN_METHOD:
                on_return(c, f.payload.method.decoded, m, n, returned);
                break;
            default:
                gf_amqp_handle_stray(c, &f);
            }
        } else {
            gf_amqp_handle_stray(c, &f);
        }
        amqp_maybe_release_buffers(c->state);
        if (c->broken)
            return GF_EUNAVAILABLE;
    }
    return GF_OK;
}
