/* The open-loop generator's pure logic (bench/openloop_core.c): arrivals on schedule without
 * drift, Poisson arrivals at the asked rate, nearest-rank percentiles, and the HTTP/1.1 responses
 * it must take apart (lengths, chunks, a close, the services' error code). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "openloop_core.h"

static void even_schedule_has_no_drift(void **state)
{
    (void)state;
    struct ol_schedule s;
    ol_schedule_init(&s, 3000, false, 1);
    double prev = -1, at = 0;
    for (int i = 0; i < 3000 * 3600; i++) {
        at = ol_schedule_next(&s);
        if (i < 4)
            assert_true(fabs(at - i / 3000.0) < 1e-12);
        assert_true(at > prev);
        prev = at;
    }
    /* an hour at 3,000/s: the last arrival exactly one gap before the hour */
    assert_true(fabs(at - (3600.0 - 1.0 / 3000)) < 1e-9);
}

static void poisson_schedule_keeps_its_rate(void **state)
{
    (void)state;
    struct ol_schedule s, t;
    ol_schedule_init(&s, 500, true, 42);
    ol_schedule_init(&t, 500, true, 42);
    double prev = 0, at = 0, sumsq = 0;
    int n = 200000;
    assert_true(ol_schedule_next(&s) == 0.0); /* the first arrival at t0 */
    (void)ol_schedule_next(&t);
    for (int i = 1; i < n; i++) {
        at = ol_schedule_next(&s);
        assert_true(at >= prev);
        assert_true(at == ol_schedule_next(&t)); /* one seed, one schedule */
        double gap = at - prev;
        sumsq += gap * gap;
        prev = at;
    }
    /* mean gap 1/rate within 1 %; exponential gaps: E[g^2] = 2/rate^2, within 3 % */
    double mean = at / (n - 1);
    assert_true(fabs(mean * 500 - 1) < 0.01);
    assert_true(fabs(sumsq / (n - 1) * 500 * 500 / 2 - 1) < 0.03);
    /* another seed, other arrivals */
    ol_schedule_init(&t, 500, true, 43);
    (void)ol_schedule_next(&t);
    ol_schedule_init(&s, 500, true, 42);
    (void)ol_schedule_next(&s);
    assert_true(ol_schedule_next(&s) != ol_schedule_next(&t));
}

static void nearest_rank_percentiles(void **state)
{
    (void)state;
    uint32_t v[100];
    for (int i = 0; i < 100; i++)
        v[i] = (uint32_t)(100 - i); /* 100..1, sorted below */
    ol_sort_u32(v, 100);
    assert_int_equal(v[0], 1);
    assert_int_equal(ol_percentile(v, 100, 50), 50);
    assert_int_equal(ol_percentile(v, 100, 99), 99);
    assert_int_equal(ol_percentile(v, 100, 99.5), 100);
    assert_int_equal(ol_percentile(v, 100, 100), 100);
    assert_int_equal(ol_percentile(v, 100, 0.001), 1);
    /* few samples: the p99 of 10 is the largest, not an interpolation below it */
    uint32_t w[10] = {5, 1, 9, 3, 7, 2, 8, 4, 6, 1000};
    ol_sort_u32(w, 10);
    assert_int_equal(ol_percentile(w, 10, 99), 1000);
    assert_int_equal(ol_percentile(w, 10, 90), 9);
    assert_int_equal(ol_percentile(w, 10, 50), 5);
    assert_int_equal(ol_percentile(w, 0, 50), 0);
    uint32_t one = 7;
    assert_int_equal(ol_percentile(&one, 1, 1), 7);
}

static enum ol_parse parse(const char *s, bool eof, struct ol_response *r)
{
    return ol_http_parse(s, strlen(s), eof, r);
}

static void content_length_response(void **state)
{
    (void)state;
    const char *s = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nX-A: b\r\n\r\nhello";
    struct ol_response r = {0};
    assert_int_equal(parse(s, false, &r), OL_PARSE_DONE);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.total, strlen(s));
    assert_int_equal(r.header_len, strlen(s) - 5);
    assert_true(r.keep_alive);
    /* every shorter prefix wants more, and is an error when the peer closed there (a close
     * before any byte of the answer included: waiting on would wait forever) */
    for (size_t n = 0; n < strlen(s); n++) {
        assert_int_equal(ol_http_parse(s, n, false, &r), OL_PARSE_MORE);
        assert_int_equal(ol_http_parse(s, n, true, &r), OL_PARSE_ERROR);
    }
    /* a next response after it is not swallowed */
    char two[256];
    snprintf(two, sizeof(two), "%sHTTP/1.1 204 No Content\r\n\r\n", s);
    assert_int_equal(parse(two, false, &r), OL_PARSE_DONE);
    assert_int_equal(r.total, strlen(s));
}

static void chunked_response(void **state)
{
    (void)state;
    const char *s = "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n"
                    "Retry-After: 1\r\n\r\n"
                    "16\r\n{\"error\":\"overloaded\"}\r\n"
                    "3;ext=1\r\nabc\r\n"
                    "0\r\n\r\n";
    struct ol_response r = {0};
    assert_int_equal(parse(s, false, &r), OL_PARSE_DONE);
    assert_int_equal(r.status, 503);
    assert_int_equal(r.total, strlen(s));
    for (size_t n = r.header_len; n < strlen(s); n++)
        assert_int_equal(ol_http_parse(s, n, false, &r), OL_PARSE_MORE);
    char code[32];
    ol_http_parse(s, strlen(s), false, &r);
    assert_true(ol_error_code(s + r.header_len, r.total - r.header_len, code, sizeof(code)));
    assert_string_equal(code, "overloaded");
    /* a chunk whose data is not followed by CRLF: its size lied */
    assert_int_equal(
        parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", false,
              &r),
        OL_PARSE_ERROR);
    /* a chunk of 1 byte followed by "000": not "0" as the last chunk two bytes on */
    assert_int_equal(
        parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx000\r\n\r\n", false, &r),
        OL_PARSE_ERROR);
    assert_int_equal(
        parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, &r),
        OL_PARSE_ERROR);
}

static void connection_close_and_http10(void **state)
{
    (void)state;
    struct ol_response r = {0};
    assert_int_equal(
        parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false, &r),
        OL_PARSE_DONE);
    assert_false(r.keep_alive);
    assert_int_equal(parse("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false, &r),
                     OL_PARSE_DONE);
    assert_false(r.keep_alive);
    assert_int_equal(
        parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok", false,
              &r),
        OL_PARSE_DONE);
    assert_true(r.keep_alive);
    /* no length, not chunked: the body runs to the close */
    const char *s = "HTTP/1.1 200 OK\r\n\r\nuntil the end";
    assert_int_equal(parse(s, false, &r), OL_PARSE_MORE);
    assert_int_equal(parse(s, true, &r), OL_PARSE_DONE);
    assert_int_equal(r.total, strlen(s));
    assert_false(r.keep_alive);
    /* no body whatever the headers say */
    assert_int_equal(parse("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", false, &r),
                     OL_PARSE_DONE);
    assert_int_equal(r.status, 204);
}

static void garbage_is_an_error(void **state)
{
    (void)state;
    struct ol_response r = {.status = -1};
    assert_int_equal(parse("SSH-2.0-OpenSSH\r\n\r\n", false, &r), OL_PARSE_ERROR);
    assert_int_equal(parse("HTTP/2 200\r\n\r\n", false, &r), OL_PARSE_ERROR);
    assert_int_equal(parse("HTTP/1.1 2x0 OK\r\n\r\n", false, &r), OL_PARSE_ERROR);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", false, &r),
                     OL_PARSE_ERROR);
    assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", false, &r),
                     OL_PARSE_ERROR);
    assert_int_equal(
        parse("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", false, &r),
        OL_PARSE_ERROR);
    assert_int_equal(r.status, -1); /* untouched by every failure */
    /* headers that never end are an error once past the bound, not a buffer without end */
    size_t n = OL_MAX_HEADERS + 10;
    char *big = malloc(n);
    assert_non_null(big);
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(big + 20, 'a', n - 20);
    assert_int_equal(ol_http_parse(big, OL_MAX_HEADERS, false, &r), OL_PARSE_MORE);
    assert_int_equal(ol_http_parse(big, n, false, &r), OL_PARSE_ERROR);
    free(big);
}

static void error_codes(void **state)
{
    (void)state;
    char code[16];
    const char *b = "{\"message\":\"the service is overloaded\",\"error\" : \"overloaded\"}";
    assert_true(ol_error_code(b, strlen(b), code, sizeof(code)));
    assert_string_equal(code, "overloaded");
    b = "{\"error\":\"gxp_unavailable_for_a_while\"}"; /* cut to the room given */
    assert_true(ol_error_code(b, strlen(b), code, sizeof(code)));
    assert_string_equal(code, "gxp_unavaila"
                              "ble");
    assert_int_equal(strlen(code), 15);
    b = "{\"errors\":\"overloaded\",\"message\":\"x\"}";
    assert_false(ol_error_code(b, strlen(b), code, sizeof(code)));
    assert_string_equal(code, "");
    b = "{\"error\":\"overlo"; /* cut short */
    assert_false(ol_error_code(b, strlen(b), code, sizeof(code)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(even_schedule_has_no_drift),
        cmocka_unit_test(poisson_schedule_keeps_its_rate),
        cmocka_unit_test(nearest_rank_percentiles),
        cmocka_unit_test(content_length_response),
        cmocka_unit_test(chunked_response),
        cmocka_unit_test(connection_close_and_http10),
        cmocka_unit_test(garbage_is_an_error),
        cmocka_unit_test(error_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
