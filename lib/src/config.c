/* Environment configuration: a program's variables are declared once in a table and parsed
 * once at start into its own struct; every invalid variable is reported, not just the first. */
#include "gf/config.h"

#include <amqp.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gf/buf.h"
#include "gf/log.h"

#define MASK "****"
#define LOG_LINE_MAX 8192 /* gf_log truncates long lines anyway; this bounds our text */

static void *field(void *cfg, const struct gf_config_def *d)
{
    return (char *)cfg + d->offset;
}

static const void *cfield(const void *cfg, const struct gf_config_def *d)
{
    return (const char *)cfg + d->offset;
}

static bool is_string_type(enum gf_config_type t)
{
    return t == GF_CFG_STRING || t == GF_CFG_ADDR || t == GF_CFG_CONNINFO || t == GF_CFG_AMQP_URL ||
           t == GF_CFG_GRPC_TARGET;
}

/* Strict decimal: optional sign, digits only, no surrounding blanks, no overflow. */
static bool parse_int64(const char *s, int64_t *out)
{
    const char *p = (*s == '+' || *s == '-') ? s + 1 : s;
    if (!isdigit((unsigned char)*p))
        return false; /* also rejects leading blanks, which strtoll would skip */
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE || *end != '\0')
        return false;
    *out = (int64_t)v;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* Silent on purpose: config loading and the HTTP server each log the failure with their own
 * context (the variable name, the server), so logging here would say it twice. */
enum gf_status gf_config_split_addr(const char *addr, char *host, size_t hostsz, int *port)
{
    if (addr == NULL || host == NULL || hostsz == 0 || port == NULL)
        return GF_EINVAL;
    const char *colon = strrchr(addr, ':');
    if (colon == NULL)
        return GF_EINVAL;
    const char *h = addr;
    size_t hlen = (size_t)(colon - addr);
    if (addr[0] == '[') {
        /* "[v6]:port": the bracket must close right before the port's colon. */
        if (hlen < 2 || addr[hlen - 1] != ']')
            return GF_EINVAL;
        h = addr + 1;
        hlen -= 2;
        if (memchr(h, '[', hlen) || memchr(h, ']', hlen))
            return GF_EINVAL;
    } else if (memchr(addr, ':', hlen) || memchr(addr, '[', hlen) || memchr(addr, ']', hlen)) {
        return GF_EINVAL; /* an IPv6 host must be bracketed: the port would be ambiguous */
    }
    if (hlen == 0 || hlen >= hostsz)
        return GF_EINVAL;
    for (size_t i = 0; i < hlen; i++) {
        if (isspace((unsigned char)h[i]) || h[i] == '/')
            return GF_EINVAL;
    }
    const char *p = colon + 1;
    size_t plen = strlen(p);
    if (plen == 0 || plen > 5)
        return GF_EINVAL;
    int v = 0;
    for (size_t i = 0; i < plen; i++) {
        if (!isdigit((unsigned char)p[i]))
            return GF_EINVAL;
        v = v * 10 + (p[i] - '0');
    }
    if (v > 65535)
        return GF_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = v;
    return GF_OK;
}

/* Appends a conninfo value, single-quoted with libpq's escapes when it would not survive
 * as a bare word. */
static void add_conninfo_value(struct gf_buf *b, const char *v)
{
    bool quote = *v == '\0';
    for (const char *c = v; *c && !quote; c++)
        quote = isspace((unsigned char)*c) || *c == '\'' || *c == '\\';
    if (!quote) {
        gf_buf_addstr(b, v);
        return;
    }
    gf_buf_addstr(b, "'");
    for (const char *c = v; *c; c++) {
        if (*c == '\'' || *c == '\\')
            gf_buf_addstr(b, "\\");
        gf_buf_add(b, c, 1);
    }
    gf_buf_addstr(b, "'");
}

static bool is_uri(const char *s)
{
    return strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0;
}

/* Masks a URI in its own form: the password of user:password@ and any password= parameter. */
static char *mask_uri(const char *uri)
{
    char *res;
    struct gf_buf sb;
    gf_buf_init(&sb, strlen(uri) + 64);
    const char *auth = strstr(uri, "://") + 3;
    size_t authlen = strcspn(auth, "/?");
    const char *at = NULL;
    for (const char *c = auth; c < auth + authlen; c++) {
        if (*c == '@')
            at = c; /* the last '@': the user info ends there */
    }
    const char *pw = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    const char *rest = auth;
    if (pw != NULL) {
        gf_buf_add(&sb, uri, (size_t)(pw + 1 - uri));
        gf_buf_addstr(&sb, MASK);
        rest = at;
    } else {
        gf_buf_add(&sb, uri, (size_t)(auth - uri));
    }
    const char *q = strchr(rest, '?');
    if (q == NULL) {
        gf_buf_addstr(&sb, rest);
        goto out;
    }
    gf_buf_add(&sb, rest, (size_t)(q + 1 - rest));
    for (const char *param = q + 1;;) {
        size_t plen = strcspn(param, "&");
        if (plen >= 9 && strncmp(param, "password=", 9) == 0) {
            gf_buf_addstr(&sb, "password=" MASK);
        } else {
            gf_buf_add(&sb, param, plen);
        }
        if (param[plen] == '\0')
            break;
        gf_buf_addstr(&sb, "&");
        param += plen + 1;
    }
out:
    res = gf_buf_take(&sb, NULL);
    return res ? res : strdup(MASK);
}

char *gf_config_mask_conninfo(const char *conninfo)
{
    char *res = NULL;
    char *err = NULL;
    PQconninfoOption *opts = NULL;
    struct gf_buf sb;
    /* Quoting and masking grow it a little. */
    gf_buf_init(&sb, conninfo ? strlen(conninfo) * 3 + 64 : 64);
    if (conninfo == NULL)
        goto out;
    opts = PQconninfoParse(conninfo, &err);
    if (opts == NULL)
        goto out;
    if (is_uri(conninfo)) {
        res = mask_uri(conninfo);
        goto out;
    }
    /* Only the options present in the text have a value: rebuild from those. */
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL)
            continue;
        if (gf_buf_len(&sb) > 0)
            gf_buf_addstr(&sb, " ");
        gf_buf_addstr(&sb, o->keyword);
        gf_buf_addstr(&sb, "=");
        if (strcmp(o->keyword, "password") == 0) {
            gf_buf_addstr(&sb, MASK);
        } else if (strcmp(o->keyword, "dbname") == 0 && (strchr(o->val, '=') || is_uri(o->val))) {
            /* libpq may expand a dbname that is itself a conninfo: it can hold a password. */
            char *inner = gf_config_mask_conninfo(o->val);
            add_conninfo_value(&sb, inner ? inner : MASK);
            free(inner);
        } else {
            add_conninfo_value(&sb, o->val);
        }
    }
    res = gf_buf_take(&sb, NULL); /* NULL when it failed */
out:
    gf_buf_reset(&sb);
    if (err != NULL)
        PQfreemem(err);
    if (opts != NULL)
        PQconninfoFree(opts);
    return res ? res : strdup(MASK);
}

char *gf_config_mask_url(const char *url)
{
    /* scheme://user:password@host...: the password is between the first ':' after "//" and
     * the last '@' before the path. */
    const char *auth = strstr(url, "//");
    auth = auth ? auth + 2 : url;
    size_t auth_len = strcspn(auth, "/?#");
    const char *at = memrchr(auth, '@', auth_len);
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon == NULL)
        return strdup(url);
    char *out = NULL;
    if (asprintf(&out, "%.*s" MASK "%s", (int)(colon + 1 - url), url, at) < 0)
        return NULL;
    return out;
}

/* The value as it may appear in a log line. Returns a malloc'd string or NULL on OOM. */
static char *loggable_value(const struct gf_config_def *d, const char *raw)
{
    if (d->secret)
        return strdup(MASK);
    if (d->type == GF_CFG_CONNINFO)
        return gf_config_mask_conninfo(raw);
    if (d->type == GF_CFG_AMQP_URL)
        return gf_config_mask_url(raw);
    return strdup(raw);
}

static void report(const struct gf_config_def *d, const char *raw, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Logs one invalid variable: its name, its value (masked when secret) and the rule broken. */
static void report(const struct gf_config_def *d, const char *raw, const char *fmt, ...)
{
    char rule[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rule, sizeof rule, fmt, ap);
    va_end(ap);
    if (raw == NULL) {
        GF_ERROR("config invalid var=%s value=<unset> rule='%s'", d->name, rule);
        return;
    }
    char *shown = loggable_value(d, raw);
    GF_ERROR("config invalid var=%s value='%s' rule='%s'", d->name, shown ? shown : MASK, rule);
    free(shown);
}

/* Parses one variable into its field; logs and returns false when it is invalid. String
 * fields are always left owned or NULL, so the caller can free them whatever happened. */
static bool load_one(const struct gf_config_def *d, void *cfg)
{
    const char *raw = getenv(d->name);
    if (raw != NULL && raw[0] == '\0')
        raw = NULL; /* an empty variable is unset: `FOO= prog` must not mean "FOO is empty" */
    if (raw == NULL)
        raw = d->default_val;
    if (is_string_type(d->type))
        *(char **)field(cfg, d) = NULL;
    if (raw == NULL) {
        report(d, NULL, "required");
        return false;
    }
    switch (d->type) {
    case GF_CFG_INT: {
        int64_t v;
        if (!parse_int64(raw, &v) || v < d->min || v > d->max) {
            report(d, raw, "integer in [%" PRId64 ", %" PRId64 "]", d->min, d->max);
            return false;
        }
        *(int64_t *)field(cfg, d) = v;
        return true;
    }
    case GF_CFG_BOOL: {
        bool v;
        if (!parse_bool(raw, &v)) {
            report(d, raw, "boolean: 1/0, true/false, yes/no, on/off");
            return false;
        }
        *(bool *)field(cfg, d) = v;
        return true;
    }
    case GF_CFG_LOGLEVEL: {
        enum gf_log_level v;
        if (!gf_log_level_parse(raw, &v)) {
            report(d, raw, "log level: debug, info, warn or error");
            return false;
        }
        *(int *)field(cfg, d) = (int)v;
        return true;
    }
    case GF_CFG_ADDR: {
        char host[256];
        int port;
        if (gf_config_split_addr(raw, host, sizeof host, &port) != GF_OK) {
            report(d, raw, "host:port with a non-empty host and port 0..65535 ([v6]:port)");
            return false;
        }
        break;
    }
    case GF_CFG_CONNINFO: {
        char *err = NULL;
        PQconninfoOption *opts = PQconninfoParse(raw, &err);
        if (opts == NULL) {
            if (err != NULL)
                err[strcspn(err, "\n")] = '\0';
            report(d, raw, "libpq conninfo: %s", err ? err : "out of memory");
            if (err != NULL)
                PQfreemem(err);
            return false;
        }
        PQconninfoFree(opts);
        break;
    }
    case GF_CFG_AMQP_URL: {
        char *tmp = strdup(raw);
        struct amqp_connection_info info;
        int rc = tmp ? amqp_parse_url(tmp, &info) : AMQP_STATUS_NO_MEMORY;
        free(tmp);
        if (rc != AMQP_STATUS_OK) {
            report(d, raw, "amqp://user[:password]@host[:port][/vhost] (%s)",
                   amqp_error_string2(rc));
            return false;
        }
        break;
    }
    case GF_CFG_GRPC_TARGET: {
        static const char *const schemes[] = {"dns:", "ipv4:", "ipv6:", "unix:"};
        char host[256];
        int port;
        bool ok = gf_config_split_addr(raw, host, sizeof host, &port) == GF_OK;
        for (size_t k = 0; !ok && k < sizeof schemes / sizeof schemes[0]; k++)
            ok = strncmp(raw, schemes[k], strlen(schemes[k])) == 0 &&
                 raw[strlen(schemes[k])] != '\0' && strpbrk(raw, " \t\r\n") == NULL;
        if (!ok) {
            report(d, raw, "host:port, or a gRPC target dns:..., ipv4:h:p,h:p, ipv6:..., unix:...");
            return false;
        }
        break;
    }
    case GF_CFG_STRING:
        break;
    default:
        report(d, raw, "unknown type %d in the config table", (int)d->type);
        return false;
    }
    char *copy = strdup(raw);
    if (copy == NULL) {
        report(d, raw, "out of memory");
        return false;
    }
    *(char **)field(cfg, d) = copy;
    return true;
}

enum gf_status gf_config_load(const struct gf_config_def *defs, size_t n, void *cfg)
{
    enum gf_status st = GF_EINVAL;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (!load_one(&defs[i], cfg))
            bad++; /* keep going: every problem is reported in one run */
    }
    if (bad > 0) {
        GF_ERROR("config invalid_count=%zu", bad);
        gf_config_free(defs, n, cfg);
        goto out;
    }
    st = GF_OK;
out:
    return st;
}

/* A variable's effective value as logs and --check-config show it: secrets as ****, the
 * passwords inside conninfo strings and AMQP URLs masked. num is scratch space; *owned is set
 * to what the caller must free (NULL when nothing). Never NULL. */
static const char *shown_value(const struct gf_config_def *d, const void *cfg, char num[32],
                               char **owned)
{
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    *owned = NULL;
    if (d->secret)
        return MASK;
    if (d->type == GF_CFG_INT) {
        snprintf(num, 32, "%" PRId64, *(const int64_t *)cfield(cfg, d));
        return num;
    }
    if (d->type == GF_CFG_BOOL)
        return *(const bool *)cfield(cfg, d) ? "true" : "false";
    if (d->type == GF_CFG_LOGLEVEL) {
        int l = *(const int *)cfield(cfg, d);
        return (l >= 0 && l <= 3) ? levels[l] : "?";
    }
    const char *s = *(char *const *)cfield(cfg, d);
    if (s == NULL)
        return "";
    if (d->type == GF_CFG_CONNINFO)
        *owned = gf_config_mask_conninfo(s);
    else if (d->type == GF_CFG_AMQP_URL)
        *owned = gf_config_mask_url(s);
    else
        return s;
    return *owned ? *owned : MASK;
}

/* Quote values with blanks (conninfo) so that a line still splits into NAME=value. */
static bool needs_quotes(const char *v)
{
    return *v == '\0' || strpbrk(v, " \t") != NULL;
}

void gf_config_log(const struct gf_config_def *defs, size_t n, const void *cfg)
{
    struct gf_buf line, var;
    gf_buf_init(&line, LOG_LINE_MAX);
    gf_buf_init(&var, LOG_LINE_MAX);
    gf_buf_addstr(&line, "config");
    bool truncated = false;
    for (size_t i = 0; i < n && !truncated; i++) {
        char num[32];
        char *owned;
        const char *v = shown_value(&defs[i], cfg, num, &owned);
        bool quote = needs_quotes(v);
        gf_buf_printf(&var, " %s%s%s%s", defs[i].name, quote ? "='" : "=", v, quote ? "'" : "");
        free(owned);
        /* The variables that fit are logged, whole; the first that does not ends the line
         * (checked before adding: a failed add would drop the whole line). */
        truncated = gf_buf_status(&var) != GF_OK ||
                    gf_buf_len(&var) > LOG_LINE_MAX - gf_buf_len(&line) ||
                    gf_buf_add(&line, gf_buf_str(&var), gf_buf_len(&var)) != GF_OK;
        gf_buf_reset(&var);
    }
    GF_INFO("%s%s", gf_buf_len(&line) ? gf_buf_str(&line) : "config",
            truncated ? " (truncated)" : "");
    gf_buf_reset(&line);
}

enum gf_status gf_config_print(FILE *out, const struct gf_config_def *defs, size_t n,
                               const void *cfg)
{
    for (size_t i = 0; i < n; i++) {
        char num[32];
        char *owned;
        const char *v = shown_value(&defs[i], cfg, num, &owned);
        const char *q = needs_quotes(v) ? "'" : "";
        fprintf(out, "%s=%s%s%s\n", defs[i].name, q, v, q);
        free(owned);
    }
    return fflush(out) == 0 && !ferror(out) ? GF_OK : GF_EUNAVAILABLE;
}

enum gf_status gf_config_usage(FILE *out, const char *program, const struct gf_config_def *defs,
                               size_t n)
{
    int name_w = 0, def_w = 0;
    for (size_t i = 0; i < n; i++) {
        int w = (int)strlen(defs[i].name);
        name_w = w > name_w ? w : name_w;
        const char *dv = defs[i].default_val;
        w = dv == NULL ? 10 : (defs[i].secret && *dv) ? 6 : (int)strlen(dv) + 2;
        def_w = w > def_w ? w : def_w;
    }
    if (def_w > 40)
        def_w = 40; /* a long conninfo default should not push every help far right */
    fprintf(out,
            "usage: %s [--help] [--check-config]\n"
            "--check-config loads the configuration as a start would, prints it (secrets masked),"
            " exits 0 if valid, %d if not.\n"
            "Configuration comes from environment variables; an empty one counts as unset."
            " Variable, default, meaning:\n",
            program, GF_EX_CONFIG);
    for (size_t i = 0; i < n; i++) {
        const struct gf_config_def *d = &defs[i];
        /* The default, quoted: "" is visibly empty and a conninfo's blanks stay inside. */
        struct gf_buf sb;
        gf_buf_init(&sb, 4096);
        if (d->default_val == NULL) {
            gf_buf_addstr(&sb, "(required)");
        } else {
            gf_buf_addstr(&sb, "\"");
            const char *dv = (d->secret && *d->default_val) ? MASK : d->default_val;
            for (const char *c = dv; *c; c++) {
                if (*c == '"' || *c == '\\')
                    gf_buf_addstr(&sb, "\\");
                gf_buf_add(&sb, c, 1);
            }
            gf_buf_addstr(&sb, "\"");
        }
        fprintf(out, "  %-*s  %-*s  %s\n", name_w, d->name, def_w,
                gf_buf_status(&sb) != GF_OK ? "(too long)" : gf_buf_str(&sb),
                d->help ? d->help : "");
        gf_buf_reset(&sb);
    }
    return fflush(out) == 0 && !ferror(out) ? GF_OK : GF_EUNAVAILABLE;
}

void gf_config_free(const struct gf_config_def *defs, size_t n, void *cfg)
{
    for (size_t i = 0; i < n; i++) {
        if (!is_string_type(defs[i].type))
            continue;
        char **p = field(cfg, &defs[i]);
        free(*p);
        *p = NULL;
    }
}
