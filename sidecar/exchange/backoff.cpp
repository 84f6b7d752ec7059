#include "sidecar/exchange/backoff.hpp"

#include <algorithm>

namespace cw {

Millis backoff_delay(int failures, ExchangeOutcome outcome, std::optional<Millis> retry_after,
                     const RefreshSettings& settings, double unit_random)
{
    Millis base = settings.retry_max;
    if (outcome != ExchangeOutcome::rejected) {
        const int doublings = std::clamp(failures - 1, 0, 30);
        const double grown =
            static_cast<double>(settings.retry_initial.count()) * static_cast<double>(1LL << doublings);
        base = Millis{static_cast<Millis::rep>(std::min(grown, static_cast<double>(settings.retry_max.count())))};
    }
    const auto half = base / 2;
    Millis delay =
        half + Millis{static_cast<Millis::rep>(static_cast<double>(half.count()) * std::clamp(unit_random, 0.0, 1.0))};
    if (retry_after) {
        // The backoff counts from the instant Retry-After names rather than
        // being merged into it: every caller refused in the same second is
        // told the same instant, and a lower bound alone would bring them
        // all back in the same second again.
        delay += *retry_after;
    }
    return delay;
}

}  // namespace cw
