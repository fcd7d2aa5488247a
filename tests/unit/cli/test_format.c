/* gf (cli/): every table and line it prints from canned JSON (golden strings), the command
 * line it accepts and refuses, and the exit code each answer means. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"

#define CID "0b7f6f3e-2a4c-4d0e-9f51-3c1d2b7a9e10"
#define T1 "2026-11-26T05:43:31.712Z"
#define T2 "2026-11-26T05:43:32.004Z"

/* ---- capture: run a formatter into a string ------------------------------------------------ */

static char *cap_buf;
static size_t cap_len;

static FILE *cap_open(void)
{
    free(cap_buf);
    cap_buf = NULL;
    FILE *f = open_memstream(&cap_buf, &cap_len);
    assert_non_null(f);
    return f;
}

static const char *cap_close(FILE *f)
{
    assert_int_equal(fclose(f), 0);
    return cap_buf;
}

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (j == NULL)
        fail_msg("bad canned JSON: %s", e.text);
    return j;
}

#define EXPECT(call, body_json, golden)                                                            \
    do {                                                                                           \
        json_t *body = J(body_json);                                                               \
        FILE *f = cap_open();                                                                      \
        call;                                                                                      \
        assert_string_equal(cap_close(f), golden);                                                 \
        json_decref(body);                                                                         \
    } while (0)

/* ---- tables -----------------------------------------------------------------------------------
 */

static void users_table_is_aligned_with_numbers_right(void **state)
{
    (void)state;
    EXPECT(format_users(body, f),
           "{\"users\":[{\"id\":1,\"name\":\"my-name\",\"updatedAt\":\"" T1 "\"},"
           "{\"id\":12,\"name\":\"é\",\"updatedAt\":\"" T2 "\"}]}",
           "users\n"
           "  id  name     updatedAt\n"
           "   1  my-name  " T1 "\n"
           "  12  é        " T2 "\n");
}

static void empty_and_unexpected_lists_say_so(void **state)
{
    (void)state;
    EXPECT(format_users(body, f), "{\"users\":[]}", "users\n  (none)\n");
    EXPECT(format_items(body, f), "{\"oops\":1}", "items\n  (unexpected answer)\n");
}

static void items_marketplace_and_user_items_tables(void **state)
{
    (void)state;
    EXPECT(format_items(body, f),
           "{\"items\":[{\"id\":1,\"name\":\"my-item\",\"cost\":10,\"updatedAt\":\"" T1 "\"}]}",
           "items\n"
           "  id  name     cost  updatedAt\n"
           "   1  my-item    10  " T1 "\n");
    EXPECT(format_marketplace_items(body, f),
           "{\"marketplaceItems\":[{\"id\":1,\"itemId\":1,\"count\":11,\"updatedAt\":\"" T1 "\"}]}",
           "marketplace items\n"
           "  id  itemId  count  updatedAt\n"
           "   1       1     11  " T1 "\n");
    EXPECT(format_user_items(body, f),
           "{\"userItems\":[{\"id\":3,\"itemId\":1,\"userId\":1,\"count\":1,\"updatedAt\":null}]}",
           "user items\n"
           "  id  userId  itemId  count  updatedAt\n"
           "   3       1       1      1  -\n");
}

static void gxp_ledger_names_status_and_type(void **state)
{
    (void)state;
    EXPECT(format_gxp_all(body, f),
           "{\"balances\":[{\"balance\":90,\"reserved\":0,\"updatedAt\":\"" T1 "\"}],"
           "\"transactions\":["
           "{\"balanceId\":1,\"amount\":100,\"type\":0,\"status\":2,\"correlationId\":\"" CID
           "\",\"updatedAt\":\"" T1 "\"},"
           "{\"balanceId\":1,\"amount\":10,\"type\":1,\"status\":1,\"correlationId\":\"" CID
           "\",\"updatedAt\":\"" T2 "\"},"
           "{\"balanceId\":2,\"amount\":5,\"type\":7,\"status\":0,\"correlationId\":\"" CID
           "\",\"updatedAt\":\"" T2 "\"}]}",
           "gxp balances\n"
           "  balance  reserved  updatedAt\n"
           "       90         0  " T1 "\n"
           "\n"
           "gxp transactions\n"
           "  userId  type      amount  status     correlationId                         "
           "updatedAt\n"
           "       1  ADD          100  COMMITTED  " CID "  " T1 "\n"
           "       1  SUBTRACT      10  ABORTED    " CID "  " T2 "\n"
           "       2  ?              5  PENDING    " CID "  " T2 "\n");
    assert_string_equal(format_status_name(3), "?");
    assert_string_equal(format_type_name(-1), "?");
}

static void events_table(void **state)
{
    (void)state;
    EXPECT(format_events(body, f),
           "{\"events\":[{\"id\":7,\"event\":\"BuyItemEvent\",\"userId\":1,\"text\":\"user 1 "
           "bought item 1\",\"correlationId\":\"" CID "\",\"occurredAt\":\"" T1
           "\",\"storedAt\":\"" T2 "\",\"data\":{\"userId\":1}}],\"next\":7}",
           "events\n"
           "  id  occurredAt                event         userId  correlationId                "
           "         text\n"
           "   7  " T1 "  BuyItemEvent       1  " CID "  user 1 bought item 1\n");
}

/* ---- lines ------------------------------------------------------------------------------------
 */

static void created_lines_name_the_id_and_correlation_id(void **state)
{
    (void)state;
    EXPECT(format_created("user", "userId", body, f),
           "{\"userId\":1,\"correlationId\":\"" CID "\"}",
           "user 1 created (correlation id " CID ")\n");
    EXPECT(format_created("marketplace item", "marketplaceItemId", body, f),
           "{\"marketplaceItemId\":4,\"correlationId\":\"" CID "\"}",
           "marketplace item 4 created (correlation id " CID ")\n");
    EXPECT(format_gxp_added(1, 100, body, f), "{\"correlationId\":\"" CID "\"}",
           "100 gxp added to user 1 (correlation id " CID ")\n");
    EXPECT(format_bought(1, 2, body, f),
           "{\"correlationId\":\"" CID "\",\"buyItemResponse\":{\"userItemId\":3,"
           "\"correlationId\":\"" CID "\"}}",
           "user 1 bought item 2: user item 3 (correlation id " CID ")\n");
    EXPECT(format_user_gxp(1, body, f),
           "{\"balance\":90,\"reserved\":0,\"updatedAt\":\"" T1 "\",\"correlationId\":\"" CID "\"}",
           "user 1: balance 90, reserved 0 (updated " T1 ")\n");
}

static void text_raw_and_refusal_lines(void **state)
{
    (void)state;
    FILE *f = cap_open();
    format_text("/gxp/svc-info endpoint serviced by backend-svc-1", f);
    format_text("x\r\n", f);
    assert_string_equal(cap_close(f), "/gxp/svc-info endpoint serviced by backend-svc-1\nx\n");
    f = cap_open();
    format_raw("{\"a\":1}", 7, f);
    format_raw("{}\n", 3, f);
    assert_string_equal(cap_close(f), "{\"a\":1}\n{}\n");
    EXPECT(format_refusal(404, body, f),
           "{\"message\":\"user 9 not found\",\"error\":\"user_not_found\",\"correlationId\":\"" CID
           "\"}",
           "gf: user 9 not found (user_not_found, HTTP 404)\n");
    FILE *g = cap_open();
    format_refusal(502, NULL, g);
    assert_string_equal(cap_close(g), "gf: the server refused with HTTP 502\n");
}

/* ---- trace ------------------------------------------------------------------------------------
 */

#define TX_BUY                                                                                     \
    "{\"correlationId\":\"" CID "\",\"kind\":\"buy\",\"userId\":1,\"itemId\":2,\"amount\":10,"     \
    "\"createdAt\":\"2026-11-26T05:43:31.000Z\","

static void trace_shows_every_step_with_its_time(void **state)
{
    (void)state;
    json_t *tx = J(TX_BUY "\"decision\":{\"state\":\"succeeded\",\"createdAt\":"
                          "\"2026-11-26T05:43:31.100Z\"},"
                          "\"gxp\":{\"status\":\"COMMITTED\",\"type\":\"SUBTRACT\",\"amount\":10,"
                          "\"createdAt\":\"2026-11-26T05:43:31.050Z\",\"updatedAt\":"
                          "\"2026-11-26T05:43:31.200Z\"}}");
    json_t *ev = J("{\"events\":[{\"id\":1,\"event\":\"BuyItemEvent\",\"userId\":1,\"text\":\"t\","
                   "\"correlationId\":\"" CID "\",\"occurredAt\":\"2026-11-26T05:43:31.100Z\","
                   "\"storedAt\":\"2026-11-26T05:43:31.300Z\",\"data\":{}}],\"next\":null}");
    FILE *f = cap_open();
    format_trace(tx, ev, NULL, f);
    assert_string_equal(cap_close(f),
                        "transaction " CID "\n"
                        "  2026-11-26T05:43:31.000Z  started   buy: user 1, item 2, cost 10\n"
                        "  2026-11-26T05:43:31.050Z  gxp       SUBTRACT 10 prepared\n"
                        "  2026-11-26T05:43:31.100Z  decision  succeeded\n"
                        "  2026-11-26T05:43:31.200Z  gxp       COMMITTED\n"
                        "  2026-11-26T05:43:31.300Z  event     BuyItemEvent stored (occurred "
                        "2026-11-26T05:43:31.100Z)\n");
    json_decref(tx);
    json_decref(ev);
}

static void trace_of_an_undecided_transaction_without_event(void **state)
{
    (void)state;
    json_t *tx = J("{\"correlationId\":\"" CID "\",\"kind\":\"add_gxp\",\"userId\":1,"
                   "\"itemId\":null,\"amount\":100,\"createdAt\":\"2026-11-26T05:43:31.000Z\","
                   "\"decision\":null,\"gxp\":null}");
    json_t *ev = J("{\"events\":[],\"next\":null}");
    FILE *f = cap_open();
    format_trace(tx, ev, NULL, f);
    format_trace(tx, NULL, "event log unreachable: refused", f);
    assert_string_equal(cap_close(f),
                        "transaction " CID "\n"
                        "  2026-11-26T05:43:31.000Z  started   add_gxp: user 1, amount 100\n"
                        "  -                         gxp       no gxp transaction\n"
                        "  -                         decision  not decided yet\n"
                        "  -                         event     no event\n"
                        "transaction " CID "\n"
                        "  2026-11-26T05:43:31.000Z  started   add_gxp: user 1, amount 100\n"
                        "  -                         gxp       no gxp transaction\n"
                        "  -                         decision  not decided yet\n"
                        "  -                         event     unknown (event log unreachable: "
                        "refused)\n");
    json_decref(tx);
    json_decref(ev);
}

/* ---- the command line --------------------------------------------------------------------------
 */

static int parse(struct cli_inv *inv, char *err, const char *env, const char *const *args)
{
    char *argv[16] = {"gf"};
    int argc = 1;
    while (args[argc - 1] != NULL)
        argv[argc] = (char *)args[argc - 1], argc++;
    memset(inv, 0, sizeof *inv);
    err[0] = '\0';
    return cli_parse(argc, argv, env, NULL, inv, err, 256);
}
#define PARSE(inv, err, env, ...) parse(inv, err, env, (const char *const[]){__VA_ARGS__, NULL})

static void good_command_lines_are_read(void **state)
{
    (void)state;
    struct cli_inv inv;
    char err[256];
    assert_int_equal(PARSE(&inv, err, NULL, "ls"), CLI_OK);
    assert_string_equal(inv.cmd->name, "ls");
    assert_string_equal(inv.url, CLI_DEFAULT_URL);
    assert_string_equal(inv.eventlog_url, CLI_DEFAULT_URL);
    assert_false(inv.json);

    assert_int_equal(PARSE(&inv, err, "http://env:1", "--json", "create-item", "my-item", "0"),
                     CLI_OK);
    assert_true(inv.json);
    assert_string_equal(inv.url, "http://env:1");
    assert_int_equal(inv.nargs, 2);
    assert_string_equal(inv.text[0], "my-item");
    assert_int_equal(inv.num[1], 0);

    assert_int_equal(PARSE(&inv, err, "http://env:1", "--url", "http://a:2",
                           "--eventlog-url=http://e:3", "create-user-item", "1", "2", "2147483647"),
                     CLI_OK);
    assert_string_equal(inv.url, "http://a:2");
    assert_string_equal(inv.eventlog_url, "http://e:3");
    assert_int_equal(inv.num[0], 1);
    assert_int_equal(inv.num[2], 2147483647);

    assert_int_equal(PARSE(&inv, err, NULL, "--url=http://b", "events"), CLI_OK);
    assert_int_equal(inv.nargs, 0);
    assert_string_equal(inv.eventlog_url, "http://b");
    assert_int_equal(PARSE(&inv, err, NULL, "events", "7"), CLI_OK);
    assert_int_equal(inv.num[0], 7);
    assert_int_equal(PARSE(&inv, err, NULL, "trace", CID), CLI_OK);
    assert_string_equal(inv.text[0], CID);
    /* A name may start with a dash after "--". */
    assert_int_equal(PARSE(&inv, err, NULL, "create-user", "--", "-x"), CLI_OK);
    assert_string_equal(inv.text[0], "-x");
}

static void help_and_version_are_read_everywhere(void **state)
{
    (void)state;
    struct cli_inv inv;
    char err[256];
    assert_int_equal(PARSE(&inv, err, NULL, "--help"), CLI_OK);
    assert_true(inv.help);
    assert_null(inv.cmd);
    assert_int_equal(PARSE(&inv, err, NULL, "-h", "ls"), CLI_OK);
    assert_true(inv.help);
    assert_string_equal(inv.cmd->name, "ls");
    /* A command's --help wins over missing or bad arguments. */
    assert_int_equal(PARSE(&inv, err, NULL, "create-item", "--help"), CLI_OK);
    assert_true(inv.help);
    assert_string_equal(inv.cmd->name, "create-item");
    assert_int_equal(PARSE(&inv, err, NULL, "--version"), CLI_OK);
    assert_true(inv.version);

    FILE *f = cap_open();
    cli_command_usage(inv.cmd = &cli_commands[2], f);
    assert_string_equal(cap_close(f), "usage: gf [options] create-item <name> <cost>\n"
                                      "create an item\n"
                                      "  name           a non-empty name\n"
                                      "  cost           an integer from 0 to 2147483647\n");
    f = cap_open();
    cli_usage(f);
    const char *u = cap_close(f);
    for (size_t i = 0; i < cli_commands_count; i++)
        assert_non_null(strstr(u, cli_commands[i].name));
}

static void bad_command_lines_are_usage_errors(void **state)
{
    (void)state;
    struct cli_inv inv;
    char err[256];
    struct {
        const char *args[6];
        const char *why;
    } bad[] = {
        {{NULL}, "no command given"},
        {{"--json", NULL}, "no command given"},
        {{"frobnicate", NULL}, "unknown command 'frobnicate'"},
        {{"--frob", "ls", NULL}, "unknown option '--frob'"},
        {{"--url", NULL}, "option --url needs a URL"},
        {{"--url=", "ls", NULL}, "option --url needs a URL"},
        {{"ls", "extra", NULL}, "ls: too many arguments"},
        {{"ls", "--json", NULL}, "ls: unknown option '--json'"},
        {{"create-user", NULL}, "create-user: missing argument <name>"},
        {{"create-user", "", NULL}, "create-user: name must be a non-empty name, not ''"},
        {{"create-item", "x", "-1", NULL},
         "create-item: cost must be an integer from 0 to 2147483647, not '-1'"},
        {{"create-marketplace-item", "1", "0", NULL},
         "create-marketplace-item: count must be an integer from 1 to 2147483647, not '0'"},
        {{"user-gxp", "0", NULL},
         "user-gxp: userId must be an integer from 1 to 2147483647, not '0'"},
        {{"user-gxp", "2147483648", NULL},
         "user-gxp: userId must be an integer from 1 to 2147483647, not '2147483648'"},
        {{"user-gxp", "1x", NULL},
         "user-gxp: userId must be an integer from 1 to 2147483647, not '1x'"},
        {{"user-gxp", " 1", NULL},
         "user-gxp: userId must be an integer from 1 to 2147483647, not ' 1'"},
        {{"user-gxp-add", "1", "+5", NULL},
         "user-gxp-add: amount must be an integer from 1 to 2147483647, not '+5'"},
        {{"buy-marketplace-item", "1", NULL}, "buy-marketplace-item: missing argument <itemId>"},
        {{"events", "1", "2", NULL}, "events: too many arguments"},
        {{"trace", "not-a-uuid", NULL}, "trace: correlationId must be a UUID, not 'not-a-uuid'"},
        {{"auth", NULL}, "'auth' needs a subcommand: auth token"},
        {{"auth", "tokens", NULL}, "'auth' needs a subcommand: auth token"},
        {{"login", NULL}, "login: missing argument <name>"},
        {{"login", "a", "--password", NULL}, "login: unknown option '--password'"},
        {{"ls", "--password-stdin", NULL}, "ls: unknown option '--password-stdin'"},
        {{"passwd", "x", NULL}, "passwd: too many arguments"},
        {{"set-password", NULL}, "set-password: missing argument <userId>"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[8] = {"gf"};
        int argc = 1;
        while (bad[i].args[argc - 1] != NULL)
            argv[argc] = (char *)bad[i].args[argc - 1], argc++;
        memset(&inv, 0, sizeof inv);
        assert_int_equal(cli_parse(argc, argv, NULL, NULL, &inv, err, sizeof err), CLI_USAGE);
        assert_string_equal(err, bad[i].why);
    }
}

static void login_commands_and_their_options_are_read(void **state)
{
    (void)state;
    struct cli_inv inv;
    char err[256];
    assert_int_equal(PARSE(&inv, err, NULL, "auth", "token"), CLI_OK);
    assert_string_equal(inv.cmd->name, "auth token");
    assert_int_equal(inv.nargs, 0);
    assert_int_equal(PARSE(&inv, err, NULL, "auth", "token", "--help"), CLI_OK);
    assert_true(inv.help);
    assert_int_equal(PARSE(&inv, err, NULL, "login", "admin"), CLI_OK);
    assert_false(inv.password_stdin);
    assert_int_equal(PARSE(&inv, err, NULL, "login", "--password-stdin", "admin"), CLI_OK);
    assert_true(inv.password_stdin);
    assert_string_equal(inv.text[0], "admin");
    assert_int_equal(PARSE(&inv, err, NULL, "create-user", "u", "--password"), CLI_OK);
    assert_true(inv.password_ask);
    assert_false(inv.password_stdin);
    assert_int_equal(PARSE(&inv, err, NULL, "create-user", "u"), CLI_OK);
    assert_false(inv.password_ask || inv.password_stdin); /* the seed's create-user: no password */
    assert_int_equal(PARSE(&inv, err, NULL, "create-user", "--", "--password"), CLI_OK);
    assert_string_equal(inv.text[0], "--password");
    assert_false(inv.password_ask);
    assert_int_equal(PARSE(&inv, err, NULL, "set-password", "7", "--password-stdin"), CLI_OK);
    assert_int_equal(inv.num[0], 7);
    assert_true(inv.password_stdin);
}

static void token_store_keys_and_times(void **state)
{
    (void)state;
    struct {
        const char *url, *key;
    } keys[] = {
        {"http://127.0.0.1:30080", "http://127.0.0.1:30080"},
        {"http://localhost:30080/", "http://127.0.0.1:30080"},
        {"HTTP://LocalHost:30080//", "http://127.0.0.1:30080"},
        {"http://localhost.example:1/Api", "http://localhost.example:1/Api"},
        {"http://Example.COM/Base/", "http://example.com/Base"},
        {"no-scheme/", "no-scheme"},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char *k = tokens_key(keys[i].url);
        assert_string_equal(k, keys[i].key);
        free(k);
    }
    long long t = 0;
    assert_true(tokens_parse_time("2026-11-26T05:43:31.712Z", &t));
    assert_int_equal(t, 1795671811LL);
    assert_true(tokens_parse_time("1970-01-01T00:00:01Z", &t));
    assert_int_equal(t, 1);
    assert_false(tokens_parse_time("2026-11-26 05:43:31Z", &t));
    assert_false(tokens_parse_time("2026-11-26T05:43:31+01:00", &t));
    char when[32];
    tokens_format_time(1795671811LL, when);
    assert_string_equal(when, "2026-11-26T05:43:31Z");
}

static void a_tokens_payload_is_read_for_display(void **state)
{
    (void)state;
    /* {"sub":"7","name":"ann","role":"user","exp":1795671811} in base64url, signature "sig" */
    struct cli_login l = {0};
    assert_true(tokens_decode("eyJhbGciOiJFZERTQSJ9."
                              "eyJzdWIiOiI3IiwibmFtZSI6ImFubiIsInJvbGUiOiJ1c2VyIiwiZXhwIjoxNzk1"
                              "NjcxODExfQ.c2ln",
                              &l));
    assert_string_equal(l.name, "ann");
    assert_string_equal(l.role, "user");
    assert_int_equal(l.user_id, 7);
    assert_int_equal(l.exp, 1795671811LL);
    cli_login_cleanup(&l);
    assert_false(tokens_decode("not-a-token", &l));
    assert_false(tokens_decode("a.!!!.c", &l));
    assert_false(tokens_decode("a.bm90IGpzb24.c", &l)); /* "not json" */
    assert_null(l.name);
}

static void numbers_are_strict(void **state)
{
    (void)state;
    long long v = -1;
    assert_true(cli_arg_check(CLI_ARG_COST, "0", &v));
    assert_int_equal(v, 0);
    assert_true(cli_arg_check(CLI_ARG_ID, "007", &v));
    assert_int_equal(v, 7);
    assert_false(cli_arg_check(CLI_ARG_ID, "99999999999999999999999", &v));
    assert_false(cli_arg_check(CLI_ARG_COUNT, "", &v));
    assert_false(cli_arg_check(CLI_ARG_COUNT, "1.5", &v));
    assert_true(cli_arg_check(CLI_ARG_CID, "0B7F6F3E-2A4C-4D0E-9F51-3C1D2B7A9E10", &v));
    assert_false(cli_arg_check(CLI_ARG_CID, "0b7f6f3e-2a4c-4d0e-9f51-3c1d2b7a9e1", &v));
    assert_false(cli_arg_check(CLI_ARG_CID, "0b7f6f3e+2a4c-4d0e-9f51-3c1d2b7a9e10", &v));
}

static void exit_codes_follow_the_answer(void **state)
{
    (void)state;
    assert_int_equal(cli_exit_for(0), CLI_UNREACHABLE);
    assert_int_equal(cli_exit_for(200), CLI_OK);
    assert_int_equal(cli_exit_for(201), CLI_OK);
    assert_int_equal(cli_exit_for(299), CLI_OK);
    assert_int_equal(cli_exit_for(301), CLI_REFUSED);
    assert_int_equal(cli_exit_for(400), CLI_REFUSED);
    assert_int_equal(cli_exit_for(404), CLI_REFUSED);
    assert_int_equal(cli_exit_for(409), CLI_REFUSED);
    assert_int_equal(cli_exit_for(502), CLI_REFUSED);
    assert_int_equal(cli_exit_for(503), CLI_REFUSED);
    assert_int_equal(CLI_OK, 0);
    assert_int_equal(CLI_REFUSED, 1);
    assert_int_equal(CLI_USAGE, 2);
    assert_int_equal(CLI_UNREACHABLE, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(users_table_is_aligned_with_numbers_right),
        cmocka_unit_test(empty_and_unexpected_lists_say_so),
        cmocka_unit_test(items_marketplace_and_user_items_tables),
        cmocka_unit_test(gxp_ledger_names_status_and_type),
        cmocka_unit_test(events_table),
        cmocka_unit_test(created_lines_name_the_id_and_correlation_id),
        cmocka_unit_test(text_raw_and_refusal_lines),
        cmocka_unit_test(trace_shows_every_step_with_its_time),
        cmocka_unit_test(trace_of_an_undecided_transaction_without_event),
        cmocka_unit_test(good_command_lines_are_read),
        cmocka_unit_test(help_and_version_are_read_everywhere),
        cmocka_unit_test(bad_command_lines_are_usage_errors),
        cmocka_unit_test(login_commands_and_their_options_are_read),
        cmocka_unit_test(token_store_keys_and_times),
        cmocka_unit_test(a_tokens_payload_is_read_for_display),
        cmocka_unit_test(numbers_are_strict),
        cmocka_unit_test(exit_codes_follow_the_answer),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(cap_buf);
    return rc;
}
