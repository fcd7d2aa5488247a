#!/usr/bin/env bash
# Docker Compose v2 and buildx as docker CLI plugins, where Debian bookworm has neither (it has
# compose v1, Python, deprecated, which ignores `deploy.replicas` and `--wait`). Debian trixie
# packages both as Go binaries that run on bookworm: they are fetched with `apt-get download`
# from the Debian mirror into a private apt state (trixie never enters the system's sources),
# unpacked from the .deb and kept in a cache; then linked into DIR/cli-plugins.
#
#   deploy/docker/compose-plugins.sh [DIR]    DIR: a docker configuration directory
#                                             (default: $DOCKER_CONFIG, else ~/.docker)
#
# Plugins that answer already in DIR are kept. Prints the compose version. The cache is
# $GF_CACHE_DIR/docker-plugins (GF_CACHE_DIR defaults to ~/.cache/gf-svc).
set -euo pipefail

dir=${1:-${DOCKER_CONFIG:-$HOME/.docker}}
cache=${GF_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gf-svc}/docker-plugins
mirror=${GF_DEBIAN_MIRROR:-http://deb.debian.org/debian}
docker=${DOCKER:-/usr/bin/docker}
plugins=(docker-compose docker-buildx)

have() { DOCKER_CONFIG=$dir "$docker" "${1#docker-}" version >/dev/null 2>&1; }

missing=()
for p in "${plugins[@]}"; do
    [ -x "$cache/$p" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    state=$(mktemp -d)
    trap 'rm -rf "$state"' EXIT
    mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/etc/sources.list.d" \
        "$state/etc/preferences.d" "$state/debs" "$cache"
    echo "deb $mirror trixie main" >"$state/etc/sources.list"
    apt_opts=(-o "Dir::State=$state" -o "Dir::State::Lists=$state/lists"
        -o "Dir::State::status=/dev/null" -o "Dir::Cache=$state/cache"
        -o "Dir::Etc::SourceList=$state/etc/sources.list"
        -o "Dir::Etc::SourceParts=$state/etc/sources.list.d"
        -o "Dir::Etc::Preferences=$state/etc/preferences"
        -o "Dir::Etc::PreferencesParts=$state/etc/preferences.d"
        -o "APT::Sandbox::User=root" -o "Debug::NoLocking=1")
    if ! apt-get "${apt_opts[@]}" -qq update >"$state/log" 2>&1; then
        cat "$state/log" >&2
        echo "compose-plugins.sh: cannot read trixie's package index from $mirror" >&2
        exit 1
    fi
    # apt-get download writes into the current directory.
    if ! (cd "$state/debs" && apt-get "${apt_opts[@]}" -qq download "${missing[@]}") >"$state/log" 2>&1; then
        cat "$state/log" >&2
        echo "compose-plugins.sh: cannot download ${missing[*]} from $mirror" >&2
        exit 1
    fi
    for p in "${missing[@]}"; do
        deb=$(ls "$state/debs/${p}_"*.deb)
        dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$state" "./usr/libexec/docker/cli-plugins/$p"
        # Into the cache under a temporary name, then renamed: never a half-written plugin.
        mv "$state/usr/libexec/docker/cli-plugins/$p" "$cache/$p.new"
        mv "$cache/$p.new" "$cache/$p"
        echo "compose-plugins.sh: $(basename "$deb") unpacked into $cache"
    done
fi

mkdir -p "$dir/cli-plugins"
for p in "${plugins[@]}"; do
    have "$p" && continue
    ln -sfn "$cache/$p" "$dir/cli-plugins/$p"
done
DOCKER_CONFIG=$dir "$docker" compose version
