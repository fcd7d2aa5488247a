#!/usr/bin/env bash
# gf-keygen (lib/tools/gf_keygen.c) as an operator runs it: it writes a key pair with the right
# modes, prints the kid the services compute (checked against the openssl tool where it is
# installed: the first 16 characters of base64url(SHA-256(raw public key))), never overwrites a
# file, and answers a wrong command line with its usage and exit code 64.
# usage: gf_keygen_test.sh <gf-keygen>
set -euo pipefail
keygen=$1
d=$(mktemp -d /tmp/gf-keygen-test.XXXXXX)
trap 'rm -rf "$d"' EXIT
fail() {
    printf 'gf_keygen_test: %s\n' "$*" >&2
    exit 1
}

kid=$("$keygen" "$d/k.pem" "$d/k.pub.pem") || fail "gf-keygen failed"
[[ $kid =~ ^[A-Za-z0-9_-]{16}$ ]] || fail "not a kid: '$kid'"
[[ $(stat -c %a "$d/k.pem") == 600 ]] || fail "private key mode $(stat -c %a "$d/k.pem")"
[[ $(stat -c %a "$d/k.pub.pem") == 644 ]] || fail "public key mode $(stat -c %a "$d/k.pub.pem")"
grep -q -- '-----BEGIN PRIVATE KEY-----' "$d/k.pem" || fail "no PKCS#8 private key"
grep -q -- '-----BEGIN PUBLIC KEY-----' "$d/k.pub.pem" || fail "no public key"
if command -v openssl >/dev/null 2>&1; then
    # The raw key is the last 32 bytes of the DER SubjectPublicKeyInfo.
    want=$(openssl pkey -pubin -in "$d/k.pub.pem" -outform DER | tail -c 32 |
        openssl dgst -sha256 -binary | base64 -w0 | tr '+/' '-_' | cut -c1-16)
    [[ $kid == "$want" ]] || fail "kid $kid, the openssl tool computes $want"
fi

if "$keygen" "$d/k.pem" "$d/other.pem" 2>/dev/null; then
    fail "an existing private key was overwritten"
fi
[[ ! -e $d/other.pem ]] || fail "a half pair was left behind"
rc=0
"$keygen" "$d/only-one.pem" >/dev/null 2>&1 || rc=$?
[[ $rc == 64 ]] || fail "a wrong command line exits $rc, not 64"
"$keygen" --help | grep -q '^usage: gf-keygen' || fail "--help prints no usage"
echo "gf_keygen_test: ok"
