// The webhook's HTTPS transport: cpp-httplib's SSLServer with the
// certificate store, POST /mutate handed to review_admission, probes and
// metrics. Untrusted input is bounded here: bodies over k_max_review are
// refused before they are read, reads and writes time out, and connections
// beyond what the worker threads can take wait in the kernel's backlog
// instead of piling up in memory.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <string>

#include "inject/pod_mutation.hpp"
#include "webhook/webhook_settings.hpp"
#include "webhook/admission.hpp"
#include "webhook/certificate_store.hpp"

namespace cw {

// An AdmissionReview carries the object (and for UPDATE the old one); etcd
// stores objects of at most 1.5 MiB, so 3 MiB is the most a real one needs.
inline constexpr std::size_t k_max_review = 3U << 20U;

class WebhookServer {
public:
    WebhookServer(const WebhookSettings& settings, InjectOptions options, CertificateStore& certificates);
    ~WebhookServer();
    WebhookServer(const WebhookServer&) = delete;
    WebhookServer& operator=(const WebhookServer&) = delete;

    // Binds the listening socket; returns the port (useful with port 0). Throws on failure.
    int bind();
    // Serves until stop(); call from its own thread.
    void run();
    void stop();

    std::string metrics() const;

private:
    class Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace cw
