#!/usr/bin/env bash
# Throwaway PostgreSQL 15 clusters for the tests (harness.c) and the local stack (scripts/stack.sh).
# A new cluster is a copy of a cached initdb template: ~0.35 s instead of ~2 s for initdb.
#
#   pg-cluster.sh start  DATADIR PORT [--logical] [--subscriber] [--scram]
#   pg-cluster.sh stop   DATADIR
#   pg-cluster.sh status DATADIR        (exit 0 = running)
#   pg-cluster.sh roles  DATADIR CLUSTER SECRETS_DIR
#
# Callers connect with "host=127.0.0.1 port=PORT user=postgres dbname=postgres" (trust auth);
# nothing else (role, database) is created. initdb and postgres refuse root, so when run as root
# every PostgreSQL program runs as the OS user postgres, which owns the data directory.
# --scram (the local stack): every TCP client gives a scram-sha-256 password, postgres too; only
# the Unix socket in DATADIR (a 0700 directory: the cluster's OS owner and root) stays trusted,
# for administration. `roles` applies sql/roles/roles.sql over that socket as postgres, with
# gf.cluster = CLUSTER (backend-db, gxp-db, eventlog-db) and, for every SECRETS_DIR/NAME.password
# (NAME of [a-z_]), gf.NAME_password set to the file's content: the services' login roles.
# Environment: PG_TEMPLATE_DIR (template cache), GF_PG_BIN (default /usr/lib/postgresql/15/bin),
# GF_PG_EXTRA_CONF (lines added to each cluster's configuration at its start).
set -euo pipefail

PG_BIN=${GF_PG_BIN:-/usr/lib/postgresql/15/bin}
PG_MAJOR=15
TEMPLATE=${PG_TEMPLATE_DIR:-/tmp/gf-pg-template-$(id -u)}
CONF_NAME=gf-cluster.conf
HBA_NAME=gf-hba.conf
ROLES_SQL=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/sql/roles/roles.sql
INCLUDE_LINE="include_if_exists = '$CONF_NAME'"
SOCKET_PATH_MAX=107 # sizeof(sun_path) - 1 on Linux

die() {
    printf 'pg-cluster: %s\n' "$*" >&2
    exit 1
}

usage() {
    printf 'usage: %s start DATADIR PORT [--logical] [--subscriber] [--scram] | stop DATADIR | status DATADIR | roles DATADIR CLUSTER SECRETS_DIR\n' \
        "${0##*/}" >&2
    exit 2
}

is_root() { [[ $EUID -eq 0 ]]; }

# Runs a PostgreSQL program as the cluster owner: postgres when we are root, else ourselves.
# From / so that postgres never complains about an unreadable working directory.
as_pg() {
    if is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

give_to_pg() {
    if is_root; then
        chown postgres:postgres "$@"
    fi
}

# mkdir -p that leaves every directory it creates at mode 755, so postgres can traverse them.
make_dirs() {
    local d=$1 missing=() m
    while [[ ! -e $d ]]; do
        missing=("$d" "${missing[@]}")
        d=$(dirname "$d")
    done
    for m in "${missing[@]}"; do
        mkdir -p "$m"
        chmod 755 "$m"
    done
}

pg_version_of() { cat "$1/PG_VERSION" 2>/dev/null || true; }

# Creates the initdb'd template once; parallel callers wait on the lock, then reuse it.
ensure_template() {
    [[ $(pg_version_of "$TEMPLATE") == "$PG_MAJOR" ]] && return 0
    make_dirs "$(dirname "$TEMPLATE")"
    local fd
    exec {fd}>>"$TEMPLATE.lock"
    flock -w 300 "$fd" || die "timed out waiting for $TEMPLATE.lock"
    if [[ $(pg_version_of "$TEMPLATE") != "$PG_MAJOR" ]]; then
        if [[ -e $TEMPLATE ]]; then
            # Only ever delete something that is recognisably an old template.
            [[ -f $TEMPLATE/PG_VERSION ]] || die "$TEMPLATE exists and is not a PostgreSQL template"
            rm -rf "$TEMPLATE"
        fi
        local tmp=$TEMPLATE.new.$$
        rm -rf "$tmp"
        mkdir -m 700 "$tmp"
        give_to_pg "$tmp"
        if ! as_pg "$PG_BIN/initdb" -D "$tmp" -A trust -E UTF8 --locale=C.UTF-8 --no-sync \
            --no-instructions -U postgres >"$tmp.log" 2>&1; then
            cat "$tmp.log" >&2
            rm -rf "$tmp" "$tmp.log"
            die "initdb failed"
        fi
        rm -f "$tmp.log"
        printf '\n%s\n' "$INCLUDE_LINE" >>"$tmp/postgresql.conf"
        mv -T "$tmp" "$TEMPLATE" # atomic: a template is complete or absent
    fi
    exec {fd}>&-
}

create_datadir() {
    ensure_template
    make_dirs "$(dirname "$DATADIR")"
    if is_root && ! runuser -u postgres -- test -x "$(dirname "$DATADIR")"; then
        die "user postgres cannot reach $(dirname "$DATADIR"): make its parents traversable (chmod o+x)"
    fi
    if [[ -e $DATADIR ]]; then
        rmdir "$DATADIR" 2>/dev/null || die "$DATADIR exists, is not empty and has no PG_VERSION"
    fi
    local tmp=$DATADIR.new.$$
    rm -rf "$tmp"
    cp -a "$TEMPLATE" "$tmp"
    if ! mv -T "$tmp" "$DATADIR" 2>/dev/null; then
        rm -rf "$tmp"
        [[ -f $DATADIR/PG_VERSION ]] || die "cannot create $DATADIR"
    fi
}

# Overwritten at every start; included last from postgresql.conf (ALTER SYSTEM still wins).
write_conf() {
    local sockdir=$DATADIR
    if ((${#DATADIR} + ${#PORT} + 10 > SOCKET_PATH_MAX)); then
        printf 'pg-cluster: %s is too long for a Unix socket path; TCP only\n' "$DATADIR" >&2
        sockdir=
    fi
    local tmp=$DATADIR/$CONF_NAME.tmp
    {
        printf '# Written by pg-cluster.sh start: do not edit, it is overwritten at every start.\n'
        printf "listen_addresses = '127.0.0.1'\n"
        printf 'port = %s\n' "$PORT"
        printf "unix_socket_directories = '%s'\n" "${sockdir//\'/\'\'}"
        # fsync off makes commits cheap; synchronous_commit stays on, since with it off
        # the WAL writer flushes only every 200 ms and walsenders ship only flushed WAL:
        # logical replication would lag by up to 200 ms.
        printf 'fsync = off\nfull_page_writes = off\n'
        printf 'max_connections = 200\nshared_buffers = 64MB\n'
        printf 'logging_collector = off\nlog_min_messages = warning\n'
        # A client that vanishes (partition, dead host) is dropped after ~5 s: keepalive
        # probes after 2 s of silence, and tcp_user_timeout for probes or data that stay
        # unacknowledged (a paused client's kernel still ACKs: its locks are freed by the
        # idle_in_transaction_session_timeout the services set, see lib's db.h). A cut
        # replication link is noticed by both ends within 10 s (defaults: 60 s).
        printf 'tcp_keepalives_idle = 2\ntcp_keepalives_interval = 1\ntcp_keepalives_count = 3\n'
        printf "tcp_user_timeout = '5s'\n"
        printf "wal_sender_timeout = '10s'\nwal_receiver_timeout = '10s'\n"
        if ((LOGICAL)); then
            printf 'wal_level = logical\nmax_wal_senders = 10\nmax_replication_slots = 10\n'
            # A slot whose subscriber stays away cannot keep more than this much WAL: past
            # it the slot is invalidated (wal_status 'lost') instead of filling the disk.
            printf "max_slot_wal_keep_size = '1GB'\n"
        fi
        if ((SUBSCRIBER)); then
            printf 'max_logical_replication_workers = 4\nmax_worker_processes = 16\n'
            printf "wal_retrieve_retry_interval = '500ms'\n"
            # The apply worker commits asynchronously (a subscription's synchronous_commit is
            # off) and reports as flushed only what the WAL writer has flushed: every 200 ms by
            # default, so the slot on the publisher would confirm applied decisions up to 200 ms
            # late, and the backend's admission control (which reads that slot) would see a lag
            # that is not there. 10 ms keeps the confirmation within a few ms of the apply.
            printf "wal_writer_delay = '10ms'\n"
        fi
        # GF_PG_EXTRA_CONF: lines of configuration of the caller's (bench/suite.sh loads
        # pg_stat_statements with it), after the settings above, so that they win.
        [[ -z ${GF_PG_EXTRA_CONF:-} ]] || printf '%s\n' "$GF_PG_EXTRA_CONF"
        if ((SCRAM)); then
            printf "password_encryption = 'scram-sha-256'\n"
            printf "hba_file = '%s'\n" "${DATADIR//\'/\'\'}/$HBA_NAME"
        fi
    } >"$tmp"
    if ((SCRAM)); then
        [[ -n $sockdir ]] ||
            die "$DATADIR is too long for a Unix socket path, and --scram administers over one"
        {
            printf '# Written by pg-cluster.sh start --scram: do not edit, it is overwritten at every start.\n'
            printf '# The socket (in the 0700 data directory) is the administrator'"'"'s; TCP wants a\n'
            printf '# scram-sha-256 password from everyone (replication=database connections too).\n'
            printf 'local all all trust\n'
            printf 'host all all 127.0.0.1/32 scram-sha-256\n'
        } >"$DATADIR/$HBA_NAME.tmp"
        give_to_pg "$DATADIR/$HBA_NAME.tmp"
        mv -f "$DATADIR/$HBA_NAME.tmp" "$DATADIR/$HBA_NAME"
    fi
    give_to_pg "$tmp"
    mv -f "$tmp" "$DATADIR/$CONF_NAME"
    if ! grep -qxF "$INCLUDE_LINE" "$DATADIR/postgresql.conf"; then
        printf '\n%s\n' "$INCLUDE_LINE" >>"$DATADIR/postgresql.conf"
    fi
}

is_running() {
    [[ -f $DATADIR/PG_VERSION ]] && as_pg "$PG_BIN/pg_ctl" status -D "$DATADIR" >/dev/null 2>&1
}

pid_file_line() { sed -n "${1}p" "$DATADIR/postmaster.pid" 2>/dev/null || true; }

# True if PID is a postgres process (guards against a recycled pid in a stale postmaster.pid).
is_postgres_pid() {
    local argv0
    argv0=$(tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | head -n 1) || return 1
    [[ $argv0 == */postgres || $argv0 == postgres || $argv0 == */postmaster ]]
}

cmd_start() {
    if is_running; then
        local cur
        cur=$(pid_file_line 4)
        [[ $cur == "$PORT" ]] || die "$DATADIR is already running on port $cur, not $PORT"
        return 0
    fi
    [[ -f $DATADIR/PG_VERSION ]] || create_datadir
    write_conf
    if ! as_pg "$PG_BIN/pg_ctl" -D "$DATADIR" -l "$DATADIR/postgres.log" -w -t 30 start >/dev/null; then
        printf 'pg-cluster: could not start %s on port %s; last lines of its log:\n' "$DATADIR" "$PORT" >&2
        tail -n 30 "$DATADIR/postgres.log" >&2 || true
        exit 1
    fi
}

cmd_stop() {
    if is_running; then
        as_pg "$PG_BIN/pg_ctl" -D "$DATADIR" -m fast -w -t 20 stop >/dev/null ||
            as_pg "$PG_BIN/pg_ctl" -D "$DATADIR" -m immediate -w -t 10 stop >/dev/null || true
    fi
    local pid children i
    pid=$(pid_file_line 1)
    if [[ $pid =~ ^[0-9]+$ ]] && is_postgres_pid "$pid"; then
        printf 'pg-cluster: postmaster %s of %s survived pg_ctl stop; killing it\n' "$pid" "$DATADIR" >&2
        # Its children would keep the shared memory and block the next start: kill them too.
        children=$(pgrep -P "$pid" || true)
        # shellcheck disable=SC2086 # word splitting of the pid list is intended
        kill -KILL "$pid" $children 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            [[ -e /proc/$pid ]] || break
            sleep 0.1
        done
    fi
    return 0
}

# psql over the cluster's socket as postgres: the settings on stdin, then roles.sql. Passwords
# travel on stdin only (never in an argument or the environment); psql's error verbosity is
# terse, so no CONTEXT line (which would quote a failing statement) is printed.
cmd_roles() {
    local cluster=$1 secrets=$2 f name value port
    is_running || die "$DATADIR is not running"
    [[ -f $ROLES_SQL ]] || die "$ROLES_SQL is missing"
    port=$(pid_file_line 4)
    {
        printf "SET gf.cluster = '%s';\n" "$cluster"
        for f in "$secrets"/*.password; do
            [[ -f $f ]] || continue
            name=${f##*/}
            name=${name%.password}
            [[ $name =~ ^[a-z_]+$ ]] || continue
            value=$(<"$f")
            printf "SET gf.%s_password = '%s';\n" "$name" "${value//\'/\'\'}"
        done
        cat "$ROLES_SQL"
    } | as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -v VERBOSITY=terse -h "$DATADIR" \
        -p "$port" -U postgres -d postgres >/dev/null ||
        die "roles of $cluster could not be applied in $DATADIR"
}

cmd_status() {
    if is_running; then
        printf 'running pid=%s port=%s\n' "$(pid_file_line 1)" "$(pid_file_line 4)"
        return 0
    fi
    printf 'stopped\n'
    return 3
}

(($# >= 2)) || usage
CMD=$1
DATADIR=$(realpath -m -- "$2")
shift 2
PORT='' LOGICAL=0 SUBSCRIBER=0 SCRAM=0
case $CMD in
start)
    (($# >= 1)) || usage
    PORT=$1
    shift
    if ! [[ $PORT =~ ^[0-9]{1,5}$ ]] || ((10#$PORT < 1 || 10#$PORT > 65535)); then
        die "bad port: $PORT"
    fi
    PORT=$((10#$PORT))
    for arg in "$@"; do
        case $arg in
        --logical) LOGICAL=1 ;;
        --subscriber) SUBSCRIBER=1 ;;
        --scram) SCRAM=1 ;;
        *) usage ;;
        esac
    done
    cmd_start
    ;;
stop | status)
    (($# == 0)) || usage
    "cmd_$CMD"
    ;;
roles)
    (($# == 2)) || usage
    cmd_roles "$1" "$2"
    ;;
*) usage ;;
esac
