#!/usr/bin/env bash
# The whole system in containers, from deploy/compose/docker-compose.yml as users run it.
#
#   scripts/compose.sh up [--no-build]   an engine (the one that answers, or one of our own),
#                                        the compose plugins, the base images, the passwords,
#                                        the console's files, the images; then up, and wait
#                                        until every container is healthy and every service ready
#   scripts/compose.sh down [--volumes]  the stack down (its data kept unless --volumes), then
#                                        the engine up started, if it started one
#   scripts/compose.sh status | logs [SERVICE]
#   scripts/compose.sh env               the exports that point docker at that engine:
#                                        eval "$(scripts/compose.sh env)"; docker compose ps
#   scripts/compose.sh wait              (DOCKER_HOST set) wait until the project is ready
#   scripts/compose.sh console-files     only the console's files for the gf-ingress image
#
# Environment: GF_COMPOSE_STATE (default /var/lib/gf-svc/compose: our engine's images and
# volumes, the docker configuration with the plugins), GF_INGRESS_PORT (default 30080),
# COMPOSE_PROJECT_NAME (default gf-svc, from deploy/compose/.env), GF_COMPOSE_ENV_FILE (default
# deploy/compose/.env, written by deploy/make-secrets.sh when missing).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
STATE=${GF_COMPOSE_STATE:-/var/lib/gf-svc/compose}
export DOCKER=${DOCKER:-/usr/bin/docker} # Debian's CLI: a newer one may sit earlier on PATH
export DOCKER_CONFIG=${DOCKER_CONFIG:-$STATE/docker-config}
COMPOSE_FILE=$REPO/deploy/compose/docker-compose.yml
ENV_FILE=${GF_COMPOSE_ENV_FILE:-$REPO/deploy/compose/.env}
WAIT_S=${GF_COMPOSE_WAIT_S:-300}
# The services' own HTTP ports inside their containers, for /readyz.
declare -A READY_PORT=([backend-svc-1]=30080 [backend-svc-2]=30080 [gxp]=30003 [eventlog]=30070)

say() { printf 'compose: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}

compose() {
    "$DOCKER" compose --env-file "$ENV_FILE" -f "$COMPOSE_FILE" "$@"
}

# The engine: the one DOCKER_HOST (or the default socket) names, else ours in $STATE/engine.
engine() {
    local host
    host=$(bash "$REPO/deploy/docker/dockerd.sh" start "$STATE/engine") || die "no Docker engine"
    export DOCKER_HOST=$host
}

# Every container of the project healthy (those with a health check) and every service ready:
# /readyz answers 200 from inside each replica (readiness is not a Docker health state).
wait_ready() {
    local deadline=$((SECONDS + WAIT_S)) pending id name svc health
    while :; do
        pending=()
        for id in $(compose ps -q); do
            read -r name svc health < <("$DOCKER" inspect -f '{{.Name}} {{index .Config.Labels "com.docker.compose.service"}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id")
            if [[ $health != healthy && $health != running ]]; then
                pending+=("${name#/}:$health")
            elif [[ -n ${READY_PORT[$svc]:-} ]] &&
                ! "$DOCKER" exec "$id" curl -fsS -o /dev/null "http://127.0.0.1:${READY_PORT[$svc]}/readyz" 2>/dev/null; then
                pending+=("${name#/}:not-ready")
            fi
        done
        if [[ ${#pending[@]} -eq 0 ]]; then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            say "not ready after $WAIT_S s: ${pending[*]}"
            compose ps >&2 || true
            return 1
        fi
        sleep 2
    done
}

# The operator console's files, which the gf-ingress image copies in
# (deploy/docker/ingress.Dockerfile): built here on the host by scripts/console-build.sh (npm ci
# of the pinned uPlot; a docker build reaches no npm registry) into deploy/docker/console-dist/
# (git-ignored; replaced whole, readable by all). A failed build stops `up` before any image is
# built.
CONSOLE_DIST=$REPO/deploy/docker/console-dist
console_files() {
    say "building the console's files (scripts/console-build.sh)"
    bash "$REPO/scripts/console-build.sh" "$CONSOLE_DIST" >&2 ||
        die "the console's build failed (scripts/console-build.sh)"
}

up() {
    local build=1
    [[ ${1:-} == --no-build ]] && build=0
    engine
    bash "$REPO/deploy/docker/compose-plugins.sh" "$DOCKER_CONFIG" >/dev/null ||
        die "no compose plugin (deploy/docker/compose-plugins.sh)"
    [[ -s $ENV_FILE ]] || bash "$REPO/deploy/make-secrets.sh" >&2
    if ((build)); then
        bash "$REPO/deploy/docker/base-images.sh" >&2
        console_files
        say "building the images"
        compose build >&2
    fi
    say "starting the stack"
    compose up -d --no-build >&2
    wait_ready || die "the stack did not become ready: scripts/compose.sh logs SERVICE says why"
    say "up: http://127.0.0.1:${GF_INGRESS_PORT:-30080} (try: gf --url http://127.0.0.1:${GF_INGRESS_PORT:-30080} ls)"
    say "docker commands: eval \"\$(scripts/compose.sh env)\""
}

down() {
    local volumes=()
    [[ ${1:-} == --volumes ]] && volumes=(--volumes)
    if [[ -f $STATE/engine/dockerd.pid ]] || "$DOCKER" info >/dev/null 2>&1; then
        engine
        compose down --timeout 20 "${volumes[@]}" >&2
    fi
    bash "$REPO/deploy/docker/dockerd.sh" stop "$STATE/engine"
    say "down"
}

cmd=${1:-}
shift || true
case $cmd in
up) up "$@" ;;
down) down "$@" ;;
status) engine && compose ps ;;
wait) wait_ready ;;
console-files) console_files ;;
logs) engine && compose logs --no-color "$@" ;;
env)
    engine
    printf 'export DOCKER_HOST=%q DOCKER_CONFIG=%q\n' "$DOCKER_HOST" "$DOCKER_CONFIG"
    printf 'alias docker=%q\n' "$DOCKER"
    ;;
*)
    sed -n '4,19p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
