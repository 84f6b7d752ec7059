// The mutation: read the pod, decide every change or refuse, then emit the
// changes as JSON Patch operations (pod_patch) and, for cwcreds inject, apply
// them to a copy (inject_pod).
//
// The patch is built here rather than with nlohmann::json::diff: diff compares
// arrays index by index, so inserting the sidecar in front of existing init
// containers would come out as a "replace" of every field of every one of
// them plus an "add" at the end. That applies correctly to the very object it
// was computed from, but it is unreadable in audit logs and breaks as soon as
// anything else touched the list. Here every operation is an "add" of what
// is missing (or the one "replace" of a migrated FULL_URI), and the mutated
// pod is the patch applied, so the two cannot disagree.
#include "inject/pod_mutation.hpp"

#include <algorithm>
#include <array>
#include <optional>
#include <set>
#include <stdexcept>
#include <vector>

#include "common/duration.hpp"

namespace cw {

namespace {

using json = nlohmann::json;

constexpr std::string_view k_sidecar = "cwcreds";
constexpr std::string_view k_token_volume = "cwcreds-token";
constexpr std::string_view k_config_volume = "cwcreds-aws";
constexpr std::string_view k_audience = "https://coreweave.com/iam";
constexpr std::string_view k_token_path = "oidc-token";
constexpr std::string_view k_token_dir = "/var/run/secrets/tokens";
constexpr std::string_view k_config_dir = "/etc/cwcreds-aws";
constexpr std::string_view k_credentials_uri = "http://127.0.0.1:9911/v1/credentials";
constexpr std::string_view k_exchange_endpoint = "https://api.coreweave.com/v1/cwobject/temporary-credentials/oidc";
constexpr std::string_view k_full_uri = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
constexpr std::string_view k_token_file = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
constexpr std::string_view k_config_file = "AWS_CONFIG_FILE";
constexpr std::array<int, 2> k_sidecar_ports{9911, 9912};

constexpr std::string_view k_aws_config =
    R"(# AWS SDK / CLI configuration for CoreWeave AI Object Storage, mounted from a
# ConfigMap and named by AWS_CONFIG_FILE (CoreWeave's "Configure S3 endpoints
# for Pods"). Inside CKS the LOTA endpoint is the fast one; from outside use
# https://cwobject.com. CoreWeave needs virtual-hosted addressing.
[default]
region = US-EAST-04A
endpoint_url = http://cwlota.com
s3 =
    addressing_style = virtual
)";

// Thrown only inside pod_patch and turned into a Refusal there: deciding
// takes many small checks, each of which can end the attempt.
struct Refused {
    std::string reason;
};

[[noreturn]] void refuse(std::string reason)
{
    throw Refused{std::move(reason)};
}

std::string pointer_token(std::string_view key)
{
    std::string out;
    for (const char c : key) {
        if (c == '~') {
            out += "~0";
        } else if (c == '/') {
            out += "~1";
        } else {
            out += c;
        }
    }
    return out;
}

const json* member(const json& object, std::string_view key)
{
    if (!object.is_object()) {
        return nullptr;
    }
    const auto it = object.find(key);
    return it == object.end() ? nullptr : &*it;
}

// A list the pod may leave out; anything but a list of objects is refused.
const json& list_at(const json& object, std::string_view key, const std::string& where)
{
    static const json empty = json::array();
    const json* value = member(object, key);
    if (value == nullptr || value->is_null()) {
        return empty;
    }
    if (!value->is_array() ||
        !std::all_of(value->begin(), value->end(), [](const json& item) { return item.is_object(); })) {
        refuse(where + "." + std::string{key} + " is not a list of objects");
    }
    return *value;
}

std::string string_at(const json& object, std::string_view key)
{
    const json* value = member(object, key);
    return value != nullptr && value->is_string() ? value->get<std::string>() : std::string{};
}

std::string trimmed(std::string_view text)
{
    const auto first = text.find_first_not_of(" \t");
    if (first == std::string_view::npos) {
        return {};
    }
    return std::string{text.substr(first, text.find_last_not_of(" \t") - first + 1)};
}

std::string without_trailing_slash(std::string path)
{
    while (path.size() > 1 && path.back() == '/') {
        path.pop_back();
    }
    return path;
}

// Everything the pod's annotations and the options settle.
struct Settings {
    std::string image;
    std::string org_id;
    std::string exchange;
    std::string duration;
    bool guaranteed = false;
    std::set<std::string, std::less<>> skip;
    bool has_aws_config_annotation = false;
};

// The org id in a CoreWeave container-credentials URL (the direct setup).
std::optional<std::string> org_in_exchange_url(std::string_view url)
{
    const std::string prefix = std::string{k_exchange_endpoint} + "/";
    if (url.substr(0, prefix.size()) != prefix) {
        return std::nullopt;
    }
    std::string_view org = url.substr(prefix.size());
    org = org.substr(0, org.find_first_of("/?#"));
    return org.empty() ? std::nullopt : std::optional<std::string>{org};
}

bool is_exchange_url(std::string_view url)
{
    return url.substr(0, k_exchange_endpoint.size()) == k_exchange_endpoint &&
           (url.size() == k_exchange_endpoint.size() || url[k_exchange_endpoint.size()] == '/' ||
            url[k_exchange_endpoint.size()] == '?');
}

bool is_org_id(std::string_view text)
{
    return !text.empty() && text.size() <= 128 && std::all_of(text.begin(), text.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
               c == '.';
    });
}

Settings settle(const json& annotations, const InjectOptions& options, const std::vector<const json*>& containers)
{
    const auto annotated = [&annotations](std::string_view key) -> std::optional<std::string> {
        const json* value = member(annotations, key);
        if (value == nullptr) {
            return std::nullopt;
        }
        if (!value->is_string()) {
            refuse("annotation " + std::string{key} + " is not a string");
        }
        return value->get<std::string>();
    };
    Settings settings;
    settings.image = annotated(annotation::image).value_or(options.image);
    if (settings.image.empty()) {
        refuse("no sidecar image: set annotation " + std::string{annotation::image} + " or give --image");
    }
    settings.exchange = annotated(annotation::exchange).value_or(options.exchange);
    if (settings.exchange != "container-credentials" && settings.exchange != "oidc") {
        refuse("annotation " + std::string{annotation::exchange} + ": '" + settings.exchange +
               "' is not container-credentials or oidc");
    }
    settings.duration = annotated(annotation::duration).value_or(options.duration);
    const auto duration = parse_duration(settings.duration);
    if (!duration || *duration < std::chrono::seconds{1} || *duration > std::chrono::hours{12}) {
        refuse("annotation " + std::string{annotation::duration} + ": '" + settings.duration +
               "' is not a duration from 1s to 12h (examples: 15m, 1h)");
    }
    settings.org_id = annotated(annotation::org_id).value_or(options.org_id);
    if (settings.org_id.empty()) {
        // The direct setup names the org in its URL; migrating keeps it.
        for (const json* container : containers) {
            for (const json& env : list_at(*container, "env", "container")) {
                if (string_at(env, "name") == k_full_uri) {
                    if (auto org = org_in_exchange_url(string_at(env, "value"))) {
                        settings.org_id = *org;
                    }
                }
            }
        }
    }
    if (settings.org_id.empty()) {
        refuse("no CoreWeave organization id: set annotation " + std::string{annotation::org_id} + " or give --org-id");
    }
    if (!is_org_id(settings.org_id)) {
        refuse("annotation " + std::string{annotation::org_id} + ": '" + settings.org_id +
               "' is not an organization id (letters, digits, '-', '_', '.')");
    }
    const std::string guaranteed = annotated(annotation::guaranteed).value_or("false");
    if (guaranteed != "true" && guaranteed != "false") {
        refuse("annotation " + std::string{annotation::guaranteed} + ": '" + guaranteed + "' is not true or false");
    }
    settings.guaranteed = guaranteed == "true";
    const std::string skip = annotated(annotation::skip_containers).value_or("");
    for (std::size_t start = 0; start <= skip.size();) {
        const auto comma = std::min(skip.find(',', start), skip.size());
        if (auto name = trimmed(std::string_view{skip}.substr(start, comma - start)); !name.empty()) {
            settings.skip.insert(std::move(name));
        }
        start = comma + 1;
    }
    for (const auto& name : settings.skip) {
        if (std::none_of(containers.begin(), containers.end(),
                         [&name](const json* c) { return string_at(*c, "name") == name; })) {
            refuse("annotation " + std::string{annotation::skip_containers} + " names container '" + name +
                   "', which the pod does not have");
        }
    }
    settings.has_aws_config_annotation = member(annotations, annotation::aws_config) != nullptr;
    return settings;
}

json env_var(std::string_view name, std::string_view value)
{
    return {{"name", name}, {"value", value}};
}

json sidecar_container(const Settings& settings, std::string_view token_volume, std::string_view token_path)
{
    json env =
        json::array({env_var("CWCREDS_ORG_ID", settings.org_id), env_var("CWCREDS_EXCHANGE", settings.exchange)});
    if (settings.exchange == "oidc") {
        env.push_back(env_var("CWCREDS_DURATION", settings.duration));
    }
    env.push_back(env_var("CWCREDS_PROBE_LISTEN", "0.0.0.0:9912"));
    env.push_back(env_var("CWCREDS_TOKEN_FILE", std::string{k_token_dir} + "/" + std::string{token_path}));
    const json probe_get = {{"path", "/readyz"}, {"port", "cwcreds-probes"}};
    // The same container as manifests/components/cwcreds/sidecar.yaml, whose
    // comments say why each value is what it is (a unit test compares them).
    return {
        {"name", k_sidecar},
        {"image", settings.image},
        {"imagePullPolicy", "IfNotPresent"},
        {"restartPolicy", "Always"},
        {"args", {"serve"}},
        {"env", env},
        {"ports", {{{"name", "cwcreds-probes"}, {"containerPort", 9912}, {"protocol", "TCP"}}}},
        {"startupProbe",
         {{"httpGet", probe_get}, {"periodSeconds", 1}, {"timeoutSeconds", 1}, {"failureThreshold", 60}}},
        {"livenessProbe",
         {{"httpGet", {{"path", "/healthz"}, {"port", "cwcreds-probes"}}},
          {"periodSeconds", 10},
          {"timeoutSeconds", 5},
          {"failureThreshold", 6}}},
        {"resources", settings.guaranteed ? json{{"requests", {{"cpu", "100m"}, {"memory", "64Mi"}}},
                                                 {"limits", {{"cpu", "100m"}, {"memory", "64Mi"}}}}
                                          : json{{"requests", {{"cpu", "10m"}, {"memory", "24Mi"}}},
                                                 {"limits", {{"cpu", "500m"}, {"memory", "64Mi"}}}}},
        {"securityContext",
         {{"runAsNonRoot", true},
          {"runAsUser", 65532},
          {"runAsGroup", 65532},
          {"readOnlyRootFilesystem", true},
          {"allowPrivilegeEscalation", false},
          {"capabilities", {{"drop", {"ALL"}}}},
          {"seccompProfile", {{"type", "RuntimeDefault"}}}}},
        {"volumeMounts", {{{"name", token_volume}, {"mountPath", k_token_dir}, {"readOnly", true}}}},
    };
}

json token_volume_spec()
{
    return {{"name", k_token_volume},
            {"projected",
             {{"sources",
               {{{"serviceAccountToken",
                  {{"path", k_token_path}, {"audience", k_audience}, {"expirationSeconds", 3600}}}}}}}}};
}

json config_volume_spec()
{
    const std::string field = "metadata.annotations['" + std::string{annotation::aws_config} + "']";
    return {{"name", k_config_volume},
            {"downwardAPI", {{"items", {{{"path", "config"}, {"fieldRef", {{"fieldPath", field}}}}}}}}};
}

// A projected token with CoreWeave's audience already in the pod.
struct TokenVolume {
    std::string name;
    std::string path;  // file name inside the volume
};

std::optional<TokenVolume> coreweave_token_volume(const json& volumes)
{
    for (const json& volume : volumes) {
        const json* projected = member(volume, "projected");
        const json* sources = projected != nullptr ? member(*projected, "sources") : nullptr;
        if (sources == nullptr || !sources->is_array()) {
            continue;
        }
        for (const json& source : *sources) {
            const json* token = member(source, "serviceAccountToken");
            if (token != nullptr && string_at(*token, "audience") == k_audience) {
                return TokenVolume{string_at(volume, "name"), string_at(*token, "path")};
            }
        }
    }
    return std::nullopt;
}

// Appends to a list that may be missing: one "add" of the whole list, or one
// "add .../-" per item.
void append_items(json& ops, const json& object, const std::string& pointer, std::string_view key, json items)
{
    if (items.empty()) {
        return;
    }
    const json* existing = member(object, key);
    const std::string path = pointer + "/" + std::string{key};
    if (existing == nullptr || existing->is_null()) {
        ops.push_back({{"op", "add"}, {"path", path}, {"value", std::move(items)}});
        return;
    }
    for (json& item : items) {
        ops.push_back({{"op", "add"}, {"path", path + "/-"}, {"value", std::move(item)}});
    }
}

// The env and mounts one app or init container lacks.
void inject_container(json& ops, const json& container, const std::string& pointer, const TokenVolume& token,
                      const std::string& where)
{
    const json& env = list_at(container, "env", where);
    const json& mounts = list_at(container, "volumeMounts", where);
    json new_env = json::array();
    json new_mounts = json::array();

    const auto env_index = [&env](std::string_view name) -> std::optional<std::size_t> {
        for (std::size_t i = 0; i < env.size(); ++i) {
            if (string_at(env[i], "name") == name) {
                return i;
            }
        }
        return std::nullopt;
    };
    const auto mount_path_of = [&mounts](std::string_view volume) -> std::optional<std::string> {
        for (const json& mount : mounts) {
            if (string_at(mount, "name") == volume) {
                return without_trailing_slash(string_at(mount, "mountPath"));
            }
        }
        return std::nullopt;
    };
    const auto claim_mount_path = [&mounts, &where](std::string_view path) {
        for (const json& mount : mounts) {
            if (without_trailing_slash(string_at(mount, "mountPath")) == path) {
                refuse(where + " already mounts volume '" + string_at(mount, "name") + "' at " + std::string{path} +
                       ", where cwcreds mounts its own");
            }
        }
    };

    // The token: where this container sees it, mounting it if need be.
    std::string token_dir;
    if (auto path = mount_path_of(token.name)) {
        token_dir = *path;
    } else {
        claim_mount_path(k_token_dir);
        token_dir = k_token_dir;
        new_mounts.push_back({{"name", token.name}, {"mountPath", k_token_dir}, {"readOnly", true}});
    }
    const std::string token_file = token_dir + "/" + token.path;
    if (const auto i = env_index(k_token_file)) {
        const json* value = member(env[*i], "value");
        if (value == nullptr || !value->is_string() || value->get<std::string>() != token_file) {
            refuse(where + " sets " + std::string{k_token_file} + " to " +
                   (value != nullptr ? value->dump() : "a valueFrom") +
                   ", but the sidecar authenticates callers with the token at " + token_file +
                   "; remove the variable or point it there");
        }
    } else {
        new_env.push_back(env_var(k_token_file, token_file));
    }

    // The credentials URI: the user's unless it is CoreWeave's own endpoint.
    if (const auto i = env_index(k_full_uri)) {
        const std::string value = string_at(env[*i], "value");
        if (value != k_credentials_uri && is_exchange_url(value)) {
            ops.push_back({{"op", "replace"},
                           {"path", pointer + "/env/" + std::to_string(*i) + "/value"},
                           {"value", k_credentials_uri}});
        }
    } else {
        new_env.push_back(env_var(k_full_uri, k_credentials_uri));
    }

    // The AWS config file, only where the container has none of its own.
    if (!env_index(k_config_file)) {
        if (!mount_path_of(k_config_volume)) {
            claim_mount_path(k_config_dir);
            new_mounts.push_back({{"name", k_config_volume}, {"mountPath", k_config_dir}, {"readOnly", true}});
        }
        new_env.push_back(env_var(k_config_file, std::string{k_config_dir} + "/config"));
    }

    append_items(ops, container, pointer, "env", std::move(new_env));
    append_items(ops, container, pointer, "volumeMounts", std::move(new_mounts));
}

json mutation_ops(const json& pod, const InjectOptions& options)
{
    if (!pod.is_object()) {
        refuse("the pod is not an object");
    }
    const json* spec = member(pod, "spec");
    if (spec == nullptr || !spec->is_object()) {
        refuse("the pod has no spec");
    }
    const json* metadata = member(pod, "metadata");
    if (metadata != nullptr && !metadata->is_object() && !metadata->is_null()) {
        refuse("metadata is not an object");
    }
    const json* annotations = metadata != nullptr ? member(*metadata, "annotations") : nullptr;
    if (annotations != nullptr && !annotations->is_object() && !annotations->is_null()) {
        refuse("metadata.annotations is not a map");
    }
    const json no_annotations = json::object();
    const json& annotation_map = annotations != nullptr && annotations->is_object() ? *annotations : no_annotations;

    const json& containers = list_at(*spec, "containers", "spec");
    const json& init_containers = list_at(*spec, "initContainers", "spec");
    const json& volumes = list_at(*spec, "volumes", "spec");
    if (containers.empty()) {
        refuse("the pod has no containers");
    }
    std::vector<const json*> all;
    for (const json& c : init_containers) {
        all.push_back(&c);
    }
    for (const json& c : containers) {
        all.push_back(&c);
    }
    for (const json* c : all) {
        if (!member(*c, "name") || !member(*c, "name")->is_string()) {
            refuse("a container has no name");
        }
    }

    // Injected before (by this mutation): the marker and the sidecar.
    const bool marked = member(annotation_map, annotation::injected) != nullptr;
    const bool sidecar_present = std::any_of(init_containers.begin(), init_containers.end(),
                                             [](const json& c) { return string_at(c, "name") == k_sidecar; });
    const bool injected = marked && sidecar_present;
    if (marked && !sidecar_present) {
        refuse("annotation " + std::string{annotation::injected} +
               " says cwcreds was injected, but there is no cwcreds init container; remove the annotation");
    }
    if (!injected) {
        for (const json* c : all) {
            if (string_at(*c, "name") == k_sidecar) {
                refuse("the pod already has a container named '" + std::string{k_sidecar} +
                       "' (added by the kustomize component or by hand?); rename it or drop the inject label");
            }
        }
        for (const json& v : volumes) {
            const std::string name = string_at(v, "name");
            if (name == k_token_volume || name == k_config_volume) {
                refuse("the pod already has a volume named '" + name + "'; cwcreds needs that name");
            }
        }
    }
    const Settings settings = settle(annotation_map, options, all);

    // On the node's network the sidecar's ports are the node's ports.
    if (const json* host_network = member(*spec, "hostNetwork"); host_network != nullptr && *host_network == true) {
        for (const json* c : all) {
            if (injected && string_at(*c, "name") == k_sidecar) {
                continue;
            }
            for (const json& port : list_at(*c, "ports", "container")) {
                for (const char* field : {"containerPort", "hostPort"}) {
                    const json* number = member(port, field);
                    if (number != nullptr && number->is_number_integer() &&
                        std::find(k_sidecar_ports.begin(), k_sidecar_ports.end(), number->get<int>()) !=
                            k_sidecar_ports.end()) {
                        refuse(
                            "hostNetwork pod: container '" + string_at(*c, "name") + "' uses port " +
                            std::to_string(number->get<int>()) +
                            ", which the cwcreds sidecar needs on the node's network (9911 credentials, 9912 probes)");
                    }
                }
            }
        }
    }

    json ops = json::array();
    const auto existing = coreweave_token_volume(volumes);
    const TokenVolume token =
        existing ? *existing : TokenVolume{std::string{k_token_volume}, std::string{k_token_path}};
    if (token.name.empty() || token.path.empty()) {
        refuse("the pod's projected token volume for " + std::string{k_audience} + " has no name or path");
    }

    // 1. The sidecar, first of the init containers, and the volumes.
    std::size_t init_shift = 0;
    if (!injected) {
        const json sidecar = sidecar_container(settings, token.name, token.path);
        if (member(*spec, "initContainers") == nullptr || (*spec)["initContainers"].is_null()) {
            ops.push_back({{"op", "add"}, {"path", "/spec/initContainers"}, {"value", json::array({sidecar})}});
        } else {
            ops.push_back({{"op", "add"}, {"path", "/spec/initContainers/0"}, {"value", sidecar}});
            init_shift = 1;
        }
        json new_volumes = json::array();
        if (!existing) {
            new_volumes.push_back(token_volume_spec());
        }
        new_volumes.push_back(config_volume_spec());
        append_items(ops, *spec, "/spec", "volumes", std::move(new_volumes));
    }

    // 2. Every container the pod's owner did not skip.
    for (std::size_t i = 0; i < init_containers.size(); ++i) {
        const std::string name = string_at(init_containers[i], "name");
        if (name != k_sidecar && !settings.skip.contains(name)) {
            inject_container(ops, init_containers[i], "/spec/initContainers/" + std::to_string(i + init_shift), token,
                             "init container '" + name + "'");
        }
    }
    for (std::size_t i = 0; i < containers.size(); ++i) {
        const std::string name = string_at(containers[i], "name");
        if (!settings.skip.contains(name)) {
            inject_container(ops, containers[i], "/spec/containers/" + std::to_string(i), token,
                             "container '" + name + "'");
        }
    }

    // 3. The annotations: the AWS config text (unless the owner wrote one)
    //    and the marker, the last operation so a refusal above leaves none.
    json new_annotations = json::object();
    if (!settings.has_aws_config_annotation) {
        new_annotations[std::string{annotation::aws_config}] = k_aws_config;
    }
    if (!marked) {
        new_annotations[std::string{annotation::injected}] = CWCREDS_VERSION;
    }
    if (!new_annotations.empty()) {
        if (metadata == nullptr || metadata->is_null()) {
            ops.push_back({{"op", "add"}, {"path", "/metadata"}, {"value", {{"annotations", new_annotations}}}});
        } else if (annotations == nullptr || annotations->is_null()) {
            ops.push_back({{"op", "add"}, {"path", "/metadata/annotations"}, {"value", new_annotations}});
        } else {
            for (const auto& [key, value] : new_annotations.items()) {
                ops.push_back(
                    {{"op", "add"}, {"path", "/metadata/annotations/" + pointer_token(key)}, {"value", value}});
            }
        }
    }
    return ops;
}

}  // namespace

std::string_view default_aws_config()
{
    return k_aws_config;
}

PatchResult pod_patch(const nlohmann::json& pod, const InjectOptions& options)
{
    try {
        return Patch{mutation_ops(pod, options)};
    } catch (const Refused& refused) {
        return Refusal{refused.reason};
    } catch (const json::exception& error) {
        // A shape the checks above did not foresee (a null where a list was
        // expected, say): refused rather than half-injected.
        return Refusal{std::string{"the pod cannot be read: "} + error.what()};
    }
}

InjectResult inject_pod(const nlohmann::json& pod, const InjectOptions& options)
{
    auto result = pod_patch(pod, options);
    if (auto* refusal = std::get_if<Refusal>(&result)) {
        return std::move(*refusal);
    }
    json& ops = std::get<Patch>(result).operations;
    try {
        json mutated = ops.empty() ? pod : pod.patch(ops);
        return Injection{std::move(mutated), std::move(ops)};
    } catch (const json::exception& error) {
        return Refusal{std::string{"the pod cannot be read: "} + error.what()};
    }
}

}  // namespace cw
