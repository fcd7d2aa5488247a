/* Access tokens (compact JWS signed with Ed25519 by OpenSSL) and password hashes (argon2id by
 * libsodium); the reasons for each choice are in gf/auth.h. */
#include "gf/auth.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gf/buf.h"
#include "gf/log.h"
#include "gf/testable.h"
#include "gf/uuid.h"

#define KEY_FILE_MAX (64 * 1024)  /* bytes of a PEM file: an Ed25519 key needs about 120 */
#define TEXT_MAX 128              /* bytes of the issuer and of the audience */
#define ID_MAX 9007199254740992LL /* 2^53: ids stay exact in every JSON reader */
#define TTL_MAX (366 * 86400LL)
#define LEEWAY_MAX 86400
#define RAW_LEN 32     /* an Ed25519 public key */
#define SIG_LEN 64     /* an Ed25519 signature */
#define SIG_B64_LEN 86 /* its base64url without padding */
#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

/* The password cost (gf/auth.h): libsodium's argon2id with t = 2 and m = 19 MiB, p = 1. */
#define PW_OPSLIMIT 2ULL
#define PW_MEMLIMIT (19 * 1024 * 1024)
/* A hash of a random password made with the parameters above: what a NULL or malformed hash is
 * verified against, so that refusing it costs what refusing a wrong password costs. The unit
 * test checks that it still matches the parameters. */
GF_TESTABLE const char auth_dummy_hash[GF_AUTH_HASH_SIZE] =
    "$argon2id$v=19$m=19456,t=2,p=1$"
    "jPalqhSnGTt/Do+nCNkwHg$Q7VMLb3bb522DBsabjWxgMcASLol2yB6YMH24l0d81w";

struct auth_key {
    EVP_PKEY *pub; /* the public key alone, also for a private key file */
    char kid[GF_AUTH_KID_LEN + 1];
};

struct gf_auth_keys {
    struct auth_key keys[GF_AUTH_KEYS_MAX];
    size_t n;
    EVP_PKEY *signer; /* NULL when this set only verifies */
    char signer_kid[GF_AUTH_KID_LEN + 1];
    char issuer[TEXT_MAX + 1];
    char audience[TEXT_MAX + 1];
};

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static bool sodium_ready;

static void sodium_start(void)
{
    sodium_ready = sodium_init() >= 0;
}

/* libsodium is initialized once, whoever asks first. */
static bool sodium_up(void)
{
    pthread_once(&sodium_once, sodium_start);
    return sodium_ready;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- roles and messages ------------------------------------------------------------------ */

const char *gf_role_name(enum gf_role r)
{
    switch (r) {
    case GF_ROLE_USER:
        return "user";
    case GF_ROLE_ADMIN:
        return "admin";
    case GF_ROLE_NONE:
        break;
    }
    return "";
}

bool gf_role_parse(const char *s, enum gf_role *out)
{
    if (s == NULL)
        return false;
    if (strcmp(s, "user") == 0)
        *out = GF_ROLE_USER;
    else if (strcmp(s, "admin") == 0)
        *out = GF_ROLE_ADMIN;
    else
        return false;
    return true;
}

const char *gf_auth_error_message(enum gf_auth_error e)
{
    switch (e) {
    case GF_AUTH_OK:
        return "the token is valid";
    case GF_AUTH_MALFORMED:
        return "the token is malformed";
    case GF_AUTH_BAD_ALG:
        return "the token's signature algorithm is not accepted";
    case GF_AUTH_UNKNOWN_KID:
        return "the token was signed with an unknown key";
    case GF_AUTH_BAD_SIGNATURE:
        return "the token's signature is invalid";
    case GF_AUTH_EXPIRED:
        return "the token has expired";
    case GF_AUTH_NOT_YET_VALID:
        return "the token is not valid yet";
    case GF_AUTH_BAD_ISSUER:
        return "the token was issued by someone else";
    case GF_AUTH_BAD_AUDIENCE:
        return "the token is meant for another audience";
    case GF_AUTH_BAD_CLAIMS:
        return "the token's claims are invalid";
    }
    return "the token is invalid";
}

/* ---- keys ---------------------------------------------------------------------------------- */

/* kid = the first GF_AUTH_KID_LEN characters of base64url(SHA-256(raw public key)). */
static void kid_of(const unsigned char raw[RAW_LEN], char kid[GF_AUTH_KID_LEN + 1])
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    char b64[sodium_base64_ENCODED_LEN(crypto_hash_sha256_BYTES, B64)];
    crypto_hash_sha256(digest, raw, RAW_LEN);
    sodium_bin2base64(b64, sizeof b64, digest, sizeof digest, B64);
    memcpy(kid, b64, GF_AUTH_KID_LEN);
    kid[GF_AUTH_KID_LEN] = '\0';
}

/* The whole file into *data (malloc'd, at most KEY_FILE_MAX bytes): false with err set. */
static bool file_read(const char *path, unsigned char **data, size_t *len, char *err, size_t errlen)
{
    bool ok = false;
    unsigned char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        return false;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        seterr(err, errlen, "%s: not a regular file", path);
        goto out;
    }
    if (sb.st_size > KEY_FILE_MAX) {
        seterr(err, errlen, "%s: too large for a key file (over %d bytes)", path, KEY_FILE_MAX);
        goto out;
    }
    buf = malloc((size_t)sb.st_size + 1);
    if (buf == NULL) {
        seterr(err, errlen, "%s: out of memory", path);
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)sb.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            seterr(err, errlen, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    *data = buf;
    *len = got;
    buf = NULL;
    ok = true;
out:
    free(buf);
    close(fd);
    return ok;
}

/* The Ed25519 key of one PEM file: *pub its public half (always), *priv the key itself when the
 * file holds a private key (else NULL), kid its kid. False with err set. */
static bool key_read(const char *path, EVP_PKEY **pub, EVP_PKEY **priv,
                     char kid[GF_AUTH_KID_LEN + 1], char *err, size_t errlen)
{
    bool ok = false;
    unsigned char *data = NULL, *der = NULL;
    size_t len = 0;
    long der_len = 0;
    char *name = NULL, *header = NULL;
    BIO *bio = NULL;
    EVP_PKEY *key = NULL;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    bool is_private = false;

    if (!file_read(path, &data, &len, err, errlen))
        return false;
    bio = BIO_new_mem_buf(data, (int)len);
    if (bio == NULL) {
        seterr(err, errlen, "%s: out of memory", path);
        goto out;
    }
    if (PEM_read_bio(bio, &name, &header, &der, &der_len) != 1) {
        seterr(err, errlen, "%s: no PEM key in the file", path);
        goto out;
    }
    const unsigned char *p = der;
    if (strcmp(name, "PUBLIC KEY") == 0) {
        key = d2i_PUBKEY(NULL, &p, der_len);
    } else if (strcmp(name, "PRIVATE KEY") == 0) {
        is_private = true;
        p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, der_len);
        if (p8 != NULL)
            key = EVP_PKCS82PKEY(p8);
    } else if (strcmp(name, "ENCRYPTED PRIVATE KEY") == 0) {
        seterr(err, errlen, "%s: an encrypted private key (only unencrypted PKCS#8 is read)", path);
        goto out;
    } else {
        seterr(err, errlen, "%s: not an Ed25519 key (a PEM \"%.40s\")", path, name);
        goto out;
    }
    if (key == NULL || p != der + der_len) {
        seterr(err, errlen, "%s: the PEM \"%s\" does not decode", path, name);
        goto out;
    }
    if (!EVP_PKEY_is_a(key, "ED25519")) {
        const char *type = EVP_PKEY_get0_type_name(key);
        seterr(err, errlen, "%s: not an Ed25519 key (%s)", path, type != NULL ? type : "unknown");
        goto out;
    }
    /* One key per file: a second block would be silently ignored otherwise. */
    char *name2 = NULL, *header2 = NULL;
    unsigned char *der2 = NULL;
    long der2_len = 0;
    if (PEM_read_bio(bio, &name2, &header2, &der2, &der2_len) == 1) {
        OPENSSL_free(name2);
        OPENSSL_free(header2);
        OPENSSL_clear_free(der2, (size_t)der2_len);
        seterr(err, errlen, "%s: more than one PEM block (one key per file)", path);
        goto out;
    }
    unsigned char raw[RAW_LEN];
    size_t raw_len = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(key, raw, &raw_len) != 1 || raw_len != RAW_LEN) {
        seterr(err, errlen, "%s: the public key cannot be read", path);
        goto out;
    }
    *pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, raw_len);
    if (*pub == NULL) {
        seterr(err, errlen, "%s: out of memory", path);
        goto out;
    }
    kid_of(raw, kid);
    *priv = NULL;
    if (is_private) {
        *priv = key;
        key = NULL;
    }
    ok = true;
out:
    ERR_clear_error(); /* the failed second read, or the reason already reported */
    EVP_PKEY_free(key);
    PKCS8_PRIV_KEY_INFO_free(p8);
    OPENSSL_free(name);
    OPENSSL_free(header);
    if (der != NULL)
        OPENSSL_clear_free(der, (size_t)der_len);
    BIO_free(bio);
    if (data != NULL) {
        sodium_memzero(data, len);
        free(data);
    }
    return ok;
}

/* Adds a verifying key (taking pub): the same key twice counts once. */
static bool keys_add(struct gf_auth_keys *k, EVP_PKEY *pub, const char *kid, const char *path,
                     char *err, size_t errlen)
{
    for (size_t i = 0; i < k->n; i++) {
        if (strcmp(k->keys[i].kid, kid) != 0)
            continue;
        bool same = EVP_PKEY_eq(k->keys[i].pub, pub) == 1;
        EVP_PKEY_free(pub);
        if (!same)
            seterr(err, errlen, "%s: another key has the same kid %s", path, kid);
        return same;
    }
    if (k->n == GF_AUTH_KEYS_MAX) {
        EVP_PKEY_free(pub);
        seterr(err, errlen, "%s: more than %d keys", path, GF_AUTH_KEYS_MAX);
        return false;
    }
    k->keys[k->n].pub = pub;
    memcpy(k->keys[k->n].kid, kid, GF_AUTH_KID_LEN + 1);
    k->n++;
    return true;
}

static bool key_file_add(struct gf_auth_keys *k, const char *path, bool signing, char *err,
                         size_t errlen)
{
    EVP_PKEY *pub = NULL, *priv = NULL;
    char kid[GF_AUTH_KID_LEN + 1];
    if (!key_read(path, &pub, &priv, kid, err, errlen))
        return false;
    if (signing) {
        if (priv == NULL) {
            EVP_PKEY_free(pub);
            seterr(err, errlen, "%s: a public key cannot sign (a PRIVATE KEY is needed)", path);
            return false;
        }
        k->signer = priv;
        memcpy(k->signer_kid, kid, sizeof kid);
    } else {
        EVP_PKEY_free(priv);
    }
    return keys_add(k, pub, kid, path, err, errlen);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_pem_name(const char *n)
{
    size_t len = strlen(n);
    return n[0] != '.' && len > 4 && strcmp(n + len - 4, ".pem") == 0;
}

/* Every *.pem of dir, in name order. */
static bool dir_add(struct gf_auth_keys *k, const char *dir, char *err, size_t errlen)
{
    bool ok = false;
    char *names[GF_AUTH_KEYS_MAX];
    size_t n = 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        seterr(err, errlen, "%s: %s", dir, strerror(errno));
        return false;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!is_pem_name(e->d_name))
            continue;
        if (n == GF_AUTH_KEYS_MAX) {
            seterr(err, errlen, "%s: more than %d *.pem files", dir, GF_AUTH_KEYS_MAX);
            goto out;
        }
        names[n] = strdup(e->d_name);
        if (names[n] == NULL) {
            seterr(err, errlen, "%s: out of memory", dir);
            goto out;
        }
        n++;
    }
    qsort(names, n, sizeof *names, name_cmp);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        int w = snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (w < 0 || (size_t)w >= sizeof path) {
            seterr(err, errlen, "%s/%s: path too long", dir, names[i]);
            goto out;
        }
        if (!key_file_add(k, path, false, err, errlen))
            goto out;
    }
    ok = true;
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    closedir(d);
    return ok;
}

/* Issuer and audience: 1..TEXT_MAX visible ASCII characters. */
static bool text_ok(const char *s)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > TEXT_MAX)
        return false;
    for (; *s != '\0'; s++) {
        if (*s < 0x21 || *s > 0x7e)
            return false;
    }
    return true;
}

struct gf_auth_keys *gf_auth_keys_load(const char *dir, const char *signing_key_path,
                                       const char *issuer, const char *audience, char *err,
                                       size_t errlen)
{
    seterr(err, errlen, "%s", "");
    if (!sodium_up()) {
        seterr(err, errlen, "libsodium cannot start");
        return NULL;
    }
    if (!text_ok(issuer) || !text_ok(audience)) {
        seterr(err, errlen, "the issuer and the audience must be 1 to %d visible ASCII characters",
               TEXT_MAX);
        return NULL;
    }
    struct gf_auth_keys *k = calloc(1, sizeof *k);
    if (k == NULL) {
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(k->issuer, issuer, strlen(issuer) + 1);
    memcpy(k->audience, audience, strlen(audience) + 1);
    bool has_dir = dir != NULL && dir[0] != '\0';
    bool has_signer = signing_key_path != NULL && signing_key_path[0] != '\0';
    if (has_dir && !dir_add(k, dir, err, errlen))
        goto fail;
    if (has_signer && !key_file_add(k, signing_key_path, true, err, errlen))
        goto fail;
    if (k->n == 0) {
        if (has_dir)
            seterr(err, errlen, "%s: no *.pem key in the directory", dir);
        else
            seterr(err, errlen, "no keys: neither a key directory nor a signing key is given");
        goto fail;
    }
    return k;
fail:
    gf_auth_keys_free(k);
    return NULL;
}

void gf_auth_keys_free(struct gf_auth_keys *k)
{
    if (k == NULL)
        return;
    for (size_t i = 0; i < k->n; i++)
        EVP_PKEY_free(k->keys[i].pub);
    EVP_PKEY_free(k->signer);
    free(k);
}

bool gf_auth_can_sign(const struct gf_auth_keys *k)
{
    return k != NULL && k->signer != NULL;
}

size_t gf_auth_key_count(const struct gf_auth_keys *k)
{
    return k != NULL ? k->n : 0;
}

const char *gf_auth_signing_kid(const struct gf_auth_keys *k)
{
    return gf_auth_can_sign(k) ? k->signer_kid : "";
}

/* ---- signing ------------------------------------------------------------------------------ */

/* Appends base64url(p[0..n)) to b. */
static enum gf_status b64_add(struct gf_buf *b, const void *p, size_t n)
{
    size_t cap = sodium_base64_ENCODED_LEN(n, B64);
    char *s = malloc(cap);
    if (s == NULL)
        return GF_ENOMEM;
    sodium_bin2base64(s, cap, p, n, B64);
    enum gf_status st = gf_buf_addstr(b, s);
    free(s);
    return st;
}

static bool name_ok(const char *name)
{
    size_t n = strnlen(name, GF_AUTH_NAME_MAX + 1);
    return n >= 1 && n <= GF_AUTH_NAME_MAX;
}

enum gf_status gf_auth_sign(const struct gf_auth_keys *k, struct gf_auth_claims *claims,
                            int64_t now, int64_t ttl_s, char **token)
{
    enum gf_status st = GF_EINVAL;
    json_t *header = NULL, *payload = NULL, *name = NULL;
    char *hs = NULL, *ps = NULL;
    EVP_MD_CTX *md = NULL;
    struct gf_buf b;
    gf_buf_init(&b, GF_AUTH_TOKEN_MAX);

    if (!gf_auth_can_sign(k)) {
        GF_ERROR("auth: cannot sign a token: no signing key is loaded");
        return GF_EINTERNAL;
    }
    if (claims == NULL || token == NULL || claims->user_id < 1 || claims->user_id > ID_MAX ||
        !name_ok(claims->name) || gf_role_name(claims->role)[0] == '\0' || now < 0 || ttl_s < 1 ||
        ttl_s > TTL_MAX)
        return GF_EINVAL;
    name = json_string(claims->name); /* NULL: not UTF-8 */
    if (name == NULL)
        goto out;

    st = GF_ENOMEM;
    char jti[GF_UUID_STRLEN + 1], sub[24];
    gf_uuid_generate(jti);
    snprintf(sub, sizeof sub, "%lld", (long long)claims->user_id);
    int64_t exp = now + ttl_s;
    header = json_pack("{s:s, s:s, s:s}", "alg", "EdDSA", "typ", "JWT", "kid", k->signer_kid);
    payload =
        json_pack("{s:s, s:s, s:s, s:O, s:s, s:I, s:I, s:I, s:s}", "iss", k->issuer, "aud",
                  k->audience, "sub", sub, "name", name, "role", gf_role_name(claims->role), "iat",
                  (json_int_t)now, "nbf", (json_int_t)now, "exp", (json_int_t)exp, "jti", jti);
    if (header == NULL || payload == NULL)
        goto out;
    hs = json_dumps(header, JSON_COMPACT | JSON_PRESERVE_ORDER);
    ps = json_dumps(payload, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (hs == NULL || ps == NULL)
        goto out;
    if (b64_add(&b, hs, strlen(hs)) != GF_OK || gf_buf_addstr(&b, ".") != GF_OK ||
        b64_add(&b, ps, strlen(ps)) != GF_OK) {
        st = gf_buf_status(&b) == GF_ETOOBIG ? GF_EINTERNAL : GF_ENOMEM;
        goto out;
    }

    unsigned char sig[SIG_LEN];
    size_t sig_len = sizeof sig;
    md = EVP_MD_CTX_new();
    if (md == NULL)
        goto out;
    if (EVP_DigestSignInit(md, NULL, NULL, NULL, k->signer) != 1 ||
        EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)gf_buf_str(&b), gf_buf_len(&b)) !=
            1 ||
        sig_len != SIG_LEN) {
        GF_ERROR("auth: OpenSSL cannot sign: %s", ERR_reason_error_string(ERR_peek_error()));
        ERR_clear_error();
        st = GF_EINTERNAL;
        goto out;
    }
    if (gf_buf_addstr(&b, ".") != GF_OK || b64_add(&b, sig, sig_len) != GF_OK)
        goto out;
    *token = gf_buf_take(&b, NULL);
    if (*token == NULL)
        goto out;
    claims->iat = now;
    claims->nbf = now;
    claims->exp = exp;
    memcpy(claims->jti, jti, sizeof jti);
    memcpy(claims->kid, k->signer_kid, GF_AUTH_KID_LEN + 1);
    st = GF_OK;
out:
    EVP_MD_CTX_free(md);
    free(hs);
    free(ps);
    json_decref(header);
    json_decref(payload);
    json_decref(name);
    gf_buf_reset(&b);
    return st;
}

/* ---- verifying ---------------------------------------------------------------------------- */

static bool b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* The JSON object encoded in s[0..n) (base64url), duplicate members refused; NULL otherwise. */
static json_t *part_decode(const char *s, size_t n)
{
    unsigned char bin[GF_AUTH_TOKEN_MAX];
    size_t len = 0;
    const char *end = NULL;
    if (n == 0 || sodium_base642bin(bin, sizeof bin, s, n, NULL, &len, &end, B64) != 0 ||
        end != s + n)
        return NULL;
    json_t *j = json_loadb((const char *)bin, len, JSON_REJECT_DUPLICATES, NULL);
    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

static bool str_is(const json_t *j, const char *want)
{
    size_t n = strlen(want);
    return json_is_string(j) && json_string_length(j) == n &&
           memcmp(json_string_value(j), want, n) == 0;
}

/* a - b and a + b for b >= 0, saturating instead of overflowing. */
static int64_t sat_sub(int64_t a, int64_t b)
{
    return a < INT64_MIN + b ? INT64_MIN : a - b;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

enum gf_auth_error gf_auth_claims_in_time(const struct gf_auth_claims *c, int64_t now,
                                          int64_t leeway_s)
{
    if (leeway_s < 0)
        leeway_s = 0;
    if (leeway_s > LEEWAY_MAX)
        leeway_s = LEEWAY_MAX;
    if (c->exp <= sat_sub(now, leeway_s))
        return GF_AUTH_EXPIRED;
    if (c->nbf > sat_add(now, leeway_s))
        return GF_AUTH_NOT_YET_VALID;
    return GF_AUTH_OK;
}

/* sub: the decimal text of an id in 1..2^53, no sign, no leading zero. */
static bool sub_parse(const json_t *j, int64_t *id)
{
    if (!json_is_string(j))
        return false;
    const char *s = json_string_value(j);
    size_t n = json_string_length(j);
    if (n < 1 || n > 16 || s[0] == '0')
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v > ID_MAX)
        return false;
    *id = v;
    return true;
}

static enum gf_auth_error header_check(const struct gf_auth_keys *k, const json_t *h,
                                       const struct auth_key **key)
{
    if (!str_is(json_object_get(h, "alg"), "EdDSA"))
        return GF_AUTH_BAD_ALG;
    const json_t *typ = json_object_get(h, "typ");
    if (json_object_get(h, "crit") != NULL || (typ != NULL && !str_is(typ, "JWT")))
        return GF_AUTH_MALFORMED;
    const json_t *kid = json_object_get(h, "kid");
    if (!json_is_string(kid) || json_string_length(kid) != GF_AUTH_KID_LEN)
        return GF_AUTH_UNKNOWN_KID;
    for (size_t i = 0; i < k->n; i++) {
        if (memcmp(k->keys[i].kid, json_string_value(kid), GF_AUTH_KID_LEN) == 0) {
            *key = &k->keys[i];
            return GF_AUTH_OK;
        }
    }
    return GF_AUTH_UNKNOWN_KID;
}

static bool signature_ok(const struct auth_key *key, const char *signed_part, size_t signed_len,
                         const char *sig64, size_t sig64_len)
{
    unsigned char sig[SIG_LEN];
    size_t len = 0;
    const char *end = NULL;
    if (sig64_len != SIG_B64_LEN ||
        sodium_base642bin(sig, sizeof sig, sig64, sig64_len, NULL, &len, &end, B64) != 0 ||
        end != sig64 + sig64_len || len != SIG_LEN)
        return false;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md != NULL && EVP_DigestVerifyInit(md, NULL, NULL, NULL, key->pub) == 1 &&
              EVP_DigestVerify(md, sig, len, (const unsigned char *)signed_part, signed_len) == 1;
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return ok;
}

static bool aud_ok(const json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return str_is(aud, want);
    if (!json_is_array(aud))
        return false;
    size_t i;
    const json_t *v;
    json_array_foreach(aud, i, v)
    {
        if (str_is(v, want))
            return true;
    }
    return false;
}

/* The registered and private claims of a payload whose signature was checked. */
static enum gf_auth_error claims_check(const struct gf_auth_keys *k, const json_t *p, int64_t now,
                                       int64_t leeway_s, struct gf_auth_claims *c)
{
    if (!str_is(json_object_get(p, "iss"), k->issuer))
        return GF_AUTH_BAD_ISSUER;
    if (!aud_ok(json_object_get(p, "aud"), k->audience))
        return GF_AUTH_BAD_AUDIENCE;
    const json_t *exp = json_object_get(p, "exp"), *nbf = json_object_get(p, "nbf"),
                 *iat = json_object_get(p, "iat");
    if (!json_is_integer(exp) || !json_is_integer(nbf) || !json_is_integer(iat))
        return GF_AUTH_BAD_CLAIMS;
    c->exp = json_integer_value(exp);
    c->nbf = json_integer_value(nbf);
    c->iat = json_integer_value(iat);
    enum gf_auth_error e = gf_auth_claims_in_time(c, now, leeway_s);
    if (e != GF_AUTH_OK)
        return e;
    if (!sub_parse(json_object_get(p, "sub"), &c->user_id))
        return GF_AUTH_BAD_CLAIMS;
    const json_t *role = json_object_get(p, "role");
    if (!json_is_string(role) || !gf_role_parse(json_string_value(role), &c->role) ||
        json_string_length(role) != strlen(json_string_value(role)))
        return GF_AUTH_BAD_CLAIMS;
    const json_t *name = json_object_get(p, "name");
    if (!json_is_string(name))
        return GF_AUTH_BAD_CLAIMS;
    size_t name_len = json_string_length(name);
    if (name_len < 1 || name_len > GF_AUTH_NAME_MAX ||
        memchr(json_string_value(name), '\0', name_len) != NULL)
        return GF_AUTH_BAD_CLAIMS;
    memcpy(c->name, json_string_value(name), name_len + 1);
    const json_t *jti = json_object_get(p, "jti");
    if (!json_is_string(jti) ||
        !gf_uuid_normalize(json_string_value(jti), json_string_length(jti), c->jti))
        return GF_AUTH_BAD_CLAIMS;
    return GF_AUTH_OK;
}

enum gf_auth_error gf_auth_verify(const struct gf_auth_keys *k, const char *token, size_t len,
                                  int64_t now, int64_t leeway_s, struct gf_auth_claims *out)
{
    if (k == NULL || token == NULL || len == 0 || len > GF_AUTH_TOKEN_MAX)
        return GF_AUTH_MALFORMED;
    size_t dot1 = 0, dot2 = 0, dots = 0;
    for (size_t i = 0; i < len; i++) {
        if (token[i] == '.') {
            if (++dots > 2)
                return GF_AUTH_MALFORMED;
            *(dots == 1 ? &dot1 : &dot2) = i;
        } else if (!b64url_char(token[i])) {
            return GF_AUTH_MALFORMED;
        }
    }
    if (dots != 2 || dot1 == 0 || dot2 == dot1 + 1)
        return GF_AUTH_MALFORMED;

    enum gf_auth_error e = GF_AUTH_MALFORMED;
    json_t *payload = NULL;
    json_t *header = part_decode(token, dot1);
    if (header == NULL)
        goto out;
    const struct auth_key *key = NULL;
    e = header_check(k, header, &key);
    if (e != GF_AUTH_OK)
        goto out;
    /* Nothing of the payload is read before the signature is known to be good. */
    if (!signature_ok(key, token, dot2, token + dot2 + 1, len - dot2 - 1)) {
        e = GF_AUTH_BAD_SIGNATURE;
        goto out;
    }
    payload = part_decode(token + dot1 + 1, dot2 - dot1 - 1);
    if (payload == NULL) {
        e = GF_AUTH_MALFORMED;
        goto out;
    }
    struct gf_auth_claims c;
    memset(&c, 0, sizeof c);
    e = claims_check(k, payload, now, leeway_s, &c);
    if (e == GF_AUTH_OK && out != NULL) {
        memcpy(c.kid, key->kid, GF_AUTH_KID_LEN + 1);
        *out = c;
    }
out:
    json_decref(header);
    json_decref(payload);
    return e;
}

/* ---- passwords ---------------------------------------------------------------------------- */

bool gf_auth_password_ok(const char *pw, const char **why)
{
    const char *reason = NULL;
    size_t n = pw != NULL ? strnlen(pw, GF_AUTH_PASSWORD_MAX + 1) : 0;
    if (pw == NULL)
        reason = "a password is required";
    else if (n < GF_AUTH_PASSWORD_MIN)
        reason = "the password must be at least 8 bytes long";
    else if (n > GF_AUTH_PASSWORD_MAX)
        reason = "the password must be at most 1024 bytes long";
    if (why != NULL && reason != NULL)
        *why = reason;
    return reason == NULL;
}

enum gf_status gf_auth_password_hash(const char *pw, char out[GF_AUTH_HASH_SIZE])
{
    if (!gf_auth_password_ok(pw, NULL))
        return GF_EINVAL;
    if (!sodium_up()) {
        GF_ERROR("auth: libsodium cannot start");
        return GF_EINTERNAL;
    }
    char h[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str_alg(h, pw, strlen(pw), PW_OPSLIMIT, PW_MEMLIMIT,
                              crypto_pwhash_ALG_ARGON2ID13) != 0) {
        GF_WARN("auth: cannot hash a password: out of memory");
        return GF_ENOMEM;
    }
    memcpy(out, h, sizeof h);
    return GF_OK;
}

/* A stored hash verify can use: NUL-terminated within its size, argon2id, parameters parsed. */
static bool hash_usable(const char *hash)
{
    static const char prefix[] = "$argon2id$";
    return hash != NULL && strnlen(hash, GF_AUTH_HASH_SIZE) < GF_AUTH_HASH_SIZE &&
           strncmp(hash, prefix, sizeof prefix - 1) == 0 &&
           crypto_pwhash_str_needs_rehash(hash, PW_OPSLIMIT, PW_MEMLIMIT) != -1;
}

bool gf_auth_password_verify(const char *hash_or_null, const char *pw)
{
    if (!sodium_up())
        return false;
    size_t n = pw != NULL ? strnlen(pw, GF_AUTH_PASSWORD_MAX + 1) : 0;
    bool pw_usable = pw != NULL && n <= GF_AUTH_PASSWORD_MAX;
    if (!pw_usable || !hash_usable(hash_or_null)) {
        /* The same work as a wrong password, and the same answer. */
        int spent =
            crypto_pwhash_str_verify(auth_dummy_hash, pw_usable ? pw : "", pw_usable ? n : 0);
        (void)spent;
        return false;
    }
    return crypto_pwhash_str_verify(hash_or_null, pw, n) == 0;
}

bool gf_auth_password_needs_rehash(const char *hash)
{
    return sodium_up() && hash_usable(hash) &&
           crypto_pwhash_str_needs_rehash(hash, PW_OPSLIMIT, PW_MEMLIMIT) == 1;
}

/* ---- key generation ----------------------------------------------------------------------- */

/* One PEM file, created (never overwritten) with exactly this mode. */
static enum gf_status pem_write(const char *path, mode_t mode, EVP_PKEY *key, bool private_key)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        int e = errno;
        GF_ERROR("auth: cannot create %s: %s", path, strerror(e));
        return e == EEXIST ? GF_EEXISTS : GF_EUNAVAILABLE;
    }
    FILE *f = NULL;
    bool ok = fchmod(fd, mode) == 0 && (f = fdopen(fd, "w")) != NULL;
    if (f == NULL)
        close(fd);
    if (ok)
        ok = private_key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1
                         : PEM_write_PUBKEY(f, key) == 1;
    if (ok)
        ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (f != NULL && fclose(f) != 0)
        ok = false;
    if (!ok) {
        GF_ERROR("auth: cannot write %s: %s", path, strerror(errno));
        ERR_clear_error();
        unlink(path);
        return GF_EUNAVAILABLE;
    }
    return GF_OK;
}

enum gf_status gf_auth_keygen(const char *private_path, const char *public_path)
{
    if (private_path == NULL || public_path == NULL || private_path[0] == '\0' ||
        public_path[0] == '\0' || strcmp(private_path, public_path) == 0)
        return GF_EINVAL;
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (key == NULL) {
        GF_ERROR("auth: OpenSSL cannot make an Ed25519 key: %s",
                 ERR_reason_error_string(ERR_peek_error()));
        ERR_clear_error();
        return GF_EINTERNAL;
    }
    enum gf_status st = pem_write(private_path, 0600, key, true);
    if (st == GF_OK) {
        st = pem_write(public_path, 0644, key, false);
        if (st != GF_OK)
            unlink(private_path);
    }
    EVP_PKEY_free(key);
    return st;
}
