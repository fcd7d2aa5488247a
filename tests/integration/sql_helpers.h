/* SQL and id helpers shared by the integration tests (sql_helpers.c). */
#ifndef GF_TEST_SQL_HELPERS_H
#define GF_TEST_SQL_HELPERS_H

#include <libpq-fe.h>
#include <stddef.h>

PGconn *connect_or_fail(const char *conninfo);
/* r itself when it succeeded; otherwise the test fails naming sql. */
PGresult *sql_checked(PGresult *r, const char *sql);
/* SQL on a test's own connection; the test fails on error. sql_ll answers the first field of
 * the first row as a number (0 when no row), sql_text copies it into out. */
long long sql_ll(PGconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sql_exec(PGconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *sql_text(PGconn *c, char *out, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A fresh UUID string. */
void new_cid(char out[37]);

#endif
