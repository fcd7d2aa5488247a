# gf-rabbitmq: RabbitMQ 3.10 from Debian bookworm, the services' broker (compose and Kubernetes).
# Build from the repository root (the context):  docker build -f deploy/docker/rabbitmq.Dockerfile -t gf-rabbitmq .
#
# Built here rather than pulled (rabbitmq:3.13), so the image that is tested is the one that is
# deployed. It answers to what compose and deploy/k8s/base/rabbitmq.yaml use of the official
# image: RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS (the user made on first boot),
# RABBITMQ_NODENAME, the data in /var/lib/rabbitmq, rabbitmq-diagnostics for the probes, uid 999.
# Nothing is compiled, so there is no build stage. rabbitmq-entrypoint.sh writes the node's
# configuration at every start: the services' users (GF_RABBITMQ_BACKEND_PASSWORD,
# GF_RABBITMQ_GXP_PASSWORD, GF_RABBITMQ_EVENTLOG_PASSWORD; every other user, guest included,
# deleted) and AMQP over TLS only (GF_RABBITMQ_TLS_CERT/_KEY/_CA, amqps on 5671). Without
# those variables RabbitMQ 3.10 reads RABBITMQ_DEFAULT_USER / _PASS itself, as before.

FROM debian:bookworm-slim
# uid/gid 999 before the package creates the user: the Kubernetes pod runs as 999 (runAsUser,
# fsGroup), as it did with the official image, and the data volume must stay readable by it.
# The package's postinst writes an Erlang cookie at install: dropped, or every volume would share
# the one in this layer; the node writes a random one into its volume on first boot.
RUN groupadd --system --gid 999 rabbitmq \
 && useradd --system --uid 999 --gid rabbitmq --home-dir /var/lib/rabbitmq --shell /usr/sbin/nologin rabbitmq \
 && apt-get update \
 && apt-get install -y --no-install-recommends rabbitmq-server \
 && rm -rf /var/lib/apt/lists/* \
 && rm -f /var/lib/rabbitmq/.erlang.cookie \
 && install -d -o rabbitmq -g rabbitmq -m 0700 /run/gf-rabbitmq
COPY scripts/broker-users.sh /usr/local/lib/gf/broker-users.sh
COPY deploy/docker/rabbitmq-entrypoint.sh /usr/local/bin/rabbitmq-entrypoint.sh
# /usr/lib/rabbitmq/bin first: Debian's wrappers in /usr/sbin send the server's output to files
# in /var/log/rabbitmq. Logs go to stdout ("-"), as in the official image. HOME holds the Erlang
# cookie the server makes on first boot and the CLI tools (rabbitmq-diagnostics, rabbitmqctl)
# read: set explicitly for a runtime that starts the container as a uid without a passwd entry.
ENV RABBITMQ_LOGS=- \
    HOME=/var/lib/rabbitmq \
    PATH=/usr/lib/rabbitmq/bin:$PATH
VOLUME /var/lib/rabbitmq
USER 999:999
# 5671: AMQP over TLS (with GF_RABBITMQ_TLS_*); 5672: plain AMQP (without). Not 4369 (epmd) nor
# 25672 (Erlang distribution): a single node, no peers.
EXPOSE 5671 5672
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=10 \
  CMD ["rabbitmq-diagnostics", "-q", "ping"]
# The entrypoint passes docker's SIGTERM on to the server script, which turns it into a clean stop.
ENTRYPOINT ["/usr/local/bin/rabbitmq-entrypoint.sh"]
CMD ["rabbitmq-server"]
