#!/usr/bin/env bash
# Installs every build, runtime and test dependency of gf-svc on Debian bookworm.
# Idempotent: installs only what is missing, prints one line when there is nothing to do.
# Needs root to install; as another user it only reports what is missing (exit 1).
set -euo pipefail

PACKAGES=(
    build-essential cmake pkg-config git ca-certificates curl procps iproute2 gnuplot-nox
    iptables python3
    libgrpc-dev protobuf-c-compiler libprotobuf-c-dev
    libpq-dev postgresql-15
    libmicrohttpd-dev libjansson-dev libcmocka-dev uuid-dev clang-format libcurl4-openssl-dev wrk
    libsodium-dev libssl-dev openssl
    clang libclang-rt-14-dev
    rabbitmq-server librabbitmq-dev
    nginx
    docker.io mmdebstrap
    chromium fonts-dejavu-core
)
CREATECLUSTER_CONF=/etc/postgresql-common/createcluster.conf
POLICY_RC=/usr/sbin/policy-rc.d

is_installed() {
    local status
    # shellcheck disable=SC2016 # ${Status} is a dpkg-query field, not a shell variable
    status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)
    [[ $status == "install ok installed" ]]
}

# Installing postgresql-NN creates and starts a system cluster on port 5432 unless told not to;
# our clusters are private (tests/harness/pg-cluster.sh), so ask for none.
no_system_cluster() {
    local dropin_dir=${CREATECLUSTER_CONF%/*}/createcluster.d
    if [[ ! -e $CREATECLUSTER_CONF ]]; then
        mkdir -p "${CREATECLUSTER_CONF%/*}"
        printf '# Written by gf-svc scripts/deps.sh: no system cluster on port 5432.\n%s\n' \
            'create_main_cluster = false' >"$CREATECLUSTER_CONF"
    elif ! grep -Eq '^[[:space:]]*create_main_cluster' "$CREATECLUSTER_CONF" &&
        grep -Fq "$dropin_dir" "$CREATECLUSTER_CONF"; then
        # postgresql-common already installed with its stock file: use its drop-in directory.
        mkdir -p "$dropin_dir"
        printf 'create_main_cluster = false\n' >"$dropin_dir/gf-svc.conf"
    fi
}

# Installing rabbitmq-server or nginx starts a system service (ports 5672 and 80) through
# invoke-rc.d, which asks policy-rc.d first: exit 101 means "not allowed". Our broker and
# proxies are private (tests/harness/rabbitmq.sh, scripts/stack.sh), so during the install a
# policy-rc.d of ours forbids every start; one that is already there is left alone.
no_service_start() {
    [[ -e $POLICY_RC ]] && return 0
    printf '#!/bin/sh\n# Written by gf-svc scripts/deps.sh for one apt-get install; removed after it.\nexit 101\n' \
        >"$POLICY_RC"
    chmod 755 "$POLICY_RC"
    trap 'rm -f "$POLICY_RC"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM HUP
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done
# tests/deploy runs on Node.js; a machine that has node already (any source) keeps it.
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)

install_missing() {
    if [[ $EUID -ne 0 ]]; then
        printf 'deps: missing packages: %s\n' "${missing[*]}" >&2
        printf 'deps: run as root to install them: sudo %s\n' "$0" >&2
        exit 1
    fi
    printf 'deps: installing %s\n' "${missing[*]}"
    for pkg in "${missing[@]}"; do
        if [[ $pkg == postgresql-15 ]]; then
            no_system_cluster
        fi
    done
    apt-get update
    no_service_start
    # Keep a createcluster.conf we wrote ourselves (ucf/dpkg would otherwise ask about it).
    DEBIAN_FRONTEND=noninteractive UCF_FORCE_CONFFOLD=1 apt-get install -y --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
    printf 'deps: done\n'
}

# The node packages of the deployment checks and of the console's browser test, exactly as
# their package-lock.json files pin them.
node_packages() {
    local root dir
    root=$(cd "$(dirname "$0")/.." && pwd)
    for dir in "$root/tests/deploy" "$root/tests/browser"; do
        if [[ $dir/node_modules/.package-lock.json -nt $dir/package-lock.json ]]; then
            printf 'deps: node packages of %s are installed, nothing to do\n' "${dir#"$root"/}"
            continue
        fi
        printf 'deps: npm ci in %s\n' "${dir#"$root"/}"
        npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
    done
}

if ((${#missing[@]} == 0)); then
    printf 'deps: all %d packages are installed, nothing to do\n' "${#PACKAGES[@]}"
else
    install_missing
fi
node_packages
