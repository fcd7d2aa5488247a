#!/usr/bin/env bash
# Network faults on loopback for tests: partitions that silently DROP packets (never REJECT or
# RST: a peer learns of the cut only from its own timeouts) and fixed delays, link by link,
# on 127.0.0.1 only. Used by tests/chaos/chaos.sh; usable by any test that runs a stack.
#
#   netfault.sh cut   RUN LINK...      drop every packet of these links, both ways
#   netfault.sh delay RUN MS LINK...   hold every packet of these links MS ms, both ways
#   netfault.sh heal  RUN [LINK...]    remove RUN's rules and delayers (all, or these links')
#   netfault.sh list  RUN              RUN's rules
#   netfault.sh reap                   heal every run whose owner process is gone
#   netfault.sh check                  can faults be injected here? (exit 0 / 1 with the reason)
#
# LINK is a link of the local stack (ports from the GF_*_PORT variables scripts/stack.sh and
# tests/harness/ports.sh use):
#   backend-db   services → backend-db: connections opened by root to GF_BACKEND_DB_PORT
#   replication  gxp-db's subscription → backend-db: opened by the postgres user (the cluster's
#                apply worker) to the same port, told apart by the socket's owner
#   gxp-db       gxp → gxp-db (GF_GXP_DB_PORT)
#   grpc         backend ↔ gxp: GF_GXP_PORT, GF_GXP2_PORT, GF_BACKEND1_GRPC_PORT, GF_BACKEND2_GRPC_PORT
#   broker       services → RabbitMQ (GF_BROKER_PORT, AMQP)
# or a raw one: PORT[+PORT...][@USER] — TCP to these ports (only connections USER opened).
#
# How: rules at the top of iptables' OUTPUT chain for `-o lo` (every loopback packet passes
# OUTPUT once, whichever way it goes). A link of ports matches --dport and --sport. A link with
# an owner cannot match the answers that way (the server's packets belong to the server), so
# the owner's packets mark their connection (CONNMARK, a mark unique to the run and link) and
# every packet of a marked connection is dropped; an established connection is cut from the
# owner's next packet (its next ACK at the latest). Delays send the packets to an NFQUEUE held
# by gf-netdelay (tests/chaos/netdelay.c), with --queue-bypass: when no delayer runs, packets
# pass. (This machine's kernel has neither tc netem nor the prio qdisc; netfilter queues are
# built in, so no qdisc of lo is ever touched.)
#
# Every rule carries `-m comment --comment gf-netfault-RUN/LINK`; heal removes exactly the rules
# whose comment names RUN (found with iptables -S, so a lost state directory loses nothing) and
# never touches another rule. State: $NETFAULT_DIR (/tmp/gf-netfault)/RUN/ — the owner (the
# process that cut first: NETFAULT_OWNER_PID, else our parent), delayers' pids. Needs root.
# Environment: NETFAULT_DIR, NETFAULT_OWNER_PID, GF_NETDELAY_BIN (default
# $GF_BUILD_DIR/tests-bin/gf-netdelay), GF_BUILD_DIR.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STATE_ROOT=${NETFAULT_DIR:-/tmp/gf-netfault}
NETDELAY=${GF_NETDELAY_BIN:-${GF_BUILD_DIR:-$REPO/build}/tests-bin/gf-netdelay}
IPT=(iptables -w 5)
MARK_MASK=0x0fff0000

say() { printf 'netfault: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}

usage() {
    sed -n '6,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# ---- prerequisites ------------------------------------------------------------------------------
need_tools() {
    ((EUID == 0)) || die "needs root (iptables)"
    if ! command -v iptables >/dev/null 2>&1; then
        if command -v apt-get >/dev/null 2>&1; then
            say "iptables is missing: installing it (apt-get install iptables)"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                iptables >&2 || die "could not install iptables (package: iptables)"
        else
            die "iptables is missing (Debian package: iptables)"
        fi
    fi
    command -v flock >/dev/null 2>&1 || die "flock is missing (Debian package: util-linux)"
}

cmd_check() {
    need_tools
    local probe=gf-netfault-check-$$
    "${IPT[@]}" -I OUTPUT 1 -o lo -p tcp --dport 9 -m owner --uid-owner 0 \
        -m comment --comment "$probe" -j CONNMARK --set-xmark 0x00010000/$MARK_MASK 2>/dev/null ||
        die "iptables cannot add an OUTPUT rule with owner, comment and CONNMARK here"
    "${IPT[@]}" -D OUTPUT -o lo -p tcp --dport 9 -m owner --uid-owner 0 \
        -m comment --comment "$probe" -j CONNMARK --set-xmark 0x00010000/$MARK_MASK
    if [[ -x $NETDELAY ]]; then
        say "ok: cuts (iptables $(iptables --version | awk '{print $2, $3}')), delays ($NETDELAY)"
    else
        say "ok: cuts; delays need $NETDELAY (built with the tests)"
    fi
}

# ---- runs ---------------------------------------------------------------------------------------
check_run() {
    [[ $1 =~ ^[A-Za-z0-9_.-]{1,64}$ ]] || die "a run id is 1-64 of [A-Za-z0-9_.-], not '$1'"
}

start_time() { # field 22 of /proc/PID/stat; empty when gone
    local stat fields
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    read -r -a fields <<<"${stat##*) }"
    printf '%s' "${fields[19]}"
}

# Records RUN's owner the first time a fault is added.
own_run() {
    local dir=$STATE_ROOT/$1 pid=${NETFAULT_OWNER_PID:-$PPID}
    mkdir -p "$dir"
    [[ -f $dir/owner ]] || printf '%s %s\n' "$pid" "$(start_time "$pid")" >"$dir/owner"
}

owner_alive() {
    local pid start
    read -r pid start <"$STATE_ROOT/$1/owner" 2>/dev/null || return 1
    [[ $pid =~ ^[0-9]+$ && -n $start && $(start_time "$pid") == "$start" ]]
}

# A small number from a string (for marks and queue numbers).
hash_of() { printf '%s' "$1" | cksum | awk '{print $1}'; }

# ---- links --------------------------------------------------------------------------------------
# Sets L_PORTS (array) and L_USER (empty: any) for a link; L_TAG names it in comments.
resolve_link() {
    local link=$1 p
    L_PORTS=() L_USER=''
    case $link in
    backend-db) L_PORTS=("${GF_BACKEND_DB_PORT:-}") L_USER=root ;;
    replication) L_PORTS=("${GF_BACKEND_DB_PORT:-}") L_USER=postgres ;;
    gxp-db) L_PORTS=("${GF_GXP_DB_PORT:-}") ;;
    grpc) L_PORTS=("${GF_GXP_PORT:-}" "${GF_GXP2_PORT:-}" "${GF_BACKEND1_GRPC_PORT:-}"
        "${GF_BACKEND2_GRPC_PORT:-}") ;;
    broker) L_PORTS=("${GF_BROKER_PORT:-}") ;;
    *)
        [[ $link =~ ^([0-9]+(\+[0-9]+)*)(@([a-z_][a-z0-9_-]*))?$ ]] ||
            die "unknown link '$link' (backend-db, replication, gxp-db, grpc, broker, PORT[+PORT][@USER])"
        IFS=+ read -r -a L_PORTS <<<"${BASH_REMATCH[1]}"
        L_USER=${BASH_REMATCH[4]:-}
        ;;
    esac
    for p in "${L_PORTS[@]}"; do
        if ! [[ $p =~ ^[0-9]+$ ]] || ((p < 1 || p > 65535)); then
            die "link $link: no port (are the GF_*_PORT variables of the stack exported?)"
        fi
    done
    if [[ -n $L_USER ]]; then
        id -u "$L_USER" >/dev/null 2>&1 || die "link $link: no user $L_USER"
    fi
    L_TAG=${link//@/-at-}
    L_TAG=${L_TAG//+/-}
}

comment_of() { printf 'gf-netfault-%s/%s' "$1" "$2"; }

# Adds the rules of a link with action ACTION... (DROP, or NFQUEUE ...) at the top of OUTPUT.
add_rules() {
    local run=$1 link=$2 idx=$3 p mark c
    shift 3
    c=$(comment_of "$run" "$L_TAG")
    if [[ -z $L_USER ]]; then
        for p in "${L_PORTS[@]}"; do
            "${IPT[@]}" -I OUTPUT 1 -o lo -p tcp --sport "$p" -m comment --comment "$c" -j "$@"
            "${IPT[@]}" -I OUTPUT 1 -o lo -p tcp --dport "$p" -m comment --comment "$c" -j "$@"
        done
        return 0
    fi
    # A mark unique to (run, link): 8 bits of the run's hash, 4 of the link's index.
    mark=$(printf '0x%08x' $((($(hash_of "$run") & 0xff) << 20 | (idx & 0xf) << 16)))
    "${IPT[@]}" -I OUTPUT 1 -o lo -p tcp -m connmark --mark "$mark/$MARK_MASK" \
        -m comment --comment "$c" -j "$@"
    for p in "${L_PORTS[@]}"; do # above the drop: the owner's packets mark first
        "${IPT[@]}" -I OUTPUT 1 -o lo -p tcp --dport "$p" -m owner --uid-owner "$L_USER" \
            -m comment --comment "$c" -j CONNMARK --set-xmark "$mark/$MARK_MASK"
    done
}

link_index() {
    case $1 in
    backend-db) echo 1 ;; replication) echo 2 ;; gxp-db) echo 3 ;; grpc) echo 4 ;; broker) echo 5 ;;
    *) echo $((6 + $(hash_of "$1") % 10)) ;;
    esac
}

# Removes every rule whose comment is RUN's (and names TAG, when given).
remove_rules() {
    local run=$1 tag=${2:-} line words n=0 want
    if [[ -n $tag ]]; then
        want="--comment gf-netfault-$run/$tag "
    else
        want="--comment gf-netfault-$run/"
    fi
    while IFS= read -r line; do
        line=${line//\"/} # iptables -S quotes some comments; ours hold no space or quote
        [[ $line == "-A OUTPUT "* && $line == *"$want"* ]] || continue
        read -r -a words <<<"${line#-A OUTPUT }"
        "${IPT[@]}" -D OUTPUT "${words[@]}" && n=$((n + 1))
    done < <("${IPT[@]}" -S OUTPUT)
    printf '%s' "$n"
}

stop_delayer() {
    local file=$1 pid start i
    read -r pid start <"$file" 2>/dev/null || {
        rm -f "$file"
        return 0
    }
    if [[ $pid =~ ^[0-9]+$ && -n $start && $(start_time "$pid") == "$start" ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 30; i++)); do
            [[ $(start_time "$pid") == "$start" ]] || break
            sleep 0.1
        done
        [[ $(start_time "$pid") == "$start" ]] && kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$file"
}

heal_link_locked() { # RUN TAG
    local n
    n=$(remove_rules "$1" "$2")
    [[ -f $STATE_ROOT/$1/delay-$2.pid ]] && stop_delayer "$STATE_ROOT/$1/delay-$2.pid"
    rm -f "$STATE_ROOT/$1/fault-$2"
    printf '%s' "$n"
}

locked() { # runs "$@" holding the lock of every netfault.sh on this machine
    mkdir -p "$STATE_ROOT"
    (
        flock -w 30 9 || die "could not take $STATE_ROOT/.lock"
        "$@"
    ) 9>"$STATE_ROOT/.lock"
}

# ---- commands -----------------------------------------------------------------------------------
do_cut() {
    local run=$1 link n
    shift
    own_run "$run"
    for link in "$@"; do
        resolve_link "$link"
        n=$(heal_link_locked "$run" "$L_TAG")
        add_rules "$run" "$link" "$(link_index "$link")" DROP
        printf 'cut\n' >"$STATE_ROOT/$run/fault-$L_TAG"
        say "run $run: cut $link (ports ${L_PORTS[*]}${L_USER:+, opened by $L_USER}): packets dropped"
    done
}

start_delayer() { # RUN TAG MS: sets D_QUEUE
    local run=$1 tag=$2 ms=$3 q tries pid rc ready=$STATE_ROOT/$1/delay-$2.ready i
    [[ -x $NETDELAY ]] || die "delays need $NETDELAY (tests/chaos/netdelay.c; build the tests)"
    q=$((20000 + ($(hash_of "$run/$tag") % 40000)))
    for ((tries = 0; tries < 20; tries++, q = 20000 + (q - 20000 + 7919) % 40000)); do
        rm -f "$ready"
        setsid "$NETDELAY" --queue "$q" --delay-ms "$ms" --ready "$ready" \
            </dev/null >>"$STATE_ROOT/$run/netdelay.log" 2>&1 9>&- &
        pid=$!
        for ((i = 0; i < 50; i++)); do
            [[ -s $ready ]] && break
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        if [[ -s $ready ]]; then
            printf '%s %s\n' "$pid" "$(start_time "$pid")" >"$STATE_ROOT/$run/delay-$tag.pid"
            D_QUEUE=$q
            return 0
        fi
        rc=0
        wait "$pid" || rc=$?
        ((rc == 3)) || die "gf-netdelay failed (exit $rc; see $STATE_ROOT/$run/netdelay.log)"
    done
    die "no free netfilter queue number found"
}

do_delay() {
    local run=$1 ms=$2 link n
    shift 2
    if ! [[ $ms =~ ^[0-9]+$ ]] || ((ms > 600000)); then
        die "delay: MS must be 0..600000, not '$ms'"
    fi
    own_run "$run"
    for link in "$@"; do
        resolve_link "$link"
        n=$(heal_link_locked "$run" "$L_TAG")
        start_delayer "$run" "$L_TAG" "$ms"
        add_rules "$run" "$link" "$(link_index "$link")" NFQUEUE --queue-num "$D_QUEUE" \
            --queue-bypass
        printf 'delay %s\n' "$ms" >"$STATE_ROOT/$run/fault-$L_TAG"
        say "run $run: delay $link (ports ${L_PORTS[*]}${L_USER:+, opened by $L_USER}) by $ms ms each way (queue $D_QUEUE)"
    done
}

do_heal() {
    local run=$1 link n total=0 f tag
    shift
    if (($# > 0)); then
        for link in "$@"; do
            resolve_link "$link"
            n=$(heal_link_locked "$run" "$L_TAG")
            total=$((total + n))
        done
    else
        total=$(remove_rules "$run")
        shopt -s nullglob
        for f in "$STATE_ROOT/$run"/delay-*.pid; do
            stop_delayer "$f"
        done
        for f in "$STATE_ROOT/$run"/fault-*; do
            rm -f "$f"
        done
        rm -f "$STATE_ROOT/$run/owner" "$STATE_ROOT/$run"/delay-*.ready
        rmdir "$STATE_ROOT/$run" 2>/dev/null || true # netdelay.log stays when there is one
    fi
    say "run $run: healed ${*:-every link} ($total rules removed)"
}

cmd_list() {
    "${IPT[@]}" -S OUTPUT | tr -d '"' | grep -F -- "--comment gf-netfault-$1/" || true
}

do_reap() {
    local dir run
    shopt -s nullglob
    for dir in "$STATE_ROOT"/*/; do
        run=$(basename "$dir")
        [[ -f $dir/owner ]] || continue
        owner_alive "$run" && continue
        say "run $run: its owner is gone"
        do_heal "$run"
    done
}

(($# >= 1)) || usage
cmd=$1
shift
case $cmd in
check) cmd_check ;;
cut)
    (($# >= 2)) || usage
    need_tools
    check_run "$1"
    locked do_cut "$@"
    ;;
delay)
    (($# >= 3)) || usage
    need_tools
    check_run "$1"
    locked do_delay "$@"
    ;;
heal)
    (($# >= 1)) || usage
    need_tools
    check_run "$1"
    locked do_heal "$@"
    ;;
list)
    (($# == 1)) || usage
    need_tools
    check_run "$1"
    cmd_list "$1"
    ;;
reap)
    ((EUID == 0)) && command -v iptables >/dev/null 2>&1 || exit 0
    [[ -d $STATE_ROOT ]] || exit 0
    locked do_reap
    ;;
*) usage ;;
esac
