// /v1/status: everything a human needs to see why credentials expire or
// fail, in one JSON document, and never a secret: the access key id is
// masked, the token appears as its claims and a fingerprint, upstream errors
// only as sanitised excerpts.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "sidecar/metrics.hpp"
#include "sidecar/refresher.hpp"
#include "sidecar/settings.hpp"

namespace cw {

struct StatusInputs {
    RefresherStatus refresher;
    bool servable = false;
    std::filesystem::path token_file;
    std::optional<std::string> token;  // read for its claims only
    std::string token_problem;
    std::optional<SystemTime> token_last_change;
    const Metrics* metrics = nullptr;
    const UpstreamSettings* upstream = nullptr;
    SystemTime started_at;
    SystemTime now;
    SteadyTime steady_now;  // read together with `now`: deadlines are monotonic
};

nlohmann::json status_report(const StatusInputs& inputs);

}  // namespace cw
