#!/usr/bin/env bash
# A private CA and one certificate per service identity, for gRPC's mutual TLS between backend
# and gxp (each process shows its certificate as server and as client):
#
#   scripts/pki.sh DIR [NAME[:SAN,SAN...]...]
#
# writes DIR/ca.crt, DIR/ca.key and DIR/NAME.crt, DIR/NAME.key for every NAME (default: gxp and
# backend, with the names below). A SAN that looks like an IP address is an IP SAN, anything
# else a DNS name. ECDSA P-256 keys (unencrypted PKCS#8 PEM), made by the openssl command.
# Idempotent: a CA or certificate that exists, verifies, matches its key, is valid for 30 more
# days and (for a leaf) names at least the SANs asked for is kept; anything else is made anew
# (a new CA re-issues every leaf). Files are written owner-only (umask 077), each atomically.
set -euo pipefail
umask 077

# Local stack (127.0.0.1, localhost), compose (service names and network aliases) and
# Kubernetes (Service names, short and qualified for the namespace gf-svc).
K8S_NS=${GF_PKI_K8S_NAMESPACE:-gf-svc}
DEFAULT_GXP="localhost,127.0.0.1,::1,gxp,gxp-svc,gxp-svc.$K8S_NS,gxp-svc.$K8S_NS.svc"
DEFAULT_GXP+=",gxp-svc.$K8S_NS.svc.cluster.local"
DEFAULT_BACKEND="localhost,127.0.0.1,::1,backend,backend-grpc,backend-svc-1,backend-svc-2"
DEFAULT_BACKEND+=",backend-grpc.$K8S_NS,backend-grpc.$K8S_NS.svc"
DEFAULT_BACKEND+=",backend-grpc.$K8S_NS.svc.cluster.local"
CA_DAYS=3650
LEAF_DAYS=825
RENEW_S=$((30 * 86400)) # re-issue what expires within this

die() {
    printf 'pki: %s\n' "$*" >&2
    exit 1
}
say() { printf 'pki: %s\n' "$*" >&2; }

(($# >= 1)) || die "usage: $0 DIR [NAME[:SAN,SAN...]...]"
command -v openssl >/dev/null || die "the openssl command is missing (apt-get install openssl)"
DIR=$1
shift
mkdir -p "$DIR"
WORK=$(mktemp -d "$DIR/.pki.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

specs=("$@")
((${#specs[@]} > 0)) || specs=("gxp:$DEFAULT_GXP" "backend:$DEFAULT_BACKEND")

# "a,b,1.2.3.4" -> "DNS:a,DNS:b,IP:1.2.3.4"
san_ext() {
    local out=() s
    IFS=, read -r -a parts <<<"$1"
    for s in "${parts[@]}"; do
        [[ -n $s ]] || continue
        if [[ $s =~ ^[0-9.]+$ || $s == *:* ]]; then out+=("IP:$s"); else out+=("DNS:$s"); fi
    done
    local IFS=,
    printf '%s' "${out[*]}"
}

# The public key of a certificate or a key, to see that the two belong together.
pub_of_cert() { openssl x509 -in "$1" -noout -pubkey 2>/dev/null; }
pub_of_key() { openssl pkey -in "$1" -pubout 2>/dev/null; }

# True when cert and key exist, belong together, and cert lasts RENEW_S more seconds.
pair_ok() {
    local crt=$1 key=$2
    [[ -s $crt && -s $key ]] || return 1
    openssl x509 -in "$crt" -noout -checkend "$RENEW_S" >/dev/null 2>&1 || return 1
    [[ -n $(pub_of_cert "$crt") && $(pub_of_cert "$crt") == "$(pub_of_key "$key")" ]]
}

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

ca_ok() {
    pair_ok "$DIR/ca.crt" "$DIR/ca.key" &&
        openssl x509 -in "$DIR/ca.crt" -noout -ext basicConstraints 2>/dev/null | grep -q 'CA:TRUE'
}

make_ca() {
    new_key "$WORK/ca.key"
    openssl req -x509 -new -key "$WORK/ca.key" -sha256 -days "$CA_DAYS" \
        -subj "/O=gf-svc/CN=gf-svc private CA $(date -u +%Y%m%dT%H%M%SZ)" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" -out "$WORK/ca.crt" 2>/dev/null ||
        die "openssl could not make the CA"
    mv "$WORK/ca.key" "$DIR/ca.key"
    mv "$WORK/ca.crt" "$DIR/ca.crt"
    say "new CA $DIR/ca.crt"
}

# True when the leaf verifies against the CA and names every SAN in $2 ("DNS:a,IP:b").
leaf_ok() {
    local name=$1 want=$2 have s
    pair_ok "$DIR/$name.crt" "$DIR/$name.key" || return 1
    openssl verify -CAfile "$DIR/ca.crt" "$DIR/$name.crt" >/dev/null 2>&1 || return 1
    have=$(openssl x509 -in "$DIR/$name.crt" -noout -ext subjectAltName 2>/dev/null |
        tail -n +2 | tr -d ' ' | sed 's/IPAddress:/IP:/g')
    IFS=, read -r -a wanted <<<"$want"
    for s in "${wanted[@]}"; do
        # openssl prints IPv6 addresses in full (0:0:...:1): compare those through openssl too.
        [[ ,$have, == *",$s,"* || $s == IP:*:* ]] || return 1
    done
}

make_leaf() {
    local name=$1 sans=$2
    new_key "$WORK/$name.key"
    openssl req -new -key "$WORK/$name.key" -subj "/O=gf-svc/CN=$name" \
        -out "$WORK/$name.csr" 2>/dev/null || die "openssl could not make the request of $name"
    cat >"$WORK/$name.ext" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $sans
EOF
    openssl x509 -req -in "$WORK/$name.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" \
        -CAcreateserial -CAserial "$WORK/ca.srl" -sha256 -days "$LEAF_DAYS" \
        -extfile "$WORK/$name.ext" -out "$WORK/$name.crt" 2>/dev/null ||
        die "openssl could not sign the certificate of $name"
    mv "$WORK/$name.key" "$DIR/$name.key"
    mv "$WORK/$name.crt" "$DIR/$name.crt"
    say "new certificate $DIR/$name.crt ($sans)"
}

fresh_ca=false
if ! ca_ok; then
    make_ca
    fresh_ca=true
fi
for spec in "${specs[@]}"; do
    name=${spec%%:*}
    [[ $name =~ ^[a-z0-9][a-z0-9_-]*$ && $name != ca ]] || die "bad identity name '$name'"
    sans=${spec#*:}
    [[ $spec == *:* ]] || sans=localhost,127.0.0.1
    ext=$(san_ext "$sans")
    [[ -n $ext ]] || die "$name: no subjectAltName"
    if $fresh_ca || ! leaf_ok "$name" "$ext"; then
        make_leaf "$name" "$ext"
    fi
done
