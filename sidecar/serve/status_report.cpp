#include "sidecar/serve/status_report.hpp"

#include "common/jwt_claims.hpp"
#include "common/redact.hpp"
#include "common/time_format.hpp"

namespace cw {

namespace {

template <typename TimePoint>
double seconds_between(TimePoint later, TimePoint earlier)
{
    return static_cast<double>(std::chrono::round<std::chrono::seconds>(later - earlier).count());
}

// A monotonic deadline as people read it: on this node's wall clock now.
std::string wall_text(SteadyTime instant, const StatusInputs& in)
{
    return format_rfc3339(on_wall_clock(instant, in.now, in.steady_now));
}

nlohmann::json token_section(const StatusInputs& in)
{
    nlohmann::json token{{"file", in.token_file.string()}, {"readable", in.token_problem.empty()}};
    if (!in.token_problem.empty()) {
        token["problem"] = in.token_problem;
    }
    if (in.token_last_change) {
        token["last_change"] = format_rfc3339(*in.token_last_change);
    }
    if (!in.token) {
        return token;
    }
    token["fingerprint"] = fingerprint(*in.token);
    const auto decoded = decode_jwt_claims(*in.token);
    if (const auto* error = std::get_if<JwtError>(&decoded)) {
        token["jwt_error"] = error->reason;
        return token;
    }
    const auto& claims = std::get<JwtClaims>(decoded);
    token["issuer"] = claims.issuer;
    token["subject"] = claims.subject;
    token["audience"] = claims.audience;
    if (claims.expires_at) {
        token["expires_at"] = format_rfc3339(*claims.expires_at);
        token["expires_in_seconds"] = seconds_between(*claims.expires_at, in.now);
    }
    if (claims.issued_at) {
        token["issued_at"] = format_rfc3339(*claims.issued_at);
    }
    return token;
}

nlohmann::json credentials_section(const StatusInputs& in)
{
    const auto& served = in.refresher.served;
    if (!served) {
        return nullptr;
    }
    const Credentials& credentials = served->credentials;
    const auto lifetime = std::chrono::duration<double>(credentials.lifetime()).count();
    const auto left = seconds_between(credentials.end(), in.steady_now);
    nlohmann::json section{
        {"access_key_id", mask_access_key_id(credentials.access_key_id)},
        {"expiration", wall_text(credentials.end(), in)},
        {"upstream_expiration", format_rfc3339(credentials.expiration)},
        {"expires_in_seconds", left},
        {"lifetime_seconds", std::round(lifetime)},
        {"life_left_percent", lifetime > 0 ? std::round(100.0 * left / lifetime) : 0.0},
        {"obtained_at", format_rfc3339(credentials.obtained_at)},
        {"served_until", wall_text(served->serve_until, in)},
        {"servable", in.servable},
    };
    if (const auto skew = credentials.clock_skew()) {
        section["clock_skew_seconds"] = std::chrono::duration<double>(*skew).count();
        section["clock_skew_warning"] = *skew > k_skew_warning || *skew < -k_skew_warning;
    }
    return section;
}

nlohmann::json last_exchange_section(const StatusInputs& in)
{
    const auto& last = in.refresher.last;
    if (!last) {
        return nullptr;
    }
    nlohmann::json section{
        {"result", last->result}, {"at", format_rfc3339(last->at)}, {"latency_ms", last->latency.count()}};
    if (last->http_status != 0) {
        section["http_status"] = last->http_status;
    }
    if (!last->detail.empty()) {
        section["error"] = last->detail;  // already sanitised by the exchange client
    }
    return section;
}

}  // namespace

nlohmann::json status_report(const StatusInputs& in)
{
    nlohmann::json counters{{"consecutive_failures", in.refresher.consecutive_failures}};
    if (in.metrics != nullptr) {
        nlohmann::json exchanges;
        for (std::size_t i = 0; i < k_exchange_kind_count; ++i) {
            const auto kind = static_cast<ExchangeKind>(i);
            exchanges[std::string{exchange_kind_name(kind)}] = in.metrics->exchanges(kind);
        }
        counters["exchanges"] = exchanges;
        counters["token_changes"] = in.metrics->token_changes();
        counters["credentials_served"] = in.metrics->requests(Route::credentials, 200);
        counters["callers_rejected"] =
            in.metrics->requests(Route::credentials, 401) + in.metrics->requests(Route::credentials, 403);
    }
    nlohmann::json report{
        {"version", CWCREDS_VERSION},
        {"now", format_rfc3339(in.now)},
        {"uptime_seconds", seconds_between(in.now, in.started_at)},
        {"ready", in.servable},
        {"token", token_section(in)},
        {"credentials", credentials_section(in)},
        {"next_refresh",
         {{"at", wall_text(in.refresher.next_attempt, in)},
          {"in_seconds", std::max(0.0, seconds_between(in.refresher.next_attempt, in.steady_now))},
          {"reason", in.refresher.next_reason}}},
        {"last_exchange", last_exchange_section(in)},
        {"counters", counters},
    };
    if (in.upstream != nullptr) {
        report["upstream"] = {{"exchange", in.upstream->mode == ExchangeMode::oidc ? "oidc" : "container-credentials"},
                              {"endpoint", in.upstream->endpoint}};
    }
    return report;
}

void add_caller_status(nlohmann::json& report, const CallerStatus& callers)
{
    nlohmann::json served = nlohmann::json::object();
    if (callers.metrics != nullptr) {
        for (std::size_t i = 0; i < k_caller_kind_count; ++i) {
            const auto kind = static_cast<CallerKind>(i);
            served[std::string{caller_kind_name(kind)}] = callers.metrics->callers(kind);
        }
    }
    nlohmann::json files = nlohmann::json::array();
    for (const TokenSource* source : callers.accepted_tokens) {
        nlohmann::json file{{"file", source->file().string()}, {"readable", source->problem().empty()}};
        if (!source->problem().empty()) {
            file["problem"] = source->problem();
        }
        if (const auto changed = source->last_change()) {
            file["last_change"] = format_rfc3339(*changed);
        }
        files.push_back(std::move(file));
    }
    nlohmann::json imds{{"enabled", callers.imds}};
    if (callers.imds && callers.metrics != nullptr) {
        imds["sessions_issued"] = callers.metrics->imds_sessions();
    }
    report["callers"] = {{"served", served}, {"accepted_token_files", files}, {"imds", imds}};
}

}  // namespace cw
