#include "sidecar/inspect/inspect.hpp"

#include <algorithm>

#include "common/duration.hpp"
#include "common/jwt_claims.hpp"
#include "common/time_format.hpp"

namespace cw {

namespace {

// kubelet renews a projected token once it is older than 80% of its
// lifetime (or 24 h); the file should never be read much later than that.
constexpr double k_kubelet_refresh_share = 0.8;
constexpr Millis k_kubelet_max_age{24 * 3'600'000};
constexpr Millis k_kubelet_grace{5 * 60'000};

Millis rounded(Millis value)
{
    const auto unit = std::chrono::abs(value) >= Millis{3'600'000} ? Millis{60'000} : Millis{1000};
    return value / unit * unit;
}

std::string join(const std::vector<std::string>& parts)
{
    std::string out;
    for (const auto& part : parts) {
        out += (out.empty() ? "" : ", ") + part;
    }
    return out;
}

}  // namespace

std::string_view verdict_name(Verdict verdict)
{
    switch (verdict) {
    case Verdict::ok:
        return "ok";
    case Verdict::warn:
        return "warn";
    case Verdict::fail:
        return "FAIL";
    }
    return "?";
}

std::string relative_time(Millis offset)
{
    const std::string text = format_duration(rounded(std::chrono::abs(offset)));
    return offset >= Millis{0} ? "in " + text : text + " ago";
}

TokenInspection inspect_token(const std::optional<std::string>& token, const std::string& problem,
                              const std::string& audience, const std::string& org_id, SystemTime now)
{
    TokenInspection report;
    auto& checks = report.checks;
    if (!token) {
        checks.push_back({"readable", Verdict::fail,
                          problem + " (is the projected token volume mounted in this container?)"});
        return report;
    }
    checks.push_back({"readable", Verdict::ok, std::to_string(token->size()) + " bytes"});

    const auto decoded = decode_jwt_claims(*token);
    if (const auto* error = std::get_if<JwtError>(&decoded)) {
        checks.push_back({"JWT", Verdict::fail, error->reason});
        return report;
    }
    const auto& claims = std::get<JwtClaims>(decoded);
    checks.push_back({"JWT", Verdict::ok, "issuer " + claims.issuer + ", subject " + claims.subject});
    report.claims = {{"issuer", claims.issuer}, {"subject", claims.subject}, {"audience", claims.audience}};

    if (std::find(claims.audience.begin(), claims.audience.end(), audience) != claims.audience.end()) {
        checks.push_back({"audience", Verdict::ok, audience});
    } else {
        checks.push_back({"audience", Verdict::fail,
                          "is [" + join(claims.audience) + "], needs " + audience +
                              " (set serviceAccountToken.audience in the pod's projected volume)"});
    }

    if (!claims.expires_at) {
        checks.push_back({"not expired", Verdict::fail, "no exp claim"});
    } else {
        report.claims["expires_at"] = format_rfc3339(*claims.expires_at);
        const auto left = std::chrono::duration_cast<Millis>(*claims.expires_at - now);
        if (left <= Millis{0}) {
            checks.push_back({"not expired", Verdict::fail,
                              "expired " + relative_time(left) + " (" + format_rfc3339(*claims.expires_at) +
                                  "); kubelet should have replaced it: is this the projected file, and is it re-read?"});
        } else {
            checks.push_back({"not expired", Verdict::ok,
                              "expires " + relative_time(left) + " (" + format_rfc3339(*claims.expires_at) + ")"});
        }
    }
    if (claims.not_before && *claims.not_before > now + Millis{60'000}) {
        checks.push_back({"not before", Verdict::fail,
                          "valid only from " + format_rfc3339(*claims.not_before) + ": is this node's clock behind?"});
    }

    if (claims.issued_at && claims.expires_at && *claims.expires_at > *claims.issued_at) {
        report.claims["issued_at"] = format_rfc3339(*claims.issued_at);
        const auto lifetime = std::chrono::duration_cast<Millis>(*claims.expires_at - *claims.issued_at);
        const auto age = std::chrono::duration_cast<Millis>(now - *claims.issued_at);
        const auto refresh_at = std::min(
            Millis{static_cast<Millis::rep>(static_cast<double>(lifetime.count()) * k_kubelet_refresh_share)},
            k_kubelet_max_age);
        const std::string facts = "issued " + relative_time(-age) + "; kubelet renews it after " +
                                  format_duration(rounded(refresh_at)) + " (80% of " +
                                  format_duration(rounded(lifetime)) + ")";
        if (age > refresh_at + k_kubelet_grace) {
            checks.push_back({"kubelet refresh", Verdict::warn,
                              facts + ", overdue by " + format_duration(rounded(age - refresh_at)) +
                                  ": is the file a copy rather than the projected volume?"});
        } else {
            checks.push_back({"kubelet refresh", Verdict::ok, facts});
        }
    }

    const std::string role = claims.issuer + ":" + claims.subject;
    report.principal = "role/" + role;
    report.bucket_principal = R"({"AWS": "arn:aws:iam::)" + (org_id.empty() ? "<ORG-ID>" : org_id) + ":role/" + role + "\"}";
    if (claims.subject.rfind("system:serviceaccount:", 0) != 0) {
        checks.push_back({"subject", Verdict::warn,
                          claims.subject + " is not a Kubernetes service account (system:serviceaccount:<ns>:<name>)"});
    }
    return report;
}

std::vector<Check> inspect_sidecar_status(const nlohmann::json& status, const std::string& token_fingerprint)
{
    std::vector<Check> checks;
    const auto text = [](const nlohmann::json& value) { return value.is_string() ? value.get<std::string>() : value.dump(); };
    checks.push_back({"reachable", Verdict::ok,
                      "cwcreds " + text(status.value("version", nlohmann::json{"?"})) + ", up " +
                          format_duration(Millis{static_cast<Millis::rep>(status.value("uptime_seconds", 0.0) * 1000)})});

    const auto& credentials = status.contains("credentials") ? status["credentials"] : nlohmann::json{};
    if (status.value("ready", false) && credentials.is_object()) {
        const auto left = Millis{static_cast<Millis::rep>(credentials.value("expires_in_seconds", 0.0) * 1000)};
        checks.push_back({"credentials", Verdict::ok,
                          text(credentials["access_key_id"]) + " expire " + relative_time(left) + " (" +
                              std::to_string(static_cast<int>(credentials.value("life_left_percent", 0.0))) +
                              "% of their lifetime left)"});
    } else {
        checks.push_back({"credentials", Verdict::fail, "none servable: SDK calls get 503 (see last exchange)"});
    }

    const auto& last = status.contains("last_exchange") ? status["last_exchange"] : nlohmann::json{};
    if (last.is_object()) {
        std::string detail = text(last["result"]);
        if (last.contains("http_status")) {
            detail += " (HTTP " + text(last["http_status"]) + ")";
        }
        if (last.contains("error")) {
            detail += ": " + text(last["error"]);
        }
        detail += ", at " + text(last["at"]);
        checks.push_back({"last exchange", last["result"] == "ok" ? Verdict::ok : Verdict::fail, detail});
    }
    if (credentials.is_object() && credentials.contains("clock_skew_seconds")) {
        const double skew = credentials["clock_skew_seconds"].get<double>();
        checks.push_back({"clock skew", credentials.value("clock_skew_warning", false) ? Verdict::warn : Verdict::ok,
                          "node clock " + std::to_string(static_cast<long>(skew)) +
                              " s from the upstream's" + (credentials.value("clock_skew_warning", false)
                                                              ? ": S3 refuses signatures over 15 minutes off; fix NTP on the node"
                                                              : "")});
    }
    const auto& token = status.contains("token") ? status["token"] : nlohmann::json{};
    if (token.is_object() && token.contains("fingerprint") && !token_fingerprint.empty()) {
        if (token["fingerprint"] == token_fingerprint) {
            checks.push_back({"same token", Verdict::ok, "the sidecar exchanges this file's token"});
        } else {
            checks.push_back({"same token", Verdict::warn,
                              "the sidecar reads a different token (" + text(token["fingerprint"]) +
                                  "); a rotation in progress, or the app and sidecar mount different volumes"});
        }
    }
    return checks;
}

std::vector<Check> inspect_caller_status(const nlohmann::json& status)
{
    std::vector<Check> checks;
    if (!status.contains("callers") || !status["callers"].is_object()) {
        return checks;
    }
    const auto& callers = status["callers"];
    if (callers.contains("accepted_token_files") && callers["accepted_token_files"].is_array()) {
        for (const auto& file : callers["accepted_token_files"]) {
            const std::string path = file.value("file", "?");
            if (file.value("readable", false)) {
                checks.push_back({"accepted token file", Verdict::ok, path + " readable"});
            } else {
                checks.push_back({"accepted token file", Verdict::fail,
                                  path + " unreadable (" + file.value("problem", "unknown") +
                                      "): callers sending it are refused"});
            }
        }
    }
    if (callers.contains("imds") && callers["imds"].value("enabled", false)) {
        checks.push_back({"instance metadata", Verdict::ok,
                          "IMDSv2 on: any process in this pod can get credentials through it"});
    }
    return checks;
}

}  // namespace cw
