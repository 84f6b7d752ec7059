// `cwcreds webhook`: load the certificate, serve, stop on SIGTERM/SIGINT.
#include <algorithm>
#include <optional>
#include <stdexcept>
#include <thread>

#include "webhook/webhook_command.hpp"

#include "common/config_error.hpp"
#include "common/cpu_budget.hpp"
#include "common/descriptor_limit.hpp"
#include "common/logging.hpp"
#include "common/shutdown_signal.hpp"
#include "webhook/certificate_store.hpp"
#include "webhook/webhook_server.hpp"

namespace cw {

namespace {

// More loops than this gain nothing for the API server's few connections.
constexpr unsigned k_max_loops = 4;
// A TLS connection that finished its handshake holds about 15-40 KiB
// (measured: 1,000 opened at once added 39 MiB). The API server needs tens;
// 512 keep a handshake flood's memory near 20 MiB, under the pod's limit
// with the 16 MiB buffer budget, and an attacker's idle connections are
// evicted first or closed at the 5 s request deadline.
constexpr std::size_t k_max_connections = 512;
// Descriptors kept for everything but connections: the listener, each
// loop's epoll and eventfd, the certificate files, logging.
constexpr std::size_t k_reserved_descriptors = 32;

// The server's size from what this process may use: loops from its CPUs,
// the connection cap from its descriptors.
WebhookCapacity measure_capacity()
{
    WebhookCapacity capacity;
    capacity.loops = std::min(cpu_budget().usable, k_max_loops);
    const ConnectionCaps caps =
        fit_connection_caps({k_max_connections, 0, 0, false}, raise_descriptor_limit(), k_reserved_descriptors);
    capacity.max_connections = caps.main;
    return capacity;
}

}  // namespace

int run_webhook(const WebhookSettings& settings, const InjectOptions& mutation)
{
    // 1. Signals become an event before any thread starts.
    ShutdownSignal::block();

    // 2. The serving certificate; a missing or broken one ends here.
    // Unusable at start is a configuration mistake (exit 2); a broken reload later is logged.
    std::optional<CertificateStore> loaded;
    try {
        loaded.emplace(settings.tls_cert_file, settings.tls_key_file);
    } catch (const std::runtime_error& error) {
        throw ConfigError{error.what()};
    }
    CertificateStore& certificates = *loaded;

    // 3. Listen, then serve on a thread of its own.
    const WebhookCapacity capacity = measure_capacity();
    WebhookServer server{settings, mutation, certificates, capacity};
    const int port = server.bind();
    log_event(spdlog::level::info, "webhook listening",
              {{"address", settings.host},
               {"port", port},
               {"image", mutation.image},
               {"loops", capacity.loops},
               {"max_connections", capacity.max_connections}});
    std::thread serve_thread{[&server] { server.run(); }};

    // 4. Wait for SIGTERM/SIGINT; in-flight reviews finish before exit.
    const int signal_number = ShutdownSignal::wait();
    log_event(spdlog::level::info, "shutting down", {{"signal", signal_number}});
    server.stop();
    serve_thread.join();
    log_event(spdlog::level::info, "stopped");
    return 0;
}

}  // namespace cw
