#!/usr/bin/env bash
# Every SQL statement the services send is a constant: the text passed to gf_db_exec,
# gf_db_exec_simple, gf_db_pipeline_exec, gf_db_pipeline_submit and the backend's wrappers of
# them is a string literal (or adjacent literals and macros), an UPPER_CASE macro, a
# `static const char` (array) of the same file, or a `->sql` field that the file only ever
# sets to literals. So values can only travel as parameters. A function that takes
# `const char *sql` and passes it on must be listed in WRAPPERS, so that its callers are
# checked in turn. The few places that talk to
# libpq directly (PQexec and friends) are listed here with the reason each one is safe; a new
# one fails this check until it is reviewed and added.
#
#   tests/unit/sql_literals_check.sh [repo]
#   tests/unit/sql_literals_check.sh --selftest   (a copy with a formatted statement must fail)
set -euo pipefail
if [[ ${1:-} == --selftest ]]; then
    SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
    REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    cp -r "$REPO"/{lib,backend,gxp,eventlog,cli} "$tmp"/
    printf '%s\n' 'static void bad(struct gf_db_conn *c, const char *v)' '{' '    char q[64];' \
        '    snprintf(q, sizeof q, "DELETE FROM users WHERE name = %s", v);' \
        '    (void)gf_db_exec(c, "bad", q, 0, NULL, NULL);' '}' >>"$tmp/backend/store.c"
    if bash "$SELF" "$tmp"; then
        printf 'sql: selftest FAILED: a statement built with snprintf passed\n'
        exit 1
    fi
    printf 'sql: selftest ok: the planted formatted statement was caught\n'
    exit 0
fi
REPO=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
cd "$REPO"

# file:function-call count of direct libpq text execution, each reviewed:
#   lib/src/db.c PQexec x2      "SET statement_timeout = %d" from an int; gf_db_exec_simple's body
#   gxp/subscription.c PQexec   CREATE SUBSCRIPTION whose conninfo is quoted by PQescapeLiteral
ALLOWED_DIRECT="lib/src/db.c:2 gxp/subscription.c:1"
# function:index of its SQL argument
WRAPPERS="gf_db_exec_simple:2 gf_db_exec:3 gf_db_pipeline_exec:3 gf_db_pipeline_submit:3
store_exec:3 store_write:3 store_run:3 run_one:4 list:3 insert_returning:3 insert_returning_keyed:3"
# Reviewed non-constant texts: file|argument|why
#   lib/src/migrate.c m->sql: the migrations, embedded at build time from sql/<service>/*.sql
#   lib/src/prune.c s->sql: the retention statements, `static const struct gf_prune_stmt`
#     tables of backend/, gxp/ and eventlog/retention.c whose texts are `static const char SQL_*[]` literals
ALLOWED_ARGS="lib/src/migrate.c|m->sql lib/src/prune.c|s->sql"

fail=0
checked=0
mapfile -t sources < <(find lib/src backend gxp eventlog cli -maxdepth 1 -name '*.c' | sort)

# True when $1 is only string literals, UPPER_CASE macros and UPPER_CASE macros applied to
# literals, side by side.
is_constant_text() {
    local t=$1 lit='^"([^"\\]|\\.)*"' mac='^[A-Z_][A-Z0-9_]*(\([[:space:]]*"([^"\\]|\\.)*"[[:space:]]*\))?'
    [[ $t == \"* ]] || return 1
    while [[ -n $t ]]; do
        if [[ $t =~ $lit ]] || [[ $t =~ $mac ]]; then
            t=${t:${#BASH_REMATCH[0]}}
            t=${t#"${t%%[![:space:]]*}"}
        else
            return 1
        fi
    done
}

WRAPPERS=$(printf '%s' "$WRAPPERS" | tr -s ' \n' '  ')
names=""
for w in $WRAPPERS; do names+="${names:+|}${w%:*}"; done

for f in "${sources[@]}"; do
    # A function taking the SQL text as a parameter must be a listed wrapper.
    while read -r def; do
        [[ " $WRAPPERS " == *" $def:"* ]] && continue
        printf 'sql: %s: %s takes `const char *sql` but is not in WRAPPERS\n' "$f" "$def"
        fail=1
    done < <(grep -oE '^[a-z][^(]*[ *]([a-z_0-9]+)\([^)]*const char \*sql\b' "$f" |
        sed -E 's/^[^(]*[ *]([a-z_0-9]+)\(.*/\1/')
    n=$(grep -cE '\bPQ(exec|sendQuery)\(' "$f" || true)
    if ((n > 0)); then
        want=0
        for a in $ALLOWED_DIRECT; do
            [[ ${a%:*} == "$f" ]] && want=${a#*:}
        done
        if ((n != want)); then
            printf 'sql: %s calls PQexec/PQsendQuery %d time(s), %d reviewed\n' "$f" "$n" "$want"
            fail=1
        fi
    fi
    # The calls, each with its whole argument list (calls span lines): awk joins the file,
    # finds each call, takes its balanced parentheses and prints "file|function|sql-argument".
    while IFS='|' read -r fn arg; do
        [[ -z $fn ]] && continue
        checked=$((checked + 1))
        arg=$(printf '%s' "$arg" | sed -E 's/^[[:space:]]+|[[:space:]]+$//g')
        if is_constant_text "$arg"; then
            continue # literals, with literal macros pasted in
        fi
        if [[ $arg =~ ^[A-Z_][A-Z0-9_]*$ ]]; then
            continue # a macro
        fi
        if [[ $arg =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] &&
            grep -qE "^(static )?const char (\*const )?$arg\[?\]? =" "$f"; then
            continue # a constant of this file
        fi
        if [[ $arg == sql ]] && grep -qE "^[a-z].*[ *]$fn\(.*const char \*sql" "$f"; then
            : # a definition, or a wrapper passing its caller's text on (callers are checked)
        fi
        if [[ $arg == sql ]]; then
            continue
        fi
        if [[ $arg =~ ^[A-Za-z_]+((->|\.)[a-z_]+|\[[^]]*\])*$ ]]; then
            base=${arg%%[*}
            if [[ $base != "$arg" ]] &&
                grep -qE "^static const char \*const $base(\[[^]]*\])+ =" "$f"; then
                continue # an element of a constant table of this file
            fi
            field=${arg##*->}
            if [[ $arg == *"->"* ]] && grep -qE -- "->$field = " "$f" &&
                ! grep -E -- "->$field = " "$f" | grep -qvE -- "->$field = \"" ; then
                continue # a field this file only sets to literals
            fi
        fi
        if [[ " $ALLOWED_ARGS " == *" $f|$arg "* ]]; then
            continue
        fi
        printf 'sql: %s: %s(..., %s, ...): not a constant\n' "$f" "$fn" "$arg"
        fail=1
    done < <(awk -v RS='\0' -v names="$names" -v wrappers="$WRAPPERS" '
        BEGIN {
            nw = split(wrappers, w, /[ \n]+/)
            for (j = 1; j <= nw; j++) { split(w[j], kv, ":"); idx[kv[1]] = kv[2] }
            pat = "(^|[^A-Za-z0-9_>.])(" names ")\\("
        }
        {
            text = $0
            while (match(text, pat)) {
                call = substr(text, RSTART, RLENGTH - 1)
                sub(/^[^A-Za-z_]/, "", call)
                fn = call
                rest = substr(text, RSTART + RLENGTH)
                depth = 1; i = 1; instr = 0; args = ""
                while (i <= length(rest) && depth > 0) {
                    ch = substr(rest, i, 1)
                    if (instr) {
                        if (ch == "\\") { args = args ch substr(rest, i + 1, 1); i += 2; continue }
                        if (ch == "\"") instr = 0
                    } else if (ch == "\"") instr = 1
                    else if (ch == "(") depth++
                    else if (ch == ")") { depth--; if (depth == 0) break }
                    else if (ch == "," && depth == 1) ch = "\001"
                    args = args ch; i++
                }
                text = substr(rest, i)
                n = split(args, a, "\001")
                k = idx[fn]
                if (n < k) continue
                # declarations and definitions name types, not values: skip them
                if (a[1] ~ /(struct|const) /) continue
                gsub(/\n/, " ", a[k])
                print fn "|" a[k]
            }
        }' "$f")
done

if ((checked < 40)); then
    printf 'sql: only %d calls found: the scan is broken\n' "$checked"
    fail=1
fi
if ((fail)); then
    printf 'sql: FAILED\n'
    exit 1
fi
printf 'sql: %d statement texts checked, all constant; direct libpq calls as reviewed\n' "$checked"
