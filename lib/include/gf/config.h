/* Environment configuration: each program declares its variables once, in a table, and
 * parses them once at start into its own immutable struct. */
#ifndef GF_CONFIG_H
#define GF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gf/status.h"

enum gf_config_type {
    GF_CFG_STRING,      /* char * (owned by the struct; gf_config_free releases it) */
    GF_CFG_INT,         /* int64_t, within [min, max] */
    GF_CFG_BOOL,        /* bool: 1/0, true/false, yes/no, on/off */
    GF_CFG_ADDR,        /* char *: "host:port" with port 0..65535 ("[v6]:port" too) */
    GF_CFG_CONNINFO,    /* char *: a libpq conninfo string or URI; its password is masked in logs */
    GF_CFG_LOGLEVEL,    /* int (enum gf_log_level) */
    GF_CFG_AMQP_URL,    /* char *: amqp://user[:password]@host[:port][/vhost]; password masked */
    GF_CFG_GRPC_TARGET, /* char *: host:port, or a gRPC URI (dns:, ipv4:, ipv6:, unix:) */
};

struct gf_config_def {
    const char *name; /* environment variable */
    enum gf_config_type type;
    const char *default_val; /* NULL = required */
    int64_t min, max;        /* GF_CFG_INT bounds (inclusive) */
    bool secret;             /* never logged (shown as ****) */
    size_t offset;           /* offsetof(struct your_config, field) */
    const char *help;        /* one line */
};

/* Reads every variable of defs from the environment into cfg. On any problem, every
 * problem is logged (one line each, naming variable, value unless secret, and why) and
 * GF_EINVAL is returned; the caller exits 78 (EX_CONFIG). Empty string = unset. */
enum gf_status gf_config_load(const struct gf_config_def *defs, size_t n, void *cfg) GF_MUSTCHECK;

/* Logs the effective configuration in one line, secrets masked. */
void gf_config_log(const struct gf_config_def *defs, size_t n, const void *cfg);

/* Prints the effective configuration to out, one NAME=value line per variable, each value
 * masked exactly as gf_config_log masks it (and quoted the same way when it has blanks). For
 * --check-config; GF_EUNAVAILABLE when out could not be written. */
enum gf_status gf_config_print(FILE *out, const struct gf_config_def *defs, size_t n,
                               const void *cfg) GF_MUSTCHECK;

/* Prints a service's --help to out: the line `usage: <program> [--help] [--check-config]`,
 * what the two options do, that configuration comes from environment variables, then one
 * line per variable, machine-readable: two spaces, the NAME, blanks, its default
 * double-quoted ("" when empty, "****" for a secret's non-empty one, (required) when there is
 * none; a '"' or '\' in it gets a backslash), blanks, its help. GF_EUNAVAILABLE when out
 * could not be written. */
enum gf_status gf_config_usage(FILE *out, const char *program, const struct gf_config_def *defs,
                               size_t n) GF_MUSTCHECK;

/* Frees the strings gf_config_load allocated. */
void gf_config_free(const struct gf_config_def *defs, size_t n, void *cfg);

/* Splits "host:port" into host (copied into host[hostsz]) and port. */
enum gf_status gf_config_split_addr(const char *addr, char *host, size_t hostsz,
                                    int *port) GF_MUSTCHECK;

/* Copies conninfo with any password replaced by ****, for logs (caller frees). */
char *gf_config_mask_conninfo(const char *conninfo);
/* Copies an AMQP URL with its password (if any) replaced by ****, for logs (caller frees). */
char *gf_config_mask_url(const char *url);

#define GF_EX_CONFIG 78

#endif
