/* The query string of GET /eventlog/events: userId, limit, after, correlationId. Strict, so
 * that a typo is a 400 naming it rather than a silently unfiltered answer. Pure; unit-tested. */
#include <stdio.h>
#include <string.h>

#include "eventlog.h"

#define AFTER_MAX 9223372036854775807LL /* ids are bigint */

/* s is a non-empty run of decimal digits (nothing else: no sign, no blank) worth at most max. */
GF_TESTABLE bool query_digits(const char *s, int64_t max, int64_t *out)
{
    int64_t v = 0;
    if (s == NULL || *s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return false;
        int d = *s - '0';
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Copies a client's key into out for a message: printable ASCII only, clipped. */
static void key_for_message(char *out, size_t n, const char *key)
{
    size_t i = 0, j = 0;
    for (; key[i] != '\0' && j + 4 < n; i++)
        out[j++] = (key[i] >= 0x20 && key[i] < 0x7f && key[i] != '"') ? key[i] : '?';
    if (key[i] != '\0')
        out[j++] = '.', out[j++] = '.', out[j++] = '.';
    out[j] = '\0';
}

static enum gf_status fail(struct api_err *err, const char *code, const char *fmt, const char *arg)
{
    err->code = code;
    snprintf(err->message, sizeof err->message, fmt, arg);
    return GF_EINVAL;
}

static enum gf_status number(const struct query_arg *a, int64_t min, int64_t max, int64_t *out,
                             struct api_err *err)
{
    int64_t v;
    if (!query_digits(a->value, max, &v) || v < min) {
        err->code = "invalid_parameter";
        snprintf(err->message, sizeof err->message, "%s must be an integer from %lld to %lld",
                 a->key, (long long)min, (long long)max);
        return GF_EINVAL;
    }
    *out = v;
    return GF_OK;
}

enum gf_status query_parse(const struct query_arg *args, size_t n, int64_t cap,
                           struct events_query *out, struct api_err *err)
{
    static const char *const known[] = {"userId", "limit", "after", "correlationId"};
    struct events_query q = {.after = -1,
                             .limit = cap < QUERY_LIMIT_DEFAULT ? cap : QUERY_LIMIT_DEFAULT};
    bool seen[4] = {false};
    char key[40];
    for (size_t i = 0; i < n; i++) {
        const struct query_arg *a = &args[i];
        size_t k = 0;
        while (k < 4 && strcmp(a->key, known[k]) != 0)
            k++;
        key_for_message(key, sizeof key, a->key);
        if (k == 4)
            return fail(err, "unknown_parameter",
                        "unknown query parameter \"%s\" (known: userId, limit, after, "
                        "correlationId)",
                        key);
        if (seen[k])
            return fail(err, "duplicate_parameter", "query parameter %s is given twice", key);
        seen[k] = true;
        if (a->value == NULL || a->value[0] == '\0')
            return fail(err, "invalid_parameter", "query parameter %s has no value", key);
        if (strlen(a->value) > QUERY_VALUE_MAX)
            return fail(err, "invalid_parameter", "query parameter %s is too long", key);
        enum gf_status st = GF_OK;
        switch (k) {
        case 0:
            st = number(a, 1, QUERY_USER_MAX, &q.user_id, err);
            break;
        case 1:
            st = number(a, 1, AFTER_MAX, &q.limit, err);
            if (q.limit > cap)
                q.limit = cap;
            break;
        case 2:
            st = number(a, 0, AFTER_MAX, &q.after, err);
            break;
        default:
            if (!gf_uuid_normalize(a->value, strlen(a->value), q.correlation_id))
                return fail(err, "invalid_parameter", "%s must be a UUID", key);
            q.has_correlation_id = true;
        }
        if (st != GF_OK)
            return st;
    }
    *out = q;
    return GF_OK;
}
