/* gf's commands of logging in: login, logout, auth token, whoami, passwd, set-password and
 * create-user with a password; the password prompt (the terminal without echo, or lines of
 * stdin for scripts); and the hint after a 401. Passwords never come from the command line,
 * where every user of the machine could read them. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define PASSWORD_MAX 1024 /* the server's limit, in bytes */

/* ---- reading passwords ----------------------------------------------------------------------- */

/* The terminal's settings while echo is off, restored by a signal before it ends gf. */
static struct termios saved_tty;
static volatile sig_atomic_t echo_off;

static void restore_tty(int sig)
{
    if (echo_off)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* One line of stdin into out (its newline, and a CR before it, removed). false with why. */
static bool read_line(char *out, size_t n, const char **why)
{
    if (fgets(out, (int)n, stdin) == NULL) {
        *why = "no password on stdin";
        return false;
    }
    size_t len = strcspn(out, "\n");
    if (out[len] != '\n' && !feof(stdin)) {
        explicit_bzero(out, n);
        *why = "the password is longer than 1024 bytes";
        return false;
    }
    out[len] = '\0';
    if (len > 0 && out[len - 1] == '\r')
        out[--len] = '\0';
    if (len == 0) {
        *why = "the password is empty";
        return false;
    }
    return true;
}

/* A password from the terminal, echo off, prompt on stderr. */
static bool read_tty(const char *prompt, char *out, size_t n, const char **why)
{
    struct termios t;
    if (tcgetattr(STDIN_FILENO, &saved_tty) != 0) {
        *why = "cannot read the terminal's settings";
        return false;
    }
    struct sigaction sa = {.sa_handler = restore_tty}, old_int, old_term, old_hup;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGHUP, &sa, &old_hup);
    t = saved_tty;
    t.c_lflag &= ~(tcflag_t)ECHO;
    t.c_lflag |= ECHONL;
    fprintf(stderr, "%s", prompt);
    fflush(stderr);
    echo_off = 1;
    bool ok = tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == 0;
    if (!ok)
        *why = "cannot turn the terminal's echo off";
    else
        ok = read_line(out, n, why);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
    echo_off = 0;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    return ok;
}

/* A password: from the terminal with prompt when stdin is one (and not --password-stdin), else
 * the next line of stdin. confirm: on the terminal, asked twice. false after saying why. */
static bool ask(const struct cli_inv *inv, const char *prompt, bool confirm, char *out, size_t n)
{
    const char *why = NULL;
    bool tty = !inv->password_stdin && isatty(STDIN_FILENO);
    bool ok = tty ? read_tty(prompt, out, n, &why) : read_line(out, n, &why);
    if (ok && tty && confirm) {
        char again[PASSWORD_MAX + 2];
        ok = read_tty("Retype it: ", again, sizeof again, &why);
        if (ok && strcmp(out, again) != 0) {
            ok = false;
            why = "the two passwords differ";
        }
        explicit_bzero(again, sizeof again);
    }
    if (!ok) {
        explicit_bzero(out, n);
        fprintf(inv->err, "gf: %s\n", why);
    }
    return ok;
}

/* ---- the store ------------------------------------------------------------------------------- */

/* Loads the store into *store and its path into path; says why not. */
static int store_open(const struct cli_inv *inv, char *path, size_t n, json_t **store)
{
    char why[4400];
    int rc = tokens_path(path, n, why, sizeof why);
    if (rc == CLI_OK)
        rc = tokens_load(path, store, why, sizeof why);
    if (rc != CLI_OK)
        fprintf(inv->err, "gf: %s\n", why);
    return rc;
}

static const char *name_or_placeholder(const struct cli_login *l)
{
    return l->name != NULL ? l->name : "NAME";
}

/* The login of inv->url, not expired as far as gf can tell; otherwise says so. */
static int need_login(const struct cli_inv *inv)
{
    const struct cli_login *l = &inv->login;
    if (l->token == NULL) {
        fprintf(inv->err, "gf: not logged in: gf login NAME\n");
        return CLI_REFUSED;
    }
    if (l->exp != 0 && l->exp <= (long long)time(NULL)) {
        char when[32];
        tokens_format_time(l->exp, when);
        if (l->from_env)
            fprintf(inv->err, "gf: the token in GF_TOKEN expired at %s: unset it, gf login %s\n",
                    when, name_or_placeholder(l));
        else
            fprintf(inv->err, "gf: the token expired at %s: gf login %s\n", when,
                    name_or_placeholder(l));
        return CLI_REFUSED;
    }
    return CLI_OK;
}

/* ---- the commands ---------------------------------------------------------------------------- */

int account_login(const struct cli_inv *inv)
{
    const char *name = inv->text[0];
    char prompt[512], pw[PASSWORD_MAX + 2];
    snprintf(prompt, sizeof prompt, "Password of %s at %s: ", name, inv->url);
    if (!ask(inv, prompt, false, pw, sizeof pw))
        return CLI_USAGE;
    char path[4096];
    json_t *store = NULL;
    int rc = store_open(inv, path, sizeof path, &store);
    if (rc != CLI_OK) {
        explicit_bzero(pw, sizeof pw);
        return rc;
    }
    json_t *body = json_pack("{s:s,s:s}", "name", name, "password", pw);
    explicit_bzero(pw, sizeof pw);
    if (body == NULL) {
        fprintf(inv->err, "gf: out of memory\n");
        json_decref(store);
        return CLI_UNREACHABLE;
    }
    /* No token with a login: whatever gf held for this URL is what is being replaced. */
    struct cli_reply r;
    rc = cli_http(inv->url, "/auth/login", body, NULL, &r);
    json_decref(body);
    const char *token = json_string_value(json_object_get(r.json, "token"));
    const char *expires = json_string_value(json_object_get(r.json, "expiresAt"));
    char *key = tokens_key(inv->url);
    char why[4400] = "out of memory";
    if (rc == CLI_UNREACHABLE)
        fprintf(inv->err, "gf: cannot reach %s: %s\n", inv->url, r.error);
    else if (rc == CLI_REFUSED)
        format_refusal(r.status, r.json, inv->err);
    else if (token == NULL || expires == NULL || key == NULL) {
        fprintf(inv->err, "gf: the server's answer has no token\n");
        rc = CLI_REFUSED;
    } else if (json_object_set_new(store, key,
                                   json_pack("{s:s,s:s,s:s}", "name", name, "token", token,
                                             "expiresAt", expires)) != 0 ||
               tokens_save(path, store, why, sizeof why) != CLI_OK) {
        fprintf(inv->err, "gf: logged in, but the token could not be kept: %s\n", why);
        rc = CLI_REFUSED;
    } else {
        struct cli_login l = {0};
        tokens_decode(token, &l);
        fprintf(inv->out, "logged in as %s (%s, until %s)\n", name,
                l.role != NULL ? l.role : "role unknown", expires);
        cli_login_cleanup(&l);
        if (inv->login.from_env)
            fprintf(inv->err, "gf: note: GF_TOKEN is set, and gf sends it instead of this login\n");
    }
    free(key);
    json_decref(store);
    cli_reply_cleanup(&r);
    return rc;
}

int account_logout(const struct cli_inv *inv)
{
    char path[4096], why[256];
    json_t *store = NULL;
    if (tokens_path(path, sizeof path, why, sizeof why) != CLI_OK) {
        fprintf(inv->out, "not logged in to %s\n", inv->url); /* no store, no login in it */
        return CLI_OK;
    }
    int rc = store_open(inv, path, sizeof path, &store);
    if (rc != CLI_OK)
        return rc;
    char *key = tokens_key(inv->url);
    const json_t *entry = key != NULL ? json_object_get(store, key) : NULL;
    if (entry == NULL) {
        fprintf(inv->out, "not logged in to %s\n", inv->url);
    } else {
        char who[300];
        const char *name = json_string_value(json_object_get(entry, "name"));
        snprintf(who, sizeof who, "%s", name != NULL ? name : "?");
        char why[4400];
        json_object_del(store, key);
        rc = tokens_save(path, store, why, sizeof why);
        if (rc == CLI_OK)
            fprintf(inv->out, "logged out of %s (was %s)\n", inv->url, who);
        else
            fprintf(inv->err, "gf: %s\n", why);
    }
    if (rc == CLI_OK && inv->login.from_env)
        fprintf(inv->err, "gf: note: GF_TOKEN is still set\n");
    free(key);
    json_decref(store);
    return rc;
}

int account_token(const struct cli_inv *inv)
{
    int rc = need_login(inv);
    if (rc == CLI_OK)
        fprintf(inv->out, "%s\n", inv->login.token);
    return rc;
}

int account_whoami(const struct cli_inv *inv)
{
    int rc = need_login(inv);
    if (rc != CLI_OK)
        return rc;
    const struct cli_login *l = &inv->login;
    char when[32] = "?", id[40] = "";
    if (l->exp != 0)
        tokens_format_time(l->exp, when);
    if (l->role != NULL && strcmp(l->role, "user") == 0 && l->user_id > 0)
        snprintf(id, sizeof id, ", user %lld", l->user_id);
    fprintf(inv->out, "%s (%s%s) at %s until %s%s\n", l->name != NULL ? l->name : "?",
            l->role != NULL ? l->role : "role unknown", id, inv->url, when,
            l->from_env ? " (GF_TOKEN)" : "");
    return CLI_OK;
}

/* POST path with body (stolen), reporting a refusal as call() in commands.c does. */
static int post_secret(const struct cli_inv *inv, const char *path, json_t *body,
                       struct cli_reply *r)
{
    if (body == NULL) {
        memset(r, 0, sizeof *r);
        fprintf(inv->err, "gf: out of memory\n");
        return CLI_UNREACHABLE;
    }
    int rc = cli_http(inv->url, path, body, inv->login.token, r);
    json_decref(body);
    if (rc == CLI_UNREACHABLE)
        fprintf(inv->err, "gf: cannot reach %s: %s\n", inv->url, r->error);
    else if (rc == CLI_REFUSED) {
        format_refusal(r->status, r->json, inv->err);
        if (r->status == 401)
            account_hint_401(inv, r->json);
    } else if (inv->json)
        format_raw(r->body, r->body_len, inv->out);
    return rc;
}

int account_passwd(const struct cli_inv *inv)
{
    char cur[PASSWORD_MAX + 2], pw[PASSWORD_MAX + 2];
    if (!ask(inv, "Current password: ", false, cur, sizeof cur))
        return CLI_USAGE;
    if (!ask(inv, "New password: ", true, pw, sizeof pw)) {
        explicit_bzero(cur, sizeof cur);
        return CLI_USAGE;
    }
    struct cli_reply r;
    int rc = post_secret(inv, "/auth/password",
                         json_pack("{s:s,s:s}", "password", cur, "newPassword", pw), &r);
    explicit_bzero(cur, sizeof cur);
    explicit_bzero(pw, sizeof pw);
    if (rc == CLI_OK && !inv->json)
        fprintf(inv->out, "password changed for %s\n", name_or_placeholder(&inv->login));
    cli_reply_cleanup(&r);
    return rc;
}

int account_set_password(const struct cli_inv *inv)
{
    char prompt[64], pw[PASSWORD_MAX + 2];
    snprintf(prompt, sizeof prompt, "New password of user %lld: ", inv->num[0]);
    if (!ask(inv, prompt, true, pw, sizeof pw))
        return CLI_USAGE;
    struct cli_reply r;
    int rc = post_secret(
        inv, "/auth/password",
        json_pack("{s:I,s:s}", "userId", (json_int_t)inv->num[0], "newPassword", pw), &r);
    explicit_bzero(pw, sizeof pw);
    if (rc == CLI_OK && !inv->json)
        fprintf(inv->out, "password set for user %lld\n", inv->num[0]);
    cli_reply_cleanup(&r);
    return rc;
}

int account_create_user(const struct cli_inv *inv)
{
    char prompt[400], pw[PASSWORD_MAX + 2];
    snprintf(prompt, sizeof prompt, "Password of the new user %s: ", inv->text[0]);
    if (!ask(inv, prompt, true, pw, sizeof pw))
        return CLI_USAGE;
    struct cli_reply r;
    int rc = post_secret(inv, "/user/create",
                         json_pack("{s:s,s:s}", "name", inv->text[0], "password", pw), &r);
    explicit_bzero(pw, sizeof pw);
    if (rc == CLI_OK && !inv->json)
        format_created("user", "userId", r.json, inv->out);
    cli_reply_cleanup(&r);
    return rc;
}

void account_hint_401(const struct cli_inv *inv, const json_t *body)
{
    const char *code = json_string_value(json_object_get(body, "error"));
    if (code != NULL && strcmp(code, "unauthenticated") != 0 &&
        strcmp(code, "invalid_token") != 0 && strcmp(code, "token_expired") != 0)
        return; /* a refusal of something else than the token */
    const struct cli_login *l = &inv->login;
    const char *name = name_or_placeholder(l);
    if (l->token == NULL) {
        fprintf(inv->err, "gf: not logged in to %s (gf login NAME)\n", inv->url);
    } else if (l->exp != 0 && l->exp <= (long long)time(NULL)) {
        char when[32];
        tokens_format_time(l->exp, when);
        fprintf(inv->err, "gf: the token%s of %s expired at %s (gf login %s)\n",
                l->from_env ? " in GF_TOKEN" : "", name, when, name);
    } else {
        fprintf(inv->err, "gf: the token%s of %s was refused (gf login %s)\n",
                l->from_env ? " in GF_TOKEN" : "", name, name);
    }
}
