#!/usr/bin/env bash
# Writes random passwords for the containerized deployments, once:
#   deploy/compose/.env                          (docker compose reads it)
#   deploy/k8s/overlays/local/secrets/*.password (the local overlay's secretGenerator reads them)
# Both are git-ignored. Existing passwords are kept: PostgreSQL and RabbitMQ set theirs only when
# their volume is first initialized, so a new password would lock the services out of old data.
set -euo pipefail
umask 077
here=$(cd "$(dirname "$0")" && pwd)
names=(backend-db gxp-db eventlog-db rabbitmq)

random_password() { head -c 18 /dev/urandom | base64 | tr '+/' 'xy'; }

secrets_dir=$here/k8s/overlays/local/secrets
mkdir -p "$secrets_dir"
for n in "${names[@]}"; do
    f=$secrets_dir/$n.password
    [[ -s $f ]] || { random_password | tr -d '\n' >"$f"; echo "wrote $f"; }
done

env_file=$here/compose/.env
if [[ ! -s $env_file ]]; then
    {
        echo "# Written by deploy/make-secrets.sh: the compose stack's passwords (same as k8s local)."
        echo "COMPOSE_PROJECT_NAME=gf-svc"
        for n in "${names[@]}"; do
            var=$(echo "${n//-/_}_PASSWORD" | tr '[:lower:]' '[:upper:]')
            printf '%s=%s\n' "$var" "$(cat "$secrets_dir/$n.password")"
        done
    } >"$env_file"
    echo "wrote $env_file"
fi
echo "passwords are in place; nothing in them is committed"
