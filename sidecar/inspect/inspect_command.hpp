// `cwcreds inspect`: what is wrong with the token (and the sidecar).
#pragma once

#include <filesystem>
#include <string>

namespace cw {

struct InspectSettings {
    std::filesystem::path token_file;
    std::string audience = "https://coreweave.com/iam";
    std::string org_id;       // names the policy principal in the advice
    std::string sidecar_url;  // empty: the token only
    bool json_output = false;
};

// Prints the report; exit 1 when a check fails.
int run_inspect(const InspectSettings& settings);

}  // namespace cw
