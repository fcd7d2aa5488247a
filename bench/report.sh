#!/usr/bin/env bash
# Turns the tables bench/suite.sh measured (runs.tsv, floor.tsv, lags.tsv, rss.tsv in DIR) into
# the Markdown report on stdout (with bids.tsv and settle.tsv: the auctions' figures; hot.tsv:
# the hot items; reads.tsv: the read floor; history.tsv, pgss-*.tsv, indexes-*.tsv: the history
# sizes; open.tsv: the open-loop runs and open.png, by bench/report_open.sh) and plots,
# DIR/throughput.png and DIR/latency.png (gnuplot): throughput and p99 latency against
# concurrency, ours beside the floor; DIR/history.png: throughput and p99 against the history
# size.
# A run of a part of the suite (BENCH_ONLY) reports what it measured.
#   bench/report.sh DIR
set -euo pipefail
DIR=$1
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$DIR"

echo "# gf-svc benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "$(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)); everything on this"
echo "machine: 3 PostgreSQL clusters, RabbitMQ, 2 gxp, eventlog, 2 backends, nginx and wrk."
echo "Requests go through nginx (the ingress); each run lasts ${BENCH_SECONDS:-10} s."
if [[ -s parts && $(<parts) != "auth get-item get-user add-gxp buy bid settle console floor big hot reads open" ]]; then
    echo "Only a part of the suite ran (BENCH_ONLY): $(<parts)."
fi
echo

if [[ -s auth.txt || -s auth-mode ]]; then
    echo "## Authentication"
    echo
    if [[ $(cat auth-mode 2>/dev/null) == bearer ]]; then
        echo "Every request carries the operator's bearer token; the backend checks it on each one"
        echo "to a route that needs one (the seeding, GET /user, add-gxp, buy): its Ed25519 signature"
        echo "and claims the first time a backend sees it (gf_auth_verify), then only its expiry"
        echo "(gf_auth_cache). GET /item is public: its token goes unread (sent because the ingress"
        echo "limits clients without one to 50 r/s per address)."
    else
        echo "This stack has no operator (a tree from before authentication): anonymous requests."
    fi
    if [[ -s auth.txt ]]; then
        echo
        sed -n '1,3{s/^/- /;p}' auth.txt
    fi
    echo
fi

echo "## Throughput and latency through nginx"
echo
echo "| route | conns | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | SQL floor tx/s | % of floor |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' '
    FNR == 1 { next }
    FILENAME == "floor.tsv" { floor[$1 "/" $2] = $3; next }
    {
        op = $1 == "buy" ? "buy" : $1 == "add-gxp" ? "add" : ""
        f = op != "" ? floor[op "/" $2] : ""
        pct = f > 0 ? sprintf("%.0f %%", 100 * $3 / f) : "–"
        printf "| %s | %s | %.0f | %.2f | %.2f | %.2f | %.2f | %d | %s | %s |\n",
            $1, $2, $3, $4, $5, $6, $7, $8 + 0, f != "" ? sprintf("%.0f", f) : "–", pct
    }' floor.tsv runs.tsv
echo
echo "req/s: the 2xx answers per second (errors: the others, and broken connections). These"
echo "closed-loop runs are of the unthrottled system: admission control is off in them (the open"
echo "loop below judges it)."
echo
echo "The floor is pgbench running the SQL of one buy (or add-gxp) on backend-db and on gxp-db at"
echo "once, each with the same number of clients, with no service in between: its rate is the"
echo "slower of the two (bench/floor)."
echo

echo "## The floor, per database"
echo
echo "| op | clients | whole tx/s | backend-db tx/s | gxp-db tx/s | backend-db CPU ms/tx | gxp-db CPU ms/tx |"
echo "|---|---:|---:|---:|---:|---:|---:|"
awk -F'\t' 'NR > 1 { printf "| %s | %s | %.0f | %.0f | %.0f | %s | %s |\n", $1, $2, $3, $4, $5, ($6 == "" ? "-" : $6), ($7 == "" ? "-" : $7) }' floor.tsv
echo
echo "CPU per transaction: each cluster's processes (the replication's walsender and apply worker"
echo "included) over the run, per request decided on backend-db and per prepare on gxp-db: what"
echo "PostgreSQL spends on one buy or add-gxp in the floor's run, for scale beside ours below. Not a"
echo "lower bound: the floor's clients also pace themselves with probes, its finalizers search for"
echo "PENDING rows, and at many clients they wait on each other's row locks far more than ours do."
echo

echo "## CPU per request (ms), by process, at each route's highest concurrency"
echo
awk -F'\t' '
    NR == 1 { next }
    { last[$1] = $0; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
    END {
        split(last[order[1]], f, "\t"); m = split(f[10], kv, " ")
        printf "| route | conns |"
        for (i = 1; i <= m; i++) { split(kv[i], p, "="); printf " %s |", p[1] }
        printf " outside PostgreSQL |\n|---|---:|"
        for (i = 1; i <= m + 1; i++) printf "---:|"
        printf "\n"
        for (j = 1; j <= n; j++) {
            split(last[order[j]], f, "\t"); m = split(f[10], kv, " "); out = 0
            printf "| %s | %s |", f[1], f[2]
            for (i = 1; i <= m; i++) {
                split(kv[i], p, "="); printf " %.3f |", p[2]
                if (p[1] !~ /-db$/) out += p[2]
            }
            printf " %.3f |\n", out
        }
    }' runs.tsv
echo
echo "Each process's CPU time over the run and the tail it caused (replication, relay, eventlog),"
echo "divided by the requests; a PostgreSQL cluster or nginx counts with all its processes."
echo

echo "## Finalization latency and event lag"
echo
echo "| run | conns | finalization p50 ms | p99 ms | transactions | event lag p50 ms | p99 ms | events |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' 'NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8 }' lags.tsv
echo
echo "Finalization: the decision row's created_at on backend-db (the start of the decision's"
echo "transaction, so an upper bound) to finalized_at on gxp-db. Event lag: the buy's commit"
echo "(the event's occurredAt) to eventlog's commit."
echo

# ---- auctions (bids.tsv, settle.tsv: absent in a run before auctions) -------------------------
if [[ $(wc -l <bids.tsv 2>/dev/null || echo 0) -gt 1 || $(wc -l <settle.tsv 2>/dev/null || echo 0) -gt 1 ]]; then
    echo "## Auctions"
    echo
fi
if [[ $(wc -l <bids.tsv 2>/dev/null || echo 0) -gt 1 ]]; then
    echo "| conns | bids accepted/s (200) | refused/s (409) | other answers | refund p50 ms | refund p99 ms | refunds |"
    echo "|---:|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' 'NR > 1 { printf "| %s | %.0f | %.1f | %d | %s | %s | %s |\n", $1, $3 / $2, $4 / $2, $5, $6, $7, $8 }' bids.tsv
    echo
    echo "Bids through nginx on ${BENCH_AUCTIONS:-256} open auctions, each bid above the last one sent to its"
    echo "auction (wrk/bid.lua): a 409 is a bid that lost a race (bid_too_low, or lock_conflict after the"
    echo "auction row's optimistic lock gave up). Each bid is a two-phase commit with gxp (its GXP taken),"
    echo "and outbids the one before it, whose refund is a saga step (another two-phase commit, run in"
    echo "the background by the backends' saga workers): refund = from the commit of the bid that outbid"
    echo "it to the refund's commit. The route's row above (bid) counts every answer; its CPU per"
    echo "request includes the refunds."
    echo
fi
if [[ $(wc -l <settle.tsv 2>/dev/null || echo 0) -gt 1 ]]; then
    echo "| auctions | created in s | bid on in s | their ends spread over ms | all settled after the first end s | all paid out s | payout p50 s | payout p99 s | payouts applied on gxp s |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' 'NR > 1 { printf "| %s | %.1f | %.1f | %s | %.2f | %.2f | %.2f | %.2f | %.2f (%s) |\n",
        $1, $2 / 1000, $3 / 1000, $4, $5 / 1000, $6 / 1000, $7 / 1000, $8 / 1000, $9 / 1000, $10 }' settle.tsv
    echo
    echo "Auctions that all end in the same second (each creation's durationSeconds is that second"
    echo "minus its own start), each with one bid, settled by the saga: at its end a 'settle' step (a"
    echo "local transaction: the unit to the winner, the payout step written), then a 'payout' step (a"
    echo "two-phase commit crediting the seller), run by the saga workers of both backends"
    echo "(BACKEND_SAGA_WORKERS, BACKEND_SAGA_BATCH, BACKEND_SAGA_POLL_MS: the defaults, 2, 32 and"
    echo "200 ms). Times from backend-db's own clock: from the first auction's end to the last"
    echo "settlement (closed_at) and to the last payout step's commit (done_at); payout p50/p99: per"
    echo "auction, from its end to its payout; applied: to the last payout's COMMITTED on gxp-db."
    echo
fi

# ---- open loop (open.tsv, the part `open`): its own section and plot, open.png -------------
bash "$BENCH_DIR/report_open.sh" .
# ---- hot items, the read floor, history sizes (hot.tsv, reads.tsv, history.tsv) ---------------
rows_in() { if [[ -f $1 ]]; then echo $(($(wc -l <"$1") - 1)); else echo 0; fi; }
if (($(rows_in hot.tsv) > 0)); then
    echo "## Hot items"
    echo
    echo "| conns | items | buys | buys/s | p50 ms | p99 ms | non-2xx | stock takes | mean take ms |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' 'NR > 1 { printf "| %s | %s | %s | %.0f | %.2f | %.2f | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }' hot.tsv
    echo
    echo "Buys through nginx spread over the first $(awk -F'\t' 'NR == 2 { print $2 }' hot.tsv) items only (wrk/buy.lua with"
    echo "ITEMS set so), so that many buys meet on one stock row. A buy takes the stock with a"
    echo "conditional UPDATE and waits for the row's lock instead of retrying (ARCHITECTURE §3, \"Hot"
    echo "rows\"): stock takes and their mean time, the wait included, are what both backends measured"
    echo "during the run (backend_buy_stock_take_seconds)."
    echo
fi
if (($(rows_in reads.tsv) > 0)); then
    echo "## Reads against their floor"
    echo
    echo "| route | conns | ours req/s | p99 ms | floor SELECT/s | floor mean ms | rows | % of floor |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' 'FNR == 1 { next }
        FILENAME == "runs.tsv" { rps[$1 "/" $2] = $3; p99[$1 "/" $2] = $6; next }
        { k = $1 "/" $2
          printf "| %s | %s | %.0f | %.2f | %.0f | %.3f | %s | %.0f %% |\n", $1, $2, rps[k], p99[k], $3, $4, $5,
              ($3 > 0 ? 100 * rps[k] / $3 : 0) }' runs.tsv reads.tsv
    echo
    echo "The floor: pgbench on backend-db running the route's one SELECT (bench/floor/get-item.sql,"
    echo "get-user.sql: prepared, the same parameters) with as many clients, right after the route's"
    echo "run through nginx; the route's answer and the SELECT had as many rows. Ours answers from"
    echo "the read cache while the table is unchanged (one version probe, shared by the requests"
    echo "that arrive together, instead of the SELECT) and adds nginx, HTTP, the token's check"
    echo "(GET /user) and wrk, all on the same two cores."
    echo
fi
if (($(rows_in history.tsv) > 0)); then
    echo "## As history grows"
    echo
    echo "| history rows | op | conns | req/s | % of the smallest | p50 ms | p99 ms | x the smallest | finalization p99 ms | event lag p99 ms | load s |"
    echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' 'NR > 1 { if (!($2 in r0)) { r0[$2] = $4; q0[$2] = $6 }
        printf "| %s | %s | %s | %.0f | %.0f %% | %.2f | %.2f | %.2f | %s | %s | %s |\n", $1, $2, $3, $4,
            (r0[$2] > 0 ? 100 * $4 / r0[$2] : 0), $5, $6, (q0[$2] > 0 ? $6 / q0[$2] : 0), $7, $8, $9 }' history.tsv
    echo
    echo "Each size is a total: bench/load_rows.sh adds the rows (users with one add-gxp each, their"
    echo "decision replicated to gxp-db, their event; in chunks, each replicated before the next:"
    echo "load s), then buy and add-gxp run through nginx. Plot: history.png."
    echo
    if (($(rows_in history-after.tsv) > 0)); then
        echo "**The largest size beside no history, minutes apart.** A fresh stack with no history"
        echo "(the same ports, settings and seeding) measured right after the largest size's runs:"
        echo "this machine's speed drifts over the half hour a large load takes, which the first"
        echo "size's runs, before the load, cannot tell from the history's cost."
        echo
        echo "| op | req/s, largest size | req/s, fresh stack after | % | p99 ms, largest | p99 ms, fresh after | x |"
        echo "|---|---:|---:|---:|---:|---:|---:|"
        awk -F'\t' 'FNR == 1 { next } FILENAME ~ /after/ { ar[$2] = $4; ap[$2] = $6; next } { lr[$2] = $4; lp[$2] = $6 }
            END { split("buy add-gxp", o, " ")
                for (i = 1; i <= 2; i++) if (o[i] in ar && o[i] in lr)
                    printf "| %s | %.0f | %.0f | %.0f %% | %.2f | %.2f | %.2f |\n", o[i], lr[o[i]], ar[o[i]],
                        (ar[o[i]] > 0 ? 100 * lr[o[i]] / ar[o[i]] : 0), lp[o[i]], ap[o[i]], (ap[o[i]] > 0 ? lp[o[i]] / ap[o[i]] : 0) }' \
            history.tsv history-after.tsv
        echo
    fi
    small=$(awk -F'\t' 'NR == 2 { print $1 }' history.tsv)
    large=$(awk -F'\t' 'END { print $1 }' history.tsv)
    # the file of the smallest size beside the largest's, or nothing to compare with
    before() { if [[ $small != "$large" && -f $1-$small-$2.tsv ]]; then echo "$1-$small-$2.tsv"; else echo /dev/null; fi; }
    for db in backend-db gxp-db eventlog-db; do
        [[ -s pgss-$large-$db.tsv ]] || continue
        echo "### Where the time goes at $large rows: $db"
        echo
        echo "The statements of the buy and add-gxp runs at this size (pg_stat_statements, reset before"
        echo "them; nested = run inside a function or trigger, its time also counted in its caller's),"
        echo "by total time; the mean at $small rows beside it (the same statement): a mean that grew"
        echo "is a plan or an index that got dearer with size."
        echo
        echo "| total ms | calls | mean ms | mean at $small rows | blocks hit/call | read/call | rows/call | nested | statement |"
        echo "|---:|---:|---:|---:|---:|---:|---:|---|---|"
        awk -F'\t' -v last="pgss-$large-$db.tsv" 'FNR == 1 { next }
            FILENAME != last { m0[$1 "/" $2] = $4; next }
            { n++; if (n > 12) next
              q = $9; gsub(/\|/, "\\|", q); if (length(q) > 160) q = substr(q, 1, 157) "..."
              printf "| %.0f | %s | %.3f | %s | %.1f | %.2f | %.1f | %s | `%s` |\n", $5, $3, $4,
                  (($1 "/" $2) in m0) ? sprintf("%.3f", m0[$1 "/" $2]) : "–", $7, $8, $6, $2 == "t" ? "" : "yes", q }
        ' "$(before pgss "$db")" "pgss-$large-$db.tsv"
        echo
    done
    if ls indexes-"$large"-*.tsv >/dev/null 2>&1; then
        echo "### Index sizes at $large rows (at $small rows beside them)"
        echo
        echo "| database | table | index | MiB | MiB at $small rows | scans |"
        echo "|---|---|---|---:|---:|---:|"
        for db in backend-db gxp-db eventlog-db; do
            [[ -s indexes-$large-$db.tsv ]] || continue
            awk -F'\t' -v db="$db" -v last="indexes-$large-$db.tsv" 'FNR == 1 { next }
                FILENAME != last { b0[$2] = $3; next }
                { n++; if (n > 8) next
                  printf "| %s | %s | %s | %.1f | %s | %s |\n", db, $1, $2, $3 / 1048576,
                      ($2 in b0) ? sprintf("%.1f", b0[$2] / 1048576) : "–", $4 }
            ' "$(before indexes "$db")" "indexes-$large-$db.tsv"
        done
        echo
    fi
fi

echo "## Peak memory (VmHWM)"
echo
echo "| process | peak RSS MiB |"
echo "|---|---:|"
awk -F'\t' 'NR > 1 { printf "| %s | %.1f |\n", $1, $2 / 1024 }' rss.tsv
echo

# ---- the targets of the performance issue, checked against this run -------------------------
echo "## Targets (c = the highest concurrency)"
echo
awk -F'\t' '
    FNR == 1 { next }
    FILENAME == "floor.tsv" { floor[$1 "/" $2] = $3; if ($6 ~ /^[0-9.]+$/ && $7 ~ /^[0-9.]+$/) fcpu[$1 "/" $2] = $6 + $7; next }
    FILENAME == "runs.tsv" {
        if ($2 + 0 >= maxc) maxc = $2 + 0
        rps[$1 "/" $2] = $3; p99[$1 "/" $2] = $6; cpu[$1 "/" $2] = $10; next
    }
    FILENAME == "lags.tsv" { fin[$1 "/" $2] = $4; ev[$1 "/" $2] = $7; next }
    FILENAME == "rss.tsv" { if ($1 !~ /largest|broker/ && $2 > rss) { rss = $2; rssn = $1 } }
    function row(what, got, want, ok) { printf "| %s | %s | %s | %s |\n", what, got, want, ok ? "met" : "**not met**" }
    END {
        print "| target | measured | wanted | |"
        print "|---|---:|---:|---|"
        k = "/" maxc
        if (("buy" k) in rps && ("buy" k) in floor)
            row("buy, % of its floor", floor["buy" k] > 0 ? sprintf("%.0f %%", 100 * rps["buy" k] / floor["buy" k]) : "no floor", ">= 70 %", floor["buy" k] > 0 && rps["buy" k] >= 0.7 * floor["buy" k])
        if (("add-gxp" k) in rps && ("add" k) in floor)
            row("add-gxp, % of its floor", floor["add" k] > 0 ? sprintf("%.0f %%", 100 * rps["add-gxp" k] / floor["add" k]) : "no floor", ">= 90 %", floor["add" k] > 0 && rps["add-gxp" k] >= 0.9 * floor["add" k])
        if (("GET /item" k) in rps)
            row("GET /item", sprintf("%.0f/s", rps["GET /item" k]), ">= 8000/s", rps["GET /item" k] >= 8000)
        if (("GET /user" k) in rps)
            row("GET /user", sprintf("%.0f/s", rps["GET /user" k]), ">= 8000/s", rps["GET /user" k] >= 8000)
        if (("buy" k) in fin) {
            row("finalization p99 (buy)", fin["buy" k] " ms", "<= 20 ms", fin["buy" k] <= 20)
            row("event lag p99 (buy)", ev["buy" k] " ms", "<= 50 ms", ev["buy" k] <= 50)
        }
        if (("buy" k) in cpu) {
            m = split(cpu["buy" k], kv, " "); out = 0
            for (i = 1; i <= m; i++) { split(kv[i], p, "="); if (p[1] !~ /-db$/) out += p[2] }
            row("CPU per buy outside PostgreSQL", sprintf("%.2f ms", out), "<= 2 ms", out <= 2)
            for (i = 1; i <= m; i++) { split(kv[i], p, "="); all += p[2]; if (p[1] ~ /^(backend|gxp)-db$/) pg += p[2] }
            row("CPU per buy, every process (PostgreSQL and the broker too; issue 19)", sprintf("%.2f ms", all), "<= 1.5 ms", all <= 1.5)
            if (("buy" k) in fcpu)
                printf "| CPU per buy in PostgreSQL: ours; the floor (the same SQL, no service) | %.2f ms; %.2f ms | - | for scale |\n", pg, fcpu["buy" k]
        }
        row("largest service RSS (" rssn "; peak, with the 19 MiB of a login password hash)", sprintf("%.1f MiB", rss / 1024), "<= 32 MiB", rss <= 32 * 1024)
    }' floor.tsv runs.tsv lags.tsv rss.tsv
if [[ -s console.tsv ]]; then
    # $5: the median over three rounds of an open run against the closed runs beside it
    awk -F'\t' 'NR == 2 {
        drop = 100 * (1 - $5)
        size = drop < 0 ? -drop : drop
        way = drop < 0 ? "more (within the drift)" : "less"
        note = $6 == "yes" ? "" : "; **a closed run took notes**"
        ok = ($4 > 0 && $6 == "yes" && drop <= 5) ? "met" : "**not met**"
        printf "| buy throughput with the console open (c=%s, %d stages streamed; means %.0f/s open, %.0f/s closed%s) | median of 3 rounds: %.1f %% %s | <= 5 %% less | %s |\n",
            $1, $4, $3, $2, note, size, way, ok
    }' console.tsv
fi
have() { if [[ -f $1 ]]; then echo "$1"; else echo /dev/null; fi; }
awk -F'\t' '
    function row(what, got, want, ok) { printf "| %s | %s | %s | %s |\n", what, got, want, ok ? "met" : "**not met**" }
    FNR == 1 { next }
    FILENAME == "bids.tsv" { if ($1 + 0 >= maxc) { maxc = $1 + 0; rate = $3 / $2 } next }
    FILENAME == "settle.tsv" { n = $1; paid = $6 / 1000 }
    END {
        if (maxc > 0) row("bids accepted at c=" maxc, sprintf("%.0f/s", rate), ">= 300/s", rate >= 300)
        if (n > 0) row(n " auctions ending together: settled and paid out", sprintf("%.2f s", paid), "<= 10 s", paid <= 10)
    }' "$(have bids.tsv)" "$(have settle.tsv)"

# hot items, reads and history against the issue's targets
awk -F'\t' '
    function row(what, got, want, ok) { printf "| %s | %s | %s | %s |\n", what, got, want, ok ? "met" : "**not met**" }
    FNR == 1 { next }
    FILENAME == "runs.tsv" { rps[$1 "/" $2] = $3; next }
    FILENAME == "hot.tsv" { hc[++nh] = $1; hr[$1] = $4; hp[$1] = $6; next }
    FILENAME == "reads.tsv" { rr[++nr] = $1 "/" $2; rf[$1 "/" $2] = $3; next }
    FILENAME == "history.tsv" { if (!($2 in r0)) { r0[$2] = $4; q0[$2] = $6 } rl[$2] = $4; ql[$2] = $6; nl[$2] = $1 }
    FILENAME == "history-after.tsv" { ra[$2] = $4; qa[$2] = $6; next }
    END {
        if (nh > 0) {
            lo = hc[1]; hi = hc[nh]
            row("hot items: buy p99 at c=" hi, sprintf("%.1f ms", hp[hi]), "<= 103 ms", hp[hi] <= 103)
            if (nh > 1) row("hot items: buys/s at c=" hi " against c=" lo, sprintf("%.0f vs %.0f", hr[hi], hr[lo]), ">= c=" lo, hr[hi] >= hr[lo])
        }
        for (i = 1; i <= nr; i++) {
            k = rr[i]; split(k, p, "/")
            row(p[1] "/" p[2] " at c=" p[3] ", % of its read floor", rf[k] > 0 ? sprintf("%.0f %%", 100 * rps[k] / rf[k]) : "no floor", ">= 80 %", rf[k] > 0 && rps[k] >= 0.8 * rf[k])
        }
        split("buy add-gxp", ops, " ")
        for (i = 1; i <= 2; i++) {
            o = ops[i]
            if (!(o in rl) || nl[o] + 0 == 0) continue
            row(o " at " nl[o] " rows of history: throughput, % of the smallest", sprintf("%.0f %%", r0[o] > 0 ? 100 * rl[o] / r0[o] : 0), ">= 90 %", rl[o] >= 0.9 * r0[o])
            row(o " at " nl[o] " rows of history: p99, x the smallest", sprintf("%.2f (%.1f ms vs %.1f ms)", q0[o] > 0 ? ql[o] / q0[o] : 0, ql[o], q0[o]), "<= 1.2x", ql[o] <= 1.2 * q0[o])
            if (!(o in ra)) continue
            row(o " at " nl[o] " rows of history: throughput, % of a fresh stack right after", sprintf("%.0f %%", ra[o] > 0 ? 100 * rl[o] / ra[o] : 0), ">= 90 %", rl[o] >= 0.9 * ra[o])
            row(o " at " nl[o] " rows of history: p99, x a fresh stack right after", sprintf("%.2f (%.1f ms vs %.1f ms)", qa[o] > 0 ? ql[o] / qa[o] : 0, ql[o], qa[o]), "<= 1.2x", ql[o] <= 1.2 * qa[o])
        }
    }' runs.tsv "$(have hot.tsv)" "$(have reads.tsv)" "$(have history.tsv)" "$(have history-after.tsv)"

# ---- plots ------------------------------------------------------------------------------------
awk -F'\t' '
    FNR == 1 { next }
    FILENAME == "floor.tsv" { f[$1 "/" $2] = $3; next }
    { gsub(/ /, "", $1); print $1, $2, $3, $6, ($1 == "buy" ? f["buy/" $2] : $1 == "add-gxp" ? f["add/" $2] : "NaN") }
' floor.tsv runs.tsv | grep -v '(' >plot.dat || true
# Only the routes the plots draw, by concurrency: a run of other parts alone has none to plot.
if grep -Eq '^(buy|add-gxp|bid|GET/item|GET/user) ' plot.dat; then
gnuplot <<'GP'
set terminal png size 900,560 noenhanced
set datafile missing "NaN"
set logscale x 2
set xlabel "concurrent connections"
set key left top
set grid
set output "throughput.png"
set title "gf-svc through nginx: throughput (ours, and the SQL floor)"
set ylabel "requests/s"
set logscale y
plot for [r in "buy add-gxp bid GET/item GET/user"] "< grep '^".r." ' plot.dat" using 2:3 with linespoints title r, \
     "< grep '^buy ' plot.dat" using 2:5 with linespoints dashtype 2 title "buy floor", \
     "< grep '^add-gxp ' plot.dat" using 2:5 with linespoints dashtype 2 title "add-gxp floor"
set output "latency.png"
set title "gf-svc through nginx: p99 latency"
set ylabel "p99 ms"
plot for [r in "buy add-gxp bid GET/item GET/user"] "< grep '^".r." ' plot.dat" using 2:4 with linespoints title r
GP
fi
# Throughput and p99 against the history size (history.tsv), buy and add-gxp.
if (($(rows_in history.tsv) > 0)); then
    awk -F'\t' 'NR > 1 { print $2, $1, $4, $6 }' history.tsv >history.dat
    gnuplot <<'GP'
set terminal png size 900,560 noenhanced
set output "history.png"
set title "gf-svc through nginx as history grows (the highest concurrency)"
set xlabel "rows of history"
set format x "%.1s%c"
set ylabel "requests/s"
set y2label "p99 ms"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set key left bottom
set grid
plot for [o in "buy add-gxp"] "< grep '^".o." ' history.dat" using 2:3 with linespoints title o." req/s", \
     for [o in "buy add-gxp"] "< grep '^".o." ' history.dat" using 2:4 axes x1y2 with linespoints dashtype 2 title o." p99"
GP
fi
echo
echo "Plots: throughput.png and latency.png beside this report$( (($(rows_in history.tsv) > 0)) && echo ", history.png")."

