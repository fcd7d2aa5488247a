/* The growable buffer of gf/buf.h. */
#include "gf/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_FIRST 256

void gf_buf_init(struct gf_buf *b, size_t max)
{
    *b = (struct gf_buf){.max = max > 0 && max < SIZE_MAX / 2 ? max : SIZE_MAX / 2};
}

static enum gf_status fail(struct gf_buf *b, enum gf_status st)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->st = st;
    return st;
}

/* Room for n more bytes and the NUL. */
static enum gf_status reserve(struct gf_buf *b, size_t n)
{
    if (b->st != GF_OK)
        return b->st;
    if (n > b->max - b->len)
        return fail(b, GF_ETOOBIG);
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return GF_OK;
    size_t cap = b->cap ? b->cap : BUF_FIRST;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = realloc(b->p, cap);
    if (p == NULL)
        return fail(b, GF_ENOMEM);
    b->p = p;
    b->cap = cap;
    return GF_OK;
}

enum gf_status gf_buf_add(struct gf_buf *b, const void *mem, size_t n)
{
    enum gf_status st = reserve(b, n);
    if (st != GF_OK)
        return st;
    if (n > 0)
        memcpy(b->p + b->len, mem, n);
    b->len += n;
    b->p[b->len] = '\0';
    return GF_OK;
}

enum gf_status gf_buf_addstr(struct gf_buf *b, const char *s)
{
    return gf_buf_add(b, s, strlen(s));
}

enum gf_status gf_buf_vprintf(struct gf_buf *b, const char *fmt, va_list ap)
{
    if (b->st != GF_OK)
        return b->st;
    va_list again;
    va_copy(again, ap);
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    int n = vsnprintf(room ? b->p + b->len : NULL, room, fmt, ap);
    if (n < 0) {
        va_end(again);
        return fail(b, GF_EINTERNAL); /* a bad format: a bug */
    }
    if ((size_t)n < room && (size_t)n <= b->max - b->len) {
        b->len += (size_t)n;
        va_end(again);
        return GF_OK;
    }
    enum gf_status st = reserve(b, (size_t)n);
    if (st == GF_OK) {
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, again);
        b->len += (size_t)n;
    }
    va_end(again);
    return st;
}

enum gf_status gf_buf_printf(struct gf_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum gf_status st = gf_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return st;
}

const char *gf_buf_str(const struct gf_buf *b)
{
    return b->p != NULL ? b->p : "";
}

size_t gf_buf_len(const struct gf_buf *b)
{
    return b->len;
}

enum gf_status gf_buf_status(const struct gf_buf *b)
{
    return b->st;
}

char *gf_buf_take(struct gf_buf *b, size_t *len)
{
    if (b->st != GF_OK)
        return NULL;
    if (b->p == NULL) {
        if (reserve(b, 0) != GF_OK)
            return NULL;
        b->p[0] = '\0';
    }
    char *p = b->p;
    if (len != NULL)
        *len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

void gf_buf_reset(struct gf_buf *b)
{
    free(b->p);
    size_t max = b->max;
    *b = (struct gf_buf){.max = max};
}
