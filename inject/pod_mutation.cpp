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
#include <vector>

#include "inject/mutation_parts.hpp"

namespace cw {

using namespace mutation;

namespace {

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
        // Only a volume holding the token alone is reused: every container
        // gets it mounted, and one that also projects a Secret or another
        // token would hand those to containers that never had them.
        if (sources->size() != 1) {
            continue;
        }
        const json* token = member(sources->front(), "serviceAccountToken");
        if (token != nullptr && string_at(*token, "audience") == k_audience) {
            return TokenVolume{string_at(volume, "name"), string_at(*token, "path")};
        }
    }
    return std::nullopt;
}

// The containers Istio and Linkerd add: their proxies, in either mode, and
// the init containers that set up or check traffic capture. They never use
// S3 credentials, and mounting into them could meet the meshes' own tokens.
bool is_mesh_container(std::string_view name)
{
    static constexpr std::array<std::string_view, 6> k_mesh{
        "istio-proxy", "istio-init", "istio-validation", "linkerd-proxy", "linkerd-init", "linkerd-network-validator"};
    return std::find(k_mesh.begin(), k_mesh.end(), name) != k_mesh.end();
}

bool is_mesh_proxy(std::string_view name)
{
    return name == "istio-proxy" || name == "linkerd-proxy";
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
                      const Settings& settings, const std::string& where, json& replaced)
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
    const std::string uri = credentials_uri(settings.port);
    if (const auto i = env_index(k_full_uri)) {
        if (const std::string old = string_at(env[*i], "value"); is_exchange_url(old)) {
            ops.push_back(
                {{"op", "replace"}, {"path", pointer + "/env/" + std::to_string(*i) + "/value"}, {"value", uri}});
            replaced[string_at(container, "name")] = old;
        }
    } else {
        new_env.push_back(env_var(k_full_uri, uri));
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

// The AWS SDKs look for credentials in a fixed order: keys in the
// environment, then web identity, before the container endpoint cwcreds
// serves. A container set up for one of those will never ask cwcreds, and
// variables from envFrom (a ConfigMap or Secret) cannot be seen here.
void warn_about_other_credentials(const json& container, Warnings& warnings)
{
    const std::string who = "container '" + string_at(container, "name") + "'";
    for (const json& env : list_at(container, "env", who)) {
        const std::string name = string_at(env, "name");
        if (name == "AWS_ACCESS_KEY_ID" || name == "AWS_SECRET_ACCESS_KEY") {
            warnings.push_back(who + " sets " + name + ": AWS SDKs use keys from the environment, not cwcreds");
            return;
        }
        if (name == "AWS_WEB_IDENTITY_TOKEN_FILE" || name == "AWS_ROLE_ARN") {
            warnings.push_back(who + " sets " + name + ": AWS SDKs try web identity before cwcreds");
            return;
        }
    }
    if (const json* from = member(container, "envFrom"); from != nullptr && from->is_array() && !from->empty()) {
        warnings.push_back(who +
                           " takes variables from envFrom: AWS keys or a role there would win over cwcreds, "
                           "and its AWS_CONTAINER_* values are overridden");
    }
}

// The API server decides QoS from cpu and memory alone: BestEffort when no
// container has a request or limit for either; Guaranteed when every
// container has limits for both and its requests, where given, equal them.
// Quantities are compared as written ("1" and "1000m" count as different,
// so such a pod is taken for Burstable).
Qos qos_of(const std::vector<const json*>& containers)
{
    static constexpr std::array<const char*, 2> k_qos_resources{"cpu", "memory"};
    bool any = false;
    bool guaranteed = true;
    for (const json* c : containers) {
        const json* resources = member(*c, "resources");
        const json* limits = resources != nullptr ? member(*resources, "limits") : nullptr;
        const json* requests = resources != nullptr ? member(*resources, "requests") : nullptr;
        for (const char* name : k_qos_resources) {
            const json* limit = limits != nullptr && limits->is_object() ? member(*limits, name) : nullptr;
            const json* request = requests != nullptr && requests->is_object() ? member(*requests, name) : nullptr;
            const bool has_limit = limit != nullptr && !limit->is_null();
            any = any || has_limit || (request != nullptr && !request->is_null());
            guaranteed = guaranteed && has_limit && (request == nullptr || *request == *limit);
        }
    }
    return !any ? Qos::best_effort : guaranteed ? Qos::guaranteed : Qos::burstable;
}

// A Job's pod whose token CoreWeave rejects starts its app after the
// startup gate and fails, so backoffLimit counts; what bounds a Job whose
// app then hangs, or retries without end, is activeDeadlineSeconds.
bool is_job_pod_without_deadline(const json* metadata, const json& spec)
{
    const json* owners = metadata != nullptr ? member(*metadata, "ownerReferences") : nullptr;
    if (owners == nullptr || !owners->is_array() || member(spec, "activeDeadlineSeconds") != nullptr) {
        return false;
    }
    return std::any_of(owners->begin(), owners->end(), [](const json& owner) {
        return string_at(owner, "kind") == "Job" && string_at(owner, "apiVersion").starts_with("batch/");
    });
}

// The sidecar is a Linux program; the API server would refuse its
// securityContext on a Windows pod with field errors that do not say why.
void refuse_windows(const json& spec)
{
    const json* os = member(spec, "os");
    const json* selector = member(spec, "nodeSelector");
    const bool windows =
        (os != nullptr && os->is_object() && string_at(*os, "name") == "windows") ||
        (selector != nullptr && selector->is_object() && string_at(*selector, "kubernetes.io/os") == "windows");
    if (windows) {
        refuse("Windows pod: the cwcreds sidecar runs on Linux nodes only; drop the inject label for this pod");
    }
}

// Containers of a pod share its network: a container that declares one of
// the sidecar's ports would fail to bind, or the sidecar would. (On the
// node's network, hostNetwork, a declared port is the node's too; the API
// server keeps its hostPort equal to its containerPort.)
void refuse_port_clash(const std::vector<const json*>& containers, const Settings& settings, bool injected)
{
    for (const json* c : containers) {
        if (injected && string_at(*c, "name") == k_sidecar) {
            continue;
        }
        for (const json& port : list_at(*c, "ports", "container")) {
            const json* number = member(port, "containerPort");
            if (number == nullptr || !number->is_number_integer()) {
                continue;
            }
            const int value = number->get<int>();
            if (value != settings.port && value != settings.probe_port) {
                continue;
            }
            const bool probes = value == settings.probe_port;
            const std::string name = string_at(port, "name");
            refuse("container '" + string_at(*c, "name") + "' declares port " + std::to_string(value) +
                   (name.empty() ? "" : " ('" + name + "')") + ", which the cwcreds sidecar's " +
                   (probes ? "probe listener" : "credentials listener") + " uses" +
                   (settings.host_network ? " on the node's network" : "") + "; choose another with annotation " +
                   std::string{probes ? annotation::probe_port : annotation::port});
        }
    }
}

Patch mutation_ops(const json& pod, const InjectOptions& options)
{
    Warnings warnings;
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
    const json* host_network = member(*spec, "hostNetwork");
    const Settings settings = settle(annotation_map, options, all, host_network != nullptr && *host_network == true,
                                     injected ? Qos::burstable : qos_of(all), warnings);

    refuse_windows(*spec);
    // Istio in classic mode rewrites every init container's probes to its
    // agent, which starts only after the init containers: cwcreds's startup
    // probe could never pass.
    if (std::any_of(containers.begin(), containers.end(),
                    [](const json& c) { return string_at(c, "name") == "istio-proxy"; })) {
        warnings.push_back(
            "istio-proxy runs as a regular container (Istio's classic mode): Istio rewrites cwcreds's startup probe "
            "to its agent, which starts only after the init containers, so the pod would never start; set "
            "annotation sidecar.istio.io/nativeSidecar: \"true\"");
    }
    if (!injected && is_job_pod_without_deadline(metadata, *spec)) {
        warnings.push_back(std::string{k_job_deadline_warning});
    }
    refuse_port_clash(all, settings, injected);

    json ops = json::array();
    const auto existing = coreweave_token_volume(volumes);
    const TokenVolume token =
        existing ? *existing : TokenVolume{std::string{k_token_volume}, std::string{k_token_path}};
    if (token.name.empty() || token.path.empty()) {
        refuse("the pod's projected token volume for " + std::string{k_audience} + " has no name or path");
    }

    // 1. The sidecar and the volumes. The sidecar goes first among the init
    //    containers, so the pod's own init containers (one pulling model
    //    weights, say) already find credentials; in a pod a mesh has already
    //    injected in native-sidecar mode, right after the mesh's proxy, so
    //    the exchange goes out through a running proxy rather than into
    //    iptables rules with nothing listening behind them.
    std::size_t insert_at = 0;
    for (std::size_t i = 0; i < init_containers.size(); ++i) {
        if (is_mesh_proxy(string_at(init_containers[i], "name"))) {
            insert_at = i + 1;
        }
    }
    if (!injected) {
        const json sidecar = sidecar_container(settings, token.name, token.path);
        if (member(*spec, "initContainers") == nullptr || (*spec)["initContainers"].is_null()) {
            ops.push_back({{"op", "add"}, {"path", "/spec/initContainers"}, {"value", json::array({sidecar})}});
        } else {
            ops.push_back(
                {{"op", "add"}, {"path", "/spec/initContainers/" + std::to_string(insert_at)}, {"value", sidecar}});
        }
        json new_volumes = json::array();
        if (!existing) {
            new_volumes.push_back(token_volume_spec());
        }
        new_volumes.push_back(config_volume_spec());
        append_items(ops, *spec, "/spec", "volumes", std::move(new_volumes));
    }
    const auto init_index = [&](std::size_t i) { return !injected && i >= insert_at ? i + 1 : i; };

    // 2. Every container the pod's owner did not skip.
    json replaced = json::object();
    for (std::size_t i = 0; i < init_containers.size(); ++i) {
        const std::string name = string_at(init_containers[i], "name");
        if (name != k_sidecar && !settings.skip.contains(name) && !is_mesh_container(name)) {
            inject_container(ops, init_containers[i], "/spec/initContainers/" + std::to_string(init_index(i)), token,
                             settings, "init container '" + name + "'", replaced);
        }
    }
    for (std::size_t i = 0; i < containers.size(); ++i) {
        const std::string name = string_at(containers[i], "name");
        if (!settings.skip.contains(name) && !is_mesh_container(name)) {
            inject_container(ops, containers[i], "/spec/containers/" + std::to_string(i), token, settings,
                             "container '" + name + "'", replaced);
        }
    }
    for (const json* c : all) {
        const std::string name = string_at(*c, "name");
        if (name != k_sidecar && !settings.skip.contains(name) && !is_mesh_container(name)) {
            warn_about_other_credentials(*c, warnings);
        }
    }

    // 3. The annotations: the AWS config text (unless the owner wrote one)
    //    and the marker, the last operation so a refusal above leaves none.
    json new_annotations = json::object();
    if (!settings.has_aws_config_annotation) {
        new_annotations[std::string{annotation::aws_config}] = default_aws_config();
    }
    if (!marked) {
        new_annotations[std::string{annotation::injected}] = CWCREDS_VERSION;
    }
    if (!replaced.empty()) {
        // Merged with what an earlier pass recorded (reinvocation).
        const std::string recorded = string_at(annotation_map, annotation::replaced_full_uri);
        json all_replaced = json::parse(recorded, nullptr, false);
        if (!all_replaced.is_object()) {
            all_replaced = json::object();
        }
        all_replaced.update(replaced);
        new_annotations[std::string{annotation::replaced_full_uri}] = all_replaced.dump();
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
    return Patch{std::move(ops), std::move(warnings)};
}

}  // namespace

PatchResult pod_patch(const nlohmann::json& pod, const InjectOptions& options)
{
    try {
        return mutation_ops(pod, options);
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
    auto& [ops, warnings] = std::get<Patch>(result);
    try {
        json mutated = ops.empty() ? pod : pod.patch(ops);
        return Injection{std::move(mutated), std::move(ops), std::move(warnings), {}};
    } catch (const json::exception& error) {
        return Refusal{std::string{"the pod cannot be read: "} + error.what()};
    }
}

}  // namespace cw
