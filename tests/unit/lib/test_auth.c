/* Access tokens and passwords (lib/src/auth.c, compiled in): sign and verify, every way a token
 * is refused (forged ones signed here with OpenSSL directly), key loading and rotation, keys
 * made by the openssl tool, and argon2id password hashes. */
#include <dirent.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <setjmp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "gf/auth.h"
#include "gf/uuid.h"

extern const char auth_dummy_hash[GF_AUTH_HASH_SIZE];

#define NOW 1767225600 /* 2026-01-01 */
#define ISS "gf-backend"
#define AUD "gf"

/* One scratch directory per test: keys/ is the key directory, spare/ holds what is not in it. */
struct fix {
    char root[64];
    char keys[96];
    char spare[96];
    char path[256]; /* scratch for path_of */
};

static const char *path_of(struct fix *f, const char *dir, const char *name)
{
    snprintf(f->path, sizeof f->path, "%s/%s", dir, name);
    return f->path;
}

static char *dup_path(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    assert_non_null(p);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *p = dup_path(dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            rm_dir(p);
        else
            unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof *f);
    assert_non_null(f);
    strcpy(f->root, "/tmp/gf-auth-test-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    snprintf(f->keys, sizeof f->keys, "%s/keys", f->root);
    snprintf(f->spare, sizeof f->spare, "%s/spare", f->root);
    assert_int_equal(mkdir(f->keys, 0700), 0);
    assert_int_equal(mkdir(f->spare, 0700), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    rm_dir(f->root);
    free(f);
    return 0;
}

/* A key pair: private in spare/<name>.pem, public in keys/<name>.pub.pem. */
static void make_pair(struct fix *f, const char *name)
{
    char priv[256], pub[256];
    snprintf(priv, sizeof priv, "%s/%s.pem", f->spare, name);
    snprintf(pub, sizeof pub, "%s/%s.pub.pem", f->keys, name);
    assert_int_equal(gf_auth_keygen(priv, pub), GF_OK);
}

static struct gf_auth_keys *load(const char *dir, const char *signer, const char *iss,
                                 const char *aud)
{
    char err[512];
    struct gf_auth_keys *k = gf_auth_keys_load(dir, signer, iss, aud, err, sizeof err);
    if (k == NULL)
        fail_msg("load: %s", err);
    return k;
}

/* The error sentence of a load that must fail. */
static const char *load_err(const char *dir, const char *signer)
{
    static char err[512];
    struct gf_auth_keys *k = gf_auth_keys_load(dir, signer, ISS, AUD, err, sizeof err);
    assert_null(k);
    assert_true(err[0] != '\0');
    return err;
}

static char *sign_for(const struct gf_auth_keys *k, int64_t id, const char *name, enum gf_role role,
                      int64_t now, int64_t ttl)
{
    struct gf_auth_claims c = {.user_id = id, .role = role};
    snprintf(c.name, sizeof c.name, "%s", name);
    char *t = NULL;
    assert_int_equal(gf_auth_sign(k, &c, now, ttl, &t), GF_OK);
    assert_non_null(t);
    return t;
}

static enum gf_auth_error verify(const struct gf_auth_keys *k, const char *t, int64_t now)
{
    return gf_auth_verify(k, t, strlen(t), now, 0, NULL);
}

static bool have_openssl(void)
{
    return system("command -v openssl >/dev/null 2>&1") == 0;
}

static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void run(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (system(cmd) != 0)
        fail_msg("failed: %s", cmd);
}

/* ---- forging tokens: what an attacker (or a buggy issuer) could send ---------------------- */

static void b64_append(char *out, size_t cap, const void *p, size_t n)
{
    size_t len = strlen(out);
    assert_true(sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING) <=
                cap - len);
    sodium_bin2base64(out + len, cap - len, p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static EVP_PKEY *private_key(const char *path)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    EVP_PKEY *key = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(key);
    return key;
}

enum forge_sig { SIG_ED25519, SIG_NONE, SIG_JUNK, SIG_HS256 };

/* base64url(header).base64url(payload).signature, where the signature is made with the key
 * in key_path: Ed25519, empty, 64 random bytes, or HMAC-SHA256 keyed with the file's bytes. */
static char *forge(const char *header, const char *payload, enum forge_sig how,
                   const char *key_path)
{
    size_t cap = 16384;
    char *t = calloc(1, cap);
    assert_non_null(t);
    b64_append(t, cap, header, strlen(header));
    strcat(t, ".");
    b64_append(t, cap, payload, strlen(payload));
    size_t signed_len = strlen(t);
    strcat(t, ".");
    unsigned char sig[64];
    size_t sig_len = 0;
    if (how == SIG_ED25519) {
        EVP_PKEY *key = private_key(key_path);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        sig_len = sizeof sig;
        assert_int_equal(EVP_DigestSignInit(md, NULL, NULL, NULL, key), 1);
        assert_int_equal(EVP_DigestSign(md, sig, &sig_len, (unsigned char *)t, signed_len), 1);
        EVP_MD_CTX_free(md);
        EVP_PKEY_free(key);
    } else if (how == SIG_JUNK) {
        sig_len = sizeof sig;
        randombytes_buf(sig, sig_len);
    } else if (how == SIG_HS256) {
        FILE *fp = fopen(key_path, "r");
        assert_non_null(fp);
        char secret[1024];
        size_t n = fread(secret, 1, sizeof secret, fp);
        fclose(fp);
        unsigned int mac_len = 0;
        assert_non_null(
            HMAC(EVP_sha256(), secret, (int)n, (unsigned char *)t, signed_len, sig, &mac_len));
        sig_len = mac_len;
    }
    if (sig_len > 0)
        b64_append(t, cap, sig, sig_len);
    return t;
}

/* A header naming the key, and a payload with every claim right but the one replaced. */
static char *header_for(const struct gf_auth_keys *k)
{
    char *h = malloc(128);
    assert_non_null(h);
    snprintf(h, 128, "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}", gf_auth_signing_kid(k));
    return h;
}

static char *payload_with(const char *key, const char *json_value)
{
    static const char *const names[] = {"iss", "aud", "sub", "name", "role",
                                        "iat", "nbf", "exp", "jti"};
    static const char *const values[] = {
        "\"" ISS "\"", "\"" AUD "\"", "\"42\"",
        "\"alice\"",   "\"user\"",    "1767225600",
        "1767225600",  "1767229200",  "\"0b0f6c1e-3c8e-4c1f-9a55-6a3c6a0f9a11\""};
    char *p = calloc(1, 8192);
    assert_non_null(p);
    strcat(p, "{");
    bool first = true;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        bool replaced = key != NULL && strcmp(key, names[i]) == 0;
        if (replaced && json_value == NULL)
            continue; /* the claim left out */
        sprintf(p + strlen(p), "%s\"%s\":%s", first ? "" : ",", names[i],
                replaced ? json_value : values[i]);
        first = false;
    }
    if (key != NULL && json_value != NULL && strstr(p, key) == NULL)
        sprintf(p + strlen(p), ",\"%s\":%s", key, json_value); /* an extra member */
    strcat(p, "}");
    return p;
}

/* A token signed by the set's own signing key with one claim replaced (NULL: left out). */
static enum gf_auth_error verify_claim(struct fix *f, const struct gf_auth_keys *k,
                                       const char *claim, const char *json_value)
{
    char *h = header_for(k);
    char *p = payload_with(claim, json_value);
    char *t = forge(h, p, SIG_ED25519, path_of(f, f->spare, "a.pem"));
    enum gf_auth_error e = verify(k, t, NOW);
    free(t);
    free(p);
    free(h);
    return e;
}

/* ---- tests --------------------------------------------------------------------------------- */

static void sign_then_verify_round_trip(void **state)
{
    struct fix *f = *state;
    make_pair(f, "a");
    struct gf_auth_keys *signer = load(f->keys, path_of(f, f->spare, "a.pem"), ISS, AUD);
    struct gf_auth_keys *verifier = load(f->keys, NULL, ISS, AUD);
    assert_true(gf_auth_can_sign(signer));
    assert_false(gf_auth_can_sign(verifier));
    assert_string_equal(gf_auth_signing_kid(verifier), "");
    assert_int_equal(gf_auth_key_count(signer), 1); /* the same key in dir and as signer */
    assert_int_equal(gf_auth_key_count(verifier), 1);
    assert_int_equal(strlen(gf_auth_signing_kid(signer)), GF_AUTH_KID_LEN);

    struct gf_auth_claims c = {.user_id = 9007199254740992LL, .role = GF_ROLE_ADMIN};
    strcpy(c.name, "Zoë \"the admin\"");
    char *t = NULL;
    assert_int_equal(gf_auth_sign(signer, &c, NOW, 3600, &t), GF_OK);
    assert_int_equal(c.iat, NOW);
    assert_int_equal(c.nbf, NOW);
    assert_int_equal(c.exp, NOW + 3600);
    assert_true(gf_uuid_valid(c.jti, strlen(c.jti)));
    assert_string_equal(c.kid, gf_auth_signing_kid(signer));

    struct gf_auth_claims out;
    memset(&out, 0, sizeof out);
    assert_int_equal(gf_auth_verify(verifier, t, strlen(t), NOW + 10, 5, &out), GF_AUTH_OK);
    assert_int_equal(out.user_id, c.user_id);
    assert_string_equal(out.name, c.name);
    assert_int_equal(out.role, GF_ROLE_ADMIN);
    assert_int_equal(out.iat, NOW);
    assert_int_equal(out.nbf, NOW);
    assert_int_equal(out.exp, NOW + 3600);
    assert_string_equal(out.jti, c.jti);
    assert_string_equal(out.kid, c.kid);
    /* The token is not NUL-terminated where the header puts it: len decides. */
    char *copy = malloc(strlen(t) + 8);
    memcpy(copy, t, strlen(t));
    memcpy(copy + strlen(t), ".garbag", 7);
    assert_int_equal(gf_auth_verify(verifier, copy, strlen(t), NOW, 0, NULL), GF_AUTH_OK);
    free(copy);

    /* The header is exactly what the interface promises. */
    char *dot = strchr(t, '.');
    unsigned char hdr[256];
    size_t hlen = 0;
    assert_int_equal(sodium_base642bin(hdr, sizeof hdr - 1, t, (size_t)(dot - t), NULL, &hlen, NULL,
                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                     0);
    hdr[hlen] = '\0';
    char want[128];
    snprintf(want, sizeof want, "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}", c.kid);
    assert_string_equal((char *)hdr, want);

    /* Each token has its own jti. */
    struct gf_auth_claims c2 = c;
    char *t2 = NULL;
    assert_int_equal(gf_auth_sign(signer, &c2, NOW, 3600, &t2), GF_OK);
    assert_string_not_equal(c.jti, c2.jti);
    free(t2);
    free(t);
    gf_auth_keys_free(signer);
    gf_auth_keys_free(verifier);
    gf_auth_keys_free(NULL);
}

static void sign_refuses_bad_claims(void **state)
{
    struct fix *f = *state;
    make_pair(f, "a");
    struct gf_auth_keys *k = load(NULL, path_of(f, f->spare, "a.pem"), ISS, AUD);
    struct gf_auth_keys *verifier = load(f->keys, NULL, ISS, AUD);
    struct {
        int64_t id;
        const char *name;
        enum gf_role role;
        int64_t now, ttl;
    } bad[] = {
        {0, "alice", GF_ROLE_USER, NOW, 60},
        {-1, "alice", GF_ROLE_USER, NOW, 60},
        {9007199254740993LL, "alice", GF_ROLE_USER, NOW, 60},
        {1, "", GF_ROLE_USER, NOW, 60},
        {1, "\xff\xfe", GF_ROLE_USER, NOW, 60}, /* not UTF-8 */
        {1, "alice", GF_ROLE_NONE, NOW, 60},
        {1, "alice", (enum gf_role)7, NOW, 60},
        {1, "alice", GF_ROLE_USER, NOW, 0},
        {1, "alice", GF_ROLE_USER, NOW, 367 * 86400},
        {1, "alice", GF_ROLE_USER, -1, 60},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct gf_auth_claims c = {.user_id = bad[i].id, .role = bad[i].role};
        snprintf(c.name, sizeof c.name, "%s", bad[i].name);
        char *t = NULL;
        assert_int_equal(gf_auth_sign(k, &c, bad[i].now, bad[i].ttl, &t), GF_EINVAL);
        assert_null(t);
    }
    /* A name of 255 bytes is signed (and the token stays within the limit), 256 is not. */
    struct gf_auth_claims c = {.user_id = 1, .role = GF_ROLE_USER};
    memset(c.name, '\x01', GF_AUTH_NAME_MAX); /* escaped as \u0001: the longest JSON */
    char *t = NULL;
    assert_int_equal(gf_auth_sign(k, &c, NOW, 60, &t), GF_OK);
    assert_true(strlen(t) <= GF_AUTH_TOKEN_MAX);
    struct gf_auth_claims out;
    assert_int_equal(gf_auth_verify(verifier, t, strlen(t), NOW, 0, &out), GF_AUTH_OK);
    assert_int_equal(strlen(out.name), GF_AUTH_NAME_MAX);
    free(t);
    struct gf_auth_claims too_long = {.user_id = 1, .role = GF_ROLE_USER};
    memset(too_long.name, 'x', sizeof too_long.name); /* no NUL within 256 bytes */
    t = NULL;
    assert_int_equal(gf_auth_sign(k, &too_long, NOW, 60, &t), GF_EINVAL);
    /* A set that only verifies cannot sign. */
    assert_int_equal(gf_auth_sign(verifier, &c, NOW, 60, &t), GF_EINTERNAL);
    assert_null(t);
    gf_auth_keys_free(k);
    gf_auth_keys_free(verifier);
}

static void expired_and_not_yet_valid_tokens_are_refused_beyond_the_leeway(void **state)
{
    struct fix *f = *state;
    make_pair(f, "a");
    struct gf_auth_keys *k = load(f->keys, path_of(f, f->spare, "a.pem"), ISS, AUD);
    char *t = sign_for(k, 7, "bob", GF_ROLE_USER, NOW, 60);
    size_t n = strlen(t);
    assert_int_equal(gf_auth_verify(k, t, n, NOW + 59, 0, NULL), GF_AUTH_OK);
    assert_int_equal(gf_auth_verify(k, t, n, NOW + 60, 0, NULL), GF_AUTH_EXPIRED);
    assert_int_equal(gf_auth_verify(k, t, n, NOW + 64, 5, NULL), GF_AUTH_OK);
    assert_int_equal(gf_auth_verify(k, t, n, NOW + 65, 5, NULL), GF_AUTH_EXPIRED);
    assert_int_equal(gf_auth_verify(k, t, n, NOW - 1, 0, NULL), GF_AUTH_NOT_YET_VALID);
    assert_int_equal(gf_auth_verify(k, t, n, NOW - 5, 5, NULL), GF_AUTH_OK);
    assert_int_equal(gf_auth_verify(k, t, n, NOW - 6, 5, NULL), GF_AUTH_NOT_YET_VALID);
    /* Extreme clocks and leeways saturate instead of overflowing. */
    assert_int_equal(gf_auth_verify(k, t, n, INT64_MIN, INT64_MAX, NULL), GF_AUTH_NOT_YET_VALID);
    assert_int_equal(gf_auth_verify(k, t, n, INT64_MAX, INT64_MAX, NULL), GF_AUTH_EXPIRED);
    assert_int_equal(gf_auth_verify(k, t, n, NOW + 30, -100, NULL), GF_AUTH_OK);
    free(t);
    gf_auth_keys_free(k);
}

/* Replaces the byte at i with another base64url character. */
static void flip(char *t, size_t i)
{
    t[i] = t[i] == 'A' ? 'B' : 'A';
}

static void tampered_tokens_fail_the_signature(void **state)
{
    struct fix *f = *state;
    make_pair(f, "a");
    struct gf_auth_keys *k = load(f->keys, path_of(f, f->spare, "a.pem"), ISS, AUD);
    char *t = sign_for(k, 7, "bob", GF_ROLE_USER, NOW, 60);
    size_t n = strlen(t);
    char *dot2 = strrchr(t, '.');
    size_t sig = (size_t)(dot2 - t) + 1;
    assert_int_equal(n - sig, 86);

    char *m = strdup(t);
    flip(m, sig + 20); /* a byte of the signature */
    assert_int_equal(verify(k, m, NOW), GF_AUTH_BAD_SIGNATURE);
    strcpy(m, t);
    flip(m, strchr(t, '.') - t + 5); /* a byte of the payload */
    assert_int_equal(verify(k, m, NOW), GF_AUTH_BAD_SIGNATURE);
    /* The signature's last character carries 2 bits of padding that must be zero: a
     * non-canonical spelling of the same signature is refused, so tokens are not malleable. */
    strcpy(m, t);
    const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t v = (size_t)(strchr(alphabet, m[n - 1]) - alphabet);
    m[n - 1] = alphabet[v ^ 1];
    assert_int_equal(verify(k, m, NOW), GF_AUTH_BAD_SIGNATURE);
    /* Truncated, extended, and empty signatures. */
    strcpy(m, t);
    m[n - 1] = '\0';
    assert_int_equal(verify(k, m, NOW), GF_AUTH_BAD_SIGNATURE);
    strcpy(m, t);
    m[sig] = '\0';
    assert_int_equal(verify(k, m, NOW), GF_AUTH_BAD_SIGNATURE);
    free(m);
    m = malloc(n + 3);
    sprintf(m, "%sAA", t);
    assert_int_equal(verify(k, m, NOW), GF_AUTH_BAD_SIGNATURE);
    free(m);

    /* A user token whose payload says admin, without a new signature. */
    char *h = header_for(k);
    char *p_user = payload_with("role", "\"user\"");
    char *p_admin = payload_with("role", "\"admin\"");
    char *good = forge(h, p_user, SIG_ED25519, path_of(f, f->spare, "a.pem"));
    char *evil = forge(h, p_admin, SIG_NONE, NULL);
    assert_int_equal(verify(k, good, NOW), GF_AUTH_OK);
    char *spliced = malloc(strlen(evil) + 100);
    sprintf(spliced, "%s%s", evil, strrchr(good, '.') + 1);
    assert_int_equal(verify(k, spliced, NOW), GF_AUTH_BAD_SIGNATURE);
    free(spliced);
    free(good);
    free(evil);
    free(p_user);
    free(p_admin);
    free(h);
    free(t);
    gf_auth_keys_free(k);
}

static void algorithms_other_than_eddsa_are_refused(void **state)
{
    struct fix *f = *state;
    make_pair(f, "a");
    struct gf_auth_keys *k = load(f->keys, path_of(f, f->spare, "a.pem"), ISS, AUD);
    const char *kid = gf_auth_signing_kid(k);
    char *p = payload_with(NULL, NULL);
    const char *pub = path_of(f, f->keys, "a.pub.pem");
    char pub_path[256];
    strcpy(pub_path, pub);
    char priv_path[256];
    strcpy(priv_path, path_of(f, f->spare, "a.pem"));

    const char *algs[] = {"\"none\"",  "\"None\"",  "\"NONE\"",    "\"HS256\"",  "\"RS256\"",
                          "\"ES256\"", "\"EDDSA\"", "\"Ed25519\"", "\"EdDSA \"", "\"eddsa\"",
                          "\"\"",      "null",      "1",           "[\"EdDSA\"]"};
    for (size_t i = 0; i < sizeof algs / sizeof *algs; i++) {
        char h[256];
        snprintf(h, sizeof h, "{\"alg\":%s,\"kid\":\"%s\"}", algs[i], kid);
        enum forge_sig hows[] = {SIG_NONE, SIG_JUNK, SIG_ED25519, SIG_HS256};
        for (size_t j = 0; j < 4; j++) {
            char *t = forge(h, p, hows[j], hows[j] == SIG_HS256 ? pub_path : priv_path);
            assert_int_equal(verify(k, t, NOW), GF_AUTH_BAD_ALG);
            free(t);
        }
    }
    /* No alg at all. */
    char h[256];
    snprintf(h, sizeof h, "{\"kid\":\"%s\"}", kid);
    char *t = forge(h, p, SIG_ED25519, priv_path);
    assert_int_equal(verify(k, t, NOW), GF_AUTH_BAD_ALG);
    free(t);
    /* The classic confusion: HS256 keyed with the public key's PEM, as a library that takes
     * "the key" for whatever alg the header names would accept it. */
    snprintf(h, sizeof h, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
    t = forge(h, p, SIG_HS256, pub_path);
    assert_int_equal(verify(k, t, NOW), GF_AUTH_BAD_ALG);
    free(t);
    /* alg none with an empty signature: "header.payload." */
    t = forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", p, SIG_NONE, NULL);
    assert_int_equal(t[strlen(t) - 1], '.');
    assert_int_equal(verify(k, t, NOW), GF_AUTH_BAD_ALG);
    free(t);
    /* Headers EdDSA must not carry: crit, another typ, duplicate members. */
    const char *bad_headers[] = {
        "{\"alg\":\"EdDSA\",\"kid\":\"%s\",\"crit\":[\"exp\"]}",
        "{\"alg\":\"EdDSA\",\"kid\":\"%s\",\"typ\":\"JOSE+JSON\"}",
        "{\"alg\":\"EdDSA\",\"kid\":\"%s\",\"alg\":\"EdDSA\"}",
    };
    for (size_t i = 0; i < sizeof bad_headers / sizeof *bad_headers; i++) {
        snprintf(h, sizeof h, bad_headers[i], kid);
        t = forge(h, p, SIG_ED25519, priv_path);
        assert_int_equal(verify(k, t, NOW), GF_AUTH_MALFORMED);
        free(t);
    }
    free(p);
    gf_auth_keys_free(k);
}

static void unknown_and_missing_kids_are_refused(void **state)
{
    struct fix *f = *state;
    make_pair(f, "a");
    /* b is not in the key directory. */
    assert_int_equal(gf_auth_keygen(path_of(f, f->spare, "b.pem"), f->root), GF_EEXISTS);
    char bpriv[256], bpub[256];
    snprintf(bpriv, sizeof bpriv, "%s/b.pem", f->spare);
    snprintf(bpub, sizeof bpub, "%s/b.pub", f->spare);
    assert_int_equal(gf_auth_keygen(bpriv, bpub), GF_OK);
    struct gf_auth_keys *k = load(f->keys, NULL, ISS, AUD);
    struct gf_auth_keys *b = load(NULL, bpriv, ISS, AUD);
    char *t = sign_for(b, 1, "eve", GF_ROLE_ADMIN, NOW, 60);
    assert_int_equal(verify(b, t, NOW), GF_AUTH_OK);
    assert_int_equal(verify(k, t, NOW), GF_AUTH_UNKNOWN_KID);
    free(t);

    char *p = payload_with(NULL, NULL);
    char priv[256];
    strcpy(priv, path_of(f, f->spare, "a.pem"));
    struct gf_auth_keys *a = load(NULL, priv, ISS, AUD);
    char h[256];
    const char *kids[] = {NULL, "\"\"", "1", "null", "\"AAAAAAAAAAAAAAAA\"", "\"%s \"", "[\"%s\"]"};
    for (size_t i = 0; i < sizeof kids / sizeof *kids; i++) {
        if (kids[i] == NULL) {
            strcpy(h, "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}");
        } else {
            char kid[64];
            snprintf(kid, sizeof kid, kids[i], gf_auth_signing_kid(a));
            snprintf(h, sizeof h, "{\"alg\":\"EdDSA\",\"kid\":%s}", kid);
        }
        t = forge(h, p, SIG_ED25519, priv);
        assert_int_equal(verify(k, t, NOW), GF_AUTH_UNKNOWN_KID);
        free(t);
    }
    /* The key's own kid, signed by another key: a signature failure, not a kid one. */
    char *ha = header_for(a);
    t = forge(ha, p, SIG_ED25519, bpriv);
    assert_int_equal(verify(k, t, NOW), GF_AUTH_BAD_SIGNATURE);
    free(t);
    free(ha);
    free(p);
    gf_auth_keys_free(a);
    gf_auth_keys_free(b);
    gf_auth_keys_free(k);
}

static void issuer_and_audience_must_match(void **state)
{
    struct fix *f = *state;
    make_pair(f, "a");
    const char *priv = path_of(f, f->spare, "a.pem");
    char privp[256];
    strcpy(privp, priv);
    struct gf_auth_keys *k = load(f->keys, privp, ISS, AUD);
    struct gf_auth_keys *other_iss = load(f->keys, NULL, "someone-else", AUD);
    struct gf_auth_keys *other_aud = load(f->keys, NULL, ISS, "gf-admin");
    char *t = sign_for(k, 3, "carol", GF_ROLE_USER, NOW, 60);
    assert_int_equal(verify(k, t, NOW), GF_AUTH_OK);
    assert_int_equal(verify(other_iss, t, NOW), GF_AUTH_BAD_ISSUER);
    assert_int_equal(verify(other_aud, t, NOW), GF_AUTH_BAD_AUDIENCE);
    free(t);

    assert_int_equal(verify_claim(f, k, "aud", "[\"x\",\"" AUD "\"]"), GF_AUTH_OK);
    assert_int_equal(verify_claim(f, k, "aud", "[\"x\",\"y\"]"), GF_AUTH_BAD_AUDIENCE);
    assert_int_equal(verify_claim(f, k, "aud", "[]"), GF_AUTH_BAD_AUDIENCE);
    assert_int_equal(verify_claim(f, k, "aud", "[[\"" AUD "\"]]"), GF_AUTH_BAD_AUDIENCE);
    assert_int_equal(verify_claim(f, k, "aud", "\"" AUD "x\""), GF_AUTH_BAD_AUDIENCE);
    assert_int_equal(verify_claim(f, k, "aud", "\"g\""), GF_AUTH_BAD_AUDIENCE);
    assert_int_equal(verify_claim(f, k, "aud", NULL), GF_AUTH_BAD_AUDIENCE);
    assert_int_equal(verify_claim(f, k, "iss", NULL), GF_AUTH_BAD_ISSUER);
    assert_int_equal(verify_claim(f, k, "iss", "\"" ISS "\\u0000\""), GF_AUTH_MALFORMED);
    assert_int_equal(verify_claim(f, k, "iss", "[\"" ISS "\"]"), GF_AUTH_BAD_ISSUER);
    gf_auth_keys_free(k);
    gf_auth_keys_free(other_iss);
    gf_auth_keys_free(other_aud);
}

static void claims_are_checked_after_the_signature(void **state)
{
    struct fix *f = *state;
    make_pair(f, "a");
    char priv[256];
    strcpy(priv, path_of(f, f->spare, "a.pem"));
    struct gf_auth_keys *k = load(f->keys, priv, ISS, AUD);
    assert_int_equal(verify_claim(f, k, NULL, NULL), GF_AUTH_OK);
    const struct {
        const char *claim, *value;
        enum gf_auth_error want;
    } cases[] = {
        {"role", "\"superuser\"", GF_AUTH_BAD_CLAIMS},
        {"role", "\"Admin\"", GF_AUTH_BAD_CLAIMS},
        {"role", "\"admin\\u0000\"", GF_AUTH_MALFORMED}, /* jansson refuses NUL */
        {"role", "\"\"", GF_AUTH_BAD_CLAIMS},
        {"role", "2", GF_AUTH_BAD_CLAIMS},
        {"role", NULL, GF_AUTH_BAD_CLAIMS},
        {"role", "\"admin\"", GF_AUTH_OK},
        {"sub", "\"abc\"", GF_AUTH_BAD_CLAIMS},
        {"sub", "\"0\"", GF_AUTH_BAD_CLAIMS},
        {"sub", "\"007\"", GF_AUTH_BAD_CLAIMS},
        {"sub", "\"-1\"", GF_AUTH_BAD_CLAIMS},
        {"sub", "\"+1\"", GF_AUTH_BAD_CLAIMS},
        {"sub", "\"1 \"", GF_AUTH_BAD_CLAIMS},
        {"sub", "\"\"", GF_AUTH_BAD_CLAIMS},
        {"sub", "\"9007199254740993\"", GF_AUTH_BAD_CLAIMS},
        {"sub", "\"99999999999999999999999\"", GF_AUTH_BAD_CLAIMS},
        {"sub", "42", GF_AUTH_BAD_CLAIMS},
        {"sub", NULL, GF_AUTH_BAD_CLAIMS},
        {"sub", "\"9007199254740992\"", GF_AUTH_OK},
        {"sub", "\"1\"", GF_AUTH_OK},
        {"name", "\"\"", GF_AUTH_BAD_CLAIMS},
        {"name", "\"a\\u0000b\"", GF_AUTH_MALFORMED},
        {"name", "7", GF_AUTH_BAD_CLAIMS},
        {"name", NULL, GF_AUTH_BAD_CLAIMS},
        {"jti", "\"not-a-uuid\"", GF_AUTH_BAD_CLAIMS},
        {"jti", NULL, GF_AUTH_BAD_CLAIMS},
        {"iat", NULL, GF_AUTH_BAD_CLAIMS},
        {"iat", "\"1767225600\"", GF_AUTH_BAD_CLAIMS},
        {"exp", NULL, GF_AUTH_BAD_CLAIMS},
        {"exp", "1767229200.5", GF_AUTH_BAD_CLAIMS},
        {"exp", "\"1767229200\"", GF_AUTH_BAD_CLAIMS},
        {"exp", "1767225600", GF_AUTH_EXPIRED},
        {"exp", "99999999999999999999", GF_AUTH_MALFORMED}, /* over jansson's integers */
        {"nbf", NULL, GF_AUTH_BAD_CLAIMS},
        {"nbf", "1767225601", GF_AUTH_NOT_YET_VALID},
        {"role", "\"user\",\"role\":\"admin\"", GF_AUTH_MALFORMED}, /* duplicate member */
        {"extra", "{\"nested\":[1,2,{}]}", GF_AUTH_OK},             /* unknown claims pass */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        enum gf_auth_error e = verify_claim(f, k, cases[i].claim, cases[i].value);
        if (e != cases[i].want)
            fail_msg("%s=%s: got %d, want %d", cases[i].claim,
                     cases[i].value ? cases[i].value : "(absent)", e, cases[i].want);
    }
    /* A name of 256 bytes. */
    char name[300];
    name[0] = '"';
    memset(name + 1, 'n', 256);
    strcpy(name + 257, "\"");
    assert_int_equal(verify_claim(f, k, "name", name), GF_AUTH_BAD_CLAIMS);
    name[256] = '"';
    name[257] = '\0';
    assert_int_equal(verify_claim(f, k, "name", name), GF_AUTH_OK);
    /* The payload is not an object, or not JSON at all, though signed. */
    char *h = header_for(k);
    const char *payloads[] = {"[]", "\"x\"", "nul", "", "{\"a\":1}x"};
    for (size_t i = 0; i < sizeof payloads / sizeof *payloads; i++) {
        char *t = forge(h, payloads[i], SIG_ED25519, priv);
        assert_int_not_equal(verify(k, t, NOW), GF_AUTH_OK);
        free(t);
    }
    free(h);
    gf_auth_keys_free(k);
}

static void garbage_of_every_shape_is_malformed(void **state)
{
    struct fix *f = *state;
    make_pair(f, "a");
    struct gf_auth_keys *k = load(f->keys, path_of(f, f->spare, "a.pem"), ISS, AUD);
    char *t = sign_for(k, 7, "bob", GF_ROLE_USER, NOW, 60);
    const char *garbage[] = {"",
                             ".",
                             "..",
                             "...",
                             "a",
                             "a.b",
                             "a.b.c.d",
                             ".b.c",
                             "a..c",
                             "Bearer a.b.c",
                             " a.b.c",
                             "a.b.c ",
                             "a+b.c.d",
                             "a/b.c.d",
                             "YQ==.YQ.YQ",
                             "e30.e30.",
                             "e30.e30.e30",
                             "W10.e30.e30",
                             "InN0ciI.e30.e30",
                             "eyJhbGciOiJFZERTQSJ9",
                             "eyJ.e30.e30",
                             "A.e30.e30",
                             "AB.e30.e30",
                             "e30\n.e30.e30",
                             "\xc3\xa9.e30.e30"};
    for (size_t i = 0; i < sizeof garbage / sizeof *garbage; i++) {
        enum gf_auth_error e = verify(k, garbage[i], NOW);
        if (e != GF_AUTH_MALFORMED && e != GF_AUTH_BAD_ALG)
            fail_msg("\"%s\": got %d", garbage[i], e);
    }
    assert_int_equal(gf_auth_verify(k, NULL, 10, NOW, 0, NULL), GF_AUTH_MALFORMED);
    assert_int_equal(gf_auth_verify(NULL, t, strlen(t), NOW, 0, NULL), GF_AUTH_MALFORMED);
    assert_int_equal(gf_auth_verify(k, t, 0, NOW, 0, NULL), GF_AUTH_MALFORMED);
    /* A NUL inside the given length. */
    char *nul = strdup(t);
    nul[10] = '\0';
    assert_int_equal(gf_auth_verify(k, nul, strlen(t), NOW, 0, NULL), GF_AUTH_MALFORMED);
    free(nul);
    /* Oversized: a well-formed, well-signed token over 4096 bytes is not even parsed. */
    char *h = header_for(k);
    char value[3200];
    value[0] = '"';
    memset(value + 1, 'x', sizeof value - 3);
    strcpy(value + sizeof value - 2, "\"");
    char *p = payload_with("pad", value);
    char priv[256];
    strcpy(priv, path_of(f, f->spare, "a.pem"));
    char *big = forge(h, p, SIG_ED25519, priv);
    assert_true(strlen(big) > GF_AUTH_TOKEN_MAX);
    assert_int_equal(verify(k, big, NOW), GF_AUTH_MALFORMED);
    char *huge = malloc(1 << 20);
    memset(huge, 'A', 1 << 20);
    huge[100] = '.';
    huge[200] = '.';
    assert_int_equal(gf_auth_verify(k, huge, 1 << 20, NOW, 0, NULL), GF_AUTH_MALFORMED);
    free(huge);
    free(big);
    free(p);
    free(h);
    free(t);
    gf_auth_keys_free(k);
}

static void rotation_keeps_old_tokens_until_their_key_leaves_the_directory(void **state)
{
    struct fix *f = *state;
    make_pair(f, "2026-01-a");
    make_pair(f, "2026-02-b");
    char apriv[256], bpriv[256], bpub[256];
    snprintf(apriv, sizeof apriv, "%s/2026-01-a.pem", f->spare);
    snprintf(bpriv, sizeof bpriv, "%s/2026-02-b.pem", f->spare);
    snprintf(bpub, sizeof bpub, "%s/2026-02-b.pub.pem", f->keys);
    struct gf_auth_keys *sa = load(f->keys, apriv, ISS, AUD);
    struct gf_auth_keys *sb = load(f->keys, bpriv, ISS, AUD);
    assert_string_not_equal(gf_auth_signing_kid(sa), gf_auth_signing_kid(sb));
    char *ta = sign_for(sa, 1, "a", GF_ROLE_USER, NOW, 60);
    char *tb = sign_for(sb, 2, "b", GF_ROLE_USER, NOW, 60);
    struct gf_auth_keys *v = load(f->keys, NULL, ISS, AUD);
    assert_int_equal(gf_auth_key_count(v), 2);
    assert_int_equal(verify(v, ta, NOW), GF_AUTH_OK);
    assert_int_equal(verify(v, tb, NOW), GF_AUTH_OK);
    gf_auth_keys_free(v);

    /* b leaves the directory: the reloaded set no longer knows its tokens. */
    assert_int_equal(unlink(bpub), 0);
    v = load(f->keys, NULL, ISS, AUD);
    assert_int_equal(gf_auth_key_count(v), 1);
    assert_int_equal(verify(v, ta, NOW), GF_AUTH_OK);
    assert_int_equal(verify(v, tb, NOW), GF_AUTH_UNKNOWN_KID);
    gf_auth_keys_free(v);
    /* ... but a set that signs with b still knows b. */
    v = load(f->keys, bpriv, ISS, AUD);
    assert_int_equal(gf_auth_key_count(v), 2);
    assert_int_equal(verify(v, tb, NOW), GF_AUTH_OK);
    gf_auth_keys_free(v);
    /* A private key in the directory verifies too (its public half), counted once. */
    run("cp %s %s/a-private.pem", apriv, f->keys);
    v = load(f->keys, NULL, ISS, AUD);
    assert_int_equal(gf_auth_key_count(v), 1);
    assert_false(gf_auth_can_sign(v));
    assert_int_equal(verify(v, ta, NOW), GF_AUTH_OK);
    gf_auth_keys_free(v);
    free(ta);
    free(tb);
    gf_auth_keys_free(sa);
    gf_auth_keys_free(sb);
}

static void keys_made_by_the_openssl_tool_load(void **state)
{
    struct fix *f = *state;
    if (!have_openssl())
        skip();
    run("openssl genpkey -algorithm ed25519 -out %s/o.pem 2>/dev/null", f->spare);
    run("openssl pkey -in %s/o.pem -pubout -out %s/o.pub.pem 2>/dev/null", f->spare, f->keys);
    char priv[256];
    snprintf(priv, sizeof priv, "%s/o.pem", f->spare);
    struct gf_auth_keys *s = load(NULL, priv, ISS, AUD);
    struct gf_auth_keys *v = load(f->keys, NULL, ISS, AUD);
    char *t = sign_for(s, 5, "dora", GF_ROLE_USER, NOW, 60);
    assert_int_equal(verify(v, t, NOW), GF_AUTH_OK);
    free(t);
    gf_auth_keys_free(s);
    gf_auth_keys_free(v);

    /* And the other way round: the openssl tool verifies what gf-keygen's key signed. */
    make_pair(f, "g");
    run("openssl pkey -in %s/g.pem -pubout -out %s/g.check.pem 2>/dev/null", f->spare, f->spare);
    run("cmp -s %s/g.check.pem %s/g.pub.pem", f->spare, f->keys);
}

static void keys_of_other_kinds_are_refused_with_a_clear_error(void **state)
{
    struct fix *f = *state;
    if (!have_openssl())
        skip();
    const char *e;
    run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out %s/rsa.pem 2>/dev/null",
        f->keys);
    e = load_err(f->keys, NULL);
    assert_non_null(strstr(e, "rsa.pem: not an Ed25519 key (RSA)"));
    run("openssl pkey -in %s/rsa.pem -pubout -out %s/rsa.pub.pem 2>/dev/null", f->keys, f->spare);
    unlink(path_of(f, f->keys, "rsa.pem"));
    run("mv %s/rsa.pub.pem %s/", f->spare, f->keys);
    e = load_err(f->keys, NULL);
    assert_non_null(strstr(e, "rsa.pub.pem: not an Ed25519 key (RSA)"));
    unlink(path_of(f, f->keys, "rsa.pub.pem"));

    run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s/p256.pem "
        "2>/dev/null",
        f->keys);
    e = load_err(f->keys, NULL);
    assert_non_null(strstr(e, "p256.pem: not an Ed25519 key (EC)"));
    /* The traditional "EC PRIVATE KEY" form. */
    run("openssl ec -in %s/p256.pem -out %s/p256-trad.pem 2>/dev/null", f->keys, f->spare);
    unlink(path_of(f, f->keys, "p256.pem"));
    e = load_err(NULL, path_of(f, f->spare, "p256-trad.pem"));
    assert_non_null(strstr(e, "p256-trad.pem: not an Ed25519 key (a PEM \"EC PRIVATE KEY\")"));
    /* Encrypted PKCS#8 is refused without asking for a passphrase. */
    run("openssl genpkey -algorithm ed25519 -aes-128-cbc -pass pass:secret -out %s/enc.pem "
        "2>/dev/null",
        f->spare);
    e = load_err(NULL, path_of(f, f->spare, "enc.pem"));
    assert_non_null(strstr(e, "enc.pem: an encrypted private key"));
    /* A certificate. */
    run("openssl req -x509 -newkey ed25519 -nodes -keyout %s/c.key -out %s/cert.pem -subj /CN=x "
        "-days 1 2>/dev/null",
        f->spare, f->spare);
    e = load_err(NULL, path_of(f, f->spare, "cert.pem"));
    assert_non_null(strstr(e, "not an Ed25519 key (a PEM \"CERTIFICATE\")"));
}

static void bad_key_sets_are_refused_naming_the_file(void **state)
{
    struct fix *f = *state;
    const char *e;
    e = load_err(f->keys, NULL);
    assert_non_null(strstr(e, "no *.pem key"));
    e = load_err(NULL, NULL);
    assert_non_null(strstr(e, "no keys"));
    e = load_err(path_of(f, f->root, "absent"), NULL);
    assert_non_null(strstr(e, "absent: No such file or directory"));
    e = load_err(NULL, path_of(f, f->root, "absent.pem"));
    assert_non_null(strstr(e, "absent.pem: No such file or directory"));

    /* Files that are not keys; files not named *.pem are not read. */
    FILE *fp = fopen(path_of(f, f->keys, "README"), "w");
    fputs("not a key", fp);
    fclose(fp);
    fp = fopen(path_of(f, f->keys, ".hidden.pem"), "w");
    fputs("not a key", fp);
    fclose(fp);
    e = load_err(f->keys, NULL);
    assert_non_null(strstr(e, "no *.pem key"));
    fp = fopen(path_of(f, f->keys, "junk.pem"), "w");
    fputs("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", fp);
    fclose(fp);
    e = load_err(f->keys, NULL);
    assert_non_null(strstr(e, "junk.pem: the PEM \"PUBLIC KEY\" does not decode"));
    fp = fopen(path_of(f, f->keys, "junk.pem"), "w");
    fputs("hello\n", fp);
    fclose(fp);
    e = load_err(f->keys, NULL);
    assert_non_null(strstr(e, "junk.pem: no PEM key in the file"));
    unlink(path_of(f, f->keys, "junk.pem"));

    /* Two keys in one file. */
    make_pair(f, "a");
    make_pair(f, "b");
    run("cat %s/a.pub.pem %s/b.pub.pem > %s/two.pem", f->keys, f->keys, f->spare);
    e = load_err(NULL, path_of(f, f->spare, "two.pem"));
    assert_non_null(strstr(e, "two.pem: "));
    run("mv %s/two.pem %s/two.pem", f->spare, f->keys);
    e = load_err(f->keys, NULL);
    assert_non_null(strstr(e, "two.pem: more than one PEM block"));
    unlink(path_of(f, f->keys, "two.pem"));
    /* A public key cannot sign. */
    e = load_err(f->keys, path_of(f, f->keys, "a.pub.pem"));
    assert_non_null(strstr(e, "a.pub.pem: a public key cannot sign"));
    /* Issuer and audience are required. */
    char err[256];
    assert_null(gf_auth_keys_load(f->keys, NULL, "", AUD, err, sizeof err));
    assert_non_null(strstr(err, "issuer"));
    assert_null(gf_auth_keys_load(f->keys, NULL, ISS, NULL, err, sizeof err));
    assert_null(gf_auth_keys_load(f->keys, NULL, ISS, "a b", err, sizeof err));
    /* A directory of a key named *.pem is not a key. */
    assert_int_equal(mkdir(path_of(f, f->keys, "dir.pem"), 0700), 0);
    e = load_err(f->keys, NULL);
    assert_non_null(strstr(e, "dir.pem: not a regular file"));
    rmdir(path_of(f, f->keys, "dir.pem"));
    /* err may be NULL. */
    assert_null(gf_auth_keys_load(NULL, NULL, ISS, AUD, NULL, 0));
    struct gf_auth_keys *k = load(f->keys, NULL, ISS, AUD);
    assert_int_equal(gf_auth_key_count(k), 2);
    gf_auth_keys_free(k);
}

static void keygen_writes_private_0600_public_0644_and_never_overwrites(void **state)
{
    struct fix *f = *state;
    make_pair(f, "a");
    struct stat sb;
    assert_int_equal(stat(path_of(f, f->spare, "a.pem"), &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(stat(path_of(f, f->keys, "a.pub.pem"), &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0644);
    char priv[256], pub[256], other[256];
    snprintf(priv, sizeof priv, "%s/a.pem", f->spare);
    snprintf(pub, sizeof pub, "%s/a.pub.pem", f->keys);
    snprintf(other, sizeof other, "%s/new.pem", f->spare);
    assert_int_equal(gf_auth_keygen(priv, other), GF_EEXISTS);
    assert_int_equal(stat(other, &sb), -1);
    /* The public file exists: the new private one is removed again. */
    assert_int_equal(gf_auth_keygen(other, pub), GF_EEXISTS);
    assert_int_equal(stat(other, &sb), -1);
    assert_int_equal(gf_auth_keygen(other, path_of(f, f->root, "absent/x.pem")), GF_EUNAVAILABLE);
    assert_int_equal(stat(other, &sb), -1);
    assert_int_equal(gf_auth_keygen(other, other), GF_EINVAL);
    assert_int_equal(gf_auth_keygen(NULL, other), GF_EINVAL);
    assert_int_equal(gf_auth_keygen("", other), GF_EINVAL);
}

struct race {
    const struct gf_auth_keys *k;
    const char *token;
    int ok;
};

static void *verify_many(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < 200; i++) {
        struct gf_auth_claims c;
        if (gf_auth_verify(r->k, r->token, strlen(r->token), NOW, 0, &c) == GF_AUTH_OK &&
            c.user_id == 11)
            r->ok++;
    }
    return NULL;
}

static void one_key_set_serves_many_threads(void **state)
{
    struct fix *f = *state;
    make_pair(f, "a");
    struct gf_auth_keys *k = load(f->keys, path_of(f, f->spare, "a.pem"), ISS, AUD);
    char *t = sign_for(k, 11, "t", GF_ROLE_USER, NOW, 60);
    pthread_t th[4];
    struct race r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (struct race){k, t, 0};
        assert_int_equal(pthread_create(&th[i], NULL, verify_many, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(r[i].ok, 200);
    }
    free(t);
    gf_auth_keys_free(k);
}

static void roles_and_messages(void **state)
{
    (void)state;
    assert_string_equal(gf_role_name(GF_ROLE_USER), "user");
    assert_string_equal(gf_role_name(GF_ROLE_ADMIN), "admin");
    assert_string_equal(gf_role_name(GF_ROLE_NONE), "");
    assert_string_equal(gf_role_name((enum gf_role)42), "");
    enum gf_role r = GF_ROLE_NONE;
    assert_true(gf_role_parse("admin", &r));
    assert_int_equal(r, GF_ROLE_ADMIN);
    assert_true(gf_role_parse("user", &r));
    assert_int_equal(r, GF_ROLE_USER);
    assert_false(gf_role_parse("Admin", &r));
    assert_false(gf_role_parse("", &r));
    assert_false(gf_role_parse(NULL, &r));
    assert_int_equal(r, GF_ROLE_USER);
    assert_string_equal(gf_auth_error_message(GF_AUTH_EXPIRED), "the token has expired");
    for (int i = GF_AUTH_OK; i <= GF_AUTH_BAD_CLAIMS + 1; i++) {
        const char *m = gf_auth_error_message((enum gf_auth_error)i);
        assert_non_null(m);
        assert_true(strncmp(m, "the token", 9) == 0);
        for (int j = GF_AUTH_OK; j < i; j++)
            assert_string_not_equal(m, gf_auth_error_message((enum gf_auth_error)j));
    }
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void passwords_hash_and_verify_with_argon2id(void **state)
{
    (void)state;
    const char *why = NULL;
    assert_false(gf_auth_password_ok(NULL, &why));
    assert_string_equal(why, "a password is required");
    assert_false(gf_auth_password_ok("1234567", &why));
    assert_non_null(strstr(why, "at least 8"));
    assert_true(gf_auth_password_ok("12345678", &why));
    char *long_pw = malloc(1026);
    memset(long_pw, 'p', 1025);
    long_pw[1025] = '\0';
    assert_false(gf_auth_password_ok(long_pw, &why));
    assert_non_null(strstr(why, "at most 1024"));
    long_pw[1024] = '\0';
    assert_true(gf_auth_password_ok(long_pw, NULL));

    char h[GF_AUTH_HASH_SIZE];
    assert_int_equal(gf_auth_password_hash("short", h), GF_EINVAL);
    assert_int_equal(gf_auth_password_hash(NULL, h), GF_EINVAL);
    assert_int_equal(gf_auth_password_hash("correct horse battery", h), GF_OK);
    assert_true(strncmp(h, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0);
    assert_true(gf_auth_password_verify(h, "correct horse battery"));
    assert_false(gf_auth_password_verify(h, "correct horse battery "));
    assert_false(gf_auth_password_verify(h, "wrong password"));
    assert_false(gf_auth_password_verify(h, ""));
    assert_false(gf_auth_password_verify(h, NULL));
    assert_false(gf_auth_password_needs_rehash(h));
    /* Two hashes of one password differ (salt). */
    char h2[GF_AUTH_HASH_SIZE];
    assert_int_equal(gf_auth_password_hash("correct horse battery", h2), GF_OK);
    assert_string_not_equal(h, h2);

    /* The longest password. */
    char hl[GF_AUTH_HASH_SIZE];
    assert_int_equal(gf_auth_password_hash(long_pw, hl), GF_OK);
    assert_true(gf_auth_password_verify(hl, long_pw));
    long_pw[1024] = 'p'; /* 1025 bytes: never verifies */
    assert_false(gf_auth_password_verify(hl, long_pw));
    free(long_pw);

    /* NULL and malformed hashes verify false. */
    assert_false(gf_auth_password_verify(NULL, "correct horse battery"));
    assert_false(gf_auth_password_verify("", "correct horse battery"));
    assert_false(gf_auth_password_verify("$argon2id$garbage", "correct horse battery"));
    assert_false(gf_auth_password_verify("$2b$10$abcdefghijklmnopqrstuv", "x"));
    char unterminated[GF_AUTH_HASH_SIZE];
    memcpy(unterminated, h, sizeof unterminated);
    memset(unterminated + strlen(h), 'A', sizeof unterminated - strlen(h));
    assert_false(gf_auth_password_verify(unterminated, "correct horse battery"));
    assert_false(gf_auth_password_needs_rehash(NULL));
    assert_false(gf_auth_password_needs_rehash("$argon2id$garbage"));

    /* An older, cheaper hash still verifies and asks to be rehashed. */
    char old[crypto_pwhash_STRBYTES];
    assert_int_equal(crypto_pwhash_str_alg(old, "correct horse battery", 21, 1, 8192,
                                           crypto_pwhash_ALG_ARGON2ID13),
                     0);
    assert_true(gf_auth_password_verify(old, "correct horse battery"));
    assert_true(gf_auth_password_needs_rehash(old));

    /* The dummy hash matches today's parameters, so refusing a NULL hash costs a real hash:
     * at least a quarter of a real verify (loose, for a loaded machine). */
    assert_int_equal(crypto_pwhash_str_needs_rehash(auth_dummy_hash, 2, 19 * 1024 * 1024), 0);
    double best_real = 1e9, best_null = 1e9;
    for (int i = 0; i < 2; i++) {
        double t0 = seconds();
        assert_false(gf_auth_password_verify(h, "wrong password"));
        double t1 = seconds();
        assert_false(gf_auth_password_verify(NULL, "wrong password"));
        double t2 = seconds();
        best_real = t1 - t0 < best_real ? t1 - t0 : best_real;
        best_null = t2 - t1 < best_null ? t2 - t1 : best_null;
    }
    if (best_null < best_real / 4)
        fail_msg("a NULL hash is refused in %.4f s, a wrong password in %.4f s", best_null,
                 best_real);
}

/* The token cache (lib/src/auth_cache.c) answers as gf_auth_verify answers: a cached token is
 * refused the moment it expires; a tampered copy, a token of an unknown key and garbage are never
 * answered from the cache and never enter it; distinct tokens keep distinct claims. */
static void cached_tokens_answer_as_verify_answers(void **state)
{
    struct fix *f = *state;
    make_pair(f, "a");
    make_pair(f, "b");
    struct gf_auth_keys *signer = load(f->keys, path_of(f, f->spare, "a.pem"), ISS, AUD);
    unlink(path_of(f, f->keys, "b.pub.pem")); /* b signs, nobody verifies it */
    struct gf_auth_keys *stranger = load(f->keys, path_of(f, f->spare, "b.pem"), ISS, AUD);
    struct gf_auth_keys *verifier = load(f->keys, NULL, ISS, AUD);
    struct gf_auth_cache *c = gf_auth_cache_new(verifier, 16);
    assert_non_null(c);
    assert_null(gf_auth_cache_new(NULL, 16));
    assert_int_equal(gf_auth_cache_verify(NULL, "a.b.c", 5, NOW, 0, NULL), GF_AUTH_UNKNOWN_KID);

    char *alice = sign_for(signer, 7, "alice", GF_ROLE_USER, NOW, 60);
    char *admin = sign_for(signer, 8, "root", GF_ROLE_ADMIN, NOW, 600);
    uint64_t hits, misses;
    struct gf_auth_claims out;
    for (int round = 0; round < 3; round++) {
        memset(&out, 0, sizeof out);
        assert_int_equal(gf_auth_cache_verify(c, alice, strlen(alice), NOW + 1, 0, &out),
                         GF_AUTH_OK);
        assert_int_equal(out.user_id, 7);
        assert_string_equal(out.name, "alice");
        assert_int_equal(out.role, GF_ROLE_USER);
        assert_int_equal(gf_auth_cache_verify(c, admin, strlen(admin), NOW + 1, 0, &out),
                         GF_AUTH_OK);
        assert_int_equal(out.user_id, 8);
        assert_int_equal(out.role, GF_ROLE_ADMIN);
    }
    gf_auth_cache_counts(c, &hits, &misses);
    /* Two verified, four answered from the cache (16 slots: they may share one, then more). */
    assert_int_equal(hits + misses, 6);
    assert_true(misses >= 2);

    /* Expiry is checked on every hit, with the leeway exactly as gf_auth_verify applies it. */
    assert_int_equal(gf_auth_cache_verify(c, alice, strlen(alice), NOW + 60, 0, &out),
                     GF_AUTH_EXPIRED);
    assert_int_equal(gf_auth_cache_verify(c, alice, strlen(alice), NOW + 60, 1, NULL), GF_AUTH_OK);
    assert_int_equal(gf_auth_cache_verify(c, alice, strlen(alice), NOW + 60, 1, NULL),
                     gf_auth_verify(verifier, alice, strlen(alice), NOW + 60, 1, NULL));
    assert_int_equal(gf_auth_cache_verify(c, alice, strlen(alice), NOW - 5, 0, NULL),
                     GF_AUTH_NOT_YET_VALID);
    /* The leeway is clamped to a day, as gf_auth_verify clamps it. */
    assert_int_equal(
        gf_auth_cache_verify(c, alice, strlen(alice), NOW + 60 + 86400 + 10, 100000, NULL),
        GF_AUTH_EXPIRED);

    /* A copy with one character of its signature changed is verified, and refused. */
    char *bad = strdup(alice);
    bad[strlen(bad) - 2] = bad[strlen(bad) - 2] == 'A' ? 'B' : 'A';
    for (int i = 0; i < 2; i++)
        assert_int_equal(gf_auth_cache_verify(c, bad, strlen(bad), NOW + 1, 0, NULL),
                         GF_AUTH_BAD_SIGNATURE);
    /* A prefix of a cached token is another token. */
    assert_int_equal(gf_auth_cache_verify(c, alice, strlen(alice) - 1, NOW + 1, 0, NULL),
                     GF_AUTH_BAD_SIGNATURE);
    char *foreign = sign_for(stranger, 7, "alice", GF_ROLE_ADMIN, NOW, 60);
    for (int i = 0; i < 2; i++)
        assert_int_equal(gf_auth_cache_verify(c, foreign, strlen(foreign), NOW + 1, 0, NULL),
                         GF_AUTH_UNKNOWN_KID);
    assert_int_equal(gf_auth_cache_verify(c, "", 0, NOW, 0, NULL), GF_AUTH_MALFORMED);
    assert_int_equal(gf_auth_cache_verify(c, NULL, 3, NOW, 0, NULL), GF_AUTH_MALFORMED);
    assert_int_equal(gf_auth_cache_verify(c, "x.y.z", 5, NOW, 0, NULL), GF_AUTH_MALFORMED);

    /* Many tokens through 16 slots: each still gets its own claims back. */
    char *many[64];
    for (int i = 0; i < 64; i++)
        many[i] = sign_for(signer, 100 + i, "someone", GF_ROLE_USER, NOW, 600);
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 64; i++) {
            assert_int_equal(gf_auth_cache_verify(c, many[i], strlen(many[i]), NOW, 0, &out),
                             GF_AUTH_OK);
            assert_int_equal(out.user_id, 100 + i);
        }
    for (int i = 0; i < 64; i++)
        free(many[i]);
    free(foreign);
    free(bad);
    free(alice);
    free(admin);
    gf_auth_cache_free(c);
    gf_auth_cache_free(NULL);
    gf_auth_keys_free(signer);
    gf_auth_keys_free(stranger);
    gf_auth_keys_free(verifier);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(sign_then_verify_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(sign_refuses_bad_claims, setup, teardown),
        cmocka_unit_test_setup_teardown(
            expired_and_not_yet_valid_tokens_are_refused_beyond_the_leeway, setup, teardown),
        cmocka_unit_test_setup_teardown(tampered_tokens_fail_the_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(algorithms_other_than_eddsa_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_and_missing_kids_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(issuer_and_audience_must_match, setup, teardown),
        cmocka_unit_test_setup_teardown(claims_are_checked_after_the_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(garbage_of_every_shape_is_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(
            rotation_keeps_old_tokens_until_their_key_leaves_the_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(keys_made_by_the_openssl_tool_load, setup, teardown),
        cmocka_unit_test_setup_teardown(keys_of_other_kinds_are_refused_with_a_clear_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(bad_key_sets_are_refused_naming_the_file, setup, teardown),
        cmocka_unit_test_setup_teardown(keygen_writes_private_0600_public_0644_and_never_overwrites,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(one_key_set_serves_many_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(cached_tokens_answer_as_verify_answers, setup, teardown),
        cmocka_unit_test(roles_and_messages),
        cmocka_unit_test(passwords_hash_and_verify_with_argon2id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
