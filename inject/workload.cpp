#include "inject/workload.hpp"

#include <array>
#include <string_view>
#include <utility>

namespace cw {

namespace {

struct Kind {
    std::string_view group;  // apiVersion without the version; "" is the core group
    std::string_view kind;
    std::string_view pointer;
};

constexpr std::array k_kinds{
    Kind{"", "Pod", ""},
    Kind{"apps", "Deployment", "/spec/template"},
    Kind{"apps", "StatefulSet", "/spec/template"},
    Kind{"apps", "DaemonSet", "/spec/template"},
    Kind{"apps", "ReplicaSet", "/spec/template"},
    Kind{"batch", "Job", "/spec/template"},
    Kind{"batch", "CronJob", "/spec/jobTemplate/spec/template"},
};

constexpr std::string_view k_opt_out_label = "cwcreds.coreweave.com/inject";

}  // namespace

std::optional<std::string> pod_pointer(const nlohmann::json& object)
{
    if (!object.is_object() || !object.contains("kind") || !object["kind"].is_string() ||
        !object.contains("apiVersion") || !object["apiVersion"].is_string()) {
        return std::nullopt;
    }
    const auto& api_version = object["apiVersion"].get_ref<const std::string&>();
    const auto slash = api_version.find('/');
    const std::string_view group =
        slash == std::string::npos ? std::string_view{} : std::string_view{api_version}.substr(0, slash);
    for (const auto& kind : k_kinds) {
        if (kind.kind == object["kind"].get_ref<const std::string&>() && kind.group == group) {
            return std::string{kind.pointer};
        }
    }
    return std::nullopt;
}

static bool label_is_false(const nlohmann::json& object, std::string_view label)
{
    const auto* metadata = object.is_object() && object.contains("metadata") ? &object["metadata"] : nullptr;
    if (metadata == nullptr || !metadata->is_object() || !metadata->contains("labels") ||
        !(*metadata)["labels"].is_object()) {
        return false;
    }
    const auto& labels = (*metadata)["labels"];
    const auto it = labels.find(label);
    return it != labels.end() && *it == "false";
}

InjectResult inject_object(const nlohmann::json& object, const InjectOptions& options)
{
    const auto pointer = pod_pointer(object);
    // The kustomize component's opt-out label on the workload, or the
    // webhook's label set to "false" on the pod: left as they are.
    if (!pointer || label_is_false(object, k_opt_out_label) ||
        (object.contains(nlohmann::json::json_pointer{*pointer}) &&
         label_is_false(object.at(nlohmann::json::json_pointer{*pointer}), k_inject_label))) {
        return Injection{object, nlohmann::json::array(), {}};
    }
    const nlohmann::json::json_pointer at{*pointer};
    if (!object.contains(at)) {
        return Refusal{"no pod template at " + *pointer};
    }
    auto result = inject_pod(object.at(at), options);
    if (auto* injection = std::get_if<Injection>(&result)) {
        nlohmann::json whole = object;
        whole[at] = std::move(injection->pod);
        for (auto& op : injection->patch) {
            op["path"] = *pointer + op["path"].get<std::string>();
        }
        return Injection{std::move(whole), std::move(injection->patch), std::move(injection->warnings)};
    }
    return result;
}

}  // namespace cw
