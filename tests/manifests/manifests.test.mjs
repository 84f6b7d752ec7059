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
// 4. The example NetworkPolicy opens only the probe port.
// 5. Resources that are not Kubernetes' own (PrometheusRule) are checked by
//    promtool; their schema is not in the Kubernetes models.
//
// Putting the sidecar into workloads (the kustomize component, `cwcreds
// inject`, the webhook's manifests) is checked in injection.test.mjs; what
// both share is in support.mjs.
//
// Environment: CWCREDS_BIN (the binary; default build/cwcreds), KUBECTL
// (default kubectl). Needs nothing from the network.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  AUDIENCE, SIDECAR, appContainers, envOf, hostPort, interfaceExcerpt, isCustom, manifests, mountOf, overlays,
  podSpec, render, repo, run, serveHelp, sidecarOf, strictValidate, validateWithModels, workloads,
} from "./support.mjs";

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
  // The kubelet writes a Secret's files owned by root with defaultMode (0644
  // when unset); with no fsGroup, the sidecar's own uid reads them as "others".
  const mode = secretVolume.secret.defaultMode ?? 0o644;
  assert.ok(spec.securityContext.fsGroup !== undefined || (mode & 0o004) !== 0,
    `defaultMode 0${mode.toString(8)} without fsGroup: uid ${container.securityContext?.runAsUser} cannot read the token`);
  assert.equal(env.CWCREDS_ACCEPT_TOKEN_FILE, path.posix.join(mount.mountPath, "token"));
  assert.equal(env.CWCREDS_IMDS_LISTEN, "127.0.0.1:80");
  assert.deepEqual(spec.securityContext.sysctls, [{ name: "net.ipv4.ip_unprivileged_port_start", value: "80" }]);
  for (const app of appContainers(spec)) {
    const entry = (app.env || []).find((e) => e.name === "AWS_CONTAINER_AUTHORIZATION_TOKEN");
    assert.deepEqual(entry?.valueFrom?.secretKeyRef, { key: "token", name: "cwcreds-caller-token" }, app.name);
    assert.equal(envOf(app).AWS_EC2_METADATA_SERVICE_ENDPOINT, "http://127.0.0.1:80", app.name);
    assert.equal(envOf(app).AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, "/var/run/secrets/cwcreds.coreweave.com/serviceaccount/oidc-token", app.name);
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
      // It outlives the app's own shutdown by its drain delay, within the
      // grace period, with no exec hook: the image has no shell or sleep.
      assert.equal(container.lifecycle, undefined, "an exec hook names a program the image does not have");
      const drain = sidecarEnv.CWCREDS_DRAIN_DELAY;
      assert.ok(help["--drain-delay"], "--drain-delay is not a serve flag");
      assert.match(drain ?? "", /^\d+s$/);
      assert.ok(parseInt(drain) >= 5 && parseInt(drain) < (spec.terminationGracePeriodSeconds ?? 30));
    } else {
      assert.equal(sidecar.native, true);
      assert.equal(container.restartPolicy, "Always");
      assert.equal(spec.initContainers[0].name, SIDECAR, "the native sidecar must be the first init container");
    }
    if (workload.kind === "Job") assert.ok(["Never", "OnFailure"].includes(spec.restartPolicy));

    // The token: projected with CoreWeave's audience, read-only in every container.
    // Set explicitly, at a path only cwcreds mounts: the binary's default
    // directory, /var/run/secrets/tokens, is where mesh proxies mount theirs.
    const tokenFile = sidecarEnv.CWCREDS_TOKEN_FILE;
    assert.equal(tokenFile, "/var/run/secrets/cwcreds.coreweave.com/serviceaccount/oidc-token");
    assert.notEqual(path.posix.dirname(tokenFile), path.posix.dirname(help["--token-file"].default));
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
    // The startup probe passes with keys, or once serve's --startup-gate has
    // passed without them; the kubelet must not restart the sidecar before.
    const gate = help["--startup-gate"];
    assert.ok(gate, "--startup-gate is not a serve flag");
    const gateSeconds = parseInt(sidecarEnv.CWCREDS_STARTUP_GATE ?? gate.default) * (/m$/.test(sidecarEnv.CWCREDS_STARTUP_GATE ?? gate.default) ? 60 : 1);
    assert.ok(container.startupProbe.periodSeconds * container.startupProbe.failureThreshold > gateSeconds,
      "the kubelet would restart the sidecar before its startup gate opens");
    const expected = { startupProbe: "/startupz", livenessProbe: "/healthz" };
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
