// The local endpoint SDKs call: /v1/credentials, /healthz, /readyz.
//
// Answering is a memory read: the refresher pre-renders the JSON, the server
// checks the caller and copies it. cpp-httplib stays inside http_server.cpp.
#pragma once

#include <functional>
#include <memory>

#include "sidecar/refresher.hpp"
#include "sidecar/settings.hpp"
#include "sidecar/token_source.hpp"

namespace cw {

class CredentialServer {
public:
    CredentialServer(Refresher& refresher, TokenSource& client_tokens, ServerSettings settings,
                     std::function<bool()> loops_alive);
    ~CredentialServer();
    CredentialServer(const CredentialServer&) = delete;
    CredentialServer& operator=(const CredentialServer&) = delete;

    // Binds the listening socket; returns the port (useful with port 0).
    // Throws std::runtime_error when the address cannot be bound.
    int bind();

    // Serves until stop(); call on its own thread after bind().
    void run();
    void stop();

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace cw
