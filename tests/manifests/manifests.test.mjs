// Offline checks of manifests/ (node --test; run through tests/manifests/run.sh):
//
// 1. `kubectl kustomize` renders every kustomization under manifests/.
// 2. Every rendered object validates against the Kubernetes schema: the
//    OpenAPI validators compiled into kubernetes-models (types, required
//    fields, formats), plus a strict walk over @kubernetes/client-node's
//    generated models that rejects any field Kubernetes does not know (what
//    `kubectl apply --validate=strict` would refuse), so a typo such as
//    `restartPolcy` cannot pass.
// 3. What the manifests say agrees with the binary (`cwcreds serve --help`:
//    flags, env names, defaults), with interface.md (the env the app gets,
//    paths, audience, port, probe paths) and with the Dockerfile (user).
// 4. The component works on a workload it has never seen (other container
//    names, several containers, every workload kind, init containers, the
//    opt-out labels), and its three copies of the sidecar are one.
// 5. Resources that are not Kubernetes' own (PrometheusRule) are checked by
//    promtool; their schema is not in the Kubernetes models.
// 6. `cwcreds inject` on every pod shape of tests/fixtures/inject: each JSON
//    Patch it prints, applied by `kubectl patch --local --type json`, gives
//    the object it writes, and that object passes the strict schema check;
//    the shapes it must refuse exit 2 with the reason.
//
// Environment: CWCREDS_BIN (the binary; default build/cwcreds), KUBECTL
// (default kubectl). Needs nothing from the network.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import * as k8s from "@kubernetes/client-node";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..");
const manifests = path.join(repo, "manifests");
const bin = process.env.CWCREDS_BIN || path.join(repo, "build", "cwcreds");
const kubectl = process.env.KUBECTL || "kubectl";
// The lines of interface.md these checks rely on, kept in the repository
// (interface_excerpt.sh checks the copy against interface.md when it is there).
const interfaceExcerpt = path.join(here, "interface-excerpt.txt");

const SIDECAR = "cwcreds";
const AUDIENCE = "https://coreweave.com/iam";
const WORKLOAD_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"]);
// Custom resources: no schema in the Kubernetes models (checked otherwise).
const CUSTOM_GROUPS = new Set(["monitoring.coreos.com", "cert-manager.io"]);
const isCustom = (obj) => CUSTOM_GROUPS.has(obj.apiVersion.split("/")[0]);

// ---------------------------------------------------------------- helpers

function run(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: "utf8", timeout: 60_000, stdio: ["ignore", "pipe", "pipe"], ...opts });
}

function render(dir) {
  const out = run(kubectl, ["kustomize", dir]);
  return parseAllDocuments(out).map((doc) => {
    if (doc.errors.length) throw new Error(`${dir}: ${doc.errors[0].message}`);
    return doc.toJS();
  }).filter(Boolean);
}

// Every directory under manifests/ with a kustomization.yaml that is not a Component.
function overlays() {
  const found = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (name === "kustomization.yaml" && !/^kind:\s*Component\s*$/m.test(readFileSync(full, "utf8"))) {
        found.push(path.relative(manifests, dir));
      }
    }
  };
  walk(manifests);
  return found.sort();
}

// `cwcreds serve --help`: { "--flag": { env, default } }.
function serveHelp() {
  const text = run(bin, ["serve", "--help"]);
  const flags = {};
  let current = null;
  for (const line of text.split("\n")) {
    const flag = line.match(/^ {2}(--[a-z-]+)/);
    if (flag) { current = flags[flag[1]] = { env: null, default: null }; continue; }
    const env = line.match(/^ {6}env (CWCREDS_[A-Z_]+)(?:, default (.*))?$/);
    if (env && current) { current.env = env[1]; current.default = env[2] ?? null; }
  }
  return flags;
}

function podSpec(obj) {
  if (obj.kind === "Pod") return obj.spec;
  if (obj.kind === "CronJob") return obj.spec.jobTemplate.spec.template.spec;
  return obj.spec.template.spec;
}
function envOf(container) { return Object.fromEntries((container.env || []).map((e) => [e.name, e.value])); }
function mountOf(container, volume) { return (container.volumeMounts || []).find((m) => m.name === volume); }
function workloads(objects) { return objects.filter((o) => WORKLOAD_KINDS.has(o.kind)); }
function sidecarOf(spec) {
  const init = (spec.initContainers || []).find((c) => c.name === SIDECAR);
  if (init) return { container: init, native: true };
  const plain = (spec.containers || []).find((c) => c.name === SIDECAR);
  return plain ? { container: plain, native: false } : null;
}
function appContainers(spec) { return spec.containers.filter((c) => c.name !== SIDECAR); }
function hostPort(text) { const i = text.lastIndexOf(":"); return [text.slice(0, i).replace(/^\[|\]$/g, ""), Number(text.slice(i + 1))]; }

// --------------------------------------------------- schema validation

// kubernetes-models: one compiled OpenAPI validator per kind.
async function validateWithModels(obj) {
  const [group, version] = obj.apiVersion.includes("/") ? obj.apiVersion.split("/") : ["", obj.apiVersion];
  const mod = await import(`kubernetes-models/${group ? group + "/" : ""}${version}/${obj.kind}`);
  new mod[obj.kind](obj).validate(); // throws with the JSON path on error
}

// Strict structural walk over client-node's generated models.
function strictWalk(value, type, where, problems) {
  if (value === null || value === undefined) return;
  let m;
  if ((m = type.match(/^Array<(.+)>$/))) {
    if (!Array.isArray(value)) return problems.push(`${where}: expected a list`);
    value.forEach((item, i) => strictWalk(item, m[1], `${where}[${i}]`, problems));
  } else if ((m = type.match(/^\{ \[key: string\]: (.+); \}$/))) {
    if (typeof value !== "object" || Array.isArray(value)) return problems.push(`${where}: expected a map`);
    for (const [key, item] of Object.entries(value)) strictWalk(item, m[1], `${where}.${key}`, problems);
  } else if (type === "string" || type === "Date") {
    if (typeof value !== "string") problems.push(`${where}: expected a string, got ${JSON.stringify(value)}`);
  } else if (type === "number") {
    if (typeof value !== "number") problems.push(`${where}: expected a number, got ${JSON.stringify(value)}`);
  } else if (type === "boolean") {
    if (typeof value !== "boolean") problems.push(`${where}: expected a boolean, got ${JSON.stringify(value)}`);
  } else if (type === "IntOrString") {
    if (typeof value !== "string" && typeof value !== "number") problems.push(`${where}: expected int or string`);
  } else if (typeof k8s[type]?.getAttributeTypeMap === "function") {
    if (typeof value !== "object" || Array.isArray(value)) return problems.push(`${where}: expected an object (${type})`);
    const attributes = new Map(k8s[type].getAttributeTypeMap().map((a) => [a.baseName, a.type]));
    for (const [key, item] of Object.entries(value)) {
      if (!attributes.has(key)) problems.push(`${where}.${key}: unknown field in ${type}`);
      else strictWalk(item, attributes.get(key), `${where}.${key}`, problems);
    }
  } // other types (any, object, raw extensions) are free-form
}

function strictValidate(obj) {
  const version = obj.apiVersion.split("/").pop();
  const type = `${version[0].toUpperCase()}${version.slice(1)}${obj.kind}`;
  assert.ok(typeof k8s[type]?.getAttributeTypeMap === "function", `no Kubernetes model for ${obj.apiVersion} ${obj.kind}`);
  const problems = [];
  strictWalk(obj, type, `${obj.kind}/${obj.metadata?.name}`, problems);
  assert.deepEqual(problems, [], `strict schema check failed:\n  ${problems.join("\n  ")}`);
}

// ------------------------------------------------------------------ tests

const help = serveHelp();
const rendered = Object.fromEntries(overlays().map((dir) => [dir, render(path.join(manifests, dir))]));
const version = readFileSync(path.join(repo, "CMakeLists.txt"), "utf8").match(/project\(cwcreds VERSION ([0-9.]+)/)[1];

test("kubectl kustomize renders every kustomization under manifests/", () => {
  assert.deepEqual(Object.keys(rendered), ["example", "guaranteed", "job", "legacy-clients", "monitoring", "no-native-sidecar", "serviceaccount", "webhook"]);
  for (const [dir, objects] of Object.entries(rendered)) assert.ok(objects.length > 0, `${dir} rendered nothing`);
});

test("every rendered object validates against the Kubernetes schema (strict)", async () => {
  for (const [dir, objects] of Object.entries(rendered)) {
    for (const obj of objects.filter((o) => !isCustom(o))) {
      await assert.doesNotReject(validateWithModels(obj), `${dir}: ${obj.kind}/${obj.metadata.name}`);
      strictValidate(obj);
    }
  }
});

test("the strict schema check catches a misspelt field", () => {
  const deployment = structuredClone(rendered.example.find((o) => o.kind === "Deployment"));
  podSpec(deployment).initContainers[0].restartPolcy = "Always";
  assert.throws(() => strictValidate(deployment), /restartPolcy: unknown field in V1Container/);
});

test("the binary has every flag and env variable the manifests rely on", () => {
  for (const flag of ["--token-file", "--org-id", "--listen", "--probe-listen"]) {
    assert.ok(help[flag], `cwcreds serve --help has no ${flag}`);
  }
  assert.equal(help["--token-file"].default, "/var/run/secrets/tokens/oidc-token");
  assert.equal(help["--listen"].default, "127.0.0.1:9911");
  const knownEnv = new Set(Object.values(help).map((f) => f.env));
  for (const objects of Object.values(rendered)) {
    const configMaps = Object.fromEntries(objects.filter((o) => o.kind === "ConfigMap").map((o) => [o.metadata.name, o]));
    for (const workload of workloads(objects).filter((w) => sidecarOf(podSpec(w)))) {
      const { container } = sidecarOf(podSpec(workload));
      const names = (container.env || []).map((e) => e.name);
      for (const source of container.envFrom || []) {
        const cm = configMaps[source.configMapRef.name];
        assert.ok(cm, `${workload.metadata.name}: envFrom ConfigMap ${source.configMapRef.name} is not rendered`);
        names.push(...Object.keys(cm.data || {}));
      }
      // AWS_* reach the sidecar too (the component's wildcard over init
      // containers); it reads only CWCREDS_* variables.
      for (const name of names.filter((n) => !n.startsWith("AWS_"))) {
        assert.ok(knownEnv.has(name), `${name} is not an env variable of cwcreds serve`);
      }
      assert.ok(names.includes("CWCREDS_ORG_ID"), "the sidecar gets no CWCREDS_ORG_ID");
      assert.ok(!names.includes("CWCREDS_LISTEN") && !(container.args || []).some((a) => a.startsWith("--listen")),
        "the credentials listener must stay on its loopback default");
      assert.deepEqual(container.args, ["serve"]);
      assert.equal(container.command, undefined, "the image's ENTRYPOINT runs the binary");
    }
  }
});

test("legacy-clients: one Secret feeds the sidecar's --accept-token-file and the app's AWS_CONTAINER_AUTHORIZATION_TOKEN; IMDS on 127.0.0.1:80", () => {
  const [workload] = workloads(rendered["legacy-clients"]);
  const spec = podSpec(workload);
  const { container } = sidecarOf(spec);
  const env = envOf(container);
  assert.ok(help["--accept-token-file"] && help["--imds-listen"], "cwcreds serve --help lacks the flags");
  const secretVolume = spec.volumes.find((v) => v.secret?.secretName === "cwcreds-caller-token");
  assert.ok(secretVolume, "no volume from the Secret");
  const mount = mountOf(container, secretVolume.name);
  assert.ok(mount?.readOnly, "the sidecar does not mount the Secret read-only");
  assert.equal(env.CWCREDS_ACCEPT_TOKEN_FILE, path.posix.join(mount.mountPath, "token"));
  assert.equal(env.CWCREDS_IMDS_LISTEN, "127.0.0.1:80");
  assert.deepEqual(spec.securityContext.sysctls, [{ name: "net.ipv4.ip_unprivileged_port_start", value: "80" }]);
  for (const app of appContainers(spec)) {
    const entry = (app.env || []).find((e) => e.name === "AWS_CONTAINER_AUTHORIZATION_TOKEN");
    assert.deepEqual(entry?.valueFrom?.secretKeyRef, { key: "token", name: "cwcreds-caller-token" }, app.name);
    assert.equal(envOf(app).AWS_EC2_METADATA_SERVICE_ENDPOINT, "http://127.0.0.1:80", app.name);
    assert.equal(envOf(app).AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, "/var/run/secrets/tokens/oidc-token", app.name);
  }
});

for (const dir of ["example", "guaranteed", "job", "no-native-sidecar"]) {
  test(`${dir}: sidecar, token volume, env, probes and security agree with the binary and interface.md`, () => {
    const objects = rendered[dir];
    const [workload, ...more] = workloads(objects);
    assert.ok(workload && more.length === 0, "one workload expected");
    const spec = podSpec(workload);
    const sidecar = sidecarOf(spec);
    assert.ok(sidecar, "no cwcreds sidecar");
    const { container } = sidecar;
    const sidecarEnv = envOf(container);

    // Native sidecar where the cluster has them; a plain container otherwise.
    // Either way it comes first, so it starts before anything that needs it.
    if (dir === "no-native-sidecar") {
      assert.equal(sidecar.native, false);
      assert.equal(container.restartPolicy, undefined);
      assert.equal(spec.initContainers, undefined);
      assert.equal(spec.containers[0].name, SIDECAR, "the plain sidecar must be the first container");
      const annotations = workload.spec.template.metadata.annotations || {};
      assert.equal(annotations["kubectl.kubernetes.io/default-container"], appContainers(spec)[0].name);
      // It outlives the app's own shutdown by its preStop delay, within the grace period.
      const [sleep, seconds] = container.lifecycle?.preStop?.exec?.command || [];
      assert.equal(sleep, "sleep");
      assert.ok(Number(seconds) >= 5 && Number(seconds) < (spec.terminationGracePeriodSeconds ?? 30));
    } else {
      assert.equal(sidecar.native, true);
      assert.equal(container.restartPolicy, "Always");
      assert.equal(spec.initContainers[0].name, SIDECAR, "the native sidecar must be the first init container");
    }
    if (workload.kind === "Job") assert.ok(["Never", "OnFailure"].includes(spec.restartPolicy));

    // The token: projected with CoreWeave's audience, read-only in every container.
    const tokenFile = sidecarEnv.CWCREDS_TOKEN_FILE ?? help["--token-file"].default;
    assert.equal(tokenFile, help["--token-file"].default, "token file differs from the binary's default");
    const tokenVolume = spec.volumes.find((v) => v.name === "cwcreds-token");
    const source = tokenVolume.projected.sources[0].serviceAccountToken;
    assert.deepEqual(source, { audience: AUDIENCE, expirationSeconds: 3600, path: path.posix.basename(tokenFile) });
    for (const c of [container, ...appContainers(spec)]) {
      const mount = mountOf(c, "cwcreds-token");
      assert.ok(mount, `${c.name} does not mount the token`);
      assert.equal(mount.mountPath, path.posix.dirname(tokenFile), `${c.name}: token mount path`);
      assert.equal(mount.readOnly, true, `${c.name}: token mount must be read-only`);
    }

    // The app's environment: interface.md's two values, the region, the S3 config.
    const [listenHost, listenPort] = hostPort(help["--listen"].default);
    const configMaps = objects.filter((o) => o.kind === "ConfigMap");
    for (const app of appContainers(spec)) {
      const env = envOf(app);
      assert.equal(env.AWS_CONTAINER_CREDENTIALS_FULL_URI, `http://${listenHost}:${listenPort}/v1/credentials`);
      assert.equal(env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, tokenFile);
      assert.equal(env.AWS_DEFAULT_REGION, "US-EAST-04A");
      const configMount = mountOf(app, "cwcreds-aws");
      assert.ok(configMount?.readOnly, `${app.name}: AWS config not mounted read-only`);
      const volume = spec.volumes.find((v) => v.name === "cwcreds-aws");
      assert.equal(env.AWS_CONFIG_FILE, path.posix.join(configMount.mountPath, volume.configMap.items[0].path));
      const config = configMaps.find((cm) => cm.metadata.name === volume.configMap.name).data[volume.configMap.items[0].key];
      assert.match(config, /^\s*addressing_style = virtual$/m);
      assert.match(config, /^endpoint_url = http:\/\/cwlota\.com$/m);
      assert.match(config, /^region = US-EAST-04A$/m);
    }
    assert.equal(listenHost, "127.0.0.1");
    assert.equal(listenPort, 9911);

    // Probes: kubelet reaches the pod IP, so they go to the probe listener.
    const [probeHost, probePort] = hostPort(sidecarEnv.CWCREDS_PROBE_LISTEN);
    assert.ok(["0.0.0.0", "::"].includes(probeHost), "the probe listener must listen on the pod IP");
    assert.notEqual(probePort, listenPort);
    const named = Object.fromEntries((container.ports || []).map((p) => [p.name, p.containerPort]));
    // Readiness must not follow the upstream: a native sidecar's readiness is
    // the pod's, and an IAM outage would empty every Service at once.
    assert.equal(container.readinessProbe, undefined, "no readinessProbe on the sidecar");
    // Liveness tolerates a minute (a restart loses valid cached keys).
    assert.ok(container.livenessProbe.periodSeconds * container.livenessProbe.failureThreshold >= 60);
    assert.ok(container.livenessProbe.timeoutSeconds >= 3);
    const expected = { startupProbe: "/readyz", livenessProbe: "/healthz" };
    for (const [probe, probePath] of Object.entries(expected)) {
      const get = container[probe]?.httpGet;
      assert.ok(get, `${probe} is not an httpGet probe`);
      assert.equal(get.path, probePath, `${probe} path`);
      assert.equal(named[get.port] ?? get.port, probePort, `${probe} must hit the probe port`);
      assert.equal(get.host, undefined, `${probe} must go to the pod IP`);
    }

    // Restricted pod security, readOnlyRootFilesystem, sized resources.
    const podSecurity = spec.securityContext || {};
    for (const c of [container, ...appContainers(spec)]) {
      const sc = c.securityContext || {};
      assert.equal(sc.runAsNonRoot ?? podSecurity.runAsNonRoot, true, `${c.name}: runAsNonRoot`);
      assert.equal((sc.seccompProfile ?? podSecurity.seccompProfile)?.type, "RuntimeDefault", `${c.name}: seccomp`);
      assert.equal(sc.allowPrivilegeEscalation, false, `${c.name}: allowPrivilegeEscalation`);
      assert.deepEqual(sc.capabilities?.drop, ["ALL"], `${c.name}: capabilities`);
      assert.equal(sc.readOnlyRootFilesystem, true, `${c.name}: readOnlyRootFilesystem`);
    }
    const user = readFileSync(path.join(repo, "Dockerfile"), "utf8").match(/^USER (\d+):(\d+)$/m);
    assert.equal(container.securityContext.runAsUser, Number(user[1]));
    assert.equal(container.securityContext.runAsGroup, Number(user[2]));
    for (const kind of ["requests", "limits"]) {
      for (const resource of ["cpu", "memory"]) assert.ok(container.resources?.[kind]?.[resource], `sidecar ${kind}.${resource}`);
    }
    // guaranteed/: every container has requests == limits, so the pod is Guaranteed.
    if (dir === "guaranteed") {
      for (const c of [...(spec.initContainers || []), ...spec.containers]) {
        assert.deepEqual(c.resources.requests, c.resources.limits, `${c.name}: requests != limits`);
      }
    }

    // The image is this version; the service account is rendered alongside.
    assert.ok(container.image.endsWith(`:${version}`), `image ${container.image} is not version ${version}`);
    const account = objects.find((o) => o.kind === "ServiceAccount");
    assert.equal(spec.serviceAccountName, account?.metadata.name);
  });
}

test("interface.md: the env, token path, audience, port and probe paths the manifests use", () => {
  const spec = readFileSync(interfaceExcerpt, "utf8");
  assert.match(spec, /`AWS_CONTAINER_CREDENTIALS_FULL_URI`\s+becomes `http:\/\/127\.0\.0\.1:<port>\/v1\/credentials`/);
  assert.match(spec, /`AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`/);
  assert.match(spec, /\| `--token-file PATH` \| `CWCREDS_TOKEN_FILE` \| `\/var\/run\/secrets\/tokens\/oidc-token` \|/);
  assert.match(spec, /\| `--listen HOST:PORT` \| `CWCREDS_LISTEN` \| `127\.0\.0\.1:9911` \|/);
  assert.match(spec, /audience `https:\/\/coreweave\.com\/iam`/);
  assert.match(spec, /\| `GET \/readyz` \| 200 only while it holds unexpired credentials/);
  assert.match(spec, /\| `GET \/healthz` \| 200 while the process is alive/);
  // ...and those are what the binary defaults to (checked against --help above).
  assert.equal(help["--listen"].env, "CWCREDS_LISTEN");
  assert.equal(help["--token-file"].env, "CWCREDS_TOKEN_FILE");
});

test("the component injects into any workload, whatever its containers are called", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "cwcreds-component-"));
  try {
    const component = path.relative(dir, path.join(manifests, "components", "cwcreds"));
    const template = (name, containers, labels = {}) => ({
      metadata: { labels: { app: name } },
      spec: { serviceAccountName: "mine", containers },
    });
    const objects = [
      { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web" },
        spec: { selector: { matchLabels: { app: "web" } }, template: template("web", [
          { name: "server", image: "nginx", env: [{ name: "A", value: "1" },
            { name: "AWS_CONTAINER_CREDENTIALS_FULL_URI", value: "https://api.coreweave.com/v1/cwobject/temporary-credentials/oidc/x" }],
            volumeMounts: [{ name: "data", mountPath: "/data" }] },
          { name: "worker", image: "busybox" }]) } },
      { apiVersion: "apps/v1", kind: "StatefulSet", metadata: { name: "db" },
        spec: { serviceName: "db", selector: { matchLabels: { app: "db" } }, template: template("db", [{ name: "db", image: "x" }]) } },
      { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "other", labels: { "cwcreds.coreweave.com/inject": "false" } },
        spec: { selector: { matchLabels: { app: "other" } }, template: template("other", [{ name: "other", image: "x" }]) } },
    ];
    objects[0].spec.template.spec.volumes = [{ name: "data", emptyDir: {} }];
    writeFileSync(path.join(dir, "workloads.yaml"), objects.map((o) => JSON.stringify(o)).join("\n---\n"));
    writeFileSync(path.join(dir, "kustomization.yaml"), [
      "resources: [workloads.yaml]",
      `components: [${JSON.stringify(component)}]`,
      "configMapGenerator: [{name: cwcreds, literals: [CWCREDS_ORG_ID=org]}]",
    ].join("\n"));
    const out = render(dir);
    for (const obj of out) strictValidate(obj);
    const byName = Object.fromEntries(workloads(out).map((o) => [o.metadata.name, podSpec(o)]));
    for (const name of ["web", "db"]) {
      const spec = byName[name];
      assert.equal(sidecarOf(spec)?.native, true, `${name}: no native sidecar`);
      for (const app of spec.containers) {
        const env = envOf(app);
        assert.equal(env.AWS_CONTAINER_CREDENTIALS_FULL_URI, "http://127.0.0.1:9911/v1/credentials", `${name}/${app.name}`);
        assert.equal(env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, "/var/run/secrets/tokens/oidc-token");
        assert.equal(mountOf(app, "cwcreds-token")?.readOnly, true, `${name}/${app.name}: token mount`);
      }
    }
    const web = byName.web;
    assert.equal(envOf(web.containers[0]).A, "1", "the app's own env is kept");
    assert.ok(mountOf(web.containers[0], "data"), "the app's own mounts are kept");
    assert.deepEqual(web.volumes.map((v) => v.name).sort(), ["cwcreds-aws", "cwcreds-token", "data"]);
    assert.equal(sidecarOf(byName.other), null, "the opt-out label is ignored");
    assert.equal(envOf(byName.other.containers[0]).AWS_CONTAINER_CREDENTIALS_FULL_URI, undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the component's three sidecar patches carry the same container and volumes", () => {
  const component = path.join(manifests, "components", "cwcreds");
  const load = (file) => podSpec(parseAllDocuments(readFileSync(path.join(component, file), "utf8"))[0].toJS());
  const template = load("sidecar.yaml");
  for (const file of ["sidecar-cronjob.yaml", "sidecar-pod.yaml"]) assert.deepEqual(load(file), template, file);
});

test("the component covers every workload kind and init containers, sidecar first", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "cwcreds-kinds-"));
  try {
    const component = path.relative(dir, path.join(manifests, "components", "cwcreds"));
    const pod = (extra = {}) => ({ serviceAccountName: "mine", containers: [{ name: "main", image: "x" }], ...extra });
    const template = (spec) => ({ metadata: { labels: { app: "a" } }, spec });
    const selector = { matchLabels: { app: "a" } };
    const objects = [
      { apiVersion: "apps/v1", kind: "DaemonSet", metadata: { name: "ds" }, spec: { selector, template: template(pod()) } },
      { apiVersion: "apps/v1", kind: "ReplicaSet", metadata: { name: "rs" }, spec: { selector, template: template(pod()) } },
      { apiVersion: "batch/v1", kind: "CronJob", metadata: { name: "cron" }, spec: { schedule: "0 * * * *",
        jobTemplate: { spec: { template: template(pod({ restartPolicy: "Never",
          initContainers: [{ name: "weights", image: "x", env: [{ name: "B", value: "2" }] }] })) } } } },
      { apiVersion: "v1", kind: "Pod", metadata: { name: "bare" }, spec: pod() },
      // Its own AWS_CONFIG_FILE (named profiles) stays with the label.
      { apiVersion: "batch/v1", kind: "Job", metadata: { name: "own-config", labels: { "cwcreds.coreweave.com/aws-config": "own" } },
        spec: { template: template(pod({ restartPolicy: "Never",
          containers: [{ name: "main", image: "x", env: [{ name: "AWS_CONFIG_FILE", value: "/home/me/.aws/config" }] }] })) } },
      { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "untouched" }, data: { a: "b" } },
    ];
    writeFileSync(path.join(dir, "workloads.yaml"), objects.map((o) => JSON.stringify(o)).join("\n---\n"));
    writeFileSync(path.join(dir, "kustomization.yaml"), [
      "resources: [workloads.yaml]",
      `components: [${JSON.stringify(component)}]`,
      "configMapGenerator: [{name: cwcreds, literals: [CWCREDS_ORG_ID=org]}]",
    ].join("\n"));
    const out = render(dir);
    for (const obj of out) strictValidate(obj);
    const byName = Object.fromEntries(workloads(out).map((o) => [o.metadata.name, podSpec(o)]));
    assert.deepEqual(Object.keys(byName).sort(), ["bare", "cron", "ds", "own-config", "rs"]);
    for (const [name, spec] of Object.entries(byName)) {
      assert.equal(spec.initContainers[0].name, SIDECAR, `${name}: the sidecar is not the first init container`);
      assert.equal(spec.initContainers[0].restartPolicy, "Always", `${name}: not a native sidecar`);
      for (const c of [...spec.initContainers.slice(1), ...spec.containers]) {
        const env = envOf(c);
        assert.equal(env.AWS_CONTAINER_CREDENTIALS_FULL_URI, "http://127.0.0.1:9911/v1/credentials", `${name}/${c.name}`);
        assert.equal(env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, "/var/run/secrets/tokens/oidc-token", `${name}/${c.name}`);
        assert.equal(mountOf(c, "cwcreds-token")?.readOnly, true, `${name}/${c.name}: token mount`);
        const expectedConfig = name === "own-config" ? "/home/me/.aws/config" : "/etc/cwcreds-aws/config";
        assert.equal(env.AWS_CONFIG_FILE, expectedConfig, `${name}/${c.name}: AWS_CONFIG_FILE`);
      }
    }
    assert.equal(envOf(byName.cron.initContainers[1]).B, "2", "the init container's own env is kept");
    assert.deepEqual(out.find((o) => o.metadata.name === "untouched").data, { a: "b" });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("example NetworkPolicy opens only the probe port to monitoring", () => {
  const policy = rendered.example.find((o) => o.kind === "NetworkPolicy");
  const deployment = rendered.example.find((o) => o.kind === "Deployment");
  assert.deepEqual(policy.spec.podSelector.matchLabels, deployment.spec.template.metadata.labels);
  const sidecarEnv = envOf(sidecarOf(podSpec(deployment)).container);
  const [, probePort] = hostPort(sidecarEnv.CWCREDS_PROBE_LISTEN);
  const ports = policy.spec.ingress.flatMap((rule) => rule.ports.map((p) => p.port));
  assert.deepEqual(ports, [probePort]);
});

test("monitoring: the PrometheusRule passes promtool and uses metrics the binary exports", () => {
  const rule = rendered.monitoring.find((o) => o.kind === "PrometheusRule");
  assert.equal(rule.apiVersion, "monitoring.coreos.com/v1");
  const dir = mkdtempSync(path.join(tmpdir(), "cwcreds-rules-"));
  try {
    const file = path.join(dir, "rules.json");
    writeFileSync(file, JSON.stringify({ groups: rule.spec.groups }));
    run("promtool", ["check", "rules", file]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const source = readFileSync(path.join(repo, "sidecar", "serve", "metrics.cpp"), "utf8");
  for (const r of rule.spec.groups.flatMap((g) => g.rules)) {
    for (const metric of r.expr.match(/cwcreds_[a-z_]+/g)) assert.ok(source.includes(`"${metric}"`), `${r.alert}: ${metric}`);
  }
});

test("cwcreds inject: every patch applied by kubectl patch --local gives a schema-valid object equal to its YAML", () => {
  const fixtures = path.join(repo, "tests", "fixtures", "inject");
  const flags = ["--org-id", "acme", "--image", "cwcreds:0.1.0"];
  const files = readdirSync(fixtures).filter((f) => f.endsWith(".yaml")).sort();
  assert.ok(files.length >= 10, "the corpus is missing");
  let patched = 0;
  for (const file of files) {
    const input = path.join(fixtures, file);
    if (file.startsWith("refuse-")) {
      assert.throws(() => run(bin, ["inject", ...flags, "-f", input]),
        (error) => error.status === 2 && /^cwcreds inject: document 1 \(Pod [a-z-]+\): .+/.test(error.stderr), file);
      continue;
    }
    const [line, ...more] = run(bin, ["inject", ...flags, "--print-patch", "-f", input]).trim().split("\n");
    assert.equal(more.length, 0, `${file}: one object expected`);
    const { patch } = JSON.parse(line);
    assert.ok(patch.length > 0, `${file}: nothing injected`);
    const viaKubectl = parseAllDocuments(run(kubectl, ["patch", "--local", "--type", "json", "-p", JSON.stringify(patch),
      "-f", input, "-o", "yaml"]))[0].toJS();
    const [written] = parseAllDocuments(run(bin, ["inject", ...flags, "-f", input])).map((d) => d.toJS());
    assert.deepEqual(viaKubectl, written, `${file}: kubectl's result differs from cwcreds inject's`);
    strictValidate(written);
    const spec = podSpec(written);
    assert.equal(spec.initContainers[0].name, SIDECAR, file);
    // Injecting the output again changes nothing.
    const again = execFileSync(bin, ["inject", ...flags, "--print-patch"], { input: JSON.stringify(written), encoding: "utf8" });
    assert.deepEqual(JSON.parse(again).patch, [], `${file}: not idempotent`);
    patched++;
  }
  assert.ok(patched >= 7);
});

test("webhook: configuration, Deployment, Service and certificates agree with each other and the binary", () => {
  const objects = rendered.webhook;
  const one = (kind) => { const found = objects.filter((o) => o.kind === kind); assert.equal(found.length, 1, kind); return found[0]; };
  const namespace = one("Namespace").metadata.name;
  const deployment = one("Deployment");
  const service = one("Service");
  const config = one("MutatingWebhookConfiguration");
  const pdb = one("PodDisruptionBudget");
  assert.equal(one("Namespace").metadata.labels["pod-security.kubernetes.io/enforce"], "restricted");
  for (const obj of objects.filter((o) => !["Namespace", "MutatingWebhookConfiguration"].includes(o.kind))) {
    assert.equal(obj.metadata.namespace, namespace, `${obj.kind}/${obj.metadata.name}`);
  }

  // Availability with failurePolicy Fail: 2 replicas, a PDB
  // keeping one, restricted security, no API access.
  assert.equal(deployment.spec.replicas, 2);
  assert.equal(pdb.spec.minAvailable, 1);
  assert.deepEqual(pdb.spec.selector.matchLabels, deployment.spec.selector.matchLabels);
  const spec = podSpec(deployment);
  assert.equal(spec.automountServiceAccountToken, false);
  assert.equal(objects.filter((o) => /Role/.test(o.kind)).length, 0, "no RBAC: the webhook reads nothing from the API");
  const [container] = spec.containers;
  assert.equal(spec.securityContext.runAsNonRoot, true);
  assert.equal(spec.securityContext.seccompProfile.type, "RuntimeDefault");
  assert.equal(container.securityContext.allowPrivilegeEscalation, false);
  assert.deepEqual(container.securityContext.capabilities.drop, ["ALL"]);
  assert.equal(container.securityContext.readOnlyRootFilesystem, true);

  // Its flags exist in `cwcreds webhook --help`, and the TLS files are the mounted Secret's.
  const help = run(bin, ["webhook", "--help"]);
  assert.equal(container.args[0], "webhook");
  for (const arg of container.args.slice(1).filter((a) => a.startsWith("--"))) assert.ok(help.includes(`  ${arg} `), arg);
  const configMap = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === container.envFrom[0].configMapRef.name);
  for (const name of Object.keys(configMap.data)) assert.ok(help.includes(`env ${name}`), name);
  const mount = container.volumeMounts.find((m) => m.name === "tls");
  const secretName = spec.volumes.find((v) => v.name === "tls").secret.secretName;
  assert.equal(container.args[container.args.indexOf("--tls-cert-file") + 1], `${mount.mountPath}/tls.crt`);
  assert.equal(container.args[container.args.indexOf("--tls-key-file") + 1], `${mount.mountPath}/tls.key`);
  const port = container.ports.find((p) => p.name === "https").containerPort;
  assert.equal(port, 8443, "the binary's default --listen port");
  for (const probe of ["readinessProbe", "livenessProbe"]) assert.equal(container[probe].httpGet.scheme, "HTTPS");

  // The API server's view: the Service, the label, the namespaces, the policy.
  assert.equal(config.webhooks.length, 1);
  const [hook] = config.webhooks;
  assert.deepEqual(hook.clientConfig.service, { name: service.metadata.name, namespace, path: "/mutate", port: service.spec.ports[0].port });
  assert.equal(service.spec.ports[0].targetPort, "https");
  assert.deepEqual(service.spec.selector, deployment.spec.selector.matchLabels);
  assert.deepEqual(hook.objectSelector, { matchLabels: { "cwcreds/inject": "true" } });
  assert.deepEqual(hook.namespaceSelector.matchExpressions,
    [{ key: "kubernetes.io/metadata.name", operator: "NotIn", values: ["kube-system", namespace] }]);
  assert.deepEqual(hook.rules, [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], scope: "Namespaced" }]);
  assert.equal(hook.sideEffects, "None");
  assert.equal(hook.failurePolicy, "Fail");
  assert.equal(hook.reinvocationPolicy, "IfNeeded");
  assert.ok(hook.timeoutSeconds >= 2 && hook.timeoutSeconds <= 10);
  assert.deepEqual(hook.admissionReviewVersions, ["v1"]);

  // cert-manager (its CRDs are not in the Kubernetes schema: checked here by
  // hand): the serving Certificate fills the mounted Secret, names the
  // Service, comes from a CA Issuer, and that CA is what cainjector injects.
  const certificates = Object.fromEntries(objects.filter((o) => o.kind === "Certificate").map((o) => [o.metadata.name, o]));
  const issuers = Object.fromEntries(objects.filter((o) => o.kind === "Issuer").map((o) => [o.metadata.name, o]));
  const [injectNamespace, injectName] = config.metadata.annotations["cert-manager.io/inject-ca-from"].split("/");
  assert.equal(injectNamespace, namespace);
  const serving = certificates[injectName];
  assert.ok(serving, "inject-ca-from names no Certificate");
  assert.equal(serving.spec.secretName, secretName);
  assert.ok(serving.spec.dnsNames.includes(`${service.metadata.name}.${namespace}.svc`));
  assert.ok(serving.spec.usages.includes("server auth"));
  const caIssuer = issuers[serving.spec.issuerRef.name];
  assert.ok(caIssuer?.spec.ca, "the serving certificate is not signed by a CA Issuer");
  const ca = Object.values(certificates).find((c) => c.spec.secretName === caIssuer.spec.ca.secretName);
  assert.equal(ca?.spec.isCA, true);
  assert.ok(issuers[ca.spec.issuerRef.name]?.spec.selfSigned);
  for (const obj of [...Object.values(certificates), ...Object.values(issuers)]) assert.equal(obj.apiVersion, "cert-manager.io/v1");
});
