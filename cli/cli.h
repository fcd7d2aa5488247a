/* gf, the command-line client of the backend's HTTP API (SPEC §7): the command table and its
 * argument parser (commands.c), the commands of logging in (account.c), the token store
 * (tokens.c), one libcurl wrapper (http.c) and the pure formatters that turn the server's JSON
 * into tables and lines (format.c). */
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
    CLI_ARG_NAME,     /* a non-empty string */
    CLI_ARG_ID,       /* 1..2^31-1 */
    CLI_ARG_COUNT,    /* 1..2^31-1 (counts and amounts) */
    CLI_ARG_COST,     /* 0..2^31-1 */
    CLI_ARG_CID,      /* a correlation id: a UUID */
    CLI_ARG_DURATION, /* an auction's length in seconds: 5..604800 (7 days) */
};

/* An optional argument may stand before required ones ("auction-bid <auctionId> [userId]
 * <amount>"): the arguments given fill the required ones, and the optional ones from the left
 * only with those left over. */
struct cli_arg {
    const char *name;
    enum cli_arg_kind kind;
    bool optional;
    const char *omitted; /* an optional one: what leaving it out means (the usage says) */
};

#define CLI_MAX_ARGS 4

/* The options a command accepts after its name (a bit set). */
enum cli_opt {
    CLI_OPT_PASSWORD_STDIN = 1, /* --password-stdin: password lines from stdin, never a prompt */
    CLI_OPT_PASSWORD = 2,       /* --password: ask for a password (create-user) */
    CLI_OPT_PAGE = 4,           /* --status S, --limit N, --after ID: a page of a list */
};

struct cli_inv;
struct cli_command {
    const char *name; /* one word, or two ("auth token") */
    const char *summary;
    struct cli_arg args[CLI_MAX_ARGS];
    int nargs;
    int (*run)(const struct cli_inv *inv); /* returns an enum cli_exit */
    unsigned opts;                         /* enum cli_opt bits */
};

/* Who gf is logged in as at one URL (tokens.c). name, role, user_id and exp come from the
 * store or from the token's payload read without checking its signature: for display and for
 * not sending a token known to be stale, never for deciding anything the server decides. */
struct cli_login {
    char *token;       /* NULL: not logged in */
    char *name;        /* NULL when unknown */
    char *role;        /* "user", "admin"; NULL when unknown */
    long long user_id; /* the token's sub; 0 when unknown */
    long long exp;     /* expiry, seconds since the epoch; 0 when unknown */
    bool from_env;     /* the token is GF_TOKEN's */
};

/* One parsed invocation. */
struct cli_inv {
    const struct cli_command *cmd; /* NULL with help (general usage) or version */
    const char *url;               /* --url, GF_URL, or CLI_DEFAULT_URL */
    const char *eventlog_url;      /* --eventlog-url, GF_EVENTLOG_URL, or url */
    bool json, help, version;
    bool password_stdin, password_ask; /* --password-stdin, --password */
    const char *status;                /* --status: open, settled, cancelled; NULL: any */
    long long limit, after;         /* --limit (0: the server's cap), --after (0: from the start) */
    int nargs;                      /* positional arguments given */
    const char *text[CLI_MAX_ARGS]; /* each as written, at its argument's place; NULL: not given */
    long long num[CLI_MAX_ARGS];    /* each as a number (numeric kinds) */
    FILE *out, *err;                /* where results and complaints go */
    struct cli_login login;         /* the login for url (cli_login_load), sent to both urls */
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

/* One request to base + path: a GET when body is NULL, else a POST of body as JSON, with
 * "Authorization: Bearer <token>" when token is not NULL. Connect timeout 5 s, total 30 s. A
 * 503 overloaded (shed before anything was written) is sent again after its Retry-After (1-5
 * s), 5 tries at most, saying so on stderr. Returns the exit code the answer means (cli_exit_for).
 * Free *r with cli_reply_cleanup whatever the result. */
int cli_http(const char *base, const char *path, const json_t *body, const char *token,
             struct cli_reply *r);
void cli_reply_cleanup(struct cli_reply *r);
/* The exit code an HTTP status means: 0 (no answer) → CLI_UNREACHABLE, 2xx → CLI_OK,
 * anything else → CLI_REFUSED. */
int cli_exit_for(long status);

/* ---- logins: the token store (tokens.c) ------------------------------------------------------

   One JSON file, GF_TOKEN_FILE or ${XDG_CONFIG_HOME:-$HOME/.config}/gf/tokens.json, mode 0600
   in a 0700 directory: {"<base URL>": {"name", "token", "expiresAt"}}, one login per URL (a
   second local system on another port keeps its own; see tokens_key). GF_TOKEN, when set, is the
   token used instead of the file's. */

/* The store's path into out. CLI_OK, or CLI_REFUSED with why in err (no HOME). */
int tokens_path(char *out, size_t n, char *err, size_t errsz);
/* The store's key for a base URL: without trailing slashes, scheme and host in lower case,
 * localhost written 127.0.0.1. malloc'd; NULL when out of memory. */
char *tokens_key(const char *url);
/* Reads the store: a missing file is an empty store. A file that is not a regular file of this
 * user's, that others may read or write (like ssh, gf will not use it), that is over 1 MiB or
 * not a JSON object is refused: CLI_REFUSED with a sentence in err. *store is an object of
 * the caller's on CLI_OK. */
int tokens_load(const char *path, json_t **store, char *err, size_t errsz);
/* Writes the store atomically: a 0600 temporary file beside it (missing directories made
 * 0700), fsync'd, renamed over it. CLI_OK or CLI_REFUSED with err. */
int tokens_save(const char *path, const json_t *store, char *err, size_t errsz);
/* The login for url: GF_TOKEN (env_token, when neither NULL nor empty), else the store's entry
 * (the store is read only then). CLI_OK (not logged in: l->token NULL) or CLI_REFUSED with err
 * (the store was refused). Free with cli_login_cleanup. */
int cli_login_load(const char *url, const char *env_token, struct cli_login *l, char *err,
                   size_t errsz);
void cli_login_cleanup(struct cli_login *l);
/* Fills what l does not know yet (name, role, user_id, exp) from a token's payload, read
 * without checking its signature. false when the payload cannot be read. */
bool tokens_decode(const char *token, struct cli_login *l);
/* "2026-11-26T05:43:31.712Z" (fraction optional) as seconds since the epoch; false if not. */
bool tokens_parse_time(const char *iso, long long *out);
/* Seconds since the epoch as "2026-11-26T05:43:31Z". */
void tokens_format_time(long long t, char out[32]);

/* ---- the commands of logging in (account.c) ------------------------------------------------ */

int account_login(const struct cli_inv *inv);
int account_logout(const struct cli_inv *inv);
int account_token(const struct cli_inv *inv);
int account_whoami(const struct cli_inv *inv);
int account_passwd(const struct cli_inv *inv);
int account_set_password(const struct cli_inv *inv);
/* POST /user/create with a password (create-user --password / --password-stdin). */
int account_create_user(const struct cli_inv *inv);
/* After a 401 from the server (body: its JSON, may be NULL): when the token was the reason, one
 * more line on err saying what gf knows of the login and "(gf login NAME)". */
void account_hint_401(const struct cli_inv *inv, const json_t *body);

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
/* The answers of POST /auction/create, /auction/bid (the bid's auction, user and amount) and
 * /auction/cancel. */
void format_auction_created(const json_t *body, FILE *out);
void format_auction_bid(long long auction, long long user, long long amount, const json_t *body,
                        FILE *out);
void format_auction_cancelled(const json_t *body, FILE *out);
/* GET /auction as a table (its leading bids flattened), then, when the page is full (limit
 * given and reached), how to ask for the next one (status: the --status it was asked with). */
void format_auctions(const json_t *body, const char *status, long long limit, FILE *out);
/* GET /auction/:id: the auction, its bids, and its saga's steps in the order they were due
 * (when each ran, from the auction's creation; how late after it was due), then whether the
 * saga is complete (no step pending) or what it still waits for. */
void format_auction(const json_t *body, FILE *out);
/* The one line on stderr for a refused request: its message and error code, or the status
 * alone when the body is not the standard error body. */
void format_refusal(long status, const json_t *body, FILE *err);
/* The body exactly as received, ending with a newline (--json). */
void format_raw(const char *body, size_t len, FILE *out);

/* enum names of SPEC §3: "PENDING", "ADD"...; "?" when out of range. */
const char *format_status_name(long long v);
const char *format_type_name(long long v);

#endif
