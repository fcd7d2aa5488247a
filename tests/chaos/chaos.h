/* The chaos test's program (gf-chaos): a seeded random stream, the per-request record the
 * load generator writes and the checker reads, and the three subcommands (tests/chaos/). */
#ifndef GF_CHAOS_H
#define GF_CHAOS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* ---- a seeded random stream (splitmix64): the same seed gives the same sequence ---------- */
struct rng {
    uint64_t s;
};

/* A stream for (seed, stream number): independent streams for the schedule and each client. */
void rng_init(struct rng *r, uint64_t seed, uint64_t stream);
uint64_t rng_next(struct rng *r);
/* Uniform in [lo, hi] (inclusive). */
int64_t rng_range(struct rng *r, int64_t lo, int64_t hi);
/* True with probability num/den. */
bool rng_chance(struct rng *r, int num, int den);
/* A version-4 UUID drawn from the stream, lowercase, 36 characters. */
void rng_uuid(struct rng *r, char out[37]);

/* ---- the record of one request ------------------------------------------------------------
 * One TSV line per request (per attempt, for a request retried), written when its answer (or
 * its failure) came back. status 0 means no answer: the connection was cut or timed out
 * (curl_rc says which). Fields that do not apply are 0 or "-".
 *
 * Retried requests: an Idempotency-Key request is sent again with the same key and body, each
 * attempt with a new X-Correlation-Id, until a definite answer (key set, attempt 1, 2, ...); a
 * resent request sends the same X-Correlation-Id again without a key after no answer or a 5xx
 * (REC_RESEND). A replayed answer (Idempotent-Replayed: true) sets REC_REPLAYED. */
enum rec_kind {
    K_CREATE_USER, /* name; res_id = userId */
    K_ADD_GXP,     /* user, amount */
    K_BUY,         /* user, item; res_id = buyItemResponse.userItemId */
    K_PATCH_ITEM,  /* item, name (new), amount (new cost, -1: unchanged), aux = If-Match;
                      res_ver = the answer's ETag version */
    K_CREATE_ITEM, /* name, amount = cost; res_id = itemId (setup) */
    K_MKT_CREATE,  /* item, amount = count; res_id = marketplaceItemId (setup) */
    K_UI_CREATE,   /* user, item, amount = count; res_id = userItemId (setup: sellers' units) */
    K_AU_CREATE,   /* user = seller, item = userItemId, amount = minBid, aux = durationSeconds;
                      res_id = auctionId */
    K_BID,         /* user, item = auctionId, amount; res_id = bidId */
    K_AU_CANCEL,   /* user, item = auctionId; res_id = auctionId */
    NKINDS
};
extern const char *const kind_names[NKINDS];

#define NAME_MAX_LEN 320
#define ERR_MAX_LEN 48

struct rec {
    long seq;
    int client; /* -1: setup */
    enum rec_kind kind;
    int status;  /* HTTP status; 0 = no answer */
    int curl_rc; /* CURLcode of the transfer */
    int64_t user, item, amount, aux;
    char name[NAME_MAX_LEN];
    char cid[37];      /* the X-Correlation-Id sent */
    char resp_cid[37]; /* the correlationId answered ("-" if none) */
    int64_t t0_ms, t1_ms;
    int64_t res_id, res_ver;
    char err[ERR_MAX_LEN]; /* the error code of an error body ("-" if none) */
    char key[37];          /* the Idempotency-Key sent ("-" if none) */
    int attempt;           /* 1 for the first attempt of a request */
    int flags;             /* REC_* */
};

#define REC_REPLAYED 1 /* the answer said Idempotent-Replayed: true */
#define REC_RESEND 2   /* a request that resends its X-Correlation-Id when it gets no answer */
#define REC_PROBE 4    /* a probe buy of the driver (tests/chaos/chaos.sh, lock hold) */
/* Who sent it (tokens.c): the operator's token unless one of these says otherwise. */
#define REC_AS_USER 8   /* a user's own token, acting for itself */
#define REC_MUST_401 16 /* no token: must be refused 401 */
#define REC_MUST_403 32 /* a user's token acting for another user, or on an admin route: 403 */

/* An answer's body as libcurl hands it in (CURLOPT_WRITEFUNCTION chaos_buf_write, WRITEDATA a
 * struct buf): NUL-terminated; a body over BODY_MAX stops the transfer. */
#define BODY_MAX (1 << 20)
struct buf {
    char p[BODY_MAX];
    size_t len;
};
size_t chaos_buf_write(char *data, size_t size, size_t nmemb, void *ud);

void rec_write(FILE *f, const struct rec *r);
/* Reads a whole file of records; false (with a message) on a malformed line. */
bool rec_read_file(const char *path, struct rec **out, size_t *n);

/* ---- credentials (tokens.c) --------------------------------------------------------------------
 * The operator and the users setup creates log in (POST /auth/login); their tokens go into a
 * file, one line each: user id (0: the operator), name, when it was got (epoch ms), token. */
#define TOKEN_MAX 4096
#define ADMIN_NAME "admin"

/* The password setup gives the user called name (its own login in the load). */
void user_password(uint64_t seed, const char *name, char *out, size_t n);
/* POST url/auth/login; true with the token, false with a sentence in why. */
bool chaos_login(const char *url, const char *name, const char *password, char token[TOKEN_MAX],
                 char *why, size_t why_n);
/* Where logins go, the tokens file, the operator's password (read from its file now). */
bool tokens_init(const char *url, const char *path, const char *admin_password_file, uint64_t seed);
/* Logs in user (0: the operator, called ADMIN_NAME) and keeps its token; retried a few times. */
bool tokens_login_add(int64_t user, const char *name);
bool tokens_save(void);
/* Reads the tokens file tokens_init named (it must hold the operator's). */
bool tokens_read(void);
size_t tokens_count(void);
/* The index of user's token, -1 if it has none. */
long tokens_index(int64_t user);
int64_t tokens_user(size_t i);
/* A copy of token i, renewed first (a login, the file rewritten) when it is old. Thread-safe. */
void tokens_get(size_t i, char out[TOKEN_MAX]);
void tokens_free(void);

/* ---- subcommands ---------------------------------------------------------------------------- */
int chaos_setup(int argc, char **argv);
int chaos_load(int argc, char **argv);
int chaos_check(int argc, char **argv);
int chaos_probe(int argc, char **argv);
int chaos_sample(int argc, char **argv);

/* Is this answer definite (2xx, or a 4xx other than 408, 429 and 409 request_in_progress), or
 * should a client with an Idempotency-Key retry it? */
bool rec_definite(const struct rec *r);

/* Wall-clock milliseconds. */
int64_t now_ms(void);

#endif
