#!/usr/bin/env bash
# gf-postgres's entrypoint: the part of the official postgres image's docker-entrypoint.sh that
# compose and deploy/k8s use, the services' login roles, and TLS.
#
#   postgres [ARGS...]   first start on an empty $PGDATA: initdb, then the server with ARGS
#   -c NAME=VALUE ...    the same (Kubernetes gives only args; the official image accepts that)
#   anything else        run as is (psql, pg_isready, bash: a client from the same image)
#
# The first start makes the cluster from POSTGRES_USER (the superuser, default postgres),
# POSTGRES_PASSWORD (required: a cluster nobody can log in to remotely is a mistake, not a
# default) and POSTGRES_DB (default: the user's name). Later starts use the cluster as it is:
# changing those variables then changes nothing, like the official image.
#
# Every start, before the server:
#   GF_PG_CLUSTER=backend-db|gxp-db|eventlog-db   applies /usr/local/share/gf/roles.sql (the
#       services' least-privilege roles, sql/roles/roles.sql) to POSTGRES_DB in single-user
#       mode, with each role's password from GF_PG_<ROLE>_PASSWORD (GF_PG_BACKEND_PASSWORD,
#       GF_PG_GXP_REPLICATION_PASSWORD, ...) and postgres's from POSTGRES_PASSWORD. Idempotent;
#       it also converts a volume made before the roles existed (its bootstrap superuser is
#       named after the service and stays one, with a warning: roles.sql says why).
#   GF_PG_TLS_CERT, GF_PG_TLS_KEY (PEM files)   ssl=on with that certificate, and TCP clients
#       only over TLS with scram-sha-256 (hostssl lines; the server refuses a plain TCP
#       connection). Without them: scram-sha-256 over plain TCP, as before.
# The host-based authentication file is written at every start outside the volume (hba_file),
# so a volume's own pg_hba.conf (trust for loopback, from initdb) no longer applies: the socket
# inside the container is trusted (psql in `docker exec`), every TCP client gives its password.
set -eu

if [ $# -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- postgres "$@"
fi
if [ "$1" != "postgres" ]; then
    exec "$@"
fi
shift

PGDATA=${PGDATA:-/var/lib/postgresql/data}
export PGDATA
ROLES_SQL=${GF_PG_ROLES_SQL:-/usr/local/share/gf/roles.sql}
RUN_DIR=${GF_PG_RUN_DIR:-/var/run/postgresql/gf}

# Started as root (docker run --user 0, a host directory owned by someone else): hand the data
# to postgres, then come back as postgres. initdb and the server refuse to run as root.
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA"
    chown -R postgres:postgres "$PGDATA"
    chmod 0700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" postgres "$@"
fi

user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "postgres-entrypoint: $PGDATA holds no database yet and POSTGRES_PASSWORD is empty:" \
             "set POSTGRES_PASSWORD to initialize it (it becomes $user's password)" >&2
        exit 1
    fi
    # A subdirectory of the volume (PGDATA=/var/lib/postgresql/data/pgdata in Kubernetes, where
    # the volume's root is root's with a lost+found) is ours to create. initdb wants 0700.
    mkdir -p "$PGDATA"
    chmod 0700 "$PGDATA"
    echo "postgres-entrypoint: initializing $PGDATA (superuser $user, database $db)"
    # UTF8 with the C.UTF-8 locale, as the local stack's clusters (tests/harness/pg-cluster.sh):
    # the slim image has no other locale. The pg_hba.conf initdb writes is not used (above).
    initdb --username="$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    if [ "$db" != postgres ]; then
        # Single-user mode: no server, socket or port to wait for. The name is quoted as an
        # identifier, so any name works as it does with the official image.
        printf 'CREATE DATABASE "%s";\n' "${db//\"/\"\"}" | postgres --single -D "$PGDATA" postgres >/dev/null
    fi
    echo "postgres-entrypoint: initialized"
fi

mkdir -p "$RUN_DIR"
chmod 0700 "$RUN_DIR"

# The roles, in single-user mode (the server is not running yet: no socket, no port, nobody
# else connected), with the server's own settings: a volume with a logical replication slot
# does not even start with the default wal_level. Settings first, each ended by ";" and a
# blank line as `postgres --single -j` reads them; passwords only on its stdin, and no failing
# statement's text in its log.
if [ -n "${GF_PG_CLUSTER:-}" ]; then
    [ -r "$ROLES_SQL" ] || { echo "postgres-entrypoint: $ROLES_SQL is missing" >&2; exit 1; }
    sq() { printf '%s' "$1" | sed "s/'/''/g"; }
    log=$RUN_DIR/roles.log
    {
        printf "SET gf.cluster = '%s';\n\n" "$(sq "$GF_PG_CLUSTER")"
        if [ -n "${POSTGRES_PASSWORD:-}" ]; then
            printf "SET gf.postgres_password = '%s';\n\n" "$(sq "$POSTGRES_PASSWORD")"
        fi
        for var in $(env | sed -n 's/^\(GF_PG_[A-Z_]*_PASSWORD\)=.*/\1/p'); do
            role=${var#GF_PG_}
            role=$(printf '%s' "${role%_PASSWORD}" | tr '[:upper:]' '[:lower:]')
            printf "SET gf.%s_password = '%s';\n\n" "$role" "$(sq "$(printenv "$var")")"
        done
        cat "$ROLES_SQL"
    } | postgres --single -j -D "$PGDATA" "$@" -c log_min_error_statement=panic \
        -c log_checkpoints=off -c client_min_messages=warning "$db" >/dev/null 2>"$log" || {
        cat "$log" >&2
        echo "postgres-entrypoint: roles.sql could not run in $db" >&2
        exit 1
    }
    if grep -Eq '(ERROR|FATAL|PANIC): ' "$log"; then
        grep -E '(ERROR|FATAL|PANIC|DETAIL|HINT): ' "$log" >&2
        echo "postgres-entrypoint: roles.sql failed in $db (cluster $GF_PG_CLUSTER)" >&2
        exit 1
    fi
    grep -E 'WARNING: ' "$log" >&2 || true
    rm -f "$log"
    echo "postgres-entrypoint: roles of $GF_PG_CLUSTER in place (database $db)"
fi

# TLS: the key copied where only postgres reads it (the server refuses a key others may read,
# and a mounted secret is root's or world-readable).
tls=()
if [ -n "${GF_PG_TLS_CERT:-}" ] || [ -n "${GF_PG_TLS_KEY:-}" ]; then
    if [ ! -r "${GF_PG_TLS_CERT:-}" ] || [ ! -r "${GF_PG_TLS_KEY:-}" ]; then
        echo "postgres-entrypoint: GF_PG_TLS_CERT and GF_PG_TLS_KEY must both name readable files" \
             "(they are '${GF_PG_TLS_CERT:-}' and '${GF_PG_TLS_KEY:-}')" >&2
        exit 1
    fi
    (umask 077 && cat "$GF_PG_TLS_CERT" >"$RUN_DIR/server.crt" && cat "$GF_PG_TLS_KEY" >"$RUN_DIR/server.key")
    tls=(-c ssl=on -c "ssl_cert_file=$RUN_DIR/server.crt" -c "ssl_key_file=$RUN_DIR/server.key")
    host=hostssl
else
    host=host
fi
{
    echo "# Written by postgres-entrypoint.sh at every start."
    echo "local all all trust"
    echo "# Every TCP client with its password; also gxp's logical replication connections"
    echo "# (replication=database matches \"all\")."
    echo "$host all all all scram-sha-256"
} >"$RUN_DIR/pg_hba.conf"

echo "postgres-entrypoint: starting the server (TCP: $host, scram-sha-256)"
# PostgreSQL as PID 1: it receives docker's stop signal (SIGINT, fast shutdown) itself.
exec postgres -c "hba_file=$RUN_DIR/pg_hba.conf" "${tls[@]}" "$@"
