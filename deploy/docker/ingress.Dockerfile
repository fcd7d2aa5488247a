# gf-ingress: nginx 1.22 from Debian bookworm with deploy/nginx/ingress.conf, compose's ingress,
# and the operator console's files (/console/). Build from the repository root (the context),
# after the console's files:
#   scripts/console-build.sh deploy/docker/console-dist
#   docker build -f deploy/docker/ingress.Dockerfile -t gf-ingress .
# (scripts/compose.sh up does both.)
#
# Built here rather than pulled (nginx:1.28-bookworm), so the image that is tested is the one
# that is deployed; ingress.conf is written for Debian's 1.22 (it says how it follows the
# services without "resolve"). In Kubernetes ingress-nginx routes (deploy/k8s/base/ingress.yaml)
# and this image runs only as the console's pod, with a configuration of its own
# (deploy/k8s/base/console.yaml). Nothing is compiled, so there is no build stage.

FROM debian:bookworm-slim
# Debian's nginx.conf as is, but for a non-root master: no "user" (only root can switch), the pid
# file in a directory of ours, and the temporary paths (compiled in: /var/lib/nginx/*) ours.
# The logs go to the container's stdout and stderr, as in the official image: ingress.conf's
# access_log /var/log/nginx/access.log and nginx.conf's error_log are links to them. Debian's
# default site (port 80, which a non-root process cannot bind) goes.
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 gf \
 && useradd --system --uid 10001 --gid gf --no-create-home --shell /usr/sbin/nologin gf \
 && rm -f /etc/nginx/sites-enabled/default /etc/nginx/sites-available/default \
 && sed -i -e '/^user /d' -e 's|^pid .*|pid /run/nginx/nginx.pid;|' /etc/nginx/nginx.conf \
 && grep -qx 'pid /run/nginx/nginx.pid;' /etc/nginx/nginx.conf \
 && install -d -o gf -g gf -m 0755 /run/nginx \
 && install -d -o gf -g gf -m 0700 /var/lib/nginx \
 && ln -sf /dev/stdout /var/log/nginx/access.log \
 && ln -sf /dev/stderr /var/log/nginx/error.log
COPY deploy/nginx/ingress.conf /etc/nginx/conf.d/default.conf
# The console's files, built on the host (a docker build reaches no npm registry: uPlot comes
# from npm ci there, pinned by console/package-lock.json; its licence goes with it). Each file is
# named, so a build made without them fails here rather than serving a broken console. Owned by
# root, read by nginx.
COPY deploy/docker/console-dist/index.html deploy/docker/console-dist/app.js deploy/docker/console-dist/style.css /usr/share/gf-console/
COPY deploy/docker/console-dist/vendor/uPlot.iife.min.js deploy/docker/console-dist/vendor/uPlot.min.css deploy/docker/console-dist/vendor/uPlot.LICENSE /usr/share/gf-console/vendor/
USER 10001:10001
# A configuration nginx refuses fails the build, not the deployment. As gf: run as root, nginx -t
# would leave the pid file and the temporary directories to root and nobody.
RUN nginx -t -q
# 30080: every route, /console/ and /healthz (answered by nginx itself).
EXPOSE 30080
# SIGQUIT: nginx's graceful stop (requests in flight finish), as in the official image.
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:30080/healthz"]
ENTRYPOINT ["nginx", "-g", "daemon off;"]
