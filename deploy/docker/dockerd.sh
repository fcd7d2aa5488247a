#!/usr/bin/env bash
# A Docker engine for a build or a test, and nothing left behind.
#
#   deploy/docker/dockerd.sh start DIR   use the engine that answers, or start one of our own
#                                         with its state in DIR; prints the DOCKER_HOST to use
#   deploy/docker/dockerd.sh stop DIR [--purge]
#                                         stop the engine start DIR started (none: nothing to do)
#                                         and undo what it changed on the host; its images and
#                                         volumes stay in DIR for the next start, unless --purge
#
# dockerd changes the host: it sets the iptables FORWARD policy to DROP, adds its chains and
# rules (filter and nat), creates the docker0 bridge and turns ip_forward on, and leaves all of
# that behind when it stops. start records the host as it was; stop removes only what dockerd
# added (rules that name DOCKER chains, docker0 or a network's bridge, the chains themselves, the
# bridges), and puts the FORWARD policy, ip_forward and docker0 back as they were. An engine
# start did not start is never stopped. Needs docker.io (apt-get install docker.io).
set -euo pipefail

usage() {
    sed -n '4,10p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
[ $# -eq 2 ] || { [ $# -eq 3 ] && [ "$1" = stop ] && [ "$3" = --purge ]; } || usage
cmd=$1 dir=$2 purge=${3:-}
DOCKERD=${DOCKERD:-/usr/sbin/dockerd}
DOCKER=${DOCKER:-/usr/bin/docker} # the Debian CLI: a newer one may sit earlier on PATH

answers() { "$DOCKER" -H "$1" info >/dev/null 2>&1; }

start() {
    mkdir -p "$dir"
    local own="unix://$dir/docker.sock"
    if [ -f "$dir/dockerd.pid" ] && kill -0 "$(cat "$dir/dockerd.pid")" 2>/dev/null && answers "$own"; then
        echo "$own"
        return
    fi
    local current=${DOCKER_HOST:-unix:///var/run/docker.sock} pid host
    if answers "$current"; then
        echo "$current" # someone else's engine: used, never stopped
        return
    fi
    # A dockerd listening elsewhere (make compose-up's own, say): a second one on this host would
    # fight it for docker0 and the iptables chains, so it is used instead, or refused.
    for pid in $(pgrep -x dockerd || true); do
        host=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null |
            awk 'h { print; exit } /^(-H|--host)$/ { h = 1 } /^--host=/ { sub(/^--host=/, ""); print; exit }')
        if [ -n "$host" ] && answers "$host"; then
            echo "$host"
            return
        fi
        echo "dockerd.sh: dockerd (pid $pid) runs but does not answer${host:+ on $host}: set DOCKER_HOST to its socket" >&2
        exit 1
    done
    [ -x "$DOCKERD" ] || { echo "dockerd.sh: $DOCKERD is missing (apt-get install docker.io)" >&2; exit 1; }
    # The host as it was, for stop.
    iptables -S FORWARD | awk '$1 == "-P" { print $3 }' >"$dir/forward-policy"
    cat /proc/sys/net/ipv4/ip_forward >"$dir/ip-forward"
    if ip link show docker0 >/dev/null 2>&1; then echo yes; else echo no; fi >"$dir/docker0-existed"
    # Rules and bridges that are there before (another engine's, stopped) are never touched.
    for table in filter nat; do iptables -t "$table" -S >"$dir/rules-$table"; done
    ip -o link show type bridge | awk -F': ' '{ print $2 }' >"$dir/bridges"
    "$DOCKERD" --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
        --host "$own" >"$dir/dockerd.log" 2>&1 &
    for _ in $(seq 1 60); do
        answers "$own" && { echo "$own"; return; }
        sleep 0.5
    done
    echo "dockerd.sh: dockerd did not answer within 30 s; its log:" >&2
    tail -n 20 "$dir/dockerd.log" >&2
    stop
    exit 1
}

# Deletes every rule of table $1 that the engine added (it names a DOCKER chain, docker0 or a
# network's bridge br-<id>, and was not there at start), then the DOCKER chains.
undo_table() {
    local table=$1 rule
    iptables -t "$table" -S | grep -E '^-A ' | grep -E 'DOCKER|docker0|br-[0-9a-f]{12}' |
        grep -vxF -f "$dir/rules-$table" | while read -r rule; do
        # shellcheck disable=SC2086 # a rule is words, as iptables -S printed them
        iptables -t "$table" -D ${rule#-A } 2>/dev/null || true
    done || true # (no rule to delete: grep found none)
    iptables -t "$table" -S | awk '$1 == "-N" && $2 ~ /^DOCKER/ { print $2 }' | while read -r chain; do
        iptables -t "$table" -F "$chain" 2>/dev/null || true
    done
    iptables -t "$table" -S | awk '$1 == "-N" && $2 ~ /^DOCKER/ { print $2 }' | while read -r chain; do
        iptables -t "$table" -X "$chain" 2>/dev/null || true
    done
}

stop() {
    # start did not start an engine here, or a stop already undid it
    [ -f "$dir/forward-policy" ] || {
        release_data
        return 0
    }
    local f
    for f in rules-filter rules-nat bridges; do [ -f "$dir/$f" ] || : >"$dir/$f"; done
    if [ -f "$dir/dockerd.pid" ]; then
        local pid
        pid=$(cat "$dir/dockerd.pid")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"
            for _ in $(seq 1 60); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.5
            done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        fi
    fi
    undo_table filter
    undo_table nat
    iptables -P FORWARD "$(cat "$dir/forward-policy")"
    cat "$dir/ip-forward" >/proc/sys/net/ipv4/ip_forward
    if [ "$(cat "$dir/docker0-existed")" = no ] && ip link show docker0 >/dev/null 2>&1; then
        ip link del docker0
    fi
    # The bridges of networks left in the engine (they outlive it).
    ip -o link show type bridge | awk -F': ' '$2 ~ /^br-[0-9a-f]+$/ { print $2 }' |
        grep -vxF -f "$dir/bridges" | while read -r br; do ip link del "$br" || true; done || true
    # The network namespaces dockerd keeps mounted under its exec root.
    for ns in "$dir"/exec/netns/*; do
        [ -e "$ns" ] && { umount "$ns" 2>/dev/null || umount -l "$ns" 2>/dev/null || true; }
    done
    rm -rf "$dir/exec" "$dir/forward-policy" "$dir/ip-forward" "$dir/docker0-existed" \
        "$dir/rules-filter" "$dir/rules-nat" "$dir/bridges" "$dir/dockerd.pid" "$dir/docker.sock"
    release_data
}

# What an engine killed with its containers (SIGKILL: no clean-up of its own) leaves mounted
# under its data root — containers' and builds' overlays — deepest first; then, with --purge,
# the engine's images and volumes. Also after a stop that found no engine left to stop.
release_data() {
    awk -v root="$dir/data" '$2 == root || index($2, root "/") == 1 { print $2 }' /proc/self/mounts |
        sort -r |
        while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
    [ "$purge" = --purge ] && rm -rf "$dir/data"
    return 0
}

case "$cmd" in
start) start ;;
stop) stop ;;
*) usage ;;
esac
