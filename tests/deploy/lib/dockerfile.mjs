// Offline Dockerfile lint: rcjsuen's dockerfile-utils validator (the one VS
// Code's Docker extension uses), with every configurable check raised to
// error, plus the project's house rules written on the dockerfile-ast parse
// tree (multi-stage Debian bookworm build, pinned bases, apt-get hygiene,
// non-root final stage, HEALTHCHECK policy, exec-form entrypoint, no baked-in
// secrets, numeric EXPOSE).

import { DockerfileParser } from "dockerfile-ast";
import { validate, ValidationSeverity } from "dockerfile-utils";

// Every setting dockerfile-utils 0.16 knows, made explicit: an omitted key
// means "ignore", so passing {} would silently disable these checks.
const DOCKERFILE_UTILS_SETTINGS = Object.freeze({
  deprecatedMaintainer: ValidationSeverity.ERROR,
  directiveCasing: ValidationSeverity.ERROR,
  emptyContinuationLine: ValidationSeverity.ERROR,
  instructionCasing: ValidationSeverity.ERROR,
  instructionCmdMultiple: ValidationSeverity.ERROR,
  instructionEntrypointMultiple: ValidationSeverity.ERROR,
  instructionHealthcheckMultiple: ValidationSeverity.ERROR,
  instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
  instructionWorkdirRelative: ValidationSeverity.ERROR,
});

const SEVERITY = { 1: "error", 2: "warning", 3: "info", 4: "hint" };
const SECRET_NAME = /PASSWORD|SECRET|TOKEN/i;

// Expand $VAR / ${VAR} / ${VAR:-default} from a map; returns null if any is unknown.
function expand(s, vars) {
  let unknown = false;
  const out = s.replace(/\$(?:\{([A-Za-z_]\w*)(?::?-([^}]*))?\}|([A-Za-z_]\w*))/g, (_, braced, dflt, bare) => {
    const name = braced ?? bare;
    if (vars.has(name) && vars.get(name) !== null) return vars.get(name);
    if (dflt !== undefined) return dflt;
    unknown = true;
    return "";
  });
  return unknown ? null : out;
}

// "registry:5000/ns/name:tag@sha256:..." -> {name, tag, digest}
function parseImageRef(ref) {
  const [nameTag, digest = null] = ref.split("@");
  const slash = nameTag.lastIndexOf("/");
  const colon = nameTag.lastIndexOf(":");
  if (colon > slash) return { name: nameTag.slice(0, colon), tag: nameTag.slice(colon + 1), digest };
  return { name: nameTag, tag: null, digest };
}
const isDebian = (name) => ["debian", "library/debian", "docker.io/library/debian"].includes(name);

// Split a shell command into simple commands (good enough for RUN lines).
const simpleCommands = (cmd) => cmd.split(/&&|\|\||[;|\n]/).map((c) => c.trim().split(/\s+/).filter(Boolean));

// Is this a JSON (exec-form) array of strings?
function isExecForm(content) {
  const s = (content ?? "").trim();
  if (!s.startsWith("[")) return false;
  try {
    const v = JSON.parse(s);
    return Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "string");
  } catch {
    return false;
  }
}

/**
 * Lint a Dockerfile.
 * @param {string} text  Dockerfile contents
 * @param {{name?: string, healthcheck?: boolean}} [opts]
 *        name: label used in messages (default "Dockerfile");
 *        healthcheck: true = final stage needs exactly one HEALTHCHECK CMD,
 *                     false = final stage needs HEALTHCHECK NONE (default true)
 * @returns {string[]} error strings "name:line: message"; empty when clean
 */
export function lintDockerfile(text, opts = {}) {
  const name = opts.name ?? "Dockerfile";
  const wantHealthcheck = opts.healthcheck ?? true;
  const errors = [];
  const at = (line, msg) => errors.push(`${name}:${line}: ${msg}`);
  const lineOf = (instr) => instr.getRange().start.line + 1;

  // 1. dockerfile-utils: every diagnostic (error or warning) is a failure.
  for (const d of validate(text, DOCKERFILE_UTILS_SETTINGS)) {
    at(d.range.start.line + 1, `${d.message} [dockerfile-utils ${SEVERITY[d.severity] ?? d.severity}]`);
  }

  // 2. house rules.
  const df = DockerfileParser.parse(text);
  const instructions = df.getInstructions();

  // Global ARGs (before the first FROM) may be used in FROM lines.
  const globalArgs = new Map();
  const stages = []; // {from, instrs: [], name}
  for (const ins of instructions) {
    const kw = ins.getKeyword();
    if (kw === "FROM") stages.push({ from: ins, instrs: [], name: ins.getBuildStage() });
    else if (stages.length) stages[stages.length - 1].instrs.push(ins);
    else if (kw === "ARG" && ins.getProperty()) globalArgs.set(ins.getProperty().getName(), ins.getProperty().getValue());
  }

  if (stages.length === 0) {
    at(1, "no FROM instruction");
    return errors;
  }
  // A single stage only where nothing is compiled (opts.singleStage: the database, broker and
  // ingress images, Debian's packages as they are).
  if (stages.length < 2 && !opts.singleStage) at(lineOf(stages[0].from), "must be a multi-stage build (at least two FROM instructions)");

  const final = stages[stages.length - 1];
  const stageNames = new Set();
  let sawBookwormBuild = false;
  for (const [i, st] of stages.entries()) {
    const isFinal = st === final;
    const raw = st.from.getImage() ?? "";
    const line = lineOf(st.from);
    if (!isFinal && !st.name) at(line, `build stage ${i} must be named (FROM ... AS <name>)`);
    if (stageNames.has(raw)) {
      // FROM <earlier stage>: no registry image involved.
      if (isFinal) at(line, "final stage must be FROM debian:bookworm-slim, not an earlier stage");
    } else if (raw !== "scratch") {
      const image = expand(raw, globalArgs);
      if (image === null) at(line, `FROM ${raw}: uses a variable with no default value`);
      else {
        const ref = parseImageRef(image);
        if (!ref.tag && !ref.digest) at(line, `FROM ${image}: base image must be pinned to a tag`);
        else if (ref.tag === "latest") at(line, `FROM ${image}: "latest" tag is not allowed`);
        if (isFinal && !(isDebian(ref.name) && ref.tag === "bookworm-slim")) {
          at(line, `final stage must be FROM debian:bookworm-slim (got ${image})`);
        }
        if (!isFinal && isDebian(ref.name) && ref.tag === "bookworm") sawBookwormBuild = true;
      }
    } else if (isFinal) {
      at(line, "final stage must be FROM debian:bookworm-slim (got scratch)");
    }
    if (st.name) stageNames.add(st.name);
  }
  if (stages.length >= 2 && !sawBookwormBuild) at(lineOf(stages[0].from), "a build stage must be FROM debian:bookworm");

  // Rules that apply to every stage.
  for (const ins of instructions) {
    const kw = ins.getKeyword();
    const line = lineOf(ins);
    if (kw === "RUN") {
      const cmd = ins.getArgumentsContent() ?? "";
      let installs = 0;
      for (const words of simpleCommands(cmd)) {
        const tool = words.findIndex((w) => w === "apt-get" || w === "apt");
        if (tool < 0 || !words.slice(tool + 1).includes("install")) continue;
        installs++;
        const args = words.slice(tool + 1);
        const yes = args.some((a) => a === "--yes" || a === "--assume-yes" || /^-[a-z]*y[a-z]*$/.test(a));
        if (!yes) at(line, `${words[tool]} install must use -y`);
        if (!args.includes("--no-install-recommends")) at(line, `${words[tool]} install must use --no-install-recommends`);
      }
      if (installs && !/\brm\s+(?:-[a-zA-Z]+\s+)*[^&;|]*\/var\/lib\/apt\/lists\/\*/.test(cmd)) {
        at(line, "RUN with apt-get install must also rm -rf /var/lib/apt/lists/* in the same RUN");
      }
    } else if (kw === "ADD") {
      const srcs = ins
        .getArguments()
        .map((a) => a.getValue())
        .filter((a) => !a.startsWith("--"))
        .slice(0, -1);
      const local = srcs.filter((s) => !/^(https?:\/\/|git@|git:\/\/)/.test(s));
      if (local.length) at(line, `ADD of local files (${local.join(", ")}): use COPY`);
    } else if (kw === "ENV" || kw === "ARG") {
      for (const p of ins.getProperties()) {
        const value = p.getValue();
        if (SECRET_NAME.test(p.getName()) && !/_FILE$/i.test(p.getName()) && value !== null && value !== "") {
          at(line, `${kw} ${p.getName()} looks like a secret baked into the image`);
        }
      }
    } else if (kw === "EXPOSE") {
      for (const a of ins.getArguments()) {
        const m = /^(\d+)(?:\/(tcp|udp|sctp))?$/i.exec(a.getValue());
        if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) at(line, `EXPOSE ${a.getValue()}: port must be a number (1-65535)`);
      }
    }
  }

  // Final-stage rules.
  const finalLine = lineOf(final.from);
  const of = (kw) => final.instrs.filter((i) => i.getKeyword() === kw);

  // Variables visible in the final stage for USER expansion (ARG defaults, ENV values).
  const vars = new Map(globalArgs);
  for (const ins of final.instrs) {
    if (ins.getKeyword() === "ARG" || ins.getKeyword() === "ENV") for (const p of ins.getProperties()) vars.set(p.getName(), p.getValue());
  }
  const users = of("USER");
  if (users.length === 0) at(finalLine, "final stage must set USER to a non-root user");
  else {
    const last = users[users.length - 1];
    const raw = (last.getArgumentsContent() ?? "").trim();
    const user = expand(raw, vars);
    if (user === null) at(lineOf(last), `USER ${raw}: cannot resolve variable, cannot prove it is not root`);
    else if (["root", "0"].includes(user.split(":")[0])) at(lineOf(last), `final stage must not run as root (USER ${raw})`);
  }

  const hcs = of("HEALTHCHECK");
  const sub = (h) => (h.getSubcommand()?.getValue() ?? "").toUpperCase();
  if (wantHealthcheck) {
    if (hcs.length !== 1) at(finalLine, `final stage must have exactly one HEALTHCHECK CMD (found ${hcs.length})`);
    for (const h of hcs) {
      if (sub(h) !== "CMD") at(lineOf(h), "HEALTHCHECK must use CMD");
      else if (h.getArguments().length < 2) at(lineOf(h), "HEALTHCHECK CMD has no command");
    }
  } else if (hcs.length !== 1 || sub(hcs[0]) !== "NONE") {
    at(finalLine, "final stage must have exactly one HEALTHCHECK NONE (this image has no healthcheck)");
  }

  const runners = [...of("ENTRYPOINT"), ...of("CMD")];
  if (runners.length === 0) at(finalLine, "final stage must have ENTRYPOINT or CMD");
  for (const r of runners) {
    if (!isExecForm(r.getArgumentsContent())) at(lineOf(r), `${r.getKeyword()} must use exec (JSON array) form`);
  }

  // Report in file order (dockerfile-utils and house rules interleaved).
  const lineNo = (e) => Number(e.slice(name.length + 1).split(":")[0]);
  return errors.map((e, i) => [e, i]).sort((a, b) => lineNo(a[0]) - lineNo(b[0]) || a[1] - b[1]).map(([e]) => e);
}
