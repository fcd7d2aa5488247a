#!/usr/bin/env bash
# Builds the operator console's static files (console/) into a directory nginx serves at /console/:
#
#   scripts/console-build.sh OUTDIR
#
# There is no compile step: index.html, app.js and style.css are copied as they are, and uPlot
# is vendored from the npm registry at the exact version console/package-lock.json pins (npm ci
# checks its integrity hash). npm runs in a temporary copy of console/, so no node_modules is
# ever left in the source tree, and with --ignore-scripts, so no package code runs here.
# OUTDIR is replaced as a whole (built next to it, then swapped in): running it twice is harmless.
set -euo pipefail

die() {
    printf 'console-build: %s\n' "$*" >&2
    exit 1
}

[ $# -eq 1 ] && [ -n "$1" ] || die "usage: $0 OUTDIR"
command -v npm >/dev/null 2>&1 ||
    die "npm is missing: install Node.js and npm (Debian: apt-get install -y npm) and run again"

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../console" && pwd)
OUT=$1
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac
OUT=${OUT%/}
[ -n "$OUT" ] && [ "$OUT" != "/" ] || die "refusing to replace /"
case "$SRC/" in "$OUT"/*) die "OUTDIR $OUT would contain the source $SRC" ;; esac
case "$OUT/" in "$SRC"/*) die "OUTDIR $OUT is inside the source $SRC" ;; esac
PARENT=$(dirname "$OUT")
mkdir -p "$PARENT"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/console-build.XXXXXX")
STAGE="$PARENT/.$(basename "$OUT").new.$$"
OLD="$PARENT/.$(basename "$OUT").old.$$"
cleanup() { rm -rf "$WORK" "$STAGE" "$OLD"; }
trap cleanup EXIT

# uPlot from the lockfile, in the temporary copy.
cp "$SRC/package.json" "$SRC/package-lock.json" "$WORK/"
(cd "$WORK" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) ||
    die "npm ci failed in $WORK (is the registry reachable?)"
DIST="$WORK/node_modules/uplot/dist"
for f in uPlot.iife.min.js uPlot.min.css; do
    [ -s "$DIST/$f" ] || die "the uplot package has no dist/$f"
done

# The site: world-readable, since nginx's workers read it as another user.
mkdir -p "$STAGE/vendor"
chmod 0755 "$STAGE" "$STAGE/vendor"
for f in index.html app.js style.css; do
    install -m 0644 "$SRC/$f" "$STAGE/$f"
done
install -m 0644 "$DIST/uPlot.iife.min.js" "$DIST/uPlot.min.css" "$STAGE/vendor/"
install -m 0644 "$WORK/node_modules/uplot/LICENSE" "$STAGE/vendor/uPlot.LICENSE"

# Swap it in: the old tree is moved aside first, so OUTDIR is never half-written.
if [ -e "$OUT" ]; then
    mv "$OUT" "$OLD"
fi
mv "$STAGE" "$OUT"
printf 'console-build: %s (uplot %s)\n' "$OUT" \
    "$(sed -n 's/.*"uplot": "\(.*\)".*/\1/p' "$SRC/package.json")"
