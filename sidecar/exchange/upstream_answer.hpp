// Turning a 200 answer from either CoreWeave endpoint into Credentials.
//
// Pure and total: any byte string gives either credentials or a reason, so
// it can be fuzzed. A reason never quotes the body: a malformed 200 answer
// may still carry a secret key.
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "sidecar/exchange/credentials.hpp"
#include "sidecar/exchange/exchange_settings.hpp"

namespace cw {

struct AnswerError {
    std::string reason;  // "missing SecretAccessKey", "expiry is in the past", ...
};

// CoreWeave issues keys of at most 12 h; a longer lifetime means the
// answer's clock (its `Date`) is wrong, and would stretch a key far past
// its real end.
inline constexpr Millis k_max_lifetime{12 * 3600 * 1000 + 60 * 1000};

// `now` becomes obtained_at; an expiry at or before it, or more than
// k_max_lifetime after it, is an error.
std::variant<Credentials, AnswerError> parse_upstream_answer(ExchangeMode mode, std::string_view body, SystemTime now);

}  // namespace cw
