// Offline validation of rendered Kubernetes objects (no cluster needed).
//
// Two checks per object:
//  1. Schema: the matching kubernetes-models class (looked up by apiVersion +
//     kind) is constructed and .validate()d (types, enums, required fields).
//  2. Strict unknown-field check: kubernetes-models' schemas accept unknown
//     keys, so a typo like `readinessprobe` would pass. We walk each object
//     alongside the TypeScript interfaces in kubernetes-models' generated
//     .d.ts files (and @kubernetes-models/apimachinery's, for ObjectMeta and
//     friends) and report every key the interface does not declare.
//
// Types that cannot be resolved are never guessed: known free-form types
// (RawExtension, FieldsV1, Patch, apiextensions JSON) are opaque by design;
// anything else unresolved is recorded as a "gap" (see k8sTypeGaps()), printed
// to stderr once, and its subtree is skipped.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const NODE_MODULES = path.resolve(HERE, "..", "node_modules");

// Interfaces that are free-form JSON on purpose (empty in the .d.ts files).
// Keyed by the interface's local name in its declaring file.
export const OPAQUE_TYPES = new Set([
  "IRawExtension", // runtime.RawExtension: any embedded object
  "IFieldsV1", // metadata.managedFields[].fieldsV1: server-side-apply field set
  "IPatch", // meta/v1 Patch: arbitrary patch body
  "IJSON", // apiextensions JSON: any JSON value (CRD defaults, examples)
]);

// Interfaces that are also empty in the .d.ts files but whose shape is
// documented (apiextensions "X or Y" wrappers): checked as the union they mean.
// The IJSONSchemaProps refs resolve in the sibling JSONSchemaProps.d.ts.
const SCHEMA_PROPS = { k: "ref", name: "IJSONSchemaProps" };
const SHAPED_TYPES = {
  IJSONSchemaPropsOrArray: { k: "union", of: [SCHEMA_PROPS, { k: "array", of: SCHEMA_PROPS }] },
  IJSONSchemaPropsOrBool: { k: "union", of: [SCHEMA_PROPS, { k: "prim", t: "boolean" }] },
  IJSONSchemaPropsOrStringArray: { k: "union", of: [SCHEMA_PROPS, { k: "array", of: { k: "prim", t: "string" } }] },
};

// ---------------------------------------------------------------------------
// A tiny parser for the subset of TypeScript used by the generated .d.ts files.
//
// Type nodes:
//   {k:"prim", t:"string"|"number"|"boolean"|"any"|"unknown"|"null"|...}
//   {k:"lit", v}                    string/number/boolean literal
//   {k:"union", of:[node]}
//   {k:"array", of:node}            Array<T> or T[]
//   {k:"object", props:Map(name -> {type, optional}), index:node|null,
//    extends:[name], name?}         interface body or inline { ... }
//   {k:"ref", name}                 identifier, resolved lazily per file
//   {k:"gap", why}                  something the parser did not understand
// ---------------------------------------------------------------------------

const PRIMS = new Set(["string", "number", "boolean", "any", "unknown", "null", "undefined", "object", "never"]);

function tokenize(src) {
  // Drop comments first; string literals in the .d.ts files never contain "/*".
  src = src.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/^\s*\/\/.*$/gm, " ");
  const toks = [];
  const re = /\s+|("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|([A-Za-z_$][\w$]*)|(-?\d+(?:\.\d+)?)|(=>|[{}()<>\[\];:?|,=.&*])/gy;
  let m;
  while (re.lastIndex < src.length) {
    const at = re.lastIndex;
    m = re.exec(src);
    if (!m) throw new Error(`cannot tokenize at: ${JSON.stringify(src.slice(at, at + 40))}`);
    if (m[1]) toks.push({ t: "str", v: JSON.parse(m[1][0] === "'" ? `"${m[1].slice(1, -1).replace(/"/g, '\\"')}"` : m[1]) });
    else if (m[2]) toks.push({ t: "id", v: m[2] });
    else if (m[3]) toks.push({ t: "num", v: Number(m[3]) });
    else if (m[4]) toks.push({ t: "p", v: m[4] });
  }
  return toks;
}

class Parser {
  constructor(toks, file) {
    this.toks = toks;
    this.i = 0;
    this.file = file;
  }
  peek(o = 0) {
    return this.toks[this.i + o];
  }
  is(v, o = 0) {
    const t = this.peek(o);
    return t && t.t !== "str" && t.v === v;
  }
  next() {
    return this.toks[this.i++];
  }
  expect(v) {
    const t = this.next();
    if (!t || t.v !== v) throw new Error(`${this.file}: expected "${v}" but found ${t ? JSON.stringify(t.v) : "end of file"}`);
    return t;
  }
  // Skip a balanced {...} block (class bodies).
  skipBlock() {
    this.expect("{");
    let depth = 1;
    while (depth > 0) {
      const t = this.next();
      if (!t) throw new Error(`${this.file}: unbalanced braces`);
      if (t.t === "p" && t.v === "{") depth++;
      else if (t.t === "p" && t.v === "}") depth--;
    }
  }
  skipStatement() {
    while (this.peek() && !this.is(";")) {
      if (this.is("{")) this.skipBlock();
      else this.next();
    }
    if (this.is(";")) this.next();
  }

  parseType() {
    if (this.is("|")) this.next(); // leading bar
    const of = [this.parsePostfix()];
    while (this.is("|")) {
      this.next();
      of.push(this.parsePostfix());
    }
    return of.length === 1 ? of[0] : { k: "union", of };
  }
  parsePostfix() {
    let t = this.parsePrimary();
    while (this.is("[") && this.is("]", 1)) {
      this.next();
      this.next();
      t = { k: "array", of: t };
    }
    return t;
  }
  parsePrimary() {
    const tok = this.next();
    if (!tok) throw new Error(`${this.file}: unexpected end of type`);
    if (tok.t === "str" || tok.t === "num") return { k: "lit", v: tok.v };
    if (tok.t === "p" && tok.v === "(") {
      const t = this.parseType();
      this.expect(")");
      return t;
    }
    if (tok.t === "p" && tok.v === "{") {
      this.i--;
      return this.parseObjectBody();
    }
    if (tok.t === "id") {
      if (tok.v === "true" || tok.v === "false") return { k: "lit", v: tok.v === "true" };
      if (PRIMS.has(tok.v)) return { k: "prim", t: tok.v };
      if ((tok.v === "Array" || tok.v === "ReadonlyArray") && this.is("<")) {
        this.next();
        const of = this.parseType();
        this.expect(">");
        return { k: "array", of };
      }
      if (tok.v === "Record" && this.is("<")) {
        this.next();
        this.parseType();
        this.expect(",");
        const of = this.parseType();
        this.expect(">");
        return { k: "object", props: new Map(), index: of, extends: [] };
      }
      let name = tok.v;
      while (this.is(".")) {
        this.next();
        name += "." + this.next().v;
      }
      if (this.is("<")) {
        // Generic reference we do not model (e.g. Partial<T>): keep as a gap.
        let depth = 0;
        do {
          const t = this.next();
          if (t.v === "<") depth++;
          else if (t.v === ">") depth--;
        } while (depth > 0);
        return { k: "gap", why: `generic type ${name}<...>` };
      }
      return { k: "ref", name };
    }
    throw new Error(`${this.file}: unexpected ${JSON.stringify(tok.v)} in type`);
  }
  // { "a"?: T; b: U; [key: string]: V; }
  parseObjectBody() {
    this.expect("{");
    const props = new Map();
    let index = null;
    while (!this.is("}")) {
      if (this.is("readonly") && !this.is(":", 1) && !this.is("?", 1)) this.next();
      if (this.is("[")) {
        this.next();
        this.next(); // key name
        this.expect(":");
        this.parseType(); // key type (always string here)
        this.expect("]");
        this.expect(":");
        index = this.parseType();
      } else {
        const nameTok = this.next();
        if (!nameTok || (nameTok.t !== "str" && nameTok.t !== "id")) {
          throw new Error(`${this.file}: unexpected ${JSON.stringify(nameTok && nameTok.v)} in object type`);
        }
        let optional = false;
        if (this.is("?")) {
          this.next();
          optional = true;
        }
        if (this.is("(")) throw new Error(`${this.file}: method signature ${nameTok.v}() not supported`);
        this.expect(":");
        props.set(String(nameTok.v), { type: this.parseType(), optional });
      }
      if (this.is(";") || this.is(",")) this.next();
    }
    this.expect("}");
    return { k: "object", props, index, extends: [] };
  }
}

// Parse one .d.ts file into { decls: Map(name -> node), aliases: Map(exported -> local),
// imports: Map(local -> {spec, name}) }.
function parseDts(file) {
  const p = new Parser(tokenize(fs.readFileSync(file, "utf8")), file);
  const decls = new Map();
  const aliases = new Map();
  const imports = new Map();
  while (p.peek()) {
    if (p.is("import")) {
      p.next();
      if (p.is("type")) p.next();
      if (p.is("{")) {
        p.next();
        const names = [];
        while (!p.is("}")) {
          if (p.is("type")) p.next();
          const name = p.next().v;
          let local = name;
          if (p.is("as")) {
            p.next();
            local = p.next().v;
          }
          names.push([local, name]);
          if (p.is(",")) p.next();
        }
        p.expect("}");
        p.expect("from");
        const spec = p.next().v;
        for (const [local, name] of names) imports.set(local, { spec, name });
      }
      p.skipStatement();
      continue;
    }
    if (p.is("export")) p.next();
    if (p.is("declare")) p.next();
    if (p.is("interface")) {
      p.next();
      const name = p.next().v;
      const ext = [];
      if (p.is("extends")) {
        p.next();
        for (;;) {
          ext.push(p.next().v);
          if (p.is("<")) throw new Error(`${file}: generic extends not supported`);
          if (!p.is(",")) break;
          p.next();
        }
      }
      const body = p.parseObjectBody();
      body.extends = ext;
      body.name = name;
      decls.set(name, body);
      continue;
    }
    if (p.is("type") && p.is("{", 1)) {
      // export type { IFoo as IIoK8sFoo, Foo as IoK8sFoo };
      p.next();
      p.next();
      while (!p.is("}")) {
        if (p.is("type")) p.next();
        const local = p.next().v;
        let exported = local;
        if (p.is("as")) {
          p.next();
          exported = p.next().v;
        }
        aliases.set(exported, local);
        if (p.is(",")) p.next();
      }
      p.next();
      p.skipStatement();
      continue;
    }
    if (p.is("type")) {
      p.next();
      const name = p.next().v;
      if (p.is("<")) throw new Error(`${file}: generic type alias ${name} not supported`);
      p.expect("=");
      decls.set(name, p.parseType());
      if (p.is(";")) p.next();
      continue;
    }
    if (p.is("class")) {
      // The model class mirrors the interface; skip it.
      while (p.peek() && !p.is("{")) p.next();
      if (p.peek()) p.skipBlock();
      continue;
    }
    p.skipStatement(); // functions, consts, re-exports: irrelevant here
  }
  return { file, decls, aliases, imports };
}

// ---------------------------------------------------------------------------
// Module resolution for the .d.ts files (relative paths and package exports).
// ---------------------------------------------------------------------------

const pkgJsonCache = new Map();
function readPkg(dir) {
  if (!pkgJsonCache.has(dir)) pkgJsonCache.set(dir, JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")));
  return pkgJsonCache.get(dir);
}

function typesTarget(entry) {
  if (typeof entry === "string") return entry;
  if (entry && typeof entry === "object") return entry.types ?? typesTarget(entry.import) ?? typesTarget(entry.default);
  return undefined;
}

function resolveSpec(spec, fromFile) {
  if (spec.startsWith(".")) {
    const abs = path.resolve(path.dirname(fromFile), spec);
    return abs.replace(/\.js$/, "") + ".d.ts";
  }
  const parts = spec.split("/");
  const pkgName = spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
  const sub = "." + spec.slice(pkgName.length);
  // Walk up from the importing file looking for node_modules/<pkg>.
  let dir = path.dirname(fromFile);
  let pkgDir = null;
  for (;;) {
    const cand = path.join(dir, "node_modules", pkgName);
    if (fs.existsSync(path.join(cand, "package.json"))) {
      pkgDir = cand;
      break;
    }
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  if (!pkgDir) pkgDir = path.join(NODE_MODULES, pkgName);
  const pkg = readPkg(pkgDir);
  let target;
  const exp = pkg.exports;
  if (exp && typeof exp === "object" && !Object.keys(exp).some((k) => k.startsWith("."))) {
    if (sub === ".") target = typesTarget(exp); // conditions-only exports
  } else if (exp && typeof exp === "object") {
    if (exp[sub]) target = typesTarget(exp[sub]);
    else {
      for (const [key, val] of Object.entries(exp)) {
        const star = key.indexOf("*");
        if (star < 0) continue;
        const pre = key.slice(0, star);
        const post = key.slice(star + 1);
        if (sub.startsWith(pre) && sub.endsWith(post) && sub.length >= pre.length + post.length) {
          const mid = sub.slice(pre.length, sub.length - post.length);
          target = typesTarget(val)?.replace("*", mid);
          break;
        }
      }
    }
  } else if (sub === ".") {
    target = pkg.types ?? pkg.typings ?? "index.d.ts";
  } else {
    target = sub + ".d.ts";
  }
  if (!target) throw new Error(`cannot resolve types for "${spec}" from ${fromFile}`);
  return path.resolve(pkgDir, target.replace(/\.js$/, ".d.ts"));
}

// ---------------------------------------------------------------------------
// Named-type resolution with caching.
// ---------------------------------------------------------------------------

const fileCache = new Map(); // abs path -> parsed file
const gaps = new Set(); // human-readable descriptions of unresolved types

function loadFile(file) {
  let f = fileCache.get(file);
  if (!f) {
    f = parseDts(file);
    fileCache.set(file, f);
  }
  return f;
}

// Built-in shapes for names imported from @kubernetes-models/base.
const BASE_TYPES = {
  TypeMeta: {
    k: "object",
    props: new Map([
      ["apiVersion", { type: { k: "prim", t: "string" }, optional: false }],
      ["kind", { type: { k: "prim", t: "string" }, optional: false }],
    ]),
    index: null,
    extends: [],
    name: "TypeMeta",
  },
};

// Resolve `name` as seen from `file` to {node, file} (node is never a ref).
// Results are memoised on the parsed file.
function resolveName(name, file, seen = new Set()) {
  const f = loadFile(file);
  f.resolved ??= new Map();
  if (f.resolved.has(name)) return f.resolved.get(name);
  const key = `${file}#${name}`;
  if (seen.has(key)) return { node: { k: "gap", why: `circular alias ${name}` }, file };
  seen.add(key);
  let out;
  const local = f.aliases.get(name) ?? name;
  if (f.decls.has(local)) {
    const node = f.decls.get(local);
    out = node.k === "ref" ? resolveName(node.name, file, seen) : { node, file };
  } else if (f.imports.has(name)) {
    const imp = f.imports.get(name);
    if (imp.spec === "@kubernetes-models/base" && BASE_TYPES[imp.name]) {
      out = { node: BASE_TYPES[imp.name], file };
    } else {
      try {
        out = resolveName(imp.name, resolveSpec(imp.spec, file), seen);
      } catch (e) {
        out = { node: { k: "gap", why: `${name} from "${imp.spec}": ${e.message}` }, file };
      }
    }
  } else {
    out = { node: { k: "gap", why: `${name} is neither declared nor imported in ${path.relative(NODE_MODULES, file)}` }, file };
  }
  f.resolved.set(name, out);
  return out;
}

// Flatten an interface with its `extends` clauses into one props map (cached).
function flattenObject(node, file) {
  if (node.flat) return node.flat;
  const props = new Map();
  let index = node.index ? { type: node.index, file } : null;
  for (const base of node.extends) {
    const r = resolveName(base, file);
    if (r.node.k === "object") {
      const fb = flattenObject(r.node, r.file);
      for (const [k, v] of fb.props) props.set(k, v);
      index ??= fb.index;
    } else {
      gaps.add(`interface ${node.name} extends unresolved ${base}`);
    }
  }
  for (const [k, v] of node.props) props.set(k, { ...v, file });
  node.flat = { props, index };
  return node.flat;
}

// Deref a node; returns {node, file} with node not a ref.
function deref(node, file) {
  let guard = 0;
  while (node.k === "ref") {
    const r = resolveName(node.name, file);
    node = r.node;
    file = r.file;
    if (++guard > 50) return { node: { k: "gap", why: "alias chain too long" }, file };
    if (node.k === "object" && node.props.size === 0 && SHAPED_TYPES[node.name]) {
      const sibling = path.join(path.dirname(file), "JSONSchemaProps.d.ts");
      if (!fs.existsSync(sibling)) return { node: { k: "gap", why: `${node.name}: no JSONSchemaProps.d.ts beside it` }, file };
      return { node: SHAPED_TYPES[node.name], file: sibling };
    }
  }
  return { node, file };
}

// ---------------------------------------------------------------------------
// The walk.
// ---------------------------------------------------------------------------

const isPlainObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

function fmtPath(segs) {
  let s = "";
  for (const seg of segs) {
    if (typeof seg === "number") s += `[${seg}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(seg)) s += (s ? "." : "") + seg;
    else s += `[${JSON.stringify(seg)}]`;
  }
  return s || "(root)";
}

function suggest(key, props) {
  const low = key.toLowerCase();
  for (const k of props.keys()) if (k.toLowerCase() === low) return k;
  return null;
}

// Does this (dereferenced) type accept the shape of `value`? Used to pick a
// union member to descend into.
function shapeMatches(node, file, value) {
  ({ node, file } = deref(node, file));
  switch (node.k) {
    case "object":
      return isPlainObject(value);
    case "array":
      return Array.isArray(value);
    case "union":
      return node.of.some((n) => shapeMatches(n, file, value));
    case "gap":
      return true;
    case "prim":
      return node.t === "any" || node.t === "unknown" || (node.t === "object" && typeof value === "object");
    default:
      return false;
  }
}

function walk(value, node, file, segs, ctx) {
  if (value === null || value === undefined) return;
  ({ node, file } = deref(node, file));
  switch (node.k) {
    case "gap": {
      const msg = `${node.why} (at ${ctx.label} ${fmtPath(segs)})`;
      ctx.debug.push(msg);
      return;
    }
    case "prim":
    case "lit":
      return; // scalar type errors are reported by .validate()
    case "array":
      if (Array.isArray(value)) value.forEach((v, i) => walk(v, node.of, file, [...segs, i], ctx));
      return;
    case "union": {
      const members = node.of.filter((n) => shapeMatches(n, file, value));
      if (members.length === 1) walk(value, members[0], file, segs, ctx);
      else if (members.length > 1) {
        // Several object-like members: a key is unknown only if unknown to all.
        const sub = members.map(() => ({ ...ctx, errors: [], debug: [] }));
        members.forEach((m, i) => walk(value, m, file, segs, sub[i]));
        const best = sub.reduce((a, b) => (b.errors.length < a.errors.length ? b : a));
        ctx.errors.push(...best.errors);
        ctx.debug.push(...best.debug);
      }
      return;
    }
    case "object": {
      if (!isPlainObject(value)) return; // type error, reported by .validate()
      if (node.name && OPAQUE_TYPES.has(node.name) && node.props.size === 0) return;
      const { props, index } = flattenObject(node, file);
      for (const [key, v] of Object.entries(value)) {
        const prop = props.get(key);
        if (prop) walk(v, prop.type, prop.file, [...segs, key], ctx);
        else if (index) walk(v, index.type, index.file, [...segs, key], ctx);
        else {
          const hint = suggest(key, props);
          ctx.errors.push(
            `${ctx.label}: unknown field "${fmtPath([...segs, key])}"` + (hint ? ` (did you mean "${hint}"?)` : ""),
          );
        }
      }
      return;
    }
    default:
      ctx.debug.push(`unhandled type node ${node.k} (at ${ctx.label} ${fmtPath(segs)})`);
  }
}

// ---------------------------------------------------------------------------
// Kind lookup.
// ---------------------------------------------------------------------------

const KM_ROOT = path.join(NODE_MODULES, "kubernetes-models");

// "apps/v1" -> "apps/v1", "v1" -> "v1"; returns null for malformed input.
function groupVersionDir(apiVersion) {
  if (typeof apiVersion !== "string" || !/^([a-z0-9.-]+\/)?v\d+((alpha|beta)\d+)?$/.test(apiVersion)) return null;
  return apiVersion;
}

const kindCache = new Map();
async function loadKind(apiVersion, kind) {
  const key = `${apiVersion}|${kind}`;
  if (kindCache.has(key)) return kindCache.get(key);
  let out = null;
  const dir = groupVersionDir(apiVersion);
  if (dir && typeof kind === "string" && /^[A-Z][A-Za-z0-9]*$/.test(kind)) {
    const dts = path.join(KM_ROOT, dir, `${kind}.d.ts`);
    if (fs.existsSync(dts)) {
      const mod = await import(`kubernetes-models/${dir}/${kind}`);
      const Cls = mod[kind];
      // Only top-level kinds carry static apiVersion/kind (Container, PodSpec... do not).
      if (Cls && Cls.apiVersion === apiVersion && Cls.kind === kind) out = { Cls, dts, iface: `I${kind}` };
    }
  }
  kindCache.set(key, out);
  return out;
}

// ---------------------------------------------------------------------------
// Public API.
// ---------------------------------------------------------------------------

const reportedGaps = new Set();

// One ajv error from .validate() -> "dotted.path: message (got value)".
function describeSchemaError(err, obj) {
  const segs = err.instancePath
    ? err.instancePath
        .slice(1)
        .split("/")
        .map((x) => x.replace(/~1/g, "/").replace(/~0/g, "~"))
        .map((x) => (/^\d+$/.test(x) ? Number(x) : x))
    : [];
  let value = obj;
  for (const seg of segs) value = value?.[seg];
  const got =
    value === null || ["string", "number", "boolean"].includes(typeof value) ? ` (got ${JSON.stringify(value)})` : "";
  let msg;
  switch (err.keyword) {
    case "required":
      msg = `missing required field "${err.params.missingProperty}"`;
      break;
    case "enum":
      msg = `must be one of ${err.params.allowedValues.map((v) => JSON.stringify(v)).join(", ")}${got}`;
      break;
    case "type":
    case "format":
    case "pattern":
    case "minimum":
    case "maximum":
      msg = `${err.message}${got}`;
      break;
    default:
      msg = err.message;
  }
  return `${fmtPath(segs)}: ${msg}`;
}

/**
 * Validate rendered Kubernetes objects.
 * @param {object[]} objects  parsed manifests (e.g. from yaml.parseAllDocuments)
 * @param {{debug?: string[], quiet?: boolean}} [opts]
 *        debug: array that receives type-resolution gaps (also printed to stderr once each unless quiet)
 * @returns {Promise<string[]>} error strings, each prefixed with "Kind/name:"
 */
export async function validateK8s(objects, opts = {}) {
  const errors = [];
  const debug = opts.debug ?? [];
  // A `kind: List` (as `kubectl get -o yaml` prints) stands for its items.
  const flat = [];
  for (const o of objects ?? []) {
    if (isPlainObject(o) && o.kind === "List" && o.apiVersion === "v1" && Array.isArray(o.items)) flat.push(...o.items);
    else flat.push(o);
  }
  for (const [i, obj] of flat.entries()) {
    if (obj === null || obj === undefined) continue; // empty YAML document
    const kind = isPlainObject(obj) && typeof obj.kind === "string" ? obj.kind : "?";
    const name = isPlainObject(obj) && isPlainObject(obj.metadata) && obj.metadata.name ? obj.metadata.name : `#${i}`;
    const label = `${kind}/${name}`;
    if (!isPlainObject(obj)) {
      errors.push(`${label}: document is not a mapping`);
      continue;
    }
    const found = await loadKind(obj.apiVersion, obj.kind);
    if (!found) {
      errors.push(`${label}: unknown apiVersion/kind ${JSON.stringify(obj.apiVersion)}/${JSON.stringify(obj.kind)}`);
      continue;
    }
    if (!isPlainObject(obj.metadata) || (!obj.metadata.name && !obj.metadata.generateName)) {
      errors.push(`${label}: missing metadata.name`);
    }
    // 1. schema validation
    try {
      new found.Cls(obj).validate();
    } catch (e) {
      if (Array.isArray(e.errors) && e.errors.length) {
        for (const err of e.errors) errors.push(`${label}: ${describeSchemaError(err, obj)}`);
      } else errors.push(`${label}: ${e.message}`);
    }
    // 2. strict unknown-field check
    const ctx = { label, errors, debug: [] };
    try {
      const root = resolveName(found.iface, found.dts);
      walk(obj, root.node, root.file, [], ctx);
    } catch (e) {
      // A .d.ts this parser cannot read: a gap in the checker, not in the manifest.
      ctx.debug.push(`cannot check unknown fields: ${e.message} (at ${label})`);
    }
    for (const d of ctx.debug) {
      debug.push(d);
      gaps.add(d);
      if (!opts.quiet && !reportedGaps.has(d)) {
        reportedGaps.add(d);
        process.stderr.write(`k8s validate debug: unresolved type treated as opaque: ${d}\n`);
      }
    }
  }
  return errors;
}

/** Type-resolution gaps seen so far in this process (should stay empty). */
export function k8sTypeGaps() {
  return [...gaps];
}

/**
 * Resolve the whole type graph reachable from every top-level kind in
 * kubernetes-models (without any data) and report what cannot be resolved.
 * Proves the parser covers every shape used by the installed version.
 * @returns {{kinds: number, types: number, gaps: string[], opaque: string[]}}
 */
export function checkK8sTypeCoverage() {
  const found = new Set();
  const opaque = new Set();
  const seen = new Set();
  let kinds = 0;
  const visit = (node, file, where) => {
    ({ node, file } = deref(node, file));
    switch (node.k) {
      case "gap":
        found.add(`${node.why} (in ${where})`);
        return;
      case "array":
        return visit(node.of, file, where);
      case "union":
        return node.of.forEach((n) => visit(n, file, where));
      case "object": {
        if (seen.has(node)) return;
        seen.add(node);
        if (node.name && OPAQUE_TYPES.has(node.name) && node.props.size === 0) {
          opaque.add(node.name);
          return;
        }
        const { props, index } = flattenObject(node, file);
        for (const [k, p] of props) visit(p.type, p.file, `${node.name ?? "inline"}.${k}`);
        if (index) visit(index.type, index.file, `${node.name ?? "inline"}[*]`);
        return;
      }
      default:
        return;
    }
  };
  const groups = fs.readdirSync(KM_ROOT).filter((g) => !g.startsWith("_") && fs.statSync(path.join(KM_ROOT, g)).isDirectory());
  for (const g of groups) {
    const versions = g === "v1" ? [""] : fs.readdirSync(path.join(KM_ROOT, g)).filter((v) => fs.statSync(path.join(KM_ROOT, g, v)).isDirectory());
    for (const v of versions) {
      const dir = path.join(KM_ROOT, g, v);
      for (const f of fs.readdirSync(dir)) {
        if (!f.endsWith(".d.ts") || f === "index.d.ts") continue;
        const file = path.join(dir, f);
        try {
          const iface = loadFile(file).decls.get(`I${f.slice(0, -5)}`);
          if (!iface || iface.k !== "object" || !iface.extends.includes("TypeMeta")) continue;
          kinds++;
          visit(iface, file, iface.name);
        } catch (e) {
          found.add(e.message);
        }
      }
    }
  }
  return { kinds, types: seen.size, gaps: [...found], opaque: [...opaque] };
}
