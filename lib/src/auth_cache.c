/* Tokens verified once and then only checked for time (gf/auth.h, gf_auth_cache): a fixed table
 * of slots, each holding a keyed BLAKE2b digest of one accepted token and its claims. */
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "gf/auth.h"

#define SLOTS_MIN 16
#define SLOTS_MAX 65536

struct slot {
    unsigned char digest[crypto_generichash_BYTES];
    bool used;
    struct gf_auth_claims claims;
};

struct gf_auth_cache {
    const struct gf_auth_keys *keys;
    unsigned char key[crypto_generichash_KEYBYTES]; /* random: digests mean nothing elsewhere */
    pthread_mutex_t mu;
    size_t mask; /* slots - 1 */
    uint64_t hits, misses;
    struct slot *slots;
};

struct gf_auth_cache *gf_auth_cache_new(const struct gf_auth_keys *k, size_t slots)
{
    if (k == NULL || sodium_init() < 0)
        return NULL;
    size_t n = SLOTS_MIN;
    while (n < slots && n < SLOTS_MAX)
        n *= 2;
    struct gf_auth_cache *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->slots = calloc(n, sizeof *c->slots);
    if (c->slots == NULL || pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c->slots);
        free(c);
        return NULL;
    }
    c->keys = k;
    c->mask = n - 1;
    randombytes_buf(c->key, sizeof c->key);
    return c;
}

void gf_auth_cache_free(struct gf_auth_cache *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->mu);
    sodium_memzero(c->key, sizeof c->key);
    free(c->slots);
    free(c);
}

enum gf_auth_error gf_auth_cache_verify(struct gf_auth_cache *c, const char *token, size_t len,
                                        int64_t now, int64_t leeway_s, struct gf_auth_claims *out)
{
    if (c == NULL)
        return GF_AUTH_UNKNOWN_KID;
    /* What gf_auth_verify refuses unread is refused here before any hashing. */
    if (token == NULL || len == 0 || len > GF_AUTH_TOKEN_MAX)
        return GF_AUTH_MALFORMED;
    unsigned char d[crypto_generichash_BYTES];
    crypto_generichash(d, sizeof d, (const unsigned char *)token, len, c->key, sizeof c->key);
    uint64_t h;
    memcpy(&h, d, sizeof h);
    struct slot *s = &c->slots[h & c->mask];

    struct gf_auth_claims claims;
    bool hit = false;
    pthread_mutex_lock(&c->mu);
    if (s->used && sodium_memcmp(s->digest, d, sizeof d) == 0) {
        claims = s->claims;
        hit = true;
        c->hits++;
    } else {
        c->misses++;
    }
    pthread_mutex_unlock(&c->mu);
    if (hit) {
        enum gf_auth_error e = gf_auth_claims_in_time(&claims, now, leeway_s);
        if (e == GF_AUTH_OK && out != NULL)
            *out = claims;
        return e;
    }

    enum gf_auth_error e = gf_auth_verify(c->keys, token, len, now, leeway_s, &claims);
    if (e != GF_AUTH_OK)
        return e;
    pthread_mutex_lock(&c->mu);
    memcpy(s->digest, d, sizeof d);
    s->claims = claims;
    s->used = true;
    pthread_mutex_unlock(&c->mu);
    if (out != NULL)
        *out = claims;
    return GF_AUTH_OK;
}

void gf_auth_cache_counts(struct gf_auth_cache *c, uint64_t *hits, uint64_t *misses)
{
    uint64_t h = 0, m = 0;
    if (c != NULL) {
        pthread_mutex_lock(&c->mu);
        h = c->hits;
        m = c->misses;
        pthread_mutex_unlock(&c->mu);
    }
    if (hits != NULL)
        *hits = h;
    if (misses != NULL)
        *misses = m;
}
