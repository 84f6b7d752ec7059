// `cwcreds exchange` and `cwcreds credential-process`: one exchange now.
#pragma once

#include <filesystem>

#include "sidecar/exchange/exchange_settings.hpp"

namespace cw {

// The JSON printed: what the container-credentials endpoint serves, or what
// the AWS CLI's credential_process reads.
enum class CredentialShape { container_credentials, credential_process };

struct ExchangeCommandSettings {
    std::filesystem::path token_file;
    UpstreamSettings upstream;
    CredentialShape shape = CredentialShape::container_credentials;
};

// One exchange, the JSON on stdout; exit 1 when it fails.
int run_exchange(const ExchangeCommandSettings& settings);

}  // namespace cw
