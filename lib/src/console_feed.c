/* See console_feed.h. Notes are written as JSON text when they are taken (a transaction's
 * stage by one snprintf, no JSON objects on a request's path) and wait in one bounded array
 * under a mutex; the feeder thread takes the batch, joins it into one message and publishes it
 * (best effort, confirmed) on its own broker connection, reconnecting with back-off. */
#include "gf/console_feed.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gf/clock.h"
#include "gf/log.h"
#include "gf/metrics.h"

#define PUBLISH_TIMEOUT_MS 2000
#define STATS_EVERY_MS 1000
#define NOTES_PER_MESSAGE 1000 /* a message stays well under the broker's frame sizes */
#define PROBE_MS 500           /* while nobody watches: how often the feeder asks again */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char **notes; /* each one JSON object's text */
    char *head;   /* '{"service":...,"replica":...,"notes":[' */
    int n;
    bool running, stopping;
    pthread_t thread;
    struct gf_console_feed_options opt;
    char conn_name[96];
    struct gf_counter *dropped, *sent;
} F = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Notes are taken only while a console watches: a backend with open streams has a queue bound
 * to gf.console. The feeder learns it from the broker's routing: its messages are mandatory,
 * and one returned (routed to no queue) means nobody watches; then it sends an empty probe
 * every PROBE_MS, and the first one routed turns the notes back on. */
static atomic_bool g_on;

bool gf_console_feed_watched(void)
{
    return atomic_load_explicit(&g_on, memory_order_relaxed);
}

void gf_console_replica(char *out, size_t n)
{
    char host[64] = "";
    if (gethostname(host, sizeof host) != 0)
        host[0] = '\0';
    host[sizeof host - 1] = '\0';
    snprintf(out, n, "%s:%d", host[0] ? host : "localhost", (int)getpid());
}

/* Keeps one note's text (taken); frees it when it cannot be kept. */
static void keep_text(char *text)
{
    if (text == NULL) {
        gf_counter_add(F.dropped, 1);
        return;
    }
    pthread_mutex_lock(&F.mu);
    bool kept = F.running && F.n < GF_CONSOLE_NOTES_MAX;
    if (kept)
        F.notes[F.n++] = text;
    pthread_mutex_unlock(&F.mu);
    if (!kept) {
        free(text);
        gf_counter_add(F.dropped, 1);
    }
}

void gf_console_note(json_t *note)
{
    if (note == NULL)
        return;
    if (!atomic_load_explicit(&g_on, memory_order_relaxed)) {
        json_decref(note);
        return;
    }
    char *text = json_is_object(note) ? json_dumps(note, JSON_COMPACT) : NULL;
    json_decref(note);
    keep_text(text);
}

/* Whether s may stand in a JSON string as it is: our own names and ids (letters, digits, '_',
 * '-'), never anything a client chose unchecked. */
static bool plain(const char *s)
{
    for (; *s != '\0'; s++) {
        char ch = *s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

void gf_console_note_tx(const char *cid, const char *kind, long long user_id, long long item_id,
                        long long amount, const char *stage, json_t *detail)
{
    if (!atomic_load_explicit(&g_on, memory_order_relaxed)) {
        json_decref(detail);
        return;
    }
    char at[25];
    gf_iso8601_ms(gf_wall_us(), at);
    if (cid == NULL || kind == NULL || stage == NULL || !plain(cid) || strlen(cid) > 64 ||
        !plain(kind) || strlen(kind) > 32 || !plain(stage) || strlen(stage) > 32) {
        /* Not one of ours: jansson escapes it. */
        gf_console_note(json_pack("{s:s?,s:s?,s:s?,s:I,s:o,s:I,s:s?,s:s,s:o}", "t", "tx",
                                  "correlationId", cid, "kind", kind, "userId", (json_int_t)user_id,
                                  "itemId", item_id >= 0 ? json_integer(item_id) : json_null(),
                                  "amount", (json_int_t)amount, "stage", stage, "at", at, "detail",
                                  detail != NULL ? detail : json_object()));
        return;
    }
    char *d = detail != NULL ? json_dumps(detail, JSON_COMPACT) : NULL;
    json_decref(detail);
    char item[24] = "null";
    if (item_id >= 0)
        snprintf(item, sizeof item, "%lld", item_id);
    char *text = NULL;
    if (asprintf(&text,
                 "{\"t\":\"tx\",\"correlationId\":\"%s\",\"kind\":\"%s\",\"userId\":%lld,"
                 "\"itemId\":%s,\"amount\":%lld,\"stage\":\"%s\",\"at\":\"%s\",\"detail\":%s}",
                 cid, kind, user_id, item, amount, stage, at, d != NULL ? d : "{}") < 0)
        text = NULL;
    free(d);
    keep_text(text);
}

/* Drops the notes waiting (nobody watches them any more). */
static void drop_all(void)
{
    pthread_mutex_lock(&F.mu);
    for (int i = 0; i < F.n; i++)
        free(F.notes[i]);
    F.n = 0;
    pthread_mutex_unlock(&F.mu);
}

/* Takes the waiting notes (at most NOTES_PER_MESSAGE) into *out; how many. */
static int take(char ***out)
{
    pthread_mutex_lock(&F.mu);
    int n = F.n < NOTES_PER_MESSAGE ? F.n : NOTES_PER_MESSAGE;
    *out = NULL;
    if (n > 0) {
        *out = malloc((size_t)n * sizeof **out);
        if (*out != NULL) {
            memcpy(*out, F.notes, (size_t)n * sizeof **out);
            memmove(F.notes, F.notes + n, (size_t)(F.n - n) * sizeof *F.notes);
            F.n -= n;
        } else {
            n = 0;
        }
    }
    pthread_mutex_unlock(&F.mu);
    return n;
}

static struct gf_amqp_conn *connect_feed(void)
{
    enum gf_status st;
    struct gf_amqp_conn *c = gf_amqp_connect(&F.opt.amqp, &st);
    if (c == NULL)
        return NULL;
    if (gf_amqp_confirm_select(c) != GF_OK ||
        gf_amqp_declare_exchange(c, GF_CONSOLE_EXCHANGE) != GF_OK) {
        gf_amqp_close(c);
        return NULL;
    }
    return c;
}

/* The message's head, '{"service":...,"replica":...,"notes":[', escaped once at start. */
static char *message_head(void)
{
    json_t *h = json_pack("{s:s,s:s}", "service", F.opt.service, "replica", F.opt.replica);
    char *text = h != NULL ? json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(h);
    size_t len = text != NULL ? strlen(text) : 0;
    char *head = NULL;
    if (len >= 2 && asprintf(&head, "%.*s,\"notes\":[", (int)(len - 1), text) < 0)
        head = NULL;
    free(text);
    return head;
}

/* One message: {"service","replica","notes":[...],"stats":{...}}, the n notes' texts joined
 * (freed here, with stats); false when it was not sent (the connection is then closed). */
static bool send_batch(struct gf_amqp_conn **c, char **notes, int n, json_t *stats, bool *watched)
{
    const char *head = F.head;
    char *st = stats != NULL ? json_dumps(stats, JSON_COMPACT) : NULL;
    json_decref(stats);
    size_t len = (head != NULL ? strlen(head) : 0) + 16 + (st != NULL ? strlen(st) + 10 : 0);
    for (int i = 0; i < n; i++)
        len += strlen(notes[i]) + 1;
    char *body = head != NULL ? malloc(len) : NULL;
    size_t at = 0;
    if (body != NULL) {
        at = (size_t)snprintf(body, len, "%s", head);
        for (int i = 0; i < n; i++) {
            size_t l = strlen(notes[i]);
            if (i > 0)
                body[at++] = ',';
            memcpy(body + at, notes[i], l);
            at += l;
        }
        at += (size_t)snprintf(body + at, len - at, "]%s%s}", st != NULL ? ",\"stats\":" : "",
                               st != NULL ? st : "");
    }
    for (int i = 0; i < n; i++)
        free(notes[i]);
    free(st);
    if (body == NULL)
        return false;
    char key[64], id[48];
    static unsigned long long seq;
    snprintf(key, sizeof key, "console.%s", F.opt.service);
    snprintf(id, sizeof id, "console-%llu", ++seq);
    struct gf_amqp_message m = {.exchange = GF_CONSOLE_EXCHANGE,
                                .routing_key = key,
                                .body = body,
                                .len = at,
                                .content_type = "application/json",
                                .type = "ConsoleNotes",
                                .message_id = id,
                                .occurred_at_us = gf_wall_us(),
                                .best_effort = false};
    enum gf_status rc = gf_amqp_publish(*c, &m, 1, PUBLISH_TIMEOUT_MS);
    free(body);
    if (rc == GF_OK)
        *watched = m.outcome == GF_AMQP_CONFIRMED;
    if (rc != GF_OK) {
        gf_amqp_close(*c);
        *c = NULL;
        return false;
    }
    return true;
}

static void *feeder_run(void *arg)
{
    (void)arg;
    gf_log_set_cid(NULL);
    struct gf_amqp_conn *c = NULL;
    struct gf_backoff bo;
    gf_backoff_init(&bo, 200, 5000);
    int64_t next_connect = 0, next_stats = gf_mono_ms() + STATS_EVERY_MS, next_probe = 0;
    int flush = F.opt.flush_ms > 0 ? F.opt.flush_ms : 200;
    for (;;) {
        pthread_mutex_lock(&F.mu);
        struct timespec until = gf_deadline_mono_ts(gf_deadline_in_ms(flush), -1);
        int rc = 0;
        while (!F.stopping && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&F.cv, &F.mu, &until);
        bool stopping = F.stopping;
        pthread_mutex_unlock(&F.mu);
        int64_t now = gf_mono_ms();
        if (c == NULL && now >= next_connect) {
            c = connect_feed();
            if (c == NULL)
                next_connect = now + gf_backoff_next(&bo);
            else
                gf_backoff_reset(&bo);
        }
        bool watched = atomic_load(&g_on);
        if (!watched) {
            /* Nobody watches: no notes are taken; an empty probe now and then. */
            if (c != NULL && now >= next_probe) {
                next_probe = now + PROBE_MS;
                bool w = false;
                if (send_batch(&c, NULL, 0, NULL, &w) && w) {
                    atomic_store(&g_on, true);
                    next_stats = 0; /* the figures at once */
                } else if (c == NULL) {
                    next_connect = gf_mono_ms() + gf_backoff_next(&bo);
                }
            }
            if (stopping)
                break;
            continue;
        }
        json_t *stats = NULL;
        if (now >= next_stats && F.opt.stats != NULL) {
            stats = F.opt.stats(F.opt.stats_arg);
            next_stats = now + STATS_EVERY_MS;
        }
        char **batch;
        int n;
        do {
            n = take(&batch);
            if (n == 0 && stats == NULL)
                break;
            if (c == NULL) { /* the broker is away: dropped, not queued */
                for (int i = 0; i < n; i++)
                    free(batch[i]);
                free(batch);
                json_decref(stats);
                gf_counter_add(F.dropped, (uint64_t)n);
                stats = NULL;
                break;
            }
            bool w = true;
            bool sent = send_batch(&c, batch, n, stats, &w); /* frees the notes and stats */
            free(batch);
            stats = NULL;
            if (!sent) {
                gf_counter_add(F.dropped, (uint64_t)n);
                next_connect = gf_mono_ms() + gf_backoff_next(&bo);
                break;
            }
            if (!w) { /* routed nowhere: the last watcher went */
                atomic_store(&g_on, false);
                drop_all();
                break;
            }
            gf_counter_add(F.sent, (uint64_t)n);
        } while (n == NOTES_PER_MESSAGE);
        json_decref(stats);
        if (stopping)
            break;
    }
    gf_amqp_close(c);
    return NULL;
}

enum gf_status gf_console_feed_start(const struct gf_console_feed_options *opt)
{
    pthread_mutex_lock(&F.mu);
    if (F.running) {
        pthread_mutex_unlock(&F.mu);
        return GF_EINTERNAL;
    }
    if (F.dropped == NULL) {
        F.dropped = gf_metrics_counter(
            "gf_console_notes_dropped_total",
            "Console notes dropped: the broker was away or the buffer was full.", "");
        F.sent = gf_metrics_counter("gf_console_notes_sent_total",
                                    "Console notes sent to the gf.console exchange.", "");
        gf_cond_init_mono(&F.cv);
    }
    F.notes = calloc(GF_CONSOLE_NOTES_MAX, sizeof *F.notes);
    if (F.notes == NULL) {
        pthread_mutex_unlock(&F.mu);
        return GF_ENOMEM;
    }
    F.opt = *opt;
    F.head = message_head();
    if (F.head == NULL) {
        free(F.notes);
        F.notes = NULL;
        pthread_mutex_unlock(&F.mu);
        return GF_ENOMEM;
    }
    snprintf(F.conn_name, sizeof F.conn_name, "%s-console-feed", opt->service);
    F.opt.amqp.name = F.conn_name;
    F.n = 0;
    F.stopping = false;
    F.running = true;
    if (pthread_create(&F.thread, NULL, feeder_run, NULL) != 0) {
        F.running = false;
        free(F.notes);
        F.notes = NULL;
        free(F.head);
        F.head = NULL;
        pthread_mutex_unlock(&F.mu);
        return GF_EINTERNAL;
    }
    atomic_store(&g_on, false); /* until a probe finds a watcher */
    pthread_mutex_unlock(&F.mu);
    return GF_OK;
}

void gf_console_feed_stop(void)
{
    pthread_mutex_lock(&F.mu);
    if (!F.running) {
        pthread_mutex_unlock(&F.mu);
        return;
    }
    atomic_store(&g_on, false);
    F.stopping = true;
    pthread_cond_broadcast(&F.cv);
    pthread_mutex_unlock(&F.mu);
    pthread_join(F.thread, NULL);
    pthread_mutex_lock(&F.mu);
    for (int i = 0; i < F.n; i++)
        free(F.notes[i]);
    free(F.notes);
    F.notes = NULL;
    F.n = 0;
    free(F.head);
    F.head = NULL;
    F.running = false;
    pthread_mutex_unlock(&F.mu);
}
