#!/usr/bin/env bash
# The RabbitMQ users of the services (issue 18), as a definitions document for
# `rabbitmqctl import_definitions` (scripts/stack.sh, the roles test) or for the broker to load
# at boot (the gf-rabbitmq image's entrypoint): one user per service, each allowed exactly what
# its code does in VHOST, and the services' durable queues declared beforehand.
#
#   broker-users.sh VHOST SECRETS_DIR > definitions.json
#
# Passwords come from SECRETS_DIR/amqp-backend.password, amqp-gxp.password and
# amqp-eventlog.password; the document holds only their salted SHA-256 hashes (RabbitMQ's
# rabbit_password_hashing_sha256). guest is not in it: whoever imports it deletes guest.
#
# What each service does (lib/src/amqp.c, lib/src/events_log.c, backend/relay.c,
# eventlog/consumer.c), and so may do; configure = declare, write = publish to an exchange or
# bind a queue, read = consume a queue or bind to an exchange:
#   backend   the relay declares topic_exchange, topic_exchange.watchers and eventlog's queues
#             (eventlog.events, eventlog.events.dead; bound to topic_exchange) and publishes to
#             both exchanges; its event-log watcher declares backend.events.log, binds it to the
#             watchers' exchange (and unbinds it from topic_exchange) and consumes it. It may not
#             consume eventlog.events.
#             For the console (issue 17) it declares and publishes to gf.console (its notes),
#             and declares, binds to gf.console and consumes its own backend.console.<replica>.
#   gxp       the event-log watcher: gxp.events.log as above; and the console's notes: it
#             declares gf.console and publishes there. It may publish nowhere else.
#   eventlog  declares topic_exchange, eventlog.events and eventlog.events.dead, binds
#             eventlog.events to topic_exchange and consumes it; declares gf.console and
#             publishes its console notes there. It may publish nowhere else.
# Declaring a NEW queue with a dead-letter exchange also needs read on the queue and write on the
# default exchange (amq.default, i.e. publishing to any queue by name): eventlog.events is
# declared here instead, so neither backend nor eventlog needs those rights.
set -euo pipefail

die() {
    printf 'broker-users: %s\n' "$*" >&2
    exit 1
}

(($# == 2)) || die "usage: ${0##*/} VHOST SECRETS_DIR"
VHOST=$1
SECRETS=$2

hex_to_bytes() {
    local i esc=''
    for ((i = 0; i < ${#1}; i += 2)); do esc+="\\x${1:i:2}"; done
    printf '%b' "$esc"
}

# base64(salt ++ sha256(salt ++ password)), salt 4 random bytes.
password_hash() {
    local salt digest
    salt=$(head -c 4 /dev/urandom | od -An -v -tx1 | tr -d ' \n')
    digest=$({
        hex_to_bytes "$salt"
        cat "$1"
    } | sha256sum | cut -c1-64)
    hex_to_bytes "$salt$digest" | base64 -w0
}

json_string() { # no control characters, quotes or backslashes in our names and regexes but \.
    printf '"%s"' "${1//\\/\\\\}"
}

user() { # NAME CONFIGURE WRITE READ
    local f=$SECRETS/amqp-$1.password
    [[ -s $f ]] || die "$f is missing or empty"
    USERS+=("{\"name\": $(json_string "$1"), \"password_hash\": \"$(password_hash "$f")\", \"hashing_algorithm\": \"rabbit_password_hashing_sha256\", \"tags\": \"\"}")
    PERMS+=("{\"user\": $(json_string "$1"), \"vhost\": $(json_string "$VHOST"), \"configure\": $(json_string "$2"), \"write\": $(json_string "$3"), \"read\": $(json_string "$4")}")
}

USERS=() PERMS=()
user backend \
    '^(topic_exchange|topic_exchange\.watchers|eventlog\.events|eventlog\.events\.dead|backend\.events\.log|gf\.console|backend\.console\..+)$' \
    '^(topic_exchange|topic_exchange\.watchers|eventlog\.events|backend\.events\.log|gf\.console|backend\.console\..+)$' \
    '^(topic_exchange|topic_exchange\.watchers|backend\.events\.log|gf\.console|backend\.console\..+)$'
user gxp \
    '^(topic_exchange|topic_exchange\.watchers|gxp\.events\.log|gf\.console)$' \
    '^(gxp\.events\.log|gf\.console)$' \
    '^(topic_exchange|topic_exchange\.watchers|gxp\.events\.log)$'
user eventlog \
    '^(topic_exchange|eventlog\.events|eventlog\.events\.dead|gf\.console)$' \
    '^(eventlog\.events|gf\.console)$' \
    '^(topic_exchange|eventlog\.events)$'

v=$(json_string "$VHOST")
join() {
    local IFS=,
    printf '%s' "$*"
}
cat <<JSON
{"vhosts": [{"name": $v}],
 "users": [$(join "${USERS[@]}")],
 "permissions": [$(join "${PERMS[@]}")],
 "exchanges": [
  {"name": "topic_exchange", "vhost": $v, "type": "topic", "durable": true, "auto_delete": false, "internal": false, "arguments": {}},
  {"name": "topic_exchange.watchers", "vhost": $v, "type": "topic", "durable": true, "auto_delete": false, "internal": false, "arguments": {}},
  {"name": "gf.console", "vhost": $v, "type": "topic", "durable": true, "auto_delete": false, "internal": false, "arguments": {}}],
 "queues": [
  {"name": "eventlog.events.dead", "vhost": $v, "durable": true, "auto_delete": false, "arguments": {}},
  {"name": "eventlog.events", "vhost": $v, "durable": true, "auto_delete": false,
   "arguments": {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "eventlog.events.dead"}}]}
JSON
