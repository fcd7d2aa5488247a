/* Names of the status enum, stable: they appear in logs and in error bodies. */
#include "gf/status.h"

const char *gf_status_str(enum gf_status st)
{
    switch (st) {
    case GF_OK:
        return "ok";
    case GF_EINVAL:
        return "invalid_argument";
    case GF_ENOTFOUND:
        return "not_found";
    case GF_EEXISTS:
        return "already_exists";
    case GF_ECONFLICT:
        return "conflict";
    case GF_EPRECONDITION:
        return "failed_precondition";
    case GF_ERANGE:
        return "out_of_range";
    case GF_EUNAVAILABLE:
        return "unavailable";
    case GF_ETIMEOUT:
        return "timeout";
    case GF_ENOMEM:
        return "out_of_memory";
    case GF_ETOOBIG:
        return "too_big";
    case GF_ESHUTDOWN:
        return "shutting_down";
    case GF_EUNKNOWN:
        return "outcome_unknown";
    case GF_EUNAUTHENTICATED:
        return "unauthenticated";
    case GF_EFORBIDDEN:
        return "forbidden";
    case GF_ERATELIMITED:
        return "rate_limited";
    case GF_EINTERNAL:
        return "internal";
    case GF_PENDING:
        return "pending";
    }
    return "unknown";
}
