// Offline checks of the operations kit in manifests/monitoring (node --test;
// run through tests/manifests/run.sh): the Grafana dashboard is JSON whose
// every query names only metrics the sidecar or the webhook exports, and the
// PodMonitors scrape the ports the sidecar and webhook pods really declare.
// A dashboard or scrape that names nothing real shows empty panels, which a
// user notices only when they need them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { SIDECAR, envOf, hostPort, manifests, podSpec, render, repo, sidecarOf } from "./support.mjs";

const monitoring = render(path.join(manifests, "monitoring"));
const example = render(path.join(manifests, "example"));
const webhook = render(path.join(manifests, "webhook"));

// What the binary's two /metrics write: every cwcreds_* name in their sources,
// and the series a histogram adds.
function exportedMetrics() {
  const sources = [path.join("sidecar", "serve", "metrics.cpp"), path.join("webhook", "webhook_server.cpp")];
  const names = new Set(sources.flatMap((file) => readFileSync(path.join(repo, file), "utf8").match(/cwcreds_[a-z0-9_]+/g)));
  for (const name of [...names]) for (const suffix of ["_bucket", "_sum", "_count"]) names.add(name + suffix);
  return names;
}

function queriesOf(dashboard) {
  const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels || [])]);
  const exprs = panels.flatMap((p) => (p.targets || []).map((t) => ({ panel: p.title, expr: t.expr })));
  for (const variable of dashboard.templating.list) {
    if (variable.type === "query") exprs.push({ panel: `$${variable.name}`, expr: variable.definition });
  }
  return exprs;
}

const dashboardText = readFileSync(path.join(manifests, "monitoring", "grafana-dashboard.json"), "utf8");

test("monitoring: the Grafana dashboard is JSON and queries only metrics the binary exports", () => {
  const dashboard = JSON.parse(dashboardText);
  const exported = exportedMetrics();
  const queries = queriesOf(dashboard);
  assert.ok(queries.length > 10, "the dashboard has queries");
  const used = new Set();
  for (const { panel, expr } of queries) {
    const names = expr.match(/cwcreds_[a-z0-9_]+/g) || [];
    assert.ok(names.length > 0, `${panel}: queries no cwcreds metric`);
    for (const name of names) {
      assert.ok(exported.has(name), `${panel}: ${name} is not a metric cwcreds exports`);
      used.add(name);
    }
  }
  // What the dashboard promises to show: the sidecar's credential time left and
  // refresh results, requests by code, the webhook's reviews, latency and connections.
  for (const name of ["cwcreds_credentials_expires_in_seconds", "cwcreds_exchanges_total", "cwcreds_http_requests_total",
    "cwcreds_webhook_admissions_total", "cwcreds_webhook_admission_seconds_total", "cwcreds_webhook_connections"]) {
    assert.ok(used.has(name), `no panel shows ${name}`);
  }
  // Panels never overlap on the grid.
  const cells = new Set();
  for (const p of dashboard.panels) {
    for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
      for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
        assert.ok(!cells.has(`${x},${y}`), `${p.title} overlaps another panel at ${x},${y}`);
        cells.add(`${x},${y}`);
      }
    }
    assert.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title} is wider than the grid`);
  }
});

test("monitoring: the check above catches a query of a metric that does not exist", () => {
  const dashboard = JSON.parse(dashboardText);
  dashboard.panels.find((p) => p.targets).targets[0].expr = "rate(cwcreds_no_such_metric_total[5m])";
  const exported = exportedMetrics();
  const unknown = queriesOf(dashboard).flatMap(({ expr }) => expr.match(/cwcreds_[a-z0-9_]+/g) || []).filter((n) => !exported.has(n));
  assert.deepEqual(unknown, ["cwcreds_no_such_metric_total"]);
});

test("monitoring: the dashboard ships as a ConfigMap for Grafana's dashboard sidecar", () => {
  const configMap = monitoring.find((o) => o.kind === "ConfigMap" && o.metadata.name === "cwcreds-grafana-dashboard");
  assert.ok(configMap, "no dashboard ConfigMap");
  assert.equal(configMap.metadata.labels.grafana_dashboard, "1");
  assert.deepEqual(JSON.parse(configMap.data["grafana-dashboard.json"]), JSON.parse(dashboardText));
});

test("monitoring: the sidecars' PodMonitor scrapes the probe port, where /metrics is served", () => {
  const monitor = monitoring.find((o) => o.kind === "PodMonitor" && o.metadata.name === "cwcreds-sidecars");
  assert.equal(monitor.apiVersion, "monitoring.coreos.com/v1");
  const [endpoint] = monitor.spec.podMetricsEndpoints;
  assert.equal(monitor.spec.podMetricsEndpoints.length, 1);
  assert.equal(endpoint.path, "/metrics");
  assert.equal(endpoint.scheme, "http");
  assert.deepEqual(monitor.spec.namespaceSelector, { any: true });
  // The port it names is the sidecar's port whose number the probe listener binds.
  const deployment = example.find((o) => o.kind === "Deployment");
  const sidecar = sidecarOf(podSpec(deployment)).container;
  assert.equal(sidecar.name, SIDECAR);
  const [, probePort] = hostPort(envOf(sidecar).CWCREDS_PROBE_LISTEN);
  const declared = sidecar.ports.find((p) => p.name === endpoint.port);
  assert.ok(declared, `the sidecar declares no port named ${endpoint.port}`);
  assert.equal(declared.containerPort, probePort);
});

test("monitoring: the webhook's PodMonitor scrapes its HTTPS port in its namespace", () => {
  const monitor = monitoring.find((o) => o.kind === "PodMonitor" && o.metadata.name === "cwcreds-webhook");
  const deployment = webhook.find((o) => o.kind === "Deployment");
  const [endpoint] = monitor.spec.podMetricsEndpoints;
  assert.equal(endpoint.path, "/metrics");
  assert.equal(endpoint.scheme, "https");
  assert.deepEqual(monitor.spec.namespaceSelector.matchNames, [deployment.metadata.namespace]);
  const labels = deployment.spec.template.metadata.labels;
  for (const [key, value] of Object.entries(monitor.spec.selector.matchLabels)) assert.equal(labels[key], value, key);
  const container = podSpec(deployment).containers[0];
  const declared = (container.ports || []).find((p) => p.name === endpoint.port);
  assert.ok(declared, `the webhook declares no port named ${endpoint.port}`);
  // That port is the one the webhook listens on (--listen, default 0.0.0.0:8443).
  const listen = envOf(container).CWCREDS_LISTEN || "0.0.0.0:8443";
  assert.equal(declared.containerPort, hostPort(listen)[1]);
});
