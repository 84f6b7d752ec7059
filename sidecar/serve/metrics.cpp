#include "sidecar/serve/metrics.hpp"

#include <spdlog/fmt/fmt.h>

namespace cw {

namespace {

std::size_t status_index(int status)
{
    for (std::size_t i = 0; i + 1 < k_counted_statuses.size(); ++i) {
        if (k_counted_statuses[i] == status) {
            return i;
        }
    }
    return k_counted_statuses.size() - 1;
}

double unix_seconds(SystemTime instant)
{
    return std::chrono::duration<double>(instant.time_since_epoch()).count();
}

double seconds(Millis duration)
{
    return std::chrono::duration<double>(duration).count();
}

// One metric family: HELP, TYPE, then its samples.
void family(std::string& out, std::string_view name, std::string_view type, std::string_view help)
{
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void sample(std::string& out, std::string_view name, double value, std::string_view labels = {})
{
    out += fmt::format("{}{}{}{} {}\n", name, labels.empty() ? "" : "{", labels, labels.empty() ? "" : "}", value);
}

}  // namespace

std::string_view route_path(Route route)
{
    switch (route) {
    case Route::credentials:
        return "/v1/credentials";
    case Route::status:
        return "/v1/status";
    case Route::healthz:
        return "/healthz";
    case Route::readyz:
        return "/readyz";
    case Route::startupz:
        return "/startupz";
    case Route::metrics:
        return "/metrics";
    case Route::other:
        return "other";
        case Route::imds:
            return "/latest";
    }
    return "other";
}

std::string_view caller_kind_name(CallerKind kind)
{
    switch (kind) {
        case CallerKind::pod_token:
            return "pod-token";
        case CallerKind::accepted_token:
            return "accepted-token";
        case CallerKind::imds_session:
            return "imds-session";
        case CallerKind::unauthenticated:
            return "unauthenticated";
    }
    return "unknown";
}

void Metrics::count_request(Route route, int status)
{
    m_requests[static_cast<std::size_t>(route)][status_index(status)].fetch_add(1, std::memory_order_relaxed);
}

void Metrics::observe_exchange(ExchangeKind kind, Millis latency)
{
    ++m_exchanges[static_cast<std::size_t>(kind)];
    if (kind == ExchangeKind::token_unavailable) {
        return;  // nothing was sent: no latency to record
    }
    // The count goes up before the bucket, and render() reads the buckets
    // before the count: a scrape that sees an observation in a bucket then
    // sees it in the count too, so no finite bucket ever exceeds le="+Inf"
    // (counted the other way round, one scrape between the two increments
    // did). On arm64 this needs the bucket's increment to be a release and
    // its load an acquire: the default seq_cst gives both, relaxed would not.
    ++m_latency_count;
    m_latency_sum_us +=
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(latency).count());
    const double value = seconds(latency);
    for (std::size_t i = 0; i < k_latency_buckets.size(); ++i) {
        if (value <= k_latency_buckets[i]) {
            ++m_latency_buckets[i];
            break;
        }
    }
}

std::uint64_t Metrics::requests(Route route, int status) const
{
    return m_requests[static_cast<std::size_t>(route)][status_index(status)].load();
}

std::uint64_t Metrics::exchanges(ExchangeKind kind) const
{
    return m_exchanges[static_cast<std::size_t>(kind)].load();
}

std::string Metrics::render(const State& state) const
{
    std::string out;
    family(out, "cwcreds_build_info", "gauge", "Build and configuration of this cwcreds process.");
    sample(out, "cwcreds_build_info", 1,
           fmt::format(R"(version="{}",exchange="{}")", state.version, state.exchange_mode));

    family(out, "cwcreds_start_time_seconds", "gauge", "When this process started, in Unix seconds.");
    sample(out, "cwcreds_start_time_seconds", unix_seconds(state.started_at));

    family(out, "cwcreds_ready", "gauge", "1 while unexpired credentials can be served, else 0.");
    sample(out, "cwcreds_ready", state.ready ? 1 : 0);

    // Each family's samples must directly follow its own HELP/TYPE lines.
    family(out, "cwcreds_credentials_expiry_timestamp_seconds", "gauge",
           "When the held credentials expire, in Unix seconds (absent when none are held).");
    if (state.credentials_expiry) {
        sample(out, "cwcreds_credentials_expiry_timestamp_seconds", unix_seconds(*state.credentials_expiry));
    }
    family(out, "cwcreds_credentials_expires_in_seconds", "gauge",
           "Seconds until the held credentials expire; negative once expired.");
    if (state.credentials_expiry) {
        sample(out, "cwcreds_credentials_expires_in_seconds",
               std::chrono::duration<double>(*state.credentials_expiry - state.now).count());
    }
    family(out, "cwcreds_credentials_lifetime_seconds", "gauge", "Lifetime of the held credentials as issued.");
    if (state.credentials_lifetime) {
        sample(out, "cwcreds_credentials_lifetime_seconds", seconds(*state.credentials_lifetime));
    }

    family(out, "cwcreds_next_refresh_timestamp_seconds", "gauge", "When the next exchange is due, in Unix seconds.");
    if (state.next_refresh) {
        sample(out, "cwcreds_next_refresh_timestamp_seconds", unix_seconds(*state.next_refresh));
    }

    family(out, "cwcreds_token_expiry_timestamp_seconds", "gauge",
           "When the projected token expires (its exp claim), in Unix seconds.");
    if (state.token_expiry) {
        sample(out, "cwcreds_token_expiry_timestamp_seconds", unix_seconds(*state.token_expiry));
    }

    family(out, "cwcreds_token_changes_total", "counter", "Times the token file's content changed (rotations).");
    sample(out, "cwcreds_token_changes_total", static_cast<double>(token_changes()));

    family(out, "cwcreds_clock_skew_seconds", "gauge",
           "How far this node's clock runs ahead of the upstream's (its Date header), at the last exchange.");
    if (state.clock_skew) {
        sample(out, "cwcreds_clock_skew_seconds", seconds(*state.clock_skew));
    }

    family(out, "cwcreds_consecutive_failures", "gauge", "Exchanges failed in a row since the last success.");
    sample(out, "cwcreds_consecutive_failures", state.consecutive_failures);

    family(out, "cwcreds_exchanges_total", "counter", "Exchange attempts, by result.");
    for (std::size_t i = 0; i < k_exchange_kind_count; ++i) {
        const auto kind = static_cast<ExchangeKind>(i);
        sample(out, "cwcreds_exchanges_total", static_cast<double>(exchanges(kind)),
               fmt::format(R"(result="{}")", exchange_kind_name(kind)));
    }

    family(out, "cwcreds_exchange_duration_seconds", "histogram", "Time an exchange with the upstream took.");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < k_latency_buckets.size(); ++i) {
        cumulative += m_latency_buckets[i].load();
        sample(out, "cwcreds_exchange_duration_seconds_bucket", static_cast<double>(cumulative),
               fmt::format(R"(le="{}")", k_latency_buckets[i]));
    }
    const auto count = m_latency_count.load();  // after the buckets: see observe_exchange
    sample(out, "cwcreds_exchange_duration_seconds_bucket", static_cast<double>(count), R"(le="+Inf")");
    sample(out, "cwcreds_exchange_duration_seconds_sum", static_cast<double>(m_latency_sum_us.load()) / 1e6);
    sample(out, "cwcreds_exchange_duration_seconds_count", static_cast<double>(count));

    family(out, "cwcreds_credentials_served_total", "counter",
           "Credentials handed out, by what the caller presented (pod-token, accepted-token, imds-session, "
           "unauthenticated).");
    for (std::size_t i = 0; i < k_caller_kind_count; ++i) {
        const auto kind = static_cast<CallerKind>(i);
        sample(out, "cwcreds_credentials_served_total", static_cast<double>(callers(kind)),
               fmt::format(R"(caller="{}")", caller_kind_name(kind)));
    }

    family(out, "cwcreds_accepted_token_files_unreadable", "gauge",
           "Accepted token files (--accept-token-file) that cannot be read or are invalid now.");
    sample(out, "cwcreds_accepted_token_files_unreadable", static_cast<double>(state.accepted_token_files_unreadable));

    family(out, "cwcreds_imds_sessions_issued_total", "counter", "IMDSv2 session tokens issued (--imds).");
    sample(out, "cwcreds_imds_sessions_issued_total", static_cast<double>(imds_sessions()));

    family(out, "cwcreds_http_requests_total", "counter", "Requests answered, by path and status code.");
    for (std::size_t route = 0; route < k_route_count; ++route) {
        for (std::size_t status = 0; status < k_counted_statuses.size(); ++status) {
            const auto value = m_requests[route][status].load();
            if (value == 0) {
                continue;
            }
            const int code = k_counted_statuses[status];
            sample(out, "cwcreds_http_requests_total", static_cast<double>(value),
                   fmt::format(R"(path="{}",code="{}")", route_path(static_cast<Route>(route)),
                               code == 0 ? std::string{"other"} : std::to_string(code)));
        }
    }
    return out;
}

}  // namespace cw
