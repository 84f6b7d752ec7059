// `cwcreds exchange` and `cwcreds credential-process`: one exchange now.
//
// Useful on a laptop (`credential_process` in ~/.aws/config) and for
// checking a setup by hand. stdout carries only the JSON; every message goes
// to stderr, so a failure never reaches the AWS CLI as credentials.
#include "sidecar/exchange/exchange_command.hpp"

#include <iostream>

#include "common/logging.hpp"
#include "sidecar/exchange/exchange_client.hpp"
#include "sidecar/exchange/token_source.hpp"

namespace cw {

int run_exchange(const ExchangeCommandSettings& settings)
{
    TokenSource tokens{settings.token_file};
    tokens.reload();
    const auto token = tokens.current();
    if (!token) {
        std::cerr << "cwcreds: cannot read the token file " << settings.token_file.string() << ": " << tokens.problem()
                  << "\ncwcreds: in a pod, mount a projected service-account token volume there (audience "
                     "https://coreweave.com/iam); elsewhere, point --token-file (CWCREDS_TOKEN_FILE) at a token\n";
        return 1;
    }
    const auto exchanger = make_exchange_client(settings.upstream);
    const ExchangeResult result = exchanger->exchange(*token);
    if (result.outcome != ExchangeOutcome::ok || !result.credentials) {
        std::cerr << "cwcreds: exchange failed (" << outcome_name(result.outcome) << "): " << result.detail << "\n";
        if (result.outcome == ExchangeOutcome::rejected) {
            std::cerr << "cwcreds: the upstream did not accept the token; check its audience and expiry with "
                         "`cwcreds inspect` and the access policy's principal\n";
        }
        return 1;
    }
    log_event(spdlog::level::debug, "exchange ok", {{"latency_ms", result.latency.count()}});
    // The key's end as the sidecar states it: on this node's clock, never later than the real end.
    const Clock& clock = real_clock();
    const SystemTime expiration = on_wall_clock(result.credentials->end(), clock.now(), clock.steady_now());
    if (settings.shape == CredentialShape::credential_process) {
        std::cout << credential_process_json(*result.credentials, expiration) << "\n";
    } else {
        std::cout << container_credentials_json(*result.credentials, expiration) << "\n";
    }
    return 0;
}

}  // namespace cw
