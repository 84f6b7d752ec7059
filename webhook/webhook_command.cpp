// `cwcreds webhook`: load the certificate, serve, stop on SIGTERM/SIGINT.
#include <thread>

#include "common/logging.hpp"
#include "app/commands.hpp"
#include "common/shutdown_signal.hpp"
#include "webhook/certificate_store.hpp"
#include "webhook/webhook_server.hpp"

namespace cw {

int run_webhook(const Config& config)
{
    // 1. Signals become an event before any thread starts.
    ShutdownSignal::block();

    // 2. The serving certificate; a missing or broken one ends here.
    CertificateStore certificates{config.webhook.tls_cert_file, config.webhook.tls_key_file};

    // 3. Listen, then serve on a thread of its own.
    WebhookServer server{config.webhook, inject_options(config), certificates};
    const int port = server.bind();
    log_event(spdlog::level::info, "webhook listening",
              {{"address", config.webhook.host}, {"port", port}, {"image", config.inject.image}});
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
