#!/usr/bin/env bash
# A private RabbitMQ 3.10 node for the tests (the `broker` ctest fixture, harness.c) and the local
# stack (scripts/stack.sh): its own node name, epmd, ports and data directory, 127.0.0.1 only.
#
#   rabbitmq.sh start  DIR PORT [--dist-port N] [--epmd-port N]   (PORT 0: pick a free one)
#   rabbitmq.sh stop   DIR
#   rabbitmq.sh status DIR               (exit 0 = running)
#   rabbitmq.sh ctl    DIR ARGS...       (rabbitmqctl against the node in DIR)
#   rabbitmq.sh users  DIR VHOST SECRETS_DIR
#                                        (the services' users, scripts/broker-users.sh, and no guest)
#
# DIR holds everything: mnesia/ (data, kept by stop), log/, the config files, `env` (key=value:
# port, dist_port, epmd_port, node; harness.c reads port) and `pids` (key=PID START of the
# rabbitmq-server script, beam.smp and our epmd; stop and reap.sh signal nothing else). Ports
# not given are picked among free ones in 20000-29899 (outside the kernel's ephemeral range and
# h_free_port's 31000-32767); a start that fails on picked ports is retried on others.
# Every rabbitmqctl run listens for a moment too: on 29900-29999 (its default, 35672-35682, is
# in the ephemeral range and has room for only 11 calls at once, machine-wide).
# Clients log in as guest/guest, until `users` made the services' users and deleted guest (the
# local stack does; the tests' shared node keeps guest). Runs as the current user, root included: the node never switches
# user, unlike /usr/sbin/rabbitmqctl, and its Erlang cookie lives in DIR (HOME=DIR).
# Environment: GF_RABBITMQ_BIN (default /usr/lib/rabbitmq/bin), GF_RABBITMQ_START_TIMEOUT (s, 60).
set -euo pipefail

RMQ_BIN=${GF_RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}
START_TIMEOUT=${GF_RABBITMQ_START_TIMEOUT:-60}
START_TRIES=3
CTL_TIMEOUT=60 # seconds for one rabbitmqctl call
STOP_GRACE=10  # seconds for the node to stop before SIGTERM, and again before SIGKILL
PORT_MIN=20000 # picked ports: 20000-29899
PORT_SPAN=9900
CTL_PORT_MIN=29900 # rabbitmqctl's own listener: the first free one of 29900-29999
CTL_PORT_MAX=29999

die() {
    printf 'rabbitmq: %s\n' "$*" >&2
    exit 1
}

usage() {
    printf 'usage: %s start DIR PORT [--dist-port N] [--epmd-port N] | stop DIR | status DIR | ctl DIR ARGS... | users DIR VHOST SECRETS_DIR\n' \
        "${0##*/}" >&2
    exit 2
}

valid_port() { [[ $1 =~ ^[0-9]{1,5}$ ]] && ((10#$1 <= 65535)); }

port_in_use() { [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }

# A port in PORT_MIN.. that nobody listens on and that is not among the arguments. Racy by
# nature: a start on picked ports is retried.
pick_port() {
    local p i taken
    for ((i = 0; i < 200; i++)); do
        p=$((PORT_MIN + (RANDOM * 32768 + RANDOM) % PORT_SPAN))
        for taken in "$@"; do
            [[ $p == "$taken" ]] && continue 2
        done
        port_in_use "$p" || {
            printf '%s' "$p"
            return 0
        }
    done
    die "no free port in $PORT_MIN-$((PORT_MIN + PORT_SPAN - 1))"
}

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Start time of a live process (field 22 of /proc/PID/stat); empty if gone or a zombie.
start_time() {
    local stat='' fields
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 0
    read -r -a fields <<<"${stat##*) }"
    [[ ${fields[0]} == Z ]] && return 0
    printf '%s' "${fields[19]}"
}

# "PID START" of a live process, for the pids file.
proc_id() { printf '%s %s' "$1" "$(start_time "$1")"; }

# True if "PID START" still names a live process.
same_process() {
    local pid start now
    read -r pid start <<<"$1"
    [[ $pid =~ ^[0-9]+$ && -n $start ]] || return 1
    now=$(start_time "$pid")
    [[ -n $now && $now == "$start" ]]
}

# Value of KEY in a key=value FILE; empty if absent.
kv() {
    local k v
    [[ -f $1 ]] || return 0
    while IFS='=' read -r k v; do
        if [[ $k == "$2" ]]; then
            printf '%s' "$v"
            return 0
        fi
    done <"$1"
}

write_kv() { # FILE LINES...: atomically
    printf '%s\n' "${@:2}" >"$1.tmp"
    mv -f "$1.tmp" "$1"
}

# The node name is derived from DIR, so it stays the same across restarts (mnesia is tied to it).
node_name() { printf 'gf-%s@localhost' "$(printf '%s' "$DIR" | cksum | cut -d' ' -f1)"; }

# Exports what both rabbitmq-server and rabbitmqctl need to find and reach the node of DIR.
node_env() {
    export HOME=$DIR # the Erlang cookie: $HOME/.erlang.cookie
    export RABBITMQ_NODENAME=$NODE
    export ERL_EPMD_PORT=$EPMD_PORT
    export RABBITMQ_CONF_ENV_FILE=$DIR/rabbitmq-env.conf # not /etc/rabbitmq's
    export RABBITMQ_CONFIG_FILE=$DIR/rabbitmq.conf
    export RABBITMQ_ADVANCED_CONFIG_FILE=$DIR/advanced.config
    export RABBITMQ_ENABLED_PLUGINS_FILE=$DIR/enabled_plugins
    export RABBITMQ_MNESIA_BASE=$DIR/mnesia
    export RABBITMQ_LOG_BASE=$DIR/log
    export RABBITMQ_PID_FILE=$DIR/pid
    export ERL_CRASH_DUMP=$DIR/log/erl_crash.dump
    # The CLI's own distribution listener: loopback only, in our range.
    export RABBITMQ_CTL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
    export RABBITMQ_CTL_DIST_PORT_MIN=$CTL_PORT_MIN RABBITMQ_CTL_DIST_PORT_MAX=$CTL_PORT_MAX
}

load_env() {
    NODE=$(node_name)
    PORT=$(kv "$DIR/env" port)
    DIST_PORT=$(kv "$DIR/env" dist_port)
    EPMD_PORT=$(kv "$DIR/env" epmd_port)
}

pid_of() { kv "$DIR/pids" "$1"; }

epmd_running() { same_process "$(pid_of epmd)"; }

# The node's beam.smp runs (it may still be booting, or stopping).
is_running() {
    [[ -f $DIR/pids ]] && same_process "$(pid_of beam)"
}

ctl_raw() { timeout -k 5 "$CTL_TIMEOUT" "$RMQ_BIN/rabbitmqctl" "$@"; }

beam_pid_from_file() {
    local pid=''
    read -r pid 2>/dev/null <"$DIR/pid" || true
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */beam.smp ]] && printf '%s' "$pid"
    return 0
}

write_config() {
    mkdir -p "$DIR/mnesia" "$DIR/log"
    [[ -f $DIR/enabled_plugins ]] || printf '[].\n' >"$DIR/enabled_plugins"
    : >"$DIR/rabbitmq-env.conf"
    {
        printf '# Written by rabbitmq.sh start: do not edit, it is overwritten at every start.\n'
        printf 'listeners.tcp.1 = 127.0.0.1:%s\n' "$PORT"
        printf 'loopback_users = none\n'
        printf 'log.file.level = info\nlog.console = false\n'
    } >"$DIR/rabbitmq.conf.tmp"
    mv -f "$DIR/rabbitmq.conf.tmp" "$DIR/rabbitmq.conf"
    write_kv "$DIR/env" "port=$PORT" "dist_port=$DIST_PORT" "epmd_port=$EPMD_PORT" "node=$NODE"
}

log_tail() {
    local f
    for f in "$DIR/log/$NODE.log" "$DIR/log/server.out" "$DIR/log/epmd.out"; do
        [[ -s $f ]] || continue
        printf 'rabbitmq: last lines of %s:\n' "$f" >&2
        tail -n 25 "$f" >&2
    done
}

# Launches epmd and the node; pids recorded at once. Returns 1 (with everything stopped again)
# if the node did not come up; sets FAIL_WHY.
launch() {
    local deadline epmd server beam=''
    # New sessions (no terminal, no Ctrl-C from the caller) and nothing inherited but
    # /dev/null and the log: a ctest fixture waits for its output pipes to close.
    setsid epmd -port "$EPMD_PORT" -address 127.0.0.1 </dev/null >>"$DIR/log/epmd.out" 2>&1 &
    epmd=$!
    write_kv "$DIR/pids" "epmd=$(proc_id "$epmd")"
    deadline=$((SECONDS + 10))
    until tcp_open "$EPMD_PORT"; do
        if ! same_process "$(pid_of epmd)" || ((SECONDS >= deadline)); then
            FAIL_WHY="epmd did not start on port $EPMD_PORT"
            return 1
        fi
        sleep 0.05
    done
    rm -f "$DIR/pid"
    (
        node_env
        export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$PORT
        export RABBITMQ_DIST_PORT=$DIST_PORT
        # Distribution on loopback only; -start_epmd false: without our epmd the node fails
        # rather than starting an epmd nobody records.
        export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false'
        cd "$DIR"
        exec setsid "$RMQ_BIN/rabbitmq-server" </dev/null >>"$DIR/log/server.out" 2>&1
    ) &
    server=$!
    write_kv "$DIR/pids" "epmd=$(proc_id "$epmd")" "server=$(proc_id "$server")"
    # The AMQP listener opens at the end of the boot; await_startup then confirms it finished.
    deadline=$((SECONDS + START_TIMEOUT))
    for (( ; ; )); do
        if [[ -z $beam ]]; then
            beam=$(beam_pid_from_file)
            [[ -n $beam ]] && write_kv "$DIR/pids" "epmd=$(proc_id "$epmd")" \
                "server=$(proc_id "$server")" "beam=$(proc_id "$beam")"
        fi
        if ! same_process "$(pid_of server)"; then
            FAIL_WHY="rabbitmq-server exited during start"
            return 1
        fi
        if [[ -n $beam ]] && tcp_open "$PORT"; then
            (
                node_env
                ctl_raw -q await_startup --timeout $((deadline - SECONDS > 5 ? deadline - SECONDS : 5))
            ) >/dev/null 2>&1 && return 0
        fi
        if ((SECONDS >= deadline)); then
            FAIL_WHY="not up after ${START_TIMEOUT} s"
            return 1
        fi
        sleep 0.2
    done
}

# Signals the recorded process KEY (TERM, up to STOP_GRACE s, KILL) unless it is gone already.
stop_recorded() {
    local id pid i
    id=$(pid_of "$1")
    same_process "$id" || return 0
    pid=${id%% *}
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_GRACE * 10; i++)); do
        same_process "$id" || return 0
        sleep 0.1
    done
    printf 'rabbitmq: %s (pid %s) still running %s s after SIGTERM: sending SIGKILL\n' \
        "$1" "$pid" "$STOP_GRACE" >&2
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        same_process "$id" || return 0
        sleep 0.1
    done
}

# Waits up to STOP_GRACE s for the recorded process KEY to exit by itself.
wait_exit() {
    local id i
    id=$(pid_of "$1")
    for ((i = 0; i < STOP_GRACE * 10; i++)); do
        same_process "$id" || return 0
        sleep 0.1
    done
    return 1
}

stop_all() {
    if is_running && epmd_running; then
        (
            node_env
            ctl_raw -q stop "$DIR/pid"
        ) >/dev/null 2>&1 || true
        wait_exit beam || true
    fi
    stop_recorded beam
    wait_exit server || true # it exits once its beam did
    stop_recorded server
    stop_recorded epmd
    rm -f "$DIR/pids" "$DIR/pid"
}

lock_dir() {
    exec {LOCK_FD}>>"$DIR/.lock"
    flock -w 180 "$LOCK_FD" || die "timed out waiting for $DIR/.lock"
}

cmd_start() {
    local want_port=$1 want_dist=$2 want_epmd=$3 try
    mkdir -p "$DIR"
    lock_dir
    load_env
    if is_running; then
        [[ $want_port == 0 || $want_port == "$PORT" ]] ||
            die "$DIR is already running on port $PORT, not $want_port"
        printf '%s\n' "$PORT"
        return 0
    fi
    stop_all # whatever a crashed node left behind
    for ((try = 1; try <= START_TRIES; try++)); do
        NODE=$(node_name)
        PORT=$want_port DIST_PORT=$want_dist EPMD_PORT=$want_epmd
        for p in "$PORT" "$DIST_PORT" "$EPMD_PORT"; do
            if [[ $p != 0 ]] && port_in_use "$p"; then
                die "port $p is already in use by another process"
            fi
        done
        [[ $PORT == 0 ]] && PORT=$(pick_port)
        [[ $DIST_PORT == 0 ]] && DIST_PORT=$(pick_port "$PORT")
        [[ $EPMD_PORT == 0 ]] && EPMD_PORT=$(pick_port "$PORT" "$DIST_PORT")
        write_config
        FAIL_WHY=''
        # LOCK_FD stays with us: a node holding it would block every later start and stop.
        if launch {LOCK_FD}>&-; then
            printf '%s\n' "$PORT"
            return 0
        fi
        printf 'rabbitmq: start %d of %d in %s failed: %s\n' "$try" "$START_TRIES" "$DIR" "$FAIL_WHY" >&2
        log_tail
        stop_all
        # Only picked ports can be the problem worth another try.
        [[ $want_port == 0 || $want_dist == 0 || $want_epmd == 0 ]] || break
        [[ $FAIL_WHY == not\ up* ]] && break
    done
    die "could not start a node in $DIR"
}

cmd_stop() {
    [[ -d $DIR ]] || return 0
    lock_dir
    load_env
    stop_all
}

cmd_status() {
    load_env
    if is_running; then
        printf 'running pid=%s port=%s node=%s\n' "$(pid_of beam | cut -d' ' -f1)" "$PORT" "$NODE"
        return 0
    fi
    printf 'stopped\n'
    return 3
}

cmd_ctl() {
    load_env
    # Without our epmd, rabbitmqctl would start one of its own on EPMD_PORT and leave it running.
    if [[ -z $EPMD_PORT ]] || ! epmd_running; then
        die "no node running in $DIR"
    fi
    node_env
    ctl_raw "$@"
}

# Imports scripts/broker-users.sh's definitions (users, permissions, eventlog's queues) from a
# 0600 file removed at once, then deletes guest. Idempotent.
cmd_users() {
    local vhost=$1 secrets=$2 defs users rc=0
    defs=$(umask 077 && mktemp "$DIR/definitions.XXXXXX")
    if ! "$(dirname "${BASH_SOURCE[0]}")/../../scripts/broker-users.sh" "$vhost" "$secrets" >"$defs"; then
        rm -f "$defs"
        die "could not write the users' definitions"
    fi
    cmd_ctl -q import_definitions "$defs" >/dev/null || rc=$?
    rm -f "$defs"
    ((rc == 0)) || die "import_definitions failed"
    users=$(cmd_ctl -q list_users) || die "list_users failed"
    if grep -q '^guest[[:space:]]' <<<"$users"; then
        cmd_ctl -q delete_user guest >/dev/null || die "could not delete guest"
    fi
}

(($# >= 2)) || usage
CMD=$1
DIR=$(realpath -m -- "$2")
shift 2
case $CMD in
start)
    (($# >= 1)) || usage
    valid_port "$1" || die "bad port: $1"
    port=$((10#$1)) dist=0 epmd=0
    shift
    while (($# > 0)); do
        case $1 in
        --dist-port | --epmd-port)
            if (($# < 2)) || ! valid_port "$2"; then
                usage
            fi
            if [[ $1 == --dist-port ]]; then dist=$((10#$2)); else epmd=$((10#$2)); fi
            shift 2
            ;;
        *) usage ;;
        esac
    done
    cmd_start "$port" "$dist" "$epmd"
    ;;
stop | status)
    (($# == 0)) || usage
    "cmd_$CMD"
    ;;
ctl)
    cmd_ctl "$@"
    ;;
users)
    (($# == 2)) || usage
    cmd_users "$1" "$2"
    ;;
*) usage ;;
esac
