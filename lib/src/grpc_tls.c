/* Mutual TLS for gRPC: a process's three PEM files read once at start, the rule its TLS
 * variables follow, and gRPC's own TLS credentials built from them (no cryptography here). */
#include "grpc_tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gf/log.h"

#define PEM_MAX (1 << 20) /* a CA, a chain or a key is a few KiB */

struct gf_grpc_tls {
    char *ca;   /* PEM of the CA every peer's certificate must chain to */
    char *cert; /* PEM of our certificate (chain); NULL for a client that shows none */
    char *key;  /* PEM of its private key */
};

enum gf_status gf_grpc_tls_config_check(const char *prefix, const char *ca, const char *cert,
                                        const char *key, bool insecure)
{
    const char *what[3] = {"CA", "CERT", "KEY"};
    const char *val[3] = {ca, cert, key};
    int set = 0, problems = 0;
    for (int i = 0; i < 3; i++)
        set += val[i] != NULL && val[i][0] != '\0';
    if (set > 0 && set < 3) {
        for (int i = 0; i < 3; i++) {
            if (val[i] != NULL && val[i][0] != '\0')
                continue;
            GF_ERROR("config invalid var=%s_TLS_%s value='' rule='required when any of %s_TLS_CA, "
                     "%s_TLS_CERT, %s_TLS_KEY is set'",
                     prefix, what[i], prefix, prefix, prefix);
            problems++;
        }
    } else if (set == 3 && insecure) {
        GF_ERROR("config invalid var=%s_GRPC_INSECURE value='true' rule='%s_TLS_CA, _CERT and "
                 "_KEY are set: gRPC uses mutual TLS; keep one of the two'",
                 prefix, prefix);
        problems++;
    } else if (set == 0 && !insecure) {
        GF_ERROR("config invalid var=%s_TLS_CA value='' rule='gRPC uses mutual TLS: set %s_TLS_CA, "
                 "%s_TLS_CERT and %s_TLS_KEY (PEM files, e.g. from scripts/pki.sh), or "
                 "%s_GRPC_INSECURE=true for plaintext'",
                 prefix, prefix, prefix, prefix, prefix);
        problems++;
    }
    if (problems == 0)
        return GF_OK;
    GF_ERROR("config invalid_count=%d", problems);
    return GF_EINVAL;
}

/* The whole of a PEM file, NUL-terminated, or NULL after one error line naming var and path. */
static char *read_pem(const char *prefix, const char *var, const char *path, bool key)
{
    char *buf = NULL, *text = NULL;
    const char *why = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        GF_ERROR("tls file unreadable var=%s_TLS_%s file=%s error='%s'", prefix, var, path,
                 strerror(errno));
        return NULL;
    }
    buf = malloc(PEM_MAX + 1);
    if (buf == NULL) {
        why = "out of memory";
        goto out;
    }
    size_t n = fread(buf, 1, PEM_MAX + 1, f);
    if (ferror(f)) {
        GF_ERROR("tls file unreadable var=%s_TLS_%s file=%s error='%s'", prefix, var, path,
                 strerror(errno));
        goto out;
    }
    buf[n > PEM_MAX ? PEM_MAX : n] = '\0';
    if (n == 0)
        why = "the file is empty";
    else if (n > PEM_MAX)
        why = "the file is over 1 MiB";
    else if (memchr(buf, '\0', n) != NULL)
        why = "the file is not PEM text";
    else if (!key && strstr(buf, "-----BEGIN CERTIFICATE-----") == NULL)
        why = "no PEM certificate in it (-----BEGIN CERTIFICATE-----)";
    else if (key && (strstr(buf, "PRIVATE KEY-----") == NULL || strstr(buf, "-----BEGIN ") == NULL))
        why = "no PEM private key in it (-----BEGIN PRIVATE KEY-----)";
    else if (key && (strstr(buf, "-----BEGIN ENCRYPTED PRIVATE KEY-----") != NULL ||
                     strstr(buf, "Proc-Type: 4,ENCRYPTED") != NULL))
        why = "the key is encrypted (gRPC takes no passphrase)";
    if (why == NULL) {
        text = buf;
        buf = NULL;
    }
out:
    if (why != NULL)
        GF_ERROR("tls file invalid var=%s_TLS_%s file=%s error='%s'", prefix, var, path, why);
    free(buf);
    fclose(f);
    return text;
}

enum gf_status gf_grpc_tls_load(const char *prefix, const char *ca, const char *cert,
                                const char *key, struct gf_grpc_tls **out)
{
    enum gf_status st = GF_EINVAL;
    struct gf_grpc_tls *tls = calloc(1, sizeof *tls);
    if (tls == NULL)
        return GF_ENOMEM;
    if ((cert == NULL) != (key == NULL)) {
        GF_ERROR("tls material invalid: %s_TLS_CERT and %s_TLS_KEY come together", prefix, prefix);
        goto out;
    }
    /* Every file is read, so that one start reports every bad one. */
    tls->ca = read_pem(prefix, "CA", ca, false);
    bool ok = tls->ca != NULL;
    if (cert != NULL) {
        tls->cert = read_pem(prefix, "CERT", cert, false);
        tls->key = read_pem(prefix, "KEY", key, true);
        ok = ok && tls->cert != NULL && tls->key != NULL;
    }
    if (!ok)
        goto out;
    GF_INFO("tls material loaded ca=%s cert=%s key=%s", ca, cert ? cert : "(none)",
            key ? key : "(none)");
    *out = tls;
    tls = NULL;
    st = GF_OK;
out:
    gf_grpc_tls_free(tls);
    return st;
}

void gf_grpc_tls_free(struct gf_grpc_tls *tls)
{
    if (tls == NULL)
        return;
    free(tls->ca);
    free(tls->cert);
    if (tls->key != NULL) {
        /* The key leaves memory with the material (best effort: gRPC keeps its own copy). */
        volatile char *p = tls->key;
        while (*p)
            *p++ = '\0';
        free(tls->key);
    }
    free(tls);
}

grpc_server_credentials *gf_grpc_tls_server_creds(const struct gf_grpc_tls *tls)
{
    if (tls->cert == NULL) {
        GF_ERROR("grpc server TLS material has no certificate of its own");
        return NULL;
    }
    grpc_ssl_pem_key_cert_pair pair = {.private_key = tls->key, .cert_chain = tls->cert};
    return grpc_ssl_server_credentials_create_ex(
        tls->ca, &pair, 1, GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, NULL);
}

grpc_channel_credentials *gf_grpc_tls_channel_creds(const struct gf_grpc_tls *tls)
{
    grpc_ssl_pem_key_cert_pair pair = {.private_key = tls->key, .cert_chain = tls->cert};
    return grpc_ssl_credentials_create(tls->ca, tls->cert ? &pair : NULL, NULL, NULL);
}
