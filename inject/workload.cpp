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

InjectResult inject_object(const nlohmann::json& object, const InjectOptions& options)
{
    const auto pointer = pod_pointer(object);
    if (!pointer) {
        return Injection{object, nlohmann::json::array()};
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
        return Injection{std::move(whole), std::move(injection->patch)};
    }
    return result;
}

}  // namespace cw
