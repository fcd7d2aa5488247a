/* gRPC between backend and gxp is mutual TLS (issue 18): the real gxp and backend, given
 * certificates that scripts/pki.sh made, serve only clients whose certificate their CA signed
 * and call each other over it (the backend's /readyz asks gxp; gxp's resolver asks the
 * backend). A client without a certificate, with one from another CA, in plaintext, or
 * trusting another CA gets nowhere; a bad TLS file stops a start with a message naming the
 * variable and the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "backend.pb-c.h"
#include "gf/clock.h"
#include "gf/grpc.h"
#include "gf/log.h"
#include "gf/uuid.h"
#include "gxp.pb-c.h"
#include "harness.h"

static struct {
    char pki[600], other[600]; /* the CA the services trust, and a stranger's */
    struct h_pg gxp_db, backend_db;
    int gxp_grpc, gxp_http, backend_grpc, backend_http;
    pid_t gxp, backend;
    char gxp_log[700], backend_log[700];
} W;

static void file_in(char *out, size_t n, const char *dir, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

/* scripts/pki.sh DIR [specs...] */
static int pki(const char *dir, const char *specs)
{
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "bash '%s/scripts/pki.sh' '%s' %s >>'%s/pki.log' 2>&1", GF_SOURCE_DIR,
             dir, specs, h_run_dir());
    return system(cmd);
}

static struct gf_grpc_tls *material(const char *ca_dir, const char *id_dir, const char *id)
{
    char ca[700], cert[700], key[700], name[64];
    file_in(ca, sizeof ca, ca_dir, "ca.crt");
    snprintf(name, sizeof name, "%s.crt", id ? id : "");
    file_in(cert, sizeof cert, id_dir ? id_dir : "", name);
    snprintf(name, sizeof name, "%s.key", id ? id : "");
    file_in(key, sizeof key, id_dir ? id_dir : "", name);
    struct gf_grpc_tls *t = NULL;
    assert_int_equal(gf_grpc_tls_load("TEST", ca, id ? cert : NULL, id ? key : NULL, &t), GF_OK);
    return t;
}

/* One GetAll (gxp) or ResolveTransaction (backend) through a fresh channel. */
static grpc_status_code call(const char *target, const struct gf_grpc_tls *tls, bool to_backend,
                             char *details, size_t dn)
{
    struct gf_grpc_client *c = gf_grpc_client_new_tls(target, tls);
    ProtobufCMessage *out = NULL;
    grpc_status_code code;
    if (to_backend) {
        Backend__ResolveTransactionRequest req = BACKEND__RESOLVE_TRANSACTION_REQUEST__INIT;
        char cid[GF_UUID_STRLEN + 1];
        gf_uuid_generate(cid);
        req.correlationid = cid;
        code = gf_grpc_client_call(c, "/backend.Backend/ResolveTransaction", &req.base,
                                   &backend__resolve_transaction_response__descriptor, &out, 3000,
                                   NULL, 0, details, dn);
    } else {
        Gxp__GetAllRequest req = GXP__GET_ALL_REQUEST__INIT;
        req.limit = 1;
        code =
            gf_grpc_client_call(c, "/gxp.Gxp/GetAll", &req.base, &gxp__get_all_response__descriptor,
                                &out, 3000, NULL, 0, details, dn);
    }
    if (out)
        protobuf_c_message_free_unpacked(out, NULL);
    gf_grpc_client_free(c);
    return code;
}

static char *target(int port)
{
    static char t[64];
    snprintf(t, sizeof t, "127.0.0.1:%d", port);
    return t;
}

/* ---- HTTP (readiness, metrics) ------------------------------------------------------------ */

struct body {
    char data[65536];
    size_t n;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    struct body *b = ud;
    size_t n = size * nmemb, room = sizeof b->data - 1 - b->n;
    memcpy(b->data + b->n, p, n < room ? n : room);
    b->n += n < room ? n : room;
    b->data[b->n] = '\0';
    return n;
}

static long http_get(int port, const char *path, struct body *b)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    b->n = 0;
    b->data[0] = '\0';
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status;
}

static double metric(int port, const char *name)
{
    static struct body b;
    if (http_get(port, "/metrics", &b) != 200)
        return -1;
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(b.data, key);
    return p ? strtod(p + strlen(key), NULL) : -1;
}

/* ---- processes ---------------------------------------------------------------------------- */

static pid_t spawn_gxp(const char *log, const char *const tls_env[])
{
    char grpc[64], http[64], db[700], backend[64];
    snprintf(grpc, sizeof grpc, "GXP_GRPC_ADDR=127.0.0.1:%d", W.gxp_grpc);
    snprintf(http, sizeof http, "GXP_HTTP_ADDR=127.0.0.1:%d", W.gxp_http);
    snprintf(db, sizeof db, "GXP_DB_URL=%s", W.gxp_db.conninfo);
    snprintf(backend, sizeof backend, "GXP_BACKEND_ADDR=127.0.0.1:%d", W.backend_grpc);
    const char *env[16] = {grpc,
                           http,
                           db,
                           backend,
                           "GXP_EVENT_LOG=false",
                           "GXP_PENDING_TIMEOUT_MS=300",
                           "GXP_RESOLVE_INTERVAL_MS=100",
                           "GXP_SHUTDOWN_GRACE_MS=2000",
                           "GXP_LOG_LEVEL=debug"};
    int n = 9;
    for (int i = 0; tls_env[i] && n < 15; i++)
        env[n++] = tls_env[i];
    env[n] = NULL;
    const char *argv[] = {GF_GXP_BIN, NULL};
    return h_spawn(argv, env, log);
}

static pid_t spawn_backend(const char *log, const char *const tls_env[])
{
    char grpc[64], http[64], db[700], gxp[64];
    snprintf(grpc, sizeof grpc, "BACKEND_GRPC_ADDR=127.0.0.1:%d", W.backend_grpc);
    snprintf(http, sizeof http, "BACKEND_HTTP_ADDR=127.0.0.1:%d", W.backend_http);
    snprintf(db, sizeof db, "BACKEND_DB_URL=%s", W.backend_db.conninfo);
    /* Both replicas' form of the local stack (an ipv4: list): the name checked is the first
     * address's. */
    snprintf(gxp, sizeof gxp, "BACKEND_GXP_ADDR=ipv4:127.0.0.1:%d,127.0.0.1:%d", W.gxp_grpc,
             W.gxp_grpc);
    /* The API's token keys are not this test's subject: one Ed25519 key made in setup. */
    char keys[700], signing[700];
    snprintf(keys, sizeof keys, "BACKEND_AUTH_KEYS=%s/auth", h_run_dir());
    snprintf(signing, sizeof signing, "BACKEND_AUTH_SIGNING_KEY=%s/auth/k1.pem", h_run_dir());
    /* No broker: the relay retries in the background, and RPCs need none. */
    const char *env[16] = {grpc,
                           http,
                           db,
                           gxp,
                           keys,
                           signing,
                           "BACKEND_EVENT_LOG=false",
                           "BACKEND_AMQP_URL=amqp://guest:guest@127.0.0.1:1/",
                           "BACKEND_SHUTDOWN_GRACE_MS=2000",
                           "BACKEND_LOG_LEVEL=debug"};
    int n = 10;
    for (int i = 0; tls_env[i] && n < 15; i++)
        env[n++] = tls_env[i];
    env[n] = NULL;
    const char *argv[] = {GF_BACKEND_BIN, NULL};
    return h_spawn(argv, env, log);
}

static void tls_env(const char *prefix, const char *id, char vars[3][800], const char *ptrs[4])
{
    const char *what[3] = {"CA", "CERT", "KEY"};
    char name[64];
    for (int i = 0; i < 3; i++) {
        if (i == 0)
            snprintf(name, sizeof name, "ca.crt");
        else
            snprintf(name, sizeof name, "%s.%s", id, i == 1 ? "crt" : "key");
        snprintf(vars[i], 800, "%s_TLS_%s=%s/%s", prefix, what[i], W.pki, name);
        ptrs[i] = vars[i];
    }
    ptrs[3] = NULL;
}

static bool log_has(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strstr(buf, text) != NULL;
}

/* Waits for a process that should stop by itself; its exit status, or -1 when it did not. */
static int wait_exit(pid_t pid, const char *log, int timeout_ms)
{
    int64_t end = gf_mono_ms() + timeout_ms;
    while (gf_mono_ms() < end && !log_has(log, " stopped rc="))
        usleep(50 * 1000);
    usleep(100 * 1000);
    int st = h_stop(pid, 2000);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int setup(void **state)
{
    (void)state;
    gf_log_init("grpc-tls-test", GF_LOG_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    file_in(W.pki, sizeof W.pki, h_run_dir(), "pki");
    file_in(W.other, sizeof W.other, h_run_dir(), "other-pki");
    /* "elsewhere": a certificate of the right CA for a name no one dials. */
    if (pki(W.pki, "") != 0 || pki(W.pki, "elsewhere:example.invalid") != 0 ||
        pki(W.other, "") != 0)
        return -1;
    char cmd[800];
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/auth' && openssl genpkey -algorithm ed25519 -out '%s/auth/k1.pem'",
             h_run_dir(), h_run_dir());
    if (system(cmd) != 0)
        return -1;
    if (h_pg_start(&W.gxp_db, "gxp-db", 0) != 0 ||
        h_pg_start(&W.backend_db, "backend-db", H_PG_LOGICAL) != 0)
        return -1;
    W.gxp_grpc = h_free_port();
    W.gxp_http = h_free_port();
    W.backend_grpc = h_free_port();
    W.backend_http = h_free_port();
    char gv[3][800], bv[3][800];
    const char *ge[4], *be[4];
    tls_env("GXP", "gxp", gv, ge);
    tls_env("BACKEND", "backend", bv, be);
    file_in(W.gxp_log, sizeof W.gxp_log, h_run_dir(), "gxp.log");
    file_in(W.backend_log, sizeof W.backend_log, h_run_dir(), "backend.log");
    W.gxp = spawn_gxp(W.gxp_log, ge);
    W.backend = spawn_backend(W.backend_log, be);
    if (W.gxp < 0 || W.backend < 0)
        return -1;
    /* Up when a rightful client gets an answer. */
    struct gf_grpc_tls *good = material(W.pki, W.pki, "backend");
    int64_t end = gf_mono_ms() + 30000;
    while (gf_mono_ms() < end && call(target(W.gxp_grpc), good, false, NULL, 0) != GRPC_STATUS_OK)
        usleep(100 * 1000);
    gf_grpc_tls_free(good);
    good = material(W.pki, W.pki, "gxp");
    while (gf_mono_ms() < end &&
           call(target(W.backend_grpc), good, true, NULL, 0) != GRPC_STATUS_OK)
        usleep(100 * 1000);
    gf_grpc_tls_free(good);
    if (gf_mono_ms() >= end) {
        fprintf(stderr, "gxp or backend did not come up: %s %s\n", W.gxp_log, W.backend_log);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    pid_t pids[2] = {W.gxp, W.backend};
    for (int i = 0; i < 2; i++) {
        if (pids[i] <= 0)
            continue;
        int st = h_stop(pids[i], 10000);
        if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
            fprintf(stderr, "%s did not exit cleanly: status=%d\n", i ? "backend" : "gxp", st);
            rc = -1;
        }
    }
    h_cleanup_all();
    curl_global_cleanup();
    return rc;
}

/* ---- the servers admit only the CA's clients ------------------------------------------------ */

static void check_server(int port, bool backend, const char *client_id)
{
    char d[256];
    struct gf_grpc_tls *t = material(W.pki, W.pki, client_id);
    assert_int_equal(call(target(port), t, backend, d, sizeof d), GRPC_STATUS_OK);
    gf_grpc_tls_free(t);

    /* The right CA, but no certificate of its own: the handshake fails. */
    t = material(W.pki, NULL, NULL);
    assert_int_equal(call(target(port), t, backend, d, sizeof d), GRPC_STATUS_UNAVAILABLE);
    gf_grpc_tls_free(t);

    /* A certificate from another CA. */
    t = material(W.pki, W.other, client_id);
    assert_int_equal(call(target(port), t, backend, d, sizeof d), GRPC_STATUS_UNAVAILABLE);
    gf_grpc_tls_free(t);

    /* Plaintext. */
    assert_int_equal(call(target(port), NULL, backend, d, sizeof d), GRPC_STATUS_UNAVAILABLE);

    /* The client trusts another CA: it refuses the server. */
    t = material(W.other, W.pki, client_id);
    assert_int_equal(call(target(port), t, backend, d, sizeof d), GRPC_STATUS_UNAVAILABLE);
    gf_grpc_tls_free(t);
}

static void gxp_serves_only_clients_of_its_ca(void **state)
{
    (void)state;
    check_server(W.gxp_grpc, false, "backend");
}

static void backend_serves_only_clients_of_its_ca(void **state)
{
    (void)state;
    check_server(W.backend_grpc, true, "gxp");
}

static enum gf_status empty_answer(struct gf_grpc_call *call, void *app,
                                   const ProtobufCMessage *req, ProtobufCMessage *resp)
{
    (void)call, (void)app, (void)req, (void)resp;
    return GF_OK;
}

static grpc_status_code any_code(enum gf_status st)
{
    return st == GF_OK ? GRPC_STATUS_OK : GRPC_STATUS_INTERNAL;
}

/* The client checks the name it dialed against the server's certificate: a certificate of
 * the right CA for another name is refused; gxp's, which names localhost and 127.0.0.1, is
 * taken under both, and under an ipv4: list (the first address is the name checked). */
static void a_certificate_for_another_name_is_refused(void **state)
{
    (void)state;
    struct gf_grpc_tls *srv_tls = material(W.pki, W.pki, "elsewhere");
    static const struct gf_grpc_method m[] = {{"/gxp.Gxp/GetAll", &gxp__get_all_request__descriptor,
                                               &gxp__get_all_response__descriptor, empty_answer}};
    struct gf_grpc_server_options o = {.addr = "127.0.0.1:0",
                                       .threads = 1,
                                       .methods = m,
                                       .nmethods = 1,
                                       .grpc_code = any_code,
                                       .tls = srv_tls};
    int port = 0;
    struct gf_grpc_server *srv = gf_grpc_server_start(&o, &port);
    assert_non_null(srv);
    struct gf_grpc_tls *t = material(W.pki, W.pki, "backend");
    assert_int_equal(call(target(port), t, false, NULL, 0), GRPC_STATUS_UNAVAILABLE);
    gf_grpc_server_stop(srv, 0);
    gf_grpc_tls_free(srv_tls);

    char tgt[96];
    snprintf(tgt, sizeof tgt, "localhost:%d", W.gxp_grpc);
    assert_int_equal(call(tgt, t, false, NULL, 0), GRPC_STATUS_OK);
    snprintf(tgt, sizeof tgt, "ipv4:127.0.0.1:%d,127.0.0.1:%d", W.gxp_grpc, W.gxp_grpc);
    assert_int_equal(call(tgt, t, false, NULL, 0), GRPC_STATUS_OK);
    gf_grpc_tls_free(t);
}

/* ---- the services call each other over mutual TLS ------------------------------------------ */

static void backend_reaches_gxp_and_gxp_reaches_backend(void **state)
{
    (void)state;
    struct body b;
    /* The backend's readiness asks gxp (over its ipv4: list target). */
    int64_t end = gf_mono_ms() + 20000;
    long status = 0;
    while (gf_mono_ms() < end && (status = http_get(W.backend_http, "/readyz", &b)) != 200)
        usleep(100 * 1000);
    assert_int_equal(status, 200);

    /* A prepare the backend never decided: gxp's resolver asks the backend, which answers
     * "failed", and gxp applies it. */
    struct gf_grpc_tls *t = material(W.pki, W.pki, "backend");
    struct gf_grpc_client *c = gf_grpc_client_new_tls(target(W.gxp_grpc), t);
    char cid[GF_UUID_STRLEN + 1];
    gf_uuid_generate(cid);
    Gxp__CreateUserBalanceRequest cr = GXP__CREATE_USER_BALANCE_REQUEST__INIT;
    cr.userid = 7;
    cr.correlationid = cid;
    ProtobufCMessage *out = NULL;
    grpc_status_code code = gf_grpc_client_call(c, "/gxp.Gxp/CreateUserBalance", &cr.base,
                                                &gxp__create_user_balance_response__descriptor,
                                                &out, 5000, cid, 0, NULL, 0);
    if (out)
        protobuf_c_message_free_unpacked(out, NULL);
    out = NULL;
    assert_int_equal(code, GRPC_STATUS_OK);
    gf_uuid_generate(cid);
    Gxp__TransactionPrepareRequest pr = GXP__TRANSACTION_PREPARE_REQUEST__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    ts.seconds = gf_wall_us() / 1000000;
    pr.userid = 7;
    pr.type = GXP__TRANSACTION_TYPE__ADD;
    pr.amount = 5;
    pr.correlationid = cid;
    pr.correlationtimestamp = &ts;
    code = gf_grpc_client_call(c, "/gxp.Gxp/TransactionPrepare", &pr.base,
                               &gxp__transaction_prepare_response__descriptor, &out, 5000, cid, 0,
                               NULL, 0);
    if (out)
        protobuf_c_message_free_unpacked(out, NULL);
    assert_int_equal(code, GRPC_STATUS_OK);
    gf_grpc_client_free(c);
    gf_grpc_tls_free(t);

    end = gf_mono_ms() + 20000;
    while (gf_mono_ms() < end && metric(W.gxp_http, "gxp_resolver_applied_total") < 1)
        usleep(100 * 1000);
    assert_true(metric(W.gxp_http, "gxp_resolver_applied_total") >= 1);
}

/* ---- a bad TLS file stops the start, naming the variable and the file ------------------------ */

static void start_fails(bool backend, const char *const env[], const char *log_name, int want_rc,
                        const char *want_text)
{
    char log[700];
    file_in(log, sizeof log, h_run_dir(), log_name);
    /* Ports of their own: the running pair keeps its own. */
    int saved[4] = {W.gxp_grpc, W.gxp_http, W.backend_grpc, W.backend_http};
    W.gxp_grpc = h_free_port();
    W.gxp_http = h_free_port();
    W.backend_grpc = h_free_port();
    W.backend_http = h_free_port();
    pid_t pid = backend ? spawn_backend(log, env) : spawn_gxp(log, env);
    W.gxp_grpc = saved[0];
    W.gxp_http = saved[1];
    W.backend_grpc = saved[2];
    W.backend_http = saved[3];
    assert_true(pid > 0);
    int rc = wait_exit(pid, log, 20000);
    if (rc != want_rc || !log_has(log, want_text))
        fail_msg("want exit %d and '%s' in %s; got exit %d", want_rc, want_text, log, rc);
}

static void a_bad_tls_file_is_a_clear_startup_error(void **state)
{
    (void)state;
    char ca[800], cert[800], key[800], wrong_key[800];
    snprintf(ca, sizeof ca, "GXP_TLS_CA=%s/no-such-ca.crt", W.pki);
    snprintf(cert, sizeof cert, "GXP_TLS_CERT=%s/gxp.crt", W.pki);
    snprintf(key, sizeof key, "GXP_TLS_KEY=%s/gxp.key", W.pki);
    const char *missing[] = {ca, cert, key, NULL};
    char want[900];
    snprintf(want, sizeof want, "var=GXP_TLS_CA file=%s/no-such-ca.crt", W.pki);
    start_fails(false, missing, "gxp-missing-ca.log", 78, want);

    /* A key where the certificate should be. */
    snprintf(ca, sizeof ca, "GXP_TLS_CA=%s/ca.crt", W.pki);
    snprintf(cert, sizeof cert, "GXP_TLS_CERT=%s/gxp.key", W.pki);
    const char *not_cert[] = {ca, cert, key, NULL};
    snprintf(want, sizeof want, "tls file invalid var=GXP_TLS_CERT file=%s/gxp.key", W.pki);
    start_fails(false, not_cert, "gxp-key-as-cert.log", 78, want);

    /* Some of the three only. */
    const char *partial[] = {ca, NULL};
    start_fails(false, partial, "gxp-partial.log", 78, "var=GXP_TLS_KEY value=''");

    /* None, and no opt-in for plaintext. */
    const char *none[] = {NULL};
    start_fails(false, none, "gxp-none.log", 78, "GXP_GRPC_INSECURE=true for plaintext");

    /* A certificate and a key that do not belong together: gRPC refuses them at the bind. */
    snprintf(cert, sizeof cert, "GXP_TLS_CERT=%s/gxp.crt", W.pki);
    snprintf(wrong_key, sizeof wrong_key, "GXP_TLS_KEY=%s/backend.key", W.pki);
    const char *mismatch[] = {ca, cert, wrong_key, NULL};
    start_fails(false, mismatch, "gxp-mismatch.log", 1, "TLS certificate and key were refused");

    /* The backend likewise. */
    char bca[800], bcert[800], bkey[800];
    snprintf(bca, sizeof bca, "BACKEND_TLS_CA=%s/ca.crt", W.pki);
    snprintf(bcert, sizeof bcert, "BACKEND_TLS_CERT=%s/backend.crt", W.pki);
    snprintf(bkey, sizeof bkey, "BACKEND_TLS_KEY=%s/nope.key", W.pki);
    const char *bmissing[] = {bca, bcert, bkey, NULL};
    snprintf(want, sizeof want, "var=BACKEND_TLS_KEY file=%s/nope.key", W.pki);
    start_fails(true, bmissing, "backend-missing-key.log", 78, want);
}

int main(void)
{
    /* gRPC's native resolver for "localhost:PORT", before gRPC starts: Debian's c-ares keeps
     * a copy of the name it resolved for ever (a 10-byte leak LeakSanitizer reports). */
    setenv("GRPC_DNS_RESOLVER", "native", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gxp_serves_only_clients_of_its_ca),
        cmocka_unit_test(backend_serves_only_clients_of_its_ca),
        cmocka_unit_test(a_certificate_for_another_name_is_refused),
        cmocka_unit_test(backend_reaches_gxp_and_gxp_reaches_backend),
        cmocka_unit_test(a_bad_tls_file_is_a_clear_startup_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
