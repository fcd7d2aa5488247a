// The Kubernetes Ingress as ingress-nginx would serve it, offline: one nginx server with the
// server snippet of gf-ingress, a location per path (with its configuration snippet and
// body limit) proxying to the given upstreams, and the fallback Ingress's "/" location. Enough
// for `nginx -t` and for the e2e test that drives the three ingresses alike
// (tests/e2e/ingress_errors_test.sh); not a copy of ingress-nginx's template.
import fs from "node:fs";
import YAML from "yaml";

// The Ingress objects of a manifest file (several documents).
export function ingresses(file) {
  return YAML.parseAllDocuments(fs.readFileSync(file, "utf8"))
    .map((d) => d.toJS())
    .filter((o) => o && o.kind === "Ingress");
}

const A = "nginx.ingress.kubernetes.io/";

// nginx's size syntax of the proxy-body-size annotation ("64k") in bytes.
export function sizeBytes(v) {
  const m = /^(\d+)([kKmMgG]?)$/.exec(String(v ?? ""));
  if (!m) return NaN;
  return Number(m[1]) * { "": 1, k: 1024, m: 1 << 20, g: 1 << 30 }[m[2].toLowerCase()];
}

// A whole server block. upstreams: Service name -> "host:port".
export function serverBlock(objs, { listen, upstreams }) {
  const out = [`server {`, `    listen ${listen};`];
  const main = objs.find((o) => o.metadata.name === "gf-ingress");
  const ann = (o, k) => (o.metadata.annotations || {})[A + k];
  if (main && ann(main, "server-snippet")) out.push(indent(ann(main, "server-snippet"), 4));
  for (const o of objs) {
    for (const r of o.spec.rules || []) {
      for (const p of r.http?.paths || []) {
        const svc = p.backend.service.name;
        out.push(`    location ${p.path} {`);
        const body = ann(o, "proxy-body-size");
        if (body) out.push(`        client_max_body_size ${body};`);
        if (ann(o, "proxy-connect-timeout")) out.push(`        proxy_connect_timeout ${ann(o, "proxy-connect-timeout")}s;`);
        if (ann(o, "proxy-read-timeout")) out.push(`        proxy_read_timeout ${ann(o, "proxy-read-timeout")}s;`);
        // ingress-nginx's own headers, then the snippet (as its template orders them).
        out.push(`        proxy_http_version 1.1;`, `        proxy_set_header Connection "";`,
          `        proxy_set_header Host $host;`);
        if (ann(o, "configuration-snippet")) out.push(indent(ann(o, "configuration-snippet"), 8));
        out.push(`        proxy_pass http://${upstreams[svc] || "127.0.0.1:9"};`, `    }`);
      }
    }
  }
  out.push(`}`);
  return out.join("\n");
}

function indent(text, n) {
  return text.trimEnd().split("\n").map((l) => " ".repeat(n) + l).join("\n");
}

// node tests/deploy/lib/ingress.mjs FILE LISTEN SVC=HOST:PORT...: prints the server block.
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const [file, listen, ...pairs] = process.argv.slice(2);
  const upstreams = Object.fromEntries(pairs.map((p) => p.split("=")));
  console.log(serverBlock(ingresses(file), { listen, upstreams }));
}
