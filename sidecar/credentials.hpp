// S3 credentials as the sidecar holds them, and the JSON shapes it gives out.
#pragma once

#include <algorithm>
#include <optional>
#include <string>

#include "common/clock.hpp"

namespace cw {

struct Credentials {
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token;  // CoreWeave's is usually empty
    SystemTime expiration;                   // the upstream's instant, as it said it
    SystemTime obtained_at;                  // when the answer arrived, on our clock
    std::optional<SystemTime> upstream_date{};  // the answer's `Date` header, on the upstream's clock

    // The lifetime measured on the upstream's own clock when it said what
    // time it was, so a skewed node clock does not distort it.
    [[nodiscard]] Millis lifetime() const
    {
        return std::chrono::duration_cast<Millis>(expiration - upstream_date.value_or(obtained_at));
    }

    // How far our clock runs ahead of the upstream's (negative: behind).
    // `Date` has whole seconds, so this is exact to about a second.
    [[nodiscard]] std::optional<Millis> clock_skew() const
    {
        if (!upstream_date) {
            return std::nullopt;
        }
        return std::chrono::duration_cast<Millis>(obtained_at - *upstream_date);
    }

    // The expiry on our clock, taking the earlier of the two readings: a
    // clock behind the upstream's must not let us serve a key it has
    // already expired.
    [[nodiscard]] SystemTime effective_expiry() const { return std::min(expiration, obtained_at + lifetime()); }
};

// `{"AccessKeyId","SecretAccessKey","Token","Expiration"}`: the AWS
// container-credentials shape. `Token` is always present (botocore and the JS
// SDK fail without it), `Expiration` is RFC 3339 UTC with `Z`.
std::string container_credentials_json(const Credentials& credentials);

// `{"Version":1,"AccessKeyId","SecretAccessKey","SessionToken"?,"Expiration"}`
// for `credential_process` in ~/.aws/config.
std::string credential_process_json(const Credentials& credentials);

}  // namespace cw
