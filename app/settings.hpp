// The plain settings each component takes; config.cpp fills them from flags
// and environment, tests fill them directly.
#pragma once

#include <cstddef>
#include <cstdint>
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

struct ServerSettings {
    std::string host = "127.0.0.1";
    std::uint16_t port = 9911;
    std::string probe_host;  // empty: no probe listener
    std::uint16_t probe_port = 0;
    bool allow_unauthenticated = false;
    Millis startup_wait{800};
    std::size_t max_connections = 1024;
    unsigned loops = 0;  // event loops of the main listener; 0: one per usable CPU, at most 4
};

// EC2 instance metadata (IMDSv2) for clients that know nothing else.
struct ImdsSettings {
    bool enabled = false;     // on the main listener
    std::string listen_host;  // empty: no IMDS-only listener
    std::uint16_t listen_port = 0;
    std::string region;  // empty: placement paths answer 404
};

// `cwcreds inject` and `cwcreds webhook`: the sidecar they add (defaults that
// pod annotations may override; the org id is UpstreamSettings::org_id).
struct InjectSettings {
    std::string image;
    std::string exchange = "container-credentials";
    std::string duration = "1h";
    std::string input = "-";   // inject: file to read, - for stdin
    bool print_patch = false;  // inject: JSON Patch per object instead of YAML
};

struct WebhookSettings {
    std::string host = "0.0.0.0";
    std::uint16_t port = 8443;
    std::string tls_cert_file;
    std::string tls_key_file;
};

}  // namespace cw
