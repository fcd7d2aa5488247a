#!/usr/bin/env bash
# Stops what a test run left behind: the programs recorded by h_spawn in $GF_TEST_TMP/pids,
# the clusters recorded by h_pg_start in $GF_TEST_TMP/clusters (see harness.c for the format)
# and the run's RabbitMQ node in $GF_TEST_TMP/broker (processes recorded by rabbitmq.sh), and
# the container test's Docker engine.
# Run by the ctest cleanup fixture, also after a test timed out and was killed. Also heals the
# network faults (netfault.sh: iptables rules, delayers) of any run whose owner process is gone.
#
#   reap.sh [GF_TEST_TMP]        (default: $GF_TEST_TMP, else ./test-tmp)
#
# Never signals a process it did not record: the pid must still have the recorded start time
# (or, if none was recorded, run the recorded program). Leaves alone whatever belongs to a test process that is still
# running. Always exits 0.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TMP=${1:-${GF_TEST_TMP:-$PWD/test-tmp}}
GRACE_TENTHS=30

log() { printf 'reap: %s\n' "$*" >&2; }

# Start time of a live process (field 22 of /proc/PID/stat); empty if gone or a zombie.
start_time() {
    local stat fields
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    read -r -a fields <<<"${stat##*) }" # fields[0] is field 3, the state
    [[ ${fields[0]} == Z ]] && return 0
    printf '%s' "${fields[19]}"
}

# True if PID is alive and, when START is known, is still the process that was recorded.
same_process() {
    local pid=$1 start=$2 now
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    now=$(start_time "$pid")
    [[ -n $now ]] || return 1
    [[ -z $start || $start == 0 || $now == "$start" ]]
}

# True if the process still runs the recorded program (directly or as a script argument).
# Only consulted when no start time was recorded: pid + start time already name the process we
# spawned even after it exec'd something else (e.g. sh -c 'exec prog').
runs_program() {
    local pid=$1 want=${2##*/} exe args=()
    [[ -n $want ]] || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
    [[ ${exe##*/} == "$want" ]] && return 0
    mapfile -d '' -t args <"/proc/$pid/cmdline" 2>/dev/null || return 1
    [[ ${#args[@]} -gt 0 && ${args[0]##*/} == "$want" ]] && return 0
    [[ ${#args[@]} -gt 1 && ${args[1]##*/} == "$want" ]]
}

# Sets R_pid R_start R_owner R_exe R_datadir from a key=value record.
read_record() {
    local k v
    R_pid='' R_start='' R_owner='' R_exe='' R_datadir=''
    while IFS='=' read -r k v; do
        case $k in
        pid) R_pid=$v ;;
        start) R_start=$v ;;
        owner) R_owner=$v ;;
        exe) R_exe=$v ;;
        datadir) R_datadir=$v ;;
        *) ;;
        esac
    done <"$1"
}

# True if the test process that wrote the record is still running.
owner_alive() {
    local pid start
    read -r pid start <<<"$R_owner"
    [[ -n ${pid:-} ]] && same_process "$pid" "${start:-}"
}

reap_process() {
    local file=$1 i
    read_record "$file"
    if owner_alive; then
        log "skipping pid ${R_pid}: its test (pid ${R_owner%% *}) is still running"
        return 0
    fi
    if ! same_process "$R_pid" "$R_start"; then
        : # gone, or the pid now belongs to another process
    elif [[ ${R_start:-0} == 0 ]] && ! runs_program "$R_pid" "$R_exe"; then
        log "not touching pid ${R_pid}: no start time recorded and it does not run ${R_exe}"
    else
        log "stopping leftover pid ${R_pid} (${R_exe})"
        kill -TERM "$R_pid" 2>/dev/null || true
        for ((i = 0; i < GRACE_TENTHS; i++)); do
            same_process "$R_pid" "$R_start" || break
            sleep 0.1
        done
        if same_process "$R_pid" "$R_start"; then
            log "pid ${R_pid} ignored SIGTERM: sending SIGKILL"
            kill -KILL "$R_pid" 2>/dev/null || true
        fi
    fi
    rm -f "$file"
}

reap_cluster() {
    local file=$1
    read_record "$file"
    if owner_alive; then
        log "skipping cluster ${R_datadir}: its test (pid ${R_owner%% *}) is still running"
        return 0
    fi
    if [[ -n $R_datadir && -d $R_datadir ]]; then
        "$HERE/pg-cluster.sh" status "$R_datadir" >/dev/null 2>&1 &&
            log "stopping leftover cluster ${R_datadir}"
        "$HERE/pg-cluster.sh" stop "$R_datadir" || log "could not stop cluster ${R_datadir}"
    fi
    rm -f "$file"
}

# The `broker` fixture's node: it has no owning test process, and the reaper runs only before
# and after all tests. rabbitmq.sh signals only the processes it recorded in DIR/pids.
reap_broker() { # DIR (default: the fixture's)
    local dir=${1:-$TMP/broker}
    [[ -f $dir/pids ]] || return 0
    "$HERE/rabbitmq.sh" status "$dir" >/dev/null 2>&1 && log "stopping leftover broker ${dir}"
    "$HERE/rabbitmq.sh" stop "$dir" || log "could not stop the broker in ${dir}"
}

# A local system that tests/e2e/stack_test.sh or tests/chaos/chaos.sh started (their traps
# stop it; this is for a test that was killed first): scripts/stack.sh down, which signals
# only what its pid files and data directories name.
reap_stack() {
    local dir build
    for dir in "$TMP/e2e-stack" "$TMP/chaos/stack"; do
        [[ -f $dir/build-dir ]] || continue
        read -r build <"$dir/build-dir" || continue
        GF_STATE_DIR=$dir GF_BUILD_DIR=$build bash "$HERE/../../scripts/stack.sh" down \
            >/dev/null 2>&1 || log "could not stop the stack in ${dir}"
    done
}

# Network faults whose run is over (a chaos run killed before its trap healed them):
# netfault.sh reap heals each run whose recorded owner process is gone, and only those rules.
reap_netfault() {
    bash "$HERE/netfault.sh" reap || log "could not heal the network faults of a finished run"
}

# The container test's Docker engine, if the test was killed before its trap stopped it (a
# ctest timeout): stopped and purged, with what dockerd changed on the host undone, once the
# test process recorded in containers/owner ("PID START") is gone.
reap_engine() {
    local dir=$TMP/containers pid='' start=''
    [[ -f $dir/engine/dockerd.pid ]] || return 0
    read -r pid start 2>/dev/null <"$dir/owner" || true
    same_process "$pid" "$start" && return 0
    bash "$HERE/../../deploy/docker/dockerd.sh" stop "$dir/engine" --purge >/dev/null 2>&1 ||
        log "could not stop the Docker engine in $dir/engine"
}

main() {
    local f
    reap_netfault || true
    [[ -d $TMP ]] || return 0
    shopt -s nullglob
    for f in "$TMP"/pids/*.pid; do
        reap_process "$f" || true
    done
    for f in "$TMP"/clusters/*; do
        [[ $f == *.tmp ]] && continue
        reap_cluster "$f" || true
    done
    reap_broker || true
    reap_broker "$TMP/roles-broker" || true # roles_test's own node (guest deleted)
    reap_stack || true
    reap_engine || true
}

main || true
exit 0
