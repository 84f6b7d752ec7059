// What the refresher reports as it works: each exchange's outcome and
// latency, and each token change. The refresher owns this interface so that
// exchanging depends on nothing above it; serving implements it with its
// Prometheus counters (sidecar/serve/metrics.hpp), the fleet simulation and
// tests with their own.
#pragma once

#include <cstddef>
#include <string_view>

#include "common/clock.hpp"

namespace cw {

enum class ExchangeKind { ok, rejected, retryable, malformed, token_unavailable };
inline constexpr std::size_t k_exchange_kind_count = 5;

std::string_view exchange_kind_name(ExchangeKind kind);

class RefreshObserver {
public:
    RefreshObserver() = default;
    RefreshObserver(const RefreshObserver&) = delete;
    RefreshObserver& operator=(const RefreshObserver&) = delete;
    virtual ~RefreshObserver() = default;

    // Called from the refresher's thread after every exchange attempt.
    virtual void observe_exchange(ExchangeKind kind, Millis latency) = 0;
    // Called when the token file's content changed.
    virtual void count_token_change() = 0;
};

}  // namespace cw
