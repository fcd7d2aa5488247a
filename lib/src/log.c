/* Logging to stderr: one line per event, key=value, with service name and correlation id.
 * A line is formatted into a stack buffer and written with one write(2) so that lines of
 * different threads never interleave. */
#include "gf/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "gf/clock.h"

static char g_service[32] = "gf";
static _Atomic int g_min_level = GF_LOG_INFO;
static _Thread_local char t_cid[64];

void gf_log_init(const char *service, enum gf_log_level min_level)
{
    snprintf(g_service, sizeof g_service, "%s", service ? service : "gf");
    atomic_store(&g_min_level, (int)min_level);
}

bool gf_log_level_parse(const char *s, enum gf_log_level *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; s && i < 4; i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = (enum gf_log_level)i;
            return true;
        }
    }
    return false;
}

bool gf_log_enabled(enum gf_log_level level)
{
    return (int)level >= atomic_load(&g_min_level);
}

void gf_log_set_cid(const char *cid)
{
    if (cid == NULL) {
        t_cid[0] = '\0';
        return;
    }
    /* Keep only printable, space-free bytes: a correlation id ends up inside log lines. */
    size_t i = 0;
    for (; cid[i] && i < sizeof t_cid - 1; i++) {
        unsigned char c = (unsigned char)cid[i];
        t_cid[i] = (c > 0x20 && c < 0x7f && c != '"') ? (char)c : '?';
    }
    t_cid[i] = '\0';
}

const char *gf_log_cid(void)
{
    return t_cid[0] ? t_cid : "-";
}

void gf_log(enum gf_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (!gf_log_enabled(level))
        return;
    char line[2048];
    char ts[25];
    gf_iso8601_ms(gf_wall_us(), ts);
    int n = snprintf(line, sizeof line, "ts=%s level=%s svc=%s cid=%s msg=\"", ts,
                     names[level < 0 || level > 3 ? 3 : level], g_service, gf_log_cid());
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 2, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 3)
        len = sizeof line - 3; /* truncated: still one whole line */
    /* Quotes and newlines inside the message would break the one-line format. */
    for (size_t i = (size_t)n; i < len; i++) {
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
        else if (line[i] == '"')
            line[i] = '\'';
    }
    line[len++] = '"';
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

bool gf_log_ratelimit_pass(struct gf_log_ratelimit *rl, int64_t interval_ms, uint32_t *suppressed)
{
    int64_t now = gf_mono_ms();
    int64_t last = __atomic_load_n(&rl->last_ms, __ATOMIC_RELAXED);
    if (last != 0 && now - last < interval_ms) {
        __atomic_add_fetch(&rl->suppressed, 1, __ATOMIC_RELAXED);
        return false;
    }
    if (!__atomic_compare_exchange_n(&rl->last_ms, &last, now, false, __ATOMIC_RELAXED,
                                     __ATOMIC_RELAXED)) {
        __atomic_add_fetch(&rl->suppressed, 1, __ATOMIC_RELAXED);
        return false;
    }
    *suppressed = __atomic_exchange_n(&rl->suppressed, 0, __ATOMIC_RELAXED);
    return true;
}

void gf_log_safe(char *out, size_t n, const char *s)
{
    if (n == 0)
        return;
    size_t i = 0;
    for (; s != NULL && s[i] != '\0' && i + 1 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = c > 0x20 && c < 0x7f && c != '"' ? (char)c : '?';
    }
    out[i] = '\0';
}
