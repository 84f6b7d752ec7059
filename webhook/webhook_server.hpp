// The webhook's HTTPS transport: the event server (common/) with TLS from the
// certificate store, POST /mutate handed to review_admission, probes and
// metrics.
//
// Untrusted input is bounded by the engine: a whole request (handshake, head
// and body) has the API server's own timeout to arrive; a body is read only
// with a Content-Length up to k_max_review (chunked is refused with 411, a
// compressed one with 415, before any of it is read); every connection costs
// a descriptor and its buffers, never a thread; all buffers together have a
// budget; at the connection cap the connection idle longest, else the one
// waiting longest on its request, makes room.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <string>

#include "inject/pod_mutation.hpp"
#include "webhook/admission.hpp"
#include "webhook/certificate_store.hpp"
#include "webhook/webhook_settings.hpp"

namespace cw {

// An AdmissionReview carries the object (and for UPDATE the old one); etcd
// stores objects of at most 1.5 MiB, so 3 MiB is the most a real one needs.
inline constexpr std::size_t k_max_review = 3U << 20U;

// What the process may use, measured by the caller.
struct WebhookCapacity {
    unsigned loops = 2;
    std::size_t max_connections = 1024;
};

class WebhookServer {
public:
    WebhookServer(const WebhookSettings& settings, InjectOptions options, CertificateStore& certificates,
                  WebhookCapacity capacity = {});
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
