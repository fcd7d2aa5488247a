#!/usr/bin/env bash
# gf-postgres's entrypoint: the part of the official postgres image's docker-entrypoint.sh that
# compose and deploy/k8s use, and nothing else.
#
#   postgres [ARGS...]   first start on an empty $PGDATA: initdb, then the server with ARGS
#   -c NAME=VALUE ...    the same (Kubernetes gives only args; the official image accepts that)
#   anything else        run as is (psql, pg_isready, bash: a client from the same image)
#
# The first start makes the cluster from POSTGRES_USER (the superuser, default postgres),
# POSTGRES_PASSWORD (required: a cluster nobody can log in to remotely is a mistake, not a
# default) and POSTGRES_DB (default: the user's name). Later starts use the cluster as it is:
# changing the variables then changes nothing, like the official image.
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

# Started as root (docker run --user 0, a host directory owned by someone else): hand the data
# to postgres, then come back as postgres. initdb and the server refuse to run as root.
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA"
    chown -R postgres:postgres "$PGDATA"
    chmod 0700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" postgres "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "postgres-entrypoint: $PGDATA holds no database yet and POSTGRES_PASSWORD is empty:" \
             "set POSTGRES_PASSWORD to initialize it (it becomes ${POSTGRES_USER:-postgres}'s password)" >&2
        exit 1
    fi
    user=${POSTGRES_USER:-postgres}
    db=${POSTGRES_DB:-$user}
    # A subdirectory of the volume (PGDATA=/var/lib/postgresql/data/pgdata in Kubernetes, where
    # the volume's root is root's with a lost+found) is ours to create. initdb wants 0700.
    mkdir -p "$PGDATA"
    chmod 0700 "$PGDATA"
    echo "postgres-entrypoint: initializing $PGDATA (superuser $user, database $db)"
    # UTF8 with the C.UTF-8 locale, as the local stack's clusters (tests/harness/pg-cluster.sh):
    # the slim image has no other locale. Local and loopback connections are trusted (initdb's
    # default, as in the official image); every other host must give the password (below).
    initdb --username="$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=trust >/dev/null
    {
        echo
        echo "# gf-postgres: every other address with the password (scram-sha-256), also gxp's"
        echo "# logical replication connections (replication=database matches \"all\")."
        echo "host all all all scram-sha-256"
    } >>"$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    if [ "$db" != postgres ]; then
        # Single-user mode: no server, socket or port to wait for. The name is quoted as an
        # identifier, so any name works as it does with the official image.
        printf 'CREATE DATABASE "%s";\n' "${db//\"/\"\"}" | postgres --single -D "$PGDATA" postgres >/dev/null
    fi
    echo "postgres-entrypoint: initialized; starting the server"
fi

# PostgreSQL as PID 1: it receives docker's stop signal (SIGINT, fast shutdown) itself.
exec postgres "$@"
