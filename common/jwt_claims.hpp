// Reading a JWT's claims without verifying it.
//
// The sidecar never trusts these claims: the upstream verifies the signature.
// They are read only to tell a human what the token says (subject, audience,
// expiry) and to notice an expired token before asking the upstream.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/clock.hpp"

namespace cw {

struct JwtClaims {
    std::string issuer;
    std::string subject;
    std::vector<std::string> audience;  // `aud` may be a string or an array
    std::optional<SystemTime> issued_at;
    std::optional<SystemTime> not_before;
    std::optional<SystemTime> expires_at;
};

struct JwtError {
    std::string reason;
};

std::variant<JwtClaims, JwtError> decode_jwt_claims(std::string_view token);

// Base64url without padding, as JWTs use it; nullopt for invalid input.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace cw
