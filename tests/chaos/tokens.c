/* The chaos test's credentials: who sends each request. The operator (admin) logs in with the
 * stack's password, the users setup creates log in with passwords derived from the seed, and
 * their bearer tokens go into a file (--tokens) that load and probe read. A token older than
 * TOKEN_REFRESH_MS is renewed by logging in again (tokens live an hour; a run may be longer),
 * and the file is rewritten so that a later probe gets the new one. */
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chaos.h"

#define TOKEN_REFRESH_MS (30LL * 60 * 1000) /* half of the stack's token lifetime (1 h) */
#define LOGIN_RETRY_MS 5000                 /* after a failed renewal, the next try */
#define LOGIN_ATTEMPTS 30                   /* a second apart, at setup */

struct cred {
    int64_t user; /* 0: the operator */
    char name[NAME_MAX_LEN];
    char token[TOKEN_MAX];
    int64_t got_ms, retry_ms;
};

static struct cred *creds;
static size_t n_creds, cap_creds;
static pthread_mutex_t creds_mu = PTHREAD_MUTEX_INITIALIZER;
static char admin_password[1100], tokens_path[512], login_url[512];
static uint64_t creds_seed;

void user_password(uint64_t seed, const char *name, char *out, size_t n)
{
    snprintf(out, n, "chaos-%" PRIu64 "-%s", seed, name);
}

bool chaos_login(const char *url, const char *name, const char *password, char token[TOKEN_MAX],
                 char *why, size_t why_n)
{
    bool ok = false;
    struct buf *b = malloc(sizeof *b);
    CURL *h = curl_easy_init();
    json_t *req = json_pack("{s:s,s:s}", "name", name, "password", password);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    char u[600];
    snprintf(why, why_n, "out of memory");
    if (b == NULL || h == NULL || body == NULL || hd == NULL)
        goto out;
    b->len = 0;
    b->p[0] = '\0';
    snprintf(u, sizeof u, "%s/auth/login", url);
    curl_easy_setopt(h, CURLOPT_URL, u);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, chaos_buf_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (rc != CURLE_OK || code != 200) {
        snprintf(why, why_n, "POST /auth/login as %s: %ld (curl %d) %.200s", name, code, (int)rc,
                 b->p);
        goto out;
    }
    json_t *j = json_loadb(b->p, b->len, 0, NULL);
    json_t *t = json_object_get(j, "token");
    if (json_is_string(t) && strlen(json_string_value(t)) < TOKEN_MAX) {
        snprintf(token, TOKEN_MAX, "%s", json_string_value(t));
        ok = true;
    } else {
        snprintf(why, why_n, "POST /auth/login as %s: no token in %.200s", name, b->p);
    }
    json_decref(j);
out:
    curl_slist_free_all(hd);
    free(body);
    json_decref(req);
    if (h)
        curl_easy_cleanup(h);
    free(b);
    return ok;
}

bool tokens_init(const char *url, const char *path, const char *admin_password_file, uint64_t seed)
{
    snprintf(login_url, sizeof login_url, "%s", url);
    snprintf(tokens_path, sizeof tokens_path, "%s", path);
    creds_seed = seed;
    FILE *f = fopen(admin_password_file, "r");
    if (f == NULL) {
        perror(admin_password_file);
        return false;
    }
    bool ok = fgets(admin_password, sizeof admin_password, f) != NULL;
    fclose(f);
    admin_password[strcspn(admin_password, "\r\n")] = '\0';
    if (!ok || admin_password[0] == '\0') {
        fprintf(stderr, "chaos: %s holds no password\n", admin_password_file);
        return false;
    }
    return true;
}

bool tokens_add(int64_t user, const char *name, const char *token)
{
    pthread_mutex_lock(&creds_mu);
    bool ok = true;
    if (n_creds == cap_creds) {
        size_t cap = cap_creds ? 2 * cap_creds : 32;
        struct cred *v = realloc(creds, cap * sizeof *v);
        if (v == NULL)
            ok = false;
        else
            creds = v, cap_creds = cap;
    }
    if (ok) {
        struct cred *c = &creds[n_creds++];
        memset(c, 0, sizeof *c);
        c->user = user;
        snprintf(c->name, sizeof c->name, "%s", name);
        snprintf(c->token, sizeof c->token, "%s", token);
        c->got_ms = now_ms();
    }
    pthread_mutex_unlock(&creds_mu);
    return ok;
}

bool tokens_login_add(int64_t user, const char *name)
{
    char pw[sizeof admin_password], why[400];
    char *token = malloc(TOKEN_MAX);
    if (token == NULL)
        return false;
    if (user == 0)
        snprintf(pw, sizeof pw, "%s", admin_password);
    else
        user_password(creds_seed, name, pw, sizeof pw);
    /* The ingress allows a client a burst of 20 logins, then 2 a second (429): setup's logins
     * come faster, and wait. */
    bool ok = false;
    for (int attempt = 0; attempt < LOGIN_ATTEMPTS && !ok; attempt++) {
        ok = chaos_login(login_url, name, pw, token, why, sizeof why);
        if (!ok) {
            if (strstr(why, ": 429 ") == NULL)
                fprintf(stderr, "chaos: %s\n", why);
            sleep(1);
        }
    }
    if (!ok)
        fprintf(stderr, "chaos: %s\n", why);
    ok = ok && tokens_add(user, name, token);
    free(token);
    return ok;
}

/* Writes the file beside and renames it: a reader sees the old one or the new one. */
static bool save_locked(void)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.new", tokens_path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        perror(tmp);
        return false;
    }
    for (size_t i = 0; i < n_creds; i++)
        fprintf(f, "%" PRId64 "\t%s\t%" PRId64 "\t%s\n", creds[i].user, creds[i].name,
                creds[i].got_ms, creds[i].token);
    bool ok = fclose(f) == 0 && rename(tmp, tokens_path) == 0;
    if (!ok)
        perror(tokens_path);
    return ok;
}

bool tokens_save(void)
{
    pthread_mutex_lock(&creds_mu);
    bool ok = save_locked();
    pthread_mutex_unlock(&creds_mu);
    return ok;
}

bool tokens_read(void)
{
    FILE *f = fopen(tokens_path, "r");
    if (f == NULL) {
        perror(tokens_path);
        return false;
    }
    char *line = malloc(TOKEN_MAX + NAME_MAX_LEN + 64);
    bool ok = line != NULL;
    while (ok && fgets(line, TOKEN_MAX + NAME_MAX_LEN + 64, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *save = NULL, *user = strtok_r(line, "\t", &save);
        char *name = strtok_r(NULL, "\t", &save), *got = strtok_r(NULL, "\t", &save);
        char *token = strtok_r(NULL, "\t", &save);
        if (!user || !name || !got || !token) {
            fprintf(stderr, "chaos: %s: a malformed line\n", tokens_path);
            ok = false;
            break;
        }
        ok = tokens_add(strtoll(user, NULL, 10), name, token);
        if (ok)
            creds[n_creds - 1].got_ms = strtoll(got, NULL, 10);
    }
    free(line);
    fclose(f);
    if (ok && tokens_index(0) < 0) {
        fprintf(stderr, "chaos: %s holds no operator's token\n", tokens_path);
        ok = false;
    }
    return ok;
}

size_t tokens_count(void)
{
    return n_creds;
}

long tokens_index(int64_t user)
{
    for (size_t i = 0; i < n_creds; i++)
        if (creds[i].user == user)
            return (long)i;
    return -1;
}

int64_t tokens_user(size_t i)
{
    return creds[i].user;
}

/* Renews an old token by logging in again (outside the lock: a login hashes for ~50 ms, and
 * it may wait on a fault); the old one stays in use while that fails. */
void tokens_get(size_t i, char out[TOKEN_MAX])
{
    pthread_mutex_lock(&creds_mu);
    struct cred *c = &creds[i];
    int64_t now = now_ms();
    bool renew = now - c->got_ms > TOKEN_REFRESH_MS && now >= c->retry_ms;
    char name[NAME_MAX_LEN];
    snprintf(name, sizeof name, "%s", c->name);
    int64_t user = c->user;
    if (renew)
        c->retry_ms = now + LOGIN_RETRY_MS; /* one renewal at a time */
    pthread_mutex_unlock(&creds_mu);
    if (renew) {
        char pw[sizeof admin_password], why[400];
        if (user == 0)
            snprintf(pw, sizeof pw, "%s", admin_password);
        else
            user_password(creds_seed, name, pw, sizeof pw);
        bool ok = chaos_login(login_url, name, pw, out, why, sizeof why);
        if (!ok)
            fprintf(stderr, "chaos: renewing %s's token: %s\n", name, why);
        pthread_mutex_lock(&creds_mu);
        if (ok) {
            snprintf(c->token, sizeof c->token, "%s", out);
            c->got_ms = now_ms();
            save_locked();
        }
        pthread_mutex_unlock(&creds_mu);
    }
    pthread_mutex_lock(&creds_mu);
    memcpy(out, c->token, TOKEN_MAX);
    pthread_mutex_unlock(&creds_mu);
}

void tokens_free(void)
{
    free(creds);
    creds = NULL;
    n_creds = cap_creds = 0;
}
