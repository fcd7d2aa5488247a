/* What a failed operation tells the client (struct be_err in backend.h): one sentence and a
 * stable code, and the one mapping of database failures to them. */
#include <stdarg.h>
#include <stdio.h>

#include "backend.h"

void be_err_set(struct be_err *err, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    err->code = code;
}

enum gf_status be_db_failed(enum gf_status st, struct be_err *err)
{
    switch (st) {
    case GF_OK:
        return GF_OK;
    case GF_EEXISTS:
        be_err_set(err, "already_exists", "it exists already");
        return st;
    case GF_ENOTFOUND:
        be_err_set(err, "not_found", "not found");
        return st;
    case GF_EINVAL:
        be_err_set(err, "invalid_field", "a value is not valid");
        return st;
    case GF_EUNKNOWN:
        be_err_set(err, "outcome_unknown",
                   "the database connection was lost after the change was sent: it may or may "
                   "not have happened; read it back, or retry with the same Idempotency-Key");
        return st;
    case GF_ETIMEOUT:
        be_err_set(err, "database_timeout", "the database did not answer in time");
        return st;
    case GF_EUNAVAILABLE:
    case GF_ECONFLICT: /* a serialization failure or deadlock: retryable, so 503 */
    case GF_ESHUTDOWN:
        be_err_set(err, "database_unavailable", "the database is unavailable, try again");
        return GF_EUNAVAILABLE;
    case GF_ENOMEM:
        be_err_set(err, "out_of_memory", "out of memory");
        return st;
    default:
        be_err_set(err, "internal", "internal error");
        return GF_EINTERNAL;
    }
}
