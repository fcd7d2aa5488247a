#!/usr/bin/env bash
# gf-rabbitmq's entrypoint: the services' users and the TLS listener, then the server.
#
#   rabbitmq-server      (the default) the node, configured as below
#   anything else        run as is (rabbitmqctl, rabbitmq-diagnostics, bash)
#
# Every start writes the node's rabbitmq.conf (outside the data volume) from:
#   GF_RABBITMQ_TLS_CERT, GF_RABBITMQ_TLS_KEY (PEM files; GF_RABBITMQ_TLS_CA optional)
#       AMQP only over TLS: the listener amqps on 5671, no plain listener at all.
#   GF_RABBITMQ_BACKEND_PASSWORD, GF_RABBITMQ_GXP_PASSWORD, GF_RABBITMQ_EVENTLOG_PASSWORD
#       the services' users (scripts/broker-users.sh: one user per service, each allowed what
#       its code does on vhost /, eventlog's queues declared), loaded at boot
#       (load_definitions; a password that changed is changed). Once the node is up, every
#       other user is deleted: guest, and the administrator "gf" that RABBITMQ_DEFAULT_USER
#       made in a volume from before. If that fails, the node is stopped (and restarted by
#       its supervisor) rather than left with them.
# Without any of these, the node runs as Debian configures it (RABBITMQ_DEFAULT_USER/_PASS).
set -euo pipefail

if [ $# -gt 0 ] && [ "$1" != rabbitmq-server ]; then
    exec "$@"
fi
RUN_DIR=${GF_RABBITMQ_RUN_DIR:-/run/gf-rabbitmq}
BROKER_USERS=${GF_BROKER_USERS:-/usr/local/lib/gf/broker-users.sh}
USERS=(backend gxp eventlog)
say() { echo "rabbitmq-entrypoint: $*" >&2; }

mkdir -p "$RUN_DIR"
chmod 0700 "$RUN_DIR"
conf=$RUN_DIR/rabbitmq.conf
defs=$RUN_DIR/definitions.json
rm -f "$defs"

tls=no
if [ -n "${GF_RABBITMQ_TLS_CERT:-}" ] || [ -n "${GF_RABBITMQ_TLS_KEY:-}" ]; then
    for f in "${GF_RABBITMQ_TLS_CERT:-}" "${GF_RABBITMQ_TLS_KEY:-}" ${GF_RABBITMQ_TLS_CA:+"$GF_RABBITMQ_TLS_CA"}; do
        [ -r "$f" ] || { say "GF_RABBITMQ_TLS_CERT/_KEY/_CA: '$f' is not a readable file"; exit 1; }
    done
    tls=yes
fi

users=no
set_pw=0
for u in "${USERS[@]}"; do
    var=GF_RABBITMQ_${u^^}_PASSWORD
    [ -n "${!var:-}" ] && set_pw=$((set_pw + 1))
done
if [ "$set_pw" -gt 0 ]; then
    [ "$set_pw" = "${#USERS[@]}" ] || { say "set GF_RABBITMQ_BACKEND_PASSWORD, _GXP_PASSWORD and _EVENTLOG_PASSWORD together"; exit 1; }
    # broker-users.sh reads the passwords from files: a private directory, removed at once.
    secrets=$(umask 077 && mktemp -d "$RUN_DIR/secrets.XXXXXX")
    for u in "${USERS[@]}"; do
        var=GF_RABBITMQ_${u^^}_PASSWORD
        (umask 077 && printf '%s' "${!var}" >"$secrets/amqp-$u.password")
    done
    (umask 077 && bash "$BROKER_USERS" / "$secrets" >"$defs") || { rm -rf "$secrets"; say "broker-users.sh failed"; exit 1; }
    rm -rf "$secrets"
    users=yes
fi

if [ "$tls" = yes ] || [ "$users" = yes ]; then
    {
        echo "# Written by rabbitmq-entrypoint.sh at every start."
        if [ "$tls" = yes ]; then
            echo "listeners.tcp = none"
            echo "listeners.ssl.default = 5671"
            echo "ssl_options.certfile = $GF_RABBITMQ_TLS_CERT"
            echo "ssl_options.keyfile = $GF_RABBITMQ_TLS_KEY"
            [ -z "${GF_RABBITMQ_TLS_CA:-}" ] || echo "ssl_options.cacertfile = $GF_RABBITMQ_TLS_CA"
            # Clients show no certificate: they log in with their user's password.
            echo "ssl_options.verify = verify_none"
            echo "ssl_options.fail_if_no_peer_cert = false"
        fi
        if [ "$users" = yes ]; then
            echo "load_definitions = $defs"
        fi
    } >"$conf"
    export RABBITMQ_CONFIG_FILE=$conf
fi
say "starting the node (TLS only: $tls, the services' users: $users)"

rabbitmq-server &
server=$!
trap 'kill -TERM "$server" 2>/dev/null || true' TERM INT

# Once the node is up: every user but the services' goes.
if [ "$users" = yes ]; then
    (
        # await_startup fails at once while the Erlang node itself is not up yet.
        until rabbitmqctl -q await_startup >/dev/null 2>&1; do
            kill -0 "$server" 2>/dev/null || exit 0 # the server's own exit says why
            sleep 2
        done
        rm -f "$defs"
        list=$(rabbitmqctl -q list_users --no-table-headers 2>/dev/null) || {
            say "list_users failed: stopping the node"
            kill -TERM "$server"
            exit 1
        }
        while read -r name _; do
            [ -n "$name" ] || continue
            case " ${USERS[*]} " in *" $name "*) continue ;; esac
            if rabbitmqctl -q delete_user "$name" >/dev/null 2>&1; then
                say "deleted user $name (only the services' users log in)"
            else
                say "could not delete user $name: stopping the node"
                kill -TERM "$server"
                exit 1
            fi
        done <<<"$list"
        say "users: ${USERS[*]}"
    ) &
fi

# A trapped signal interrupts wait: wait again until the server is gone, for its status.
rc=0
wait "$server" || rc=$?
while kill -0 "$server" 2>/dev/null; do
    rc=0
    wait "$server" || rc=$?
done
exit "$rc"
