// The local endpoints SDKs and operators call.
//
// The main listener (loopback) serves /v1/credentials and /v1/status to
// callers presenting the pod's token, and /healthz, /readyz, /metrics to
// anyone. The optional probe listener (--probe-listen, e.g. on the pod IP for
// kubelet and Prometheus) serves only the last three: nothing secret can be
// reached through it. Answering credentials is a memory read: the refresher
// pre-renders the JSON.
#pragma once

#include <functional>
#include <memory>

#include "sidecar/metrics.hpp"
#include "sidecar/refresher.hpp"
#include "sidecar/settings.hpp"
#include "sidecar/token_source.hpp"

namespace cw {

// What the handlers read; all references outlive the server.
struct ServerContext {
    Refresher& refresher;
    TokenSource& exchange_tokens;  // the token exchanged upstream, described by /v1/status
    TokenSource& client_tokens;    // what callers must present
    Metrics& metrics;
    const UpstreamSettings& upstream;
    SystemTime started_at;
    std::function<bool()> loops_alive;
};

enum class Routes { all, probes_only };

class CredentialServer {
public:
    CredentialServer(ServerContext context, ServerSettings settings, Routes routes = Routes::all);
    ~CredentialServer();
    CredentialServer(const CredentialServer&) = delete;
    CredentialServer& operator=(const CredentialServer&) = delete;

    // Binds the listening socket; returns the port (useful with port 0).
    // Throws std::runtime_error when the address cannot be bound.
    int bind();

    // Serves until stop(); call on its own thread after bind().
    void run();
    void stop();

    // Re-examines requests waiting for the first exchange; thread-safe.
    void wake();

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace cw
