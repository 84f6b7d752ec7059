// What the manifest checks share (manifests.test.mjs, injection.test.mjs):
// where things are, `kubectl kustomize` and `cwcreds serve --help` read into
// values, accessors for a workload's pod spec and the sidecar in it, and the
// schema validation: kubernetes-models' compiled OpenAPI validators plus a
// strict walk over @kubernetes/client-node's generated models that rejects
// any field Kubernetes does not know.
//
// Environment: CWCREDS_BIN (the binary; default build/cwcreds), KUBECTL
// (default kubectl).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import * as k8s from "@kubernetes/client-node";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, "..", "..");
export const manifests = path.join(repo, "manifests");
export const bin = process.env.CWCREDS_BIN || path.join(repo, "build", "cwcreds");
export const kubectl = process.env.KUBECTL || "kubectl";
// The lines of interface.md these checks rely on, kept in the repository
// (interface_excerpt.sh checks the copy against interface.md when it is there).
export const interfaceExcerpt = path.join(here, "interface-excerpt.txt");

export const SIDECAR = "cwcreds";
export const AUDIENCE = "https://coreweave.com/iam";
const WORKLOAD_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"]);
// Custom resources: no schema in the Kubernetes models (checked otherwise).
const CUSTOM_GROUPS = new Set(["monitoring.coreos.com", "cert-manager.io"]);
export const isCustom = (obj) => CUSTOM_GROUPS.has(obj.apiVersion.split("/")[0]);

// ---------------------------------------------------------------- helpers

export function run(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: "utf8", timeout: 60_000, stdio: ["ignore", "pipe", "pipe"], ...opts });
}

export function render(dir) {
  const out = run(kubectl, ["kustomize", dir]);
  return parseAllDocuments(out).map((doc) => {
    if (doc.errors.length) throw new Error(`${dir}: ${doc.errors[0].message}`);
    return doc.toJS();
  }).filter(Boolean);
}

// Every directory under manifests/ with a kustomization.yaml that is not a Component.
export function overlays() {
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
export function serveHelp() {
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

export function podSpec(obj) {
  if (obj.kind === "Pod") return obj.spec;
  if (obj.kind === "CronJob") return obj.spec.jobTemplate.spec.template.spec;
  return obj.spec.template.spec;
}
export function envOf(container) { return Object.fromEntries((container.env || []).map((e) => [e.name, e.value])); }
export function mountOf(container, volume) { return (container.volumeMounts || []).find((m) => m.name === volume); }
export function workloads(objects) { return objects.filter((o) => WORKLOAD_KINDS.has(o.kind)); }
export function sidecarOf(spec) {
  const init = (spec.initContainers || []).find((c) => c.name === SIDECAR);
  if (init) return { container: init, native: true };
  const plain = (spec.containers || []).find((c) => c.name === SIDECAR);
  return plain ? { container: plain, native: false } : null;
}
export function appContainers(spec) { return spec.containers.filter((c) => c.name !== SIDECAR); }
export function hostPort(text) { const i = text.lastIndexOf(":"); return [text.slice(0, i).replace(/^\[|\]$/g, ""), Number(text.slice(i + 1))]; }

// --------------------------------------------------- schema validation

// kubernetes-models: one compiled OpenAPI validator per kind.
export async function validateWithModels(obj) {
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

export function strictValidate(obj) {
  const version = obj.apiVersion.split("/").pop();
  const type = `${version[0].toUpperCase()}${version.slice(1)}${obj.kind}`;
  assert.ok(typeof k8s[type]?.getAttributeTypeMap === "function", `no Kubernetes model for ${obj.apiVersion} ${obj.kind}`);
  const problems = [];
  strictWalk(obj, type, `${obj.kind}/${obj.metadata?.name}`, problems);
  assert.deepEqual(problems, [], `strict schema check failed:\n  ${problems.join("\n  ")}`);
}
