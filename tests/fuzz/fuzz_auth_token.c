/* Fuzz target: gf_auth_verify (lib/src/auth.c), which every service runs on the token of each
 * request's "Authorization: Bearer". The key set is fixed — a signing key and a second public
 * key, test keys made for this target alone — and so is the clock (FUZZ_NOW), so the seeds in
 * corpus/auth_token/ stay valid. Every input is verified as it is; then, by its first byte:
 * '1' the rest is a payload, signed here under a good header, so that the claims checks behind
 *     the signature are reached; '2' the rest is "header\npayload", both signed here; '3' the rest
 *     is edits (op, position, byte) of a valid token: whatever differs from it must be refused. */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "gf/auth.h"

#define FUZZ_NOW 1767225600 /* 2026-01-01: the seeds' tokens are valid then */
#define LEEWAY 30
#define ISS "gf-backend"
#define AUD "gf"

/* kid 9g8xQMR2MV3i5GiM; the seeds of corpus/auth_token/ are signed with it. */
static const char signing_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEILwOBb3rcugX0d5SP9YgdoyxyB3kNBiMs7uuykPEW9Ak\n"
    "-----END PRIVATE KEY-----\n";
static const char other_pem[] = "-----BEGIN PUBLIC KEY-----\n"
                                "MCowBQYDK2VwAyEAu93Oy6YJI1yDZ21NHizgf+rrLEPxmp4mID5yEhGapk8=\n"
                                "-----END PUBLIC KEY-----\n";

static struct gf_auth_keys *keys;
static EVP_PKEY *signer;
static char *valid; /* a token valid at FUZZ_NOW */
static char header_ok[128];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char dir[] = "/tmp/fuzz-auth-XXXXXX", a[64], b[64], err[256];
    if (mkdtemp(dir) == NULL)
        abort();
    snprintf(a, sizeof a, "%s/a.pem", dir);
    snprintf(b, sizeof b, "%s/b.pem", dir);
    write_file(a, signing_pem);
    write_file(b, other_pem);
    keys = gf_auth_keys_load(dir, a, ISS, AUD, err, sizeof err);
    unlink(a);
    unlink(b);
    rmdir(dir);
    if (keys == NULL || gf_auth_key_count(keys) != 2) {
        fprintf(stderr, "fuzz_auth_token: %s\n", err);
        abort();
    }
    BIO *bio = BIO_new_mem_buf(signing_pem, -1);
    signer = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    struct gf_auth_claims c = {.user_id = 42, .role = GF_ROLE_ADMIN};
    strcpy(c.name, "alice");
    if (signer == NULL || gf_auth_sign(keys, &c, FUZZ_NOW - 60, 3600, &valid) != GF_OK)
        abort();
    snprintf(header_ok, sizeof header_ok, "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
             gf_auth_signing_kid(keys));
    return 0;
}

static void b64_add(char *out, size_t *len, const uint8_t *p, size_t n)
{
    sodium_bin2base64(out + *len,
                      sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING), p, n,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    *len += strlen(out + *len);
}

/* base64url(h).base64url(p).base64url(Ed25519 signature by the signing key): malloc'd. */
static char *sign_parts(const uint8_t *h, size_t hn, const uint8_t *p, size_t pn)
{
    size_t cap = sodium_base64_ENCODED_LEN(hn, sodium_base64_VARIANT_URLSAFE_NO_PADDING) +
                 sodium_base64_ENCODED_LEN(pn, sodium_base64_VARIANT_URLSAFE_NO_PADDING) + 100;
    char *t = fuzz_alloc(cap);
    size_t len = 0;
    b64_add(t, &len, h, hn);
    t[len++] = '.';
    b64_add(t, &len, p, pn);
    unsigned char sig[64];
    size_t sig_len = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestSignInit(md, NULL, NULL, NULL, signer) != 1 ||
        EVP_DigestSign(md, sig, &sig_len, (unsigned char *)t, len) != 1)
        abort();
    EVP_MD_CTX_free(md);
    t[len++] = '.';
    b64_add(t, &len, sig, sig_len);
    return t;
}

/* Verifies t[0..n) (a copy of exactly n bytes, so ASan sees a read past it) and checks the
 * answer; returns it. */
static enum gf_auth_error check(const char *t, size_t n)
{
    char *copy = fuzz_alloc(n);
    if (n > 0)
        memcpy(copy, t, n);
    struct gf_auth_claims c;
    memset(&c, 0xa5, sizeof c);
    enum gf_auth_error e = gf_auth_verify(keys, copy, n, FUZZ_NOW, LEEWAY, &c);
    free(copy);
    FUZZ_CHECK(e >= GF_AUTH_OK && e <= GF_AUTH_BAD_CLAIMS);
    FUZZ_CHECK(fuzz_json_text_ok(gf_auth_error_message(e)));
    if (e == GF_AUTH_OK) {
        FUZZ_CHECK(n <= GF_AUTH_TOKEN_MAX);
        FUZZ_CHECK(c.user_id >= 1 && c.user_id <= 9007199254740992LL);
        FUZZ_CHECK(c.role == GF_ROLE_USER || c.role == GF_ROLE_ADMIN);
        size_t name_len = strnlen(c.name, sizeof c.name);
        FUZZ_CHECK(name_len >= 1 && name_len <= GF_AUTH_NAME_MAX);
        FUZZ_CHECK(fuzz_json_text_ok(c.name)); /* UTF-8 */
        FUZZ_CHECK(fuzz_uuid_lower(c.jti));
        FUZZ_CHECK(strnlen(c.kid, sizeof c.kid) == GF_AUTH_KID_LEN);
        FUZZ_CHECK(c.exp > FUZZ_NOW - LEEWAY && c.nbf <= FUZZ_NOW + LEEWAY);
    }
    return e;
}

/* Applies edits (op, position, byte) to the valid token; every token that differs from it must
 * be refused, since the signature covers every byte and its encoding is canonical. */
static void mutate(const uint8_t *p, size_t n)
{
    size_t len = strlen(valid), cap = len + n + 1;
    char *t = fuzz_alloc(cap);
    memcpy(t, valid, len);
    for (size_t i = 0; i + 3 <= n; i += 3) {
        size_t at = len > 0 ? p[i + 1] * 37u % (len + 1) : 0;
        switch (p[i] % 3) {
        case 0: /* replace */
            if (at < len)
                t[at] = (char)p[i + 2];
            break;
        case 1: /* insert */
            memmove(t + at + 1, t + at, len - at);
            t[at] = (char)p[i + 2];
            len++;
            break;
        default: /* delete */
            if (at < len) {
                memmove(t + at, t + at + 1, len - at - 1);
                len--;
            }
        }
    }
    enum gf_auth_error e = check(t, len);
    bool same = len == strlen(valid) && memcmp(t, valid, len) == 0;
    FUZZ_CHECK(same ? e == GF_AUTH_OK : e != GF_AUTH_OK);
    free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check((const char *)data, size);
    if (size == 0)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    char *t = NULL;
    if (data[0] == '1') {
        t = sign_parts((const uint8_t *)header_ok, strlen(header_ok), p, n);
    } else if (data[0] == '2') {
        const uint8_t *nl = memchr(p, '\n', n);
        size_t hn = nl != NULL ? (size_t)(nl - p) : n;
        const uint8_t *q = nl != NULL ? nl + 1 : p + n;
        t = sign_parts(p, hn, q, n - hn - (nl != NULL));
    } else if (data[0] == '3') {
        mutate(p, n);
    }
    if (t != NULL) {
        check(t, strlen(t));
        free(t);
    }
    return 0;
}
