// Where a Kubernetes object keeps its pods: the mutation applied to a whole
// object (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob,
// and any other kind holding pod templates), with the patch paths made
// relative to the object.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "inject/pod_mutation.hpp"

namespace cw {

// The JSON pointer of the pod (template) inside `object`: "" for a Pod,
// "/spec/template" for the workloads, "/spec/jobTemplate/spec/template" for a
// CronJob; nullopt for every other kind (those pass through unchanged).
std::optional<std::string> pod_pointer(const nlohmann::json& object);

// Every pod (template) inside `object`: pod_pointer's for the kinds above;
// for any other kind (ReplicationController, PodTemplate, PyTorchJob, JobSet,
// LeaderWorkerSet, RayCluster, ...) each object under it that holds a pod
// spec with containers, found by a bounded walk.
std::vector<std::string> pod_pointers(const nlohmann::json& object);

// inject_pod on each of the object's pods; the Injection holds the whole
// object and a patch against it. Objects without a pod, workloads labelled
// cwcreds.coreweave.com/inject: "false" (the kustomize component's opt-out)
// and pods labelled cwcreds/inject: "false" come back unchanged, no patch,
// with `unchanged` saying why.
// An object injected before keeps its injection when these options would
// make the same sidecar (what later-added containers lack is added), and
// has it replaced otherwise.
InjectResult inject_object(const nlohmann::json& object, const InjectOptions& options);

// remove_pod (pod_removal.hpp) on each of the object's pods, with the same
// opt-outs; objects cwcreds never injected come back unchanged, saying so.
InjectResult remove_object(const nlohmann::json& object);

}  // namespace cw
