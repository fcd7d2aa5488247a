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
        if (ann(o, "proxy-buffering")) out.push(`        proxy_buffering ${ann(o, "proxy-buffering")};`);
        // ingress-nginx's own headers, then the snippet (as its template orders them).
        out.push(`        proxy_http_version ${ann(o, "proxy-http-version") || "1.1"};`, `        proxy_set_header Connection "";`,
          `        proxy_set_header Host $host;`);
        if (ann(o, "configuration-snippet")) out.push(indent(ann(o, "configuration-snippet"), 8));
        out.push(`        proxy_pass http://${upstreams[svc] || "127.0.0.1:9"};`, `    }`);
      }
    }
  }
  out.push(`}`);
  return out.join("\n");
}

// One key of a ConfigMap in a manifest file (the console's nginx.conf).
export function configMapData(file, name, key) {
  const cm = YAML.parseAllDocuments(fs.readFileSync(file, "utf8")).map((d) => d.toJS())
    .find((o) => o && o.kind === "ConfigMap" && o.metadata?.name === name);
  return cm?.data?.[key];
}

// nginx's configuration as a tree of directives, {name, args, block} (block: the directives
// inside braces), comments dropped and quotes taken off. Enough for the ingresses' files (words
// with a brace are quoted there), not nginx's whole grammar.
export function parseNginx(text) {
  let i = 0;
  const n = text.length;
  const token = () => {
    for (;;) {
      while (i < n && /\s/.test(text[i])) i++;
      if (text[i] !== "#") break;
      while (i < n && text[i] !== "\n") i++;
    }
    if (i >= n) return null;
    const c = text[i];
    if (c === "{" || c === "}" || c === ";") { i++; return { punct: c }; }
    let word = "";
    if (c === '"' || c === "'") {
      for (i++; i < n && text[i] !== c; i++) word += text[i] === "\\" ? text[++i] : text[i];
      i++;
      return { word };
    }
    while (i < n && !/[\s;{}]/.test(text[i])) word += text[i++];
    return { word };
  };
  const block = (nested) => {
    const out = [];
    let cur = [];
    for (;;) {
      const t = token();
      if (!t) {
        if (nested || cur.length) throw new Error("nginx configuration: unexpected end");
        return out;
      }
      if (t.punct === ";") { out.push({ name: cur[0], args: cur.slice(1) }); cur = []; }
      else if (t.punct === "{") { out.push({ name: cur[0], args: cur.slice(1), block: block(true) }); cur = []; }
      else if (t.punct === "}") {
        if (!nested) throw new Error("nginx configuration: unbalanced }");
        return out;
      }
      else cur.push(t.word);
    }
  };
  return block(false);
}

// Every directive named name, at any depth (with the chain of blocks it is in).
export function findDirectives(tree, name, parents = []) {
  const out = [];
  for (const d of tree) {
    if (d.name === name) out.push({ ...d, parents });
    if (d.block) out.push(...findDirectives(d.block, name, [...parents, d]));
  }
  return out;
}

// The locations of a configuration's servers: "path" or "= path" or "@name" -> the location.
export function nginxLocations(tree) {
  const out = {};
  for (const s of findDirectives(tree, "server")) for (const d of s.block || []) if (d.name === "location") out[d.args.join(" ")] = d;
  return out;
}

// A directive (with its block) as one normalized line of text, to compare locations.
export function directiveText(d) {
  const args = d.args.map((a) => (/[\s;{}]/.test(a) || a === "" ? JSON.stringify(a) : a)).join(" ");
  return `${d.name}${args ? ` ${args}` : ""}${d.block ? ` { ${d.block.map(directiveText).join(" ")} }` : ";"}`;
}

function indent(text, n) {
  return text.trimEnd().split("\n").map((l) => " ".repeat(n) + l).join("\n");
}

// node tests/deploy/lib/ingress.mjs FILE LISTEN SVC=HOST:PORT...: prints the server block.
// node tests/deploy/lib/ingress.mjs --configmap FILE NAME KEY: prints that ConfigMap's key.
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  if (process.argv[2] === "--configmap") {
    const [file, name, key] = process.argv.slice(3);
    const data = configMapData(file, name, key);
    if (data === undefined) {
      console.error(`${file}: no ConfigMap ${name} with a key ${key}`);
      process.exit(1);
    }
    process.stdout.write(data);
  } else {
    const [file, listen, ...pairs] = process.argv.slice(2);
    const upstreams = Object.fromEntries(pairs.map((p) => p.split("=")));
    console.log(serverBlock(ingresses(file), { listen, upstreams }));
  }
}
