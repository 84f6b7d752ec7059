// Offline checks of putting the sidecar into workloads (node --test; run
// through tests/manifests/run.sh):
//
// 1. The kustomize component works on a workload it has never seen (other
//    container names, several containers, every workload kind, init
//    containers, the opt-out labels), and its three copies of the sidecar
//    are one.
// 2. `cwcreds inject` on every pod shape of tests/fixtures/inject: each JSON
//    Patch it prints, applied by `kubectl patch --local --type json`, gives
//    the object it writes, and that object passes the strict schema check;
//    the shapes it must refuse exit 2 with the reason.
// 3. The webhook's manifests (configuration, Deployment, Service,
//    certificates) agree with each other and with `cwcreds webhook --help`.
//
// The rendered overlays themselves are checked in manifests.test.mjs; what
// both share is in support.mjs.
//
// Environment: CWCREDS_BIN (the binary; default build/cwcreds), KUBECTL
// (default kubectl). Needs nothing from the network.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseAllDocuments } from "yaml";
import {
  SIDECAR, bin, envOf, kubectl, manifests, mountOf, overlays, podSpec, render, repo, run, sidecarOf,
  strictValidate, workloads,
} from "./support.mjs";

// ------------------------------------------------------------------ tests

const rendered = Object.fromEntries(overlays().map((dir) => [dir, render(path.join(manifests, dir))]));

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
        assert.equal(env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, "/var/run/secrets/cwcreds.coreweave.com/serviceaccount/oidc-token");
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
        assert.equal(env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, "/var/run/secrets/cwcreds.coreweave.com/serviceaccount/oidc-token", `${name}/${c.name}`);
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
  // A hard dependency of pod creation: preempted last, and the replicas
  // really kept apart (a soft spread lets the scheduler stack them).
  assert.equal(spec.priorityClassName, "system-cluster-critical");
  const [spread] = spec.topologySpreadConstraints;
  assert.equal(spread.topologyKey, "kubernetes.io/hostname");
  assert.equal(spread.whenUnsatisfiable, "DoNotSchedule");
  assert.equal(spread.nodeTaintsPolicy, "Honor");
  assert.deepEqual(spread.labelSelector.matchLabels, deployment.spec.selector.matchLabels);
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
  // The webhook gives a request 5 s to arrive whole (webhook_server.cpp); a
  // longer API server timeout would wait on connections already given up.
  assert.ok(hook.timeoutSeconds >= 2 && hook.timeoutSeconds <= 5);
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
