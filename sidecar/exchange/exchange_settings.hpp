// What the exchange with CoreWeave and the renewal policy are set with.
// The settings table (app/) fills these; tests fill them directly.
#pragma once

#include <string>

#include "common/clock.hpp"

namespace cw {

enum class ExchangeMode { container_credentials, oidc };

struct UpstreamSettings {
    ExchangeMode mode = ExchangeMode::container_credentials;
    std::string endpoint;  // full URL
    std::string org_id;    // sent in the body in oidc mode
    Millis duration{3'600'000};
    std::string ca_file;  // empty: system trust store
    Millis connect_timeout{2000};
    Millis exchange_timeout{10'000};
};

struct RefreshSettings {
    double refresh_fraction = 0.25;  // renew once this much of the lifetime has passed
    double refresh_jitter = 0.1;     // ...up to this fraction of that point earlier
    Millis expiry_margin{60'000};    // stop serving this long before expiry (at most 10% of lifetime)
    Millis retry_initial{1000};
    Millis retry_max{30'000};
};

// The CoreWeave URL for a mode, used when no endpoint is given.
inline std::string default_endpoint(ExchangeMode mode, const std::string& org_id)
{
    const std::string base = "https://api.coreweave.com/v1/cwobject/temporary-credentials/oidc";
    return mode == ExchangeMode::oidc ? base : base + "/" + org_id;
}

}  // namespace cw
