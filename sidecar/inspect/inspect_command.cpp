// `cwcreds inspect`: reads the token file (and, with --sidecar, the running
// sidecar's /v1/status using that token) and prints a verdict per check.
// Meant for the moment S3 calls fail with ExpiredToken, InvalidAccessKeyId
// or AccessDenied: each failed check says what to do. With --s3 it instead
// gets the keys the sidecar serves, as an SDK would, and makes one signed S3
// request with them, so the verdict is S3's own answer explained.
#include "sidecar/inspect/inspect_command.hpp"

#include <iostream>

#include <httplib.h>

#include "common/redact.hpp"
#include "common/time_format.hpp"
#include "sidecar/exchange/token_source.hpp"
#include "sidecar/inspect/inspect.hpp"
#include "sidecar/inspect/s3_request.hpp"

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

struct ServedKeys {
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token;
    std::optional<SystemTime> expiration;
};

struct KeysAnswer {
    std::optional<ServedKeys> keys;
    std::string problem;
};

// GET the credentials as an SDK does: the full URI as given, or
// /v1/credentials on a base URL.
KeysAnswer fetch_served_keys(const std::string& url, const std::optional<std::string>& authorization)
{
    const auto authority_end = url.find('/', url.find("://") + 3);
    const std::string base = url.substr(0, authority_end);
    std::string path = authority_end == std::string::npos ? "" : url.substr(authority_end);
    if (path.empty() || path == "/") {
        path = "/v1/credentials";
    }
    httplib::Client client{base};
    client.set_connection_timeout(2, 0);
    client.set_read_timeout(5, 0);
    httplib::Headers headers;
    if (authorization) {
        headers.emplace("Authorization", *authorization);
    }
    const auto response = client.Get(path, headers);
    if (!response) {
        return {std::nullopt, "no answer from " + url + ": " + httplib::to_string(response.error()) +
                                  " (is the sidecar running there? give its address with --sidecar)"};
    }
    if (response->status != 200) {
        // The sidecar's error bodies are JSON {"Code","Message"} and never hold a secret.
        const auto error = nlohmann::json::parse(response->body, nullptr, false);
        std::string detail = "HTTP " + std::to_string(response->status);
        if (error.is_object()) {
            detail += ": " + sanitize_excerpt(error.value("Message", ""));
        }
        if (response->status == 401 || response->status == 403) {
            detail +=
                " (the sidecar does not accept this Authorization: do the app and the sidecar mount the same "
                "token volume?)";
        } else if (response->status == 503) {
            detail += " (the sidecar holds no keys yet: `cwcreds inspect --sidecar` shows its last exchange)";
        }
        return {std::nullopt, detail};
    }
    const auto body = nlohmann::json::parse(response->body, nullptr, false);
    if (!body.is_object() || !body.contains("AccessKeyId") || !body["AccessKeyId"].is_string() ||
        !body.contains("SecretAccessKey") || !body["SecretAccessKey"].is_string()) {
        return {std::nullopt, "the answer is not container-credentials JSON: is this a cwcreds sidecar?"};
    }
    ServedKeys keys{body["AccessKeyId"].get<std::string>(), body["SecretAccessKey"].get<std::string>(),
                    body.value("Token", ""), std::nullopt};
    if (body.contains("Expiration") && body["Expiration"].is_string()) {
        keys.expiration = parse_rfc3339(body["Expiration"].get<std::string>());
    }
    return {std::move(keys), ""};
}

// What an SDK in the app's container sends as Authorization (see
// InspectSettings), or nullopt with `problem` naming the file and why not.
std::optional<std::string> caller_authorization(const InspectSettings& settings, std::string& problem)
{
    if (settings.caller_token_file.empty() && !settings.caller_token.empty()) {
        return settings.caller_token;
    }
    const std::filesystem::path file =
        settings.caller_token_file.empty() ? settings.token_file : std::filesystem::path{settings.caller_token_file};
    TokenSource tokens{file};
    tokens.reload();
    problem = file.string() + ": " + tokens.problem();
    return tokens.current();
}

int run_inspect_s3(const InspectSettings& settings)
{
    const auto now = std::chrono::system_clock::now();
    std::string token_problem;
    const auto authorization = caller_authorization(settings, token_problem);
    std::vector<Check> key_checks;
    KeysAnswer answer = fetch_served_keys(settings.credentials_url, authorization);
    if (!authorization) {
        answer.problem += "; no token was sent: " + token_problem;
    }
    if (answer.keys) {
        const auto& keys = *answer.keys;
        std::string detail = mask_access_key_id(keys.access_key_id) +
                             (keys.session_token.empty() ? ", no session token" : ", with a session token");
        if (keys.expiration) {
            detail += ", expire " + relative_time(std::chrono::duration_cast<Millis>(*keys.expiration - now)) + " (" +
                      format_rfc3339(*keys.expiration) + ")";
        }
        key_checks.push_back({"credentials", Verdict::ok, detail});
    } else {
        key_checks.push_back({"credentials", Verdict::fail, answer.problem});
    }

    const S3Target target = std::get<S3Target>(parse_s3_uri(settings.s3_uri));  // checked by parse_config
    const std::string url = s3_request_url(settings.s3_endpoint, target, settings.s3_addressing).value_or("");
    std::optional<S3Answer> s3_answer;
    std::optional<S3Verdict> verdict;
    if (answer.keys) {
        const auto& keys = *answer.keys;
        s3_answer = send_s3_request({.url = url,
                                     .region = settings.s3_region,
                                     .access_key_id = keys.access_key_id,
                                     .secret_access_key = keys.secret_access_key,
                                     .session_token = keys.session_token,
                                     .object = !target.key.empty(),
                                     .ca_file = settings.s3_ca_file});
        // The principal for the policy advice, when the Authorization is the pod's token.
        const auto token = authorization ? inspect_token(authorization, "", settings.audience, settings.org_id, now)
                                         : TokenInspection{};
        verdict = classify_s3_answer(*s3_answer,
                                     {.target = target,
                                      .endpoint = settings.s3_endpoint,
                                      .region = settings.s3_region,
                                      .masked_key_id = mask_access_key_id(keys.access_key_id),
                                      .principal = token.principal},
                                     std::chrono::system_clock::now());
    }
    const bool ok = verdict && verdict->cause == S3Cause::ok;
    const std::string cause = verdict ? std::string{cause_name(verdict->cause)} : "sidecar";
    // As sent: virtual-hosted addressing falls back to path style on an IP address.
    const std::string addressing = url.find("://" + target.bucket + ".") != std::string::npos ? "virtual" : "path";

    if (settings.json_output) {
        nlohmann::json s3{{"uri", settings.s3_uri},
                          {"url", url},
                          {"endpoint", settings.s3_endpoint},
                          {"region", settings.s3_region},
                          {"addressing", addressing}};
        if (s3_answer) {
            s3["http_status"] = s3_answer->http_status;
            s3["error_code"] = s3_answer->error_code;
            if (s3_answer->server_date) {
                s3["server_date"] = format_rfc3339(*s3_answer->server_date);
            }
            s3["local_date"] = format_rfc3339(now);
        }
        if (verdict) {
            s3["cause"] = cause;
            s3["detail"] = verdict->detail;
        }
        const nlohmann::json out{{"sidecar", {{"url", settings.credentials_url}, {"checks", checks_json(key_checks)}}},
                                 {"s3", s3},
                                 {"cause", cause},
                                 {"ok", ok}};
        std::cout << out.dump(2) << "\n";
        return ok ? 0 : 1;
    }

    std::cout << "keys from " << settings.credentials_url << "\n";
    print_checks(key_checks);
    std::cout << "\ns3 GET " << url << "  (region " << settings.s3_region << ", " << addressing << " addressing)\n";
    if (verdict) {
        print_checks({{"s3", ok ? Verdict::ok : Verdict::fail, verdict->detail}});
    } else {
        std::cout << "  not sent: no keys\n";
    }
    std::cout << "\nverdict: " << (ok ? "OK" : cause) << "\n";
    return ok ? 0 : 1;
}

}  // namespace

int run_inspect(const InspectSettings& settings)
{
    if (!settings.s3_uri.empty()) {
        return run_inspect_s3(settings);
    }
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
