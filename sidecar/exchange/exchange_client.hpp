// One token-for-credentials exchange with CoreWeave, as a value.
//
// The `Exchanger` interface is what the refresher and the one-shot commands
// use; `ExchangeClient` is the real one (libcurl), and tests substitute a
// small fake. Results are classified the way the refresher must react:
// rejected tokens are not hammered, retryable failures back off, malformed
// answers are never served.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "sidecar/exchange/credentials.hpp"
#include "sidecar/exchange/exchange_settings.hpp"

namespace cw {

enum class ExchangeOutcome {
    ok,
    rejected,   // 4xx other than 408/429: this token is not accepted
    retryable,  // 408, 429, 5xx, network, TLS, timeout
    malformed,  // 2xx we cannot use: bad JSON, missing field, bad or past expiry, too large
    cancelled,  // shutdown interrupted it
};

std::string_view outcome_name(ExchangeOutcome outcome);

struct ExchangeResult {
    ExchangeOutcome outcome = ExchangeOutcome::retryable;
    std::optional<Credentials> credentials;  // set when ok
    long http_status = 0;                    // 0 when no HTTP answer arrived
    std::optional<Millis> retry_after;       // from a 429/503 `Retry-After`
    std::optional<SystemTime> server_date;   // the upstream's `Date` header
    std::string detail;                      // sanitised, safe to log and show
    Millis latency{0};
};

class Exchanger {
public:
    virtual ~Exchanger() = default;
    // Blocks until an answer, a timeout, or cancel().
    virtual ExchangeResult exchange(const std::string& token) = 0;
    // Makes a running or future exchange() return `cancelled` promptly. Thread-safe.
    virtual void cancel() = 0;
};

// Classifies an HTTP status that is not 2xx (pure; tested on its own).
ExchangeOutcome classify_http_status(long status);

// Reads `Retry-After` as delay-seconds or an HTTP-date relative to `now`.
std::optional<Millis> parse_retry_after(std::string_view value, SystemTime now);

std::unique_ptr<Exchanger> make_exchange_client(const UpstreamSettings& settings, const Clock& clock = real_clock());

}  // namespace cw
