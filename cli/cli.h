/* gf, the command-line client of the backend's HTTP API (SPEC §7): the command table and its
 * argument parser (commands.c), one libcurl wrapper (http.c) and the pure formatters that turn
 * the server's JSON into tables and lines (format.c). */
#ifndef GF_CLI_H
#define GF_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CLI_VERSION "0.1.0"
#define CLI_DEFAULT_URL "http://localhost:30080"
/* gf ls shows this many of the newest gxp transactions (a string: it goes into the URL). */
#define CLI_LS_GXP_ROWS "50"

/* The exit codes of gf: the whole contract with scripts. */
enum cli_exit {
    CLI_OK = 0,          /* the server did it */
    CLI_REFUSED = 1,     /* the server answered, but not with a 2xx */
    CLI_USAGE = 2,       /* the command line is wrong; nothing was sent */
    CLI_UNREACHABLE = 3, /* no answer: cannot connect, timeout, broken transfer */
};

/* ---- the command line (commands.c) ------------------------------------------------------- */

/* What a positional argument must be; numbers are checked against SPEC §2's ranges. */
enum cli_arg_kind {
    CLI_ARG_NAME,  /* a non-empty string */
    CLI_ARG_ID,    /* 1..2^31-1 */
    CLI_ARG_COUNT, /* 1..2^31-1 (counts and amounts) */
    CLI_ARG_COST,  /* 0..2^31-1 */
    CLI_ARG_CID,   /* a correlation id: a UUID */
};

struct cli_arg {
    const char *name;
    enum cli_arg_kind kind;
    bool optional;
};

#define CLI_MAX_ARGS 3

struct cli_inv;
struct cli_command {
    const char *name;
    const char *summary;
    struct cli_arg args[CLI_MAX_ARGS];
    int nargs;
    int (*run)(const struct cli_inv *inv); /* returns an enum cli_exit */
};

/* One parsed invocation. */
struct cli_inv {
    const struct cli_command *cmd; /* NULL with help (general usage) or version */
    const char *url;               /* --url, GF_URL, or CLI_DEFAULT_URL */
    const char *eventlog_url;      /* --eventlog-url, GF_EVENTLOG_URL, or url */
    bool json, help, version;
    int nargs;                      /* positional arguments given */
    const char *text[CLI_MAX_ARGS]; /* each as written */
    long long num[CLI_MAX_ARGS];    /* each as a number (numeric kinds) */
    FILE *out, *err;                /* where results and complaints go */
};

/* Every command gf knows, in the order of the usage text. */
extern const struct cli_command cli_commands[];
extern const size_t cli_commands_count;

/* Parses argv (global options before the command, then the command, its arguments and maybe
 * --help). env_url and env_eventlog_url (GF_URL, GF_EVENTLOG_URL) may be NULL. CLI_OK with
 * *inv filled, or CLI_USAGE with a one-line reason in err. inv->out/err are left alone. */
int cli_parse(int argc, char **argv, const char *env_url, const char *env_eventlog_url,
              struct cli_inv *inv, char *err, size_t errsz);
/* Checks one argument against its kind: true with *num set for numeric kinds. */
bool cli_arg_check(enum cli_arg_kind kind, const char *s, long long *num);
/* The usage text of gf, or of one command. */
void cli_usage(FILE *out);
void cli_command_usage(const struct cli_command *cmd, FILE *out);

/* ---- HTTP (http.c) --------------------------------------------------------------------------- */

struct cli_reply {
    long status; /* 0 when no answer came */
    char *body;  /* NUL-terminated, "" when empty; never NULL after a call */
    size_t body_len;
    json_t *json;    /* the body parsed, NULL when it is not JSON */
    char error[256]; /* curl's message when status is 0 */
};

/* One request to base + path: a GET when body is NULL, else a POST of body as JSON.
 * Connect timeout 5 s, total 30 s. Returns the exit code the answer means (cli_exit_for).
 * Free *r with cli_reply_cleanup whatever the result. */
int cli_http(const char *base, const char *path, const json_t *body, struct cli_reply *r);
void cli_reply_cleanup(struct cli_reply *r);
/* The exit code an HTTP status means: 0 (no answer) → CLI_UNREACHABLE, 2xx → CLI_OK,
 * anything else → CLI_REFUSED. */
int cli_exit_for(long status);

/* ---- formatting (format.c: pure, JSON in, text out) ---------------------------------------- */

/* The tables of `ls`, each from the body of its GET; a body of the wrong shape prints
 * "(unexpected answer)". */
void format_users(const json_t *body, FILE *out);
void format_items(const json_t *body, FILE *out);
void format_marketplace_items(const json_t *body, FILE *out);
void format_user_items(const json_t *body, FILE *out);
void format_gxp_all(const json_t *body, FILE *out); /* balances, then transactions */
/* One line for a created thing: "user 1 created (correlation id …)"; what is "user",
 * id_key the body's member holding its id. */
void format_created(const char *what, const char *id_key, const json_t *body, FILE *out);
void format_gxp_added(long long user, long long amount, const json_t *body, FILE *out);
void format_bought(long long user, long long item, const json_t *body, FILE *out);
void format_user_gxp(long long user, const json_t *body, FILE *out);
/* A text body as one line (a newline added when it has none). */
void format_text(const char *body, FILE *out);
/* GET /eventlog/events as a table, newest first as the server sent them. */
void format_events(const json_t *body, FILE *out);
/* The life of one transaction: tx is GET /gxp/transaction's body, events GET /eventlog/events'
 * (NULL when the event log could not be read; why says why). */
void format_trace(const json_t *tx, const json_t *events, const char *why, FILE *out);
/* The one line on stderr for a refused request: its message and error code, or the status
 * alone when the body is not the standard error body. */
void format_refusal(long status, const json_t *body, FILE *err);
/* The body exactly as received, ending with a newline (--json). */
void format_raw(const char *body, size_t len, FILE *out);

/* enum names of SPEC §3: "PENDING", "ADD"...; "?" when out of range. */
const char *format_status_name(long long v);
const char *format_type_name(long long v);

#endif
