/* The one status enum of the code base. Every fallible function returns one of these;
 * each service has exactly one table mapping them to HTTP or gRPC codes. */
#ifndef GF_STATUS_H
#define GF_STATUS_H

#define GF_MUSTCHECK __attribute__((warn_unused_result))

enum gf_status {
    GF_OK = 0,
    GF_EINVAL,           /* bad input: the caller's fault, nothing changed */
    GF_ENOTFOUND,        /* the thing named does not exist */
    GF_EEXISTS,          /* it exists already (duplicate name, id, ...) */
    GF_ECONFLICT,        /* a concurrent change won, or the state forbids it (optimistic lock) */
    GF_EPRECONDITION,    /* a business precondition failed (insufficient funds, decided) */
    GF_ERANGE,           /* a number would leave its allowed range */
    GF_EUNAVAILABLE,     /* a dependency (database, peer, broker) cannot be reached */
    GF_ETIMEOUT,         /* a dependency did not answer in time */
    GF_ENOMEM,           /* allocation failed */
    GF_ETOOBIG,          /* input over a size limit */
    GF_ESHUTDOWN,        /* the process is stopping */
    GF_EUNKNOWN,         /* a change was sent and the connection lost before its answer: it may
                            or may not have happened (outcome unknown) */
    GF_EUNAUTHENTICATED, /* no credentials, or credentials that prove nothing (a bad token) */
    GF_EFORBIDDEN,       /* the caller is known and not allowed to do this */
    GF_ERATELIMITED,     /* the caller asked too often: retry later */
    GF_EINTERNAL,        /* a bug or an unexpected answer: never for bad input */
    GF_PENDING,          /* not a failure: the answer comes later (gf_grpc_finish) */
};

/* Stable snake_case name of a status ("ok", "invalid_argument", ...), for logs and errors. */
const char *gf_status_str(enum gf_status st);

#endif
