#!/usr/bin/env bash
# A Docker engine for a build or a test, and nothing left behind.
#
#   deploy/docker/dockerd.sh start DIR   use the engine that answers, or start one of our own
#                                         with its state in DIR; prints the DOCKER_HOST to use
#   deploy/docker/dockerd.sh stop DIR    stop the engine start DIR started (none: nothing to do)
#                                         and undo what it changed on the host
#
# dockerd changes the host: it sets the iptables FORWARD policy to DROP, adds its chains and
# rules (filter and nat), creates the docker0 bridge and turns ip_forward on, and leaves all of
# that behind when it stops. start records the host as it was; stop removes only what dockerd
# added (rules that name DOCKER chains or docker0, the chains themselves), and puts the FORWARD
# policy, ip_forward and docker0 back as they were. An engine start did not start is never
# stopped. Needs docker.io (apt-get install docker.io).
set -euo pipefail

usage() {
    sed -n '4,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
[ $# -eq 2 ] || usage
cmd=$1 dir=$2
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
    local current=${DOCKER_HOST:-unix:///var/run/docker.sock}
    if answers "$current"; then
        echo "$current" # someone else's engine: used, never stopped
        return
    fi
    [ -x "$DOCKERD" ] || { echo "dockerd.sh: $DOCKERD is missing (apt-get install docker.io)" >&2; exit 1; }
    # The host as it was, for stop.
    iptables -S FORWARD | awk '$1 == "-P" { print $3 }' >"$dir/forward-policy"
    cat /proc/sys/net/ipv4/ip_forward >"$dir/ip-forward"
    if ip link show docker0 >/dev/null 2>&1; then echo yes; else echo no; fi >"$dir/docker0-existed"
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

# Deletes every rule of table $1 that names a DOCKER chain or docker0, then those chains.
undo_table() {
    local table=$1 rule
    iptables -t "$table" -S | grep -E '^-A ' | grep -E 'DOCKER|docker0' | while read -r rule; do
        # shellcheck disable=SC2086 # a rule is words, as iptables -S printed them
        iptables -t "$table" -D ${rule#-A } 2>/dev/null || true
    done
    iptables -t "$table" -S | awk '$1 == "-N" && $2 ~ /^DOCKER/ { print $2 }' | while read -r chain; do
        iptables -t "$table" -F "$chain" 2>/dev/null || true
    done
    iptables -t "$table" -S | awk '$1 == "-N" && $2 ~ /^DOCKER/ { print $2 }' | while read -r chain; do
        iptables -t "$table" -X "$chain" 2>/dev/null || true
    done
}

stop() {
    [ -f "$dir/forward-policy" ] || return 0 # start did not start an engine here
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
    # The engine's state: its overlay mounts are gone with it.
    rm -rf "$dir/data" "$dir/exec" "$dir/forward-policy" "$dir/ip-forward" \
        "$dir/docker0-existed" "$dir/dockerd.pid" "$dir/docker.sock"
}

case "$cmd" in
start) start ;;
stop) stop ;;
*) usage ;;
esac
