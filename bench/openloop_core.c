/* The open-loop generator's pure logic: the arrival schedule, percentiles and the HTTP/1.1
 * response parser (see openloop_core.h). */
#include "openloop_core.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

uint64_t ol_rand64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double ol_rand_unit(uint64_t *state)
{
    return (double)(ol_rand64(state) >> 11) * (1.0 / 9007199254740992.0); /* 53 bits */
}

void ol_schedule_init(struct ol_schedule *s, double rate, bool poisson, uint64_t seed)
{
    memset(s, 0, sizeof(*s));
    s->rate = rate;
    s->poisson = poisson;
    s->rng = seed;
}

double ol_schedule_next(struct ol_schedule *s)
{
    if (!s->poisson)
        return (double)s->i++ / s->rate;
    /* The first arrival at 0, as in the even schedule; each next one an exponential gap later
     * (1 - u is in (0, 1], so the logarithm is finite). */
    double at = s->next_s;
    s->next_s += -log(1.0 - ol_rand_unit(&s->rng)) / s->rate;
    s->i++;
    return at;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

void ol_sort_u32(uint32_t *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_u32);
}

uint32_t ol_percentile(const uint32_t *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    double rank = ceil(p / 100.0 * (double)n);
    size_t k = rank < 1 ? 1 : rank > (double)n ? n : (size_t)rank;
    return sorted[k - 1];
}

/* The end of the header block (just past the blank line) in buf[0..len), or 0. */
static size_t headers_end(const char *buf, size_t len)
{
    for (size_t i = 3; i < len; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
            return i + 1;
    return 0;
}

/* Whether the header line [p, e) is name: and, if so, where its value starts (spaces skipped). */
static const char *header_value(const char *p, const char *e, const char *name)
{
    size_t n = strlen(name);
    if ((size_t)(e - p) <= n || strncasecmp(p, name, n) != 0 || p[n] != ':')
        return NULL;
    p += n + 1;
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* Whether the comma-separated value [v, e) holds token (case-insensitive). */
static bool value_has(const char *v, const char *e, const char *token)
{
    size_t n = strlen(token);
    while (v < e) {
        while (v < e && (*v == ' ' || *v == '\t' || *v == ','))
            v++;
        const char *w = v;
        while (w < e && *w != ',' && *w != ' ' && *w != '\t')
            w++;
        if ((size_t)(w - v) == n && strncasecmp(v, token, n) == 0)
            return true;
        v = w;
    }
    return false;
}

/* The end of a chunked body starting at buf[at], or 0 when it is not all there yet; -1 (as
 * SIZE_MAX) on a malformed chunk. */
static size_t chunked_end(const char *buf, size_t len, size_t at)
{
    for (;;) {
        size_t p = at, size = 0, digits = 0;
        while (p < len && isxdigit((unsigned char)buf[p])) {
            if (size > (SIZE_MAX >> 4) / 2)
                return SIZE_MAX;
            int c = tolower((unsigned char)buf[p]);
            size = size * 16 + (size_t)(c <= '9' ? c - '0' : c - 'a' + 10);
            p++;
            digits++;
        }
        if (p == len)
            return 0;
        if (digits == 0)
            return SIZE_MAX;
        while (p < len && buf[p] != '\n') /* chunk extensions, then CRLF */
            p++;
        if (p == len)
            return 0;
        p++;
        if (size == 0) {
            /* trailers, none expected: lines until an empty one */
            for (;;) {
                size_t q = p;
                while (q < len && buf[q] != '\n')
                    q++;
                if (q == len)
                    return 0;
                if (q == p || (q == p + 1 && buf[p] == '\r'))
                    return q + 1;
                p = q + 1;
            }
        }
        if (len - p < size + 2)
            return 0;
        if (buf[p + size] != '\r' || buf[p + size + 1] != '\n')
            return SIZE_MAX;
        at = p + size + 2;
    }
}

enum ol_parse ol_http_parse(const char *buf, size_t len, bool eof, struct ol_response *out)
{
    size_t hlen = headers_end(buf, len);
    if (hlen == 0)
        return len > OL_MAX_HEADERS || eof ? OL_PARSE_ERROR : OL_PARSE_MORE;
    if (hlen > OL_MAX_HEADERS)
        return OL_PARSE_ERROR;
    /* HTTP/1.x SSS */
    if (hlen < 13 || strncmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') ||
        buf[8] != ' ' || !isdigit((unsigned char)buf[9]) || !isdigit((unsigned char)buf[10]) ||
        !isdigit((unsigned char)buf[11]) || (buf[12] != ' ' && buf[12] != '\r'))
        return OL_PARSE_ERROR;
    struct ol_response r = {
        .status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0'),
        .header_len = hlen,
        .keep_alive = buf[7] == '1', /* HTTP/1.1 keeps the connection unless it says close */
    };
    bool chunked = false, have_length = false;
    size_t length = 0;
    const char *p = memchr(buf, '\n', hlen) + 1, *end = buf + hlen - 2;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p + 1));
        const char *le = e > p && e[-1] == '\r' ? e - 1 : e;
        const char *v;
        if ((v = header_value(p, le, "Content-Length")) != NULL) {
            size_t n = 0;
            if (v == le)
                return OL_PARSE_ERROR;
            for (; v < le; v++) {
                if (!isdigit((unsigned char)*v) || n > SIZE_MAX / 10 - 10)
                    return OL_PARSE_ERROR;
                n = n * 10 + (size_t)(*v - '0');
            }
            if (have_length && n != length)
                return OL_PARSE_ERROR;
            have_length = true;
            length = n;
        } else if ((v = header_value(p, le, "Transfer-Encoding")) != NULL) {
            chunked = value_has(v, le, "chunked");
        } else if ((v = header_value(p, le, "Connection")) != NULL) {
            if (value_has(v, le, "close"))
                r.keep_alive = false;
            else if (value_has(v, le, "keep-alive"))
                r.keep_alive = true;
        }
        p = e + 1;
    }
    if (r.status < 200 || r.status == 204 || r.status == 304) {
        /* no body (a 1xx is not expected from the services: it ends here like a 204) */
        r.total = hlen;
    } else if (chunked) {
        size_t e = chunked_end(buf, len, hlen);
        if (e == SIZE_MAX)
            return OL_PARSE_ERROR;
        if (e == 0)
            return eof ? OL_PARSE_ERROR : OL_PARSE_MORE;
        r.total = e;
    } else if (have_length) {
        if (len - hlen < length)
            return eof ? OL_PARSE_ERROR : OL_PARSE_MORE;
        r.total = hlen + length;
    } else {
        /* delimited by the close */
        if (!eof)
            return OL_PARSE_MORE;
        r.total = len;
        r.keep_alive = false;
    }
    *out = r;
    return OL_PARSE_DONE;
}

bool ol_error_code(const char *body, size_t len, char *code, size_t size)
{
    static const char key[] = "\"error\"";
    size_t k = sizeof(key) - 1;
    if (size > 0)
        code[0] = '\0';
    for (size_t i = 0; i + k <= len; i++) {
        if (memcmp(body + i, key, k) != 0)
            continue;
        /* "error" : "code", spaces allowed around the colon (compact JSON has none) */
        size_t s = i + k;
        while (s < len && (body[s] == ' ' || body[s] == '\t'))
            s++;
        if (s == len || body[s] != ':')
            continue;
        s++;
        while (s < len && (body[s] == ' ' || body[s] == '\t'))
            s++;
        if (s == len || body[s] != '"')
            continue;
        size_t e = ++s;
        while (e < len && body[e] != '"')
            e++;
        if (e == len || size == 0)
            return false;
        size_t n = e - s < size - 1 ? e - s : size - 1;
        memcpy(code, body + s, n);
        code[n] = '\0';
        return true;
    }
    return false;
}
