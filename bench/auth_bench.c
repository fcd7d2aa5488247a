/* What authentication costs a service's CPU: gf_auth_verify (lib/include/gf/auth.h), the work
 * every signed-in request adds, measured on one thread — µs per verify and verifies per second
 * of one core. Beside it, for scale, what a login costs once per token: signing one, and the
 * password's argon2id check. CPU time of the measuring thread (CLOCK_THREAD_CPUTIME_ID), so
 * other work on a shared machine slows the run down but does not change the figure; the wall
 * clock is printed too. The keys are made fresh in a temporary directory, as gf-keygen makes
 * them; the token is the backend's (issuer gf-svc, audience gf-svc-api, role user).
 *
 *   auth_bench            BENCH_AUTH_SECONDS (3): how long the verify loop runs
 *
 * The last line is for scripts (bench/suite.sh):
 *   GFAUTH verify_us=<µs> verifies_per_s=<n> sign_us=<µs> password_ms=<ms> token_bytes=<n>
 *          cached_us=<µs: the same token again through gf_auth_cache, as a service's later
 *          requests with it cost> */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gf/auth.h"

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void cleanup_dir(const char *dir, const char *priv, const char *pub)
{
    unlink(priv);
    unlink(pub);
    rmdir(dir);
}

int main(void)
{
    const char *s = getenv("BENCH_AUTH_SECONDS");
    double seconds = s != NULL && atof(s) > 0 ? atof(s) : 3.0;
    char dir[] = "/tmp/gf-auth-bench-XXXXXX", priv[64], pub[64], err[300];
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(priv, sizeof priv, "%s/signing.key.pem", dir);
    snprintf(pub, sizeof pub, "%s/signing.pub.pem", dir);
    int rc = 1;
    struct gf_auth_keys *keys = NULL;
    struct gf_auth_cache *cache = NULL;
    char *token = NULL;
    if (gf_auth_keygen(priv, pub) != GF_OK) {
        fprintf(stderr, "auth_bench: cannot make a key pair in %s\n", dir);
        goto out;
    }
    keys = gf_auth_keys_load(dir, priv, "gf-svc", "gf-svc-api", err, sizeof err);
    if (keys == NULL) {
        fprintf(stderr, "auth_bench: %s\n", err);
        goto out;
    }

    /* Signing, as POST /auth/login does once per token. */
    struct gf_auth_claims claims = {.user_id = 1234567, .role = GF_ROLE_USER};
    snprintf(claims.name, sizeof claims.name, "bench-user-1234567");
    int nsign = 2000;
    double c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    for (int i = 0; i < nsign; i++) {
        free(token);
        token = NULL;
        if (gf_auth_sign(keys, &claims, (int64_t)time(NULL), 3600, &token) != GF_OK) {
            fprintf(stderr, "auth_bench: gf_auth_sign failed\n");
            goto out;
        }
    }
    double sign_us = (clock_s(CLOCK_THREAD_CPUTIME_ID) - c0) * 1e6 / nsign;
    size_t len = strlen(token);

    /* Verifying, as every signed-in request does: warm up, then batches until the time is up. */
    struct gf_auth_claims got;
    for (int i = 0; i < 1000; i++)
        if (gf_auth_verify(keys, token, len, (int64_t)time(NULL), 5, &got) != GF_AUTH_OK) {
            fprintf(stderr, "auth_bench: the token does not verify\n");
            goto out;
        }
    long n = 0;
    double w0 = clock_s(CLOCK_MONOTONIC), t0 = clock_s(CLOCK_THREAD_CPUTIME_ID), t1 = t0;
    while (t1 - t0 < seconds) {
        int64_t now = (int64_t)time(NULL);
        for (int i = 0; i < 1000; i++)
            if (gf_auth_verify(keys, token, len, now, 5, &got) != GF_AUTH_OK) {
                fprintf(stderr, "auth_bench: a verify failed\n");
                goto out;
            }
        n += 1000;
        t1 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    }
    double wall = clock_s(CLOCK_MONOTONIC) - w0, cpu = t1 - t0;
    double verify_us = cpu * 1e6 / (double)n;

    /* The same token again through the cache every service keeps (gf_auth_cache): what each
     * request after a token's first costs. */
    cache = gf_auth_cache_new(keys, 1024);
    if (cache == NULL ||
        gf_auth_cache_verify(cache, token, len, (int64_t)time(NULL), 5, &got) != GF_AUTH_OK) {
        fprintf(stderr, "auth_bench: the token cache does not take the token\n");
        goto out;
    }
    int ncached = 200000;
    c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    int64_t now = (int64_t)time(NULL);
    for (int i = 0; i < ncached; i++)
        if (gf_auth_cache_verify(cache, token, len, now, 5, &got) != GF_AUTH_OK) {
            fprintf(stderr, "auth_bench: a cached check failed\n");
            goto out;
        }
    double cached_us = (clock_s(CLOCK_THREAD_CPUTIME_ID) - c0) * 1e6 / ncached;

    /* The password check of a login (argon2id, ~19 MiB): a few are enough. */
    char hash[GF_AUTH_HASH_SIZE];
    if (gf_auth_password_hash("bench-password", hash) != GF_OK) {
        fprintf(stderr, "auth_bench: gf_auth_password_hash failed\n");
        goto out;
    }
    int npw = 5;
    c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    for (int i = 0; i < npw; i++)
        if (!gf_auth_password_verify(hash, "bench-password")) {
            fprintf(stderr, "auth_bench: the password does not verify\n");
            goto out;
        }
    double pw_ms = (clock_s(CLOCK_THREAD_CPUTIME_ID) - c0) * 1e3 / npw;

    printf("gf_auth_verify (Ed25519 JWT of %zu bytes, one thread): %.2f µs CPU per verify, "
           "%.0f verifies/s of one core (%ld verifies in %.2f s CPU, %.2f s wall)\n",
           len, verify_us, 1e6 / verify_us, n, cpu, wall);
    printf("the same token again, from the cache of verified tokens (gf_auth_cache): %.2f µs\n",
           cached_us);
    printf("per login, for scale: gf_auth_sign %.2f µs; the password's argon2id check %.1f ms\n",
           sign_us, pw_ms);
    printf("GFAUTH verify_us=%.3f verifies_per_s=%.0f sign_us=%.3f password_ms=%.2f "
           "token_bytes=%zu cached_us=%.3f\n",
           verify_us, 1e6 / verify_us, sign_us, pw_ms, len, cached_us);
    rc = 0;
out:
    free(token);
    gf_auth_cache_free(cache);
    gf_auth_keys_free(keys);
    cleanup_dir(dir, priv, pub);
    return rc;
}
