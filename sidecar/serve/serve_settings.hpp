// What `cwcreds serve` is set with: the listeners, instance metadata, and the
// exchange and renewal it drives. The settings table (app/) fills these;
// tests fill them directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "sidecar/exchange/exchange_settings.hpp"

namespace cw {

struct ServerSettings {
    std::string host = "127.0.0.1";
    std::uint16_t port = 9911;
    std::string probe_host;  // empty: no probe listener
    std::uint16_t probe_port = 0;
    bool allow_unauthenticated = false;
    Millis startup_wait{800};
    Millis startup_gate{120'000};  // /startupz opens without credentials after this; 0: never
    Millis drain_delay{0};  // after SIGTERM, serving goes on this long
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

// Everything the sidecar reads; `exchange` and `inspect` read parts of it too.
struct ServeSettings {
    std::filesystem::path token_file;
    std::filesystem::path client_token_file;  // what callers send; the token file when empty
    std::vector<std::filesystem::path> accept_token_files;
    Millis token_poll{30'000};
    UpstreamSettings upstream;
    RefreshSettings refresh;
    ServerSettings server;
    ImdsSettings imds;
};

}  // namespace cw
