// `cwcreds inject` on the corpus of real pod shapes in
// tests/fixtures/inject/corpus (each a Pod as its operator or controller
// writes it: service meshes, training operators, inference servers,
// CoreWeave's own examples). The hand-written fixtures beside it test one
// rule each; these test that the rules hold together on pods nobody wrote
// for cwcreds. For every accepted shape:
//
//   schema       the written Pod passes the strict schema check;
//   collisions   no container mounts two volumes at one path, and no two
//                containers declare one containerPort (the pod shares one
//                network namespace, so the kubelet could start only one);
//   qos          the pod's QoS class, computed as the API server does, is
//                unchanged (a Guaranteed pod losing its exclusive cores is
//                silent);
//   idempotence  injecting the written Pod again changes nothing;
//   remove       `inject --remove` on the written Pod gives the input back;
//   kubectl      the printed JSON Patch applied by `kubectl patch --local`
//                gives the written Pod, and kubectl reads the written YAML
//                as node's parser does;
//   user values  every leaf of the input is in the output unchanged, but
//                AWS_CONTAINER_CREDENTIALS_FULL_URI values at CoreWeave's
//                exchange endpoint (containers matched by name, so the
//                sidecar's place among the init containers does not count).
//
// A file whose comment says `# expect: refused` must make inject exit 2
// with the reason. The webhook's answers for the same files are compared
// with these outputs in tests/integration/test_webhook_corpus.py.
//
// Environment: CWCREDS_BIN (the binary; default build/cwcreds), KUBECTL
// (default kubectl). Needs nothing from the network.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { parseAllDocuments } from "yaml";
import { bin, kubectl, podSpec, repo, run, sidecarOf, strictValidate } from "./support.mjs";

const corpus = path.join(repo, "tests", "fixtures", "inject", "corpus");
const FLAGS = ["--org-id", "cw1234", "--image", "registry.example/cwcreds:1"];
// The one user value injection may rewrite: the SDK's credentials URI when
// it points at CoreWeave's token exchange, which the sidecar now does.
const EXCHANGE_URI = /^https:\/\/api\.coreweave\.com\/v1\/cwobject\/temporary-credentials\//;

function parseOne(text, what) {
  const docs = parseAllDocuments(text);
  assert.equal(docs.length, 1, `${what}: expected one YAML document, got ${docs.length}`);
  assert.deepEqual(docs[0].errors, [], `${what}: YAML errors`);
  return docs[0].toJS();
}

function inject(args, input) {
  return execFileSync(bin, ["inject", ...FLAGS, ...args], {
    encoding: "utf8", timeout: 60_000, input, stdio: ["pipe", "pipe", "pipe"],
  });
}

// ------------------------------------------------------------------ QoS

// Kubernetes quantities as numbers (cores, bytes): enough precision for
// comparing sums of the same quantities.
const SUFFIX = {
  n: 1e-9, u: 1e-6, m: 1e-3, "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};
function quantity(value) {
  const text = String(value);
  const m = text.match(/^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/);
  assert.ok(m, `not a Kubernetes quantity: ${JSON.stringify(value)}`);
  return Number(m[1]) * SUFFIX[m[2] ?? ""];
}

// The API server's QoS class (pkg/apis/core/helper/qos): cpu and memory
// only, every container and init container counted, a request defaulted
// from its limit when missing (as defaulting does before the class is set).
function qosClass(spec) {
  const requests = {}, limits = {};
  let guaranteed = true;
  for (const c of [...(spec.containers || []), ...(spec.initContainers || [])]) {
    const lim = c.resources?.limits || {};
    const req = { ...lim, ...(c.resources?.requests || {}) };
    for (const r of ["cpu", "memory"]) {
      if (req[r] !== undefined && quantity(req[r]) !== 0) requests[r] = (requests[r] || 0) + quantity(req[r]);
      if (lim[r] !== undefined && quantity(lim[r]) !== 0) limits[r] = (limits[r] || 0) + quantity(lim[r]);
      if (lim[r] === undefined || quantity(lim[r]) === 0) guaranteed = false;
    }
  }
  if (!Object.keys(requests).length && !Object.keys(limits).length) return "BestEffort";
  if (guaranteed && ["cpu", "memory"].every((r) => requests[r] === limits[r])) return "Guaranteed";
  return "Burstable";
}

// ------------------------------------------------------------ user values

// Every leaf of `value` with a path naming containers by name.
function leaves(value, where, out) {
  if (Array.isArray(value)) {
    if (value.length === 0) out.set(where, "[]");
    const byName = /\.(containers|initContainers)$/.test(where);
    value.forEach((item, i) => leaves(item, byName ? `${where}[name=${item?.name}]` : `${where}[${i}]`, out));
  } else if (value !== null && typeof value === "object") {
    if (Object.keys(value).length === 0) out.set(where, "{}");
    for (const [key, item] of Object.entries(value)) leaves(item, `${where}.${key}`, out);
  } else {
    out.set(where, JSON.stringify(value));
  }
  return out;
}

function changedUserValues(input, output) {
  const before = leaves(input, "", new Map());
  const after = leaves(output, "", new Map());
  const problems = [];
  for (const [where, value] of before) {
    if (after.get(where) === value) continue;
    // An empty list or map the injection filled keeps every user value.
    if ((value === "[]" || value === "{}") && [...after.keys()].some((k) => k.startsWith(where))) continue;
    if (/\.env\[\d+\]\.value$/.test(where) && EXCHANGE_URI.test(JSON.parse(value))) {
      const name = before.get(where.replace(/\.value$/, ".name"));
      if (name === JSON.stringify("AWS_CONTAINER_CREDENTIALS_FULL_URI")) continue;
    }
    problems.push(`${where}: ${value} -> ${after.get(where) ?? "(gone)"}`);
  }
  return problems;
}

// ------------------------------------------------------------ collisions

function collisions(spec) {
  const problems = [];
  const all = [...(spec.initContainers || []), ...(spec.containers || [])];
  for (const c of all) {
    const seen = new Map();
    for (const m of c.volumeMounts || []) {
      const at = m.mountPath.replace(/\/+$/, "") || "/";
      if (seen.has(at)) problems.push(`container '${c.name}' mounts '${seen.get(at)}' and '${m.name}' at ${at}`);
      else seen.set(at, m.name);
    }
  }
  const ports = new Map();
  for (const c of all) {
    for (const p of c.ports || []) {
      const key = `${p.containerPort}/${p.protocol || "TCP"}`;
      if (ports.has(key) && ports.get(key) !== c.name) {
        problems.push(`containers '${ports.get(key)}' and '${c.name}' both declare containerPort ${key}`);
      } else ports.set(key, c.name);
    }
  }
  return problems;
}

// ------------------------------------------------------------------ tests

const files = readdirSync(corpus).filter((f) => f.endsWith(".yaml")).sort();

test("the corpus holds at least 30 pod shapes, each a Pod with its source", () => {
  assert.ok(files.length >= 30, `only ${files.length} files in ${corpus}`);
  const sources = readFileSync(path.join(corpus, "SOURCES.md"), "utf8");
  for (const file of files) {
    const text = readFileSync(path.join(corpus, file), "utf8");
    assert.match(text, /^# source: /m, `${file}: no '# source:' comment`);
    assert.match(text, /^# changed: /m, `${file}: no '# changed:' comment`);
    assert.equal(parseOne(text, file).kind, "Pod", `${file}: not a Pod`);
    assert.ok(sources.includes(`| ${file} |`), `${file}: not listed in SOURCES.md`);
  }
});

for (const file of files) {
  const input = path.join(corpus, file);
  const text = readFileSync(input, "utf8");
  const original = parseOne(text, file);

  if (/^# expect: refused$/m.test(text)) {
    test(`${file}: refused, saying why`, () => {
      assert.throws(() => inject(["-f", input]), (error) => {
        assert.equal(error.status, 2, `${file}: exit status ${error.status}, stderr: ${error.stderr}`);
        assert.match(error.stderr, new RegExp(`^cwcreds inject: document 1 \\(Pod ${original.metadata.name}\\): .{10,}`),
          `${file}: no reason on stderr`);
        return true;
      }, `${file}: injected, though it must be refused`);
    });
    continue;
  }

  test(file, async (t) => {
    const writtenText = inject(["-f", input]);
    const written = parseOne(writtenText, `${file}: inject's output`);
    const spec = podSpec(written);
    assert.ok(sidecarOf(spec), `${file}: no cwcreds sidecar in the output`);

    await t.test("schema", () => {
      try {
        strictValidate(written);
      } catch (error) {
        assert.fail(`${file}: ${error.message}`);
      }
    });

    await t.test("collisions", () => {
      assert.deepEqual(collisions(spec), [], `${file}: mount paths or ports collide after injection`);
    });

    await t.test("qos", () => {
      assert.equal(qosClass(spec), qosClass(podSpec(original)), `${file}: QoS class changed by injection`);
    });

    await t.test("idempotence", () => {
      const again = parseOne(inject(["-f", "-"], writtenText), `${file}: second inject's output`);
      assert.deepEqual(again, written, `${file}: injecting the output again changes it`);
    });

    await t.test("kubectl", () => {
      const [line, ...more] = inject(["--print-patch", "-f", input]).trim().split("\n");
      assert.equal(more.length, 0, `${file}: one patch line expected`);
      const { patch } = JSON.parse(line);
      const viaKubectl = JSON.parse(run(kubectl, ["patch", "--local", "--type", "json", "-p", JSON.stringify(patch),
        "-f", input, "-o", "json"]));
      assert.deepEqual(viaKubectl, written, `${file}: the patch applied by kubectl differs from the written Pod`);
      // kubectl reads YAML with its own parser (sigs.k8s.io/yaml): the
      // written text must mean the same to it as to node's.
      const readByKubectl = JSON.parse(execFileSync(kubectl, ["patch", "--local", "--type", "json", "-p", "[]",
        "-f", "-", "-o", "json"], { encoding: "utf8", input: writtenText, timeout: 60_000 }));
      assert.deepEqual(readByKubectl, written, `${file}: kubectl reads the written YAML differently from node's parser`);
    });

    await t.test("remove", () => {
      // `inject --remove` on the written Pod gives the input back, as kubectl reads it.
      const removed = parseOne(inject(["--remove", "-f", "-"], writtenText), `${file}: inject --remove's output`);
      const asKubectlReads = JSON.parse(run(kubectl, ["patch", "--local", "--type", "json", "-p", "[]",
        "-f", input, "-o", "json"]));
      assert.deepEqual(removed, asKubectlReads, `${file}: inject --remove does not give the input back`);
    });

    await t.test("user values", () => {
      assert.deepEqual(changedUserValues(original, written), [], `${file}: the input's own values changed`);
    });
  });
}
