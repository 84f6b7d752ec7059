// Kubernetes YAML <-> nlohmann::json, on yaml-cpp.
//
// Reading follows what kubectl sends the API server (sigs.k8s.io/yaml, that
// is go-yaml v2's YAML 1.1 rules): plain scalars become null, booleans
// (true/yes/on/y and false/no/off/n, in three cases), integers in Go's bases
// (`0644` is octal 420, `0x1F`, `0o17`, `0b101`, `1_000`) and floats, a float
// that is an integer written as one; quoted or `!!str` scalars stay
// strings. Writing quotes every string that would read back as something
// else, so a round trip keeps types. Input is untrusted: nesting and the
// number of nodes (aliases can multiply them: "billion laughs") are bounded,
// and a document over either bound is an error, not a crash.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace cw {

struct YamlError {
    std::size_t document = 0;  // 1-based; 0 when not known
    std::string reason;
};

struct YamlLimits {
    std::size_t max_depth = 64;
    std::size_t max_nodes = 1'000'000;  // across all documents, aliases counted each time used
    // Text of scalars and keys, likewise: a long string aliased many times is
    // few nodes but much memory. No manifest without aliases exceeds its
    // own size, and `cwcreds inject` reads at most 64 MiB.
    std::size_t max_text_bytes = 64U << 20U;
};

// Every document of a YAML (or JSON: YAML is a superset) stream, in order;
// an empty document (a lone `---`) is null.
std::variant<std::vector<nlohmann::json>, YamlError> parse_yaml_documents(std::string_view text,
                                                                          const YamlLimits& limits = {});

// One document as block YAML, without the leading `---`.
std::string to_yaml(const nlohmann::json& document);

}  // namespace cw
