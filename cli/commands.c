/* gf's commands: the table of what gf knows (names, arguments, one function each), the parser
 * of the command line it describes, and the usage text. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define ID_MAX 2147483647LL

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

/* POST path with body (stolen), then print the answer's line with show. */
static int post(const struct cli_inv *inv, const char *path, json_t *body,
                void (*show)(const struct cli_inv *, const json_t *))
{
    struct cli_reply r;
    int rc = CLI_UNREACHABLE;
    if (body == NULL) {
        fprintf(inv->err, "gf: out of memory\n");
        return rc;
    }
    rc = call(inv, inv->url, path, body, &r);
    if (rc == CLI_OK && !inv->json)
        show(inv, r.json);
    json_decref(body);
    cli_reply_cleanup(&r);
    return rc;
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
        n, CLI_ARG_##k, false                                                                      \
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
    {"marketplace-svc-info", "which replica serves /marketplace", {}, 0, run_svc_info, 0},
    {"user-svc-info", "which replica serves /user", {}, 0, run_svc_info, 0},
    {"item-svc-info", "which replica serves /item", {}, 0, run_svc_info, 0},
    {"gxp-svc-info", "which replica serves /gxp", {}, 0, run_svc_info, 0},
    {"events",
     "the event log, newest first (of one user when given)",
     {{"userId", CLI_ARG_ID, true}},
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
    long long min = kind == CLI_ARG_COST ? 0 : 1;
    if (errno != 0 || *end != '\0' || v < min || v > ID_MAX)
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
        if (!dashdash && a[0] == '-' && a[1] != '\0' && (a[1] < '0' || a[1] > '9'))
            return USAGE("%s: unknown option '%s'", cmd->name, a);
        if (inv->nargs >= cmd->nargs)
            return USAGE("%s: too many arguments", cmd->name);
        const struct cli_arg *spec = &cmd->args[inv->nargs];
        if (!cli_arg_check(spec->kind, a, &inv->num[inv->nargs]))
            return USAGE("%s: %s must be %s, not '%s'", cmd->name, spec->name,
                         kind_text(spec->kind), a);
        inv->text[inv->nargs++] = a;
    }
    if (inv->nargs < cmd->nargs && !cmd->args[inv->nargs].optional)
        return USAGE("%s: missing argument <%s>", cmd->name, cmd->args[inv->nargs].name);
    return CLI_OK;
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
}

void cli_command_usage(const struct cli_command *cmd, FILE *out)
{
    fprintf(out, "usage: gf [options] ");
    command_line(cmd, out);
    fprintf(out, "\n%s\n", cmd->summary);
    for (int a = 0; a < cmd->nargs; a++)
        fprintf(out, "  %-14s %s%s\n", cmd->args[a].name, kind_text(cmd->args[a].kind),
                cmd->args[a].optional ? " (optional)" : "");
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
