/* Validation of the HTTP API's input (SPEC §2): strict JSON bodies, integer fields that may
 * come as digit strings, names, list paging, correlation ids, If-Match and Idempotency-Key,
 * and the request of ResolveTransaction. No I/O. */
#include "validate.h"

#include "gf/auth.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Fills err without be_err_set, so that this file links alone into its unit test. */
static enum gf_status fail(struct be_err *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum gf_status fail(struct be_err *err, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    err->code = code;
    return GF_EINVAL;
}

static const struct validate_field user_create[] = {{"name", VALIDATE_NAME, true},
                                                    {"password", VALIDATE_SECRET, false}};
static const struct validate_field login[] = {{"name", VALIDATE_NAME, true},
                                              {"password", VALIDATE_SECRET, true}};
static const struct validate_field password[] = {{"password", VALIDATE_SECRET, false},
                                                 {"newPassword", VALIDATE_SECRET, true},
                                                 {"userId", VALIDATE_ID, false}};
static const struct validate_field item_create[] = {{"name", VALIDATE_NAME, true},
                                                    {"cost", VALIDATE_COST, true}};
static const struct validate_field item_patch[] = {{"name", VALIDATE_NAME, false},
                                                   {"cost", VALIDATE_COST, false}};
static const struct validate_field marketplace_create[] = {{"itemId", VALIDATE_ID, true},
                                                           {"count", VALIDATE_COUNT, true}};
static const struct validate_field buy[] = {{"userId", VALIDATE_ID, true},
                                            {"itemId", VALIDATE_ID, true}};
static const struct validate_field user_item_create[] = {
    {"userId", VALIDATE_ID, true}, {"itemId", VALIDATE_ID, true}, {"count", VALIDATE_COUNT, true}};
static const struct validate_field gxp_add[] = {{"userId", VALIDATE_ID, true},
                                                {"amount", VALIDATE_COUNT, true}};

static const struct validate_field auction_create_body[] = {
    {"userId", VALIDATE_ID, true},
    {"userItemId", VALIDATE_ID, true},
    {"minBid", VALIDATE_COUNT, true},
    {"durationSeconds", VALIDATE_COUNT, true}};
static const struct validate_field auction_bid_body[] = {{"auctionId", VALIDATE_ID, true},
                                                         {"userId", VALIDATE_ID, true},
                                                         {"amount", VALIDATE_COUNT, true}};
static const struct validate_field auction_cancel_body[] = {{"auctionId", VALIDATE_ID, true},
                                                            {"userId", VALIDATE_ID, true}};

#define NFIELDS(f) (sizeof f / sizeof f[0])
const struct validate_body_def validate_bodies[VALIDATE_NBODIES] = {
    [VALIDATE_BODY_USER_CREATE] = {user_create, NFIELDS(user_create)},
    [VALIDATE_BODY_ITEM_CREATE] = {item_create, NFIELDS(item_create)},
    [VALIDATE_BODY_ITEM_PATCH] = {item_patch, NFIELDS(item_patch)},
    [VALIDATE_BODY_MARKETPLACE_CREATE] = {marketplace_create, NFIELDS(marketplace_create)},
    [VALIDATE_BODY_BUY] = {buy, NFIELDS(buy)},
    [VALIDATE_BODY_AUCTION_CREATE] = {auction_create_body, NFIELDS(auction_create_body)},
    [VALIDATE_BODY_AUCTION_BID] = {auction_bid_body, NFIELDS(auction_bid_body)},
    [VALIDATE_BODY_AUCTION_CANCEL] = {auction_cancel_body, NFIELDS(auction_cancel_body)},
    [VALIDATE_BODY_USER_ITEM_CREATE] = {user_item_create, NFIELDS(user_item_create)},
    [VALIDATE_BODY_GXP_ADD] = {gxp_add, NFIELDS(gxp_add)},
    [VALIDATE_BODY_LOGIN] = {login, NFIELDS(login)},
    [VALIDATE_BODY_PASSWORD] = {password, NFIELDS(password)},
};
#undef NFIELDS

/* s[0..len) is a non-empty run of decimal digits whose value is at most max. */
GF_TESTABLE GF_MUSTCHECK bool validate_digits(const char *s, size_t len, int64_t max, int64_t *out)
{
    if (s == NULL || len == 0)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        int d = s[i] - '0';
        if (v > (max - d) / 10) /* v * 10 + d would pass max: stop before overflowing */
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* One JSON value as an integer in min..max: a JSON integer or a string of decimal digits
 * only ("12"); floats, signs, spaces, booleans, null, arrays and objects are refused.
 * field names the value in err (code invalid_field). */
GF_TESTABLE GF_MUSTCHECK enum gf_status validate_number(const json_t *v, const char *field,
                                                        int64_t min, int64_t max, int64_t *out,
                                                        struct be_err *err)
{
    int64_t n = 0;
    bool ok = false;
    if (json_is_integer(v)) {
        n = (int64_t)json_integer_value(v);
        ok = true;
    } else if (json_is_string(v)) {
        ok = validate_digits(json_string_value(v), json_string_length(v), max, &n);
    }
    if (!ok || n < min || n > max)
        return fail(err, "invalid_field", "field \"%s\" must be an integer from %lld to %lld",
                    field, (long long)min, (long long)max);
    *out = n;
    return GF_OK;
}

/* A name: a JSON string of 1..255 bytes (jansson guarantees valid UTF-8 and no NUL) without
 * control characters (below 0x20, or 0x7f). */
GF_TESTABLE GF_MUSTCHECK enum gf_status validate_name(const json_t *v, const char *field,
                                                      const char **out, struct be_err *err)
{
    if (!json_is_string(v))
        goto bad;
    const unsigned char *s = (const unsigned char *)json_string_value(v);
    size_t len = json_string_length(v);
    if (len < 1 || len > VALIDATE_NAME_MAX)
        goto bad;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f)
            goto bad;
    }
    *out = (const char *)s;
    return GF_OK;
bad:
    return fail(err, "invalid_field",
                "field \"%s\" must be a string of 1 to %d bytes without control characters", field,
                VALIDATE_NAME_MAX);
}

/* The length of at most max bytes of s that ends on a UTF-8 character boundary, so that a
 * clipped client string stays valid UTF-8 in an error message (jansson refuses others). */
static int utf8_clip(const char *s, int max)
{
    int n = (int)strnlen(s, (size_t)max + 1);
    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* Parse errors: the position only, since jansson's text quotes the client's bytes. */
static enum gf_status parse_error(const json_error_t *je, struct be_err *err)
{
    switch (json_error_code(je)) {
    case json_error_invalid_utf8:
        return fail(err, "invalid_utf8", "the request body is not valid UTF-8");
    case json_error_duplicate_key:
        return fail(err, "duplicate_field", "the request body names a field twice");
    case json_error_numeric_overflow:
        return fail(err, "invalid_field", "a number in the request body is out of range");
    default:
        return fail(err, "malformed_json",
                    "the request body is not valid JSON (line %d, column %d)", je->line,
                    je->column);
    }
}

static enum gf_status check_field(const json_t *v, const struct validate_field *f,
                                  struct validate_value *out, struct be_err *err)
{
    enum gf_status st;
    switch (f->kind) {
    case VALIDATE_ID:
        st = validate_number(v, f->name, 1, VALIDATE_ID_MAX, &out->num, err);
        break;
    case VALIDATE_COUNT:
        st = validate_number(v, f->name, 1, VALIDATE_U31_MAX, &out->num, err);
        break;
    case VALIDATE_COST:
        st = validate_number(v, f->name, 0, VALIDATE_U31_MAX, &out->num, err);
        break;
    case VALIDATE_NAME:
        st = validate_name(v, f->name, &out->str, err);
        break;
    case VALIDATE_SECRET:
        if (json_is_string(v) && json_string_length(v) >= 1 &&
            json_string_length(v) <= GF_AUTH_PASSWORD_MAX) {
            out->str = json_string_value(v);
            st = GF_OK;
        } else {
            st = fail(err, "invalid_field", "field \"%s\" must be a string of 1 to %d bytes",
                      f->name, GF_AUTH_PASSWORD_MAX);
        }
        break;
    default:
        st = fail(err, "invalid_field", "field \"%s\" cannot be read", f->name);
        break;
    }
    if (st == GF_OK)
        out->present = true;
    return st;
}

/* Every member must be a known field with a valid value; then every required one present. */
static enum gf_status check_members(json_t *root, const struct validate_field *fields,
                                    size_t nfields, struct validate_value *values,
                                    struct be_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        size_t i = 0;
        while (i < nfields && strcmp(fields[i].name, key) != 0)
            i++;
        if (i == nfields)
            return fail(err, "unknown_field", "unknown field \"%.*s\"", utf8_clip(key, 64), key);
        if (check_field(v, &fields[i], &values[i], err) != GF_OK)
            return GF_EINVAL;
    }
    for (size_t i = 0; i < nfields; i++) {
        if (fields[i].required && !values[i].present)
            return fail(err, "missing_field", "field \"%s\" is required", fields[i].name);
    }
    return GF_OK;
}

enum gf_status validate_body(const char *body, size_t len, const struct validate_field *fields,
                             size_t nfields, json_t **root_out, struct validate_value *values,
                             struct be_err *err)
{
    enum gf_status st = GF_EINVAL;
    json_t *root = NULL;
    memset(values, 0, nfields * sizeof *values);
    if (body == NULL || len == 0) {
        st = fail(err, "empty_body", "the request body is empty: a JSON object is expected");
        goto out;
    }
    json_error_t je;
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (root == NULL) {
        st = parse_error(&je, err);
        goto out;
    }
    if (!json_is_object(root)) {
        st = fail(err, "invalid_body", "the request body must be a JSON object");
        goto out;
    }
    st = check_members(root, fields, nfields, values, err);
    if (st != GF_OK)
        goto out;
    *root_out = root;
    root = NULL;
out:
    if (st != GF_OK)
        memset(values, 0, nfields * sizeof *values); /* nothing points into a freed document */
    json_decref(root);
    return st;
}

enum gf_status validate_page(const char *limit, const char *after, int64_t cap, struct be_page *out,
                             struct be_err *err)
{
    int64_t l = cap, a = 0;
    /* Values past the cap are cut, not refused: "give me everything" stays a valid request. */
    if (limit != NULL) {
        if (!validate_digits(limit, strlen(limit), INT64_MAX, &l) || l < 1)
            return fail(err, "invalid_field", "parameter \"limit\" must be a positive integer");
        if (l > cap)
            l = cap;
    }
    if (after != NULL && !validate_digits(after, strlen(after), VALIDATE_ID_MAX, &a))
        return fail(err, "invalid_field", "parameter \"after\" must be an integer from 0 to %lld",
                    VALIDATE_ID_MAX);
    out->limit = (int)l; /* cap comes from BACKEND_LIST_CAP: at most 1,000,000 */
    out->after = a;
    return GF_OK;
}

enum gf_status validate_gxp_page(const char *limit, const char *after, const char *after_balance,
                                 const char *order, struct be_gxp_page *out, struct be_err *err)
{
    struct be_gxp_page p = {0};
    if (limit != NULL &&
        (!validate_digits(limit, strlen(limit), UINT32_MAX, &p.limit) || p.limit < 1))
        return fail(err, "invalid_field", "parameter \"limit\" must be an integer from 1 to %lld",
                    (long long)UINT32_MAX);
    if (after != NULL && !validate_digits(after, strlen(after), VALIDATE_ID_MAX, &p.after_tx))
        return fail(err, "invalid_field", "parameter \"after\" must be an integer from 0 to %lld",
                    VALIDATE_ID_MAX);
    if (after_balance != NULL &&
        !validate_digits(after_balance, strlen(after_balance), UINT32_MAX, &p.after_balance))
        return fail(err, "invalid_field",
                    "parameter \"afterBalance\" must be an integer from 0 to %lld",
                    (long long)UINT32_MAX);
    if (order != NULL && strcmp(order, "newest") != 0 && strcmp(order, "oldest") != 0)
        return fail(err, "invalid_field", "parameter \"order\" must be \"oldest\" or \"newest\"");
    p.newest_first = order != NULL && strcmp(order, "newest") == 0;
    p.paged = limit != NULL || after != NULL || after_balance != NULL || order != NULL;
    *out = p;
    return GF_OK;
}

enum gf_status validate_query_id(const char *s, const char *name, int64_t *out, struct be_err *err)
{
    if (s == NULL)
        return fail(err, "missing_field", "parameter \"%s\" is required", name);
    int64_t v;
    if (!validate_digits(s, strlen(s), VALIDATE_ID_MAX, &v) || v < 1)
        return fail(err, "invalid_field", "parameter \"%s\" must be an integer from 1 to %lld",
                    name, VALIDATE_ID_MAX);
    *out = v;
    return GF_OK;
}

enum gf_status validate_query_uuid(const char *s, const char *name, char out[GF_UUID_STRLEN + 1],
                                   struct be_err *err)
{
    if (s == NULL || *s == '\0')
        return fail(err, "missing_field", "query parameter %s is required", name);
    if (!gf_uuid_normalize(s, strlen(s), out))
        return fail(err, "invalid_field", "%s must be a UUID", name);
    return GF_OK;
}

bool validate_resolve_request(const Backend__ResolveTransactionRequest *req,
                              char cid[GF_UUID_STRLEN + 1])
{
    return req->correlationid != NULL &&
           gf_uuid_normalize(req->correlationid, strlen(req->correlationid), cid);
}

bool validate_if_match(const char *h, int64_t *version)
{
    if (h == NULL)
        return false;
    size_t b = 0, e = strlen(h);
    while (b < e && (h[b] == ' ' || h[b] == '\t'))
        b++;
    while (e > b && (h[e - 1] == ' ' || h[e - 1] == '\t'))
        e--;
    /* A weak validator names the same version here: items have no other representation. */
    bool weak = e - b >= 2 && h[b] == 'W' && h[b + 1] == '/';
    if (weak)
        b += 2;
    bool quoted = e - b >= 2 && h[b] == '"' && h[e - 1] == '"';
    if (quoted) {
        b++;
        e--;
    } else if (weak) {
        return false; /* W/ comes only before a quoted tag */
    }
    return validate_digits(h + b, e - b, INT64_MAX, version);
}

bool validate_idempotency_key(const char *h)
{
    if (h == NULL)
        return false;
    size_t len = strnlen(h, VALIDATE_KEY_MAX + 1);
    if (len < 1 || len > VALIDATE_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (h[i] < 0x20 || h[i] > 0x7e)
            return false;
    }
    return true;
}
