// The inverse of the pod mutation, recognising what it added by the names,
// paths and values only it uses (mutation_parts.hpp), so nothing the owner
// wrote is taken.
#include "inject/pod_removal.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "inject/mutation_parts.hpp"

namespace cw {

using namespace mutation;

namespace {

// The port the sidecar serves credentials on: its CWCREDS_LISTEN, if set.
int sidecar_port(const json& sidecar)
{
    for (const json& env : list_at(sidecar, "env", "the cwcreds container")) {
        if (string_at(env, "name") == "CWCREDS_LISTEN") {
            const std::string listen = string_at(env, "value");
            const auto colon = listen.rfind(':');
            if (colon != std::string::npos) {
                try {
                    return std::stoi(listen.substr(colon + 1));
                } catch (const std::exception&) {
                    break;
                }
            }
        }
    }
    return k_default_port;
}

// Drops a list the injection emptied (it may have created it).
void erase_if_empty(json& object, std::string_view key)
{
    if (const auto it = object.find(key); it != object.end() && it->is_array() && it->empty()) {
        object.erase(it);
    }
}

void remove_from_container(json& container, const std::string& uri, const json& replaced)
{
    // Mounts first: the token's directories in this container, whatever
    // path an earlier cwcreds mounted cwcreds-token at.
    std::vector<std::string> token_dirs{std::string{k_token_dir}};
    if (auto mounts = container.find("volumeMounts"); mounts != container.end() && mounts->is_array()) {
        json kept = json::array();
        for (json& mount : *mounts) {
            const std::string volume = string_at(mount, "name");
            const std::string path = without_trailing_slash(string_at(mount, "mountPath"));
            if (volume == k_token_volume || path == k_token_dir) {
                token_dirs.push_back(path);
                continue;
            }
            if (volume != k_config_volume) {
                kept.push_back(std::move(mount));
            }
        }
        *mounts = std::move(kept);
        erase_if_empty(container, "volumeMounts");
    }
    const auto in_token_dir = [&token_dirs](const std::string& file) {
        return std::any_of(token_dirs.begin(), token_dirs.end(),
                           [&file](const std::string& dir) { return file.starts_with(dir + "/"); });
    };
    const std::string name = string_at(container, "name");
    const std::string config_file = std::string{k_config_dir} + "/config";
    if (auto env = container.find("env"); env != container.end() && env->is_array()) {
        json kept = json::array();
        for (json& entry : *env) {
            const std::string var = string_at(entry, "name");
            const std::string value = string_at(entry, "value");
            if (var == k_full_uri && value == uri) {
                if (const json* old = member(replaced, name); old != nullptr && old->is_string()) {
                    entry["value"] = *old;
                    kept.push_back(std::move(entry));
                }
                continue;
            }
            if ((var == k_token_file && in_token_dir(value)) || (var == k_config_file && value == config_file)) {
                continue;
            }
            kept.push_back(std::move(entry));
        }
        *env = std::move(kept);
        erase_if_empty(container, "env");
    }
}

Injection removal(const json& pod)
{
    const json* metadata = member(pod, "metadata");
    const json* annotations = metadata != nullptr ? member(*metadata, "annotations") : nullptr;
    if (annotations == nullptr || member(*annotations, annotation::injected) == nullptr) {
        return Injection{pod, json::array(), {}, "cwcreds is not injected"};
    }
    const json* spec = member(pod, "spec");
    if (spec == nullptr || !spec->is_object()) {
        refuse("the pod has no spec");
    }
    json out = pod;
    json& out_spec = out["spec"];
    const json& init_containers = list_at(*spec, "initContainers", "spec");
    const auto sidecar = std::find_if(init_containers.begin(), init_containers.end(),
                                      [](const json& c) { return string_at(c, "name") == k_sidecar; });
    const std::string uri = credentials_uri(sidecar != init_containers.end() ? sidecar_port(*sidecar) : k_default_port);
    json replaced = json::parse(string_at(*annotations, annotation::replaced_full_uri), nullptr, false);
    if (!replaced.is_object()) {
        replaced = json::object();
    }

    for (const char* list : {"initContainers", "containers"}) {
        list_at(*spec, list, "spec");  // refuses a list that is not one of objects
        if (auto containers = out_spec.find(list); containers != out_spec.end() && containers->is_array()) {
            json kept = json::array();
            for (json& container : *containers) {
                if (std::string_view{list} == "initContainers" && string_at(container, "name") == k_sidecar) {
                    continue;
                }
                remove_from_container(container, uri, replaced);
                kept.push_back(std::move(container));
            }
            *containers = std::move(kept);
        }
    }
    erase_if_empty(out_spec, "initContainers");
    if (auto volumes = out_spec.find("volumes"); volumes != out_spec.end() && volumes->is_array()) {
        list_at(*spec, "volumes", "spec");
        volumes->erase(std::remove_if(volumes->begin(), volumes->end(),
                                      [](const json& v) {
                                          const std::string name = string_at(v, "name");
                                          return name == k_token_volume || name == k_config_volume;
                                      }),
                       volumes->end());
        erase_if_empty(out_spec, "volumes");
    }

    json& out_annotations = out["metadata"]["annotations"];
    out_annotations.erase(std::string{annotation::injected});
    out_annotations.erase(std::string{annotation::replaced_full_uri});
    if (string_at(out_annotations, annotation::aws_config) == default_aws_config()) {
        out_annotations.erase(std::string{annotation::aws_config});
    }
    if (out_annotations.empty()) {
        out["metadata"].erase("annotations");
    }
    if (out["metadata"].empty()) {
        out.erase("metadata");
    }
    json patch = json::diff(pod, out);
    return Injection{std::move(out), std::move(patch), {}, {}};
}

}  // namespace

InjectResult remove_pod(const nlohmann::json& pod)
{
    try {
        if (!pod.is_object()) {
            refuse("the pod is not an object");
        }
        return removal(pod);
    } catch (const Refused& refused) {
        return Refusal{refused.reason};
    } catch (const json::exception& error) {
        return Refusal{std::string{"the pod cannot be read: "} + error.what()};
    }
}

}  // namespace cw
