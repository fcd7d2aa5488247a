/* The backend integration tests' HTTP client (libcurl, one handle per thread) and the
 * assertions on the answers' JSON shapes (see backend_fixture.h). */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "backend_fixture.h"
#include "gf/uuid.h"
/* ---- HTTP ------------------------------------------------------------------------------- */

static _Thread_local CURL *tl_curl;

struct buf {
    char *p;
    size_t len, cap;
};

static int buf_add(struct buf *b, const char *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (cap > ((size_t)64 << 20))
            return -1;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            return -1;
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    return buf_add(ud, data, size * nmemb) == 0 ? size * nmemb : 0;
}

/* Keeps only the headers of the final answer (not those of a 100 Continue). */
static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    struct buf *b = ud;
    if (size * nmemb >= 5 && strncmp(data, "HTTP/", 5) == 0)
        b->len = 0;
    return buf_add(b, data, size * nmemb) == 0 ? size * nmemb : 0;
}

void http_thread_done(void)
{
    if (tl_curl)
        curl_easy_cleanup(tl_curl);
    tl_curl = NULL;
}

long http_n(struct backend_world *w, const char *method, const char *path, const char *body,
            size_t body_len, const char *const headers[], struct http_res *res)
{
    memset(res, 0, sizeof *res);
    if (tl_curl == NULL)
        tl_curl = curl_easy_init();
    CURL *c = tl_curl;
    if (c == NULL) {
        snprintf(res->error, sizeof res->error, "curl_easy_init failed");
        res->body = strdup("");
        return 0;
    }
    curl_easy_reset(c);
    char url[2048];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", w->http_port, path);
    struct buf bb = {0}, hb = {0};
    struct curl_slist *hl = NULL;
    bool has_ct = false, has_auth = false;
    for (int i = 0; headers && headers[i]; i++) {
        hl = curl_slist_append(hl, headers[i]);
        has_ct |= strncasecmp(headers[i], "Content-Type:", 13) == 0;
        has_auth |= strncasecmp(headers[i], "Authorization:", 14) == 0;
    }
    if (!has_auth && w->admin_token != NULL) {
        char auth[GF_AUTH_TOKEN_MAX + 32];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", w->admin_token);
        hl = curl_slist_append(hl, auth);
    }
    hl = curl_slist_append(hl, "Expect:");
    if (body && !has_ct)
        hl = curl_slist_append(hl, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &bb);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &hb);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, res->error);
    if (strcmp(method, "GET") == 0 && body == NULL) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else {
        if (body || strcmp(method, "POST") == 0) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
        }
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode cc = curl_easy_perform(c);
    if (cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
    else if (res->error[0] == '\0')
        snprintf(res->error, sizeof res->error, "%s", curl_easy_strerror(cc));
    curl_slist_free_all(hl);
    res->body = bb.p ? bb.p : strdup("");
    res->body_len = bb.len;
    res->headers = hb.p ? hb.p : strdup("");
    if (res->body_len > 0)
        res->json = json_loadb(res->body, res->body_len, JSON_DECODE_ANY, NULL);
    return res->status;
}

long http(struct backend_world *w, const char *method, const char *path, const char *body,
          const char *const headers[], struct http_res *res)
{
    return http_n(w, method, path, body, body ? strlen(body) : 0, headers, res);
}

void http_res_free(struct http_res *res)
{
    free(res->body);
    free(res->headers);
    json_decref(res->json);
    memset(res, 0, sizeof *res);
}

const char *http_header(const struct http_res *res, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *line = res->headers; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (len > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            const char *e = line + len;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && (e[-1] == '\r' || e[-1] == ' '))
                e--;
            snprintf(out, n, "%.*s", (int)(e - v), v);
            return out;
        }
        line = eol ? eol + 1 : NULL;
    }
    return NULL;
}

/* ---- JSON and shapes -------------------------------------------------------------------- */

void assert_keys(const json_t *obj, const char *keys)
{
    char *dump = json_dumps(obj, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!json_is_object(obj))
        fail_msg("not an object: %s", dump ? dump : "(null)");
    size_t want = 0;
    char list[512];
    snprintf(list, sizeof list, "%s", keys);
    char *save = NULL;
    for (char *k = strtok_r(list, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
        want++;
        if (json_object_get(obj, k) == NULL)
            fail_msg("key %s missing in %s", k, dump);
    }
    if (json_object_size(obj) != want)
        fail_msg("keys of %s are not exactly %s", dump, keys);
    free(dump);
}

long long jint(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        fail_msg("%s is not an integer", key);
    return json_integer_value(v);
}

const char *jstr(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        fail_msg("%s is not a string", key);
    return json_string_value(v);
}

json_t *jarr(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_array(v))
        fail_msg("%s is not an array", key);
    return v;
}

void assert_iso8601_ms(const char *s)
{
    static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    bool ok = s && strlen(s) == sizeof pat - 1;
    for (size_t i = 0; ok && i < sizeof pat - 1; i++)
        ok = pat[i] == 'd' ? isdigit((unsigned char)s[i]) != 0 : s[i] == pat[i];
    if (!ok || strncmp(s, "2020", 4) < 0)
        fail_msg("not an ISO-8601 UTC time with milliseconds: %s", s ? s : "(null)");
}

void assert_uuid(const char *s)
{
    if (s == NULL || !gf_uuid_valid(s, strlen(s)))
        fail_msg("not a UUID: %s", s ? s : "(null)");
}

static void assert_cid_header(const struct http_res *res)
{
    char hdr[128];
    const char *cid = jstr(res->json, "correlationId");
    assert_uuid(cid);
    assert_non_null(http_header(res, "X-Correlation-Id", hdr, sizeof hdr));
    assert_string_equal(hdr, cid);
}

void assert_ok(const struct http_res *res, const char *keys)
{
    if (res->status != 200)
        fail_msg("expected 200, got %ld: %s %s", res->status, res->body, res->error);
    assert_non_null(res->json);
    assert_keys(res->json, keys);
    if (json_object_get(res->json, "correlationId"))
        assert_cid_header(res);
}

void assert_error(const struct http_res *res, long status, const char *code)
{
    if (res->status != status)
        fail_msg("expected %ld, got %ld: %s %s", status, res->status, res->body, res->error);
    if (res->json == NULL)
        fail_msg("error body is not JSON: %s", res->body);
    assert_keys(res->json, "message,error,correlationId");
    const char *err = jstr(res->json, "error");
    bool snake = err[0] >= 'a' && err[0] <= 'z';
    for (const char *p = err; *p; p++)
        snake &= (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_';
    if (!snake)
        fail_msg("error code is not snake_case: %s", err);
    if (code && strcmp(err, code) != 0)
        fail_msg("expected error %s, got %s (%s)", code, err, res->body);
    const char *msg = jstr(res->json, "message");
    assert_true(msg[0] != '\0');
    static const char *const sql[] = {"ERROR:",   "SELECT",          "INSERT",
                                      "UPDATE ",  "violates",        "duplicate key",
                                      "SQLSTATE", "syntax error at", "relation \""};
    for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++)
        if (strstr(msg, sql[i]))
            fail_msg("message leaks SQL (%s): %s", sql[i], msg);
    assert_cid_header(res);
}

double world_metric(struct backend_world *w, const char *series)
{
    struct http_res r;
    double v = -1;
    if (http(w, "GET", "/metrics", NULL, NULL, &r) == 200) {
        size_t n = strlen(series);
        for (const char *p = r.body; p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
            if (strncmp(p, series, n) == 0 && p[n] == ' ') {
                v = strtod(p + n + 1, NULL);
                break;
            }
        }
    }
    http_res_free(&r);
    return v;
}
