#include "sidecar/refresh_policy.hpp"

#include <algorithm>

namespace cw {

SystemTime refresh_due(const Credentials& credentials, const RefreshSettings& settings, double unit_random)
{
    const double lifetime_ms = static_cast<double>(std::max(credentials.lifetime(), Millis{0}).count());
    const double jitter = settings.refresh_jitter * std::clamp(unit_random, 0.0, 1.0);
    const double offset_ms = lifetime_ms * settings.refresh_fraction * (1.0 - jitter);
    return credentials.obtained_at + Millis{static_cast<Millis::rep>(offset_ms)};
}

SystemTime serve_until(const Credentials& credentials, const RefreshSettings& settings)
{
    const Millis margin = std::min(settings.expiry_margin, std::max(credentials.lifetime(), Millis{0}) / 10);
    return credentials.effective_expiry() - margin;
}

bool servable(const Credentials& credentials, const RefreshSettings& settings, SystemTime now)
{
    return now < serve_until(credentials, settings);
}

}  // namespace cw
