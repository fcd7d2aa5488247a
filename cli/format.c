/* What gf prints: the server's JSON turned into aligned tables and one-line answers. Pure
 * functions of their JSON (no I/O but the FILE * they are given), so the unit tests hold
 * every shape against golden strings. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CELL_MAX 1024
#define MAX_COLS 8

enum col_kind { COL_TEXT, COL_NUM, COL_STATUS, COL_TYPE };

struct column {
    const char *header;
    const char *key;
    enum col_kind kind;
};

const char *format_status_name(long long v)
{
    static const char *const names[] = {"PENDING", "ABORTED", "COMMITTED"};
    return v >= 0 && v < 3 ? names[v] : "?";
}

const char *format_type_name(long long v)
{
    static const char *const names[] = {"ADD", "SUBTRACT"};
    return v >= 0 && v < 2 ? names[v] : "?";
}

/* Characters on screen: UTF-8 continuation bytes take no column. */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

/* One value as text: strings as they are, integers in decimal, null or absent as "-". */
static void cell(const json_t *v, enum col_kind kind, char *out, size_t n)
{
    if (v != NULL && json_is_integer(v) && kind == COL_STATUS)
        snprintf(out, n, "%s", format_status_name(json_integer_value(v)));
    else if (v != NULL && json_is_integer(v) && kind == COL_TYPE)
        snprintf(out, n, "%s", format_type_name(json_integer_value(v)));
    else if (v != NULL && json_is_string(v))
        snprintf(out, n, "%s", json_string_value(v));
    else if (v != NULL && json_is_integer(v))
        snprintf(out, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (v != NULL && json_is_real(v))
        snprintf(out, n, "%g", json_real_value(v));
    else if (v == NULL || json_is_null(v))
        snprintf(out, n, "-");
    else if (json_is_boolean(v))
        snprintf(out, n, "%s", json_is_true(v) ? "true" : "false");
    else {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(out, n, "%s", s != NULL ? s : "?");
        free(s);
    }
}

static void pad(FILE *out, size_t n)
{
    while (n-- > 0)
        fputc(' ', out);
}

/* title, then the rows of array `rows` (objects) under a header, columns two spaces apart,
 * numbers right-aligned, no trailing blanks. */
static void table(FILE *out, const char *title, const json_t *rows, const struct column *cols,
                  size_t ncols)
{
    char buf[CELL_MAX];
    size_t width[MAX_COLS];
    fprintf(out, "%s\n", title);
    if (!json_is_array(rows)) {
        fprintf(out, "  (unexpected answer)\n");
        return;
    }
    if (json_array_size(rows) == 0) {
        fprintf(out, "  (none)\n");
        return;
    }
    for (size_t c = 0; c < ncols; c++)
        width[c] = text_width(cols[c].header);
    size_t i;
    const json_t *row;
    json_array_foreach(rows, i, row)
    {
        for (size_t c = 0; c < ncols; c++) {
            cell(json_object_get(row, cols[c].key), cols[c].kind, buf, sizeof buf);
            size_t w = text_width(buf);
            width[c] = w > width[c] ? w : width[c];
        }
    }
    for (size_t r = 0; r <= json_array_size(rows); r++) {
        row = r > 0 ? json_array_get(rows, r - 1) : NULL;
        fputs("  ", out);
        for (size_t c = 0; c < ncols; c++) {
            if (r == 0)
                snprintf(buf, sizeof buf, "%s", cols[c].header);
            else
                cell(json_object_get(row, cols[c].key), cols[c].kind, buf, sizeof buf);
            size_t gap = width[c] - text_width(buf);
            bool last = c + 1 == ncols;
            if (cols[c].kind == COL_NUM)
                pad(out, gap);
            fputs(buf, out);
            if (cols[c].kind != COL_NUM && !last)
                pad(out, gap);
            if (!last)
                fputs("  ", out);
        }
        fputc('\n', out);
    }
}

void format_users(const json_t *body, FILE *out)
{
    static const struct column cols[] = {
        {"id", "id", COL_NUM}, {"name", "name", COL_TEXT}, {"updatedAt", "updatedAt", COL_TEXT}};
    table(out, "users", json_object_get(body, "users"), cols, 3);
}

void format_items(const json_t *body, FILE *out)
{
    static const struct column cols[] = {{"id", "id", COL_NUM},
                                         {"name", "name", COL_TEXT},
                                         {"cost", "cost", COL_NUM},
                                         {"updatedAt", "updatedAt", COL_TEXT}};
    table(out, "items", json_object_get(body, "items"), cols, 4);
}

void format_marketplace_items(const json_t *body, FILE *out)
{
    static const struct column cols[] = {{"id", "id", COL_NUM},
                                         {"itemId", "itemId", COL_NUM},
                                         {"count", "count", COL_NUM},
                                         {"updatedAt", "updatedAt", COL_TEXT}};
    table(out, "marketplace items", json_object_get(body, "marketplaceItems"), cols, 4);
}

void format_user_items(const json_t *body, FILE *out)
{
    static const struct column cols[] = {{"id", "id", COL_NUM},
                                         {"userId", "userId", COL_NUM},
                                         {"itemId", "itemId", COL_NUM},
                                         {"count", "count", COL_NUM},
                                         {"updatedAt", "updatedAt", COL_TEXT}};
    table(out, "user items", json_object_get(body, "userItems"), cols, 5);
}

void format_gxp_all(const json_t *body, FILE *out)
{
    static const struct column bal[] = {{"balance", "balance", COL_NUM},
                                        {"reserved", "reserved", COL_NUM},
                                        {"updatedAt", "updatedAt", COL_TEXT}};
    static const struct column tx[] = {{"userId", "balanceId", COL_NUM},
                                       {"type", "type", COL_TYPE},
                                       {"amount", "amount", COL_NUM},
                                       {"status", "status", COL_STATUS},
                                       {"correlationId", "correlationId", COL_TEXT},
                                       {"updatedAt", "updatedAt", COL_TEXT}};
    table(out, "gxp balances", json_object_get(body, "balances"), bal, 3);
    const json_t *more_b = json_object_get(body, "nextAfterBalance");
    if (json_is_integer(more_b))
        fprintf(out, "(more balances: GET /gxp/get-all?afterBalance=%lld)\n",
                (long long)json_integer_value(more_b));
    fputc('\n', out);
    table(out, "gxp transactions", json_object_get(body, "transactions"), tx, 6);
    const json_t *more = json_object_get(body, "nextAfter");
    if (json_is_integer(more))
        fprintf(out,
                "(the newest %zu shown; older ones: GET /gxp/get-all?order=newest&after=%lld)\n",
                json_array_size(json_object_get(body, "transactions")),
                (long long)json_integer_value(more));
}

void format_events(const json_t *body, FILE *out)
{
    static const struct column cols[] = {{"id", "id", COL_NUM},
                                         {"occurredAt", "occurredAt", COL_TEXT},
                                         {"event", "event", COL_TEXT},
                                         {"userId", "userId", COL_NUM},
                                         {"correlationId", "correlationId", COL_TEXT},
                                         {"text", "text", COL_TEXT}};
    table(out, "events", json_object_get(body, "events"), cols, 6);
}

/* A member as text ("-" when absent or null). */
static const char *member(const json_t *obj, const char *key, char *buf, size_t n)
{
    cell(json_object_get(obj, key), COL_TEXT, buf, n);
    return buf;
}

void format_created(const char *what, const char *id_key, const json_t *body, FILE *out)
{
    char id[64], cid[64];
    fprintf(out, "%s %s created (correlation id %s)\n", what, member(body, id_key, id, sizeof id),
            member(body, "correlationId", cid, sizeof cid));
}

void format_gxp_added(long long user, long long amount, const json_t *body, FILE *out)
{
    char cid[64];
    fprintf(out, "%lld gxp added to user %lld (correlation id %s)\n", amount, user,
            member(body, "correlationId", cid, sizeof cid));
}

void format_bought(long long user, long long item, const json_t *body, FILE *out)
{
    char uid[64], cid[64];
    const json_t *r = json_object_get(body, "buyItemResponse");
    fprintf(out, "user %lld bought item %lld: user item %s (correlation id %s)\n", user, item,
            member(r, "userItemId", uid, sizeof uid),
            member(body, "correlationId", cid, sizeof cid));
}

void format_user_gxp(long long user, const json_t *body, FILE *out)
{
    char b[64], r[64], u[64];
    fprintf(out, "user %lld: balance %s, reserved %s (updated %s)\n", user,
            member(body, "balance", b, sizeof b), member(body, "reserved", r, sizeof r),
            member(body, "updatedAt", u, sizeof u));
}

void format_text(const char *body, FILE *out)
{
    size_t n = strlen(body);
    while (n > 0 && (body[n - 1] == '\n' || body[n - 1] == '\r'))
        n--;
    fprintf(out, "%.*s\n", (int)n, body);
}

void format_raw(const char *body, size_t len, FILE *out)
{
    fwrite(body, 1, len, out);
    if (len == 0 || body[len - 1] != '\n')
        fputc('\n', out);
}

void format_refusal(long status, const json_t *body, FILE *err)
{
    const char *msg = json_string_value(json_object_get(body, "message"));
    const char *code = json_string_value(json_object_get(body, "error"));
    if (msg != NULL)
        fprintf(err, "gf: %s (%s, HTTP %ld)\n", msg, code != NULL ? code : "no error code", status);
    else
        fprintf(err, "gf: the server refused with HTTP %ld\n", status);
}

/* ---- trace ---------------------------------------------------------------------------------- */

/* One step of a trace: its time, its name, what happened. */
#define STEP(out, when, label, fmt, ...)                                                           \
    fprintf(out, "  %-24s  %-8s  " fmt "\n", when, label, __VA_ARGS__)

void format_trace(const json_t *tx, const json_t *events, const char *why, FILE *out)
{
    char a[CELL_MAX], b[64], c[64], d[64];
    const char *kind = json_string_value(json_object_get(tx, "kind"));
    fprintf(out, "transaction %s\n", member(tx, "correlationId", a, sizeof a));
    if (kind != NULL && strcmp(kind, "buy") == 0)
        STEP(out, member(tx, "createdAt", a, sizeof a), "started", "buy: user %s, item %s, cost %s",
             member(tx, "userId", b, sizeof b), member(tx, "itemId", c, sizeof c),
             member(tx, "amount", d, sizeof d));
    else
        STEP(out, member(tx, "createdAt", a, sizeof a), "started", "%s: user %s, amount %s",
             kind != NULL ? kind : "?", member(tx, "userId", b, sizeof b),
             member(tx, "amount", d, sizeof d));

    /* In the protocol's order (SPEC §5): gxp prepares, the backend decides, gxp finalizes. */
    const json_t *g = json_object_get(tx, "gxp");
    if (json_is_object(g))
        STEP(out, member(g, "createdAt", a, sizeof a), "gxp", "%s %s prepared",
             member(g, "type", b, sizeof b), member(g, "amount", c, sizeof c));
    else
        STEP(out, "-", "gxp", "%s", "no gxp transaction");

    const json_t *dec = json_object_get(tx, "decision");
    if (json_is_object(dec))
        STEP(out, member(dec, "createdAt", a, sizeof a), "decision", "%s",
             member(dec, "state", b, sizeof b));
    else
        STEP(out, "-", "decision", "%s", "not decided yet");

    if (json_is_object(g))
        STEP(out, member(g, "updatedAt", a, sizeof a), "gxp", "%s",
             member(g, "status", b, sizeof b));

    const json_t *list = json_object_get(events, "events");
    if (events == NULL) {
        STEP(out, "-", "event", "unknown (%s)", why != NULL ? why : "event log not read");
    } else if (!json_is_array(list) || json_array_size(list) == 0) {
        STEP(out, "-", "event", "%s", "no event");
    } else {
        size_t i;
        const json_t *e;
        json_array_foreach(list, i, e)
        {
            STEP(out, member(e, "storedAt", a, sizeof a), "event", "%s stored (occurred %s)",
                 member(e, "event", b, sizeof b), member(e, "occurredAt", c, sizeof c));
        }
    }
}
