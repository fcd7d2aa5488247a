#!/usr/bin/env bash
# The base images the Dockerfiles name (debian:bookworm, debian:bookworm-slim), built from the
# Debian mirror for a Docker engine that reaches no image registry. Faithful to the official
# images: minbase with merged /usr, apt's lists and caches emptied, the official images' apt
# configuration (docker-clean: no .deb and no package cache left behind by a RUN apt-get
# install; no translations; gzipped indexes), and for -slim the same dpkg path-excludes (docs,
# man pages, locales). An image that exists already is kept, and each bootstrap's root
# filesystem is kept in $GF_CACHE_DIR/base-images (default ~/.cache/gf-svc) so that another
# engine (a test's own) imports it in seconds: --force bootstraps again.
#
#   deploy/docker/base-images.sh [--force] [--mirror URL]
#
# Uses the docker CLI on PATH and $DOCKER_HOST like any docker command. Needs mmdebstrap
# (apt-get install mmdebstrap).
set -euo pipefail

force=0
mirror=http://deb.debian.org/debian
security=http://deb.debian.org/debian-security
while [ $# -gt 0 ]; do
    case "$1" in
    --force) force=1 ;;
    --mirror) mirror=$2; shift ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "base-images.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
command -v mmdebstrap >/dev/null || { echo "base-images.sh: mmdebstrap is missing (apt-get install mmdebstrap)" >&2; exit 1; }
docker=${DOCKER:-docker}
cache=${GF_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gf-svc}/base-images
mkdir -p "$cache"

# The official images' /etc/apt/apt.conf.d files (debuerreotype), in effect in every RUN; a
# file, since mmdebstrap takes a hook argument that names one as that file.
hook=$(mktemp)
trap 'rm -f "$hook"' EXIT
cat > "$hook" <<'HOOK'
#!/bin/sh
set -e
cat > "$1/etc/apt/apt.conf.d/docker-clean" <<EOF
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo "Acquire::Languages \"none\";" > "$1/etc/apt/apt.conf.d/docker-no-languages"
printf "Acquire::GzipIndexes \"true\";\nAcquire::CompressionTypes::Order:: \"gz\";\n" > "$1/etc/apt/apt.conf.d/docker-gzip-indexes"
echo "Apt::AutoRemove::SuggestsImportant \"false\";" > "$1/etc/apt/apt.conf.d/docker-autoremove-suggests"
rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/apt/* "$1"/var/log/dpkg.log
HOOK
chmod +x "$hook"
slim_excludes=(
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/groff/*'
    --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/lintian/*'
    --dpkgopt='path-exclude=/usr/share/linda/*'
    --dpkgopt='path-exclude=/usr/share/locale/*'
)

build() { # tag, extra mmdebstrap options...
    local tag=$1
    shift
    if [ "$force" = 0 ] && "$docker" image inspect "$tag" >/dev/null 2>&1; then
        echo "base-images.sh: $tag exists (kept; --force rebuilds)"
        return
    fi
    local t0=$SECONDS log tarball cached=$cache/${tag//[:\/]/_}.tar
    if [ "$force" = 0 ] && [ -s "$cached" ]; then
        "$docker" import --change 'CMD ["bash"]' "$cached" "$tag" >/dev/null
        echo "base-images.sh: $tag imported from $cached in $((SECONDS - t0)) s"
        return
    fi
    log=$(mktemp)
    tarball=$(mktemp --tmpdir="$cache" --suffix=.tar partial.XXXXXX) # .tar: mmdebstrap goes by it
    # To a file first: a failed bootstrap must never replace a good image with a broken one.
    if ! mmdebstrap --quiet --variant=minbase --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        "$@" --customize-hook="$hook" bookworm "$tarball" \
        "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
        "deb $security bookworm-security main" 2>"$log"; then
        tail -n 20 "$log" >&2
        rm -f "$log" "$tarball"
        echo "base-images.sh: $tag could not be built (the image that exists, if any, is kept)" >&2
        exit 1
    fi
    "$docker" import --change 'CMD ["bash"]' "$tarball" "$tag" >/dev/null
    mv "$tarball" "$cached"
    rm -f "$log"
    echo "base-images.sh: $tag built in $((SECONDS - t0)) s ($("$docker" image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.1f MB", $1 / 1e6}'))"
}

build debian:bookworm
build debian:bookworm-slim "${slim_excludes[@]}"
