/* Access tokens and passwords: the backend signs a short-lived token at login and every service
 * verifies it on each request without asking anyone; passwords are stored as argon2id hashes.
 *
 * - Tokens are compact JWS (JWT) signed with Ed25519 ("EdDSA"): verifying needs only public
 *   keys, so the verifying services hold nothing that could mint a token; signatures are small
 *   and deterministic, and the algorithm has no parameters to get wrong. The header's alg must
 *   be "EdDSA" exactly: "none", HS256 (the public key used as an HMAC secret) and every other
 *   algorithm are refused before any key is used.
 * - kid is a thumbprint of the key (the first 16 characters of base64url(SHA-256(raw public
 *   key)), 96 bits): derived, never configured, so two services cannot disagree about a key's
 *   name, and a rotation is only files: add the new key to the key directory everywhere, sign
 *   with it, remove the old one once its last tokens have expired.
 * - Clocks differ between machines: exp and nbf are checked with a leeway (a few seconds,
 *   chosen by the caller); iat is informative.
 * - Passwords: argon2id (libsodium) with opslimit 2 and memlimit 19 MiB, OWASP's minimum for
 *   argon2id: one hash costs tens of milliseconds and 19 MiB, so 48 concurrent logins need
 *   under 1 GiB. The parameters are in the stored string, so raising them later only means
 *   rehashing at the next login (gf_auth_password_needs_rehash).
 * OpenSSL does the signatures and libsodium the hashes, base64url and constant-time
 * comparisons; nothing here is hand-written cryptography. */
#ifndef GF_AUTH_H
#define GF_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gf/status.h"

#define GF_AUTH_TOKEN_MAX 4096 /* bytes of a token; longer ones are refused unread */
#define GF_AUTH_NAME_MAX 255   /* bytes of a user's name (SPEC §2: names are 1..255 bytes) */
#define GF_AUTH_KID_LEN 16     /* characters of a kid */
#define GF_AUTH_KEYS_MAX 64    /* keys in a set */
#define GF_AUTH_PASSWORD_MIN 8
#define GF_AUTH_PASSWORD_MAX 1024
#define GF_AUTH_HASH_SIZE 128 /* crypto_pwhash_STRBYTES: an encoded hash and its NUL */

enum gf_role { GF_ROLE_NONE = 0, GF_ROLE_USER = 1, GF_ROLE_ADMIN = 2 };

/* "user", "admin"; "" for GF_ROLE_NONE and anything else. */
const char *gf_role_name(enum gf_role r);
/* "user" or "admin" exactly (s may be NULL); *out is written only on success. */
bool gf_role_parse(const char *s, enum gf_role *out);

struct gf_auth_claims {
    int64_t user_id;                 /* sub: the user's id (a decimal string), 1..2^53 */
    char name[GF_AUTH_NAME_MAX + 1]; /* "name": the user's name, 1..255 bytes of UTF-8 */
    enum gf_role role;               /* "role" */
    int64_t iat, nbf, exp;           /* seconds since the epoch */
    char jti[37];                    /* a random UUID */
    char kid[44];                    /* the key that signed it (GF_AUTH_KID_LEN characters) */
};

struct gf_auth_keys; /* immutable after load; shared by threads */

/* Loads every *.pem under dir (sorted by name; dir NULL or "" for none): a public key ("PUBLIC
 * KEY", Ed25519) verifies; a private key ("PRIVATE KEY", Ed25519, unencrypted PKCS#8 as
 * `openssl genpkey -algorithm ed25519` writes it) verifies too (its public half).
 * signing_key_path, if not NULL or empty, names the private key that signs (it need not be in
 * dir; it is added to the verifying set). The same key found twice counts once. issuer and
 * audience (1..128 visible ASCII characters each) are copied. On failure returns NULL and writes
 * a sentence naming the file and what is wrong into err (e.g. "<dir>/old.pem: not an Ed25519
 * key (RSA)"). An empty set of keys is an error, and so is a set over GF_AUTH_KEYS_MAX. */
struct gf_auth_keys *gf_auth_keys_load(const char *dir, const char *signing_key_path,
                                       const char *issuer, const char *audience, char *err,
                                       size_t errlen);
/* NULL is a no-op. */
void gf_auth_keys_free(struct gf_auth_keys *k);
/* True when the set holds a signing key. */
bool gf_auth_can_sign(const struct gf_auth_keys *k);
/* How many distinct keys verify. */
size_t gf_auth_key_count(const struct gf_auth_keys *k);
/* The signing key's kid, for the start-up log line; "" when the set cannot sign. */
const char *gf_auth_signing_kid(const struct gf_auth_keys *k);

/* Signs a token for claims->user_id/name/role valid from now for ttl_s seconds (iat = nbf = now,
 * exp = now + ttl_s, a fresh jti, the kid of the signing key; claims' iat/nbf/exp/jti/kid are
 * filled in). Header {"alg":"EdDSA","typ":"JWT","kid":...}; payload
 * {"iss","aud","sub","name","role","iat","nbf","exp","jti"}. *token is malloc'd (at most
 * GF_AUTH_TOKEN_MAX bytes). GF_OK; GF_EINVAL for bad claims (user_id outside 1..2^53, a name
 * empty, over 255 bytes or not UTF-8, role neither user nor admin, now < 0, ttl_s outside
 * 1..366 days); GF_ENOMEM; GF_EINTERNAL when the set has no signing key or OpenSSL fails. */
enum gf_status gf_auth_sign(const struct gf_auth_keys *k, struct gf_auth_claims *claims,
                            int64_t now, int64_t ttl_s, char **token) GF_MUSTCHECK;

/* Why a token was refused (each maps to a sentence for the 401's message). */
enum gf_auth_error {
    GF_AUTH_OK = 0,
    GF_AUTH_MALFORMED,
    GF_AUTH_BAD_ALG, /* alg none, HS256, anything but EdDSA */
    GF_AUTH_UNKNOWN_KID,
    GF_AUTH_BAD_SIGNATURE,
    GF_AUTH_EXPIRED,
    GF_AUTH_NOT_YET_VALID,
    GF_AUTH_BAD_ISSUER,
    GF_AUTH_BAD_AUDIENCE,
    GF_AUTH_BAD_CLAIMS,
};
/* A sentence for the client ("the token has expired", ...); never NULL. */
const char *gf_auth_error_message(enum gf_auth_error e);

/* Verifies a compact JWS (the text after "Bearer ", len bytes, not necessarily NUL-terminated):
 * at most GF_AUTH_TOKEN_MAX bytes, exactly three base64url parts (no padding), a header JSON
 * object with alg == "EdDSA" exactly, typ absent or "JWT", no crit, and a kid the set knows
 * (no kid = unknown kid); the signature is checked before the payload is read. Then iss, aud (a
 * string, or an array containing it), exp > now - leeway_s, nbf <= now + leeway_s, iat present,
 * sub a decimal user id 1..2^53 without leading zeros, role "user"|"admin", name 1..255 bytes
 * without NUL, jti a UUID. Duplicate members in either JSON object are refused. *out is written
 * only on GF_AUTH_OK (out may be NULL). Never crashes on any input (fuzzed: fuzz_auth_token). */
enum gf_auth_error gf_auth_verify(const struct gf_auth_keys *k, const char *token, size_t len,
                                  int64_t now, int64_t leeway_s, struct gf_auth_claims *out);
/* The time checks of gf_auth_verify alone, on claims it accepted earlier: GF_AUTH_EXPIRED when
 * exp <= now - leeway_s, GF_AUTH_NOT_YET_VALID when nbf > now + leeway_s, else GF_AUTH_OK (leeway_s
 * clamped as gf_auth_verify clamps it). */
enum gf_auth_error gf_auth_claims_in_time(const struct gf_auth_claims *c, int64_t now,
                                          int64_t leeway_s);

/* A cache of tokens verified: a service that sees the same tokens again and again (every request
 * of a signed-in client carries its token) checks each signature once and then only exp and nbf.
 * - Only accepted tokens go in, so a flood of bad tokens costs their verification and evicts
 *   nothing; a cached token is still refused the moment it expires.
 * - A slot is found by a keyed BLAKE2b of the whole token (a random key per cache) and the 32-byte
 *   digests are compared in constant time: timing tells nobody anything about the tokens held.
 * - Bounded: a fixed number of slots (direct-mapped; a collision replaces the older token).
 * - Sound because a key set never changes after load (a rotation restarts the service) and a
 *   token says everything about itself: nothing is revoked before it expires. */
struct gf_auth_cache;
/* A cache of about `slots` tokens (rounded up to a power of two, 16..65536) for tokens of key set
 * k, which must outlive it; NULL when out of memory or libsodium cannot start. */
struct gf_auth_cache *gf_auth_cache_new(const struct gf_auth_keys *k, size_t slots);
void gf_auth_cache_free(struct gf_auth_cache *c);
/* gf_auth_verify(k, ...) of the cache's key set through the cache; thread-safe. With c NULL,
 * nothing is cached and nothing can be verified: GF_AUTH_UNKNOWN_KID. */
enum gf_auth_error gf_auth_cache_verify(struct gf_auth_cache *c, const char *token, size_t len,
                                        int64_t now, int64_t leeway_s, struct gf_auth_claims *out);
/* Lookups answered from the cache, and those that verified a signature, since it was made. */
void gf_auth_cache_counts(struct gf_auth_cache *c, uint64_t *hits, uint64_t *misses);

/* Passwords are 8 to 1024 bytes (UTF-8 not checked). False with *why (why may be NULL) a
 * sentence for the client when pw is refused. */
bool gf_auth_password_ok(const char *pw, const char **why);
/* Hashes pw (which must pass gf_auth_password_ok, else GF_EINVAL) into out: libsodium's
 * encoded argon2id string "$argon2id$v=19$m=19456,t=2,p=1$...". GF_ENOMEM when the 19 MiB
 * cannot be had; GF_EINTERNAL when libsodium cannot start. */
enum gf_status gf_auth_password_hash(const char *pw, char out[GF_AUTH_HASH_SIZE]) GF_MUSTCHECK;
/* True when pw matches the hash. Constant-time as the library makes it; a NULL or malformed hash
 * (or a NULL or over-long pw) verifies false but still spends one hash's time (against a fixed
 * dummy) so that unknown names and users without a password cannot be told apart by timing. */
bool gf_auth_password_verify(const char *hash_or_null, const char *pw);
/* True when a valid hash was made with other parameters than today's (rehash it after a
 * successful login); false for a current hash and for NULL or malformed ones. */
bool gf_auth_password_needs_rehash(const char *hash);

/* Creates a new Ed25519 key pair as PEM files: the private key (PKCS#8 "PRIVATE KEY", mode
 * 0600) and its public half ("PUBLIC KEY", mode 0644). Existing files are not overwritten
 * (GF_EEXISTS); GF_EUNAVAILABLE when a file cannot be written (both are then removed);
 * GF_EINTERNAL when OpenSSL fails. For gf-keygen and the tests. */
enum gf_status gf_auth_keygen(const char *private_path, const char *public_path) GF_MUSTCHECK;

#endif
