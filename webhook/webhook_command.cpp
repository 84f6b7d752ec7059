// `cwcreds webhook`: load the certificate, serve, stop on SIGTERM/SIGINT.
#include <thread>

#include "webhook/webhook_command.hpp"

#include "common/logging.hpp"
#include "common/shutdown_signal.hpp"
#include "webhook/certificate_store.hpp"
#include "webhook/webhook_server.hpp"

namespace cw {

int run_webhook(const WebhookSettings& settings, const InjectOptions& mutation)
{
    // 1. Signals become an event before any thread starts.
    ShutdownSignal::block();

    // 2. The serving certificate; a missing or broken one ends here.
    CertificateStore certificates{settings.tls_cert_file, settings.tls_key_file};

    // 3. Listen, then serve on a thread of its own.
    WebhookServer server{settings, mutation, certificates};
    const int port = server.bind();
    log_event(spdlog::level::info, "webhook listening",
              {{"address", settings.host}, {"port", port}, {"image", mutation.image}});
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
