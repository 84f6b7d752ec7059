// The checks behind `cwcreds inspect`: what is wrong with this token, and
// with the sidecar using it. Pure functions of (inputs, now), so every
// verdict is unit-tested; inspect_command.cpp only reads files and the
// sidecar's /v1/status and prints.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.hpp"

namespace cw {

enum class Verdict { ok, warn, fail };

struct Check {
    std::string name;
    Verdict verdict;
    std::string detail;
};

struct TokenInspection {
    std::vector<Check> checks;
    std::string principal;         // role/<iss>:<sub>, for organization access policies
    std::string bucket_principal;  // {"AWS": "arn:aws:iam::<ORG-ID>:role/<iss>:<sub>"}
    nlohmann::json claims;         // issuer, subject, audience, times; never the token
};

// `token` is the file's content, or nullopt with `problem` saying why not.
TokenInspection inspect_token(const std::optional<std::string>& token, const std::string& problem,
                              const std::string& audience, const std::string& org_id, SystemTime now);

// Checks on a sidecar's /v1/status answer; `token_fingerprint` is this
// file's, to catch an app and a sidecar that do not share the token volume.
std::vector<Check> inspect_sidecar_status(const nlohmann::json& status, const std::string& token_fingerprint);

// Checks on the callers section of /v1/status: an accepted token file
// (--accept-token-file) the sidecar cannot read fails, since callers that
// present it are refused; IMDS being on is stated, since it serves any
// process in the pod.
std::vector<Check> inspect_caller_status(const nlohmann::json& status);

// "in 52m", "3m ago"
std::string relative_time(Millis offset);

std::string_view verdict_name(Verdict verdict);

}  // namespace cw
