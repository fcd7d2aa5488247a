# gf-postgres: PostgreSQL 15 from Debian bookworm, for the three databases (compose and Kubernetes).
# Build from the repository root (the context):  docker build -f deploy/docker/postgres.Dockerfile -t gf-postgres .
#
# Built here rather than pulled (postgres:15-bookworm), so the image that is tested is the one
# that is deployed. It answers to what compose and deploy/k8s/base/postgres.yaml use of the
# official image: POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB and PGDATA (also a subdirectory
# of the volume), `postgres -c ...` or bare `-c ...` arguments, pg_isready on PATH, uid 999.
# The first start on an empty PGDATA runs initdb; every start applies the services' roles
# (GF_PG_CLUSTER, GF_PG_<ROLE>_PASSWORD) and TLS (GF_PG_TLS_CERT/_KEY): postgres-entrypoint.sh
# says how. Nothing is compiled, so there is no build stage.

FROM debian:bookworm-slim
# uid/gid 999 before the packages create the user: the Kubernetes pods run as 999 (runAsUser,
# fsGroup), as they did with the official image. postgresql-common would otherwise create a
# "main" cluster in /var/lib/postgresql/15 at install: off before postgresql-15 comes in.
RUN groupadd --system --gid 999 postgres \
 && useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql --shell /bin/bash postgres \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-common \
 && sed -ri 's/^#?\s*(create_main_cluster)\s*=.*$/\1 = false/' /etc/postgresql-common/createcluster.conf \
 && grep -qx 'create_main_cluster = false' /etc/postgresql-common/createcluster.conf \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && test ! -e /var/lib/postgresql/15/main \
 && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data \
 && install -d -o postgres -g postgres -m 3777 /var/run/postgresql
COPY deploy/docker/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
# The services' least-privilege roles, applied by the entrypoint at every start (GF_PG_CLUSTER).
COPY sql/roles/roles.sql /usr/local/share/gf/roles.sql
# The server's own binaries first: psql and pg_isready without Debian's Perl wrapper.
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
# Owned by postgres in the image, so a new named volume starts owned by postgres too.
VOLUME /var/lib/postgresql/data
USER 999:999
EXPOSE 5432
# SIGINT is PostgreSQL's fast shutdown (SIGTERM is "smart": it waits for every client to leave,
# and the services keep pooled connections open): docker stop returns in about a second.
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=10 \
  CMD ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
CMD ["postgres"]
