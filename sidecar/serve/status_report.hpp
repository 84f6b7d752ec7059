// /v1/status: everything a human needs to see why credentials expire or
// fail, in one JSON document, and never a secret: the access key id is
// masked, the token appears as its claims and a fingerprint, upstream errors
// only as sanitised excerpts.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sidecar/serve/metrics.hpp"
#include "sidecar/exchange/refresher.hpp"
#include "sidecar/serve/serve_settings.hpp"
#include "sidecar/exchange/token_source.hpp"

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

// Who may read credentials besides the pod's token, and who was served.
struct CallerStatus {
    const Metrics* metrics = nullptr;
    std::vector<TokenSource*> accepted_tokens;
    bool imds = false;
};

// Adds `callers` (what was served to whom, accepted token files readable or
// not, IMDS on or off) to a status report. Never a token: files appear by
// path, readability and the time they last changed.
void add_caller_status(nlohmann::json& report, const CallerStatus& callers);

}  // namespace cw
