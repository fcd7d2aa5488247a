# shellcheck shell=bash
# Sourced by bench/suite.sh: the part `open`. Buys and add-gxps at a fixed arrival rate (the
# open-loop generator, bench/openloop.c) at fractions of the closed-loop peak, with latency from
# each request's scheduled arrival, so that overload shows as latency or as shed requests
# instead of slowing the load down as wrk's closed loop does (coordinated omission).
#
# The peak: the closed-loop rate of the op at BENCH_OPEN_PEAK_CONNS (32) measured earlier in the
# same run (the parts buy and add-gxp at that concurrency), else measured here with wrk. Then for
# each op and each factor of BENCH_OPEN_FACTORS ("0.5 1 2"): BENCH_OPEN_SECONDS (20) of arrivals
# at factor x peak over BENCH_OPEN_CONNS (128) kept-alive connections, the arrivals that find
# none free queued in the generator (their wait counts), every 503 counted and never retried
# (503 with error "overloaded" = shed). Afterwards the system is let settle and the finalization
# and event lags of the run's transactions read (fin_mark/fin_latency, ev_mark/ev_lag). One row
# per run in open.tsv; the generator's per-second figures in open-<op>-<factor>.tsv.
#
# Admission control: the suite runs the system with it off, so that its closed-loop rates are
# the unthrottled peak the targets compare with. This part restarts both backends with it on
# (BACKEND_ADMIT=true, and BENCH_OPEN_ENV's VAR=value words after it, e.g.
# BENCH_OPEN_ENV="BACKEND_ADMIT_LAG_MS=60" for another bound), and with it off again at its end.
#
# Uses the suite's login, quiesce, run_wrk, fin_*, ev_*, say, die, OUT, INGRESS, TOKEN,
# USERS, ITEMS, GF_BUILD_DIR, STACK, PID, keep_peaks, pid_of_prog.

OPEN_SECONDS=${BENCH_OPEN_SECONDS:-20}
OPEN_FACTORS=${BENCH_OPEN_FACTORS:-"0.5 1 2"}
OPEN_CONNS=${BENCH_OPEN_CONNS:-128}
OPEN_PEAK_CONNS=${BENCH_OPEN_PEAK_CONNS:-32}
OPEN_BIN=$GF_BUILD_DIR/bin/openloop

open_check() {
    [[ -x $OPEN_BIN ]] || die "no $OPEN_BIN: build the tree (make build) first"
    if ! [[ $OPEN_SECONDS =~ ^[0-9]+$ ]] || ((OPEN_SECONDS == 0)); then
        die "BENCH_OPEN_SECONDS must be a whole number of seconds > 0, not '$OPEN_SECONDS'"
    fi
    if ! [[ $OPEN_CONNS =~ ^[0-9]+$ ]] || ((OPEN_CONNS == 0 || OPEN_CONNS > 4096)); then
        die "BENCH_OPEN_CONNS must be 1..4096, not '$OPEN_CONNS'"
    fi
    local kv
    for kv in ${BENCH_OPEN_ENV:-}; do
        [[ $kv =~ ^[A-Z_][A-Z0-9_]*=[^[:space:]]*$ ]] || die "BENCH_OPEN_ENV: '$kv' is not VAR=value"
    done
    if ! [[ $OPEN_PEAK_CONNS =~ ^[0-9]+$ ]] || ((OPEN_PEAK_CONNS == 0)); then
        die "BENCH_OPEN_PEAK_CONNS must be a number of connections > 0, not '$OPEN_PEAK_CONNS'"
    fi
    local f
    [[ -n ${OPEN_FACTORS// /} ]] || die "BENCH_OPEN_FACTORS is empty"
    for f in $OPEN_FACTORS; do
        if ! [[ $f =~ ^[0-9]+(\.[0-9]+)?$ ]] || ! awk -v f="$f" 'BEGIN { exit !(f > 0) }'; then
            die "BENCH_OPEN_FACTORS: '$f' is not a factor > 0"
        fi
    done
}

# open_backends ADMIT: both backends stopped (SIGTERM, by the pid the suite knows) and started
# again by scripts/stack.sh with BACKEND_ADMIT=ADMIT (the last word of GF_EXTRA_ENV wins); their
# peak memory so far is kept for the suite's table (keep_peaks).
open_backends() {
    local u pid i env
    keep_peaks
    for u in backend-svc-1 backend-svc-2; do
        pid=${PID[$u]}
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 150; i++)); do
            [[ -d /proc/$pid ]] || break
            sleep 0.1
        done
        [[ ! -d /proc/$pid ]] || die "open: $u (pid $pid) still runs 15 s after SIGTERM"
    done
    env="${GF_EXTRA_ENV:-} BACKEND_ADMIT=$1"
    [[ $1 == false ]] || env+=" ${BENCH_OPEN_ENV:-}"
    GF_EXTRA_ENV=$env bash "$STACK" up >>"$OUT/stack-up.log" 2>&1 ||
        die "open: the backends did not start again: see $OUT/stack-up.log"
    for u in backend-svc-1 backend-svc-2; do PID[$u]=$(pid_of_prog "$u"); done
    if [[ $1 == false ]]; then
        say "open: backends restarted with BACKEND_ADMIT=false"
    else
        say "open: backends restarted with BACKEND_ADMIT=true${BENCH_OPEN_ENV:+ ($BENCH_OPEN_ENV)}"
    fi
}

open_rps_of() { # LABEL CONNS: the last closed-loop rate of LABEL at CONNS in runs.tsv
    awk -F'\t' -v l="$1" -v c="$2" '$1 == l && $2 == c { r = $3 } END { print r }' "$OUT/runs.tsv"
}

# open_peak OP LABEL SCRIPT: the closed-loop rate of LABEL at OPEN_PEAK_CONNS in this run's
# runs.tsv, measured now when the run has none.
open_peak() {
    local rps
    rps=$(open_rps_of "$2" "$OPEN_PEAK_CONNS")
    if [[ -z $rps ]]; then
        run_wrk "$2" "$3" / "$OPEN_PEAK_CONNS"
        rps=$(open_rps_of "$2" "$OPEN_PEAK_CONNS")
    fi
    if [[ -z $rps ]] || ! awk -v r="$rps" 'BEGIN { exit !(r > 0) }'; then
        die "open: no peak rate for $1"
    fi
    echo "$rps"
}

# open_run OP FACTOR PEAK: one open-loop run, a row of open.tsv.
open_run() {
    local op=$1 factor=$2 peak=$3 rate line fp50 fp99 fn ep50 ep99 en
    rate=$(awk -v p="$peak" -v f="$factor" 'BEGIN { printf "%.1f", p * f }')
    login
    quiesce
    fin_mark
    ev_mark
    # The drain: what was still queued at the schedule's end gets its answer (a run at twice
    # the peak may end with as many requests waiting as it sent), up to the seconds of the run.
    line=$(BENCH_TOKEN=$TOKEN "$OPEN_BIN" --url "$INGRESS" --op "$op" --rate "$rate" \
        --seconds "$OPEN_SECONDS" --conns "$OPEN_CONNS" --users "$USERS" --items "$ITEMS" \
        --timeout 10 --drain $((OPEN_SECONDS + 10)) --seed "$RANDOM" \
        --tsv "$OUT/open-$op-$factor.tsv") || die "openloop $op at $rate/s failed"
    line=$(sed -n 's/^OPENLOOP //p' <<<"$line")
    [[ -n $line ]] || die "openloop printed no report for $op at $rate/s"
    quiesce
    read -r fp50 fp99 fn <<<"$(fin_latency)"
    if [[ $op == buy ]]; then
        read -r ep50 ep99 en <<<"$(ev_lag)"
    else
        ep50=- ep99=- en=0
    fi
    of() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$line"; }
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$op" "$factor" "$peak" "$(of offered)" "$(of goodput)" "$(of ok)" "$(of shed)" \
        "$(of s503_other)" "$(($(of s4xx) + $(of s5xx) + $(of other)))" "$(of errors)" \
        "$(of timeouts)" "$(of unfinished)" "$(of p50)" "$(of p99)" "$(of all_p50)" \
        "$(of all_p99)" "$fp50" "$fp99" "$fn" "$ep50" "$ep99" "$en" "$(of gen_lag_p99)" \
        "$(of queue_max)" "$(of arrivals)" "$(of cpu_s)" >>"$OUT/open.tsv"
    say "open $op at ${factor}x peak ($rate/s offered $(of offered)): goodput $(of goodput)/s," \
        "shed $(of shed), p50 $(of p50) ms, p99 $(of p99) ms from arrival; finalization p99" \
        "$fp99 ms, event lag p99 $ep99 ms"
}

open_part() {
    open_check
    local buy_peak add_peak f
    printf 'op\tfactor\tpeak\toffered\tgoodput\tok\tshed\ts503_other\tother_status\terrors\ttimeouts\tunfinished\tp50\tp99\tall_p50\tall_p99\tfin_p50\tfin_p99\tfin_n\tev_p50\tev_p99\tev_n\tgen_lag_p99\tqueue_max\tarrivals\tgen_cpu_s\n' \
        >"$OUT/open.tsv"
    buy_peak=$(open_peak buy buy buy.lua)
    add_peak=$(open_peak add-gxp add-gxp add_gxp.lua)
    say "open: peaks (closed loop, c=$OPEN_PEAK_CONNS): buy $buy_peak/s, add-gxp $add_peak/s"
    open_backends true
    for f in $OPEN_FACTORS; do open_run buy "$f" "$buy_peak"; done
    for f in $OPEN_FACTORS; do open_run add-gxp "$f" "$add_peak"; done
    open_backends false
}
