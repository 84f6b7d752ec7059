// `cwcreds inject` without the I/O: a YAML or JSON stream of Kubernetes
// objects in (several documents, `List`s), the same objects out as YAML with
// cwcreds in every pod template, or the first problem with its document.
// Nothing is written unless every object could be handled, so a pipe into
// `kubectl apply -f -` never applies half a manifest.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "inject/pod_mutation.hpp"

namespace cw {

struct ManifestError {
    std::string message;  // "document 3 (Deployment web): ..." ready for stderr
};

struct ManifestOutput {
    // YAML documents separated by `---`; with print_patch, one JSON line per
    // object instead: {"document":N,"item":M,"kind":...,"name":...,"patch":[...]}.
    std::string text;
    // "document 2 (Deployment web): ..." for stderr: what the owner should know.
    std::vector<std::string> warnings;
    // "document 1 (ConfigMap app): holds no pod template": each object left
    // as it was, and why, so a kind cwcreds missed is never missed silently.
    std::vector<std::string> unchanged;
};

enum class ManifestChange {
    inject,  // put cwcreds in (or replace an injection made with other settings)
    remove,  // take an injection out, restoring what it changed
};

std::variant<ManifestOutput, ManifestError> inject_manifests(std::string_view text, const InjectOptions& options,
                                                             bool print_patch = false,
                                                             ManifestChange change = ManifestChange::inject);

}  // namespace cw
