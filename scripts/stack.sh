#!/usr/bin/env bash
# The local gf-svc system without containers: private PostgreSQL clusters, a private RabbitMQ
# node and the service programs from the build tree, all on 127.0.0.1, state under
# $GF_STATE_DIR (default <repo>/.gf): data/<cluster>/ (log: data/<cluster>/postgres.log),
# data/<broker>/ (log: data/<broker>/log/<node>.log), log/<program>.log, run/<program>.pid,
# secrets/ (0700: the passwords `up` generates once, one 0600 file each; see "Roles and users").
#
#   scripts/stack.sh up | down | status | logs [name]
#
# Units start in table order and stop in reverse order; `up` is idempotent. To add a service,
# add a unit_pg / unit_rmq / unit_prog line to the table below.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${GF_BUILD_DIR:-$REPO/build}
STATE_DIR=${GF_STATE_DIR:-$REPO/.gf}
PG_CLUSTER=$REPO/tests/harness/pg-cluster.sh
RABBITMQ=$REPO/tests/harness/rabbitmq.sh
PG_BIN=${GF_PG_BIN:-/usr/lib/postgresql/15/bin}
READY_TIMEOUT=${GF_READY_TIMEOUT:-30} # seconds for every program to answer /readyz
STOP_GRACE=10                         # seconds between SIGTERM and SIGKILL

UNITS=()
declare -A KIND=() PORT=() FLAGS=() BINARY=() HTTP_PORT=() ENVS=() DIST_PORT=() EPMD_PORT=() \
    ARGS=() READY_PATH=()

# unit_pg NAME PORT [pg-cluster.sh flags...]: a PostgreSQL cluster in data/NAME.
unit_pg() {
    local name=$1 port=$2
    shift 2
    UNITS+=("$name")
    KIND[$name]=pg PORT[$name]=$port FLAGS[$name]="$*"
}

# unit_rmq NAME PORT DIST_PORT EPMD_PORT: a RabbitMQ node in data/NAME (tests/harness/rabbitmq.sh)
# with its own epmd; vhost /, one user per service (scripts/broker-users.sh), no guest.
unit_rmq() {
    UNITS+=("$1")
    KIND[$1]=rmq PORT[$1]=$2 DIST_PORT[$1]=$3 EPMD_PORT[$1]=$4
}

# unit_prog NAME BINARY PORT HTTP_PORT [K=V...]: build/bin/BINARY run in the background with the
# given environment; ready when http://127.0.0.1:HTTP_PORT/readyz answers 200. Extra variables
# for tests (the chaos test's short gxp timeouts): GF_EXTRA_ENV (every program) and
# GF_EXTRA_ENV_<NAME> (NAME upper-cased, '-' as '_': GF_EXTRA_ENV_GXP_1), space-separated K=V
# words; they come last, so they override the table's.
unit_prog() {
    local name=$1 extra=() var
    UNITS+=("$name")
    KIND[$name]=prog BINARY[$name]=$BUILD_DIR/bin/$2 PORT[$name]=$3 HTTP_PORT[$name]=$4
    READY_PATH[$name]=/readyz
    shift 4
    var=GF_EXTRA_ENV_${name^^}
    var=${var//-/_}
    read -r -a extra <<<"${GF_EXTRA_ENV:-} ${!var:-}"
    ENVS[$name]=$(printf '%s\n' "$@" "${extra[@]}")
}

# unit_nginx NAME PORT: nginx (Debian's /usr/sbin/nginx) as the ingress on PORT, with the
# Kubernetes Ingress's routes; its configuration is written to data/NAME/nginx.conf by `up`
# (see write_nginx_conf), the operator console's files built for it by ensure_console; ready
# when /healthz (answered by nginx itself) says 200.
unit_nginx() {
    UNITS+=("$1")
    KIND[$1]=prog BINARY[$1]=${GF_NGINX_BIN:-/usr/sbin/nginx} PORT[$1]=$2 HTTP_PORT[$1]=$2
    READY_PATH[$1]=/healthz
    # -e: errors go to its log from the very start (before the configuration is read).
    ARGS[$1]="-p $STATE_DIR/data/$1 -c $STATE_DIR/data/$1/nginx.conf -e $STATE_DIR/log/$1.log"
    ARGS[$1]+=" -g 'daemon off;'"
    NGINX_UNIT=$1
}

# Roles and users (issue 18). Every program logs in as its own PostgreSQL role and RabbitMQ
# user, with a password `up` generates once into $STATE_DIR/secrets/NAME.password (0600) and
# hands over in the program's *_PASSWORD variable (an env line VAR=@secret:NAME below), never
# on a command line or in a log. PostgreSQL (sql/roles/roles.sql): backend, gxp, eventlog own
# their service's tables; gxp_replication streams transaction_outbox to gxp-db;
# gxp_subscription_admin is the superuser gxp's subscription manager needs on PostgreSQL 15;
# postgres keeps the Unix socket (trust) and a password for TCP (secrets/pgpass is a PGPASSFILE
# for it). TCP wants scram-sha-256 from everyone (pg-cluster.sh --scram). RabbitMQ: users
# backend, gxp and eventlog (amqp-NAME.password), guest deleted.
SECRET_NAMES=(postgres backend gxp gxp_replication gxp_subscription_admin eventlog
    amqp-backend amqp-gxp amqp-eventlog admin)
# Access tokens: an Ed25519 key pair `up` makes once with gf-keygen — the private key
# $AUTH_DIR/signing.key.pem (0600: the backends sign POST /auth/login's tokens with it) and
# $AUTH_DIR/keys (the public keys every backend and eventlog accept; a rotation puts the next
# key there beside the current one). The first operator is "admin" (role admin), its password
# in $SECRETS_DIR/admin.password; `up` logs gf in as it.
AUTH_DIR=$STATE_DIR/auth
ADMIN_NAME="admin"
SECRETS_DIR=$STATE_DIR/secrets
conninfo() { # PORT [ROLE]
    printf 'host=127.0.0.1 port=%s user=%s dbname=postgres' "$1" "${2:-postgres}"
}

# ---- the system -------------------------------------------------------------------------------
GXP_DB_PORT=${GF_GXP_DB_PORT:-30542}
BACKEND_DB_PORT=${GF_BACKEND_DB_PORT:-30541}
GXP_PORT=${GF_GXP_PORT:-30002}
GXP_HTTP_PORT=${GF_GXP_HTTP_PORT:-30003}
GXP2_PORT=${GF_GXP2_PORT:-30012}
GXP2_HTTP_PORT=${GF_GXP2_HTTP_PORT:-30013}
INGRESS_PORT=${GF_INGRESS_PORT:-30080}
BACKEND1_HTTP_PORT=${GF_BACKEND1_HTTP_PORT:-30081}
BACKEND1_GRPC_PORT=${GF_BACKEND1_GRPC_PORT:-30091}
BACKEND2_HTTP_PORT=${GF_BACKEND2_HTTP_PORT:-30082}
BACKEND2_GRPC_PORT=${GF_BACKEND2_GRPC_PORT:-30092}
EVENTLOG_DB_PORT=${GF_EVENTLOG_DB_PORT:-30543}
EVENTLOG_HTTP_PORT=${GF_EVENTLOG_HTTP_PORT:-30070}
BROKER_PORT=${GF_BROKER_PORT:-30672}
BROKER_DIST_PORT=${GF_BROKER_DIST_PORT:-30673}
BROKER_EPMD_PORT=${GF_BROKER_EPMD_PORT:-30674}
amqp_url() { printf 'amqp://%s@127.0.0.1:%s/' "$1" "$BROKER_PORT"; }

unit_pg gxp-db "$GXP_DB_PORT" --subscriber --scram
unit_pg backend-db "$BACKEND_DB_PORT" --logical --scram # publisher of the replication into gxp-db
unit_pg eventlog-db "$EVENTLOG_DB_PORT" --scram
unit_rmq broker "$BROKER_PORT" "$BROKER_DIST_PORT" "$BROKER_EPMD_PORT"
# Two gxp replicas; each backend reaches both through gRPC client-side round-robin (an
# ipv4: target with both addresses), as it would reach a headless Service's pods. gxp asks
# whichever backend answers about stuck transactions.
GXP_TARGET=ipv4:127.0.0.1:$GXP_PORT,127.0.0.1:$GXP2_PORT
BACKEND_TARGET=ipv4:127.0.0.1:$BACKEND1_GRPC_PORT,127.0.0.1:$BACKEND2_GRPC_PORT
# gRPC between backend and gxp is mutual TLS: `up` makes a private CA and a certificate per
# identity (gxp, backend; SANs localhost and 127.0.0.1 among others) in $STATE_DIR/pki with
# scripts/pki.sh, which keeps what is still valid. Each program shows its own as gRPC server
# and client and accepts only peers the CA signed.
PKI_DIR=$STATE_DIR/pki
tls_env() { # PREFIX IDENTITY
    printf '%s\n' "$1_TLS_CA=$PKI_DIR/ca.crt" "$1_TLS_CERT=$PKI_DIR/$2.crt" \
        "$1_TLS_KEY=$PKI_DIR/$2.key"
}
gxp_env() { # GRPC_PORT HTTP_PORT
    printf '%s\n' "GXP_GRPC_ADDR=127.0.0.1:$1" "GXP_HTTP_ADDR=127.0.0.1:$2" \
        "GXP_DB_URL=$(conninfo "$GXP_DB_PORT" gxp)" "GXP_DB_PASSWORD=@secret:gxp" \
        "GXP_SUBSCRIPTION_ADMIN_URL=$(conninfo "$GXP_DB_PORT" gxp_subscription_admin)" \
        "GXP_SUBSCRIPTION_ADMIN_PASSWORD=@secret:gxp_subscription_admin" \
        "GXP_PUBLISHER_CONNINFO=$(conninfo "$BACKEND_DB_PORT" gxp_replication)" \
        "GXP_PUBLISHER_PASSWORD=@secret:gxp_replication" \
        "GXP_BACKEND_ADDR=$BACKEND_TARGET" "GXP_AMQP_URL=$(amqp_url gxp)" \
        "GXP_AMQP_PASSWORD=@secret:amqp-gxp"
    tls_env GXP gxp
}
backend_env() { # DEPLOYMENT_NAME HTTP_PORT GRPC_PORT
    printf '%s\n' "DEPLOYMENT_NAME=$1" "BACKEND_HTTP_ADDR=127.0.0.1:$2" \
        "BACKEND_GRPC_ADDR=127.0.0.1:$3" "BACKEND_DB_URL=$(conninfo "$BACKEND_DB_PORT" backend)" \
        "BACKEND_DB_PASSWORD=@secret:backend" "BACKEND_GXP_ADDR=$GXP_TARGET" \
        "BACKEND_AMQP_URL=$(amqp_url backend)" "BACKEND_AMQP_PASSWORD=@secret:amqp-backend" \
        "BACKEND_AUTH_KEYS=$AUTH_DIR/keys" "BACKEND_AUTH_SIGNING_KEY=$AUTH_DIR/signing.key.pem" \
        "BACKEND_ADMIN_NAME=$ADMIN_NAME" "BACKEND_ADMIN_PASSWORD=@secret:admin"
    tls_env BACKEND backend
}
mapfile -t env_lines < <(gxp_env "$GXP_PORT" "$GXP_HTTP_PORT")
unit_prog gxp-1 gxp "$GXP_PORT" "$GXP_HTTP_PORT" "${env_lines[@]}"
mapfile -t env_lines < <(gxp_env "$GXP2_PORT" "$GXP2_HTTP_PORT")
unit_prog gxp-2 gxp "$GXP2_PORT" "$GXP2_HTTP_PORT" "${env_lines[@]}"
unit_prog eventlog eventlog "$EVENTLOG_HTTP_PORT" "$EVENTLOG_HTTP_PORT" \
    "EVENTLOG_HTTP_ADDR=127.0.0.1:$EVENTLOG_HTTP_PORT" \
    "EVENTLOG_DB_URL=$(conninfo "$EVENTLOG_DB_PORT" eventlog)" "EVENTLOG_DB_PASSWORD=@secret:eventlog" \
    "EVENTLOG_AMQP_URL=$(amqp_url eventlog)" "EVENTLOG_AMQP_PASSWORD=@secret:amqp-eventlog" \
    "EVENTLOG_AUTH_KEYS=$AUTH_DIR/keys"
mapfile -t env_lines < <(backend_env backend-svc-1 "$BACKEND1_HTTP_PORT" "$BACKEND1_GRPC_PORT")
unit_prog backend-svc-1 backend "$BACKEND1_GRPC_PORT" "$BACKEND1_HTTP_PORT" "${env_lines[@]}"
mapfile -t env_lines < <(backend_env backend-svc-2 "$BACKEND2_HTTP_PORT" "$BACKEND2_GRPC_PORT")
unit_prog backend-svc-2 backend "$BACKEND2_GRPC_PORT" "$BACKEND2_HTTP_PORT" "${env_lines[@]}"
# The ingress: the Kubernetes Ingress's routes (deploy/), plus /eventlog.
unit_nginx ingress "$INGRESS_PORT"
# The operator console's files, which the ingress serves at /console/ itself: built by `up` into
# run/console with scripts/console-build.sh (see ensure_console), or GF_CONSOLE_DIST, a directory
# of files built already (served as they are, never rebuilt).
CONSOLE_DIR=${GF_CONSOLE_DIST:-$STATE_DIR/run/console}
CONSOLE_FILES=(index.html app.js style.css vendor/uPlot.iife.min.js vendor/uPlot.min.css vendor/uPlot.LICENSE)
# -----------------------------------------------------------------------------------------------

say() { printf 'stack: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}

datadir() { printf '%s/data/%s' "$STATE_DIR" "$1"; }
pidfile() { printf '%s/run/%s.pid' "$STATE_DIR" "$1"; }
logfile() {
    if [[ ${KIND[$1]} == pg ]]; then
        printf '%s/postgres.log' "$(datadir "$1")"
    elif [[ ${KIND[$1]} == rmq ]]; then # the node's name (and so its log's) comes from its dir
        printf '%s/log/%s.log' "$(datadir "$1")" \
            "$(sed -n 's/^node=//p' "$(datadir "$1")/env" 2>/dev/null || true)"
    else
        printf '%s/log/%s.log' "$STATE_DIR" "$1"
    fi
}

address() {
    local name=$1
    if [[ ${KIND[$name]} == pg || ${KIND[$name]} == rmq ]]; then
        printf '127.0.0.1:%s' "${PORT[$name]}"
    else
        printf '127.0.0.1:%s http:%s' "${PORT[$name]}" "${HTTP_PORT[$name]}"
    fi
}

# Alive and not a zombie (a process reparented to init may stay a zombie for a while).
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

# True if PID runs BINARY (its executable, argv[0], or the script argv[1] of an interpreter;
# nginx rewrites its argv, so the executable is checked first).
runs_binary() {
    local args=()
    [[ $(readlink "/proc/$1/exe" 2>/dev/null) == "$2" ]] && return 0
    mapfile -d '' -t args <"/proc/$1/cmdline" 2>/dev/null || return 1
    [[ ${#args[@]} -gt 0 && ${args[0]} == "$2" ]] && return 0
    [[ ${#args[@]} -gt 1 && ${args[1]} == "$2" ]]
}

# Prints the pid of a running program unit; nothing if it is not running.
prog_pid() {
    local name=$1 pid=''
    [[ -f $(pidfile "$name") ]] || return 0
    read -r pid <"$(pidfile "$name")" || true
    if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" && runs_binary "$pid" "${BINARY[$name]}"; then
        printf '%s' "$pid"
    fi
}

pg_pid() {
    local pid=''
    read -r pid 2>/dev/null <"$(datadir "$1")/postmaster.pid" || true
    printf '%s' "$pid"
}

pg_running() { "$PG_CLUSTER" status "$(datadir "$1")" >/dev/null 2>&1; }

rmq_running() { "$RABBITMQ" status "$(datadir "$1")" >/dev/null 2>&1; }

# The node's beam.smp pid while it runs.
rmq_pid() {
    local out
    out=$("$RABBITMQ" status "$(datadir "$1")" 2>/dev/null) || return 0
    out=${out#*pid=}
    printf '%s' "${out%% *}"
}

# running | stopped | crashed (a pid file without its process)
state() {
    local name=$1
    if [[ ${KIND[$name]} == pg ]]; then
        if pg_running "$name"; then
            echo running
        elif [[ -f $(datadir "$name")/postmaster.pid ]]; then
            echo crashed
        else
            echo stopped
        fi
    elif [[ ${KIND[$name]} == rmq ]]; then
        if rmq_running "$name"; then
            echo running
        elif [[ -f $(datadir "$name")/pids ]]; then # recorded processes, not stopped by us
            echo crashed
        else
            echo stopped
        fi
    elif [[ -n $(prog_pid "$name") ]]; then
        echo running
    elif [[ -f $(pidfile "$name") ]]; then
        echo crashed
    else
        echo stopped
    fi
}

unit_pid() {
    case ${KIND[$1]} in
    pg) pg_pid "$1" ;;
    rmq) rmq_pid "$1" ;;
    *) prog_pid "$1" ;;
    esac
}

http_code() {
    curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$1$2" 2>/dev/null || true
}

port_in_use() { [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }

# Fails (naming the unit, with the tail of its log) and stops `up`.
fail_unit() {
    local name=$1
    shift
    say "unit $name failed: $*"
    if [[ -f $(logfile "$name") ]]; then
        say "last lines of $(logfile "$name"):"
        tail -n 30 "$(logfile "$name")" >&2
    fi
    exit 1
}

make_dir() { # created directories are 755 so that postgres can traverse them when we are root
    if [[ ! -d $1 ]]; then
        mkdir -p "$1"
        chmod 755 "$1"
    fi
}

# The passwords, made once (random, 0600 in a 0700 directory) and kept: the roles and users
# they belong to keep them across `up`s. secrets/pgpass (a PGPASSFILE) holds postgres's for the
# three clusters, for scripts that administer them over TCP.
ensure_secrets() {
    local name f
    (
        umask 077
        mkdir -p "$SECRETS_DIR"
        chmod 700 "$SECRETS_DIR"
        for name in "${SECRET_NAMES[@]}"; do
            f=$SECRETS_DIR/$name.password
            [[ -s $f ]] || head -c 18 /dev/urandom | base64 | tr '+/' 'xy' | tr -d '\n' >"$f"
        done
        printf '127.0.0.1:*:*:postgres:%s\n' "$(<"$SECRETS_DIR/postgres.password")" \
            >"$SECRETS_DIR/pgpass.new"
        mv -f "$SECRETS_DIR/pgpass.new" "$SECRETS_DIR/pgpass"
    )
}

# The token key pair, made once (gf-keygen refuses to overwrite): the signing key and its
# public half in auth/keys/.
ensure_auth_keys() {
    [[ -s $AUTH_DIR/signing.key.pem ]] && return 0
    (
        umask 077
        mkdir -p "$AUTH_DIR/keys"
        chmod 755 "$AUTH_DIR" "$AUTH_DIR/keys"
        rm -f "$AUTH_DIR/keys/signing.pub.pem"
        "$BUILD_DIR/bin/gf-keygen" "$AUTH_DIR/signing.key.pem" "$AUTH_DIR/keys/signing.pub.pem" \
            >/dev/null
    ) || die "gf-keygen could not make the token keys in $AUTH_DIR"
}

# The cluster's roles are applied at every `up` (idempotent, ~0.1 s), so a data directory made
# before roles existed (everything owned by postgres) is converted on its first `up`.
start_pg() {
    local name=$1 flags=()
    read -r -a flags <<<"${FLAGS[$name]}"
    "$PG_CLUSTER" start "$(datadir "$name")" "${PORT[$name]}" "${flags[@]}" ||
        fail_unit "$name" "could not start the cluster on port ${PORT[$name]}"
    "$PG_CLUSTER" roles "$(datadir "$name")" "$name" "$SECRETS_DIR" ||
        fail_unit "$name" "could not create its roles (sql/roles/roles.sql)"
}

# The services' users (rabbitmq.sh users) are made once per node (each rabbitmqctl call takes
# ~0.7 s; `up` runs often during the chaos test), and again whenever data/NAME/users.done is
# missing.
start_rmq() {
    local name=$1 marker
    "$RABBITMQ" start "$(datadir "$name")" "${PORT[$name]}" --dist-port "${DIST_PORT[$name]}" \
        --epmd-port "${EPMD_PORT[$name]}" >/dev/null ||
        fail_unit "$name" "could not start the broker on port ${PORT[$name]}"
    marker=$(datadir "$name")/users.done
    [[ -f $marker ]] && return 0
    "$RABBITMQ" users "$(datadir "$name")" / "$SECRETS_DIR" ||
        fail_unit "$name" "could not create the services' users"
    : >"$marker"
}

# The operator console's files in $CONSOLE_DIR: built by scripts/console-build.sh (npm ci of
# the pinned uPlot in a scratch copy of console/) when there are none yet or a file under
# console/ or the build script is newer than the last build; otherwise kept. Built beside the
# served directory and swapped in whole, readable by nginx's workers (nobody, when we are
# root). A build that fails or lacks a file fails `up`: nginx never serves a broken console.
ensure_console() {
    local new=$STATE_DIR/run/console.new stamp=$STATE_DIR/run/console.stamp f changed
    if [[ -n ${GF_CONSOLE_DIST:-} ]]; then
        for f in "${CONSOLE_FILES[@]}"; do
            [[ -s $GF_CONSOLE_DIST/$f ]] || die "GF_CONSOLE_DIST=$GF_CONSOLE_DIST has no $f"
        done
        return 0
    fi
    [[ -f $REPO/scripts/console-build.sh ]] || die "scripts/console-build.sh is missing"
    if [[ -f $stamp && -d $CONSOLE_DIR ]]; then
        changed=$(find "$REPO/console" "$REPO/scripts/console-build.sh" -name node_modules -prune \
            -o -newer "$stamp" -print -quit 2>/dev/null)
        [[ -z $changed ]] && return 0
    fi
    say "building the console (scripts/console-build.sh) into $CONSOLE_DIR"
    rm -rf "$new"
    make_dir "$new"
    local log=$STATE_DIR/log/console-build.log
    if ! bash "$REPO/scripts/console-build.sh" "$new" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        rm -rf "$new"
        die "the console's build failed (scripts/console-build.sh; log: $log)"
    fi
    for f in "${CONSOLE_FILES[@]}"; do
        if [[ ! -s $new/$f ]]; then
            rm -rf "$new"
            die "the console's build made no $f (scripts/console-build.sh; log: $log)"
        fi
    done
    chmod -R a+rX "$new"
    rm -rf "$CONSOLE_DIR" "$stamp"
    mv "$new" "$CONSOLE_DIR"
    : >"$stamp"
}

# The ingress's configuration: SPEC §6's routes, as the Kubernetes Ingress has them.
write_nginx_conf() {
    local dir console=${CONSOLE_DIR:-$STATE_DIR/run/console}
    dir=$(datadir "$1")
    make_dir "$dir"
    make_dir "$dir/tmp"
    cat >"$dir/nginx.conf.new" <<NGINX
# Written by scripts/stack.sh at each 'up': the local ingress, with the Kubernetes Ingress's
# routes (/gxp, /marketplace, /auction and /console/api -> backend-svc-1, /item, /user and
# /auth -> backend-svc-2), /eventlog, and the operator console's files at /console/.
worker_processes 1;
pid $dir/nginx.pid;
error_log $STATE_DIR/log/$1.log warn;
events { worker_connections 1024; }
http {
    # Each line names the request's correlation id, as every service's log lines do.
    log_format gf '\$remote_addr [\$time_iso8601] "\$request" \$status \$body_bytes_sent '
                  '\$request_time cid=\$gf_cid upstream=\$upstream_addr';
    access_log $STATE_DIR/log/$1.access.log gf;
    client_body_temp_path $dir/tmp/client;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    # File types for the console's files, as Debian's nginx.conf (compose's image) has them.
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    # Correlation ids, the body limit and nginx's own error answers: as deploy/nginx/ingress.conf
    # (read the reasons there).
    map \$http_x_correlation_id \$gf_client_cid {
        "~*^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\$" \$http_x_correlation_id;
        default "";
    }
    map "\$msec:\$request_id" \$gf_request_cid {
        "~^(?<gf_t1>[0-9]{8})(?<gf_t2>[0-9]{2})\.(?<gf_t3>[0-9]{2})(?<gf_t4>[0-9]):(?<gf_r1>[0-9a-f]{2})(?<gf_r2>[0-9a-f]{3})(?<gf_r3>[0-9a-f]{12})" "\$gf_t1-\$gf_t2\$gf_t3-8\$gf_t4\$gf_r1-8\$gf_r2-\$gf_r3";
    }
    map \$gf_client_cid \$gf_cid {
        "" \$gf_request_cid;
        default \$gf_client_cid;
    }
    client_max_body_size 64k;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host \$host;
    proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    proxy_set_header X-Correlation-Id \$gf_cid;
    proxy_connect_timeout 2s;
    proxy_read_timeout 30s;
    # Rate limits per client (429 rate_limited, Retry-After): POST /auth/login at
    # GF_INGRESS_LOGIN_RATE (2r/s, burst 20) per client address, always; a request without a
    # token at GF_INGRESS_ANON_RATE (50r/s, burst 100) per address; one with a token at
    # GF_INGRESS_TOKEN_RATE per token, which the local stack leaves high (100000r/s) so that the
    # benchmark and the chaos test from 127.0.0.1 measure the system, not the limiter. nginx
    # cannot read a token's subject without verifying it: the key is the token itself, and a
    # subject gets a new one only by logging in, which is limited.
    map \$http_authorization \$gf_anon_key { "" \$binary_remote_addr; default ""; }
    map \$http_authorization \$gf_token_key { "" ""; default \$http_authorization; }
    limit_req_zone \$binary_remote_addr zone=gf_login:1m rate=${GF_INGRESS_LOGIN_RATE:-2r/s};
    limit_req_zone \$gf_anon_key zone=gf_anon:10m rate=${GF_INGRESS_ANON_RATE:-50r/s};
    limit_req_zone \$gf_token_key zone=gf_token:10m rate=${GF_INGRESS_TOKEN_RATE:-100000r/s};
    limit_req_status 429;
    limit_req_log_level warn;
    server_tokens off;
    # Idle upstream connections are dropped before the services' own idle timeout (30 s): nginx
    # never reuses one a service is closing (a POST on it would be a 502, never retried).
    upstream backend_svc_1 { server 127.0.0.1:$BACKEND1_HTTP_PORT; keepalive 32; keepalive_timeout 20s; }
    upstream backend_svc_2 { server 127.0.0.1:$BACKEND2_HTTP_PORT; keepalive 32; keepalive_timeout 20s; }
    upstream eventlog_svc { server 127.0.0.1:$EVENTLOG_HTTP_PORT; keepalive 8; keepalive_timeout 20s; }
    server {
        listen 127.0.0.1:${PORT[$1]};
        limit_req zone=gf_anon burst=${GF_INGRESS_ANON_BURST:-100} nodelay;
        limit_req zone=gf_token burst=${GF_INGRESS_TOKEN_BURST:-100000} nodelay;
        # An API's headers on every answer (add_header is not inherited by a location that has
        # its own, so the answers nginx makes itself repeat them).
        add_header X-Content-Type-Options nosniff always; add_header X-Frame-Options DENY always; add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always; add_header Referrer-Policy no-referrer always; add_header Cache-Control no-store always; add_header Cross-Origin-Resource-Policy same-origin always;
        location = /healthz { default_type text/plain; add_header X-Correlation-Id \$gf_cid always; add_header X-Content-Type-Options nosniff always; add_header X-Frame-Options DENY always; add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always; add_header Referrer-Policy no-referrer always; add_header Cache-Control no-store always; add_header Cross-Origin-Resource-Policy same-origin always; return 200 "ok\\n"; }
        location /gxp { proxy_pass http://backend_svc_1; }
        location /marketplace { proxy_pass http://backend_svc_1; }
        location /auction { proxy_pass http://backend_svc_1; }
        location /item { proxy_pass http://backend_svc_2; }
        location /user { proxy_pass http://backend_svc_2; }
        location /auth { proxy_pass http://backend_svc_2; }
        location = /auth/login {
            limit_req zone=gf_login burst=${GF_INGRESS_LOGIN_BURST:-20} nodelay;
            limit_req zone=gf_anon burst=${GF_INGRESS_ANON_BURST:-100} nodelay;
            proxy_pass http://backend_svc_2;
        }
        location /eventlog { proxy_pass http://eventlog_svc; }
        # The operator console, as deploy/nginx/ingress.conf serves it (read the reasons there):
        # its API, among it server-sent events (GET /console/api/stream), unbuffered and
        # waited for up to an hour between two writes; its page, static files from
        # $console (ensure_console) with a CSP that lets the page run.
        location /console/api { proxy_pass http://backend_svc_1; proxy_buffering off; proxy_cache off; proxy_read_timeout 1h; }
        location = /console { absolute_redirect off; add_header X-Correlation-Id \$gf_cid always; add_header X-Content-Type-Options nosniff always; add_header X-Frame-Options DENY always; add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always; add_header Referrer-Policy no-referrer always; add_header Cache-Control no-store always; add_header Cross-Origin-Resource-Policy same-origin always; return 301 /console/; }
        location /console/ {
            alias $console/;
            index index.html;
            try_files \$uri \$uri/ =404;
            absolute_redirect off;
            charset utf-8;
            if (\$request_method !~ ^(GET|HEAD)\$) { return 405; }
            add_header X-Correlation-Id \$gf_cid always; add_header X-Content-Type-Options nosniff always; add_header X-Frame-Options DENY always; add_header Content-Security-Policy "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'" always; add_header Referrer-Policy no-referrer always; add_header Cache-Control no-cache always; add_header Cross-Origin-Resource-Policy same-origin always;
        }
        location / { return 404; }
        error_page 400 = @gf_400;
        error_page 404 = @gf_404;
        error_page 405 = @gf_405;
        error_page 408 = @gf_408;
        error_page 413 = @gf_413;
        error_page 414 = @gf_414;
        error_page 429 = @gf_429;
        error_page 494 = @gf_431;
        error_page 500 = @gf_500;
        error_page 502 = @gf_502;
        error_page 503 = @gf_503;
        error_page 504 = @gf_504;
        location @gf_400 { types { } default_type application/json; add_header X-Correlation-Id \$gf_cid always; add_header X-Content-Type-Options nosniff always; add_header X-Frame-Options DENY always; add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always; add_header Referrer-Policy no-referrer always; add_header Cache-Control no-store always; add_header Cross-Origin-Resource-Policy same-origin always; return 400 '{"message":"malformed request","error":"bad_request","correlationId":"\$gf_cid"}'; }
        location @gf_404 { types { } default_type application/json; add_header X-Correlation-Id \$gf_cid always; add_header X-Content-Type-Options nosniff always; add_header X-Frame-Options DENY always; add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always; add_header Referrer-Policy no-referrer always; add_header Cache-Control no-store always; add_header Cross-Origin-Resource-Policy same-origin always; return 404 '{"message":"no route for this path","error":"not_found","correlationId":"\$gf_cid"}'; }
        location @gf_405 { types { } default_type application/json; add_header X-Correlation-Id \$gf_cid always; add_header X-Content-Type-Options nosniff always; add_header X-Frame-Options DENY always; add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always; add_header Referrer-Policy no-referrer always; add_header Cache-Control no-store always; add_header Cross-Origin-Resource-Policy same-origin always; return 405 '{"message":"method not allowed","error":"method_not_allowed","correlationId":"\$gf_cid"}'; }
        location @gf_408 { types { } default_type application/json; add_header X-Correlation-Id \$gf_cid always; add_header X-Content-Type-Options nosniff always; add_header X-Frame-Options DENY always; add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always; add_header Referrer-Policy no-referrer always; add_header Cache-Control no-store always; add_header Cross-Origin-Resource-Policy same-origin always; return 408 '{"message":"the request did not arrive in time","error":"request_timeout","correlationId":"\$gf_cid"}'; }
        location @gf_413 { types { } default_type application/json; add_header X-Correlation-Id \$gf_cid always; add_header X-Content-Type-Options nosniff always; add_header X-Frame-Options DENY always; add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always; add_header Referrer-Policy no-referrer always; add_header Cache-Control no-store always; add_header Cross-Origin-Resource-Policy same-origin always; return 413 '{"message":"request body too large","error":"payload_too_large","correlationId":"\$gf_cid"}'; }
        location @gf_414 { types { } default_type application/json; add_header X-Correlation-Id \$gf_cid always; add_header X-Content-Type-Options nosniff always; add_header X-Frame-Options DENY always; add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always; add_header Referrer-Policy no-referrer always; add_header Cache-Control no-store always; add_header Cross-Origin-Resource-Policy same-origin always; return 414 '{"message":"request URL too long","error":"uri_too_long","correlationId":"\$gf_cid"}'; }
        location @gf_429 { types { } default_type application/json; add_header X-Correlation-Id \$gf_cid always; add_header X-Content-Type-Options nosniff always; add_header X-Frame-Options DENY always; add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always; add_header Referrer-Policy no-referrer always; add_header Cache-Control no-store always; add_header Cross-Origin-Resource-Policy same-origin always; add_header Retry-After 1 always; return 429 '{"message":"too many requests: retry later","error":"rate_limited","correlationId":"\$gf_cid"}'; }
        location @gf_431 { types { } default_type application/json; add_header X-Correlation-Id \$gf_cid always; add_header X-Content-Type-Options nosniff always; add_header X-Frame-Options DENY always; add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always; add_header Referrer-Policy no-referrer always; add_header Cache-Control no-store always; add_header Cross-Origin-Resource-Policy same-origin always; return 431 '{"message":"request header too large","error":"header_too_large","correlationId":"\$gf_cid"}'; }
        location @gf_500 { types { } default_type application/json; add_header X-Correlation-Id \$gf_cid always; add_header X-Content-Type-Options nosniff always; add_header X-Frame-Options DENY always; add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always; add_header Referrer-Policy no-referrer always; add_header Cache-Control no-store always; add_header Cross-Origin-Resource-Policy same-origin always; return 500 '{"message":"internal error","error":"internal","correlationId":"\$gf_cid"}'; }
        location @gf_502 { types { } default_type application/json; add_header X-Correlation-Id \$gf_cid always; add_header X-Content-Type-Options nosniff always; add_header X-Frame-Options DENY always; add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always; add_header Referrer-Policy no-referrer always; add_header Cache-Control no-store always; add_header Cross-Origin-Resource-Policy same-origin always; add_header Retry-After 1 always; return 502 '{"message":"the service behind this path is unavailable: retry later","error":"bad_gateway","correlationId":"\$gf_cid"}'; }
        location @gf_503 { types { } default_type application/json; add_header X-Correlation-Id \$gf_cid always; add_header X-Content-Type-Options nosniff always; add_header X-Frame-Options DENY always; add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always; add_header Referrer-Policy no-referrer always; add_header Cache-Control no-store always; add_header Cross-Origin-Resource-Policy same-origin always; add_header Retry-After 1 always; return 503 '{"message":"the service is unavailable: retry later","error":"unavailable","correlationId":"\$gf_cid"}'; }
        location @gf_504 { types { } default_type application/json; add_header X-Correlation-Id \$gf_cid always; add_header X-Content-Type-Options nosniff always; add_header X-Frame-Options DENY always; add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always; add_header Referrer-Policy no-referrer always; add_header Cache-Control no-store always; add_header Cross-Origin-Resource-Policy same-origin always; return 504 '{"message":"the service did not answer in time: the outcome is unknown","error":"gateway_timeout","correlationId":"\$gf_cid"}'; }
    }
}
NGINX
    mv "$dir/nginx.conf.new" "$dir/nginx.conf"
}

start_prog() {
    local name=$1 log envs=() args=() port
    # The console's files first, also when nginx runs already: it reads them from disk.
    [[ $name == "${NGINX_UNIT:-}" ]] && ensure_console
    [[ -n $(prog_pid "$name") ]] && return 0
    [[ $name == "${NGINX_UNIT:-}" ]] && write_nginx_conf "$name"
    if [[ -n ${ARGS[$name]:-} ]]; then
        eval "args=(${ARGS[$name]})"
    fi
    rm -f "$(pidfile "$name")"
    for port in "${PORT[$name]}" "${HTTP_PORT[$name]}"; do
        if port_in_use "$port"; then
            fail_unit "$name" "port $port is already in use by another process"
        fi
    done
    if [[ -n ${ENVS[$name]:-} ]]; then
        mapfile -t envs <<<"${ENVS[$name]}"
    fi
    local i secret
    for i in "${!envs[@]}"; do # VAR=@secret:NAME: the password in $SECRETS_DIR/NAME.password
        [[ ${envs[i]} == *=@secret:* ]] || continue
        secret=$SECRETS_DIR/${envs[i]#*=@secret:}.password
        [[ -s $secret ]] || fail_unit "$name" "$secret is missing"
        envs[i]=${envs[i]%%=*}=$(<"$secret")
    done
    log=$(logfile "$name")
    printf '=== %s stack.sh: starting %s\n' "$(date -Is)" "${BINARY[$name]}" >>"$log"
    # New session: no terminal, no SIGHUP, no Ctrl-C from the shell that ran `up`. setsid and
    # env exec in place, so $! is the program's pid.
    setsid env "${envs[@]}" "${BINARY[$name]}" "${args[@]}" </dev/null >>"$log" 2>&1 &
    printf '%s\n' "$!" >"$(pidfile "$name")"
}

wait_ready() {
    local deadline=$((SECONDS + READY_TIMEOUT)) pending=() left name
    for name in "${UNITS[@]}"; do
        [[ ${KIND[$name]} == prog ]] && pending+=("$name")
    done
    while ((${#pending[@]} > 0)); do
        left=()
        for name in "${pending[@]}"; do
            [[ -n $(prog_pid "$name") ]] || fail_unit "$name" "the process exited during start"
            [[ $(http_code "${HTTP_PORT[$name]}" "${READY_PATH[$name]}") == 200 ]] || left+=("$name")
        done
        pending=("${left[@]}")
        ((${#pending[@]} == 0)) && break
        if ((SECONDS >= deadline)); then
            fail_unit "${pending[0]}" \
                "no 200 from http://127.0.0.1:${HTTP_PORT[${pending[0]}]}${READY_PATH[${pending[0]}]} in ${READY_TIMEOUT} s"
        fi
        sleep 0.2
    done
}

print_table() {
    local name
    printf '%-14s %-8s %-34s %s\n' NAME PID ADDRESS STATE
    for name in "${UNITS[@]}"; do
        printf '%-14s %-8s %-34s %s\n' "$name" "$(unit_pid "$name")" "$(address "$name")" \
            "$(state "$name")"
    done
}

cmd_up() {
    local name
    for name in "${UNITS[@]}"; do
        if [[ ${KIND[$name]} == prog && ! -x ${BINARY[$name]} ]]; then
            die "${BINARY[$name]} is missing: run 'make' first (or set GF_BUILD_DIR)"
        fi
    done
    make_dir "$STATE_DIR"
    make_dir "$STATE_DIR/data"
    make_dir "$STATE_DIR/log"
    make_dir "$STATE_DIR/run"
    ensure_secrets
    ensure_auth_keys
    "$REPO/scripts/pki.sh" "$PKI_DIR" || die "scripts/pki.sh could not make the certificates"
    for name in "${UNITS[@]}"; do
        case ${KIND[$name]} in
        pg) start_pg "$name" ;;
        rmq) start_rmq "$name" ;;
        *) start_prog "$name" ;;
        esac
    done
    wait_ready
    print_table
    say "ready: the API is http://127.0.0.1:$INGRESS_PORT (nginx); try: $BUILD_DIR/bin/gf ls"
    # gf logs in as the operator (a token per URL in its token file; GF_TOKEN_FILE moves it). Not
    # fatal: the operator may have changed its password since the first `up`. A system with a
    # state directory of its own (a test's, a second system) keeps its login there too, not in
    # the user's gf file, unless GF_TOKEN_FILE says otherwise.
    if [[ -z ${GF_TOKEN_FILE:-} && $STATE_DIR != "$REPO/.gf" ]]; then
        export GF_TOKEN_FILE=$STATE_DIR/gf/tokens.json
        say "gf's login for this system: export GF_TOKEN_FILE=$GF_TOKEN_FILE"
    fi
    if "$BUILD_DIR/bin/gf" --url "http://127.0.0.1:$INGRESS_PORT" login --password-stdin \
        "$ADMIN_NAME" <"$SECRETS_DIR/admin.password" >/dev/null; then
        say "gf is logged in as $ADMIN_NAME (its first password: $SECRETS_DIR/admin.password)"
    else
        say "warning: gf could not log in as $ADMIN_NAME: gf login $ADMIN_NAME (first password: $SECRETS_DIR/admin.password)"
    fi
    say "(gf --help lists the commands; make status, make logs [SERVICE=name], make down)"
}

stop_prog() {
    local name=$1 pid i
    pid=$(prog_pid "$name")
    if [[ -n $pid ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < STOP_GRACE * 10; i++)); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            say "$name (pid $pid) still running ${STOP_GRACE} s after SIGTERM: sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        say "stopped $name"
    fi
    rm -f "$(pidfile "$name")"
}

cmd_down() {
    local i name rc=0
    for ((i = ${#UNITS[@]} - 1; i >= 0; i--)); do # programs first: reverse table order
        name=${UNITS[i]}
        [[ ${KIND[$name]} == prog ]] && stop_prog "$name"
    done
    for ((i = ${#UNITS[@]} - 1; i >= 0; i--)); do
        name=${UNITS[i]}
        [[ ${KIND[$name]} != prog && -d $(datadir "$name") ]] || continue
        if [[ ${KIND[$name]} == rmq ]]; then
            # Also when it crashed: rabbitmq.sh stops whatever it recorded (its epmd, say).
            [[ -f $(datadir "$name")/pids ]] || continue
            if "$RABBITMQ" stop "$(datadir "$name")"; then
                say "stopped $name"
            else
                rc=1
            fi
            continue
        fi
        pg_running "$name" || continue
        if "$PG_CLUSTER" stop "$(datadir "$name")"; then
            say "stopped $name"
        else
            rc=1
        fi
    done
    return "$rc"
}

health() {
    local name=$1 code
    if [[ ${KIND[$name]} == pg ]]; then
        if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "${PORT[$name]}" -U postgres -d postgres -t 2; then echo ok; else echo -; fi
        return 0
    fi
    if [[ ${KIND[$name]} == rmq ]]; then
        if rmq_running "$name" && "$RABBITMQ" ctl "$(datadir "$name")" -q ping >/dev/null 2>&1; then
            echo ok
        else
            echo -
        fi
        return 0
    fi
    [[ -n $(prog_pid "$name") ]] || {
        echo -
        return 0
    }
    code=$(http_code "${HTTP_PORT[$name]}" /healthz)
    if [[ $code == 200 ]]; then echo ok; else echo "fail (http ${code:-none})"; fi
}

cmd_status() {
    local name st
    printf '%-14s %-8s %-34s %-9s %s\n' NAME PID ADDRESS STATE HEALTH
    for name in "${UNITS[@]}"; do
        st=$(state "$name")
        printf '%-14s %-8s %-34s %-9s %s\n' "$name" "$(unit_pid "$name")" "$(address "$name")" \
            "$st" "$(health "$name")"
    done
}

cmd_logs() {
    local files=() name
    if (($# > 0)); then
        [[ -n ${KIND[$1]:-} ]] || die "no unit named '$1' (units: ${UNITS[*]})"
        files=("$(logfile "$1")")
    else
        for name in "${UNITS[@]}"; do
            [[ -f $(logfile "$name") ]] && files+=("$(logfile "$name")")
        done
    fi
    ((${#files[@]} > 0)) || die "no logs yet under $STATE_DIR"
    exec tail -n 50 -F "${files[@]}"
}

usage() {
    printf 'usage: %s up | down | status | logs [name]\n' "${0##*/}" >&2
    exit 2
}

(($# >= 1)) || usage
case $1 in
up | down | status)
    (($# == 1)) || usage
    "cmd_$1"
    ;;
logs)
    shift
    (($# <= 1)) || usage
    cmd_logs "$@"
    ;;
*) usage ;;
esac
