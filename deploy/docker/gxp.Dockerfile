# gxp: the GXP points ledger, the two-phase-commit participant (gRPC).
# Build from the repository root (the context):  docker build -f deploy/docker/gxp.Dockerfile -t gf-gxp .
#
# Stage 1 compiles on Debian bookworm with the -dev packages; stage 2 is bookworm-slim with only
# the shared libraries the program links (tests/deploy checks the list against readelf).
# Stage 1 is the same in the Dockerfiles of backend, gxp, eventlog and gf, to the byte, and
# builds all four programs: Docker compiles once and the other images take it from its cache
# (tests/deploy checks that the four stay the same).

FROM debian:bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libgrpc-dev protobuf-c-compiler libprotobuf-c-dev \
      libpq-dev libmicrohttpd-dev libjansson-dev uuid-dev librabbitmq-dev libcurl4-openssl-dev \
      libssl-dev libsodium-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake cmake
COPY proto proto
COPY sql sql
COPY lib lib
COPY gxp gxp
COPY backend backend
COPY eventlog eventlog
COPY cli cli
COPY bench bench
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGF_TESTS=OFF \
 && cmake --build build --target backend gxp eventlog gf-cli -j"$(nproc)" \
 && strip --strip-debug build/bin/backend build/bin/gxp build/bin/eventlog build/bin/gf

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgrpc29 libjansson4 libmicrohttpd12 libpq5 libprotobuf-c1 librabbitmq4 libuuid1 libssl3 libsodium23 curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin gf
COPY --from=build /src/build/bin/gxp /usr/local/bin/gxp
USER 10001:10001
# 30002: gRPC (package gxp, service Gxp); 30003: HTTP /healthz, /readyz, /metrics.
EXPOSE 30002 30003
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:30003/healthz"]
ENTRYPOINT ["/usr/local/bin/gxp"]
