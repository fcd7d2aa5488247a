/* gf's commands: the table of what gf knows (names, arguments, one function each), the parser
 * of the command line it describes, and the usage text. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define ID_MAX 2147483647LL
/* An auction's length in seconds, as the backend takes it (POST /auction/create). */
#define DURATION_MIN 5LL
#define DURATION_MAX 604800LL

/* ---- helpers of the commands --------------------------------------------------------------- */

/* A request whose answer is printed by show (or raw with --json), with the login's token when
 * there is one; a refusal or a transport error is reported on stderr (a 401 with a hint on
 * logging in). Returns the exit code. */
static int call(const struct cli_inv *inv, const char *base, const char *path, const json_t *body,
                struct cli_reply *r)
{
    int rc = cli_http(base, path, body, inv->login.token, r);
    if (rc == CLI_UNREACHABLE)
        fprintf(inv->err, "gf: cannot reach %s: %s\n", base, r->error);
    else if (rc == CLI_REFUSED) {
        format_refusal(r->status, r->json, inv->err);
        if (r->status == 401)
            account_hint_401(inv, r->json);
    } else if (inv->json)
        format_raw(r->body, r->body_len, inv->out);
    return rc;
}

/* POST path with body (stolen) as call() does; *r is the caller's to clean up whatever the
 * result. */
static int post_reply(const struct cli_inv *inv, const char *path, json_t *body,
                      struct cli_reply *r)
{
    if (body == NULL) {
        memset(r, 0, sizeof *r);
        fprintf(inv->err, "gf: out of memory\n");
        return CLI_UNREACHABLE;
    }
    int rc = call(inv, inv->url, path, body, r);
    json_decref(body);
    return rc;
}

/* POST path with body (stolen), then print the answer's line with show. */
static int post(const struct cli_inv *inv, const char *path, json_t *body,
                void (*show)(const struct cli_inv *, const json_t *))
{
    struct cli_reply r;
    int rc = post_reply(inv, path, body, &r);
    if (rc == CLI_OK && !inv->json)
        show(inv, r.json);
    cli_reply_cleanup(&r);
    return rc;
}

/* A GET of path whose answer is printed by show (or raw with --json). */
static int get(const struct cli_inv *inv, const char *path,
               void (*show)(const struct cli_inv *, const json_t *))
{
    struct cli_reply r;
    int rc = call(inv, inv->url, path, NULL, &r);
    if (rc == CLI_OK && !inv->json)
        show(inv, r.json);
    cli_reply_cleanup(&r);
    return rc;
}

/* The user a command acts for: its userId argument (argument i), else the logged-in user's
 * own id, which a user's token names (an admin's names an operator, who is no user). gf only
 * fills in what the server then checks: a user acts for itself alone. false after saying why;
 * nothing was sent. */
static bool acting_for(const struct cli_inv *inv, int i, long long *user)
{
    const struct cli_login *l = &inv->login;
    if (inv->text[i] != NULL) {
        *user = inv->num[i];
        return true;
    }
    if (l->token != NULL && l->role != NULL && strcmp(l->role, "user") == 0 && l->user_id > 0) {
        *user = l->user_id;
        return true;
    }
    fprintf(inv->err, "gf: %s: missing argument <%s> (%s)\nTry 'gf %s --help'.\n", inv->cmd->name,
            inv->cmd->args[i].name,
            l->token == NULL ? "not logged in, so no user of your own"
                             : "logged in as an admin, not as a user",
            inv->cmd->name);
    return false;
}

/* ---- the commands ---------------------------------------------------------------------------- */

static int run_ls(const struct cli_inv *inv)
{
    static const struct {
        const char *path;
        void (*show)(const json_t *, FILE *);
    } parts[] = {
        {"/user", format_users},
        {"/item", format_items},
        {"/marketplace/item", format_marketplace_items},
        {"/user/item", format_user_items},
        /* The newest transactions: on a busy system the oldest ones say least. */
        {"/gxp/get-all?order=newest&limit=" CLI_LS_GXP_ROWS, format_gxp_all},
    };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        struct cli_reply r;
        int rc = call(inv, inv->url, parts[i].path, NULL, &r);
        if (rc == CLI_OK && !inv->json) {
            if (i > 0)
                fputc('\n', inv->out);
            parts[i].show(r.json, inv->out);
        }
        cli_reply_cleanup(&r);
        if (rc != CLI_OK)
            return rc;
    }
    return CLI_OK;
}

static void show_user(const struct cli_inv *inv, const json_t *b)
{
    format_created("user", "userId", b, inv->out);
}
static void show_item(const struct cli_inv *inv, const json_t *b)
{
    format_created("item", "itemId", b, inv->out);
}
static void show_market(const struct cli_inv *inv, const json_t *b)
{
    format_created("marketplace item", "marketplaceItemId", b, inv->out);
}
static void show_user_item(const struct cli_inv *inv, const json_t *b)
{
    format_created("user item", "userItemId", b, inv->out);
}
static void show_gxp_added(const struct cli_inv *inv, const json_t *b)
{
    format_gxp_added(inv->num[0], inv->num[1], b, inv->out);
}
static void show_bought(const struct cli_inv *inv, const json_t *b)
{
    format_bought(inv->num[0], inv->num[1], b, inv->out);
}

static int run_create_user(const struct cli_inv *inv)
{
    if (inv->password_ask || inv->password_stdin)
        return account_create_user(inv);
    return post(inv, "/user/create", json_pack("{s:s}", "name", inv->text[0]), show_user);
}

static int run_create_item(const struct cli_inv *inv)
{
    return post(inv, "/item/create",
                json_pack("{s:s,s:I}", "name", inv->text[0], "cost", (json_int_t)inv->num[1]),
                show_item);
}

static int run_create_marketplace_item(const struct cli_inv *inv)
{
    return post(
        inv, "/marketplace/item/create",
        json_pack("{s:I,s:I}", "itemId", (json_int_t)inv->num[0], "count", (json_int_t)inv->num[1]),
        show_market);
}

static int run_create_user_item(const struct cli_inv *inv)
{
    return post(inv, "/user/item/create",
                json_pack("{s:I,s:I,s:I}", "userId", (json_int_t)inv->num[0], "itemId",
                          (json_int_t)inv->num[1], "count", (json_int_t)inv->num[2]),
                show_user_item);
}

static int run_user_gxp_add(const struct cli_inv *inv)
{
    return post(inv, "/user/gxp/add",
                json_pack("{s:I,s:I}", "userId", (json_int_t)inv->num[0], "amount",
                          (json_int_t)inv->num[1]),
                show_gxp_added);
}

static int run_buy(const struct cli_inv *inv)
{
    return post(inv, "/marketplace/item/buy",
                json_pack("{s:I,s:I}", "userId", (json_int_t)inv->num[0], "itemId",
                          (json_int_t)inv->num[1]),
                show_bought);
}

static void show_auction_created(const struct cli_inv *inv, const json_t *b)
{
    format_auction_created(b, inv->out);
}
static void show_auction_cancelled(const struct cli_inv *inv, const json_t *b)
{
    format_auction_cancelled(b, inv->out);
}
static void show_auctions(const struct cli_inv *inv, const json_t *b)
{
    format_auctions(b, inv->status, inv->limit, inv->out);
}
static void show_auction(const struct cli_inv *inv, const json_t *b)
{
    format_auction(b, inv->out);
}

static int run_auction_create(const struct cli_inv *inv)
{
    long long user;
    if (!acting_for(inv, 0, &user))
        return CLI_USAGE;
    return post(inv, "/auction/create",
                json_pack("{s:I,s:I,s:I,s:I}", "userId", (json_int_t)user, "userItemId",
                          (json_int_t)inv->num[1], "minBid", (json_int_t)inv->num[2],
                          "durationSeconds", (json_int_t)inv->num[3]),
                show_auction_created);
}

static int run_auction_bid(const struct cli_inv *inv)
{
    long long user;
    if (!acting_for(inv, 1, &user))
        return CLI_USAGE;
    struct cli_reply r;
    int rc = post_reply(inv, "/auction/bid",
                        json_pack("{s:I,s:I,s:I}", "auctionId", (json_int_t)inv->num[0], "userId",
                                  (json_int_t)user, "amount", (json_int_t)inv->num[2]),
                        &r);
    if (rc == CLI_OK && !inv->json)
        format_auction_bid(inv->num[0], user, inv->num[2], r.json, inv->out);
    cli_reply_cleanup(&r);
    return rc;
}

static int run_auction_cancel(const struct cli_inv *inv)
{
    long long user;
    if (!acting_for(inv, 1, &user))
        return CLI_USAGE;
    return post(
        inv, "/auction/cancel",
        json_pack("{s:I,s:I}", "auctionId", (json_int_t)inv->num[0], "userId", (json_int_t)user),
        show_auction_cancelled);
}

static int run_auctions(const struct cli_inv *inv)
{
    /* The status is one of three words (cli_parse): nothing to escape. after=0 is the start. */
    char path[128], status[32] = "", limit[32] = "";
    if (inv->status != NULL)
        snprintf(status, sizeof status, "&status=%s", inv->status);
    if (inv->limit > 0)
        snprintf(limit, sizeof limit, "&limit=%lld", inv->limit);
    snprintf(path, sizeof path, "/auction?after=%lld%s%s", inv->after, status, limit);
    return get(inv, path, show_auctions);
}

static int run_auction(const struct cli_inv *inv)
{
    char path[64];
    snprintf(path, sizeof path, "/auction/%lld", inv->num[0]);
    return get(inv, path, show_auction);
}

static int run_user_gxp(const struct cli_inv *inv)
{
    char path[64];
    snprintf(path, sizeof path, "/user/gxp?userId=%lld", inv->num[0]);
    struct cli_reply r;
    int rc = call(inv, inv->url, path, NULL, &r);
    if (rc == CLI_OK && !inv->json)
        format_user_gxp(inv->num[0], r.json, inv->out);
    cli_reply_cleanup(&r);
    return rc;
}

/* The four svc-info commands: the path is the command's name turned into one. */
static int run_svc_info(const struct cli_inv *inv)
{
    char path[64];
    size_t n = strcspn(inv->cmd->name, "-");
    snprintf(path, sizeof path, "/%.*s/svc-info", (int)n, inv->cmd->name);
    struct cli_reply r;
    int rc = call(inv, inv->url, path, NULL, &r);
    if (rc == CLI_OK && !inv->json)
        format_text(r.body, inv->out);
    cli_reply_cleanup(&r);
    return rc;
}

static int run_events(const struct cli_inv *inv)
{
    char path[64] = "/eventlog/events";
    if (inv->nargs > 0)
        snprintf(path, sizeof path, "/eventlog/events?userId=%lld", inv->num[0]);
    struct cli_reply r;
    int rc = call(inv, inv->eventlog_url, path, NULL, &r);
    if (rc == CLI_OK && !inv->json)
        format_events(r.json, inv->out);
    cli_reply_cleanup(&r);
    return rc;
}

/* Two calls: the transaction from the backend (its answer decides the exit code), then its
 * events from the event log (a failure there is shown in the trace, not fatal). */
static int run_trace(const struct cli_inv *inv)
{
    char path[128], why[300] = "";
    struct cli_reply tx, ev;
    snprintf(path, sizeof path, "/gxp/transaction?correlationId=%s", inv->text[0]);
    int rc = call(inv, inv->url, path, NULL, &tx);
    if (rc != CLI_OK) {
        cli_reply_cleanup(&tx);
        return rc;
    }
    snprintf(path, sizeof path, "/eventlog/events?correlationId=%s", inv->text[0]);
    int erc = inv->json ? call(inv, inv->eventlog_url, path, NULL, &ev)
                        : cli_http(inv->eventlog_url, path, NULL, inv->login.token, &ev);
    if (erc == CLI_UNREACHABLE)
        snprintf(why, sizeof why, "event log unreachable: %s", ev.error);
    else if (erc == CLI_REFUSED)
        snprintf(why, sizeof why, "event log answered HTTP %ld", ev.status);
    if (!inv->json)
        format_trace(tx.json, erc == CLI_OK ? ev.json : NULL, why, inv->out);
    cli_reply_cleanup(&tx);
    cli_reply_cleanup(&ev);
    return inv->json ? erc : CLI_OK;
}

#define ARG(n, k)                                                                                  \
    {                                                                                              \
        .name = n, .kind = CLI_ARG_##k                                                             \
    }
/* A userId that may be left out: the logged-in user's own then (acting_for). */
#define SELF(n)                                                                                    \
    {                                                                                              \
        .name = n, .kind = CLI_ARG_ID, .optional = true,                                           \
        .omitted = "yours, when gf is logged in as a user"                                         \
    }
const struct cli_command cli_commands[] = {
    {"ls", "list users, items, marketplace and user items, gxp ledger", {}, 0, run_ls, 0},
    {"create-user",
     "create a user (with a password it can log in with)",
     {ARG("name", NAME)},
     1,
     run_create_user,
     CLI_OPT_PASSWORD | CLI_OPT_PASSWORD_STDIN},
    {"create-item",
     "create an item",
     {ARG("name", NAME), ARG("cost", COST)},
     2,
     run_create_item,
     0},
    {"create-marketplace-item",
     "put count units of an item on the marketplace",
     {ARG("itemId", ID), ARG("count", COUNT)},
     2,
     run_create_marketplace_item,
     0},
    {"create-user-item",
     "give a user count units of an item",
     {ARG("userId", ID), ARG("itemId", ID), ARG("count", COUNT)},
     3,
     run_create_user_item,
     0},
    {"user-gxp-add",
     "add gxp to a user's balance",
     {ARG("userId", ID), ARG("amount", COUNT)},
     2,
     run_user_gxp_add,
     0},
    {"user-gxp",
     "show a user's gxp balance and reservation",
     {ARG("userId", ID)},
     1,
     run_user_gxp,
     0},
    {"buy-marketplace-item",
     "buy one unit of an item from the marketplace",
     {ARG("userId", ID), ARG("itemId", ID)},
     2,
     run_buy,
     0},
    {"auction-create",
     "put one unit of a user item up for auction (held in escrow)",
     {SELF("userId"), ARG("userItemId", ID), ARG("minBid", COUNT),
      ARG("durationSeconds", DURATION)},
     4,
     run_auction_create,
     0},
    {"auction-bid",
     "bid gxp on an auction (taken at once, refunded when outbid)",
     {ARG("auctionId", ID), SELF("userId"), ARG("amount", COUNT)},
     3,
     run_auction_bid,
     0},
    {"auction-cancel",
     "cancel an auction that has no bid (its seller)",
     {ARG("auctionId", ID), SELF("userId")},
     2,
     run_auction_cancel,
     0},
    {"auctions", "list auctions with their leading bids", {}, 0, run_auctions, CLI_OPT_PAGE},
    {"auction",
     "one auction: its bids and its saga's steps in order",
     {ARG("auctionId", ID)},
     1,
     run_auction,
     0},
    {"marketplace-svc-info", "which replica serves /marketplace", {}, 0, run_svc_info, 0},
    {"user-svc-info", "which replica serves /user", {}, 0, run_svc_info, 0},
    {"item-svc-info", "which replica serves /item", {}, 0, run_svc_info, 0},
    {"gxp-svc-info", "which replica serves /gxp", {}, 0, run_svc_info, 0},
    {"events",
     "the event log, newest first (of one user when given)",
     {{.name = "userId", .kind = CLI_ARG_ID, .optional = true, .omitted = "every user's events"}},
     1,
     run_events,
     0},
    {"trace",
     "the life of one transaction: decision, gxp state, event",
     {ARG("correlationId", CID)},
     1,
     run_trace,
     0},
    {"login",
     "log in to --url: ask the password, keep the token",
     {ARG("name", NAME)},
     1,
     account_login,
     CLI_OPT_PASSWORD_STDIN},
    {"logout", "forget the token of --url", {}, 0, account_logout, 0},
    {"whoami", "who gf is logged in as at --url, and until when", {}, 0, account_whoami, 0},
    {"auth token", "print the token of --url, for curl and scripts", {}, 0, account_token, 0},
    {"passwd",
     "change your own password (the current, then the new)",
     {},
     0,
     account_passwd,
     CLI_OPT_PASSWORD_STDIN},
    {"set-password",
     "set a user's password (admin)",
     {ARG("userId", ID)},
     1,
     account_set_password,
     CLI_OPT_PASSWORD_STDIN},
};
const size_t cli_commands_count = sizeof cli_commands / sizeof cli_commands[0];

/* ---- the command line ------------------------------------------------------------------------ */

static bool is_uuid(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : strchr("0123456789abcdefABCDEF", s[i]) == NULL || s[i] == '\0')
            return false;
    }
    return true;
}

bool cli_arg_check(enum cli_arg_kind kind, const char *s, long long *num)
{
    if (kind == CLI_ARG_NAME)
        return s[0] != '\0';
    if (kind == CLI_ARG_CID)
        return is_uuid(s);
    if (s[0] < '0' || s[0] > '9')
        return false;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    long long min = kind == CLI_ARG_COST ? 0 : kind == CLI_ARG_DURATION ? DURATION_MIN : 1;
    long long max = kind == CLI_ARG_DURATION ? DURATION_MAX : ID_MAX;
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *num = v;
    return true;
}

static const char *kind_text(enum cli_arg_kind kind)
{
    switch (kind) {
    case CLI_ARG_NAME:
        return "a non-empty name";
    case CLI_ARG_ID:
    case CLI_ARG_COUNT:
        return "an integer from 1 to 2147483647";
    case CLI_ARG_COST:
        return "an integer from 0 to 2147483647";
    case CLI_ARG_CID:
        return "a UUID";
    case CLI_ARG_DURATION:
        return "an integer from 5 to 604800 (7 days)";
    }
    return "?";
}

/* The command argv[0] (or argv[0] argv[1] for a two-word one) names; *words says how many of
 * argv it took. NULL when none; *group is then set when argv[0] is the first word of one. */
static const struct cli_command *find(int argc, char **argv, int *words,
                                      const struct cli_command **group)
{
    *group = NULL;
    for (size_t i = 0; i < cli_commands_count; i++) {
        const char *name = cli_commands[i].name, *space = strchr(name, ' ');
        if (space == NULL) {
            if (strcmp(name, argv[0]) == 0)
                return *words = 1, &cli_commands[i];
            continue;
        }
        size_t n = (size_t)(space - name);
        if (strncmp(name, argv[0], n) != 0 || argv[0][n] != '\0')
            continue;
        *group = &cli_commands[i];
        if (argc > 1 && strcmp(space + 1, argv[1]) == 0)
            return *words = 2, &cli_commands[i];
    }
    return NULL;
}

/* "--url=X" or "--url X": the value, advancing *i past it; NULL when missing. */
static const char *option_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) == 0 && argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

#define USAGE(...) (snprintf(err, errsz, __VA_ARGS__), CLI_USAGE)

/* a is the option name, as "--name" or "--name=VALUE". */
static bool is_option(const char *a, const char *name)
{
    size_t n = strlen(name);
    return strncmp(a, name, n) == 0 && (a[n] == '\0' || a[n] == '=');
}

/* One of CLI_OPT_PAGE's options at argv[*i] (--status, --limit, --after) into inv, *i advanced
 * past its value. CLI_OK; CLI_USAGE with err; -1 when argv[*i] is none of them. */
static int page_option(int argc, char **argv, int *i, struct cli_inv *inv, char *err, size_t errsz)
{
    static const char *const names[] = {"--status", "--limit", "--after"};
    const char *name = NULL;
    for (size_t k = 0; k < sizeof names / sizeof names[0] && name == NULL; k++)
        if (is_option(argv[*i], names[k]))
            name = names[k];
    if (name == NULL)
        return -1;
    const char *v = option_value(argc, argv, i, name);
    const char *cmd = inv->cmd->name;
    if (v == NULL || v[0] == '\0')
        return USAGE("%s: option %s needs a value", cmd, name);
    if (strcmp(name, "--status") == 0) {
        if (strcmp(v, "open") != 0 && strcmp(v, "settled") != 0 && strcmp(v, "cancelled") != 0)
            return USAGE("%s: --status must be open, settled or cancelled, not '%s'", cmd, v);
        inv->status = v;
    } else if (strcmp(name, "--limit") == 0) {
        if (!cli_arg_check(CLI_ARG_COUNT, v, &inv->limit))
            return USAGE("%s: --limit must be %s, not '%s'", cmd, kind_text(CLI_ARG_COUNT), v);
    } else if (!cli_arg_check(CLI_ARG_COST, v, &inv->after)) {
        return USAGE("%s: --after must be %s, not '%s'", cmd, kind_text(CLI_ARG_COST), v);
    }
    return CLI_OK;
}

/* The positional arguments given (n of them) put in their places: the required ones always,
 * the optional ones from the left only with those left over (cli_arg), each checked. */
static int place_args(const char **given, int n, struct cli_inv *inv, char *err, size_t errsz)
{
    const struct cli_command *cmd = inv->cmd;
    int spare = n;
    for (int k = 0; k < cmd->nargs; k++)
        spare -= !cmd->args[k].optional;
    int g = 0;
    for (int k = 0; k < cmd->nargs; k++) {
        const struct cli_arg *spec = &cmd->args[k];
        if (spec->optional && spare-- <= 0)
            continue;
        if (g >= n)
            return USAGE("%s: missing argument <%s>", cmd->name, spec->name);
        if (!cli_arg_check(spec->kind, given[g], &inv->num[k]))
            return USAGE("%s: %s must be %s, not '%s'", cmd->name, spec->name,
                         kind_text(spec->kind), given[g]);
        inv->text[k] = given[g++];
    }
    inv->nargs = n;
    return CLI_OK;
}

int cli_parse(int argc, char **argv, const char *env_url, const char *env_eventlog_url,
              struct cli_inv *inv, char *err, size_t errsz)
{
    FILE *out = inv->out, *errf = inv->err;
    memset(inv, 0, sizeof *inv);
    inv->out = out, inv->err = errf;
    inv->url = env_url != NULL && env_url[0] ? env_url : CLI_DEFAULT_URL;
    const char *ev = env_eventlog_url != NULL && env_eventlog_url[0] ? env_eventlog_url : NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0)
            inv->json = true;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            inv->help = true;
        else if (strcmp(a, "--version") == 0)
            inv->version = true;
        else if (strcmp(a, "--url") == 0 || strncmp(a, "--url=", 6) == 0) {
            if ((inv->url = option_value(argc, argv, &i, "--url")) == NULL || !inv->url[0])
                return USAGE("option --url needs a URL");
        } else if (strcmp(a, "--eventlog-url") == 0 || strncmp(a, "--eventlog-url=", 15) == 0) {
            if ((ev = option_value(argc, argv, &i, "--eventlog-url")) == NULL || !ev[0])
                return USAGE("option --eventlog-url needs a URL");
        } else if (strcmp(a, "--") == 0) {
            i++;
            break;
        } else
            return USAGE("unknown option '%s'", a);
    }
    inv->eventlog_url = ev != NULL ? ev : inv->url;
    if (i >= argc) {
        if (inv->help || inv->version)
            return CLI_OK;
        return USAGE("no command given");
    }
    int words = 1;
    const struct cli_command *group;
    const struct cli_command *cmd = find(argc - i, argv + i, &words, &group);
    if (cmd == NULL && group != NULL)
        return USAGE("'%s' needs a subcommand: %s", argv[i], group->name);
    if (cmd == NULL)
        return USAGE("unknown command '%s'", argv[i]);
    inv->cmd = cmd;
    i += words - 1;
    if (inv->help || inv->version)
        return CLI_OK;
    bool dashdash = false;
    const char *given[CLI_MAX_ARGS];
    int n = 0;
    for (i++; i < argc; i++) {
        const char *a = argv[i];
        if (!dashdash && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
            inv->help = true;
            return CLI_OK;
        }
        if (!dashdash && strcmp(a, "--") == 0) {
            dashdash = true;
            continue;
        }
        if (!dashdash && (cmd->opts & CLI_OPT_PASSWORD_STDIN) &&
            strcmp(a, "--password-stdin") == 0) {
            inv->password_stdin = true;
            continue;
        }
        if (!dashdash && (cmd->opts & CLI_OPT_PASSWORD) && strcmp(a, "--password") == 0) {
            inv->password_ask = true;
            continue;
        }
        if (!dashdash && (cmd->opts & CLI_OPT_PAGE)) {
            int rc = page_option(argc, argv, &i, inv, err, errsz);
            if (rc == CLI_OK)
                continue;
            if (rc != -1)
                return rc;
        }
        if (!dashdash && a[0] == '-' && a[1] != '\0' && (a[1] < '0' || a[1] > '9'))
            return USAGE("%s: unknown option '%s'", cmd->name, a);
        if (n >= cmd->nargs)
            return USAGE("%s: too many arguments", cmd->name);
        given[n++] = a;
    }
    return place_args(given, n, inv, err, errsz);
}

static void command_line(const struct cli_command *cmd, FILE *out)
{
    fprintf(out, "%s", cmd->name);
    for (int a = 0; a < cmd->nargs; a++)
        fprintf(out, cmd->args[a].optional ? " [%s]" : " <%s>", cmd->args[a].name);
    if (cmd->opts & CLI_OPT_PASSWORD)
        fprintf(out, " [--password[-stdin]]");
    else if (cmd->opts & CLI_OPT_PASSWORD_STDIN)
        fprintf(out, " [--password-stdin]");
    if (cmd->opts & CLI_OPT_PAGE)
        fprintf(out, " [--status S] [--limit N] [--after ID]");
}

void cli_command_usage(const struct cli_command *cmd, FILE *out)
{
    fprintf(out, "usage: gf [options] ");
    command_line(cmd, out);
    fprintf(out, "\n%s\n", cmd->summary);
    for (int a = 0; a < cmd->nargs; a++) {
        const struct cli_arg *arg = &cmd->args[a];
        fprintf(out, "  %-14s %s", arg->name, kind_text(arg->kind));
        if (arg->optional && arg->omitted != NULL)
            fprintf(out, " (optional; without it: %s)", arg->omitted);
        else if (arg->optional)
            fprintf(out, " (optional)");
        fputc('\n', out);
    }
    if (cmd->opts & CLI_OPT_PAGE) {
        fprintf(out, "  %-14s %s\n", "--status S", "only those open, settled or cancelled");
        fprintf(out, "  %-14s %s\n", "--limit N", "at most N (the server caps it)");
        fprintf(out, "  %-14s %s\n", "--after ID", "those after the auction ID (the next page)");
    }
    if (cmd->opts & CLI_OPT_PASSWORD)
        fprintf(out, "  %-14s %s\n", "--password",
                "ask for a password (the terminal, or a line of stdin)");
    if (cmd->opts & CLI_OPT_PASSWORD_STDIN)
        fprintf(out, "  %s %s\n", "--password-stdin",
                "read passwords from stdin, one a line, even on a terminal");
}

void cli_usage(FILE *out)
{
    fprintf(out, "usage: gf [options] <command> [arguments]\n"
                 "\n"
                 "commands:\n");
    for (size_t i = 0; i < cli_commands_count; i++) {
        char line[128];
        FILE *m = fmemopen(line, sizeof line, "w");
        if (m == NULL)
            continue;
        command_line(&cli_commands[i], m);
        fclose(m);
        /* A command line too long for the column has its summary on a line of its own. */
        if (strlen(line) > 42)
            fprintf(out, "  %s\n  %-42s  %s\n", line, "", cli_commands[i].summary);
        else
            fprintf(out, "  %-42s  %s\n", line, cli_commands[i].summary);
    }
    fprintf(out,
            "\n"
            "options (before the command):\n"
            "  --url URL           the backend (through the ingress); env GF_URL, default %s\n"
            "  --eventlog-url URL  the event log; env GF_EVENTLOG_URL, default the --url\n"
            "  --json              print the server's JSON as it came\n"
            "  -h, --help          this text; `gf <command> --help` for one command\n"
            "  --version           gf's version\n"
            "\n"
            "logging in: `gf login NAME` keeps a token for the --url in one file only you can\n"
            "read: $GF_TOKEN_FILE, default ${XDG_CONFIG_HOME:-~/.config}/gf/tokens.json; gf sends\n"
            "it with every request (to the --eventlog-url too). GF_TOKEN, when set, is sent\n"
            "instead. Passwords are read from the terminal without echo, or one a line from\n"
            "stdin when it is not a terminal. For curl:\n"
            "  curl -H \"Authorization: Bearer $(gf auth token)\" %s/user\n"
            "\n"
            "exit codes: 0 ok, 1 the server refused (or not logged in), 2 usage error (or no\n"
            "password given), 3 cannot connect\n",
            CLI_DEFAULT_URL, CLI_DEFAULT_URL);
}
