// Where the webhook listens and the certificate it serves with. The settings
// table (app/) fills this; tests fill it directly.
#pragma once

#include <cstdint>
#include <string>

namespace cw {

struct WebhookSettings {
    std::string host = "0.0.0.0";
    std::uint16_t port = 8443;
    std::string tls_cert_file;  // PEM, chain first; re-read when it changes
    std::string tls_key_file;
};

}  // namespace cw
