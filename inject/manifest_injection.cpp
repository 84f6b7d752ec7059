#include "inject/manifest_injection.hpp"

#include <optional>

#include "inject/workload.hpp"
#include "inject/yaml_json.hpp"

namespace cw {

namespace {

using json = nlohmann::json;

std::string describe(const json& object)
{
    std::string text = object.value("kind", "?");
    if (const auto* metadata = object.contains("metadata") ? &object["metadata"] : nullptr;
        metadata != nullptr && metadata->is_object() && metadata->contains("name") && (*metadata)["name"].is_string()) {
        text += " " + (*metadata)["name"].get<std::string>();
    }
    return text;
}

bool is_list(const json& object)
{
    const std::string kind = object.value("kind", "");
    return kind.size() >= 4 && kind.compare(kind.size() - 4, 4, "List") == 0 && object.contains("items");
}

}  // namespace

std::variant<ManifestOutput, ManifestError> inject_manifests(std::string_view text, const InjectOptions& options,
                                                             bool print_patch, ManifestChange change)
{
    auto parsed = parse_yaml_documents(text);
    if (const auto* error = std::get_if<YamlError>(&parsed)) {
        return ManifestError{(error->document > 0 ? "document " + std::to_string(error->document) + ": " : "") +
                             error->reason};
    }
    auto& documents = std::get<std::vector<json>>(parsed);
    std::string out;
    std::vector<std::string> warnings;
    std::vector<std::string> unchanged;
    bool first = true;
    for (std::size_t d = 0; d < documents.size(); ++d) {
        json& document = documents[d];
        const std::string where = "document " + std::to_string(d + 1);
        if (document.is_null()) {
            continue;
        }
        if (!document.is_object() || !document.contains("kind") || !document["kind"].is_string() ||
            !document.contains("apiVersion") || !document["apiVersion"].is_string()) {
            return ManifestError{where + ": not a Kubernetes object (no apiVersion and kind)"};
        }
        // One object, or each item of a List, in place.
        const bool list = is_list(document);
        if (list && !document["items"].is_array()) {
            return ManifestError{where + " (" + describe(document) + "): items is not a list"};
        }
        const std::size_t count = list ? document["items"].size() : 1;
        for (std::size_t i = 0; i < count; ++i) {
            json& object = list ? document["items"][i] : document;
            const std::string at = where + (list ? ", item " + std::to_string(i + 1) : "");
            if (!object.is_object() || !object.contains("kind") || !object["kind"].is_string()) {
                return ManifestError{at + ": not a Kubernetes object (no kind)"};
            }
            auto result = change == ManifestChange::remove ? remove_object(object) : inject_object(object, options);
            if (const auto* refusal = std::get_if<Refusal>(&result)) {
                return ManifestError{at + " (" + describe(object) + "): " + refusal->reason};
            }
            auto& injection = std::get<Injection>(result);
            for (const auto& warning : injection.warnings) {
                warnings.push_back(at + " (" + describe(object) + "): " + warning);
            }
            if (!injection.unchanged.empty()) {
                unchanged.push_back(at + " (" + describe(object) + "): " + injection.unchanged);
            }
            if (print_patch) {
                json line = {{"document", d + 1}, {"kind", object["kind"]}, {"patch", injection.patch}};
                if (list) {
                    line["item"] = i + 1;
                }
                line["name"] = object.contains("metadata") && object["metadata"].is_object()
                                   ? object["metadata"].value("name", "")
                                   : "";
                out += line.dump() + "\n";
            }
            object = std::move(injection.pod);
        }
        if (!print_patch) {
            out += (first ? "" : "---\n") + to_yaml(document);
            first = false;
        }
    }
    return ManifestOutput{std::move(out), std::move(warnings), std::move(unchanged)};
}

}  // namespace cw
