/* What the fuzz targets share: cutting libFuzzer's bytes into the pieces a parser takes
 * (lines, query parameters), each piece in a buffer of its exact size so that AddressSanitizer
 * sees any read past it, and FUZZ_CHECK for the properties a parser's answer must have. */
#ifndef GF_FUZZ_H
#define GF_FUZZ_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A property of the parser's answer that must hold whatever the input: a crash otherwise,
 * which libFuzzer reports with the input that broke it. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Out of memory in a fuzz target is the machine's fault, not the input's. */
static inline void *fuzz_alloc(size_t n)
{
    void *p = malloc(n > 0 ? n : 1);
    if (p == NULL)
        abort();
    return p;
}

/* p[0..n) as a NUL-terminated string of its own (an embedded NUL ends it early, as it does
 * for the C string the server hands on). */
static inline char *fuzz_strndup(const uint8_t *p, size_t n)
{
    char *s = fuzz_alloc(n + 1);
    if (n > 0)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* A cursor over the input. */
struct fuzz_in {
    const uint8_t *p;
    size_t n;
};

/* The bytes up to the next '\n' (or the end), as a string of its own; the cursor moves past
 * the '\n'. At the end of the input: "". */
static inline char *fuzz_line(struct fuzz_in *in)
{
    const uint8_t *nl = in->n > 0 ? memchr(in->p, '\n', in->n) : NULL;
    size_t len = nl != NULL ? (size_t)(nl - in->p) : in->n;
    char *s = fuzz_strndup(in->p, len);
    size_t skip = nl != NULL ? len + 1 : len;
    in->p += skip;
    in->n -= skip;
    return s;
}

/* One query parameter as libmicrohttpd hands it on, decoded: value NULL for a key without '=',
 * value_len its length (a NUL inside makes strlen(value) shorter). */
struct fuzz_param {
    char *key;
    char *value;
    size_t value_len;
};
#define FUZZ_PARAMS_MAX 16

/* Splits "k=v&k&k=" (raw bytes: the pairs as decoded, NULs included) into at most max
 * parameters; returns how many. Free with fuzz_params_free. */
static inline size_t fuzz_params(const uint8_t *p, size_t n, struct fuzz_param *out, size_t max)
{
    size_t count = 0;
    while (n > 0 && count < max) {
        const uint8_t *amp = memchr(p, '&', n);
        size_t len = amp != NULL ? (size_t)(amp - p) : n;
        const uint8_t *eq = len > 0 ? memchr(p, '=', len) : NULL;
        struct fuzz_param *q = &out[count++];
        if (eq != NULL) {
            size_t klen = (size_t)(eq - p);
            q->key = fuzz_strndup(p, klen);
            q->value_len = len - klen - 1;
            q->value = fuzz_strndup(eq + 1, q->value_len);
        } else {
            q->key = fuzz_strndup(p, len);
            q->value = NULL;
            q->value_len = 0;
        }
        size_t skip = amp != NULL ? len + 1 : len;
        p += skip;
        n -= skip;
    }
    return count;
}

static inline void fuzz_params_free(struct fuzz_param *ps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(ps[i].key);
        free(ps[i].value);
    }
}

/* What libmicrohttpd's lookup of a parameter by name answers: the first one of that name
 * (NULL when it is absent or came without a value). */
static inline const char *fuzz_param_get(const struct fuzz_param *ps, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ps[i].key, key) == 0)
            return ps[i].value;
    }
    return NULL;
}

/* An error sentence goes into a JSON answer: it must be a valid JSON string (UTF-8). */
static inline bool fuzz_json_text_ok(const char *s)
{
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
}

/* An error's code is one of the API's stable snake_case constants (SPEC §2). */
static inline bool fuzz_code_ok(const char *code)
{
    if (code == NULL || code[0] == '\0')
        return false;
    for (const char *c = code; *c != '\0'; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return false;
    }
    return true;
}

/* s is safe for a log line: printable ASCII only, so nothing can forge fields or lines. */
static inline bool fuzz_log_safe(const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s < 0x20 || *s > 0x7e)
            return false;
    }
    return true;
}

/* s is a canonical UUID in lowercase, as every normalized correlation id is. */
static inline bool fuzz_uuid_lower(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        char c = s[i];
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

#endif
