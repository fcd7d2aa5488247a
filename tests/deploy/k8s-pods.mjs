// The Kubernetes manifests' containers as `docker run` would run them, for the container test
// (tests/containers/compose_test.sh): no cluster can run here, but the images the manifests
// name, with the manifests' args, env, user, read-only root, capabilities and memory limit,
// can — and then the manifests' own probes say whether that is a working container.
//
//   node tests/deploy/k8s-pods.mjs deploy/k8s/base    prints bash assignments:
//     POD_NAMES+=(name)  POD_IMAGE[name]=image  POD_ARGS[name]='docker run arguments'
//     POD_PROBES[name]='kind|window_s|http:port:path ...' (or exec:cmd,arg,...)
// Secret values are left as ${SECRET[secret-name]} for the caller's associative array.
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node k8s-pods.mjs DIR (the kustomize base)");
  process.exit(2);
}
const docs = fs.readdirSync(dir).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")
  .flatMap((f) => YAML.parseAllDocuments(fs.readFileSync(path.join(dir, f), "utf8")).map((d) => d.toJS()))
  .filter((o) => o && (o.kind === "Deployment" || o.kind === "StatefulSet"));

// Single-quoted for bash; ${SECRET[...]} must stay expandable, so it is spliced outside quotes.
const q = (s) => `'${String(s).replaceAll("'", `'\\''`)}'`;
const bytes = (v) => {
  const m = /^(\d+)(Ki|Mi|Gi|k|M|G)?$/.exec(String(v));
  if (!m) throw new Error(`memory limit ${v}`);
  const mult = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, k: 1e3, M: 1e6, G: 1e9 }[m[2]] || 1;
  return Number(m[1]) * mult;
};

const out = [];
for (const w of docs) {
  const spec = w.spec.template.spec;
  const podSec = spec.securityContext || {};
  for (const c of spec.containers) {
    const name = spec.containers.length > 1 ? `${w.metadata.name}-${c.name}` : w.metadata.name;
    const sec = c.securityContext || {};
    // A pod's host name is its name: a StatefulSet's first pod is <name>-0 (RabbitMQ's node
    // name is built from it), a Deployment's has a random suffix.
    const args = ["--hostname", q(w.kind === "StatefulSet" ? `${w.metadata.name}-0` : `${w.metadata.name}-pod`)];
    const user = sec.runAsUser ?? podSec.runAsUser;
    const group = sec.runAsGroup ?? podSec.runAsGroup;
    if (user !== undefined) args.push("--user", q(group !== undefined ? `${user}:${group}` : user));
    if (sec.readOnlyRootFilesystem) args.push("--read-only");
    if (sec.allowPrivilegeEscalation === false) args.push("--security-opt", "no-new-privileges");
    for (const cap of sec.capabilities?.drop || []) args.push("--cap-drop", q(cap));
    const lim = c.resources?.limits || {};
    if (lim.memory) args.push("--memory", String(bytes(lim.memory)));
    if (lim.cpu) args.push("--cpus", q(String(lim.cpu).endsWith("m") ? parseInt(lim.cpu, 10) / 1000 : lim.cpu));
    // Volumes (claims, emptyDirs) become anonymous volumes, which start with the image's
    // content and ownership at that path.
    for (const m of c.volumeMounts || []) args.push("--mount", q(`type=volume,dst=${m.mountPath}`));
    for (const e of c.env || []) {
      if (e.value !== undefined) args.push("-e", q(`${e.name}=${e.value}`));
      else if (e.valueFrom?.secretKeyRef) args.push("-e", `${q(`${e.name}=`)}"\${SECRET[${e.valueFrom.secretKeyRef.name}]}"`);
      else throw new Error(`${name}: env ${e.name} has neither a value nor a secretKeyRef`);
    }
    if (c.command) args.push("--entrypoint", q(c.command[0]));
    args.push(q(c.image));
    if (c.command) args.push(...c.command.slice(1).map(q));
    if (c.args) args.push(...c.args.map(q));

    const ports = new Map((c.ports || []).map((p) => [p.name, p.containerPort]));
    const probes = [];
    for (const kind of ["startupProbe", "readinessProbe", "livenessProbe"]) {
      const p = c[kind];
      if (!p) continue;
      // How long Kubernetes would wait before giving up on the container: at least a minute
      // here, for a busy two-core machine.
      const window = Math.max(60, (p.initialDelaySeconds || 0) + (p.periodSeconds || 10) * (p.failureThreshold || 3));
      let how;
      if (p.httpGet) {
        const port = typeof p.httpGet.port === "number" ? p.httpGet.port : ports.get(p.httpGet.port);
        if (!port) throw new Error(`${name}: ${kind} names port ${p.httpGet.port}, which the container does not declare`);
        how = `http:${port}:${p.httpGet.path}`;
      } else if (p.exec) {
        if (p.exec.command.some((a) => /[ |,]/.test(a))) throw new Error(`${name}: ${kind}'s command has a space, | or ,`);
        how = `exec:${p.exec.command.join(",")}`;
      } else if (p.tcpSocket) {
        throw new Error(`${name}: ${kind} is a tcpSocket probe, which this test does not run`);
      }
      probes.push(`${kind.replace("Probe", "")}|${window}|${how}`);
    }
    out.push(`POD_NAMES+=(${q(name)})`);
    out.push(`POD_IMAGE[${q(name)}]=${q(c.image)}`);
    out.push(`POD_ARGS[${q(name)}]=${q(args.join(" "))}`);
    out.push(`POD_PROBES[${q(name)}]=${q(probes.join(" "))}`);
  }
}
console.log(out.join("\n"));
