// Counters for /metrics and /v1/status.
//
// Request counting sits on the hot path of every /v1/credentials answer, so
// it is a fixed matrix of atomics (route x status), never a lock. Gauges that
// describe state (expiries, readiness) are not stored here: they are read
// from the refresher and token source at scrape time and passed to render.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.hpp"
#include "sidecar/exchange/refresh_observer.hpp"

namespace cw {

enum class Route { credentials, status, healthz, readyz, startupz, metrics, other, imds };
inline constexpr std::size_t k_route_count = 8;
inline constexpr std::array<int, 7> k_counted_statuses{200, 401, 403, 404, 405, 503, 0};  // 0: any other

// Which credential a caller presented when it was served.
enum class CallerKind { pod_token, accepted_token, imds_session, unauthenticated };
inline constexpr std::size_t k_caller_kind_count = 4;

std::string_view route_path(Route route);
std::string_view caller_kind_name(CallerKind kind);

class Metrics final : public RefreshObserver {
public:
    void count_request(Route route, int status);
    void observe_exchange(ExchangeKind kind, Millis latency) override;
    void count_token_change() override { ++m_token_changes; }
    void count_caller(CallerKind kind)
    {
        m_callers[static_cast<std::size_t>(kind)].fetch_add(1, std::memory_order_relaxed);
    }
    void count_imds_session() { ++m_imds_sessions; }

    [[nodiscard]] std::uint64_t requests(Route route, int status) const;
    [[nodiscard]] std::uint64_t exchanges(ExchangeKind kind) const;
    [[nodiscard]] std::uint64_t token_changes() const { return m_token_changes.load(); }
    [[nodiscard]] std::uint64_t callers(CallerKind kind) const
    {
        return m_callers[static_cast<std::size_t>(kind)].load();
    }
    [[nodiscard]] std::uint64_t imds_sessions() const { return m_imds_sessions.load(); }

    // Upper bounds of the exchange latency histogram, in seconds.
    static constexpr std::array<double, 9> k_latency_buckets{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

    // Values read at scrape time from the components that own them.
    struct State {
        std::string version;
        std::string exchange_mode;
        SystemTime now;
        SystemTime started_at;
        bool ready = false;
        std::optional<SystemTime> credentials_expiry;
        std::optional<Millis> credentials_lifetime;
        std::optional<SystemTime> next_refresh;
        std::optional<SystemTime> token_expiry;
        std::optional<Millis> clock_skew;
        int consecutive_failures = 0;
        std::size_t accepted_token_files_unreadable = 0;
    };

    // Prometheus text exposition format 0.0.4.
    [[nodiscard]] std::string render(const State& state) const;

private:
    std::array<std::array<std::atomic<std::uint64_t>, k_counted_statuses.size()>, k_route_count> m_requests{};
    std::array<std::atomic<std::uint64_t>, k_exchange_kind_count> m_exchanges{};
    std::array<std::atomic<std::uint64_t>, k_latency_buckets.size()> m_latency_buckets{};  // non-cumulative
    std::atomic<std::uint64_t> m_latency_count{0};
    std::atomic<std::uint64_t> m_latency_sum_us{0};
    std::atomic<std::uint64_t> m_token_changes{0};
    std::array<std::atomic<std::uint64_t>, k_caller_kind_count> m_callers{};
    std::atomic<std::uint64_t> m_imds_sessions{0};
};

}  // namespace cw
