// The parts of the pod mutation (pod_mutation.cpp), shared by the files that
// implement it; internal to inject/, not an interface (that is
// pod_mutation.hpp). Each file holds one concern:
//   pod_fields.cpp          reading a pod nobody vouched for: members, lists and
//                           strings that may be missing or of the wrong type,
//                           and the refusal that ends the attempt;
//   injection_settings.cpp  what the annotations and the options settle: image,
//                           org id, exchange mode, duration, size, skipped
//                           containers;
//   sidecar_spec.cpp        the sidecar container and the volumes it brings;
//   pod_mutation.cpp        what each container lacks, and the patch.
#pragma once

#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "inject/pod_mutation.hpp"

namespace cw::mutation {

using json = nlohmann::json;

inline constexpr std::string_view k_sidecar = "cwcreds";
inline constexpr std::string_view k_token_volume = "cwcreds-token";
inline constexpr std::string_view k_config_volume = "cwcreds-aws";
inline constexpr std::string_view k_audience = "https://coreweave.com/iam";
inline constexpr std::string_view k_token_path = "oidc-token";
// A directory only cwcreds uses: meshes and other injectors mount their own
// tokens at /var/run/secrets/tokens (Istio's istio-token, for one), and a
// shared path would make either injection refuse the other's.
inline constexpr std::string_view k_token_dir = "/var/run/secrets/cwcreds.coreweave.com/serviceaccount";
inline constexpr std::string_view k_config_dir = "/etc/cwcreds-aws";
inline constexpr int k_default_port = 9911;
// serve's --startup-gate default: how long the app waits for keys before it
// starts anyway and fails with the sidecar's reason.
inline constexpr std::chrono::seconds k_default_startup_gate{120};
inline constexpr int k_default_probe_port = 9912;
inline constexpr std::string_view k_exchange_endpoint =
    "https://api.coreweave.com/v1/cwobject/temporary-credentials/oidc";
inline constexpr std::string_view k_full_uri = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
inline constexpr std::string_view k_token_file = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
inline constexpr std::string_view k_config_file = "AWS_CONFIG_FILE";

inline constexpr std::string_view k_job_deadline_warning =
    "a Job without activeDeadlineSeconds: if CoreWeave rejects the token, the app starts after the startup gate "
    "and fails, but nothing bounds how long the Job runs; set activeDeadlineSeconds";

// Thrown only inside pod_patch and turned into a Refusal there: deciding
// takes many small checks, each of which can end the attempt.
struct Refused {
    std::string reason;
};

[[noreturn]] void refuse(std::string reason);

std::string pointer_token(std::string_view key);

const json* member(const json& object, std::string_view key);

// A list the pod may leave out; anything but a list of objects is refused.
const json& list_at(const json& object, std::string_view key, const std::string& where);

std::string string_at(const json& object, std::string_view key);

std::string trimmed(std::string_view text);

std::string without_trailing_slash(std::string path);

// The sidecar's cpu and memory, as Kubernetes quantities.
struct Resources {
    std::string cpu_request = "10m";
    std::string memory_request = "24Mi";
    std::string cpu_limit = "500m";
    std::string memory_limit = "64Mi";
};

// The pod's QoS class before injection, as the API server computes it.
enum class Qos { best_effort, burstable, guaranteed };

// Everything the pod's annotations and the options settle.
struct Settings {
    std::string image;
    std::string org_id;
    std::string exchange;
    std::string duration;
    bool guaranteed = false;
    std::set<std::string, std::less<>> skip;
    bool has_aws_config_annotation = false;
    int port = k_default_port;              // credentials, on 127.0.0.1
    int probe_port = k_default_probe_port;  // /healthz, /readyz, /metrics
    bool ports_annotated = false;
    bool host_network = false;  // the pod shares the node's network
    Resources resources;
    bool no_resources = false;  // a BestEffort pod's sidecar: none, so the pod stays BestEffort
    std::string startup_gate;   // the annotation's text; empty: serve's default
    std::chrono::seconds startup_gate_seconds = k_default_startup_gate;
};

// Where the app containers ask for credentials, the sidecar serving on `port`.
std::string credentials_uri(int port);

// The org id in a CoreWeave container-credentials URL (the direct setup).
std::optional<std::string> org_in_exchange_url(std::string_view url);

bool is_exchange_url(std::string_view url);

bool is_org_id(std::string_view text);

// `qos`: the pod's class without the sidecar, which the sidecar keeps
// (Guaranteed: its requests equal its limits; BestEffort: it has none)
// unless the owner's annotations say otherwise.
Settings settle(const json& annotations, const InjectOptions& options, const std::vector<const json*>& containers,
                bool host_network, Qos qos, Warnings& warnings);

json env_var(std::string_view name, std::string_view value);

json sidecar_container(const Settings& settings, std::string_view token_volume, std::string_view token_path);

json token_volume_spec();

json config_volume_spec();

}  // namespace cw::mutation
