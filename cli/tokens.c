/* gf's logins: the token store (one JSON file of this user's only, a login per API URL), the
 * GF_TOKEN override, and the token's payload read for display. gf never judges a token: the
 * server verifies it on every request; what gf reads of it only words its messages. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define STORE_MAX ((off_t)1 << 20)
#define PAYLOAD_MAX 8192

#define FAIL(...) (snprintf(err, errsz, __VA_ARGS__), CLI_REFUSED)

int tokens_path(char *out, size_t n, char *err, size_t errsz)
{
    const char *file = getenv("GF_TOKEN_FILE");
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    int w;
    if (file != NULL && file[0] != '\0')
        w = snprintf(out, n, "%s", file);
    else if (xdg != NULL && xdg[0] == '/')
        w = snprintf(out, n, "%s/gf/tokens.json", xdg);
    else if (home != NULL && home[0] != '\0')
        w = snprintf(out, n, "%s/.config/gf/tokens.json", home);
    else
        return FAIL("no place for gf's tokens: set GF_TOKEN_FILE (or HOME)");
    if (w < 0 || (size_t)w >= n)
        return FAIL("the path of gf's tokens is too long");
    return CLI_OK;
}

char *tokens_key(const char *url)
{
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    char *key = malloc(n + sizeof "127.0.0.1");
    if (key == NULL)
        return NULL;
    const char *sep = strstr(url, "://");
    if (sep == NULL || (size_t)(sep - url) >= n) {
        snprintf(key, n + 1, "%s", url);
        return key;
    }
    /* Scheme and host are case-insensitive; localhost is the loopback the stack listens on
     * (`make up` logs in at 127.0.0.1, gf's default URL says localhost). */
    size_t k = 0, i = 0;
    for (; i < (size_t)(sep - url) + 3; i++)
        key[k++] = (char)tolower((unsigned char)url[i]);
    size_t host = i, hlen = strcspn(url + host, ":/?#");
    if (host + hlen > n)
        hlen = n - host;
    if (hlen == 9 && strncasecmp(url + host, "localhost", 9) == 0) {
        memcpy(key + k, "127.0.0.1", 9);
        k += 9;
    } else {
        for (size_t j = 0; j < hlen; j++)
            key[k++] = (char)tolower((unsigned char)url[host + j]);
    }
    for (i = host + hlen; i < n; i++)
        key[k++] = url[i];
    key[k] = '\0';
    return key;
}

int tokens_load(const char *path, json_t **store, char *err, size_t errsz)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 && (errno == ENOENT || errno == ENOTDIR)) {
        *store = json_object();
        return *store != NULL ? CLI_OK : FAIL("out of memory");
    }
    if (fd < 0)
        return FAIL("cannot read %s: %s", path, strerror(errno));
    int rc = CLI_REFUSED;
    char *text = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = FAIL("cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = FAIL("%s is not a regular file: gf will not use it", path);
        goto out;
    }
    /* As ssh with a private key: a token others could read may be someone else's by now. */
    if (st.st_uid != geteuid()) {
        rc = FAIL("%s belongs to uid %ld, not to you: gf will not use it", path, (long)st.st_uid);
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        rc = FAIL("%s is open to others (mode %04o): gf will not use it; chmod 600 it, "
                  "or remove it and log in again",
                  path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if (st.st_size > STORE_MAX) {
        rc = FAIL("%s is over 1 MiB: not gf's token file", path);
        goto out;
    }
    text = malloc((size_t)st.st_size + 1);
    if (text == NULL) {
        rc = FAIL("out of memory");
        goto out;
    }
    ssize_t got = read(fd, text, (size_t)st.st_size);
    if (got != st.st_size) {
        rc = FAIL("cannot read %s: %s", path, got < 0 ? strerror(errno) : "short read");
        goto out;
    }
    json_error_t e;
    json_t *j = got == 0 ? json_object() : json_loadb(text, (size_t)got, 0, &e);
    if (!json_is_object(j)) {
        json_decref(j);
        rc = FAIL("%s is not a JSON object: remove it and log in again", path);
        goto out;
    }
    *store = j;
    rc = CLI_OK;
out:
    free(text);
    close(fd);
    return rc;
}

/* The directories of path that are missing, made 0700 (an existing one is left as it is). */
static int make_parents(const char *path, char *err, size_t errsz)
{
    char *dir = strdup(path);
    if (dir == NULL)
        return FAIL("out of memory");
    int rc = CLI_OK;
    for (char *p = dir + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            rc = FAIL("cannot make %s: %s", dir, strerror(errno));
            break;
        }
        *p = '/';
    }
    free(dir);
    return rc;
}

static bool write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        s += w, n -= (size_t)w;
    }
    return true;
}

int tokens_save(const char *path, const json_t *store, char *err, size_t errsz)
{
    int rc = make_parents(path, err, errsz);
    if (rc != CLI_OK)
        return rc;
    rc = CLI_REFUSED;
    char *text = json_dumps(store, JSON_INDENT(2) | JSON_SORT_KEYS);
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    int fd = -1;
    bool made = false; /* tmp exists: remove it on failure */
    if (text == NULL || tmp == NULL) {
        rc = FAIL("out of memory");
        goto out;
    }
    snprintf(tmp, n, "%s.tmp-XXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = FAIL("cannot write beside %s: %s", path, strerror(errno));
        goto out;
    }
    made = true;
    /* 0600 before the first byte, whatever the umask did. */
    if (fchmod(fd, 0600) != 0 || !write_all(fd, text, strlen(text)) || !write_all(fd, "\n", 1) ||
        fsync(fd) != 0) {
        rc = FAIL("cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = FAIL("cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = FAIL("cannot replace %s: %s", path, strerror(errno));
        goto out;
    }
    made = false;
    rc = CLI_OK;
out:
    if (fd >= 0)
        close(fd);
    if (made)
        unlink(tmp);
    free(tmp);
    free(text);
    return rc;
}

/* What gf will put in a header: base64url parts and dots only. */
static bool token_shaped(const char *s)
{
    if (s[0] == '\0' || strlen(s) > 16384)
        return false;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") ==
           strlen(s);
}

int cli_login_load(const char *url, const char *env_token, struct cli_login *l, char *err,
                   size_t errsz)
{
    memset(l, 0, sizeof *l);
    if (env_token != NULL && env_token[0] != '\0') {
        if (!token_shaped(env_token))
            return FAIL("GF_TOKEN is not a token (three base64url parts joined by dots)");
        l->token = strdup(env_token);
        l->from_env = true;
        if (l->token == NULL)
            return FAIL("out of memory");
        tokens_decode(l->token, l);
        return CLI_OK;
    }
    char path[4096];
    json_t *store = NULL;
    if (tokens_path(path, sizeof path, err, errsz) != CLI_OK)
        return CLI_OK; /* nowhere to look: not logged in (login says why) */
    int rc = tokens_load(path, &store, err, errsz);
    if (rc != CLI_OK)
        return rc;
    char *key = tokens_key(url);
    const json_t *entry = key != NULL ? json_object_get(store, key) : NULL;
    const char *token = json_string_value(json_object_get(entry, "token"));
    const char *name = json_string_value(json_object_get(entry, "name"));
    const char *expires = json_string_value(json_object_get(entry, "expiresAt"));
    if (token != NULL && !token_shaped(token)) {
        free(key);
        json_decref(store);
        return FAIL("%s: the token of %s is damaged: gf logout, then gf login again", path, url);
    }
    if (token != NULL) {
        l->token = strdup(token);
        l->name = name != NULL ? strdup(name) : NULL;
        if (expires != NULL && !tokens_parse_time(expires, &l->exp))
            l->exp = 0;
        tokens_decode(token, l);
    }
    free(key);
    json_decref(store);
    if (token != NULL && l->token == NULL)
        return FAIL("out of memory");
    return CLI_OK;
}

void cli_login_cleanup(struct cli_login *l)
{
    free(l->token);
    free(l->name);
    free(l->role);
    memset(l, 0, sizeof *l);
}

/* base64url without padding (RFC 7515 §2) into out; the decoded length, or -1. */
static long b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap)
{
    unsigned acc = 0;
    int bits = 0;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i], v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '-')
            v = 62;
        else if (c == '_')
            v = 63;
        else
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (len >= cap)
                return -1;
            out[len++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return (long)len;
}

bool tokens_decode(const char *token, struct cli_login *l)
{
    const char *a = strchr(token, '.');
    const char *b = a != NULL ? strchr(a + 1, '.') : NULL;
    if (b == NULL)
        return false;
    unsigned char raw[PAYLOAD_MAX];
    long n = b64url_decode(a + 1, (size_t)(b - a - 1), raw, sizeof raw);
    json_t *p = n > 0 ? json_loadb((const char *)raw, (size_t)n, 0, NULL) : NULL;
    if (!json_is_object(p)) {
        json_decref(p);
        return false;
    }
    const char *name = json_string_value(json_object_get(p, "name"));
    const char *role = json_string_value(json_object_get(p, "role"));
    const char *sub = json_string_value(json_object_get(p, "sub"));
    const json_t *exp = json_object_get(p, "exp");
    if (l->name == NULL && name != NULL)
        l->name = strdup(name);
    if (l->role == NULL && role != NULL)
        l->role = strdup(role);
    if (l->user_id == 0 && sub != NULL)
        l->user_id = strtoll(sub, NULL, 10);
    if (json_is_integer(exp))
        l->exp = json_integer_value(exp); /* what the server signed wins over the store's copy */
    json_decref(p);
    return true;
}

bool tokens_parse_time(const char *iso, long long *out)
{
    struct tm tm = {0};
    int consumed = 0;
    if (sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
        consumed != 19)
        return false;
    const char *p = iso + consumed;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    if (strcmp(p, "Z") != 0)
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return false;
    *out = (long long)t;
    return true;
}

void tokens_format_time(long long t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "%lld", t);
}
