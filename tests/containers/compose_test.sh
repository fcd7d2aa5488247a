#!/usr/bin/env bash
# Containers for real: every image built from a clean state of the project's images (the base
# images may come from the cache), deploy/compose/docker-compose.yml brought up unchanged on a
# real Docker engine, and the system driven through the compose ingress as a user would:
#   - the images as people check them: non-root, no compiler or -dev package, under 150 MB (our
#     programs' and the ingress's), no generated password or private key (the access tokens'
#     signing key, the TLS keys) in any layer or in the history;
#   - any start order: the services first, the databases and the broker a while later;
#   - the seed's sequence with gf (its image, logged in as the operator admin), each path
#     served by the right replica, a buy's event stored by eventlog (over amqps);
#   - the trust boundary: a service's database role is no superuser and reads no other role's
#     tables (gxp_replication: transaction_outbox only), PostgreSQL refuses a plain TCP
#     connection, RabbitMQ has only the services' users (no guest) and no plain AMQP listener,
#     gRPC refuses a client without a certificate;
#   - docker kill of a gxp replica and of a backend replica during buys retried with an
#     Idempotency-Key, both started again: every buy answered 200 happened exactly once, and
#     SPEC §5's invariants hold once the system is quiet;
#   - compose down and up again keeps the data (named volumes);
#   - the Kubernetes manifests' containers, run as the manifests say (image, args, env, user,
#     read-only root, dropped capabilities, memory limit) beside the compose stack, pass the
#     manifests' own probes on the ports they declare (tests/deploy/k8s-pods.mjs).
# Cleans up after itself: the project's containers, networks and volumes; the engine if it
# started one (its images with it, and what dockerd changed on the host).
#
#   tests/containers/compose_test.sh     (env: GF_TEST_TMP; GF_KEEP_ENGINE=1 keeps an engine it
#                                         started, with its layer cache, for the next run)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TMP=${GF_TEST_TMP:-/tmp/gf-test-containers}/containers
export DOCKER=/usr/bin/docker # Debian's CLI: a newer one may sit earlier on PATH
export DOCKER_CONFIG=$TMP/docker-config
export COMPOSE_PROJECT_NAME=gf-svc-ctest
export GF_COMPOSE_ENV_FILE=$TMP/compose.env
COMPOSE_FILE=$REPO/deploy/compose/docker-compose.yml
ENGINE_DIR=$TMP/engine
K8S_NET=$COMPOSE_PROJECT_NAME-k8s
IMAGES=(gf-backend gf-gxp gf-eventlog gf-postgres gf-rabbitmq gf-ingress gf-cli)
# Size bounds: 150 MB for the images of our programs and the ingress. PostgreSQL and RabbitMQ
# are Debian's packages as they are (postgresql-15 brings LLVM for JIT, 130 MB with libz3;
# RabbitMQ brings Erlang): bounded near their official images' sizes, to catch a regression.
declare -A MAX_MB=([gf-postgres]=400 [gf-rabbitmq]=200)
T0=$SECONDS

checks=0
say() { printf 'containers: [%3ds] %s\n' "$((SECONDS - T0))" "$*"; }
fail() {
    say "FAILED: $*" >&2
    exit 1
}
ok() {
    checks=$((checks + 1))
    say "ok $checks - $*"
}
docker() { "$DOCKER" "$@"; }
compose() { docker compose --env-file "$GF_COMPOSE_ENV_FILE" -f "$COMPOSE_FILE" "$@"; }

mkdir -p "$TMP"
# For tests/harness/reap.sh, should this script be killed before its trap runs: this process.
stat=$(cat /proc/$$/stat)
read -r -a fields <<<"${stat##*) }"
printf '%s %s\n' "$$" "${fields[19]}" >"$TMP/owner"
rm -rf "$TMP/work"
mkdir -p "$TMP/work"
W=$TMP/work

cleanup() {
    local rc=$? c
    set +e
    if [[ -n ${DOCKER_HOST:-} ]]; then
        for c in $(docker ps -aq --filter "label=gf-svc-ctest=k8s"); do
            docker rm -f -v "$c" >/dev/null 2>&1
        done
        # The compose containers first: they are attached to the k8s network too.
        compose down --volumes --remove-orphans --timeout 5 >>"$W/compose.log" 2>&1
        docker network rm "$K8S_NET" >/dev/null 2>&1
    fi
    if [[ ${GF_KEEP_ENGINE:-0} == 1 ]]; then
        bash "$REPO/deploy/docker/dockerd.sh" stop "$ENGINE_DIR"
    else
        bash "$REPO/deploy/docker/dockerd.sh" stop "$ENGINE_DIR" --purge
    fi
    if ((rc != 0)); then
        say "logs of the stack in $W (compose.log, logs.txt)"
        [[ -s $W/logs.txt ]] || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'say "FAILED: line $LINENO: $BASH_COMMAND (exit $?)" >&2' ERR
trap 'exit 130' INT TERM
dump_logs() { compose logs --no-color --timestamps >"$W/logs.txt" 2>&1 || true; }

# ---- an engine, the compose plugins, the passwords ------------------------------------------
export DOCKER_HOST
DOCKER_HOST=$(bash "$REPO/deploy/docker/dockerd.sh" start "$ENGINE_DIR") || fail "no Docker engine"
own_engine=no
[[ $DOCKER_HOST == "unix://$ENGINE_DIR/docker.sock" ]] && own_engine=yes
bash "$REPO/deploy/docker/compose-plugins.sh" "$DOCKER_CONFIG" >/dev/null || fail "compose plugins"
ok "a Docker engine ($([[ $own_engine == yes ]] && echo "our own" || echo "the one that answered")) and $(docker compose version --short 2>/dev/null | sed 's/^/compose /')"

# shellcheck source=../harness/ports.sh
source "$REPO/tests/harness/ports.sh"
GF_INGRESS_PORT=$(pick_ports 1) || fail "no free port"
URL=http://127.0.0.1:$GF_INGRESS_PORT
pw() { head -c 18 /dev/urandom | base64 | tr '+/' 'xy'; }
# The variables deploy/make-secrets.sh writes into .env, with passwords of this run.
PASSWORD_VARS=(BACKEND_DB_PASSWORD GXP_DB_PASSWORD EVENTLOG_DB_PASSWORD GXP_REPLICATION_PASSWORD
    GXP_SUBSCRIPTION_ADMIN_PASSWORD POSTGRES_PASSWORD AMQP_BACKEND_PASSWORD AMQP_GXP_PASSWORD
    AMQP_EVENTLOG_PASSWORD ADMIN_PASSWORD)
{
    for v in "${PASSWORD_VARS[@]}"; do printf '%s=%s\n' "$v" "$(pw)"; done
    printf 'GF_INGRESS_PORT=%s\nGXP_PENDING_TIMEOUT_MS=5000\n' "$GF_INGRESS_PORT"
} >"$GF_COMPOSE_ENV_FILE"
chmod 600 "$GF_COMPOSE_ENV_FILE"
# shellcheck source=/dev/null
source "$GF_COMPOSE_ENV_FILE"
PASSWORDS=()
for v in "${PASSWORD_VARS[@]}"; do PASSWORDS+=("${!v}"); done
(umask 077 && printf '%s' "$ADMIN_PASSWORD" >"$W/admin.password")
# The secrets a user's build context holds (deploy/make-secrets.sh writes them into the tree,
# git-ignored): written if missing, as `make compose-up` would, so that the scan below proves
# that no image takes them in. Existing ones are kept, as make-secrets.sh always does. The
# compose stack mounts deploy/compose/tls/ and auth/ (certificates, TLS keys, token keys).
bash "$REPO/deploy/make-secrets.sh" >/dev/null || fail "deploy/make-secrets.sh"
for f in "$REPO"/deploy/k8s/overlays/local/secrets/*.password; do
    PASSWORDS+=("$(cat "$f")")
done
# Private keys, by their PEM bodies' lines: the tokens' signing keys and every TLS key.
PRIVATE_KEYS=()
for f in "$REPO"/deploy/compose/auth/signing.key.pem "$REPO"/deploy/k8s/overlays/local/secrets/auth/signing.key.pem \
    "$REPO"/deploy/compose/tls/*.key "$REPO"/deploy/k8s/overlays/local/secrets/tls/*.key; do
    [[ -s $f ]] || fail "$f is missing"
    while read -r line; do
        [[ $line == -----* || ${#line} -lt 40 ]] || PRIVATE_KEYS+=("$line")
    done <"$f"
done
((${#PRIVATE_KEYS[@]} >= 4)) || fail "no private key to look for"

# A project left by an interrupted run on a shared engine goes first.
compose down --volumes --remove-orphans --timeout 1 >>"$W/compose.log" 2>&1 || true

# ---- build ----------------------------------------------------------------------------------
if [[ $own_engine == no ]]; then
    for img in "${IMAGES[@]}"; do
        docker image rm -f "$img" >/dev/null 2>&1 || true
    done
fi
t=$SECONDS
bash "$REPO/deploy/docker/base-images.sh" >"$W/base-images.log" 2>&1 || {
    cat "$W/base-images.log" >&2
    fail "base images"
}
ok "base images ready in $((SECONDS - t)) s ($(tr '\n' ';' <"$W/base-images.log"))"
t=$SECONDS
bash "$REPO/scripts/compose.sh" console-files >"$W/console-build.log" 2>&1 || {
    cat "$W/console-build.log" >&2
    fail "the console's files (scripts/console-build.sh)"
}
compose build >"$W/build.log" 2>&1 || {
    tail -n 40 "$W/build.log" >&2
    fail "compose build"
}
docker build -q -f "$REPO/deploy/docker/gf.Dockerfile" -t gf-cli "$REPO" >>"$W/build.log" 2>&1 || {
    tail -n 40 "$W/build.log" >&2
    fail "docker build gf"
}
ok "every image built in $((SECONDS - t)) s"

# ---- the images as people check them --------------------------------------------------------
printf '%s\n' "${PASSWORDS[@]}" "${PRIVATE_KEYS[@]}" >"$W/passwords"
sizes=()
for img in "${IMAGES[@]}"; do
    bytes=$(docker image inspect -f '{{.Size}}' "$img") || fail "$img was not built"
    sizes+=("$img $((bytes / 1000000)) MB")
    max=${MAX_MB[$img]:-150}
    ((bytes < max * 1000000)) || fail "$img is $bytes bytes (limit $max MB)"
    user=$(docker image inspect -f '{{.Config.User}}' "$img")
    [[ -n $user && ${user%%:*} != 0 && ${user%%:*} != root ]] || fail "$img runs as '${user:-root}'"
    uid=$(docker run --rm --entrypoint id "$img" -u)
    [[ $uid != 0 ]] || fail "$img runs as uid 0"
    bad=$(docker run --rm --entrypoint dpkg-query "$img" -W -f '${Package}\n' |
        grep -E '(-dev|^(gcc|g\+\+|cpp|clang|make|build-essential|binutils)(-[0-9.]+)?)$' || true)
    [[ -z $bad ]] || fail "$img holds build tools: $(tr '\n' ' ' <<<"$bad")"
    if docker history --no-trunc "$img" | grep -q -F -f "$W/passwords"; then
        fail "a generated password or private key is in $img's history"
    fi
    c=$(docker create "$img")
    found=$(docker export "$c" | grep -a -c -F -f "$W/passwords" || true)
    docker rm "$c" >/dev/null
    [[ $found == 0 ]] || fail "a generated password or private key is in $img's file system"
done
ok "non-root, no build tools, no password or private key in a layer or the history, each within its size bound: ${sizes[*]}"

# ---- any start order: the services first ----------------------------------------------------
services=(backend-svc-1 backend-svc-2 gxp eventlog ingress)
compose up -d --no-build "${services[@]}" >>"$W/compose.log" 2>&1 || fail "compose up of the services"
sleep 10
for id in $(compose ps -q); do
    name=$(docker inspect -f '{{.Name}}' "$id")
    [[ $(docker inspect -f '{{.State.Running}} {{.RestartCount}}' "$id") == "true 0" ]] ||
        fail "$name did not wait for its databases: $(docker inspect -f '{{.State.Status}} restarts={{.RestartCount}}' "$id")"
done
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$URL/item")
[[ $code == 503 ]] || fail "a list of items before the databases exist answered $code, not 503"
ok "the services started 10 s before their databases wait for them (running, 503 meanwhile)"
compose up -d --no-build >>"$W/compose.log" 2>&1 || fail "compose up"
t=$SECONDS
bash "$REPO/scripts/compose.sh" wait || {
    dump_logs
    fail "the stack did not become ready"
}
ok "every container healthy and every service ready $((SECONDS - t)) s after the databases started"

# ---- the seed's sequence with gf, through the compose ingress -------------------------------
# shellcheck source=../harness/seed.sh
source "$REPO/tests/harness/seed.sh"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST -H 'Content-Type: application/json' \
    -d '{"name":"anonymous"}' "$URL/user/create")
[[ $code == 401 ]] || fail "a create without a token answered $code, not 401"
# The operator the backends created from BACKEND_ADMIN_PASSWORD; gf from its image, on the
# host's network, with the token in its environment.
GF_TOKEN=$(seed_token "$URL" admin "$W/admin.password")
export GF_TOKEN
# shellcheck disable=SC2034 # run by seed.sh's gf_run
GF_CMD=(docker run --rm --network host -e GF_TOKEN gf-cli --url "$URL")
gf() { gf_run "$@"; }
expect() { seed_expect "$@"; }
seed_sequence
seed_routes
seed_event

# ---- the trust boundary ---------------------------------------------------------------------
NET=${COMPOSE_PROJECT_NAME}_default
CA=$REPO/deploy/compose/tls/ca.crt
pg() { # PASSWORD CONNINFO SQL: psql from the gf-postgres image on the compose network (the
    # password in the environment, never on a command line); its output and errors
    (
        export PGPASSWORD=$1
        docker run --rm --network "$NET" --mount "type=bind,src=$CA,dst=/ca.crt,readonly" \
            -e PGPASSWORD --entrypoint psql gf-postgres -X -q -A -t -v ON_ERROR_STOP=1 -d "$2" -c "$3" 2>&1
    )
}
tls="sslmode=verify-full sslrootcert=/ca.crt"
o=$(pg "$BACKEND_DB_PASSWORD" "host=backend-db dbname=backend user=backend $tls" \
    "SELECT r.rolsuper || ' ' || s.ssl FROM pg_roles r, pg_stat_ssl s WHERE r.rolname = current_user AND s.pid = pg_backend_pid()")
[[ $o == "false true" ]] || fail "backend's role over TLS: '$o' (want no superuser, ssl true)"
o=$(pg "$GXP_REPLICATION_PASSWORD" "host=backend-db dbname=backend user=gxp_replication $tls" \
    "SELECT count(*) FROM transaction_outbox")
[[ $o =~ ^[0-9]+$ ]] || fail "gxp_replication cannot read transaction_outbox: $o"
o=$(pg "$GXP_REPLICATION_PASSWORD" "host=backend-db dbname=backend user=gxp_replication $tls" \
    "SELECT count(*) FROM user_items" || true)
[[ $o == *"permission denied"* ]] || fail "gxp_replication reads backend's user_items: $o"
o=$(pg "$GXP_DB_PASSWORD" "host=gxp-db dbname=gxp user=gxp $tls" "SELECT count(*) FROM pg_authid" || true)
[[ $o == *"permission denied"* ]] || fail "gxp's role reads pg_authid: $o"
o=$(pg "$EVENTLOG_DB_PASSWORD" "host=backend-db dbname=backend user=eventlog $tls" "SELECT 1" || true)
[[ $o == *"password authentication failed"* ]] || fail "eventlog's credentials open backend-db: $o"
ok "each service's database role is no superuser and reads only its own tables (gxp_replication: transaction_outbox only), over verified TLS"
o=$(pg "$BACKEND_DB_PASSWORD" "host=backend-db dbname=backend user=backend sslmode=disable" "SELECT 1" || true)
[[ $o == *"no encryption"* ]] || fail "backend-db answered a plain TCP connection: $o"
ok "PostgreSQL refuses a TCP connection without TLS"
users=$(compose exec -T rabbitmq rabbitmqctl -q list_users --no-table-headers | awk '{ print $1 }' | sort | tr '\n' ' ')
[[ $users == "backend eventlog gxp " ]] || fail "RabbitMQ's users are '$users', not the services' only"
if compose exec -T rabbitmq rabbitmqctl -q authenticate_user guest guest >/dev/null 2>&1; then
    fail "guest logs in to RabbitMQ"
fi
port_open() { docker run --rm --network "$NET" --entrypoint bash gf-postgres -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }
port_open rabbitmq 5671 || fail "RabbitMQ does not listen on amqps (5671)"
! port_open rabbitmq 5672 || fail "RabbitMQ listens for plain AMQP on 5672"
ok "RabbitMQ: the services' users only (guest cannot log in), AMQP over TLS only (5671; nothing on 5672)"
code=$(docker run --rm --network "$NET" --mount "type=bind,src=$CA,dst=/ca.crt,readonly" --entrypoint curl \
    gf-backend -s -o /dev/null -w '%{http_code}' --max-time 5 --http2 --cacert /ca.crt \
    -X POST -H 'Content-Type: application/grpc' https://gxp:30002/gxp.Gxp/GetAll || true)
[[ $code == 000 ]] || fail "gxp's gRPC answered $code to a client without a certificate"
ok "gxp's gRPC refuses a client without a certificate (mutual TLS)"

# ---- docker kill during buys ----------------------------------------------------------------
expect "user 2" "create-user 2" create-user buyer
expect "item 2" "create-item 2" create-item cheap 1
gf create-marketplace-item 2 1000 >/dev/null
gf user-gxp-add 2 1000 >/dev/null
# One client: buys of item 2 for user 2, each with its own Idempotency-Key, retried with it
# until a definite answer (not 5xx, not a lost connection), for at most 90 s. Prints one line
# per buy: its final status.
buyer() {
    local n=0 key code deadline
    while [[ ! -e $W/stop-buying ]]; do
        key=$(cat /proc/sys/kernel/random/uuid)
        deadline=$((SECONDS + 90))
        while :; do
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 15 -X POST \
                -H 'Content-Type: application/json' -H "Idempotency-Key: $key" \
                -H "Authorization: Bearer $GF_TOKEN" \
                -d '{"userId":2,"itemId":2}' "$URL/marketplace/item/buy" || true)
            [[ $code =~ ^[24] ]] && break
            ((SECONDS < deadline)) || break
            sleep 0.3
        done
        printf '%s %s\n' "$code" "$key"
        n=$((n + 1))
    done
}
buyer >"$W/buys-1" 2>&1 &
B1=$!
buyer >"$W/buys-2" 2>&1 &
B2=$!
mapfile -t gxps < <(compose ps -q gxp)
gxp1=${gxps[0]}
backend1=$(compose ps -q backend-svc-1)
sleep 3
docker kill "$gxp1" >/dev/null
say "killed gxp replica $(docker inspect -f '{{.Name}}' "$gxp1")"
sleep 3
docker start "$gxp1" >/dev/null
sleep 3
docker kill "$backend1" >/dev/null
say "killed backend-svc-1"
sleep 3
docker start "$backend1" >/dev/null
bash "$REPO/scripts/compose.sh" wait || {
    dump_logs
    fail "not ready after the kills"
}
sleep 3
touch "$W/stop-buying"
wait "$B1" "$B2"
cat "$W/buys-1" "$W/buys-2" >"$W/buys"
bought=$(grep -c '^200 ' "$W/buys" || true)
undecided=$(grep -Evc '^(200|409) ' "$W/buys" || true)
((bought > 0)) || fail "no buy succeeded: $(sort "$W/buys" | cut -d' ' -f1 | uniq -c | tr '\n' ' ')"
((undecided == 0)) || fail "$undecided buys had no definite answer in 90 s: $(grep -Ev '^(200|409) ' "$W/buys" | head -3)"
ok "gxp-1 and backend-svc-1 killed and started during buys: $bought buys answered 200, every buy answered"

sql() { # SERVICE DB USER SQL: one value
    compose exec -T "$1" psql -X -q -A -t -U "$3" -d "$2" -c "$4"
}
for _ in $(seq 1 60); do
    pending=$(sql gxp-db gxp gxp "SELECT count(*) FROM gxp_transaction WHERE status = 0")
    [[ $pending == 0 ]] && break
    sleep 1
done
[[ $pending == 0 ]] || fail "$pending transactions still PENDING 60 s after the load"
bad=$(sql gxp-db gxp gxp "SELECT count(*) FROM balance b WHERE balance <> (SELECT coalesce(sum(CASE type WHEN 0 THEN amount ELSE -amount END), 0) FROM gxp_transaction t WHERE t.user_id = b.user_id AND status = 2) OR reserved <> (SELECT coalesce(sum(amount), 0) FROM gxp_transaction t WHERE t.user_id = b.user_id AND status = 0 AND type = 1) OR reserved < 0 OR reserved > balance")
[[ $bad == 0 ]] || fail "$bad balances are not the sum of their committed transactions"
bad=$(sql gxp-db gxp gxp "SELECT count(*) FROM gxp_transaction t LEFT JOIN transaction_outbox o USING (correlation_id) WHERE o.state IS NULL OR (t.status = 2) <> (o.state = 'succeeded') OR (t.status = 1) <> (o.state = 'failed')")
[[ $bad == 0 ]] || fail "$bad gxp transactions disagree with their decision"
items=$(sql backend-db backend backend "SELECT coalesce(sum(count), 0) FROM user_items WHERE user_id = 2 AND item_id = 2")
stock=$(sql backend-db backend backend "SELECT count FROM marketplace_items WHERE item_id = 2")
balance=$(sql gxp-db gxp gxp "SELECT balance || ' ' || reserved FROM balance WHERE user_id = 2")
[[ $items == "$bought" ]] || fail "user 2 owns $items of item 2, but $bought buys answered 200"
[[ $((items + stock)) == 1000 ]] || fail "user items $items + stock $stock is not the 1000 created"
[[ $balance == "$((1000 - bought)) 0" ]] || fail "user 2's balance is '$balance', want '$((1000 - bought)) 0'"
for _ in $(seq 1 60); do
    events=$(sql eventlog-db eventlog eventlog "SELECT count(*) FROM event WHERE user_id = 2 AND event_name = 'BuyItemEvent'")
    [[ $events == "$bought" ]] && break
    sleep 1
done
[[ $events == "$bought" ]] || fail "$events BuyItemEvents stored for user 2, want $bought"
ok "SPEC §5 holds: nothing PENDING, balances = committed sums, decisions = outcomes, $bought items, stock $stock, balance $balance, $events events"

# ---- down and up again: the data stays -------------------------------------------------------
compose down --timeout 20 >>"$W/compose.log" 2>&1 || fail "compose down"
[[ -z $(compose ps -aq) ]] || fail "down left containers"
compose up -d --no-build >>"$W/compose.log" 2>&1 || fail "compose up after down"
bash "$REPO/scripts/compose.sh" wait || {
    dump_logs
    fail "not ready after down and up"
}
expect my-name "the users did not survive down and up" ls
expect "balance 90, reserved 0" "the balance did not survive down and up" user-gxp 1
gf buy-marketplace-item 1 1 >/dev/null
ok "compose down and up keep the data in the named volumes (and a buy works after)"

# ---- the Kubernetes manifests' containers, as the manifests run them ------------------------
# The pods' Secret volumes from the compose stack's certificates and token keys (one CA, one
# key pair: the pods talk to the compose containers), through the local overlay's generator.
mkdir -p "$W/overlay/secrets"
cp "$REPO/deploy/k8s/overlays/local/kustomization.yaml" "$W/overlay/"
cp -r "$REPO/deploy/compose/tls" "$W/overlay/secrets/tls"
cp -r "$REPO/deploy/compose/auth" "$W/overlay/secrets/auth"
node "$REPO/tests/deploy/k8s-pods.mjs" "$REPO/deploy/k8s/base" "$W/overlay" "$W/k8s-secrets" >"$W/k8s-pods.sh" ||
    fail "reading the manifests"
docker network create --label gf-svc-ctest=k8s "$K8S_NET" >/dev/null
# The manifests' Service names, on a network of their own, reach the compose containers.
declare -A K8S_ALIAS=([backend-db]=backend-db [gxp-db]=gxp-db [eventlog-db]=eventlog-db
    [rabbitmq]=rabbitmq [gxp]=gxp-svc [backend-svc-1]="backend-grpc" [backend-svc-2]="backend-grpc")
for svc in "${!K8S_ALIAS[@]}"; do
    for id in $(compose ps -q "$svc"); do
        docker network connect --alias "${K8S_ALIAS[$svc]}" "$K8S_NET" "$id"
    done
done
# shellcheck disable=SC2034 # read by the eval of POD_ARGS below
declare -A SECRET=([backend-db-credentials/backend]=$BACKEND_DB_PASSWORD
    [backend-db-credentials/gxp-replication]=$GXP_REPLICATION_PASSWORD
    [backend-db-credentials/postgres]=$POSTGRES_PASSWORD
    [gxp-db-credentials/gxp]=$GXP_DB_PASSWORD
    [gxp-db-credentials/gxp-subscription-admin]=$GXP_SUBSCRIPTION_ADMIN_PASSWORD
    [gxp-db-credentials/postgres]=$POSTGRES_PASSWORD
    [eventlog-db-credentials/eventlog]=$EVENTLOG_DB_PASSWORD
    [eventlog-db-credentials/postgres]=$POSTGRES_PASSWORD
    [rabbitmq-credentials/backend]=$AMQP_BACKEND_PASSWORD [rabbitmq-credentials/gxp]=$AMQP_GXP_PASSWORD
    [rabbitmq-credentials/eventlog]=$AMQP_EVENTLOG_PASSWORD [backend-admin/password]=$ADMIN_PASSWORD)
declare -A POD_IMAGE=() POD_ARGS=() POD_PROBES=()
POD_NAMES=()
# shellcheck source=/dev/null
source "$W/k8s-pods.sh"
((${#POD_NAMES[@]} > 0)) || fail "no workload in the manifests"
for pod in "${POD_NAMES[@]}"; do
    img=${POD_IMAGE[$pod]}
    docker image inspect "$img" >/dev/null 2>&1 || fail "$pod names image $img, which this test did not build"
    eval "args=(${POD_ARGS[$pod]})"
    # shellcheck disable=SC2154 # args is set by the eval
    docker run -d --name "$COMPOSE_PROJECT_NAME-k8s-$pod" --label gf-svc-ctest=k8s \
        --network "$K8S_NET" --network-alias "$pod-k8s" "${args[@]}" >/dev/null ||
        fail "$pod: docker run ${args[*]}"
done
for pod in "${POD_NAMES[@]}"; do
    c=$COMPOSE_PROJECT_NAME-k8s-$pod
    for probe in ${POD_PROBES[$pod]}; do # kind|window_s|exec:cmd,args | http:port:path
        IFS='|' read -r kind window how <<<"$probe"
        deadline=$((SECONDS + window))
        while :; do
            if [[ $how == http:* ]]; then
                IFS=: read -r _ port path <<<"$how"
                docker exec "$c" curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$port$path" 2>/dev/null && break
            else
                IFS=, read -r -a cmd <<<"${how#exec:}"
                docker exec "$c" "${cmd[@]}" >/dev/null 2>&1 && break
            fi
            if ((SECONDS >= deadline)) || [[ $(docker inspect -f '{{.State.Running}}' "$c") != true ]]; then
                docker logs --tail 30 "$c" >&2 2>&1 || true
                fail "$pod's $kind probe ($how) did not pass within its $window s"
            fi
            sleep 1
        done
    done
done
ok "the manifests' ${#POD_NAMES[@]} containers, run as the manifests say, pass their own probes: ${POD_NAMES[*]}"

dump_logs
say "all $checks checks passed in $((SECONDS - T0)) s; images: ${sizes[*]}"
