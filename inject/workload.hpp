// Where a Kubernetes object keeps its pod: the mutation applied to a whole
// object (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob),
// with the patch paths made relative to the object.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "inject/pod_mutation.hpp"

namespace cw {

// The JSON pointer of the pod (template) inside `object`: "" for a Pod,
// "/spec/template" for the workloads, "/spec/jobTemplate/spec/template" for a
// CronJob; nullopt for every other kind (those pass through unchanged).
std::optional<std::string> pod_pointer(const nlohmann::json& object);

// inject_pod on the object's pod; the Injection holds the whole object and a
// patch against it. Objects without a pod, workloads labelled
// cwcreds.coreweave.com/inject: "false" (the kustomize component's opt-out)
// and pods labelled cwcreds/inject: "false" come back unchanged, no patch.
InjectResult inject_object(const nlohmann::json& object, const InjectOptions& options);

}  // namespace cw
