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

/* ---- auctions ------------------------------------------------------------------------------- */

void format_auction_created(const json_t *body, FILE *out)
{
    char id[64], ends[64], cid[64];
    fprintf(out, "auction %s created, ends at %s (correlation id %s)\n",
            member(body, "auctionId", id, sizeof id), member(body, "endsAt", ends, sizeof ends),
            member(body, "correlationId", cid, sizeof cid));
}

void format_auction_bid(long long auction, long long user, long long amount, const json_t *body,
                        FILE *out)
{
    char id[64], cid[64];
    fprintf(out, "user %lld bid %lld on auction %lld: bid %s (correlation id %s)\n", user, amount,
            auction, member(body, "bidId", id, sizeof id),
            member(body, "correlationId", cid, sizeof cid));
}

void format_auction_cancelled(const json_t *body, FILE *out)
{
    char id[64], cid[64];
    fprintf(out, "auction %s cancelled (correlation id %s)\n",
            member(body, "auctionId", id, sizeof id),
            member(body, "correlationId", cid, sizeof cid));
}

void format_auctions(const json_t *body, const char *status, long long limit, FILE *out)
{
    static const struct column cols[] = {{"id", "id", COL_NUM},
                                         {"sellerId", "sellerId", COL_NUM},
                                         {"itemId", "itemId", COL_NUM},
                                         {"minBid", "minBid", COL_NUM},
                                         {"leadingBid", "leadingBid", COL_NUM},
                                         {"bidderId", "bidderId", COL_NUM},
                                         {"status", "status", COL_TEXT},
                                         {"endsAt", "endsAt", COL_TEXT}};
    const json_t *list = json_object_get(body, "auctions");
    if (!json_is_array(list)) {
        table(out, "auctions", list, cols, 8); /* says it is unexpected */
        return;
    }
    /* The leading bid is an object of its own: its amount and bidder become two columns. */
    json_t *rows = json_array();
    size_t i;
    const json_t *a;
    json_array_foreach(list, i, a)
    {
        const json_t *lead = json_object_get(a, "leadingBid");
        if (rows != NULL &&
            json_array_append_new(rows, json_pack("{s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?}", "id",
                                                  json_object_get(a, "id"), "sellerId",
                                                  json_object_get(a, "sellerId"), "itemId",
                                                  json_object_get(a, "itemId"), "minBid",
                                                  json_object_get(a, "minBid"), "leadingBid",
                                                  json_object_get(lead, "amount"), "bidderId",
                                                  json_object_get(lead, "userId"), "status",
                                                  json_object_get(a, "status"), "endsAt",
                                                  json_object_get(a, "endsAt"))) != 0) {
            json_decref(rows);
            rows = NULL;
        }
    }
    if (rows == NULL) {
        fprintf(out, "auctions\n  (out of memory)\n");
        return;
    }
    table(out, "auctions", rows, cols, 8);
    json_decref(rows);
    size_t n = json_array_size(list);
    const json_t *last = json_object_get(json_array_get(list, n - 1), "id");
    if (limit > 0 && n > 0 && n == (size_t)limit && json_is_integer(last))
        fprintf(out, "(a full page; the next: gf auctions%s%s --limit %lld --after %lld)\n",
                status != NULL ? " --status " : "", status != NULL ? status : "", limit,
                (long long)json_integer_value(last));
}

/* A member holding an ISO-8601 time ("2026-11-26T05:43:31.712Z") as milliseconds since the
 * epoch; false when absent, null or not such a time. */
static bool time_ms(const json_t *obj, const char *key, long long *ms)
{
    const char *s = json_string_value(json_object_get(obj, key));
    long long t;
    if (s == NULL || !tokens_parse_time(s, &t))
        return false;
    long long frac = 0;
    int digits = 0;
    if (strlen(s) > 19 && s[19] == '.')
        for (const char *p = s + 20; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                frac = frac * 10 + (*p - '0');
    for (; digits < 3; digits++)
        frac *= 10;
    *ms = t * 1000 + frac;
    return true;
}

/* A length of time as "5.213s", "12m03.120s", "3h02m10s" or "2d03h10m" (an auction lasts up to
 * 7 days); plus: a '+' before one that is not negative. */
static void span(long long ms, bool plus, char *out, size_t n)
{
    const char *sign = ms < 0 ? "-" : plus ? "+" : "";
    long long a = ms < 0 ? -ms : ms;
    if (a < 60000)
        snprintf(out, n, "%s%lld.%03llds", sign, a / 1000, a % 1000);
    else if (a < 3600000)
        snprintf(out, n, "%s%lldm%02lld.%03llds", sign, a / 60000, a / 1000 % 60, a % 1000);
    else if (a < 86400000)
        snprintf(out, n, "%s%lldh%02lldm%02llds", sign, a / 3600000, a / 60000 % 60, a / 1000 % 60);
    else
        snprintf(out, n, "%s%lldd%02lldh%02lldm", sign, a / 86400000, a / 3600000 % 24,
                 a / 60000 % 60);
}

/* The time from obj's member `from` to obj2's member `to` into out, "-" when either is not a
 * time. */
static const char *between(const json_t *obj, const char *from, const json_t *obj2, const char *to,
                           bool plus, char *out, size_t n)
{
    long long a, b;
    if (time_ms(obj, from, &a) && time_ms(obj2, to, &b))
        span(b - a, plus, out, n);
    else
        snprintf(out, n, "-");
    return out;
}

static bool is_pending(const json_t *step)
{
    const char *state = json_string_value(json_object_get(step, "state"));
    return state != NULL && strcmp(state, "pending") == 0;
}

/* One step in the timeline: where it sorts (when it was due) and where it came. */
struct step_at {
    long long ms;
    size_t index;
};

static int step_cmp(const void *x, const void *y)
{
    const struct step_at *a = x, *b = y;
    if (a->ms != b->ms)
        return a->ms < b->ms ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Below the steps' table: the errors of steps that failed, then whether the saga is complete
 * or which steps it still waits for (order: the table's; pending: how many are). */
static void steps_outcome(const json_t *auction, const json_t *steps, const struct step_at *order,
                          size_t n, size_t pending, FILE *out)
{
    char a[CELL_MAX], b[64], c[64], d[64];
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(steps, order[i].index);
        if (json_is_string(json_object_get(s, "lastError")))
            fprintf(out, "  step %s (%s): last error: %s\n", member(s, "id", b, sizeof b),
                    member(s, "kind", c, sizeof c), member(s, "lastError", a, sizeof a));
    }
    if (pending == 0) {
        fprintf(out, "saga complete: %zu steps, none pending\n", n);
        return;
    }
    fprintf(out, "saga in progress: %zu of %zu steps pending:", pending, n);
    const char *sep = " ";
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(steps, order[i].index);
        if (!is_pending(s))
            continue;
        fprintf(out, "%s%s due at %s (%s)", sep, member(s, "kind", c, sizeof c),
                member(s, "dueAt", d, sizeof d),
                between(auction, "createdAt", s, "dueAt", true, b, sizeof b));
        sep = ", ";
    }
    fputc('\n', out);
}

/* The saga's steps as a table in the order they were due (a settlement and what it leads to at
 * the end, whenever each ran; ties in the server's order, the order they were written), their
 * errors below it, then the line saying whether the saga is complete. */
static void format_steps(const json_t *auction, const json_t *steps, FILE *out)
{
    static const struct column cols[] = {
        {"at", "at", COL_TEXT},        {"kind", "kind", COL_TEXT},
        {"state", "state", COL_TEXT},  {"userId", "userId", COL_NUM},
        {"amount", "amount", COL_NUM}, {"attempts", "attempts", COL_NUM},
        {"late", "late", COL_TEXT},    {"correlationId", "correlationId", COL_TEXT},
    };
    size_t n = json_array_size(steps);
    struct step_at *order = n > 0 ? calloc(n, sizeof *order) : NULL;
    json_t *rows = json_array();
    if (!json_is_array(steps) || (n > 0 && order == NULL) || rows == NULL) {
        table(out, "saga steps", json_is_array(steps) ? NULL : steps, cols, 8);
        free(order);
        json_decref(rows);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(steps, i);
        order[i].index = i;
        if (!time_ms(s, "dueAt", &order[i].ms))
            order[i].ms = 0;
    }
    if (n > 0)
        qsort(order, n, sizeof *order, step_cmp);
    size_t pending = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(steps, order[i].index);
        char at[32] = "-", late[32] = "-";
        const char *state = json_string_value(json_object_get(s, "state"));
        if (is_pending(s))
            pending++;
        else
            between(auction, "createdAt", s, "doneAt", true, at, sizeof at);
        if (state != NULL && strcmp(state, "done") == 0) /* a skipped step did not run */
            between(s, "dueAt", s, "doneAt", false, late, sizeof late);
        json_array_append_new(
            rows,
            json_pack("{s:s,s:O?,s:O?,s:O?,s:O?,s:O?,s:s,s:O?}", "at", at, "kind",
                      json_object_get(s, "kind"), "state", json_object_get(s, "state"), "userId",
                      json_object_get(s, "userId"), "amount", json_object_get(s, "amount"),
                      "attempts", json_object_get(s, "attempts"), "late", late, "correlationId",
                      json_object_get(s, "correlationId")));
    }
    table(out, "saga steps", json_array_size(rows) == n ? rows : NULL, cols, 8);
    json_decref(rows);
    steps_outcome(auction, steps, order, n, pending, out);
    free(order);
}

/* One line of an auction's head: a label, then what it says. */
#define FIELD(out, label, fmt, ...) fprintf(out, "  %-8s  " fmt "\n", label, __VA_ARGS__)

void format_auction(const json_t *body, FILE *out)
{
    char a[CELL_MAX], b[64], c[64], d[64];
    if (!json_is_object(body)) {
        fprintf(out, "auction\n  (unexpected answer)\n");
        return;
    }
    fprintf(out, "auction %s (correlation id %s)\n", member(body, "id", b, sizeof b),
            member(body, "correlationId", a, sizeof a));
    FIELD(out, "seller", "user %s, user item %s (item %s)", member(body, "sellerId", b, sizeof b),
          member(body, "userItemId", c, sizeof c), member(body, "itemId", d, sizeof d));
    FIELD(out, "min bid", "%s", member(body, "minBid", b, sizeof b));
    FIELD(out, "status", "%s", member(body, "status", a, sizeof a));
    FIELD(out, "created", "%s", member(body, "createdAt", b, sizeof b));
    FIELD(out, "ends", "%s", member(body, "endsAt", b, sizeof b));
    if (json_is_string(json_object_get(body, "closedAt")))
        FIELD(out, "closed", "%s", member(body, "closedAt", b, sizeof b));
    const json_t *lead = json_object_get(body, "leadingBid");
    if (json_is_object(lead))
        FIELD(out, "leading", "bid %s: %s by user %s", member(lead, "bidId", b, sizeof b),
              member(lead, "amount", c, sizeof c), member(lead, "userId", d, sizeof d));
    else
        FIELD(out, "leading", "%s", "no bid");
    const json_t *result = json_object_get(body, "resultUserItemId");
    if (result != NULL && !json_is_null(result))
        FIELD(out, "result", "the unit went to user item %s",
              member(body, "resultUserItemId", b, sizeof b));

    static const struct column bid_cols[] = {{"id", "id", COL_NUM},
                                             {"userId", "userId", COL_NUM},
                                             {"amount", "amount", COL_NUM},
                                             {"outbidBy", "outbidBy", COL_NUM},
                                             {"createdAt", "createdAt", COL_TEXT},
                                             {"correlationId", "correlationId", COL_TEXT}};
    fputc('\n', out);
    table(out, "bids", json_object_get(body, "bids"), bid_cols, 6);
    fputc('\n', out);
    format_steps(body, json_object_get(body, "steps"), out);
}
