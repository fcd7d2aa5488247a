# shellcheck shell=bash
# Sourced: pick_ports N prints N consecutive free TCP ports on 127.0.0.1, from a random block
# in 10000-19999: outside the kernel's ephemeral range, the test broker's (rabbitmq.sh:
# 20000-29999) and h_free_port's (harness.c: 31000-32767). Used by the end-to-end test and the
# benchmark suite to run a whole stack (scripts/stack.sh) beside any other.
port_free() { [[ -z $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }
pick_ports() {
    local want=$1 base p found=()
    for _ in 1 2 3 4 5 6 7 8; do
        base=$((10000 + RANDOM % 9900))
        found=()
        for ((p = base; p < base + want; p++)); do
            port_free "$p" || break
            found+=("$p")
        done
        if ((${#found[@]} == want)); then
            printf '%s\n' "${found[@]}"
            return 0
        fi
    done
    return 1
}

# stack_ports: picks 17 ports and exports the GF_*_PORT variables scripts/stack.sh reads.
stack_ports() {
    local P
    mapfile -t P < <(pick_ports 17) || return 1
    ((${#P[@]} == 17)) || return 1
    export GF_GXP_DB_PORT=${P[0]} GF_BACKEND_DB_PORT=${P[1]} GF_EVENTLOG_DB_PORT=${P[2]}
    export GF_BROKER_PORT=${P[3]} GF_BROKER_DIST_PORT=${P[4]} GF_BROKER_EPMD_PORT=${P[5]}
    export GF_GXP_PORT=${P[6]} GF_GXP_HTTP_PORT=${P[7]} GF_GXP2_PORT=${P[8]} GF_GXP2_HTTP_PORT=${P[9]}
    export GF_EVENTLOG_HTTP_PORT=${P[10]} GF_INGRESS_PORT=${P[11]}
    export GF_BACKEND1_HTTP_PORT=${P[12]} GF_BACKEND1_GRPC_PORT=${P[13]}
    export GF_BACKEND2_HTTP_PORT=${P[14]} GF_BACKEND2_GRPC_PORT=${P[15]}
}
