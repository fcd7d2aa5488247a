// Proves that check.mjs's cross-reference checks can fail: each case copies the deployment files
// into a scratch repository, breaks one thing the way a hurried edit would, runs check.mjs on the
// copy and expects exactly the check that guards that thing to fail.
//
//   node tests/deploy/mutations.mjs      (env as check.mjs: GF_BIN_DIR, GF_TEST_TMP; GF_MUTATION)
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SRC = process.env.GF_SOURCE_DIR || path.resolve(HERE, "../..");
const COPY = ["deploy", "skaffold.yaml", "scripts/stack.sh", "scripts/compose.sh", "scripts/pki.sh", ".gitignore", ".dockerignore"];

const B = "deploy/k8s/base";
const CASES = [
  { name: "a Service targets a port its pods do not expose", section: "k8s", file: `${B}/eventlog.yaml`,
    find: "      port: 30070\n      targetPort: http", replace: "      port: 30070\n      targetPort: metrics",
    expect: "every port a Service targets is one its pods' containers expose" },
  { name: "a Service selector matches no pod", section: "k8s", file: `${B}/gxp.yaml`,
    find: "  clusterIP: None\n  selector:\n    app.kubernetes.io/name: gxp-svc", replace: "  clusterIP: None\n  selector:\n    app.kubernetes.io/name: gxp",
    expect: "every Service selects the pods of some workload" },
  { name: "a manifest sets a variable the program does not read", section: "k8s", file: `${B}/eventlog.yaml`,
    find: "            - name: EVENTLOG_HTTP_ADDR", replace: "            - name: EVENTLOG_HTTP_PORT\n              value: \"30070\"\n            - name: EVENTLOG_HTTP_ADDR",
    expect: "every env var set on a service is one the program reads" },
  { name: "a manifest sets a value the program refuses", section: "k8s", file: `${B}/gxp.yaml`,
    find: "value: \"30000\"", replace: "value: \"30 s\"",
    expect: "every service accepts its configuration (--check-config)" },
  { name: "a password written into a manifest", section: "k8s", file: `${B}/eventlog.yaml`,
    find: "            - name: EVENTLOG_AMQP_PASSWORD\n              valueFrom:\n                secretKeyRef:\n                  name: rabbitmq-credentials\n                  key: eventlog",
    replace: "            - name: EVENTLOG_AMQP_PASSWORD\n              value: guest",
    expect: "no credential is written in a manifest" },
  { name: "a secretKeyRef to a key the Secret lacks", section: "k8s", file: `${B}/eventlog.yaml`,
    find: "name: eventlog-db-credentials\n                  key: eventlog\n            - name: EVENTLOG_AMQP_URL", replace: "name: eventlog-db-credentials\n                  key: pass\n            - name: EVENTLOG_AMQP_URL",
    expect: "every secretKeyRef names a Secret that exists with that key" },
  { name: "a database opened to another service", section: "k8s", file: `${B}/networkpolicies.yaml`,
    find: "# gxp-db: gxp only.", replace: "# gxp-db: gxp only.", extra: (t) => t.replace(/(name: gxp-db[\s\S]*?app.kubernetes.io\/component: )gxp/, "$1backend"),
    expect: "each database accepts only its own service" },
  { name: "an Ingress route sent to the wrong backend", section: "k8s", file: `${B}/ingress.yaml`,
    find: "          - path: /item\n            pathType: Prefix\n            backend:\n              service:\n                name: backend-svc-2",
    replace: "          - path: /item\n            pathType: Prefix\n            backend:\n              service:\n                name: backend-svc-1",
    expect: "the Ingress has the original's routes" },
  { name: "an unknown field (typo) in a manifest", section: "k8s", file: `${B}/eventlog.yaml`,
    find: "          readinessProbe:", replace: "          readinessprobe:",
    expect: "validates against the Kubernetes API schemas" },
  { name: "a gRPC client pointed at a ClusterIP Service", section: "k8s", file: `${B}/backend.yaml`,
    find: "value: dns:///gxp-svc:30002", replace: "value: dns:///eventlog-svc:30070", all: true,
    expect: "gRPC clients resolve headless Services" },
  { name: "the backend replicas drift apart", section: "k8s", file: `${B}/backend.yaml`,
    find: "              value: \"24\"", replace: "              value: \"25\"",
    expect: "backend-svc-1 and backend-svc-2 differ only in their names" },
  { name: "skaffold builds an image from a Dockerfile that does not exist", section: "k8s", file: "skaffold.yaml",
    find: "dockerfile: deploy/docker/gxp.Dockerfile", replace: "dockerfile: deploy/docker/gxp-svc.Dockerfile",
    expect: "every image skaffold builds has its Dockerfile" },
  { name: "compose gives a service a port Kubernetes does not", section: "compose", file: "deploy/compose/docker-compose.yml",
    find: "EVENTLOG_HTTP_ADDR: 0.0.0.0:30070", replace: "EVENTLOG_HTTP_ADDR: 0.0.0.0:30071",
    expect: "compose and Kubernetes give each service the same listen ports" },
  { name: "compose gets a start-order workaround", section: "compose", file: "deploy/compose/docker-compose.yml",
    find: "  eventlog:\n", replace: "  eventlog:\n    depends_on: [eventlog-db]\n",
    expect: "compose has no start-order workarounds" },
  { name: "compose's nginx routes a path elsewhere", section: "compose", file: "deploy/nginx/ingress.conf",
    find: "location /user { set $gf_service backend-svc-2:30080; proxy_pass http://$gf_service; }",
    replace: "location /user { set $gf_service backend-svc-1:30080; proxy_pass http://$gf_service; }",
    expect: "compose's nginx routes are the Ingress's" },
  { name: "compose's nginx resolves a service's name only at start", section: "compose", file: "deploy/nginx/ingress.conf",
    find: "location /eventlog { set $gf_service eventlog:30070; proxy_pass http://$gf_service; }",
    replace: "location /eventlog { proxy_pass http://eventlog:30070; }",
    expect: "compose's nginx resolves the services' names at request time" },
  { name: "the database image runs as another user than its pods", section: "docker", file: "deploy/docker/postgres.Dockerfile",
    find: "USER 999:999\n", replace: "USER 998:998\n",
    expect: "deploy/docker/postgres.Dockerfile: compose, the pods and the image agree" },
  { name: "a directive misspelt in compose's nginx configuration", section: "compose", file: "deploy/nginx/ingress.conf",
    find: "proxy_read_timeout 30s;", replace: "proxy_read_timout 30s;",
    expect: "compose's nginx configuration passes nginx -t" },
  { name: "the local stack loses a route", section: "compose", file: "scripts/stack.sh",
    find: "        location /eventlog { proxy_pass http://eventlog_svc; }\n", replace: "",
    expect: "the local stack's nginx (scripts/stack.sh) routes the same paths" },
  { name: "compose has an unknown key", section: "compose", file: "deploy/compose/docker-compose.yml",
    find: "    image: gf-rabbitmq\n", replace: "    image: gf-rabbitmq\n    restart_policy: always\n",
    expect: "validates against the Compose Specification schema" },
  { name: "a runtime library left out of an image", section: "docker", file: "deploy/docker/eventlog.Dockerfile",
    find: " librabbitmq4 ", replace: " ",
    expect: "the runtime stage installs the package of every library eventlog links" },
  { name: "an image that runs as root", section: "docker", file: "deploy/docker/gxp.Dockerfile",
    find: "USER 10001:10001\n", replace: "",
    expect: "deploy/docker/gxp.Dockerfile: lint" },
  { name: "a source directory the build stage does not copy", section: "build-stage", file: "deploy/docker/gf.Dockerfile",
    find: "COPY cli cli\n", replace: "",
    expect: "the Dockerfiles' build stage builds" },
  { name: "a build stage edited in one Dockerfile only", section: "docker", file: "deploy/docker/eventlog.Dockerfile",
    find: "-DGF_TESTS=OFF", replace: "-DGF_TESTS=OFF -DGF_SANITIZE=OFF",
    expect: "the programs' Dockerfiles share one build stage" },
  { name: "a HEALTHCHECK on a port the image does not expose", section: "docker", file: "deploy/docker/backend.Dockerfile",
    find: "http://127.0.0.1:30080/healthz", replace: "http://127.0.0.1:8080/healthz",
    expect: "EXPOSE, HEALTHCHECK, the program's defaults and the pods' ports agree" },
  { name: "nginx's 404 page loses its correlation id", section: "compose", file: "deploy/nginx/ingress.conf",
    find: `"error":"not_found","correlationId":"$gf_cid"}'`, replace: `"error":"not_found"}'`,
    expect: "the three ingresses answer nginx's own errors alike" },
  { name: "the local stack's nginx lets bodies over the limit through", section: "compose", file: "scripts/stack.sh",
    find: "    client_max_body_size 64k;\n", replace: "    client_max_body_size 1m;\n",
    expect: "enforce the services' 64 KiB body limit" },
  { name: "the Ingress stops handing the correlation id on", section: "compose", file: `${B}/ingress.yaml`,
    find: "      proxy_set_header X-Correlation-Id $gf_cid;\n", replace: "",
    expect: "hand X-Correlation-Id on" },
  // The trust boundary (issue 18).
  { name: "a database connection without TLS", section: "compose", file: "deploy/compose/docker-compose.yml",
    find: "dbname=eventlog user=eventlog sslmode=verify-full", replace: "dbname=eventlog user=eventlog sslmode=prefer",
    expect: "compose's services reach their databases and the broker over verified TLS" },
  { name: "a service logs in to the broker as another service", section: "k8s", file: `${B}/eventlog.yaml`,
    find: "value: amqps://eventlog@rabbitmq:5671/", replace: "value: amqps://backend@rabbitmq:5671/",
    expect: "the services reach their databases and the broker over verified TLS, each as its own role" },
  { name: "the subscription given the backend role's password", section: "k8s", file: `${B}/gxp.yaml`,
    find: "name: backend-db-credentials\n                  key: gxp-replication", replace: "name: backend-db-credentials\n                  key: backend",
    expect: "each service's password is the one its database or broker sets" },
  { name: "the subscription's CA not mounted where gxp-db's server reads it", section: "k8s", file: `${B}/gxp.yaml`,
    find: "user=gxp_replication sslmode=verify-full sslrootcert=/etc/gf/ca/ca.crt", replace: "user=gxp_replication sslmode=verify-full sslrootcert=/etc/gf/grpc-tls/ca.crt",
    expect: "every file a container's env names is a mounted Secret's" },
  { name: "a compose service's CA file not mounted", section: "compose", file: "deploy/compose/docker-compose.yml",
    find: "    secrets: [ca]\n", replace: "",
    expect: "every file a compose service's env names is mounted in it" },
  { name: "the tokens' private key given to eventlog", section: "compose", file: "deploy/compose/docker-compose.yml",
    find: "    secrets: [ca]\n", replace: "    secrets: [ca, auth-signing-key]\n",
    expect: "compose gives the tokens' private key to the backends only" },
  { name: "an Ingress snippet nginx refuses", section: "compose", file: `${B}/ingress.yaml`,
    find: "      set $gf_cid \"\";\n", replace: "      set $gf_cid;\n",
    expect: "the Kubernetes Ingress's nginx snippets pass nginx -t" },
  // The operator console (SPEC §2b): its API on backend-svc-1 fit for server-sent events, its
  // page served by nginx itself with its own headers, its files built wherever nginx serves them.
  { name: "console: the Ingress sends the console's API to another backend", section: "k8s", file: `${B}/ingress.yaml`,
    find: "          - path: /console/api\n            pathType: Prefix\n            backend:\n              service:\n                name: backend-svc-1",
    replace: "          - path: /console/api\n            pathType: Prefix\n            backend:\n              service:\n                name: backend-svc-2",
    expect: "the Ingress has the original's routes" },
  { name: "console: the Ingress loses the console's page", section: "k8s", file: `${B}/ingress.yaml`,
    find: "          - path: /console\n", replace: "          - path: /consoles\n",
    expect: "the Ingress has the original's routes" },
  { name: "console: compose's nginx sends the console's API to another backend", section: "compose", file: "deploy/nginx/ingress.conf",
    find: "location /console/api { set $gf_service backend-svc-1:30080;", replace: "location /console/api { set $gf_service backend-svc-2:30080;",
    expect: "compose's nginx routes are the Ingress's" },
  { name: "console: compose's nginx loses the console's API", section: "compose", file: "deploy/nginx/ingress.conf",
    find: "location /console/api {", replace: "location /console/apis {",
    expect: "compose's nginx routes are the Ingress's" },
  { name: "console: the local stack sends the console's API to another backend", section: "compose", file: "scripts/stack.sh",
    find: "location /console/api { proxy_pass http://backend_svc_1;", replace: "location /console/api { proxy_pass http://backend_svc_2;",
    expect: "the local stack's nginx (scripts/stack.sh) routes the same paths" },
  { name: "console: the local stack serves the page from another directory than the one it builds", section: "compose", file: "scripts/stack.sh",
    find: "            alias $console/;\n", replace: "            alias $STATE_DIR/console/;\n",
    expect: "the local stack's nginx (scripts/stack.sh) routes the same paths" },
  { name: "console: compose buffers the server-sent events", section: "compose", file: "deploy/nginx/ingress.conf",
    find: "proxy_pass http://$gf_service; proxy_buffering off; proxy_cache off;", replace: "proxy_pass http://$gf_service; proxy_cache off;",
    expect: "proxy the console's API fit for server-sent events" },
  { name: "console: the local stack ends the stream after its API's read timeout", section: "compose", file: "scripts/stack.sh",
    find: "proxy_buffering off; proxy_cache off; proxy_read_timeout 1h; }", replace: "proxy_buffering off; proxy_cache off; }",
    expect: "proxy the console's API fit for server-sent events" },
  { name: "console: the Ingress buffers the server-sent events", section: "compose", file: `${B}/ingress.yaml`,
    find: 'nginx.ingress.kubernetes.io/proxy-buffering: "off"', replace: 'nginx.ingress.kubernetes.io/proxy-buffering: "on"',
    expect: "proxy the console's API fit for server-sent events" },
  { name: "console: the console's API Ingress loses the rate limits", section: "compose", file: `${B}/ingress.yaml`,
    find: '    nginx.ingress.kubernetes.io/proxy-http-version: "1.1"\n    nginx.ingress.kubernetes.io/limit-rps: "50"\n', replace: '    nginx.ingress.kubernetes.io/proxy-http-version: "1.1"\n',
    expect: "proxy the console's API fit for server-sent events" },
  { name: "console: compose's page allows inline scripts", section: "compose", file: "deploy/nginx/ingress.conf",
    find: "script-src 'self'; style-src 'self';", replace: "script-src 'self' 'unsafe-inline'; style-src 'self';",
    expect: "serve the console's page themselves" },
  { name: "console: the console's pod drifts from compose's page", section: "compose", file: `${B}/console.yaml`,
    find: "                charset utf-8;\n", replace: "",
    expect: "serve the console's page themselves" },
  { name: "console: the Ingress adds the API's headers to the page", section: "compose", file: `${B}/ingress.yaml`,
    find: "      proxy_hide_header X-Correlation-Id;\n      add_header X-Correlation-Id $gf_cid always;\n", replace: "",
    expect: "serve the console's page themselves" },
  { name: "console: the ingress image misses a console file", section: "compose", file: "deploy/docker/ingress.Dockerfile",
    find: " deploy/docker/console-dist/app.js", replace: "",
    expect: "the console's files reach every nginx that serves them" },
  { name: "console: compose's images built before the console's files", section: "compose", file: "scripts/compose.sh",
    find: "        console_files\n", replace: "",
    expect: "the console's files reach every nginx that serves them" },
  { name: "console: the local stack starts nginx without building the console", section: "compose", file: "scripts/stack.sh",
    find: '    [[ $name == "${NGINX_UNIT:-}" ]] && ensure_console\n', replace: "",
    expect: "the console's files reach every nginx that serves them" },
  { name: "console: the console's pod writes to its root", section: "k8s", file: `${B}/console.yaml`,
    find: "readOnlyRootFilesystem: true", replace: "readOnlyRootFilesystem: false",
    expect: "the console's pod serves its files as compose's ingress does" },
  { name: "console: skaffold builds gf-ingress without the console's files", section: "k8s", file: "skaffold.yaml",
    find: '          - command: ["bash", "scripts/console-build.sh", "deploy/docker/console-dist"]\n', replace: '          - command: ["true"]\n',
    expect: "skaffold builds the console's files" },
];

function run(c, root) {
  fs.rmSync(root, { recursive: true, force: true });
  fs.mkdirSync(root, { recursive: true });
  for (const f of COPY) {
    fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    fs.cpSync(path.join(SRC, f), path.join(root, f), {
      recursive: true, filter: (s) => !/\/secrets($|\/)|\/compose\/\.env$/.test(s),
    });
  }
  execFileSync("git", ["init", "-q", root]);
  const file = path.join(root, c.file);
  let text = fs.readFileSync(file, "utf8");
  if (!text.includes(c.find)) return `the case no longer applies: "${c.find.split("\n")[0]}" is not in ${c.file}`;
  text = c.all ? text.replaceAll(c.find, c.replace) : text.replace(c.find, c.replace);
  if (c.extra) text = c.extra(text);
  fs.writeFileSync(file, text);
  const r = spawnSync(process.execPath, [path.join(HERE, "check.mjs"), c.section],
    { env: { ...process.env, GF_SOURCE_DIR: root }, encoding: "utf8" });
  const failedChecks = r.stdout.split("\n").filter((l) => l.startsWith("not ok - "));
  if (r.status === 0) return "check.mjs passed the broken files";
  if (!failedChecks.some((l) => l.includes(c.expect))) return `expected "${c.expect}" to fail; failed: ${failedChecks.join(" / ") || r.stderr.trim()}`;
  return null;
}

const base = process.env.GF_TEST_TMP || os.tmpdir();
fs.mkdirSync(base, { recursive: true });
const scratch = fs.mkdtempSync(path.join(base, "deploy-mutations-"));
// The cases' check.mjs keep what they compute from unchanged inputs (the secrets, kustomize's
// renders) for the next case, keyed by the hash of those inputs (check.mjs, GF_DEPLOY_CACHE).
process.env.GF_DEPLOY_CACHE = path.join(scratch, "cache");
let bad = 0;
try {
  // GF_MUTATION=<text> runs only the cases whose name contains it.
  for (const [i, c] of CASES.entries()) {
    if (process.env.GF_MUTATION && !c.name.includes(process.env.GF_MUTATION)) continue;
    const problem = run(c, path.join(scratch, String(i)));
    console.log(`${problem ? "not ok" : "ok"} - ${c.name} -> "${c.expect}" fails`);
    if (problem) { bad++; console.log(`    ${problem}`); }
  }
} finally {
  fs.rmSync(scratch, { recursive: true, force: true });
}
const ran = CASES.filter((c) => !process.env.GF_MUTATION || c.name.includes(process.env.GF_MUTATION)).length;
console.log(`mutations: ${ran - bad} caught, ${bad} missed`);
if (ran === 0) process.exit(1);
process.exit(bad ? 1 : 0);
