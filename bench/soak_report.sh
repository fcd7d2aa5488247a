#!/usr/bin/env bash
# The soak's report (bench/soak.sh wrote DIR/soak.tsv, soak-tables.tsv, settings.tsv and the
# generators' lines): Markdown on stdout, and three plots over time (gnuplot) in DIR:
# soak-disk.png (each database and the WAL the slots retain), soak-latency.png (p50/p99 from
# arrival, finalization and event lag p99) and soak-rss.png (the services' RSS).
#   bench/soak_report.sh DIR
set -euo pipefail
cd "$1"
setting() { awk -F'\t' -v k="$1" '$1 == k { print $2 }' settings.tsv; }
rows=$(($(wc -l <soak.tsv) - 1))

echo "# gf-svc soak, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "$(nproc) cores; the whole system on this machine (scripts/stack.sh) under open-loop load"
echo "(bench/openloop.c, Poisson arrivals) for $(setting soak_seconds) s: buys at $(setting buy_rate)/s and"
echo "add-gxps at $(setting add_rate)/s, at once (each a quarter of its closed-loop peak: together half of"
echo "what the system serves), sampled every $(setting sample_seconds) s ($rows samples). Extra environment of the"
env=$(setting soak_env)
echo "services (SOAK_ENV): ${env:-none}."
[[ -n $env ]] || echo "With the default retention periods (days) the tables can only grow in a run this short."
echo
echo "## Whole run"
echo
for op in buy add-gxp; do
    [[ -s openloop-$op.txt ]] || continue
    sed -n 's/^OPENLOOP //p' "openloop-$op.txt" | tr ' ' '\n' | awk -F= -v op="$op" '
        { v[$1] = $2 }
        END {
            printf "- %s: offered %.1f/s, goodput %.1f/s, shed (503 overloaded) %d, other 503 %d, other non-2xx %d, errors %d; latency from arrival p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
                op, v["offered"], v["goodput"], v["shed"], v["s503_other"], v["s4xx"] + v["s5xx"] + v["other"],
                v["errors"] + v["timeouts"] + v["unfinished"], v["p50"], v["p99"], v["max"]
        }'
done
echo

echo "## Steady state: growth over the second half of the run"
echo
echo "| measure | at mid-run | at the end | change |"
echo "|---|---:|---:|---:|"
awk -F'\t' -v n="$rows" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    { r[NR - 1] = $0 }
    END {
        if (n < 2) exit
        split(r[int((n + 1) / 2)], a, "\t"); split(r[n], b, "\t")
        m = split("backend_db_bytes gxp_db_bytes eventlog_db_bytes wal_retained_bytes", k, " ")
        for (i = 1; i <= m; i++) {
            x = a[col[k[i]]] / 1048576; y = b[col[k[i]]] / 1048576
            printf "| %s MiB | %.1f | %.1f | %s |\n", k[i], x, y, (x > 0 ? sprintf("%+.0f %%", 100 * (y - x) / x) : "–")
        }
        m = split("buy_p99_ms add_p99_ms fin_p99_ms ev_p99_ms", k, " ")
        for (i = 1; i <= m; i++) {
            x = a[col[k[i]]]; y = b[col[k[i]]]
            printf "| %s | %s | %s | %s |\n", k[i], x, y, (x > 0 ? sprintf("%+.0f %%", 100 * (y - x) / x) : "–")
        }
    }' soak.tsv
echo
echo "Flat means retention keeps pace: each database and the retained WAL stop growing once"
echo "the retention periods have passed, and the latencies stay where they started."
echo

echo "## The largest tables at the end"
echo
echo "| cluster | table | MiB |"
echo "|---|---|---:|"
awk -F'\t' 'NR > 1 { last = $1; row[$1] = row[$1] sprintf("| %s | %s | %.1f |\n", $2, $3, $4 / 1048576) }
    END { printf "%s", row[last] }' soak-tables.tsv
echo

echo "## Samples"
echo
echo "| t s | backend-db MiB | gxp-db MiB | eventlog-db MiB | WAL retained MiB | buy ok | buy shed | buy p50 ms | buy p99 ms | add-gxp ok | add-gxp p99 ms | fin p99 ms | event lag p99 ms | max service RSS MiB |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' 'NR > 1 {
    rss = 0; for (i = 6; i <= 10; i++) if ($i > rss) rss = $i
    printf "| %s | %.1f | %.1f | %.1f | %.1f | %s | %s | %s | %s | %s | %s | %s | %s | %.1f |\n",
        $1, $2 / 1048576, $3 / 1048576, $4 / 1048576, $5 / 1048576, $11, $12, $13, $14, $15, $18,
        $20, $23, rss / 1024 }' soak.tsv
echo
echo "Each row: the state at its time (sizes: pg_database_size, the WAL between backend-db's"
echo "current position and its slots' restart_lsn, VmRSS) and the interval that ended then (the"
echo "2xx answers and the shed ones, latency from arrival; finalization and event lag of the"
echo "transactions and events created in it). Plots: soak-disk.png, soak-latency.png, soak-rss.png."

gnuplot <<'GP'
set terminal png size 900,520 noenhanced
set datafile separator "\t"
set key autotitle columnhead left top
set grid
set xlabel "minutes"
set output "soak-disk.png"
set title "gf-svc soak: disk use over time"
set ylabel "MiB"
plot "soak.tsv" using ($1/60):($2/1048576) with lines lw 2 title "backend-db", \
     "" using ($1/60):($3/1048576) with lines lw 2 title "gxp-db", \
     "" using ($1/60):($4/1048576) with lines lw 2 title "eventlog-db", \
     "" using ($1/60):($5/1048576) with lines dashtype 2 title "WAL retained (backend-db slots)"
set output "soak-latency.png"
set title "gf-svc soak: latency over time (each sample's interval)"
set ylabel "ms (log)"
set logscale y
plot "soak.tsv" using ($1/60):($13 > 0 ? $13 : NaN) with lines title "buy p50 from arrival", \
     "" using ($1/60):($14 > 0 ? $14 : NaN) with lines lw 2 title "buy p99 from arrival", \
     "" using ($1/60):($18 > 0 ? $18 : NaN) with lines lw 2 title "add-gxp p99 from arrival", \
     "" using ($1/60):($20 > 0 ? $20 : NaN) with lines dashtype 2 title "finalization p99", \
     "" using ($1/60):($23 > 0 ? $23 : NaN) with lines dashtype 2 title "event lag p99"
unset logscale y
set output "soak-rss.png"
set title "gf-svc soak: the services' RSS over time"
set ylabel "MiB"
plot for [i=6:10] "soak.tsv" using ($1/60):(column(i)/1024) with lines lw 2
GP
