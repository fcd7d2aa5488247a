/* The console's feed (issue 17): what each process saw happen to transactions and events,
 * sent to the operators' console over the event stream. A process notes a stage as it reaches
 * it (gf_console_note, a lock and a copy); a feeder thread sends what was noted, at most every
 * flush_ms, as one best-effort message to the topic exchange gf.console (routing key
 * "console.<service>"), with the process's own figures (a stats callback) once a second. The
 * backend serving the console consumes them into its server-sent events (backend/console.c).
 *
 * Best effort on purpose: the console is a view, never a record. Notes that find the broker
 * away, or a full buffer (GF_CONSOLE_NOTES_MAX), are dropped and counted
 * (gf_console_notes_dropped_total); nothing else waits for the feed. */
#ifndef GF_CONSOLE_FEED_H
#define GF_CONSOLE_FEED_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "gf/amqp.h"

#define GF_CONSOLE_EXCHANGE "gf.console"
#define GF_CONSOLE_NOTES_MAX 8192

struct gf_console_feed_options {
    struct gf_amqp_options amqp; /* its own connection (name: "<service>-console-feed") */
    const char *service;         /* "backend", "gxp", "eventlog" */
    const char *replica;         /* this process's name among its service's replicas */
    int flush_ms;                /* 0 = 200 */
    /* The process's own figures, called by the feeder thread once a second: a new object
     * (taken), or NULL. */
    json_t *(*stats)(void *arg);
    void *stats_arg;
};

/* Starts the process's feeder (once; a second call fails). The options' strings must outlive
 * the feed. GF_OK, or GF_ENOMEM / GF_EINTERNAL when the thread cannot start. */
enum gf_status gf_console_feed_start(const struct gf_console_feed_options *opt) GF_MUSTCHECK;
/* Sends what is left (up to 1 s) and stops the feeder. A no-op when none runs. */
void gf_console_feed_stop(void);

/* This process's name for the feed's "replica": the host name (a pod's name on Kubernetes) and
 * the process id. */
void gf_console_replica(char *out, size_t n);

/* One note: a JSON object (taken; NULL is ignored). A no-op (the object freed) when no feeder
 * runs. Thread-safe; never blocks on the broker. */
void gf_console_note(json_t *note);

/* Whether a console watches (a backend's queue is bound to gf.console, as the broker's
 * routing of this process's last message told): a process may skip the work of its notes,
 * not only the notes, while it does not. */
bool gf_console_feed_watched(void);

/* A transaction reached a stage (in the console's "txs" frames): kind "buy", "add_gxp", ...;
 * item_id < 0 for none; detail an object (taken) or NULL. The time is now. */
void gf_console_note_tx(const char *cid, const char *kind, long long user_id, long long item_id,
                        long long amount, const char *stage, json_t *detail);

#endif
