/* gf's one HTTP client: a GET or a JSON POST with libcurl, the answer read into memory (up to
 * a cap) and parsed when it is JSON. One easy handle per request: gf makes a handful. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "cli.h"
#include "gf/buf.h"

#define BODY_MAX ((size_t)32 << 20)

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    /* Anything short of the whole chunk makes libcurl fail the transfer (CURLE_WRITE_ERROR). */
    return gf_buf_add(ud, data, size * nmemb) == GF_OK ? size * nmemb : 0;
}

int cli_exit_for(long status)
{
    if (status == 0)
        return CLI_UNREACHABLE;
    return status >= 200 && status < 300 ? CLI_OK : CLI_REFUSED;
}

/* A token fits in a header as it is: visible ASCII, no spaces (base64url and dots). */
static bool header_safe(const char *s)
{
    for (; *s; s++)
        if (*s < 0x21 || *s > 0x7e)
            return false;
    return true;
}

/* One request; *retry_after_s: the answer's Retry-After in seconds (-1: none). */
static int http_once(const char *base, const char *path, const json_t *body, const char *token,
                     struct cli_reply *r, long *retry_after_s)
{
    memset(r, 0, sizeof *r);
    *retry_after_s = -1;
    struct gf_buf b;
    gf_buf_init(&b, BODY_MAX);
    char *url = NULL, *payload = NULL, *auth = NULL;
    struct curl_slist *headers = NULL;
    CURL *c = curl_easy_init();
    if (c == NULL) {
        snprintf(r->error, sizeof r->error, "curl_easy_init failed");
        goto out;
    }
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    size_t n = blen + strlen(path) + 1;
    url = malloc(n);
    if (url == NULL) {
        snprintf(r->error, sizeof r->error, "out of memory");
        goto out;
    }
    snprintf(url, n, "%.*s%s", (int)blen, base, path);

    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "gf/" CLI_VERSION);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    headers = curl_slist_append(headers, "Accept: application/json");
    if (token != NULL) {
        size_t an = strlen(token) + sizeof "Authorization: Bearer ";
        if (!header_safe(token) || (auth = malloc(an)) == NULL) {
            snprintf(r->error, sizeof r->error, "the token cannot be sent as a header");
            goto out;
        }
        snprintf(auth, an, "Authorization: Bearer %s", token);
        headers = curl_slist_append(headers, auth);
    }
    if (body != NULL) {
        payload = json_dumps(body, JSON_COMPACT);
        if (payload == NULL) {
            snprintf(r->error, sizeof r->error, "cannot encode the request body");
            goto out;
        }
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);

    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        snprintf(r->error, sizeof r->error, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_off_t ra = -1;
    if (curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
        *retry_after_s = (long)ra;
    if (gf_buf_len(&b) > 0)
        r->json = json_loadb(gf_buf_str(&b), gf_buf_len(&b), JSON_DECODE_ANY, NULL);
out:
    r->body = gf_buf_take(&b, &r->body_len);
    if (r->body == NULL) {
        r->body = strdup("");
        r->body_len = 0;
    }
    curl_slist_free_all(headers);
    free(payload);
    free(auth);
    free(url);
    if (c != NULL)
        curl_easy_cleanup(c);
    return cli_exit_for(r->status);
}

/* A 503 overloaded: the backend shed the request before it wrote anything (admission control,
 * ARCHITECTURE "Admission control"), so sending it again is safe, after the Retry-After it
 * names (1-5 s), a few times; any other answer is the answer. */
#define OVERLOADED_TRIES 5

static bool shed(const struct cli_reply *r)
{
    json_t *code = r->status == 503 ? json_object_get(r->json, "error") : NULL;
    return json_is_string(code) && strcmp(json_string_value(code), "overloaded") == 0;
}

int cli_http(const char *base, const char *path, const json_t *body, const char *token,
             struct cli_reply *r)
{
    for (int attempt = 1;; attempt++) {
        long wait_s;
        int rc = http_once(base, path, body, token, r, &wait_s);
        if (!shed(r) || attempt == OVERLOADED_TRIES)
            return rc;
        wait_s = wait_s < 1 ? 1 : wait_s > 5 ? 5 : wait_s;
        fprintf(stderr, "gf: the system is overloaded; sending again in %ld s\n", wait_s);
        cli_reply_cleanup(r);
        struct timespec ts = {.tv_sec = wait_s};
        while (nanosleep(&ts, &ts) != 0)
            ;
    }
}

void cli_reply_cleanup(struct cli_reply *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}
