// `cwcreds inspect`: reads the token file (and, with --sidecar, the running
// sidecar's /v1/status using that token) and prints a verdict per check.
// Meant for the moment S3 calls fail with ExpiredToken, InvalidAccessKeyId
// or AccessDenied: each failed check says what to do.
#include "sidecar/inspect/inspect_command.hpp"

#include <iostream>

#include <httplib.h>

#include "common/redact.hpp"
#include "sidecar/inspect/inspect.hpp"
#include "sidecar/exchange/token_source.hpp"

namespace cw {

namespace {

struct SidecarAnswer {
    std::optional<nlohmann::json> status;
    std::string problem;
};

SidecarAnswer fetch_status(std::string url, const std::optional<std::string>& token)
{
    // Accept the base URL or the full credentials URL an app is configured with.
    if (const auto path = url.find('/', url.find("://") + 3); path != std::string::npos) {
        url.resize(path);
    }
    httplib::Client client{url};
    client.set_connection_timeout(2, 0);
    client.set_read_timeout(2, 0);
    httplib::Headers headers;
    if (token) {
        headers.emplace("Authorization", *token);
    }
    const auto response = client.Get("/v1/status", headers);
    if (!response) {
        return {std::nullopt, "no answer from " + url + ": " + httplib::to_string(response.error()) +
                                  " (is the sidecar running, and is this its --listen address?)"};
    }
    if (response->status != 200) {
        std::string hint;
        if (response->status == 401 || response->status == 403) {
            hint = ": the sidecar does not accept this token; do the app and the sidecar mount the same token volume?";
        }
        return {std::nullopt, "HTTP " + std::to_string(response->status) + hint};
    }
    auto status = nlohmann::json::parse(response->body, nullptr, false);
    if (!status.is_object()) {
        return {std::nullopt, "the answer is not JSON: is this a cwcreds sidecar?"};
    }
    return {std::move(status), ""};
}

void print_checks(const std::vector<Check>& checks)
{
    for (const auto& check : checks) {
        std::string name = check.name;
        name.resize(std::max<std::size_t>(name.size(), 16), ' ');
        std::cout << "  " << verdict_name(check.verdict) << std::string(6 - verdict_name(check.verdict).size(), ' ')
                  << name << check.detail << "\n";
    }
}

nlohmann::json checks_json(const std::vector<Check>& checks)
{
    auto out = nlohmann::json::array();
    for (const auto& check : checks) {
        out.push_back({{"name", check.name}, {"verdict", verdict_name(check.verdict)}, {"detail", check.detail}});
    }
    return out;
}

}  // namespace

int run_inspect(const InspectSettings& settings)
{
    TokenSource tokens{settings.token_file};
    tokens.reload();
    const auto token = tokens.current();
    const auto now = std::chrono::system_clock::now();
    const TokenInspection report = inspect_token(token, tokens.problem(), settings.audience, settings.org_id, now);
    std::vector<Check> all = report.checks;

    std::vector<Check> sidecar_checks;
    std::optional<nlohmann::json> sidecar_status;
    if (!settings.sidecar_url.empty()) {
        auto answer = fetch_status(settings.sidecar_url, token);
        if (answer.status) {
            sidecar_checks = inspect_sidecar_status(*answer.status, token ? fingerprint(*token) : "");
            const auto caller_checks = inspect_caller_status(*answer.status);
            sidecar_checks.insert(sidecar_checks.end(), caller_checks.begin(), caller_checks.end());
            sidecar_status = std::move(answer.status);
        } else {
            sidecar_checks.push_back({"reachable", Verdict::fail, answer.problem});
        }
        all.insert(all.end(), sidecar_checks.begin(), sidecar_checks.end());
    }
    const auto failures = std::count_if(all.begin(), all.end(), [](const Check& c) { return c.verdict == Verdict::fail; });
    const auto warnings = std::count_if(all.begin(), all.end(), [](const Check& c) { return c.verdict == Verdict::warn; });

    if (settings.json_output) {
        nlohmann::json out{{"token_file", settings.token_file.string()},
                           {"checks", checks_json(report.checks)},
                           {"claims", report.claims},
                           {"ok", failures == 0}};
        if (token) {
            out["fingerprint"] = fingerprint(*token);
        }
        if (!report.principal.empty()) {
            out["principal"] = report.principal;
            out["bucket_policy_principal"] = report.bucket_principal;
        }
        if (!settings.sidecar_url.empty()) {
            out["sidecar"] = {{"url", settings.sidecar_url}, {"checks", checks_json(sidecar_checks)}};
            if (sidecar_status) {
                out["sidecar"]["status"] = *sidecar_status;
            }
        }
        std::cout << out.dump(2) << "\n";
        return failures == 0 ? 0 : 1;
    }

    std::cout << "token " << settings.token_file.string() << (token ? "  (" + fingerprint(*token) + ")" : "") << "\n";
    print_checks(report.checks);
    if (!report.principal.empty()) {
        std::cout << "\n  access policy principal:  " << report.principal
                  << "\n  bucket policy Principal:  " << report.bucket_principal << "\n";
    }
    if (!settings.sidecar_url.empty()) {
        std::cout << "\nsidecar " << settings.sidecar_url << "\n";
        print_checks(sidecar_checks);
        if (sidecar_status && sidecar_status->contains("next_refresh")) {
            const auto& next = (*sidecar_status)["next_refresh"];
            std::cout << "  next refresh at " << next.value("at", "?") << ": " << next.value("reason", "") << "\n";
        }
    }
    std::cout << "\n"
              << (failures == 0 ? "verdict: OK" : "verdict: " + std::to_string(failures) + " check(s) failed")
              << (warnings > 0 ? ", " + std::to_string(warnings) + " warning(s)" : "") << "\n";
    return failures == 0 ? 0 : 1;
}

}  // namespace cw
