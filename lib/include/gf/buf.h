/* A growable byte buffer with a maximum, for text built piece by piece (JSON answers, the
 * metrics page, request bodies). curl's dynbuf is the model: the content is always
 * NUL-terminated, the buffer never grows past its maximum, and the first failure sticks — the
 * memory is released at once, every later add is a no-op returning the same status — so a
 * caller may chain adds and check once at the end. */
#ifndef GF_BUF_H
#define GF_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "gf/status.h"

struct gf_buf {
    char *p;           /* NULL until the first add */
    size_t len;        /* content bytes, the NUL not counted */
    size_t cap;        /* bytes allocated */
    size_t max;        /* content bytes at most */
    enum gf_status st; /* GF_OK, or the first failure: GF_ETOOBIG or GF_ENOMEM */
};

/* An empty buffer that will hold at most max bytes of content (0 = no limit but memory). */
void gf_buf_init(struct gf_buf *b, size_t max);
/* Appends n bytes: GF_ETOOBIG when the content would pass max, GF_ENOMEM when memory runs
 * out; either frees the content and sticks. */
enum gf_status gf_buf_add(struct gf_buf *b, const void *mem, size_t n);
enum gf_status gf_buf_addstr(struct gf_buf *b, const char *s);
enum gf_status gf_buf_printf(struct gf_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
enum gf_status gf_buf_vprintf(struct gf_buf *b, const char *fmt, va_list ap);
/* The content, NUL-terminated: "" when empty or failed (never NULL). */
const char *gf_buf_str(const struct gf_buf *b);
size_t gf_buf_len(const struct gf_buf *b);
/* The first failure, or GF_OK. */
enum gf_status gf_buf_status(const struct gf_buf *b);
/* Hands the content over (malloc'd, NUL-terminated; *len may be NULL) and leaves the buffer
 * empty with the same maximum. NULL when the buffer failed — or is empty and a byte cannot be
 * allocated. */
char *gf_buf_take(struct gf_buf *b, size_t *len);
/* Frees the content; the buffer is empty (and usable again) with the same maximum. */
void gf_buf_reset(struct gf_buf *b);

#endif
