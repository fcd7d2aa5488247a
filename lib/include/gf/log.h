/* Logging: one line per event on stderr, key=value, every line with the service name and
 * the correlation id of the work the calling thread is doing. */
#ifndef GF_LOG_H
#define GF_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum gf_log_level { GF_LOG_DEBUG = 0, GF_LOG_INFO, GF_LOG_WARN, GF_LOG_ERROR };

/* Sets the service name printed as svc=... (copied) and the minimum level. */
void gf_log_init(const char *service, enum gf_log_level min_level);

/* Parses "debug|info|warn|error" (case-insensitive); false when unknown. */
bool gf_log_level_parse(const char *s, enum gf_log_level *out);

/* True when a line at this level would be written: check before costly formatting. */
bool gf_log_enabled(enum gf_log_level level);

/* The calling thread's correlation id, printed as cid=... ("-" when none). The string is
 * copied (at most 63 bytes); NULL clears it. */
void gf_log_set_cid(const char *cid);
const char *gf_log_cid(void);

/* Writes `ts=... level=... svc=... cid=... msg="<fmt>"`. Extra key=value pairs belong in
 * the message itself: gf_log(GF_LOG_INFO, "prepared user=%u amount=%u", ...). */
void gf_log(enum gf_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Rate limit for repeated failures: at most one line per interval_ms per call site; the
 * next line written says how many were suppressed. */
struct gf_log_ratelimit {
    int64_t last_ms;
    uint32_t suppressed;
};
bool gf_log_ratelimit_pass(struct gf_log_ratelimit *rl, int64_t interval_ms, uint32_t *suppressed);

/* Copies client or peer text s (NULL: empty) into out for a log line: at most n-1 bytes and a
 * NUL (n = 0: nothing), anything but visible ASCII — space and '"' included — as '?', so the
 * text cannot forge fields or lines. */
void gf_log_safe(char *out, size_t n, const char *s);

#define GF_LOG_RL(level, interval_ms, fmt, ...)                                                    \
    do {                                                                                           \
        static struct gf_log_ratelimit gf_rl_;                                                     \
        uint32_t gf_sup_;                                                                          \
        if (gf_log_enabled(level) && gf_log_ratelimit_pass(&gf_rl_, (interval_ms), &gf_sup_))      \
            gf_log(level, fmt " suppressed=%u", ##__VA_ARGS__, gf_sup_);                           \
    } while (0)

#define GF_DEBUG(...)                                                                              \
    do {                                                                                           \
        if (gf_log_enabled(GF_LOG_DEBUG))                                                          \
            gf_log(GF_LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)
#define GF_INFO(...) gf_log(GF_LOG_INFO, __VA_ARGS__)
#define GF_WARN(...) gf_log(GF_LOG_WARN, __VA_ARGS__)
#define GF_ERROR(...) gf_log(GF_LOG_ERROR, __VA_ARGS__)

#endif
