#include "inject/workload.hpp"

#include "inject/mutation_parts.hpp"
#include "inject/pod_removal.hpp"

#include <array>
#include <string_view>
#include <utility>
#include <vector>

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

namespace {

// A pod template (PodTemplateSpec) has the pod's spec with its containers.
bool is_pod_template(const nlohmann::json& node)
{
    if (!node.is_object()) {
        return false;
    }
    const auto spec = node.find("spec");
    if (spec == node.end() || !spec->is_object()) {
        return false;
    }
    const auto containers = spec->find("containers");
    return containers != spec->end() && containers->is_array();
}

// Operators' kinds keep their pods wherever their authors chose
// (spec.pytorchReplicaSpecs.Worker.template, spec.replicatedJobs[].template
// .spec.template, spec.leaderWorkerTemplate.workerTemplate, ...): every pod
// template under spec is found, not descending into one found. The depth
// bound keeps a hostile document from costing more than its size.
constexpr int k_max_template_depth = 12;

void find_templates(const nlohmann::json& node, const std::string& pointer, int depth, std::vector<std::string>& out)
{
    if (depth > k_max_template_depth) {
        return;
    }
    if (depth > 0 && is_pod_template(node)) {
        out.push_back(pointer);
        return;
    }
    if (node.is_object()) {
        for (const auto& [key, value] : node.items()) {
            if (depth == 0 && (key == "metadata" || key == "status")) {
                continue;
            }
            find_templates(value, pointer + "/" + mutation::pointer_token(key), depth + 1, out);
        }
    } else if (node.is_array()) {
        for (std::size_t i = 0; i < node.size(); ++i) {
            find_templates(node[i], pointer + "/" + std::to_string(i), depth + 1, out);
        }
    }
}

}  // namespace

std::vector<std::string> pod_pointers(const nlohmann::json& object)
{
    if (const auto known = pod_pointer(object)) {
        return {*known};
    }
    std::vector<std::string> found;
    if (object.is_object()) {
        find_templates(object, "", 0, found);
    }
    return found;
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

namespace {

using PodChange = InjectResult (*)(const nlohmann::json& pod, const InjectOptions& options);

// `change` applied to each of the object's pods, the patches made relative
// to the object; `none_text` says why when none of them changed.
InjectResult change_object(const nlohmann::json& object, const InjectOptions& options, PodChange change,
                           const std::string& none_text)
{
    // The kustomize component's opt-out label on the workload.
    if (label_is_false(object, k_opt_out_label)) {
        return Injection{object, nlohmann::json::array(), {}, "labelled cwcreds.coreweave.com/inject: \"false\""};
    }
    const auto known = pod_pointer(object);
    const std::vector<std::string> pointers = pod_pointers(object);
    if (pointers.empty()) {
        return Injection{object, nlohmann::json::array(), {}, "holds no pod template"};
    }
    Injection whole{object, nlohmann::json::array(), {}, {}};
    std::size_t opted_out = 0;
    for (const auto& pointer : pointers) {
        const nlohmann::json::json_pointer at{pointer};
        if (!object.contains(at)) {
            return Refusal{"no pod template at " + pointer};
        }
        // The webhook's label set to "false" on the pod: left as it is.
        if (label_is_false(object.at(at), k_inject_label)) {
            ++opted_out;
            continue;
        }
        // Several templates in one object (an operator's kind): each refusal
        // and warning says which.
        const std::string which = known ? "" : "pod template " + pointer + ": ";
        auto result = change(object.at(at), options);
        if (auto* refusal = std::get_if<Refusal>(&result)) {
            return Refusal{which + refusal->reason};
        }
        auto& injection = std::get<Injection>(result);
        whole.pod[at] = std::move(injection.pod);
        for (auto& op : injection.patch) {
            op["path"] = pointer + op["path"].get<std::string>();
            whole.patch.push_back(std::move(op));
        }
        for (auto& warning : injection.warnings) {
            whole.warnings.push_back(which + warning);
        }
    }
    if (opted_out == pointers.size()) {
        whole.unchanged = "its pods are labelled cwcreds/inject: \"false\"";
    } else if (whole.patch.empty()) {
        whole.unchanged = none_text;
    }
    return whole;
}

const nlohmann::json* sidecar_of(const nlohmann::json& pod)
{
    const nlohmann::json* spec = mutation::member(pod, "spec");
    const nlohmann::json* init = spec != nullptr ? mutation::member(*spec, "initContainers") : nullptr;
    if (init == nullptr || !init->is_array()) {
        return nullptr;
    }
    for (const auto& container : *init) {
        if (mutation::string_at(container, "name") == mutation::k_sidecar) {
            return &container;
        }
    }
    return nullptr;
}

// A pod injected earlier gets only what it lacks, as on admission
// reinvocation, when its sidecar is the one these settings make; otherwise
// (another image, mode, port, size) the old injection is taken out and the
// new one put in, so `inject` upgrades what it wrote before.
InjectResult inject_or_replace(const nlohmann::json& pod, const InjectOptions& options)
{
    auto as_is = inject_pod(pod, options);
    const nlohmann::json* old_sidecar = sidecar_of(pod);
    if (std::holds_alternative<Refusal>(as_is) || old_sidecar == nullptr) {
        return as_is;
    }
    auto removed = remove_pod(pod);
    if (std::holds_alternative<Refusal>(removed)) {
        return removed;
    }
    auto fresh = inject_pod(std::get<Injection>(removed).pod, options);
    if (std::holds_alternative<Refusal>(fresh)) {
        return fresh;
    }
    auto& injection = std::get<Injection>(fresh);
    const nlohmann::json* new_sidecar = sidecar_of(injection.pod);
    if (new_sidecar != nullptr && *new_sidecar == *old_sidecar) {
        return as_is;
    }
    injection.patch = nlohmann::json::diff(pod, injection.pod);
    return fresh;
}

InjectResult remove_ignoring_options(const nlohmann::json& pod, const InjectOptions& /*options*/)
{
    return remove_pod(pod);
}

// The Job (or a CronJob's Job) has no activeDeadlineSeconds, nor has its
// pod template: a Pod the Job controller makes is warned about by the
// webhook, the Job itself by inject.
bool job_without_deadline(const nlohmann::json& object)
{
    const std::string kind = mutation::string_at(object, "kind");
    const char* job_spec = kind == "Job" ? "/spec" : kind == "CronJob" ? "/spec/jobTemplate/spec" : nullptr;
    if (job_spec == nullptr) {
        return false;
    }
    const nlohmann::json::json_pointer job{job_spec};
    const nlohmann::json::json_pointer pod{std::string{job_spec} + "/template/spec"};
    return !object.contains(job / "activeDeadlineSeconds") && !object.contains(pod / "activeDeadlineSeconds");
}

}  // namespace

InjectResult inject_object(const nlohmann::json& object, const InjectOptions& options)
{
    auto result = change_object(object, options, inject_or_replace, "cwcreds is already injected");
    if (auto* injection = std::get_if<Injection>(&result);
        injection != nullptr && !injection->patch.empty() && !mutation::string_at(object, "apiVersion").empty() &&
        mutation::string_at(object, "apiVersion").starts_with("batch/") && job_without_deadline(object)) {
        injection->warnings.emplace_back(mutation::k_job_deadline_warning);
    }
    return result;
}

InjectResult remove_object(const nlohmann::json& object)
{
    return change_object(object, InjectOptions{}, remove_ignoring_options, "cwcreds is not injected");
}

}  // namespace cw
