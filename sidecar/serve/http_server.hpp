// The local endpoints SDKs and operators call.
//
// The main listener (loopback) serves /v1/credentials and /v1/status to
// callers presenting the pod's token, and /healthz, /readyz, /startupz,
// /metrics to anyone. The optional probe listener (--probe-listen, e.g. on the
// pod IP for kubelet and Prometheus) serves only the last four: nothing secret can be
// reached through it. Callers may also present an accepted static token
// (caller_auth.hpp), and with --imds the EC2 instance-metadata paths are
// served too (imds.hpp), on this listener and on an IMDS-only one. Answering credentials is a memory read: the
// refresher pre-renders the JSON.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sidecar/exchange/refresher.hpp"
#include "sidecar/exchange/token_source.hpp"
#include "sidecar/serve/metrics.hpp"
#include "sidecar/serve/serve_settings.hpp"
#include "sidecar/serve/startup_gate.hpp"

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
    StartupGate& startup_gate;  // shared by every listener, so its opening is logged once
    const Clock& clock = real_clock();
};

// probes_only: /healthz, /readyz, /startupz, /metrics. imds_only: /latest/… (--imds-listen).
enum class Routes { all, probes_only, imds_only };

class ImdsSessions;

// Optional ways in, besides the pod's token; all pointers outlive the server.
struct CallerOptions {
    std::vector<TokenSource*> accepted_tokens;  // --accept-token-file
    ImdsSessions* imds_sessions = nullptr;      // non-null: serve IMDSv2 (--imds)
    std::string region;                         // what IMDS reports
};

class CredentialServer {
public:
    CredentialServer(ServerContext context, ServerSettings settings, Routes routes = Routes::all);
    CredentialServer(ServerContext context, ServerSettings settings, Routes routes, CallerOptions callers);
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
