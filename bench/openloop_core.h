/* The pure parts of the open-loop load generator (bench/openloop.c): the arrival schedule, the
 * random numbers behind it, nearest-rank percentiles and an HTTP/1.1 response parser. No I/O, so
 * that tests/unit/bench/test_openloop_core.c can pin each of them. */
#ifndef GF_BENCH_OPENLOOP_CORE_H
#define GF_BENCH_OPENLOOP_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* splitmix64: small, seedable, and good enough for arrival gaps and request bodies. */
uint64_t ol_rand64(uint64_t *state);
/* Uniform in [0, 1). */
double ol_rand_unit(uint64_t *state);

/* The arrivals of a run: at rate per second, either evenly spaced (arrival i at i/rate, computed
 * by multiplication so that no rounding piles up over a long run) or a Poisson process (gaps drawn
 * from an exponential distribution of mean 1/rate). */
struct ol_schedule {
    double rate;
    bool poisson;
    uint64_t rng;
    uint64_t i;    /* arrivals handed out so far */
    double next_s; /* Poisson: the offset of the next arrival */
};

/* rate > 0. The seed only matters for a Poisson schedule. */
void ol_schedule_init(struct ol_schedule *s, double rate, bool poisson, uint64_t seed);
/* The offset from t0, in seconds, of the next arrival; offsets never decrease. */
double ol_schedule_next(struct ol_schedule *s);

/* Sorts n latencies in place (ascending). */
void ol_sort_u32(uint32_t *v, size_t n);
/* Nearest-rank percentile p (0 < p <= 100) of n ascending values: the smallest value with at least
 * p % of the values at or below it; 0 when n is 0. */
uint32_t ol_percentile(const uint32_t *sorted, size_t n, double p);

enum ol_parse {
    OL_PARSE_MORE,  /* incomplete: read more */
    OL_PARSE_DONE,  /* one whole response */
    OL_PARSE_ERROR, /* not HTTP/1.x, a bad length or chunk, or headers beyond OL_MAX_HEADERS */
};

/* Headers larger than this are an error rather than a reason to keep buffering. */
#define OL_MAX_HEADERS 65536

struct ol_response {
    int status;
    size_t header_len; /* up to and including the blank line */
    size_t total;      /* the bytes of the whole response, body and chunk framing included */
    bool keep_alive;   /* the connection may carry the next request */
};

/* Parses the response at the start of buf[0..len). eof: the peer closed the connection after
 * these bytes, which ends a response delimited by its close (no length, not chunked) and makes
 * any other incomplete one (no bytes at all included) an error: with eof the answer is never
 * OL_PARSE_MORE. *out is written only when the answer is OL_PARSE_DONE. */
enum ol_parse ol_http_parse(const char *buf, size_t len, bool eof, struct ol_response *out);

/* The services' error code: the value of the first "error":"..." in body[0..len) copied into
 * code (at most size - 1 bytes, NUL-terminated); false (code "") when there is none. A chunked
 * body is searched with its framing, which a short error body never splits. */
bool ol_error_code(const char *body, size_t len, char *code, size_t size);

#endif
