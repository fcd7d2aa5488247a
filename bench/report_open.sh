#!/usr/bin/env bash
# The open-loop part of the benchmark report (bench/open.sh wrote DIR/open.tsv): a Markdown
# section on stdout, the targets of "fresh under overload" checked, and DIR/open.png (gnuplot):
# goodput and p99 latency from arrival against the offered rate. bench/report.sh runs it.
#   bench/report_open.sh DIR
set -euo pipefail
cd "$1"
[[ -f open.tsv && $(wc -l <open.tsv) -gt 1 ]] || exit 0

echo "## Open loop: a fixed arrival rate, latency from the arrival"
echo
echo "| op | × peak | offered/s | goodput/s | shed (503 overloaded) | other 503 | other non-2xx | errors | p50 ms | p99 ms | p99 of all ms | finalization p99 ms | event lag p99 ms | generator lag p99 ms | generator CPU µs/request |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' 'NR > 1 {
    printf "| %s | %s | %.0f | %.0f | %d | %d | %d | %d | %.1f | %.1f | %.1f | %s | %s | %s | %s |\n",
        $1, $2, $4, $5, $7, $8, $9, $10 + $11 + $12, $13, $14, $16, $18, $21, $23,
        ($25 > 0 ? sprintf("%.0f", $26 * 1e6 / $25) : "–") }' open.tsv
echo
echo "The open-loop generator (bench/openloop.c) sends requests at a fixed rate, a multiple of the"
echo "op's unthrottled closed-loop peak (wrk at c=${BENCH_OPEN_PEAK_CONNS:-32}, admission control off: $(awk -F'\t' 'NR > 1 && !s[$1]++ { printf "%s%s %.0f/s", n++ ? ", " : "", $1, $3 }' open.tsv)),"
echo "with admission control on in both backends (BACKEND_ADMIT=true${BENCH_OPEN_ENV:+, $BENCH_OPEN_ENV}),"
echo "over ${BENCH_OPEN_CONNS:-128} kept-alive connections through nginx, for ${BENCH_OPEN_SECONDS:-20} s each; an arrival"
echo "that finds no free connection waits, and its latency runs from its scheduled arrival to the"
echo "end of its response, so a server that falls behind shows as latency (wrk's closed loop would"
echo "slow its own sending instead). Goodput: 2xx answers completed within the run's seconds, per"
echo "second. Shed: 503 with error \"overloaded\" (admission control), never retried. Errors: broken"
echo "connections, timeouts (10 s) and requests still unanswered after the drain. p50/p99: of the"
echo "2xx answers; p99 of all: every answer. Finalization and event lag as in the closed-loop"
echo "table, for the transactions of the run (after it settled). Generator lag: how late the"
echo "generator itself sent requests that found a free connection (its own share of the latency,"
echo "large when the machine's cores are busy), and the CPU it used per request."
echo

echo "| target (fresh under overload) | measured | wanted | |"
echo "|---|---:|---:|---|"
awk -F'\t' '
    function row(what, got, want, ok) { printf "| %s | %s | %s | %s |\n", what, got, want, ok ? "met" : "**not met**" }
    NR > 1 {
        k = $1 " at " $2 "× peak"
        row("finalization p99, " k, $18 " ms", "<= 50 ms", $18 + 0 <= 50)
        if ($1 == "buy")
            row("event lag p99, " k, $21 " ms", "<= 250 ms", $21 + 0 <= 250)
        # goodput against what was asked below the peak, against the peak above it
        want = ($2 + 0 < 1 ? $4 : $3) * 0.9
        row("goodput, " k, sprintf("%.0f/s", $5), sprintf(">= %.0f/s", want), $5 + 0 >= want)
    }' open.tsv
echo

awk -F'\t' 'NR > 1 { print $1, $4, $5, $14, $16 }' open.tsv >open-plot.dat
gnuplot <<'GP'
set terminal png size 900,560 noenhanced
set output "open.png"
set title "gf-svc open loop through nginx: goodput and p99 from arrival against offered load"
set xlabel "offered requests/s"
set ylabel "goodput requests/s"
set y2label "p99 ms (log)"
set logscale y2
set ytics nomirror
set y2tics
set key left top
set grid
set xrange [0:*]
set yrange [0:*]
plot "< grep '^buy ' open-plot.dat" using 2:3 with linespoints lw 2 title "buy goodput", \
     "< grep '^add-gxp ' open-plot.dat" using 2:3 with linespoints lw 2 title "add-gxp goodput", \
     "< grep '^buy ' open-plot.dat" using 2:4 axes x1y2 with linespoints dashtype 2 title "buy p99 (2xx)", \
     "< grep '^add-gxp ' open-plot.dat" using 2:4 axes x1y2 with linespoints dashtype 2 title "add-gxp p99 (2xx)", \
     x with lines lc rgb "gray" dashtype 3 title "goodput = offered"
GP
echo "Plot: open.png beside this report."
echo
