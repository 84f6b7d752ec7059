#include "sidecar/exchange/refresh_policy.hpp"

#include <algorithm>

namespace cw {

Millis expiry_margin(const Credentials& credentials, const RefreshSettings& settings)
{
    return std::min(settings.expiry_margin, std::max(credentials.lifetime(), Millis{0}) / 10);
}

SteadyTime refresh_due(const Credentials& credentials, const RefreshSettings& settings, double unit_random)
{
    const double lifetime_ms = static_cast<double>(std::max(credentials.lifetime(), Millis{0}).count());
    const double jitter = settings.refresh_jitter * std::clamp(unit_random, 0.0, 1.0);
    const double offset_ms = lifetime_ms * settings.refresh_fraction * (1.0 - jitter);
    const SteadyTime due = credentials.sent + Millis{static_cast<Millis::rep>(offset_ms)};
    return std::min(due, serve_until(credentials, settings) - expiry_margin(credentials, settings));
}

SteadyTime serve_until(const Credentials& credentials, const RefreshSettings& settings)
{
    return credentials.end() - expiry_margin(credentials, settings);
}

bool servable(const Credentials& credentials, const RefreshSettings& settings, SteadyTime now)
{
    return now < serve_until(credentials, settings);
}

}  // namespace cw
