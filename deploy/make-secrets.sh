#!/usr/bin/env bash
# Writes the secrets of the containerized deployments, once (all git-ignored):
#   k8s/overlays/local/secrets/, one NAME.password per secret: the local overlay reads them
#   compose/.env                               the same passwords, as compose variables
#   k8s/overlays/local/secrets/tls/, compose/tls/
#                                              a private CA and the certificates of gRPC (gxp,
#                                              backend), the PostgreSQL servers (backend-db,
#                                              gxp-db, eventlog-db) and RabbitMQ (rabbitmq)
#   k8s/overlays/local/secrets/auth/, compose/auth/
#                                              the Ed25519 key pair of the access tokens:
#                                              signing.key.pem (the backends only) and
#                                              token.pem in keys/ (its public key: backends,
#                                              eventlog)
# Idempotent. Existing passwords are kept (a variable missing from an older .env is added), and
# so are keys and certificates that are still valid: PostgreSQL's superuser password is set
# only when its volume is first initialized, and a new token key would sign out every user.
#
#   deploy/make-secrets.sh
set -euo pipefail
umask 077
here=$(cd "$(dirname "$0")" && pwd)
pki=$here/../scripts/pki.sh
k8s_ns=${GF_PKI_K8S_NAMESPACE:-gf-svc}

# Secret file name -> compose variable. The database roles (sql/roles/roles.sql): backend,
# gxp and eventlog own their service's tables; gxp_replication is gxp-db's subscription to
# backend-db; gxp_subscription_admin is the superuser gxp's subscription manager needs;
# postgres is each cluster's superuser. The RabbitMQ users (scripts/broker-users.sh): one per
# service. admin: the backends' first operator (BACKEND_ADMIN_NAME=admin).
names=(backend-db gxp-db eventlog-db gxp-replication gxp-subscription-admin postgres
    amqp-backend amqp-gxp amqp-eventlog admin)
declare -A var=(
    [backend-db]=BACKEND_DB_PASSWORD [gxp-db]=GXP_DB_PASSWORD [eventlog-db]=EVENTLOG_DB_PASSWORD
    [gxp-replication]=GXP_REPLICATION_PASSWORD
    [gxp-subscription-admin]=GXP_SUBSCRIPTION_ADMIN_PASSWORD [postgres]=POSTGRES_PASSWORD
    [amqp-backend]=AMQP_BACKEND_PASSWORD [amqp-gxp]=AMQP_GXP_PASSWORD
    [amqp-eventlog]=AMQP_EVENTLOG_PASSWORD [admin]=ADMIN_PASSWORD
)

random_password() { head -c 18 /dev/urandom | base64 | tr '+/' 'xy'; }

secrets_dir=$here/k8s/overlays/local/secrets
env_file=$here/compose/.env
mkdir -p "$secrets_dir"
[[ -e $env_file ]] || {
    echo "# Written by deploy/make-secrets.sh: the compose stack's passwords (same as k8s local)."
    echo "COMPOSE_PROJECT_NAME=gf-svc"
} >"$env_file"
env_value() { sed -n "s/^$1=//p" "$env_file" | tail -n 1; }
for n in "${names[@]}"; do
    f=$secrets_dir/$n.password
    v=${var[$n]}
    if [[ ! -s $f ]]; then
        # A password compose already uses (an older .env) is the one to keep.
        old=$(env_value "$v")
        if [[ -n $old ]]; then printf '%s' "$old"; else random_password | tr -d '\n'; fi >"$f"
        echo "wrote $f"
    fi
    if [[ -z $(env_value "$v") ]]; then
        printf '%s=%s\n' "$v" "$(cat "$f")" >>"$env_file"
        echo "added $v to $env_file"
    fi
done

# Certificates from one private CA per deployment (scripts/pki.sh keeps what is still valid):
# gRPC's mutual TLS (gxp, backend: pki.sh's default names), and the servers' certificates of
# PostgreSQL and RabbitMQ for the names the services connect to (compose service names,
# Kubernetes Services short and qualified).
server_names() { # NAME: the SANs of a server
    printf '%s,%s.%s,%s.%s.svc,%s.%s.svc.cluster.local,localhost,127.0.0.1' \
        "$1" "$1" "$k8s_ns" "$1" "$k8s_ns" "$1" "$k8s_ns"
}
servers=()
for s in backend-db gxp-db eventlog-db rabbitmq; do
    servers+=("$s:$(server_names "$s")")
done
for dir in "$secrets_dir/tls" "$here/compose/tls"; do
    bash "$pki" "$dir"
    bash "$pki" "$dir" "${servers[@]}"
done

# The access tokens' Ed25519 key pair (openssl's keys load as gf-keygen's do).
for dir in "$secrets_dir/auth" "$here/compose/auth"; do
    mkdir -p "$dir/keys"
    if [[ ! -s $dir/signing.key.pem ]]; then
        openssl genpkey -algorithm ed25519 -out "$dir/signing.key.pem.tmp"
        mv "$dir/signing.key.pem.tmp" "$dir/signing.key.pem"
        rm -f "$dir/keys/token.pem"
        echo "wrote $dir/signing.key.pem"
    fi
    if [[ ! -s $dir/keys/token.pem ]]; then
        openssl pkey -in "$dir/signing.key.pem" -pubout -out "$dir/keys/token.pem"
        echo "wrote $dir/keys/token.pem"
    fi
done

# Compose mounts host files as they are, and the containers run as uid 10001 (the services) or
# 999 (PostgreSQL, RabbitMQ): their certificates and keys are readable by all, in directories
# (0700) only their owner can enter. The CA's key stays owner-only (no container needs it).
chmod 0700 "$here/compose/tls" "$here/compose/auth"
chmod 0644 "$here"/compose/tls/ca.crt "$here"/compose/tls/{gxp,backend,backend-db,gxp-db,eventlog-db,rabbitmq}.{crt,key}
chmod 0755 "$here/compose/auth/keys"
chmod 0644 "$here/compose/auth/signing.key.pem" "$here/compose/auth/keys/token.pem"
echo "secrets are in place; nothing in them is committed"
