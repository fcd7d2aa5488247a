/* Validation of what clients send to the HTTP API (JSON bodies, query parameters and
 * headers) and to the gRPC service (ResolveTransaction). Pure functions (no I/O, no
 * globals), so that every rule is unit-tested and fuzzed (tests/fuzz). */
#ifndef BACKEND_VALIDATE_H
#define BACKEND_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "backend.pb-c.h"
#include "gf/testable.h"
#include "gf/uuid.h"

/* Ids stay below 2^53 so that every JSON client (JavaScript's numbers included) holds them
 * exactly; amounts, costs and counts fit gxp's uint32 and PostgreSQL's CHECKs. */
#define VALIDATE_ID_MAX 9007199254740992LL /* 2^53 */
#define VALIDATE_U31_MAX 2147483647LL      /* 2^31 - 1 */
#define VALIDATE_NAME_MAX 255              /* bytes */
#define VALIDATE_KEY_MAX 255               /* bytes of an Idempotency-Key */

/* What a body field holds and so which values it accepts. */
enum validate_kind {
    VALIDATE_ID,     /* 1..2^53 */
    VALIDATE_COUNT,  /* 1..2^31-1: counts and amounts, where zero means nothing */
    VALIDATE_COST,   /* 0..2^31-1 */
    VALIDATE_NAME,   /* a string of 1..255 bytes, no control characters */
    VALIDATE_SECRET, /* a password: a string of 1..1024 bytes (never echoed in an error) */
};

struct validate_field {
    const char *name; /* as in the JSON body, e.g. "userId" */
    enum validate_kind kind;
    bool required;
};

/* The JSON body of each route that takes one (SPEC §2): its fields, for validate_body.
 * api.c's route table points here, and so does the body fuzz target (tests/fuzz). */
enum validate_body_kind {
    VALIDATE_BODY_USER_CREATE,        /* POST /user/create {name, password?} */
    VALIDATE_BODY_ITEM_CREATE,        /* POST /item/create {name, cost} */
    VALIDATE_BODY_ITEM_PATCH,         /* PATCH /item/:id {name?, cost?} */
    VALIDATE_BODY_MARKETPLACE_CREATE, /* POST /marketplace/item/create {itemId, count} */
    VALIDATE_BODY_BUY,                /* POST /marketplace/item/buy {userId, itemId} */
    VALIDATE_BODY_USER_ITEM_CREATE,   /* POST /user/item/create {userId, itemId, count} */
    VALIDATE_BODY_GXP_ADD,            /* POST /user/gxp/add {userId, amount} */
    VALIDATE_BODY_LOGIN,              /* POST /auth/login {name, password} */
    VALIDATE_BODY_PASSWORD,           /* POST /auth/password {password?, newPassword, userId?} */
    VALIDATE_BODY_AUCTION_CREATE,     /* POST /auction/create {userId, userItemId, minBid,
                                         durationSeconds} */
    VALIDATE_BODY_AUCTION_BID,        /* POST /auction/bid {auctionId, userId, amount} */
    VALIDATE_BODY_AUCTION_CANCEL,     /* POST /auction/cancel {auctionId, userId} */
    VALIDATE_NBODIES
};
#define VALIDATE_FIELDS_MAX 4 /* fields of the largest body */

struct validate_body_def {
    const struct validate_field *fields;
    size_t nfields; /* at most VALIDATE_FIELDS_MAX */
};
extern const struct validate_body_def validate_bodies[VALIDATE_NBODIES];

/* One parsed field; str points into the parsed document (see validate_body). */
struct validate_value {
    bool present;
    int64_t num;
    const char *str;
};

/* Parses body (len bytes) as a JSON object whose members are exactly some of fields (all the
 * required ones, no other, none twice) and fills values[i] for fields[i]. On success
 * *root_out is the parsed document (the caller json_decref's it; the strings in values live
 * as long as it). On failure (GF_EINVAL) err says why with one of the codes empty_body,
 * malformed_json, invalid_utf8, duplicate_field, invalid_body, unknown_field, missing_field,
 * invalid_field; nothing is written to root_out. */
enum gf_status validate_body(const char *body, size_t len, const struct validate_field *fields,
                             size_t nfields, json_t **root_out, struct validate_value *values,
                             struct be_err *err) GF_MUSTCHECK;

/* ?limit=&after= of a list. NULL means absent: limit defaults to cap, after to 0 (from the
 * start). limit is 1.. (larger values are cut to cap), after 0..2^53; anything else is
 * GF_EINVAL (code invalid_field naming the parameter). */
enum gf_status validate_page(const char *limit, const char *after, int64_t cap, struct be_page *out,
                             struct be_err *err) GF_MUSTCHECK;
/* The query of GET /gxp/get-all: limit (1..2^32-1, cut to gxp's cap there), after (a
 * transaction id), afterBalance (a user id), order ("oldest", the default, or "newest": the
 * transactions newest first). */
enum gf_status validate_gxp_page(const char *limit, const char *after, const char *after_balance,
                                 const char *order, struct be_gxp_page *out,
                                 struct be_err *err) GF_MUSTCHECK;

/* A query parameter holding an id (e.g. ?userId=): NULL → missing_field, else digits in
 * 1..2^53 → GF_OK, else invalid_field. */
enum gf_status validate_query_id(const char *s, const char *name, int64_t *out,
                                 struct be_err *err) GF_MUSTCHECK;

/* A query parameter holding a correlation id (e.g. ?correlationId=): NULL or empty →
 * missing_field, a UUID → GF_OK with out[37] its normalized form, else invalid_field. */
enum gf_status validate_query_uuid(const char *s, const char *name, char out[GF_UUID_STRLEN + 1],
                                   struct be_err *err) GF_MUSTCHECK;

/* The request of backend.Backend/ResolveTransaction (asked by gxp): its correlationId must be
 * a UUID; cid[37] gets it normalized. */
bool validate_resolve_request(const Backend__ResolveTransactionRequest *req,
                              char cid[GF_UUID_STRLEN + 1]) GF_MUSTCHECK;

/* An If-Match header naming one version: "n", W/"n" or bare n (n decimal, 0..2^63-1),
 * surrounding spaces allowed. false for anything else ("*" and lists included). */
bool validate_if_match(const char *h, int64_t *version) GF_MUSTCHECK;

/* An Idempotency-Key header: 1..255 bytes of printable ASCII (0x20..0x7e). */
bool validate_idempotency_key(const char *h);

#endif
