#!/usr/bin/env bash
# The three ingresses — the local stack's nginx (scripts/stack.sh write_nginx_conf), docker
# compose's (deploy/nginx/ingress.conf) and the Kubernetes Ingress (deploy/k8s/base/ingress.yaml,
# assembled as ingress-nginx would by tests/deploy/lib/ingress.mjs) — each run by the real nginx
# on free ports in front of a stand-in backend (fake_upstream.py, which answers an oversized
# body 413 at once and closes, as the backend does) and a dead port. Each must:
#   - answer an unknown path 404 with {"message","error","correlationId"} and X-Correlation-Id;
#   - echo a client's valid X-Correlation-Id, replace an invalid one by a UUID of its own, and
#     hand the id it uses to the backend (the backend's answer carries the same); the ids it
#     makes itself sort in the order of their requests (time-ordered: they become keys);
#   - pass a body of exactly 64 KiB (the services' limit) and answer 50 bodies of 70 KB (whole
#     or chunked) 413 in that error body, never 502;
#   - answer a dead upstream 502 in that error body;
#   - send an API's security headers (nosniff, DENY, a CSP of 'none', no-referrer, no-store) on
#     every answer, and no nginx version;
#   - (local stack and compose) limit logins per client (429 rate_limited, Retry-After), pass
#     300 quick requests with a token, and limit the same without one;
#   - serve the operator console's page (stand-in files; Kubernetes: the console pod's nginx
#     from its ConfigMap behind the Ingress) with the page's headers, each once (its CSP, not the
#     API's), the files' types, /console redirected, GET and HEAD only, and send /console/api to
#     backend-svc-1.
# Issue 20, items 8 and 10: before, the 404 had no correlationId and no header, and bodies over
# the limit reached the backend (1m at nginx), which sometimes made nginx answer 502 HTML.
#
#   tests/e2e/ingress_errors_test.sh   (env: GF_TEST_TMP; GF_INGRESS_REPO: the tree whose
#                                        ingress files are tested, default this one)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=${GF_INGRESS_REPO:-$(cd "$HERE/../.." && pwd)}
NGINX=${GF_NGINX_BIN:-/usr/sbin/nginx}
BASE=${GF_TEST_TMP:-/tmp/gf-test-e2e}
TMP=$BASE/ingress-errors.$$
BIG=70000
PYTHON=$(command -v /usr/bin/python3 || command -v python3)
ROUNDS=${GF_INGRESS_ROUNDS:-50}

checks=0
fail() {
    printf 'ingress: FAILED: %s\n' "$*" >&2
    exit 1
}
ok() {
    checks=$((checks + 1))
    printf 'ingress: ok %d - %s\n' "$checks" "$*"
}

# shellcheck source=../harness/ports.sh
source "$HERE/../harness/ports.sh"
mapfile -t P < <(pick_ports 7) || fail "no block of free ports"
((${#P[@]} == 7)) || fail "no block of free ports"
UP=${P[3]} DEAD=${P[4]} DEAD2=${P[5]} CONSOLE_POD=${P[6]}
declare -A LISTEN=([stack]=${P[0]} [compose]=${P[1]} [k8s]=${P[2]})

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
        rm -f "$BASE/pids/$pid.pid"
    done
}
trap cleanup EXIT
mkdir -p "$TMP" "$BASE/pids"

# Start time of a process (field 22 of /proc/PID/stat), as tests/harness/reap.sh compares it.
start_time() {
    local stat fields
    stat=$(cat "/proc/$1/stat")
    read -r -a fields <<<"${stat##*) }"
    printf '%s' "${fields[19]}"
}
# started PID EXE: stopped by the trap, and by tests/harness/reap.sh should this script be killed.
started() {
    PIDS+=("$1")
    printf 'pid=%s\nstart=%s\nowner=%s %s\nexe=%s\n' "$1" "$(start_time "$1")" "$$" \
        "$(start_time $$)" "$2" >"$BASE/pids/$1.pid"
}

"$PYTHON" "$HERE/fake_upstream.py" "$UP" >"$TMP/upstream.log" 2>&1 &
started $! "$(readlink -f "$PYTHON")"

# Stand-ins for the console's files (scripts/console-build.sh's output), which every ingress
# serves: the local stack's and compose's nginx themselves, Kubernetes' its console pod.
CONSOLE=$TMP/console-dist
mkdir -p "$CONSOLE/vendor"
printf '<!doctype html><title>console</title><script src="app.js"></script>\n' >"$CONSOLE/index.html"
printf 'console.log("app");\n' >"$CONSOLE/app.js"
printf 'body { margin: 0; }\n' >"$CONSOLE/style.css"
printf 'var uPlot = {};\n' >"$CONSOLE/vendor/uPlot.iife.min.js"
printf '.uplot { width: 100%%; }\n' >"$CONSOLE/vendor/uPlot.min.css"

# http_block NAME SERVER-TEXT: a whole nginx.conf around a server block (or an http include).
http_conf() {
    local dir=$TMP/$1
    mkdir -p "$dir/tmp"
    printf 'pid %s/nginx.pid;\nerror_log %s/error.log warn;\nevents { worker_connections 256; }\nhttp {\n' "$dir" "$dir"
    printf '    %s_temp_path %s/tmp/%s;\n' client_body "$dir" client_body proxy "$dir" proxy \
        fastcgi "$dir" fastcgi uwsgi "$dir" uwsgi scgi "$dir" scgi
    printf '    access_log %s/access.log;\n%s\n}\n' "$dir" "$2"
}

# error_log NAME: the ingress's error log (the local stack's names its own).
error_log() {
    if [[ $1 == stack ]]; then
        printf '%s' "$TMP/stack-state/log/ingress.log"
    else
        printf '%s' "$TMP/$1/error.log"
    fi
}

# The local stack's: scripts/stack.sh's own function, run with this test's ports.
# shellcheck disable=SC2034 # the variables are write_nginx_conf's
write_stack_conf() {
    local STATE_DIR=$TMP/stack-state BACKEND1_HTTP_PORT=$DEAD BACKEND2_HTTP_PORT=$UP
    local EVENTLOG_HTTP_PORT=$DEAD2 CONSOLE_DIR=$CONSOLE
    local -A PORT=([ingress]=${LISTEN[stack]})
    datadir() { printf '%s/data/%s' "$STATE_DIR" "$1"; }
    make_dir() { mkdir -p "$1"; }
    mkdir -p "$STATE_DIR/log"
    # shellcheck disable=SC1090
    source <(awk '/^write_nginx_conf\(\) \{/ {on = 1} on {print}
        on && /^NGINX$/ {done = 1} done && /^}$/ {exit}' "$REPO/scripts/stack.sh")
    write_nginx_conf ingress
    mkdir -p "$TMP/stack"
    cp "$STATE_DIR/data/ingress/nginx.conf" "$TMP/stack/nginx.conf"
}
write_stack_conf

mkdir -p "$TMP/compose" "$TMP/k8s"
# Compose's: its services' names and port mapped to this test's (an address needs no resolver).
sed -e '/^resolver /d' \
    -e "s/ backend-svc-1:30080;/ 127.0.0.1:$DEAD;/" \
    -e "s/ backend-svc-2:30080;/ 127.0.0.1:$UP;/" \
    -e "s/ eventlog:30070;/ 127.0.0.1:$DEAD2;/" \
    -e "s/listen 30080;/listen 127.0.0.1:${LISTEN[compose]};/" \
    -e "s|/var/log/nginx/|$TMP/compose/|" \
    -e "s|alias /usr/share/gf-console/;|alias $CONSOLE/;|" \
    "$REPO/deploy/nginx/ingress.conf" >"$TMP/compose.server.conf"
# The image's http block is Debian's nginx.conf's: the file types of mime.types.
http_conf compose "include /etc/nginx/mime.types; default_type application/octet-stream;
include $TMP/compose.server.conf;" >"$TMP/compose/nginx.conf.new"
mv "$TMP/compose/nginx.conf.new" "$TMP/compose/nginx.conf"

# Kubernetes': the Ingress objects' routes, annotations and snippets in one server, /console to
# the console pod's nginx (its ConfigMap's nginx.conf, with this test's port and paths).
mkdir -p "$TMP/console-pod"
node "$HERE/../deploy/lib/ingress.mjs" --configmap "$REPO/deploy/k8s/base/console.yaml" console-nginx nginx.conf |
    sed -e "s|listen 30080;|listen 127.0.0.1:$CONSOLE_POD;|" -e "s|/tmp/|$TMP/console-pod/|g" \
        -e "s|alias /usr/share/gf-console/;|alias $CONSOLE/;|" \
        -e "s|access_log /dev/stdout |access_log $TMP/console-pod/access.log |" >"$TMP/console-pod/nginx.conf"
node "$HERE/../deploy/lib/ingress.mjs" "$REPO/deploy/k8s/base/ingress.yaml" \
    "127.0.0.1:${LISTEN[k8s]}" "backend-svc-1=127.0.0.1:$DEAD" "backend-svc-2=127.0.0.1:$UP" \
    "eventlog-svc=127.0.0.1:$DEAD2" "console=127.0.0.1:$CONSOLE_POD" >"$TMP/k8s.server.conf"
# ingress-nginx's http block has the file types of mime.types too.
http_conf k8s "include /etc/nginx/mime.types; default_type application/octet-stream;
include $TMP/k8s.server.conf;" >"$TMP/k8s/nginx.conf.new"
mv "$TMP/k8s/nginx.conf.new" "$TMP/k8s/nginx.conf"

for name in stack compose k8s console-pod; do
    conf=$TMP/$name/nginx.conf
    "$NGINX" -t -q -c "$conf" -e "$TMP/$name/error.log" || fail "$name: nginx -t"
    "$NGINX" -c "$conf" -e "$TMP/$name/error.log" -g 'daemon off;' &
    started $! "$NGINX"
done
for port in "${LISTEN[@]}" "$UP" "$CONSOLE_POD"; do
    for _ in $(seq 100); do
        port_free "$port" || break
        sleep 0.05
    done
    port_free "$port" && fail "nothing listens on $port"
done
ok "three ingresses (stack $(printf '%s' "${LISTEN[stack]}"), compose ${LISTEN[compose]}, k8s ${LISTEN[k8s]}) in front of a stand-in backend"

# req PORT OUT curl-args...: one request; OUT.h gets the head, OUT.b the body; prints the status.
req() {
    local port=$1 out=$2
    shift 2
    curl -s -o "$out.b" -D "$out.h" -w '%{http_code}' --max-time 20 "$@" \
        "http://127.0.0.1:$port$URL_PATH" || true
}

# verdict OUT STATUS KIND [CID]: KIND error = exactly {message,error,correlationId} with a UUID,
# equal to the X-Correlation-Id header (and to CID when given); KIND echo = the stand-in
# backend's answer: the id it received, a UUID equal to the header (and to CID). Prints
# "ok" or what is wrong.
verdict() {
    "$PYTHON" - "$@" <<'PY'
import json, re, sys
out, status, kind = sys.argv[1], sys.argv[2], sys.argv[3]
want = sys.argv[4] if len(sys.argv) > 4 else None
uuid = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
head = open(out + ".h", encoding="latin-1", newline="").read().split("\r\n\r\n")
head = [h for h in head if h.strip()][-1]
lines = head.split("\r\n")
got = lines[0].split(" ")[1]
hdrs = [l.split(":", 1) for l in lines[1:] if ":" in l]
cids = [v.strip() for k, v in hdrs if k.strip().lower() == "x-correlation-id"]
ctype = [v.strip() for k, v in hdrs if k.strip().lower() == "content-type"]
problems = []
if got != status:
    problems.append(f"status {got}, want {status}")
try:
    body = json.loads(open(out + ".b", encoding="utf-8").read())
except Exception as e:
    body = None
    problems.append(f"body not JSON: {open(out + '.b', encoding='latin-1').read()[:120]!r}")
if len(cids) != 1:
    problems.append(f"X-Correlation-Id headers: {cids}")
if not ctype or not ctype[0].startswith("application/json"):
    problems.append(f"content type {ctype}")
if isinstance(body, dict):
    if kind == "error" and sorted(body) != ["correlationId", "error", "message"]:
        problems.append(f"keys {sorted(body)}")
    if kind == "error" and not re.match(r"^[a-z][a-z0-9_]*$", str(body.get("error", ""))):
        problems.append(f"error code {body.get('error')!r}")
    cid = str(body.get("correlationId", ""))
    if not uuid.match(cid):
        problems.append(f"correlationId {cid!r}")
    if cids and cids[0].lower() != cid.lower():
        problems.append(f"header {cids[0]} != body {cid}")
    if want and cid.lower() != want.lower():
        problems.append(f"correlationId {cid}, want {want}")
print("; ".join(problems) if problems else "ok")
PY
}

# burst PORT N CODES curl-args...: N requests to URL_PATH at once (one curl, 50 in parallel);
# their statuses, one per line, into CODES.
burst() {
    local port=$1 n=$2 codes=$3 i
    shift 3
    for ((i = 0; i < n; i++)); do
        printf 'url = "http://127.0.0.1:%s%s"\noutput = "/dev/null"\n' "$port" "$URL_PATH"
    done >"$codes.cfg"
    curl -s --parallel --parallel-immediate --parallel-max 50 --max-time 20 \
        -w '%{http_code}\n' "$@" -K "$codes.cfg" >"$codes" || true
}

# page_verdict OUT TYPE [CID]: the answer in OUT.h has the console page's headers, each exactly
# once (the page's CSP, no-cache, the API's other security headers), a content type starting
# with TYPE and one X-Correlation-Id, a UUID (CID when given). Prints "ok" or what is wrong.
page_verdict() {
    "$PYTHON" - "$@" <<'PY'
import re, sys
out, ctype = sys.argv[1], sys.argv[2]
want_cid = sys.argv[3] if len(sys.argv) > 3 else None
head = open(out + ".h", encoding="latin-1", newline="").read().split("\r\n\r\n")
head = [h for h in head if h.strip()][-1]
hdrs = {}
for line in head.split("\r\n")[1:]:
    if ":" in line:
        k, v = line.split(":", 1)
        hdrs.setdefault(k.strip().lower(), []).append(v.strip())
want = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "cache-control": "no-cache", "x-content-type-options": "nosniff", "x-frame-options": "DENY",
    "referrer-policy": "no-referrer", "cross-origin-resource-policy": "same-origin",
}
problems = []
for k, v in want.items():
    if hdrs.get(k) != [v]:
        problems.append(f"{k}: {hdrs.get(k)}")
types = hdrs.get("content-type", [])
if len(types) != 1 or not types[0].startswith(ctype):
    problems.append(f"content-type {types}, want {ctype}")
cids = hdrs.get("x-correlation-id", [])
uuid = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
if len(cids) != 1 or not uuid.match(cids[0]) or (want_cid and cids[0].lower() != want_cid.lower()):
    problems.append(f"x-correlation-id {cids}")
if any(s.startswith("nginx/") for s in hdrs.get("server", [])):
    problems.append("Server names nginx's version")
print("; ".join(problems) if problems else "ok")
PY
}

expect_ok() { # NAME WHAT OUT STATUS KIND [CID]
    local name=$1 what=$2 v
    shift 2
    v=$(verdict "$@")
    [[ $v == ok ]] || fail "$name: $what: $v (head: $(head -c 300 "$1.h" | tr '\r\n' '  '))"
}

head -c "$BIG" /dev/zero | tr '\0' 'a' >"$TMP/big.json"
head -c 65536 /dev/zero | tr '\0' 'a' >"$TMP/limit.json"
CLIENT_CID=0B2C4D6E-1111-4222-8333-444455556666

for name in stack compose k8s; do
    port=${LISTEN[$name]}
    o=$TMP/$name/r

    URL_PATH=/no/such/path
    st=$(req "$port" "$o")
    expect_ok "$name" "unknown path" "$o" 404 error
    st=$(req "$port" "$o" -H "X-Correlation-Id: $CLIENT_CID")
    expect_ok "$name" "unknown path with the client's id" "$o" 404 error "$CLIENT_CID"
    st=$(req "$port" "$o" -X POST -H 'X-Correlation-Id: not-a-uuid"},"x":"' -d '{}')
    expect_ok "$name" "unknown path with an invalid id" "$o" 404 error
    ok "$name: unknown paths answer 404 in the error body with X-Correlation-Id (the client's when valid)"

    URL_PATH=/user/svc-info
    st=$(req "$port" "$o")
    expect_ok "$name" "id handed to the backend" "$o" 200 echo
    st=$(req "$port" "$o" -H "X-Correlation-Id: $CLIENT_CID")
    expect_ok "$name" "client's id handed to the backend" "$o" 200 echo "$CLIENT_CID"
    ok "$name: the backend gets nginx's id (the client's when valid) and answers with it"

    # The ids nginx makes are keys in the services' tables: time-ordered (a v8 UUID that
    # begins with the 13 digits of the milliseconds), distinct, each in its own request.
    ids=()
    t0=$(date +%s%3N)
    for i in 1 2 3 4 5; do
        st=$(req "$port" "$o")
        ids+=("$(tr -d '\r' <"$o.h" | sed -n 's/^[Xx]-[Cc]orrelation-[Ii]d: *//p')")
        sleep 0.003
    done
    t1=$(date +%s%3N)
    "$PYTHON" - "$t0" "$t1" "${ids[@]}" <<'PY' || fail "$name: the ids nginx made are not time-ordered: ${ids[*]}"
import re, sys
t0, t1, ids = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
shape = re.compile(r"^[0-9]{8}-[0-9]{4}-8[0-9][0-9a-f]{2}-8[0-9a-f]{3}-[0-9a-f]{12}$")
assert len(ids) == 5 and all(shape.match(i) for i in ids), ids
ms = [int(i.replace("-", "")[:12] + i[15]) for i in ids]
assert all(t0 <= m <= t1 for m in ms), (t0, ms, t1)
assert ids == sorted(ids) and len(set(ids)) == 5, ids
PY
    ok "$name: the ids nginx makes are time-ordered (v8: the milliseconds, then random bits)"

    URL_PATH=/user/create
    st=$(req "$port" "$o" -H 'Content-Type: application/json' -H 'Expect:' --data-binary "@$TMP/limit.json")
    [[ $st == 200 ]] || fail "$name: a body of exactly 64 KiB answered $st"
    n413=0 n502=0 other=0
    for ((i = 0; i < ROUNDS; i++)); do
        if ((i % 2 == 0)); then
            st=$(req "$port" "$o" -H 'Content-Type: application/json' -H 'Expect:' --data-binary "@$TMP/big.json")
        else
            st=$(req "$port" "$o" -H 'Content-Type: application/json' -H 'Expect:' -H 'Transfer-Encoding: chunked' --data-binary "@$TMP/big.json")
        fi
        case $st in
        413)
            n413=$((n413 + 1))
            expect_ok "$name" "70 KB body" "$o" 413 error
            ;;
        502) n502=$((n502 + 1)) ;;
        *) other=$((other + 1)) ;;
        esac
    done
    reached=$(grep -c '^oversized' "$TMP/upstream.log" || true)
    printf 'ingress: %s: %d POSTs of %d bytes: 413=%d 502=%d other=%d, reached the backend: %d\n' \
        "$name" "$ROUNDS" "$BIG" "$n413" "$n502" "$other" "$reached"
    ((n502 == 0 && other == 0)) || fail "$name: bodies over the limit: 502=$n502 other=$other"
    ((reached == 0)) || fail "$name: $reached bodies over the limit reached the backend"
    ok "$name: 64 KiB passes; $ROUNDS bodies of 70 KB (whole or chunked) all 413 in the error body, no 502"

    URL_PATH=/gxp/svc-info
    st=$(req "$port" "$o")
    expect_ok "$name" "dead upstream" "$o" 502 error
    ok "$name: a dead upstream answers 502 in the error body with X-Correlation-Id"

    # /auction (SPEC §2b) goes to backend-svc-1 (the dead port here, as nginx's error log names
    # it): the list with its query string, the POSTs and an auction by id.
    for what in 'GET /auction' 'GET /auction?status=open&limit=5&after=3' 'POST /auction/create' \
        'POST /auction/bid' 'POST /auction/cancel' 'GET /auction/7'; do
        URL_PATH=${what#* }
        body=()
        [[ $what == POST* ]] && body=(-H 'Content-Type: application/json' -d '{}')
        st=$(req "$port" "$o" -X "${what%% *}" "${body[@]}")
        expect_ok "$name" "$what" "$o" 502 error
        grep -qF "request: \"$what HTTP/1.1\", upstream: \"http://127.0.0.1:$DEAD/" \
            "$(error_log "$name")" || fail "$name: $what did not go to backend-svc-1"
    done
    ok "$name: /auction, its query string and every path under it go to backend-svc-1"

    # An API's headers on a proxied answer and on one nginx makes itself; no version.
    for URL_PATH in /user/svc-info /no/such/path; do
        st=$(req "$port" "$o")
        for h in 'X-Content-Type-Options: nosniff' 'X-Frame-Options: DENY' \
            "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'" \
            'Referrer-Policy: no-referrer' 'Cache-Control: no-store'; do
            tr -d '\r' <"$o.h" | grep -qixF "$h" || fail "$name: $URL_PATH ($st) lacks $h"
        done
        tr -d '\r' <"$o.h" | grep -qi '^Server: nginx/' && fail "$name: Server names nginx's version"
    done
    ok "$name: security headers on proxied answers and nginx's own, no version in Server"

    # The operator console's page: nginx's files, each header once (the page's CSP, never the
    # API's beside it), the client's correlation id, the files' types; /console redirected to
    # /console/; other methods 405 and unknown files 404 in the error body.
    for what in '/console/ text/html' '/console/index.html text/html' '/console/app.js application/javascript' \
        '/console/style.css text/css' '/console/vendor/uPlot.iife.min.js application/javascript' \
        '/console/vendor/uPlot.min.css text/css'; do
        URL_PATH=${what% *}
        st=$(req "$port" "$o" -I -H "X-Correlation-Id: $CLIENT_CID")
        v=$(page_verdict "$o" "${what#* }" "$CLIENT_CID")
        [[ $st == 200 && $v == ok ]] || fail "$name: HEAD $URL_PATH: $st: $v"
        st=$(req "$port" "$o")
        v=$(page_verdict "$o" "${what#* }")
        [[ $st == 200 && $v == ok ]] || fail "$name: GET $URL_PATH: $st: $v"
        file=${URL_PATH#/console/}
        cmp -s "$o.b" "$CONSOLE/${file:-index.html}" || fail "$name: GET $URL_PATH is not the console's file"
    done
    URL_PATH=/console
    st=$(req "$port" "$o")
    if [[ $st != 301 ]] || ! tr -d '\r' <"$o.h" | grep -qix 'Location: /console/'; then
        fail "$name: /console answered $st, not a redirect to /console/ ($(tr '\r\n' '  ' <"$o.h"))"
    fi
    URL_PATH=/console/
    st=$(req "$port" "$o" -X POST -H 'Content-Type: application/json' -d '{}')
    expect_ok "$name" "POST /console/" "$o" 405 error
    URL_PATH=/console/no-such-file.js
    st=$(req "$port" "$o")
    expect_ok "$name" "a file the console lacks" "$o" 404 error
    ok "$name: the console's page: its files with their types and the page's headers (each once), /console redirected, POST 405, a missing file 404"

    # Its API goes to backend-svc-1 (the dead port here), in the API's error body.
    URL_PATH=/console/api/stream
    st=$(req "$port" "$o" -H 'Accept: text/event-stream')
    expect_ok "$name" "GET /console/api/stream" "$o" 502 error
    grep -qF "request: \"GET /console/api/stream HTTP/1.1\", upstream: \"http://127.0.0.1:$DEAD/" \
        "$(error_log "$name")" || fail "$name: /console/api/stream did not go to backend-svc-1"
    ok "$name: /console/api goes to backend-svc-1, its errors in the API's error body"

    [[ $name == k8s ]] && continue # ingress-nginx's limit annotations are the controller's
    # Logins are limited per client (2/s, burst 20): 60 at once get some 429 rate_limited with
    # Retry-After; requests with a token are not limited at these rates (the local stack's and
    # compose's token limits are far above them), and those without are, past their burst.
    URL_PATH=/auth/login
    burst "$port" 60 "$o.codes" -X POST -d '{"name":"x","password":"y"}'
    n429=$(grep -c '^429$' "$o.codes" || true)
    ((n429 >= 20)) || fail "$name: 60 logins at once: only $n429 answered 429 ($(sort "$o.codes" | uniq -c | tr '\n' ' '))"
    sleep 1.2
    st=$(req "$port" "$o" -X POST -d '{}')
    until [[ $st != 429 ]]; do
        sleep 0.5
        st=$(req "$port" "$o" -X POST -d '{}')
    done
    for _ in $(seq 25); do
        st=$(req "$port" "$o" -X POST -d '{}')
        [[ $st == 429 ]] && break
    done
    expect_ok "$name" "a login over the limit" "$o" 429 error
    grep -qi '^Retry-After: ' "$o.h" || fail "$name: a 429 without Retry-After"
    ok "$name: logins are limited per client: $n429 of 60 at once answered 429 rate_limited with Retry-After"
    URL_PATH=/item/svc-info
    burst "$port" 300 "$o.codes" -H 'Authorization: Bearer some.token.value'
    n429=$(grep -c '^429$' "$o.codes" || true)
    ((n429 == 0)) || fail "$name: 300 requests with a token: $n429 answered 429"
    burst "$port" 300 "$o.codes"
    n429=$(grep -c '^429$' "$o.codes" || true)
    ((n429 > 0)) || fail "$name: 300 requests without a token at once: none answered 429"
    ok "$name: 300 requests with one token pass; 300 without a token at once: $n429 answered 429"
done

printf 'ingress: all %d checks passed\n' "$checks"
