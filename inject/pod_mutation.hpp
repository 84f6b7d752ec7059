// The one mutation that puts cwcreds into a pod, shared by `cwcreds inject`
// and `cwcreds webhook`: a pure function from a pod (or pod template) to the
// mutated pod plus the RFC 6902 JSON Patch between the two, or a refusal that
// names why this pod cannot be served correctly. It never half-injects.
//
// What it adds (the same as manifests/components/cwcreds, checked by the
// unit tests against those files):
//   - the cwcreds native sidecar as the first initContainers entry;
//   - the projected token volume `cwcreds-token` (audience
//     https://coreweave.com/iam, 3600 s), unless the pod already projects a
//     token with that audience (CoreWeave's direct setup, CoreWeave's
//     pod-identity-webhook): then the sidecar reads that one, so the token the
//     app presents is the token the sidecar knows;
//   - on every app and init container not skipped:
//     AWS_CONTAINER_CREDENTIALS_FULL_URI, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE,
//     AWS_CONFIG_FILE (each only when absent; a FULL_URI pointing at
//     CoreWeave's exchange endpoint is the direct setup and is replaced) and
//     read-only mounts of the token and of the AWS config file. The config
//     file is projected by the downward API from the pod annotation
//     cwcreds.coreweave.com/aws-config, so no ConfigMap has to exist in the
//     pod's namespace (an admission webhook must not create objects).
// Injecting twice equals injecting once; a pod injected earlier gets only
// what later-added containers lack (admission reinvocation).
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace cw {

// Defaults for what pod annotations may override (flags of inject/webhook).
struct InjectOptions {
    std::string image;                               // the sidecar image
    std::string org_id;                              // empty: from the annotation or a migrated FULL_URI
    std::string exchange = "container-credentials";  // or oidc
    std::string duration = "1h";                     // key lifetime in oidc mode
};

// Pod annotations read (and, for the last two, written) by the mutation.
namespace annotation {
inline constexpr std::string_view org_id = "cwcreds.coreweave.com/org-id";
inline constexpr std::string_view exchange = "cwcreds.coreweave.com/exchange";
inline constexpr std::string_view duration = "cwcreds.coreweave.com/duration";
inline constexpr std::string_view image = "cwcreds.coreweave.com/image";
inline constexpr std::string_view skip_containers = "cwcreds.coreweave.com/skip-containers";
inline constexpr std::string_view guaranteed = "cwcreds.coreweave.com/guaranteed";
inline constexpr std::string_view aws_config = "cwcreds.coreweave.com/aws-config";
inline constexpr std::string_view injected = "cwcreds.coreweave.com/injected";
// {"<container>": "<value>"}: each FULL_URI at CoreWeave's exchange endpoint
// the injection pointed at the sidecar, so removing cwcreds restores it.
inline constexpr std::string_view replaced_full_uri = "cwcreds.coreweave.com/replaced-full-uri";
inline constexpr std::string_view port = "cwcreds.coreweave.com/port";
inline constexpr std::string_view startup_gate = "cwcreds.coreweave.com/startup-gate";
inline constexpr std::string_view probe_port = "cwcreds.coreweave.com/probe-port";
inline constexpr std::string_view cpu_request = "cwcreds.coreweave.com/cpu-request";
inline constexpr std::string_view cpu_limit = "cwcreds.coreweave.com/cpu-limit";
inline constexpr std::string_view memory_request = "cwcreds.coreweave.com/memory-request";
inline constexpr std::string_view memory_limit = "cwcreds.coreweave.com/memory-limit";
}  // namespace annotation

// The label the webhook keys on (interface.md).
inline constexpr std::string_view k_inject_label = "cwcreds/inject";

// The AWS config file injected pods get unless the annotation above says
// otherwise; the same text as manifests/components/cwcreds/aws-config.
std::string_view default_aws_config();

// What the owner of a pod should know although cwcreds could inject it: the
// webhook returns these as AdmissionReview warnings (kubectl prints them),
// `inject` prints them on stderr. Each is one short sentence.
using Warnings = std::vector<std::string>;

struct Injection {
    nlohmann::json pod;    // the input with the patch applied
    nlohmann::json patch;  // RFC 6902 operations; an empty array when nothing was missing
    Warnings warnings;
    std::string unchanged;  // for a whole object left as it was: why ("holds no pod template", ...)
};

struct Refusal {
    std::string reason;  // names the container, volume, port or annotation at fault
};

using InjectResult = std::variant<Injection, Refusal>;

// `pod` is an object with "spec" (and usually "metadata"): a Pod, or the
// `template` of a workload; patch paths are relative to it.
InjectResult inject_pod(const nlohmann::json& pod, const InjectOptions& options);

struct Patch {
    nlohmann::json operations;  // RFC 6902; an empty array when nothing was missing
    Warnings warnings;
};

using PatchResult = std::variant<Patch, Refusal>;

// The same decision without applying it: the webhook answers with the patch
// alone (the API server applies it), and copying the pod to patch it would
// be a quarter of its work per review.
PatchResult pod_patch(const nlohmann::json& pod, const InjectOptions& options);

}  // namespace cw
